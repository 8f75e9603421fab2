//! `volume create|ls|inspect|rm|prune`: Docker's flags and output for local volumes. Parsing and
//! printing only; `berth_engine::volume` does the work.

use crate::format::{human_size, print_documents, print_rows};
use crate::{all_done, CliError, CliResult, Ctx};
use berth_engine::filters::{label_matches, Filters};
use berth_engine::volume::{self, Volume};
use berth_engine::Engine;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Docker's `[y/N]` question (its one home is `prompt`; `network prune` asks it through here).
use crate::prompt::confirm;

/// The engine, for commands whose failures exit 1.
fn engine(ctx: &Ctx) -> Result<Engine, CliError> {
    ctx.engine().map_err(|e| CliError::new(e.message, 1))
}

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Set metadata for a volume
    #[arg(short, long)]
    label: Vec<String>,
    /// Specify volume driver name (only "local")
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set driver specific options: type=tmpfs,device=tmpfs,o=size=64m or
    /// type=none,o=bind,device=/path (one --opt each, or together)
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    name: Option<String>,
}

/// `--opt` values as the local driver's options. Each is `KEY=VALUE`; a value may hold commas
/// (`o=size=64m,uid=1000`), so a comma starts a new option only before a key the driver knows
/// (`type=tmpfs,device=tmpfs,o=size=64m` is three).
fn driver_options(opts: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for opt in opts {
        let mut parts: Vec<String> = Vec::new();
        for piece in opt.split(',') {
            let starts_key = ["type=", "device=", "o="]
                .iter()
                .any(|k| piece.starts_with(k));
            match parts.last_mut() {
                Some(last) if !starts_key => {
                    last.push(',');
                    last.push_str(piece);
                }
                _ => parts.push(piece.to_string()),
            }
        }
        for p in parts {
            let Some((k, v)) = p.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                return Err(CliError::new(
                    format!("invalid --opt {opt:?}: expected KEY=VALUE"),
                    1,
                ));
            };
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(out)
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Provide filter values (dangling=true|false, name=…, label=…, driver=local)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go-like template
    #[arg(long)]
    format: Option<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a Go-like template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Do not error when a volume does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn run(ctx: &Ctx, c: VolumeCommand) -> CliResult {
    let e = engine(ctx)?;
    match c {
        VolumeCommand::Create(a) => create(&e, a),
        VolumeCommand::Ls(a) => ls(&e, a),
        VolumeCommand::Inspect(a) => inspect(&e, a),
        VolumeCommand::Rm(a) => rm(&e, a),
        VolumeCommand::Prune(a) => prune(&e, a),
    }
}

fn create(e: &Engine, a: CreateArgs) -> CliResult {
    if a.driver != "local" {
        return Err(CliError::new(
            format!("plugin {:?} not found: only \"local\"", a.driver),
            1,
        ));
    }
    let labels: BTreeMap<String, String> = a
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let options = driver_options(&a.opt)?;
    let v = volume::create_with_options(e, a.name.as_deref(), labels, options)
        .map_err(CliError::status1)?;
    println!("{}", v.name);
    Ok(0)
}

/// The fields `volume ls --format` knows.
fn ls_json(v: &Volume) -> Value {
    let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
    json!({
        "Name": v.name, "Driver": "local", "Scope": "local",
        "Mountpoint": v.mountpoint.display().to_string(), "Labels": labels.join(","),
        "Links": "N/A", "Size": "N/A", "CreatedAt": v.created,
    })
}

fn matches(e: &Engine, v: &Volume, filters: &[String]) -> Result<bool, CliError> {
    for f in filters {
        let ok = match f.split_once('=') {
            Some(("dangling", d)) => {
                let unused = volume::users(e, &v.name).is_empty();
                unused == matches!(d, "true" | "1")
            }
            Some(("name", n)) => v.name.contains(n),
            Some(("driver", d)) => d == "local",
            Some(("label", l)) => label_matches(l, &v.labels),
            _ => return Err(CliError::new(format!("invalid filter {f:?}"), 1)),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn ls(e: &Engine, a: LsArgs) -> CliResult {
    let mut vols = Vec::new();
    for v in volume::list(e) {
        if matches(e, &v, &a.filter)? {
            vols.push(v);
        }
    }
    if a.quiet {
        for v in &vols {
            println!("{}", v.name);
        }
        return Ok(0);
    }
    let rows: Vec<Value> = vols.iter().map(ls_json).collect();
    print_rows(
        &rows,
        a.format.as_deref(),
        &[("DRIVER", "Driver"), ("VOLUME NAME", "Name")],
    )
    .map_err(|m| CliError::new(m, 1))?;
    Ok(0)
}

fn inspect(e: &Engine, a: InspectArgs) -> CliResult {
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for n in &a.volumes {
        match volume::get(e, n) {
            Ok(v) => docs.push(v.inspect_json()),
            Err(x) => missing.push(x.to_string()),
        }
    }
    print_documents(a.format.as_deref(), docs).map_err(|m| CliError::new(m, 1))?;
    all_done(missing)
}

fn rm(e: &Engine, a: RmArgs) -> CliResult {
    let mut failed = Vec::new();
    for n in &a.volumes {
        match volume::remove(e, n, a.force) {
            Ok(()) => println!("{n}"),
            Err(x) => failed.push(x.to_string()),
        }
    }
    all_done(failed)
}

fn prune(e: &Engine, a: PruneArgs) -> CliResult {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    let filters = Filters::parse(&a.filter, volume::PRUNE_FILTERS)
        .map_err(|x| CliError::new(x.to_string(), 1))?;
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let (gone, bytes) = volume::prune_filtered(e, a.all, &filters).map_err(CliError::status1)?;
    if !gone.is_empty() {
        println!("Deleted Volumes:\n{}\n", gone.join("\n"));
    }
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(0)
}
