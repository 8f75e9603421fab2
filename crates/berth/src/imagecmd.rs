//! The commands that read and name local images: images, inspect, history, tag, rmi, prune,
//! system df. Output follows Docker's columns and JSON shapes.

use crate::format::{ago, human_size, print_rows, print_table, render};
use crate::{Ctx, DfArgs};
use berth_image::images::ImageRecord;
use berth_image::manifest::{ImageConfig, MAX_MANIFEST_BYTES};
use berth_image::pull::MAX_CONFIG_BYTES;
use berth_image::reference::Reference;
use berth_image::store::Store;
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

fn config_of(store: &Store, img: &ImageRecord) -> Result<(ImageConfig, Value), String> {
    let bytes = store
        .content
        .read(&img.id, MAX_CONFIG_BYTES)
        .map_err(|e| e.to_string())?;
    let typed = ImageConfig::parse(&bytes).map_err(|e| format!("config {}: {e}", img.id))?;
    let raw = serde_json::from_slice(&bytes).map_err(|e| format!("config {}: {e}", img.id))?;
    Ok((typed, raw))
}

fn split_tag(t: &str) -> (String, String) {
    match Reference::parse(t) {
        Ok(r) => (r.familiar_name(), r.tag.unwrap_or_else(|| "<none>".into())),
        Err(_) => ("<none>".into(), "<none>".into()),
    }
}

fn short_id(img: &ImageRecord, no_trunc: bool) -> String {
    if no_trunc {
        img.id.to_string()
    } else {
        img.id.short().to_string()
    }
}

pub fn images(ctx: &Ctx, a: ImagesArgs) -> Result<(), String> {
    let store = ctx.store()?;
    let index = store.index().map_err(|e| e.to_string())?;
    let filter = a
        .repository
        .as_deref()
        .map(Reference::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let explicit_tag = a
        .repository
        .as_deref()
        .is_some_and(|r| r.rsplit('/').next().unwrap_or("").contains(':'));
    let mut imgs: Vec<&ImageRecord> = index.images.values().collect();
    imgs.sort_by(|x, y| y.created.cmp(&x.created).then(y.added.cmp(&x.added)));
    let mut rows: Vec<Value> = Vec::new();
    for img in imgs {
        let digest_of = |repo: &str| {
            img.repo_digests
                .iter()
                .filter_map(|d| d.rsplit_once('@'))
                .find(|(name, _)| {
                    Reference::parse(name)
                        .map(|r| r.familiar_name() == repo)
                        .unwrap_or(false)
                })
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| "<none>".into())
        };
        let mut names: Vec<(String, String)> = img.repo_tags.iter().map(|t| split_tag(t)).collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            if let Some(f) = &filter {
                if repo != f.familiar_name() || (explicit_tag && Some(&tag) != f.tag.as_ref()) {
                    continue;
                }
            }
            rows.push(json!({
                "Repository": repo, "Tag": tag, "Digest": digest_of(&repo),
                "ID": short_id(img, a.no_trunc), "CreatedSince": ago(img.created.as_deref()),
                "CreatedAt": img.created.clone().unwrap_or_default(), "Size": human_size(img.size),
            }));
        }
    }
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
    print_rows(&rows, a.format.as_deref(), &columns)
}

pub fn tag(ctx: &Ctx, a: TagArgs) -> Result<(), String> {
    let store = ctx.store()?;
    let img = store.find(&a.source).map_err(|e| e.to_string())?;
    let target = Reference::parse(&a.target).map_err(|e| e.to_string())?;
    if target.digest.is_some() {
        return Err(format!(
            "refusing to create a tag with a digest reference: {}",
            a.target
        ));
    }
    store
        .update_index(|idx| {
            idx.tag(&img.id, &target.to_string());
            Ok(())
        })
        .map_err(|e| e.to_string())
}

pub fn rmi(ctx: &Ctx, a: RmiArgs) -> Result<(), String> {
    let store = ctx.store()?;
    let mut failed = Vec::new();
    let users = container_users(ctx);
    for name in &a.images {
        if let Err(e) = rmi_one(&store, name, a.force, &users) {
            eprintln!("Error: {e}");
            failed.push(name.clone());
        }
    }
    store
        .gc(&snapshot_layers(ctx, &store))
        .map_err(|e| e.to_string())?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed to remove {}", failed.join(", ")))
    }
}

/// Untags `name`; removes the image when it has no tags left (or with `force`, all of them).
/// Image ID -> (container short ID, running?) of every container made from it.
fn container_users(ctx: &Ctx) -> Vec<(String, String, bool)> {
    let Ok(records) = berth_engine::record::Records::open(&ctx.root) else {
        return Vec::new();
    };
    records
        .list()
        .into_iter()
        .map(|r| {
            (
                r.image_id,
                r.id[..12].to_string(),
                matches!(r.state.status.as_str(), "running" | "paused" | "restarting"),
            )
        })
        .collect()
}

/// The layers containers' snapshots stand on: gc must keep them even when no image names them.
fn snapshot_layers(ctx: &Ctx, store: &Store) -> HashSet<berth_image::digest::Digest> {
    berth_image::snapshot::Snapshots::open(&ctx.root, store.layers.clone())
        .map(|s| s.live_layers().into_iter().collect())
        .unwrap_or_default()
}

fn rmi_one(
    store: &Store,
    name: &str,
    force: bool,
    users: &[(String, String, bool)],
) -> Result<(), String> {
    let by_tag = Reference::parse(name)
        .ok()
        .filter(|r| r.digest.is_none())
        .map(|r| r.to_string());
    store
        .update_index(|idx| {
            let img = idx.find(name).cloned().ok_or_else(|| berth_image::store::StoreError::NoSuchImage(name.to_string()))?;
            let rec = idx.images.get_mut(&img.id.to_string()).expect("found above");
            let named_by_tag = by_tag.as_ref().filter(|t| rec.repo_tags.contains(t));
            match named_by_tag {
                Some(t) if rec.repo_tags.len() > 1 && !force => {
                    rec.repo_tags.retain(|x| x != t);
                    println!("Untagged: {}", familiar(t));
                }
                _ => {
                    let id = img.id.to_string();
                    if let Some((_, c, running)) = users.iter().find(|(i, _, running)| *i == id && (*running || !force)) {
                        return Err(berth_image::store::StoreError::Conflict(format!(
                            "conflict: unable to delete {} ({}) - image is being used by {} container {c}",
                            img.id.short(),
                            if *running { "cannot be forced" } else { "must be forced" },
                            if *running { "running" } else { "stopped" },
                        )));
                    }
                    if rec.repo_tags.len() > 1 && !force {
                        return Err(berth_image::store::StoreError::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            img.id.short()
                        )));
                    }
                    for t in &rec.repo_tags {
                        println!("Untagged: {}", familiar(t));
                    }
                    for d in &rec.repo_digests {
                        println!("Untagged: {}", familiar(d));
                    }
                    idx.images.remove(&img.id.to_string());
                    println!("Deleted: {}", img.id);
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
}

fn familiar(full: &str) -> String {
    match Reference::parse(full) {
        Ok(r) => {
            let mut s = r.familiar_name();
            if let Some(t) = &r.tag {
                s.push(':');
                s.push_str(t);
            }
            if let Some(d) = &r.digest {
                s.push('@');
                s.push_str(&d.to_string());
            }
            s
        }
        Err(_) => full.to_string(),
    }
}

pub fn history(ctx: &Ctx, a: HistoryArgs) -> Result<(), String> {
    let store = ctx.store()?;
    let img = store.find(&a.image).map_err(|e| e.to_string())?;
    let (config, _) = config_of(&store, &img)?;
    let mut layer_sizes = img
        .layers
        .iter()
        .rev()
        .map(|c| store.layers.info(c).map(|i| i.size).unwrap_or(0));
    let mut rows = Vec::new();
    for (i, h) in config.history.iter().rev().enumerate() {
        let size = if h.empty_layer {
            0
        } else {
            layer_sizes.next().unwrap_or(0)
        };
        let id = if i == 0 {
            short_id(&img, a.no_trunc)
        } else {
            "<missing>".into()
        };
        let mut created_by = h.created_by.clone().unwrap_or_default();
        if !a.no_trunc && created_by.chars().count() > 45 {
            created_by = created_by.chars().take(44).collect::<String>() + "…";
        }
        rows.push(json!({"ID": id, "CreatedSince": ago(h.created.as_deref()), "CreatedAt": h.created.clone().unwrap_or_default(),
            "CreatedBy": created_by, "Size": human_size(size), "Comment": h.comment.clone().unwrap_or_default()}));
    }
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
    print_rows(&rows, a.format.as_deref(), &columns)
}

/// Docker's `image inspect` document for one image.
pub fn inspect_json(store: &Store, img: &ImageRecord) -> Result<Value, String> {
    let (config, raw) = config_of(store, img)?;
    let diff_ids: Vec<String> = config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| d.to_string())
        .collect();
    let familiar_tags: Vec<String> = img.repo_tags.iter().map(|t| familiar(t)).collect();
    let familiar_digests: Vec<String> = img.repo_digests.iter().map(|t| familiar(t)).collect();
    let lowers: Vec<String> = img
        .layers
        .iter()
        .rev()
        .map(|c| store.layers.diff_dir(c).display().to_string())
        .collect();
    let manifest_size = store
        .content
        .read(&img.manifest, MAX_MANIFEST_BYTES)
        .map(|b| b.len())
        .unwrap_or(0);
    Ok(json!({
        "Id": img.id.to_string(),
        "RepoTags": familiar_tags,
        "RepoDigests": familiar_digests,
        "Parent": "",
        "Comment": config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": img.created.clone().unwrap_or_default(),
        "DockerVersion": raw.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": raw.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": img.size,
        "GraphDriver": {"Name": "overlay2", "Data": {"LowerDir": lowers.join(":")}},
        "RootFS": {"Type": "layers", "Layers": diff_ids},
        "Metadata": {"LastTagTime": img.added},
        "Descriptor": {"mediaType": img.manifest_media_type, "digest": img.manifest.to_string(), "size": manifest_size},
    }))
}

pub fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<(), String> {
    let store = ctx.store()?;
    print_inspected(&a, "image", |n| {
        store.find(n).ok().map(|img| inspect_json(&store, &img))
    })
}

/// Prints the documents `find` gives for the names (a JSON array, or `--format` per document),
/// then fails naming what was not found, as Docker does.
fn print_inspected(
    a: &InspectArgs,
    kind: &str,
    find: impl Fn(&str) -> Option<Result<Value, String>>,
) -> Result<(), String> {
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for n in &a.names {
        match find(n) {
            Some(doc) => docs.push(doc?),
            None => missing.push(n.clone()),
        }
    }
    match &a.format {
        Some(f) => {
            for d in &docs {
                println!("{}", render(f, d)?);
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(docs)).expect("serializes")
        ),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("No such {kind}: {}", missing.join(", ")))
    }
}

/// `inspect NAME…`: containers first, then images.
pub fn inspect_any(ctx: &Ctx, a: InspectArgs) -> Result<(), String> {
    let engine = berth_engine::Engine::open(&ctx.root, &ctx.runroot).map_err(|e| e.to_string())?;
    let store = ctx.store()?;
    print_inspected(&a, "object", |n| match engine.get(n) {
        Ok(r) => Some(Ok(crate::containers::inspect_json(&engine, &r))),
        Err(_) => store.find(n).ok().map(|img| inspect_json(&store, &img)),
    })
}

pub fn prune(ctx: &Ctx, a: PruneArgs) -> Result<(), String> {
    let _ = a.force; // accepted as Docker's: berth never asks for confirmation
    let store = ctx.store()?;
    let users = container_users(ctx);
    let removed = store
        .update_index(|idx| {
            let doomed: Vec<String> = idx
                .images
                .iter()
                .filter(|(k, r)| {
                    (a.all || r.repo_tags.is_empty()) && !users.iter().any(|(i, _, _)| i == *k)
                })
                .map(|(k, _)| k.clone())
                .collect();
            Ok(doomed
                .into_iter()
                .filter_map(|k| idx.images.remove(&k))
                .collect::<Vec<_>>())
        })
        .map_err(|e| e.to_string())?;
    let freed = store
        .gc(&snapshot_layers(ctx, &store))
        .map_err(|e| e.to_string())?;
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

pub fn df(ctx: &Ctx, a: DfArgs) -> Result<(), String> {
    let store = ctx.store()?;
    let index = store.index().map_err(|e| e.to_string())?;
    let layers = store.layers.list();
    let on_disk: u64 = layers.iter().map(|l| l.size).sum();
    let sum_of_images: u64 = index.images.values().map(|i| i.size).sum();
    let blobs: u64 = store
        .content
        .list()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|(_, s)| s)
        .sum();
    print_table(
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &[vec![
            "Images".into(),
            index.images.len().to_string(),
            "0".into(),
            human_size(on_disk),
            human_size(0),
        ]],
    );
    println!();
    println!(
        "Layers: {} unpacked, {} on disk; images add up to {} — shared layers save {}",
        layers.len(),
        human_size(on_disk),
        human_size(sum_of_images),
        human_size(sum_of_images.saturating_sub(on_disk))
    );
    println!(
        "Blobs (compressed, kept for push and save): {}",
        human_size(blobs)
    );
    if a.verbose {
        println!();
        let mut rows = Vec::new();
        for l in &layers {
            let users = index
                .images
                .values()
                .filter(|i| i.layers.contains(&l.chain_id))
                .count();
            rows.push(vec![
                l.chain_id.short().to_string(),
                human_size(l.size),
                users.to_string(),
            ]);
        }
        print_table(&["LAYER (CHAIN ID)", "SIZE", "IMAGES"], &rows);
    }
    Ok(())
}
