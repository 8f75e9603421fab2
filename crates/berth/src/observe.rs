//! Looking at running containers: `explain`, `top`, `pause`/`unpause` (`stats` is
//! `statscmd`). Printing only:
//! `berth_engine::observe` gathers what they show.

use crate::format::{human_size, print_table};
use crate::{CliError, CliResult, Ctx};
use berth_engine::observe::Explanation;
use berth_engine::EngineError;
use clap::Args;

#[derive(Args)]
pub struct ExplainArgs {
    /// Output format: text (default) or json
    #[arg(long, default_value = "text")]
    format: String,
    container: String,
}

#[derive(Args)]
pub struct TopArgs {
    container: String,
    /// ps options (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

#[derive(Args)]
pub struct PauseArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

/// A container that must run for the command: Docker's status 1 when it does not.
fn not_running(e: EngineError) -> CliError {
    match e {
        EngineError::NotRunning(_) => CliError::new(e.to_string(), 1),
        e => e.into(),
    }
}

pub fn explain(ctx: &Ctx, a: ExplainArgs) -> CliResult {
    if a.format != "text" && a.format != "json" {
        return Err(CliError::usage(format!(
            "invalid --format {:?}: text or json",
            a.format
        )));
    }
    let v = ctx.engine()?.explain(&a.container).map_err(not_running)?;
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
        return Ok(0);
    }
    print_explanation(&v);
    Ok(0)
}

fn print_explanation(v: &Explanation) {
    println!(
        "Container {} ({}), image {}, init pid {} on the host",
        v.name,
        &v.id[..12],
        v.image,
        v.pid
    );
    println!("\nNamespaces (what the container sees of its own):");
    let rows: Vec<Vec<String>> = v
        .namespaces
        .iter()
        .map(|n| {
            let shared = if n.shared_with_host {
                "shared with host"
            } else {
                "private"
            };
            vec![
                format!("  {}", n.kind),
                n.inode.to_string(),
                shared.into(),
                n.isolates.clone(),
            ]
        })
        .collect();
    print_table(&["  NAMESPACE", "INODE", "", "ISOLATES"], &rows);
    println!("\nCgroup {}:", v.cgroup.path.as_deref().unwrap_or("-"));
    let rows: Vec<Vec<String>> = v
        .cgroup
        .limits
        .iter()
        .map(|l| {
            vec![
                format!("  {}", l.resource),
                l.limit.clone(),
                l.usage.clone(),
            ]
        })
        .collect();
    print_table(&["  RESOURCE", "LIMIT", "USAGE"], &rows);
    let fs = &v.filesystem;
    println!(
        "\nFilesystem ({}, root {}):",
        fs.kind.as_deref().unwrap_or("-"),
        if fs.read_only_root.as_bool().unwrap_or(false) {
            "read-only"
        } else {
            "read-write"
        }
    );
    let mut rows = vec![vec![
        "  upper (writable)".to_string(),
        human_size(fs.upper.size),
        "this container".into(),
        fs.upper.dir.display().to_string(),
    ]];
    for (i, l) in fs.lower_layers.iter().enumerate() {
        rows.push(vec![
            format!("  lower {} {}", i + 1, l.chain_id.get(7..19).unwrap_or("")),
            human_size(l.size),
            format!("{} image(s)", l.shared_by_images),
            l.dir.display().to_string(),
        ]);
    }
    print_table(&["  LAYER", "SIZE", "SHARED BY", "DIRECTORY"], &rows);
    let sec = &v.security;
    println!("\nSecurity:");
    println!(
        "  capabilities ({}): {}",
        sec.capabilities.len(),
        sec.capabilities.join(" ")
    );
    println!(
        "  seccomp: {}   no_new_privs: {}",
        sec.seccomp, sec.no_new_privs
    );
    println!("  uid map (inside outside count): {}", sec.uid_map);
    for line in &sec.user_namespace {
        println!("  {line}");
    }
    print_network(&v.network);
}

fn print_network(n: &berth_engine::observe::NetworkView) {
    println!("\nNetwork ({}):", n.mode);
    for net in &n.networks {
        println!(
            "  network {}: bridge {}, host end of the veth {}",
            net.network, net.bridge, net.host_veth
        );
        let rows: Vec<Vec<String>> = net
            .interfaces
            .iter()
            .map(|i| {
                let addrs: Vec<String> = i.addresses.iter().map(|a| a.to_string()).collect();
                vec![
                    format!("    {}", i.name),
                    if i.up { "up" } else { "down" }.into(),
                    i.mac.clone().unwrap_or_else(|| "-".into()),
                    addrs.join(" "),
                ]
            })
            .collect();
        print_table(&["    INTERFACE", "STATE", "MAC", "ADDRESSES"], &rows);
        for (dest, via, dev) in &net.routes {
            let via = via.map(|g| format!(" via {g}")).unwrap_or_default();
            let dev = dev
                .as_deref()
                .map(|d| format!(" dev {d}"))
                .unwrap_or_default();
            let dest = if dest.prefix_len() == 0 {
                "default".to_string()
            } else {
                dest.to_string()
            };
            println!("    route {dest}{via}{dev}");
        }
        for p in &net.ports {
            println!("    published {p}");
        }
    }
    if let Some(u) = &n.user_mode {
        println!(
            "  user-mode network through pasta (pid {}): the host's addresses and routes, DNS through its forwarder",
            u.pasta_pid
        );
        for p in &u.ports {
            println!("    published {p}");
        }
        if let Some(gw) = u.host_gateway {
            println!("    host-gateway {gw}: pasta maps it to the host's loopback");
        }
    } else if n.networks.is_empty() {
        let what = match n.mode.as_str() {
            "host" => "the host's own interfaces and routes",
            "none" => "loopback only",
            m if m.starts_with("container:") => "another container's namespace",
            _ => "not attached (the container is not running)",
        };
        println!("  {what}");
    }
    let dns: Vec<String> = n.dns_servers.iter().map(|s| s.to_string()).collect();
    println!(
        "  dns servers: {}",
        if dns.is_empty() {
            "-".into()
        } else {
            dns.join(" ")
        }
    );
}

pub fn top(ctx: &Ctx, a: TopArgs) -> CliResult {
    let pids = ctx.engine()?.pids(&a.container).map_err(not_running)?;
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|x| CliError::new(format!("ps: {x}"), 1))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| CliError::new("ps output has no PID column", 1))?;
    println!("{header}");
    for l in lines {
        if l.split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            println!("{l}");
        }
    }
    Ok(0)
}

pub fn pause(ctx: &Ctx, a: PauseArgs, resume: bool) -> CliResult {
    let e = ctx.engine()?;
    Ok(crate::containers::each(&a.containers, |c| {
        e.get(c).and_then(|r| e.set_paused(&r, !resume))
    }))
}
