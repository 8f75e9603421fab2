//! `system df [-v] [--format …]`: Docker's summary (TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE for
//! images, containers, local volumes and the build cache) and, verbose, its four tables. The
//! engine counts (`Engine::system_usage`); this file computes Docker's columns and prints.

use crate::format::{ago, human_size, print_rows};
use crate::{CliError, Ctx};
use berth_engine::record::Record;
use berth_engine::usage::{ContainerUsage, ImageUsage, SystemUsage, VolumeUsage};
use berth_image::reference::Reference;
use berth_sys::units::human_size_precision;
use clap::Args;
use serde_json::{json, Value};

#[derive(Args)]
pub struct DfArgs {
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template
    #[arg(long)]
    format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
}

/// `SIZE (PCT%)` as Docker's formatter writes a reclaimable share.
fn share(part: u64, total: u64) -> String {
    if total == 0 {
        return human_size(part);
    }
    format!(
        "{} ({}%)",
        human_size(part),
        (part as u128 * 100 / total as u128)
    )
}

fn summary_row(kind: &str, total: usize, active: usize, size: u64, reclaimable: String) -> Value {
    json!({"Type": kind, "TotalCount": total.to_string(), "Active": active.to_string(),
        "Size": human_size(size), "Reclaimable": reclaimable})
}

/// The four summary rows, figured as Docker's CLI figures them.
fn summary(u: &SystemUsage) -> Vec<Value> {
    let active_images: Vec<&ImageUsage> = u.images.iter().filter(|i| i.containers > 0).collect();
    let used: u64 = active_images
        .iter()
        .map(|i| i.size.saturating_sub(i.shared_size))
        .sum();
    let running = |c: &&ContainerUsage| c.record.is_active();
    let rw_total: u64 = u.containers.iter().map(|c| c.size_rw).sum();
    let rw_idle: u64 = u
        .containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| c.size_rw)
        .sum();
    let vol_total: u64 = u.volumes.iter().map(|v| v.size).sum();
    let vol_idle: u64 = u
        .volumes
        .iter()
        .filter(|v| v.links == 0)
        .map(|v| v.size)
        .sum();
    let cache = u.build_cache_size();
    vec![
        summary_row(
            "Images",
            u.images.len(),
            active_images.len(),
            u.layers_size,
            share(u.layers_size.saturating_sub(used), u.layers_size),
        ),
        summary_row(
            "Containers",
            u.containers.len(),
            u.containers.iter().filter(running).count(),
            rw_total,
            share(rw_idle, rw_total),
        ),
        summary_row(
            "Local Volumes",
            u.volumes.len(),
            u.volumes.iter().filter(|v| v.links > 0).count(),
            vol_total,
            share(vol_idle, vol_total),
        ),
        summary_row(
            "Build Cache",
            u.build_cache.records,
            0,
            cache,
            human_size(cache),
        ),
    ]
}

pub fn df(ctx: &Ctx, a: DfArgs) -> Result<(), CliError> {
    let e = ctx.engine().map_err(|e| CliError::new(e.message, 1))?;
    let u = e.system_usage().map_err(CliError::status1)?;
    let custom = a.format.as_deref().filter(|f| *f != "table");
    if a.verbose {
        if custom.is_some() {
            return Err(CliError::usage(
                "--format with --verbose: only the default table is supported",
            ));
        }
        return verbose(&u);
    }
    let columns = [
        ("TYPE", "Type"),
        ("TOTAL", "TotalCount"),
        ("ACTIVE", "Active"),
        ("SIZE", "Size"),
        ("RECLAIMABLE", "Reclaimable"),
    ];
    print_rows(&summary(&u), custom, &columns).map_err(CliError::usage)
}

fn verbose(u: &SystemUsage) -> Result<(), CliError> {
    let table = |rows: Vec<Value>, columns: &[(&str, &str)]| {
        print_rows(&rows, None, columns).map_err(CliError::usage)
    };
    println!("Images space usage:\n");
    table(
        u.images.iter().map(image_row).collect(),
        &[
            ("REPOSITORY", "Repository"),
            ("TAG", "Tag"),
            ("IMAGE ID", "ID"),
            ("CREATED", "CreatedSince"),
            ("SIZE", "Size"),
            ("SHARED SIZE", "SharedSize"),
            ("UNIQUE SIZE", "UniqueSize"),
            ("CONTAINERS", "Containers"),
        ],
    )?;
    println!("\nContainers space usage:\n");
    table(
        u.containers.iter().map(container_row).collect(),
        &[
            ("CONTAINER ID", "ID"),
            ("IMAGE", "Image"),
            ("COMMAND", "Command"),
            ("LOCAL VOLUMES", "LocalVolumes"),
            ("SIZE", "Size"),
            ("CREATED", "RunningFor"),
            ("STATUS", "Status"),
            ("NAMES", "Names"),
        ],
    )?;
    println!("\nLocal Volumes space usage:\n");
    table(
        u.volumes.iter().map(volume_row).collect(),
        &[
            ("VOLUME NAME", "Name"),
            ("LINKS", "Links"),
            ("SIZE", "Size"),
        ],
    )?;
    let cache = u.build_cache_size();
    println!("\nBuild cache usage: {}\n", human_size(cache));
    table(
        u.build_cache_items.iter().map(cache_row).collect(),
        &[
            ("CACHE ID", "ID"),
            ("CACHE TYPE", "CacheType"),
            ("SIZE", "Size"),
            ("CREATED", "CreatedSince"),
            ("LAST USED", "LastUsedSince"),
            ("USAGE", "UsageCount"),
            ("SHARED", "Shared"),
        ],
    )
}

/// An image under its first tag (`<none>` when it has none), as Docker's verbose table shows it.
fn image_row(i: &ImageUsage) -> Value {
    let (repo, tag) = i
        .repo_tags
        .first()
        .and_then(|t| Reference::parse(t).ok())
        .map(|r| (r.familiar_name(), r.tag.unwrap_or_else(|| "<none>".into())))
        .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
    json!({"Repository": repo, "Tag": tag, "ID": i.id.short().to_string(),
        "CreatedSince": ago(i.created.as_deref()), "Size": human_size_precision(i.size, 3),
        "SharedSize": human_size(i.shared_size), "UniqueSize": human_size(i.size.saturating_sub(i.shared_size)),
        "Containers": i.containers.to_string()})
}

fn container_row(c: &ContainerUsage) -> Value {
    let r = &c.record;
    json!({"ID": &r.id[..12], "Image": r.image, "Command": command_text(r),
        "LocalVolumes": c.volumes.to_string(), "Size": human_size_precision(c.size_rw, 3),
        "RunningFor": ago(Some(&r.created)), "Status": status_text(r), "Names": r.name})
}

fn cache_row(c: &berth_engine::build::CacheItem) -> Value {
    let last = berth_sys::time::rfc3339(c.last_used);
    json!({"ID": c.id.chars().take(12).collect::<String>(), "CacheType": "regular",
        "Size": human_size(c.size), "CreatedSince": ago(Some(&c.created)),
        "LastUsedSince": ago(Some(&last)), "UsageCount": "0",
        "Shared": c.shared.to_string()})
}

fn volume_row(v: &VolumeUsage) -> Value {
    json!({"Name": v.name, "Links": v.links.to_string(), "Size": human_size(v.size)})
}

/// Docker's COMMAND column: the command line quoted, cut to 20 characters with `…`.
fn command_text(r: &Record) -> String {
    let mut command = std::iter::once(r.path.clone())
        .chain(r.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    if command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    format!("\"{command}\"")
}

/// Docker's STATUS column: `Up 3 minutes`, `Exited (0) 2 seconds ago`, `Created`.
fn status_text(r: &Record) -> String {
    let since = |t: &str| ago(Some(t)).trim_end_matches(" ago").to_string();
    match r.state.status.as_str() {
        "running" => format!("Up {}", since(&r.state.started_at)),
        "paused" => format!("Up {} (Paused)", since(&r.state.started_at)),
        "restarting" => format!(
            "Restarting ({}) {}",
            r.state.exit_code,
            ago(Some(&r.state.finished_at))
        ),
        "exited" => format!(
            "Exited ({}) {}",
            r.state.exit_code,
            ago(Some(&r.state.finished_at))
        ),
        "created" => "Created".into(),
        other => other.into(),
    }
}
