//! `version`, `info` and `events`: printing only; the engine's `system` and `events` modules
//! gather what they show.

use crate::{CliError, CliResult, Ctx};
use berth_engine::events::{in_window, Event, EventFilter};
use clap::Args;
use std::io::Write;

#[derive(Args)]
pub struct VersionArgs {
    /// Format output using a Go template (`{{.Server.Version}}`), or json
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(Args)]
pub struct InfoArgs {
    /// Format output using a Go template (`{{.Containers}}`), or json
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(Args)]
pub struct EventsArgs {
    /// Show events created since this time (RFC 3339, Unix seconds, or relative: 10m, 2h)
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this time (then exit); without it, follow
    #[arg(long)]
    until: Option<String>,
    /// Filter output (type=, event=, container=, image=, label=, network=, volume=)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go template, or json
    #[arg(long)]
    format: Option<String>,
}

/// Prints `v` with `--format` (a Go template, or `json`).
fn formatted(v: &serde_json::Value, format: &str) -> Result<(), CliError> {
    if format == "json" {
        println!("{v}");
        return Ok(());
    }
    let out = crate::format::render(format, v).map_err(CliError::usage)?;
    println!("{out}");
    Ok(())
}

pub fn version(_ctx: &Ctx, a: VersionArgs) -> CliResult {
    let v = berth_engine::system::version_info();
    if let Some(f) = a.format {
        // `Client` and `Server` are the same program. Docker's templates name Go's fields
        // (`.Server.APIVersion`), which differ from the JSON's (`ApiVersion`): both are given.
        let mut doc = serde_json::to_value(&v).expect("version serializes");
        doc["APIVersion"] = v.api_version.clone().into();
        let both = serde_json::json!({"Client": doc, "Server": doc});
        formatted(&both, &f)?;
        return Ok(0);
    }
    println!("berth:");
    println!(" Version:           {}", v.version);
    println!(
        " API version:       {} (berth serve; minimum {})",
        v.api_version, v.min_api_version
    );
    println!(" Git commit:        {}", v.git_commit);
    println!(" OS/Arch:           {}/{}", v.os, v.arch);
    println!(" Kernel:            {}", v.kernel_version);
    Ok(0)
}

/// `system migrate` (podman's name) takes no flags.
#[derive(Args)]
pub struct MigrateArgs {}

/// `system migrate`: ends the user's pause process; nothing to do for root.
pub fn migrate(ctx: &Ctx, _a: MigrateArgs) -> CliResult {
    ctx.engine()?.system_migrate()?;
    Ok(0)
}

pub fn info(ctx: &Ctx, a: InfoArgs) -> CliResult {
    let i = ctx.engine()?.system_info()?;
    if let Some(f) = a.format {
        formatted(&serde_json::to_value(&i).expect("info serializes"), &f)?;
        return Ok(0);
    }
    println!("Containers: {}", i.containers);
    println!(" Running: {}", i.containers_running);
    println!(" Paused: {}", i.containers_paused);
    println!(" Stopped: {}", i.containers_stopped);
    println!("Images: {}", i.images);
    println!("Server Version: {}", i.server_version);
    println!("Storage Driver: {}", i.driver);
    for [k, v] in &i.driver_status {
        println!(" {k}: {v}");
    }
    println!("Logging Driver: {}", i.logging_driver);
    println!("Cgroup Driver: {}", i.cgroup_driver);
    println!("Cgroup Version: {}", i.cgroup_version);
    println!("Security Options:");
    for s in &i.security_options {
        println!(
            " {}",
            s.trim_start_matches("name=")
                .replace(",profile=", "\n  Profile: ")
        );
    }
    println!("Kernel Version: {}", i.kernel_version);
    println!("Operating System: {}", i.operating_system);
    println!("OSType: {}", i.os_type);
    println!("Architecture: {}", i.architecture);
    println!("CPUs: {}", i.ncpu);
    println!(
        "Total Memory: {:.2}GiB",
        i.mem_total as f64 / (1u64 << 30) as f64
    );
    println!("Name: {}", i.name);
    println!("ID: {}", i.id);
    println!("Docker Root Dir: {}", i.docker_root_dir);
    println!("Live Restore Enabled: {}", i.live_restore_enabled);
    Ok(0)
}

/// `--since`/`--until`: RFC 3339, Unix seconds, or a duration before now (`10m`, `1h30m`).
fn time_arg(s: &str) -> Result<i128, CliError> {
    if let Some(n) = berth_sys::time::parse_timestamp_nanos(s) {
        return Ok(n);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let mut total: i128 = 0;
    let mut num = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = num
                    .parse()
                    .map_err(|_| CliError::usage(format!("invalid time {s:?}")))?;
                let unit = match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                total += (n * unit * 1e9) as i128;
                num.clear();
            }
            _ => return Err(CliError::usage(format!("invalid time {s:?}"))),
        }
    }
    if !num.is_empty() {
        return Err(CliError::usage(format!("invalid time {s:?}")));
    }
    Ok(now - total)
}

/// Docker's line: `TIME TYPE ACTION ID (k=v, …)`.
fn default_line(e: &Event) -> String {
    let secs = (e.time_nano / 1_000_000_000) as i64;
    let nanos = (e.time_nano % 1_000_000_000) as u32;
    let t = berth_sys::time::rfc3339(secs).replace('Z', &format!(".{nanos:09}Z"));
    let attrs: Vec<String> = e
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{t} {} {} {} ({})",
        e.kind,
        e.action,
        e.actor.id,
        attrs.join(", ")
    )
}

pub fn events(ctx: &Ctx, a: EventsArgs) -> CliResult {
    let filter = EventFilter::parse(&a.filter).map_err(CliError::usage)?;
    let since = a.since.as_deref().map(time_arg).transpose()?;
    let until = a.until.as_deref().map(time_arg).transpose()?;
    let template = a.format.clone();
    let print = |e: &Event| -> Result<(), CliError> {
        let line = match template.as_deref() {
            None => default_line(e),
            Some("json") => serde_json::to_string(e).expect("an event serializes"),
            Some(t) => {
                crate::format::render(t, &serde_json::to_value(e).expect("an event serializes"))
                    .map_err(CliError::usage)?
            }
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout ends the command.
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|_| CliError::new("", 0))
    };
    let e = ctx.engine()?;
    let (history, mut follower) = e
        .journal()
        .snapshot()
        .map_err(|x| CliError::new(format!("events: {x}"), 1))?;
    if since.is_some() {
        for ev in history
            .iter()
            .filter(|ev| in_window(ev, since, until) && filter.matches(ev))
        {
            print(ev)?;
        }
    }
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128)
    };
    while until.is_none_or(|u| now() <= u) {
        for ev in follower.next(std::time::Duration::from_millis(200)) {
            if in_window(&ev, since, until) && filter.matches(&ev) {
                print(&ev)?;
            }
        }
    }
    Ok(0)
}
