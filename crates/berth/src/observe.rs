//! Looking at running containers: `explain` (each namespace, the cgroup's limits beside usage, the
//! layers, capabilities and seccomp — isolation at a glance), `top`, `stats`, `pause`/`unpause`.

use crate::format::{human_size, print_table};
use crate::Ctx;
use berth_engine::record::Record;
use berth_engine::{Engine, EngineError};
use berth_runtime::state::ContainerState;
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;

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
pub struct StatsArgs {
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Format output using a Go-like template
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

#[derive(Args)]
pub struct PauseArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

fn fail(e: EngineError) -> (String, u8) {
    let c = e.exit_code();
    (e.msg, c)
}

fn running(e: &Engine, what: &str) -> Result<(Record, ContainerState), (String, u8)> {
    let r = e.get(what).map_err(fail)?;
    if !matches!(r.state.status.as_str(), "running" | "paused") {
        return Err((format!("container {} is not running", r.name), 1));
    }
    let st = ContainerState::load(&e.runtime_root, &r.id).map_err(|x| (x.to_string(), 1))?;
    Ok((r, st))
}

const NAMESPACES: [(&str, &str); 8] = [
    ("pid", "process IDs"),
    ("net", "network stack"),
    ("ipc", "System V IPC, POSIX queues"),
    ("mnt", "mount table"),
    ("uts", "hostname"),
    ("user", "user and group IDs"),
    ("cgroup", "cgroup root"),
    ("time", "clocks"),
];

fn ns_inode(pid: &str, ns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// The first of `names` found in the container's cgroup directories, trimmed.
fn cg_file(dirs: &[PathBuf], names: &[&str]) -> Option<String> {
    for n in names {
        for d in dirs {
            if let Ok(s) = std::fs::read_to_string(d.join(n)) {
                return Some(s.trim().to_string());
            }
        }
    }
    None
}

fn limit_text(v: Option<String>) -> String {
    match v.as_deref() {
        None => "-".into(),
        Some("max") | Some("-1") => "unlimited".into(),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n >= 1 << 60 => "unlimited".into(),
            Ok(n) if n > 1 << 20 => human_size(n),
            _ => s.to_string(),
        },
    }
}

/// The names (`chown`, `net_raw`, …) of the capabilities set in a `CapEff:` mask.
fn cap_names(hex: &str) -> Vec<String> {
    let bits = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
    berth_runtime::features::CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, c)| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect()
}

fn du(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                if m.is_dir() {
                    stack.push(e.path());
                } else if m.is_file() {
                    total += m.size();
                }
            }
        }
    }
    total
}

/// Everything `explain` shows, as JSON.
fn explain_json(e: &Engine, r: &Record, st: &ContainerState) -> Value {
    let pid = st.pid.to_string();
    let namespaces: Vec<Value> = NAMESPACES
        .iter()
        .filter_map(|(ns, what)| {
            let mine = ns_inode(&pid, ns)?;
            // berth itself runs in the host's namespaces.
            let host = ns_inode("self", ns);
            Some(json!({"type": ns, "isolates": what, "inode": mine, "shared_with_host": host == Some(mine)}))
        })
        .collect();
    let dirs: Vec<PathBuf> = st.cgroup.as_ref().map(|c| c.paths()).unwrap_or_default();
    let stats = st
        .cgroup
        .as_ref()
        .and_then(|c| c.stats().ok())
        .unwrap_or_default();
    let limits = json!([
        {"resource": "memory", "limit": limit_text(cg_file(&dirs, &["memory.max", "memory.limit_in_bytes"])), "usage": human_size(stats.memory.usage)},
        {"resource": "memory+swap", "limit": limit_text(cg_file(&dirs, &["memory.swap.max", "memory.memsw.limit_in_bytes"])), "usage": human_size(stats.memory.swap_usage)},
        {"resource": "pids", "limit": limit_text(cg_file(&dirs, &["pids.max"])), "usage": stats.pids.current.to_string()},
        {"resource": "cpu quota", "limit": cg_file(&dirs, &["cpu.max"]).or_else(|| {
            let q = cg_file(&dirs, &["cpu.cfs_quota_us"])?;
            let p = cg_file(&dirs, &["cpu.cfs_period_us"])?;
            Some(if q == "-1" { "unlimited".into() } else { format!("{q}us per {p}us") })
        }).unwrap_or_else(|| "-".into()), "usage": format!("{:.2}s cpu", stats.cpu.usage_total_ns as f64 / 1e9)},
        {"resource": "cpu weight", "limit": cg_file(&dirs, &["cpu.weight", "cpu.shares"]).unwrap_or_else(|| "-".into()), "usage": ""},
        {"resource": "cpuset", "limit": cg_file(&dirs, &["cpuset.cpus"]).filter(|s| !s.is_empty()).unwrap_or_else(|| "all".into()), "usage": ""},
        {"resource": "block I/O weight", "limit": cg_file(&dirs, &["io.weight", "blkio.weight"]).unwrap_or_else(|| "-".into()),
         "usage": human_size(stats.blkio_bytes.iter().filter(|b| b.op == "Total").map(|b| b.value).sum())},
    ]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let seccomp = match field("Seccomp:").as_str() {
        "0" => "disabled",
        "1" => "strict",
        "2" => "filter",
        _ => "unknown",
    };
    let mount = e.snapshot_mount(&r.id);
    let layers: Vec<Value> = r
        .layers
        .iter()
        .rev()
        .filter_map(|c| berth_image::digest::Digest::parse(c).ok())
        .map(|c| {
            let size = e.store.layers.info(&c).map(|i| i.size).unwrap_or(0);
            json!({"chain_id": c.to_string(), "dir": e.store.layers.diff_dir(&c), "size": size, "shared_by_images": e.store.index().map(|i| i.images.values().filter(|im| im.layers.contains(&c)).count()).unwrap_or(0)})
        })
        .collect();
    let upper = e.upper_dir(&r.id);
    json!({
        "id": r.id, "name": r.name, "image": r.image, "pid": st.pid, "status": r.state.status,
        "namespaces": namespaces,
        "cgroup": {"path": st.cgroup.as_ref().map(|c| c.path().display().to_string()), "limits": limits},
        "filesystem": {"type": mount.as_ref().map(|m| m.kind.clone()), "lower_layers": layers,
            "upper": {"dir": upper, "size": du(&upper)}, "read_only_root": r.host_config["ReadonlyRootfs"]},
        "security": {"capabilities": cap_names(&field("CapEff:")), "seccomp": seccomp,
            "no_new_privs": field("NoNewPrivs:") == "1", "uid_map": std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")},
    })
}

pub fn explain(ctx: &Ctx, a: ExplainArgs) -> Result<u8, (String, u8)> {
    let e = Engine::open(&ctx.root, &ctx.runroot).map_err(fail)?;
    let (r, st) = running(&e, &a.container)?;
    let v = explain_json(&e, &r, &st);
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
        return Ok(0);
    }
    if a.format != "text" {
        return Err((
            format!("invalid --format {:?}: text or json", a.format),
            125,
        ));
    }
    println!(
        "Container {} ({}), image {}, init pid {} on the host",
        r.name,
        &r.id[..12],
        r.image,
        st.pid
    );
    println!("\nNamespaces (what the container sees of its own):");
    let rows: Vec<Vec<String>> = v["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let shared = n["shared_with_host"].as_bool().unwrap_or(false);
            vec![
                n["type"].as_str().unwrap_or("").into(),
                n["inode"].to_string(),
                if shared {
                    "shared with host".into()
                } else {
                    "private".into()
                },
                n["isolates"].as_str().unwrap_or("").into(),
            ]
        })
        .collect();
    print_table(
        &["  NAMESPACE", "INODE", "", "ISOLATES"],
        &rows
            .into_iter()
            .map(|mut r| {
                r[0] = format!("  {}", r[0]);
                r
            })
            .collect::<Vec<_>>(),
    );
    println!("\nCgroup {}:", v["cgroup"]["path"].as_str().unwrap_or("-"));
    let rows: Vec<Vec<String>> = v["cgroup"]["limits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            vec![
                format!("  {}", l["resource"].as_str().unwrap_or("")),
                l["limit"].as_str().unwrap_or("").into(),
                l["usage"].as_str().unwrap_or("").into(),
            ]
        })
        .collect();
    print_table(&["  RESOURCE", "LIMIT", "USAGE"], &rows);
    println!(
        "\nFilesystem ({}, root {}):",
        v["filesystem"]["type"].as_str().unwrap_or("-"),
        if v["filesystem"]["read_only_root"].as_bool().unwrap_or(false) {
            "read-only"
        } else {
            "read-write"
        }
    );
    let mut rows = vec![vec![
        "  upper (writable)".to_string(),
        human_size(v["filesystem"]["upper"]["size"].as_u64().unwrap_or(0)),
        "this container".into(),
        v["filesystem"]["upper"]["dir"]
            .as_str()
            .unwrap_or("")
            .into(),
    ]];
    for (i, l) in v["filesystem"]["lower_layers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let chain = l["chain_id"].as_str().unwrap_or("");
        rows.push(vec![
            format!("  lower {} {}", i + 1, chain.get(7..19).unwrap_or("")),
            human_size(l["size"].as_u64().unwrap_or(0)),
            format!("{} image(s)", l["shared_by_images"]),
            l["dir"].as_str().unwrap_or("").into(),
        ]);
    }
    print_table(&["  LAYER", "SIZE", "SHARED BY", "DIRECTORY"], &rows);
    let caps: Vec<String> = v["security"]["capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    println!("\nSecurity:");
    println!("  capabilities ({}): {}", caps.len(), caps.join(" "));
    println!(
        "  seccomp: {}   no_new_privs: {}",
        v["security"]["seccomp"].as_str().unwrap_or(""),
        v["security"]["no_new_privs"]
    );
    println!(
        "  uid map (inside outside count): {}",
        v["security"]["uid_map"].as_str().unwrap_or("")
    );
    Ok(0)
}

pub fn top(ctx: &Ctx, a: TopArgs) -> Result<u8, (String, u8)> {
    let e = Engine::open(&ctx.root, &ctx.runroot).map_err(fail)?;
    let (r, _) = running(&e, &a.container)?;
    let pids = berth_runtime::ops::pids(&e.runtime_root, &r.id).map_err(|x| (x.to_string(), 1))?;
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|x| (format!("ps: {x}"), 1))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or(("ps output has no PID column".to_string(), 1))?;
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

pub fn stats(ctx: &Ctx, a: StatsArgs) -> Result<u8, (String, u8)> {
    let e = Engine::open(&ctx.root, &ctx.runroot).map_err(fail)?;
    loop {
        let recs: Vec<Record> = if a.containers.is_empty() {
            e.list()
                .into_iter()
                .filter(|r| a.all || r.state.status == "running")
                .collect()
        } else {
            a.containers
                .iter()
                .map(|c| e.get(c))
                .collect::<Result<_, _>>()
                .map_err(fail)?
        };
        let mut rows = Vec::new();
        for r in &recs {
            let st = ContainerState::load(&e.runtime_root, &r.id).ok();
            let s = st
                .as_ref()
                .and_then(|s| s.cgroup.as_ref())
                .and_then(|c| c.stats().ok())
                .unwrap_or_default();
            let mem_limit = if s.memory.limit == 0 || s.memory.limit >= 1 << 60 {
                total_memory()
            } else {
                s.memory.limit
            };
            let row = json!({"Container": &r.id[..12], "Name": r.name, "ID": r.id,
                "CPUTime": format!("{:.2}s", s.cpu.usage_total_ns as f64 / 1e9),
                "MemUsage": format!("{} / {}", human_size(s.memory.usage), human_size(mem_limit)),
                "MemPerc": format!("{:.2}%", s.memory.usage as f64 * 100.0 / mem_limit.max(1) as f64),
                "BlockIO": human_size(s.blkio_bytes.iter().filter(|b| b.op == "Total").map(|b| b.value).sum()),
                "PIDs": s.pids.current.to_string()});
            rows.push(row);
        }
        let columns = [
            ("CONTAINER ID", "Container"),
            ("NAME", "Name"),
            ("CPU TIME", "CPUTime"),
            ("MEM USAGE / LIMIT", "MemUsage"),
            ("MEM %", "MemPerc"),
            ("BLOCK I/O", "BlockIO"),
            ("PIDS", "PIDs"),
        ];
        crate::format::print_rows(&rows, a.format.as_deref(), &columns).map_err(|x| (x, 125))?;
        if a.no_stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        print!("\x1b[2J\x1b[H");
    }
}

fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

pub fn pause(ctx: &Ctx, a: PauseArgs, resume: bool) -> Result<u8, (String, u8)> {
    let e = Engine::open(&ctx.root, &ctx.runroot).map_err(fail)?;
    Ok(crate::containers::each(&a.containers, |c| {
        e.get(c).and_then(|r| e.set_paused(&r, !resume))
    }))
}
