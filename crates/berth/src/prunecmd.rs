//! `system prune [-a] [--volumes] [--filter …] [-f]`: Docker's question listing what goes, then
//! each pruner in Docker's order (containers, networks, volumes, images, build cache), each
//! printing its section, and the total reclaimed.

use crate::format::human_size;
use crate::{CliError, CliResult, Ctx};
use berth_engine::filters::Filters;
use berth_engine::Engine;
use clap::Args;

#[derive(Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
}

/// Docker's question: what will go, and the filters that narrow it.
fn warning(a: &SystemPruneArgs) -> String {
    let mut items = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if a.volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    items.push(if a.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut text = String::from("WARNING! This will remove:");
    for i in items {
        text.push_str(&format!("\n  - {i}"));
    }
    let mut filters = a.filter.clone();
    filters.sort();
    if !filters.is_empty() {
        text.push_str("\n\n  Items to be pruned will be filtered with:");
        for f in filters {
            text.push_str(&format!("\n  - {f}"));
        }
    }
    text.push('\n');
    text
}

pub fn system_prune(ctx: &Ctx, a: SystemPruneArgs) -> CliResult {
    let filters = crate::containercmd::parse_filters(&a.filter)?;
    if a.volumes && filters.contains("until") {
        return Err(CliError::new(
            "ERROR: The \"until\" filter is not supported with \"--volumes\"",
            1,
        ));
    }
    if !a.force && !crate::prompt::confirm(&warning(&a)) {
        return Ok(0);
    }
    let e = ctx.engine().map_err(|e| CliError::new(e.message, 1))?;
    let mut total = 0;
    let mut section = |(text, bytes): (String, u64)| {
        total += bytes;
        if !text.is_empty() {
            println!("{text}");
        }
    };
    section(crate::containercmd::prune_containers(&e, &filters)?);
    section(prune_networks(&e, &filters)?);
    if a.volumes {
        section(prune_volumes(&e, &filters)?);
    }
    section(crate::imagecmd::prune_images(&e, a.all, &filters)?);
    // The build cache has no filters of its own yet: a filtered prune leaves it alone.
    if filters.is_empty() {
        section((
            String::new(),
            e.prune_build_cache().map_err(CliError::status1)?,
        ));
    }
    println!("Total reclaimed space: {}", human_size(total));
    Ok(0)
}

fn listing(title: &str, names: Vec<String>) -> String {
    if names.is_empty() {
        return String::new();
    }
    let mut text = format!("{title}\n");
    for n in names {
        text.push_str(&n);
        text.push('\n');
    }
    text
}

fn prune_networks(e: &Engine, filters: &Filters) -> Result<(String, u64), CliError> {
    let gone = e
        .prune_networks_filtered(filters)
        .map_err(CliError::status1)?;
    Ok((listing("Deleted Networks:", gone), 0))
}

fn prune_volumes(e: &Engine, filters: &Filters) -> Result<(String, u64), CliError> {
    let (gone, bytes) =
        berth_engine::volume::prune_filtered(e, false, filters).map_err(CliError::status1)?;
    Ok((listing("Deleted Volumes:", gone), bytes))
}
