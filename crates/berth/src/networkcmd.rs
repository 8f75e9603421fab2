//! `network create|ls|inspect|rm|prune|connect|disconnect`: Docker's flags and output. Parsing
//! and printing only; `berth_engine::network` does the work.

use crate::format::{print_documents, print_rows};
use crate::prompt::confirm;
use crate::{all_done, CliError, CliResult, Ctx};
use berth_engine::filters::{label_matches, Filters};
use berth_engine::Engine;
use clap::{Args, Subcommand};
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Driver to manage the Network (only "bridge")
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    subnet: Vec<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long)]
    gateway: Option<std::net::Ipv4Addr>,
    /// Allocate container IPv4 addresses from a sub-range (CIDR inside --subnet)
    #[arg(long = "ip-range")]
    ip_range: Option<String>,
    /// Auxiliary IPv4 addresses the network never hands out (NAME=IP)
    #[arg(long = "aux-address")]
    aux_address: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable IPv6 networking (needs an IPv6 --subnet)
    #[arg(long)]
    ipv6: bool,
    /// Set metadata on a network
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    name: String,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Provide filter values (name=…, id=…, driver=…, label=…)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go-like template
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a Go-like template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    network: String,
    container: String,
}

#[derive(Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

/// The network commands exit 1 on failure, as Docker's.
fn fail(e: berth_engine::EngineError) -> CliError {
    CliError::status1(e)
}

pub fn run(ctx: &Ctx, c: NetworkCommand) -> CliResult {
    let e = ctx.engine().map_err(|e| CliError::new(e.message, 1))?;
    let r = match c {
        NetworkCommand::Create(a) => create(&e, a),
        NetworkCommand::Ls(a) => ls(&e, a),
        NetworkCommand::Inspect(a) => inspect(&e, a),
        NetworkCommand::Rm(a) => rm(&e, a),
        NetworkCommand::Prune(a) => prune(&e, a),
        NetworkCommand::Connect(a) => e
            .connect_network(&a.network, &a.container, a.alias, a.ip)
            .map(|()| 0)
            .map_err(fail),
        NetworkCommand::Disconnect(a) => {
            let _ = a.force;
            e.disconnect_network(&a.network, &a.container)
                .map(|()| 0)
                .map_err(fail)
        }
    };
    crate::containers::print_warnings(&e);
    r
}

fn key_values(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn create(e: &Engine, a: CreateArgs) -> CliResult {
    if a.driver != "bridge" {
        return Err(CliError::new(
            format!(
                "plugin {:?} not found: berth has the \"bridge\" driver only",
                a.driver
            ),
            1,
        ));
    }
    let mut req = berth_net::CreateRequest {
        name: a.name.clone(),
        gateway: a.gateway,
        internal: a.internal,
        labels: key_values(&a.label),
        options: key_values(&a.opt),
        ..Default::default()
    };
    for s in &a.subnet {
        match s.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(n)) if req.subnet.is_none() => req.subnet = Some(n),
            Ok(ipnet::IpNet::V6(n)) if req.subnet6.is_none() => req.subnet6 = Some(n),
            Ok(_) => {
                return Err(CliError::new(
                    format!("--subnet {s}: one IPv4 and one IPv6 subnet at most"),
                    1,
                ))
            }
            Err(_) => {
                return Err(CliError::new(
                    format!("invalid --subnet {s:?}: expected CIDR (10.1.0.0/24)"),
                    1,
                ))
            }
        }
    }
    if let (Some(s6), false) = (req.subnet6, a.ipv6) {
        return Err(CliError::new(
            format!("--subnet {s6}: an IPv6 subnet needs --ipv6"),
            1,
        ));
    }
    if a.ipv6 && req.subnet6.is_none() {
        return Err(CliError::new(
            "--ipv6: give the IPv6 subnet with --subnet (e.g. fd00:1::/64)",
            1,
        ));
    }
    if let Some(r) = &a.ip_range {
        req.ip_range = Some(r.parse().map_err(|_| {
            CliError::new(
                format!("invalid --ip-range {r:?}: expected IPv4 CIDR (10.1.0.128/25)"),
                1,
            )
        })?);
    }
    for aux in &a.aux_address {
        let parsed = aux
            .split_once('=')
            .and_then(|(k, ip)| Some((k, ip.parse::<std::net::Ipv4Addr>().ok()?)))
            .filter(|(k, _)| !k.is_empty());
        let Some((k, ip)) = parsed else {
            return Err(CliError::new(
                format!("invalid --aux-address {aux:?}: expected NAME=IPv4"),
                1,
            ));
        };
        req.aux_addresses.insert(k.to_string(), ip);
    }
    let cfg = e.create_network(&req).map_err(fail)?;
    println!("{}", cfg.id);
    Ok(0)
}

fn matches(row: &berth_engine::network::NetworkRow, filters: &[String]) -> Result<bool, CliError> {
    for f in filters {
        let ok = match f.split_once('=') {
            Some(("name", n)) => row.name.contains(n),
            Some(("id", i)) => row.id.starts_with(i),
            Some(("driver", d)) => row.driver == d,
            Some(("scope", s)) => s == "local",
            Some(("label", l)) => label_matches(l, &row.labels),
            Some(("type", t)) => match t {
                "builtin" => ["bridge", "host", "none"].contains(&row.name.as_str()),
                "custom" => !["bridge", "host", "none"].contains(&row.name.as_str()),
                _ => return Err(CliError::new(format!("invalid filter {f:?}"), 1)),
            },
            _ => return Err(CliError::new(format!("invalid filter {f:?}"), 1)),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn ls(e: &Engine, a: LsArgs) -> CliResult {
    let mut rows = Vec::new();
    for r in e.network_rows().map_err(fail)? {
        if !matches(&r, &a.filter)? {
            continue;
        }
        let id = if a.no_trunc {
            r.id.clone()
        } else {
            r.id[..12].to_string()
        };
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(json!({
            "ID": id, "Name": r.name, "Driver": r.driver, "Scope": r.scope,
            "IPv6": r.ipv6.to_string(), "Internal": r.internal.to_string(),
            "Labels": labels.join(","), "CreatedAt": r.created_at,
        }));
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    print_rows(
        &rows,
        a.format.as_deref(),
        &[
            ("NETWORK ID", "ID"),
            ("NAME", "Name"),
            ("DRIVER", "Driver"),
            ("SCOPE", "Scope"),
        ],
    )
    .map_err(|m| CliError::new(m, 1))?;
    Ok(0)
}

fn inspect(e: &Engine, a: InspectArgs) -> CliResult {
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for n in &a.networks {
        match e.inspect_network(n) {
            Ok(d) => docs.push(serde_json::to_value(d).expect("serializes")),
            Err(x) => missing.push(x.to_string()),
        }
    }
    print_documents(a.format.as_deref(), docs).map_err(|m| CliError::new(m, 1))?;
    all_done(missing)
}

fn rm(e: &Engine, a: RmArgs) -> CliResult {
    let mut failed = Vec::new();
    for n in &a.networks {
        match e.remove_network(n) {
            Ok(_) => println!("{n}"),
            Err(x) if a.force && x.is_not_found() => {}
            Err(x) => failed.push(x.to_string()),
        }
    }
    all_done(failed)
}

fn prune(e: &Engine, a: PruneArgs) -> CliResult {
    let filters = Filters::parse(&a.filter, berth_engine::prune::PRUNE_FILTERS)
        .map_err(|x| CliError::new(x.to_string(), 1))?;
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let gone = e.prune_networks_filtered(&filters).map_err(fail)?;
    if !gone.is_empty() {
        println!("Deleted Networks:\n{}", gone.join("\n"));
    }
    Ok(0)
}
