//! The commands that read and name local images: images, inspect, history, tag, rmi, prune.
//! Output follows Docker's columns and JSON shapes.

use crate::format::{ago, human_size, print_documents, print_rows};
use crate::{CliError, Ctx};
use berth_engine::filters::Filters;
use berth_engine::images::{familiar, Removed, IMAGE_FILTERS, PRUNE_FILTERS};
use berth_engine::Engine;
use berth_image::digest::Digest;
use berth_sys::units::human_size_precision;
use clap::Args;
use serde_json::{json, Value};
use std::collections::HashSet;

#[derive(Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Filter output based on conditions provided (dangling=, label=, before=, since=, until=, reference=)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go-like template ({{.Repository}}, {{.Tag}}, {{.ID}}, {{.Digest}}, {{.Size}}, {{json .}})
    #[arg(long)]
    format: Option<String>,
    /// Only images whose name matches REPOSITORY[:TAG] (a pattern: busybox, busy*, busybox:1.*)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    repository: Option<String>,
}

#[derive(Args)]
pub struct TagArgs {
    source: String,
    target: String,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Force removal of the image (a tag: only that tag; an ID: every name of it)
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents (berth's images have no parent images: nothing to keep)
    #[arg(long = "no-prune")]
    _no_prune: bool,
    /// Remove the image only if it is this platform (os/arch[/variant]; berth keeps one per
    /// image)
    #[arg(long)]
    platform: Option<String>,
    /// IMAGE...
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    human: bool,
    /// Format output using a Go-like template
    #[arg(long)]
    format: Option<String>,
    /// Show the history only if the image is this platform (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    image: String,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a Go-like template
    #[arg(short, long)]
    format: Option<String>,
    /// NAME...
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (until=<timestamp|duration>, label=<key>[=<value>], label!=…)
    #[arg(long)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

fn short_id(id: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    }
}

/// The engine, for commands whose failures exit 1.
fn engine(ctx: &Ctx) -> Result<Engine, CliError> {
    ctx.engine().map_err(|e| CliError::new(e.message, 1))
}

pub fn images(ctx: &Ctx, a: ImagesArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    let mut raw = a.filter.clone();
    raw.extend(a.repository.iter().map(|r| format!("reference={r}")));
    let filters =
        Filters::parse(&raw, IMAGE_FILTERS).map_err(|x| CliError::new(x.to_string(), 1))?;
    let rows: Vec<Value> = e
        .list_images(&filters)
        .map_err(CliError::status1)?
        .into_iter()
        .map(|r| {
            json!({
                "Repository": r.repository, "Tag": r.tag, "Digest": r.digest,
                "ID": short_id(&r.id, a.no_trunc), "CreatedSince": ago(r.created.as_deref()),
                "CreatedAt": r.created.clone().unwrap_or_default(), "Size": human_size_precision(r.size, 3),
            })
        })
        .collect();
    if a.quiet {
        let mut seen = HashSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or_default().to_string();
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    let mut columns = vec![("REPOSITORY", "Repository"), ("TAG", "Tag")];
    if a.digests {
        columns.push(("DIGEST", "Digest"));
    }
    columns.extend([
        ("IMAGE ID", "ID"),
        ("CREATED", "CreatedSince"),
        ("SIZE", "Size"),
    ]);
    print_rows(&rows, a.format.as_deref(), &columns).map_err(|m| CliError::new(m, 1))
}

pub fn tag(ctx: &Ctx, a: TagArgs) -> Result<(), CliError> {
    engine(ctx)?
        .tag_image(&a.source, &a.target)
        .map_err(CliError::status1)
}

/// `rmi IMAGE…`: each image's lines as it goes; the failures, one line each as Docker prints
/// them, at the end (status 1).
pub fn rmi(ctx: &Ctx, a: RmiArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    let mut failed = Vec::new();
    for name in &a.images {
        let removed = e
            .image_on_platform(name, a.platform.as_deref())
            .and_then(|_| e.remove_image(name, a.force));
        match removed {
            Ok(lines) => print_removed(&lines),
            Err(x) => failed.push(x.to_string()),
        }
    }
    e.collect_garbage().map_err(CliError::status1)?;
    for f in &failed {
        eprintln!("Error: {f}");
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(CliError::reported(1)),
    }
}

fn print_removed(lines: &[Removed]) {
    for l in lines {
        match l {
            Removed::Untagged(t) => println!("Untagged: {t}"),
            Removed::Deleted(id) => println!("Deleted: {id}"),
        }
    }
}

pub fn history(ctx: &Ctx, a: HistoryArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    e.image_on_platform(&a.image, a.platform.as_deref())
        .map_err(CliError::status1)?;
    let rows: Vec<Value> = e
        .image_history(&a.image)
        .map_err(CliError::status1)?
        .into_iter()
        .map(|h| {
            let id = match &h.id {
                Some(id) => short_id(id, a.no_trunc),
                None => "<missing>".into(),
            };
            let mut created_by = h.created_by;
            if !a.no_trunc && created_by.chars().count() > 45 {
                created_by = created_by.chars().take(44).collect::<String>() + "…";
            }
            // Docker's CreatedAt is RFC 3339 to the second; -H=false shows it and bytes.
            let created_at = h
                .created
                .as_deref()
                .and_then(berth_sys::time::parse_rfc3339)
                .map(berth_sys::time::rfc3339)
                .unwrap_or_default();
            let (since, size) = if a.human {
                (ago(h.created.as_deref()), human_size_precision(h.size, 3))
            } else {
                (created_at.clone(), h.size.to_string())
            };
            json!({"ID": id, "CreatedSince": since, "CreatedAt": created_at,
                "CreatedBy": created_by, "Size": size, "Comment": h.comment})
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let columns = [
        ("IMAGE", "ID"),
        if a.human {
            ("CREATED", "CreatedSince")
        } else {
            ("CREATED AT", "CreatedAt")
        },
        ("CREATED BY", "CreatedBy"),
        ("SIZE", "Size"),
        ("COMMENT", "Comment"),
    ];
    print_rows(&rows, a.format.as_deref(), &columns).map_err(|m| CliError::new(m, 1))
}

/// The image `name` as an inspect document, None when there is no such image.
fn image_doc(e: &Engine, name: &str) -> Option<Result<Value, CliError>> {
    let img = e.image(name).ok()?;
    Some(
        e.inspect_image(&img)
            .map(|d| serde_json::to_value(d).expect("inspect serializes"))
            .map_err(CliError::status1),
    )
}

pub fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    print_inspected(&a, "image", |n| image_doc(&e, n))
}

/// Prints the documents `find` gives for the names (a JSON array, or `--format` per document),
/// then fails naming what was not found, as Docker does.
fn print_inspected(
    a: &InspectArgs,
    kind: &str,
    find: impl Fn(&str) -> Option<Result<Value, CliError>>,
) -> Result<(), CliError> {
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for n in &a.names {
        match find(n) {
            Some(doc) => docs.push(doc?),
            None => missing.push(n.clone()),
        }
    }
    print_documents(a.format.as_deref(), docs).map_err(|m| CliError::new(m, 1))?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            format!("No such {kind}: {}", missing.join(", ")),
            1,
        ))
    }
}

/// `container inspect [-s] NAME…`.
#[derive(Args)]
pub struct ContainerInspectArgs {
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
    #[command(flatten)]
    inspect: InspectArgs,
}

/// The container `name` as an inspect document (with `SizeRw` and `SizeRootFs` when `size`),
/// None when there is no such container.
fn container_doc(e: &Engine, name: &str, size: bool) -> Option<Result<Value, CliError>> {
    let r = e.get(name).ok()?;
    let mut doc = serde_json::to_value(e.inspect_container(&r)).expect("inspect serializes");
    if size {
        let (rw, root) = e.container_sizes(&r);
        doc["SizeRw"] = json!(rw);
        doc["SizeRootFs"] = json!(root);
    }
    Some(Ok(doc))
}

/// `container inspect NAME…`: containers only.
pub fn inspect_containers(ctx: &Ctx, a: ContainerInspectArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    print_inspected(&a.inspect, "container", |n| container_doc(&e, n, a.size))
}

/// `inspect [--type TYPE] [-s] NAME…`: any object berth has.
#[derive(Args)]
pub struct ObjectInspectArgs {
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type")]
    kind: Option<String>,
    #[command(flatten)]
    inspect: InspectArgs,
}

/// `inspect NAME…`: containers first, then images, networks and volumes, as Docker looks them
/// up; `--type` keeps one kind, `-s` adds a container's `SizeRw` and `SizeRootFs`.
pub fn inspect_any(ctx: &Ctx, a: ObjectInspectArgs) -> Result<(), CliError> {
    let kind = a.kind.as_deref().unwrap_or("");
    if !matches!(kind, "" | "container" | "image" | "network" | "volume") {
        return Err(CliError::new(
            format!("{kind:?} is not a valid value for --type"),
            1,
        ));
    }
    let e = engine(ctx)?;
    let wants = |k: &str| kind.is_empty() || kind == k;
    let what = if kind.is_empty() { "object" } else { kind };
    print_inspected(&a.inspect, what, |n| {
        None.or_else(|| {
            wants("container")
                .then(|| container_doc(&e, n, a.size))
                .flatten()
        })
        .or_else(|| wants("image").then(|| image_doc(&e, n)).flatten())
        .or_else(|| {
            let d = e.inspect_network(n).ok().filter(|_| wants("network"))?;
            Some(Ok(serde_json::to_value(d).expect("inspect serializes")))
        })
        .or_else(|| {
            let v = berth_engine::volume::get(&e, n)
                .ok()
                .filter(|_| wants("volume"))?;
            Some(Ok(v.inspect_json()))
        })
    })
}

/// `image prune [-a] [--filter …] [-f]`: Docker's question, then the images removed.
pub fn prune(ctx: &Ctx, a: PruneArgs) -> Result<(), CliError> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    let filters =
        Filters::parse(&a.filter, PRUNE_FILTERS).map_err(|x| CliError::new(x.to_string(), 1))?;
    if !a.force && !crate::prompt::confirm(warning) {
        return Ok(());
    }
    let (text, freed) = prune_images(&engine(ctx)?, a.all, &filters)?;
    print!("{text}");
    if !text.is_empty() {
        println!();
    }
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}

/// Prunes images; returns Docker's `Deleted Images:` section (empty when none went) and the bytes
/// freed. Shared with `system prune`.
pub fn prune_images(e: &Engine, all: bool, filters: &Filters) -> Result<(String, u64), CliError> {
    let (removed, freed) = e
        .prune_images_filtered(all, filters)
        .map_err(CliError::status1)?;
    let mut text = String::new();
    if !removed.is_empty() {
        text.push_str("Deleted Images:\n");
        for r in &removed {
            for t in r.repo_tags.iter().chain(r.repo_digests.iter()) {
                text.push_str(&format!("untagged: {}\n", familiar(t)));
            }
            text.push_str(&format!("deleted: {}\n", r.id));
        }
    }
    Ok((text, freed))
}
