//! The commands that read and name local images: images, inspect, history, tag, rmi, prune,
//! system df. Output follows Docker's columns and JSON shapes.

use crate::format::{ago, human_size, print_documents, print_rows, print_table};
use crate::{CliError, Ctx, DfArgs};
use berth_engine::images::{familiar, Removed};
use berth_engine::Engine;
use berth_image::digest::Digest;
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
    /// Format output using a Go-like template ({{.Repository}}, {{.Tag}}, {{.ID}}, {{.Digest}}, {{.Size}}, {{json .}})
    #[arg(long)]
    format: Option<String>,
    /// Only images of this repository[:tag]
    repository: Option<String>,
}

#[derive(Args)]
pub struct TagArgs {
    source: String,
    target: String,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Force removal of the image (all its tags)
    #[arg(short, long)]
    force: bool,
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
    /// Format output using a Go-like template
    #[arg(long)]
    format: Option<String>,
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
    let rows: Vec<Value> = e
        .image_rows(a.repository.as_deref())
        .map_err(CliError::status1)?
        .into_iter()
        .map(|r| {
            json!({
                "Repository": r.repository, "Tag": r.tag, "Digest": r.digest,
                "ID": short_id(&r.id, a.no_trunc), "CreatedSince": ago(r.created.as_deref()),
                "CreatedAt": r.created.clone().unwrap_or_default(), "Size": human_size(r.size),
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

pub fn rmi(ctx: &Ctx, a: RmiArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    let mut failed = Vec::new();
    for name in &a.images {
        match e.remove_image(name, a.force) {
            Ok(lines) => {
                for l in lines {
                    match l {
                        Removed::Untagged(t) => println!("Untagged: {t}"),
                        Removed::Deleted(id) => println!("Deleted: {id}"),
                    }
                }
            }
            Err(x) => {
                eprintln!("Error: {x}");
                failed.push(name.clone());
            }
        }
    }
    e.collect_garbage().map_err(CliError::status1)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            format!("failed to remove {}", failed.join(", ")),
            1,
        ))
    }
}

pub fn history(ctx: &Ctx, a: HistoryArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
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
            json!({"ID": id, "CreatedSince": ago(h.created.as_deref()), "CreatedAt": h.created.unwrap_or_default(),
                "CreatedBy": created_by, "Size": human_size(h.size), "Comment": h.comment})
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
        ("CREATED", "CreatedSince"),
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

/// `inspect NAME…`: containers first, then images, as Docker does.
pub fn inspect_any(ctx: &Ctx, a: InspectArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    print_inspected(&a, "object", |n| match e.get(n) {
        Ok(r) => Some(Ok(
            serde_json::to_value(e.inspect_container(&r)).expect("inspect serializes")
        )),
        Err(_) => image_doc(&e, n),
    })
}

pub fn prune(ctx: &Ctx, a: PruneArgs) -> Result<(), CliError> {
    let _ = a.force; // accepted as Docker's: berth never asks for confirmation
    let (removed, freed) = engine(ctx)?
        .prune_images(a.all)
        .map_err(CliError::status1)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            for t in &r.repo_tags {
                println!("untagged: {}", familiar(t));
            }
            println!("deleted: {}", r.id);
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}

pub fn df(ctx: &Ctx, a: DfArgs) -> Result<(), CliError> {
    let du = engine(ctx)?.disk_usage().map_err(CliError::status1)?;
    print_table(
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &[vec![
            "Images".into(),
            du.images.to_string(),
            "0".into(),
            human_size(du.on_disk),
            human_size(0),
        ]],
    );
    println!();
    println!(
        "Layers: {} unpacked, {} on disk; images add up to {} — shared layers save {}",
        du.layers.len(),
        human_size(du.on_disk),
        human_size(du.sum_of_images),
        human_size(du.sum_of_images.saturating_sub(du.on_disk))
    );
    println!(
        "Blobs (compressed, kept for push and save): {}",
        human_size(du.blobs)
    );
    if a.verbose {
        println!();
        let rows: Vec<Vec<String>> = du
            .layers
            .iter()
            .map(|(chain, size, users)| {
                vec![
                    chain.short().to_string(),
                    human_size(*size),
                    users.to_string(),
                ]
            })
            .collect();
        print_table(&["LAYER (CHAIN ID)", "SIZE", "IMAGES"], &rows);
    }
    Ok(())
}
