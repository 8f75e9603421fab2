//! `stats`: Docker's table (CPU %, MEM USAGE / LIMIT, MEM %, NET I/O, BLOCK I/O, PIDS), a new
//! frame every second drawn in place on a terminal (`--no-stream`: one frame), any `--format`.
//! The engine samples the counters; this file only computes Docker's figures and prints.

use crate::{CliError, CliResult, Ctx};
use berth_engine::record::Record;
use berth_engine::stats::ContainerStats;
use berth_engine::Engine;
use berth_sys::units::{bytes_size, human_size_precision};
use berth_template::Format;
use clap::Args;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template
    #[arg(long)]
    format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// CONTAINER...
    containers: Vec<String>,
}

/// How often a frame is drawn (Docker's daemon samples once a second).
const INTERVAL: Duration = Duration::from_secs(1);

const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

const HEADERS: [(&str, &str); 9] = [
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// A container shown: what the user called it (Docker's `.Container`) and its ID.
struct Watched {
    given: String,
    id: String,
}

pub fn stats(ctx: &Ctx, a: StatsArgs) -> CliResult {
    let format = Format::with_default(a.format.as_deref().unwrap_or(""), DEFAULT_FORMAT)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let e = ctx.engine()?;
    let named = resolve(&e, &a.containers)?;
    let terminal = std::io::stdout().is_terminal();
    let mut prev: HashMap<String, ContainerStats> = HashMap::new();
    let mut first = true;
    loop {
        let shown = match &named {
            Some(n) => current(&e, n),
            None => listed(&e, a.all),
        };
        let samples: Vec<(String, ContainerStats)> = shown
            .iter()
            .map(|(given, r)| (given.clone(), e.container_stats(r, prev.get(&r.id))))
            .collect();
        // CPU % needs two samples: the first frame waits one interval for its second.
        if first {
            first = false;
            prev = samples
                .into_iter()
                .map(|(_, s)| (s.id.clone(), s))
                .collect();
            std::thread::sleep(INTERVAL);
            continue;
        }
        let rows: Vec<Value> = samples
            .iter()
            .map(|(given, s)| row(given, s, !a.no_trunc))
            .collect();
        let text = render(&format, &rows)?;
        draw(&text, terminal && !a.no_stream);
        if a.no_stream || (rows.is_empty() && named.is_none() && !a.all) {
            return Ok(0);
        }
        prev = samples
            .into_iter()
            .map(|(_, s)| (s.id.clone(), s))
            .collect();
        std::thread::sleep(INTERVAL);
    }
}

/// The containers the user named, each checked now; every missing one is reported (one line
/// each, as Docker prints them) and the command fails.
fn resolve(e: &Engine, names: &[String]) -> Result<Option<Vec<Watched>>, CliError> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut missing = false;
    for n in names {
        match e.get(n) {
            Ok(r) => out.push(Watched {
                given: n.clone(),
                id: r.id,
            }),
            Err(x) => {
                eprintln!("Error: {x}");
                missing = true;
            }
        }
    }
    if missing {
        return Err(CliError::reported(1));
    }
    Ok(Some(out))
}

/// The named containers as they are now (one removed meanwhile is left out).
fn current(e: &Engine, named: &[Watched]) -> Vec<(String, Record)> {
    named
        .iter()
        .filter_map(|w| e.get(&w.id).ok().map(|r| (w.given.clone(), r)))
        .collect()
}

/// Every running container (every one with `all`), newest first, known by its short ID.
fn listed(e: &Engine, all: bool) -> Vec<(String, Record)> {
    let mut recs: Vec<Record> = e
        .list()
        .into_iter()
        .filter(|r| all || matches!(r.state.status.as_str(), "running" | "paused"))
        .collect();
    recs.sort_by(|x, y| y.created.cmp(&x.created));
    recs.into_iter()
        .map(|r| (r.id[..12].to_string(), r))
        .collect()
}

/// One container's row: Docker's stats entry fields, formatted as its CLI formats them.
fn row(given: &str, s: &ContainerStats, trunc: bool) -> Value {
    let id = if trunc { &s.id[..12] } else { s.id.as_str() };
    let (rx, tx) = s.net_bytes();
    let (read, write) = s.block_bytes();
    let size = |n| human_size_precision(n, 3);
    json!({
        "Container": given,
        "ID": id,
        "Name": s.name.trim_start_matches('/'),
        "CPUPerc": format!("{:.2}%", s.cpu_percent()),
        "MemUsage": format!(
            "{} / {}",
            bytes_size(s.memory_used()),
            bytes_size(s.memory_stats.limit)
        ),
        "MemPerc": format!("{:.2}%", s.memory_percent()),
        "NetIO": format!("{} / {}", size(rx), size(tx)),
        "BlockIO": format!("{} / {}", size(read), size(write)),
        "PIDs": s.pids_stats.current.to_string(),
    })
}

fn render(format: &Format, rows: &[Value]) -> Result<String, CliError> {
    let headers: HashMap<&str, &str> = HEADERS.into_iter().collect();
    format
        .render_rows(rows, &headers)
        .map_err(|e| CliError::usage(e.to_string()))
}

/// Prints a frame: on a terminal over the previous one (cursor home, each line cleared to its
/// end, the rest of the screen cleared), else as plain lines.
fn draw(text: &str, in_place: bool) {
    let mut out = std::io::stdout().lock();
    if !in_place {
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        return;
    }
    let mut frame = String::from("\x1b[H");
    for line in text.lines() {
        frame.push_str(line);
        frame.push_str("\x1b[K\n");
    }
    frame.push_str("\x1b[J");
    let _ = out.write_all(frame.as_bytes());
    let _ = out.flush();
}
