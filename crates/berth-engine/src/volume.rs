//! Volumes: `<root>/volumes/<name>/_data`, with a small `meta.json` beside it (created, labels,
//! anonymous) written atomically. Volumes made by `run -v` have none and still count (a 64-hex name
//! is an anonymous one). A volume any container record names is never removed. Creation and removal
//! hold the store's names lock, which `create` holds while it makes a container's volumes.

use crate::error::{EngineError, Result};
use crate::mountspec::{self, MountSpec, Source};
use crate::options::{parse_bytes, RunOptions};
use crate::record::{valid_name, write_atomic, MountRecord, Record};
use crate::Engine;
use berth_image::snapshot::IdMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    created: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    anonymous: bool,
    /// The local driver's `--opt`s (`type`, `device`, `o`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    options: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub mountpoint: PathBuf,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    pub anonymous: bool,
    pub options: BTreeMap<String, String>,
}

impl Volume {
    /// Docker's `volume inspect` object.
    pub fn inspect_json(&self) -> Value {
        json!({
            "CreatedAt": self.created,
            "Driver": "local",
            "Labels": if self.labels.is_empty() { Value::Null } else { json!(self.labels) },
            "Mountpoint": self.mountpoint.display().to_string(),
            "Name": self.name,
            "Options": if self.options.is_empty() { Value::Null } else { json!(self.options) },
            "Scope": "local",
        })
    }

    /// Apparent bytes of the files in it.
    pub fn size(&self) -> u64 {
        berth_image::tree::diff::tree_size(&self.mountpoint)
    }
}

fn volumes_dir(e: &Engine) -> PathBuf {
    e.root.join("volumes")
}

fn is_anonymous_name(n: &str) -> bool {
    n.len() == 64
        && n.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn load(e: &Engine, name: &str) -> Option<Volume> {
    let dir = volumes_dir(e).join(name);
    let data = dir.join("_data");
    if name.starts_with('.') || !valid_name(name) || !data.is_dir() {
        return None;
    }
    let meta: Meta = match fs::read(dir.join("meta.json")) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
        Err(_) => {
            let secs = fs::metadata(&dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Meta {
                created: berth_sys::time::rfc3339(secs),
                labels: BTreeMap::new(),
                anonymous: is_anonymous_name(name),
                options: BTreeMap::new(),
            }
        }
    };
    Some(Volume {
        name: name.into(),
        mountpoint: data,
        created: meta.created,
        labels: meta.labels,
        anonymous: meta.anonymous,
        options: meta.options,
    })
}

/// `volume create [NAME]`: an existing volume of that name is returned as it is, as Docker does.
pub fn create(e: &Engine, name: Option<&str>, labels: BTreeMap<String, String>) -> Result<Volume> {
    create_with_options(e, name, labels, BTreeMap::new())
}

/// `volume create [--opt K=V…] [NAME]`: the local driver's options are checked here, and the
/// volume is mounted that way when a container first uses it (`mount_if_asked`).
pub fn create_with_options(
    e: &Engine,
    name: Option<&str>,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
) -> Result<Volume> {
    let name_given = name;
    let name = match name {
        Some(n) if n.len() < 2 || !valid_name(n) => {
            return Err(EngineError::msg(format!(
                "create {n}: {n:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )))
        }
        Some(n) => n.to_string(),
        None => crate::names::new_id(),
    };
    crate::volume_opts::parse(&name, &options)?;
    let _names = e.records.names_lock().map_err(EngineError::other)?;
    if let Some(v) = load(e, &name) {
        return Ok(v);
    }
    let dir = volumes_dir(e).join(&name);
    let io = |x: std::io::Error| EngineError::msg(format!("create {name}: {x}"));
    fs::create_dir_all(dir.join("_data")).map_err(io)?;
    let meta = Meta {
        created: berth_sys::time::now_rfc3339(),
        labels,
        // A volume created without a name is anonymous, as in Docker (API 1.42 on): `volume
        // prune` takes it without `--all`.
        anonymous: name_given.is_none(),
        options,
    };
    write_atomic(
        &dir.join("meta.json"),
        &serde_json::to_vec_pretty(&meta).expect("meta serializes"),
    )
    .map_err(io)?;
    e.emit(crate::events::Event::volume("create", &name));
    load(e, &name).ok_or_else(|| EngineError::msg(format!("create {name}: volume vanished")))
}

pub fn get(e: &Engine, name: &str) -> Result<Volume> {
    load(e, name).ok_or_else(|| EngineError::msg(format!("get {name}: no such volume")))
}

/// Every volume, by name.
pub fn list(e: &Engine) -> Vec<Volume> {
    let Ok(rd) = fs::read_dir(volumes_dir(e)) else {
        return Vec::new();
    };
    let mut out: Vec<Volume> = rd
        .flatten()
        .filter_map(|d| load(e, &d.file_name().to_string_lossy()))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The containers whose records name the volume.
pub fn users(e: &Engine, name: &str) -> Vec<Record> {
    e.records
        .list()
        .into_iter()
        .filter(|r| {
            r.mounts
                .iter()
                .any(|m| m.kind == "volume" && m.name.as_deref() == Some(name))
        })
        .collect()
}

fn delete(e: &Engine, name: &str) -> Result<()> {
    let dir = volumes_dir(e).join(name);
    let err = |x: std::io::Error| EngineError::msg(format!("remove {name}: {x}"));
    let has_options = load(e, name).is_some_and(|v| !v.options.is_empty());
    if has_options {
        // Its tmpfs or bind goes first; a bind's directory is the host's and is never
        // deleted: what is left must be the empty `_data`, or nothing is removed.
        let data = dir.join("_data");
        crate::launch::unmount(&data);
        if crate::volume_opts::is_mounted(&data) {
            return Err(EngineError::msg(format!(
                "remove {name}: {} is still mounted",
                data.display()
            )));
        }
        fs::remove_dir(&data).map_err(err)?;
    }
    let doomed = volumes_dir(e).join(format!(".rm-{name}-{}", std::process::id()));
    fs::rename(&dir, &doomed).map_err(err)?;
    e.emit(crate::events::Event::volume("destroy", name));
    fs::remove_dir_all(&doomed).map_err(err)
}

/// Mounts the local driver's tmpfs or bind on the volume `name`'s `_data` if its options ask
/// for one and it is not mounted yet (before a container that uses it starts).
pub fn mount_if_asked(e: &Engine, name: &str) -> Result<()> {
    let Some(v) = load(e, name) else {
        return Ok(());
    };
    let Some(m) = crate::volume_opts::parse(name, &v.options)? else {
        return Ok(());
    };
    // Under the names lock: two starts never mount it twice, and no removal runs meanwhile.
    let _names = e.records.names_lock().map_err(EngineError::other)?;
    crate::volume_opts::ensure_mounted(name, &v.mountpoint, &m)
}

/// `volume rm`: refused while any container (running or not) uses it, even with `force`, as
/// Docker does; `force` only makes a missing volume no error.
pub fn remove(e: &Engine, name: &str, force: bool) -> Result<()> {
    let _names = e.records.names_lock().map_err(EngineError::other)?;
    if load(e, name).is_none() {
        return if force {
            Ok(())
        } else {
            Err(EngineError::msg(format!("get {name}: no such volume")))
        };
    }
    let using = users(e, name);
    if !using.is_empty() {
        let ids: Vec<&str> = using.iter().map(|r| r.id.as_str()).collect();
        return Err(EngineError::msg(format!(
            "remove {name}: volume is in use - [{}]",
            ids.join(", ")
        )));
    }
    delete(e, name)
}

/// The keys `volume prune --filter` knows.
pub const PRUNE_FILTERS: &[&str] = &["label", "label!", "all"];

/// `volume prune`: unused anonymous volumes (`all`: every unused one). Returns the names removed
/// and the bytes they held.
pub fn prune(e: &Engine, all: bool) -> Result<(Vec<String>, u64)> {
    prune_filtered(e, all, &crate::filters::Filters::default())
}

/// `volume prune [--filter label=…|label!=…|all=true]`.
pub fn prune_filtered(
    e: &Engine,
    all: bool,
    filters: &crate::filters::Filters,
) -> Result<(Vec<String>, u64)> {
    let all = all
        || filters
            .boolean("all")
            .map_err(|x| EngineError::msg(x.to_string()))?
            .unwrap_or(false);
    let _names = e.records.names_lock().map_err(EngineError::other)?;
    clean_leftovers(e);
    let records = e.records.list();
    let used = |n: &str| {
        records.iter().any(|r| {
            r.mounts
                .iter()
                .any(|m| m.kind == "volume" && m.name.as_deref() == Some(n))
        })
    };
    let mut gone = Vec::new();
    let mut bytes = 0;
    for v in list(e) {
        if (all || v.anonymous) && !used(&v.name) && filters.labels_match(&v.labels) {
            let size = v.size();
            delete(e, &v.name)?;
            bytes += size;
            gone.push(v.name);
        }
    }
    Ok((gone, bytes))
}

/// Leftovers of removals a crash interrupted (`.rm-*`).
pub fn clean_leftovers(e: &Engine) {
    let Ok(rd) = fs::read_dir(volumes_dir(e)) else {
        return;
    };
    for d in rd.flatten() {
        if d.file_name().to_string_lossy().starts_with(".rm-") {
            let _ = fs::remove_dir_all(d.path());
        }
    }
}

/// The most `Volumes` an image may declare: each is a directory and a mount of its own.
pub const MAX_IMAGE_VOLUMES: usize = 1024;

/// `-v`, `--mount type=bind|volume` and the image's `Volumes`, as mounts of host paths, with
/// the image found by `o.image`: `volumes_for_image` with its layers.
pub fn volumes(
    e: &Engine,
    o: &RunOptions,
    image_volumes: Option<&BTreeMap<String, serde_json::Value>>,
    idmap: Option<&IdMap>,
) -> Result<Vec<MountRecord>> {
    let layers = e.image(&o.image).map(|i| i.layers).unwrap_or_default();
    volumes_for_image(e, o, image_volumes, &layers, idmap)
}

/// `-v`, `--mount type=bind|volume` and the image's `Volumes`, as mounts of host paths. A
/// volume that is still empty is first filled with what the image (`layers`, bottom to top) has
/// at its destination, unless the mount says `nocopy` (Docker's copy-up). For a container with
/// its own ids (`idmap`), a volume nobody has used yet is handed to them (`give_to`).
pub fn volumes_for_image(
    e: &Engine,
    o: &RunOptions,
    image_volumes: Option<&BTreeMap<String, serde_json::Value>>,
    layers: &[berth_image::digest::Digest],
    idmap: Option<&IdMap>,
) -> Result<Vec<MountRecord>> {
    let mut specs: Vec<MountSpec> = Vec::new();
    for v in &o.volumes {
        specs.push(mountspec::parse_volume(v)?);
    }
    for m in &o.mounts {
        specs.extend(mountspec::parse_mount(m)?);
    }
    let declared = image_volumes.map_or(0, BTreeMap::len);
    if declared > MAX_IMAGE_VOLUMES {
        return Err(EngineError::msg(format!(
            "image config: Volumes has {declared} entries, over the limit of {MAX_IMAGE_VOLUMES}"
        )));
    }
    let taken: std::collections::HashSet<String> =
        specs.iter().map(|s| s.destination.clone()).collect();
    for (dst, _) in image_volumes.into_iter().flatten() {
        if !taken.contains(dst) {
            specs.push(MountSpec {
                source: Source::Volume(None),
                destination: dst.clone(),
                read_only: false,
                copy: true,
            });
        }
    }
    specs
        .into_iter()
        .map(|spec| mount_record(e, spec, layers, idmap))
        .collect()
}

/// One spec made real: a bind checked (or its directory made), a volume made and filled.
fn mount_record(
    e: &Engine,
    spec: MountSpec,
    layers: &[berth_image::digest::Digest],
    idmap: Option<&IdMap>,
) -> Result<MountRecord> {
    let dst = spec.destination;
    if !dst.starts_with('/') {
        return Err(EngineError::msg(format!(
            "invalid mount config: invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    let (name, anonymous) = match spec.source {
        Source::Bind { path, create } => {
            mountspec::prepare_bind(&path, create)?;
            return Ok(MountRecord {
                kind: "bind".into(),
                name: None,
                source: path,
                destination: dst,
                rw: !spec.read_only,
                anonymous: false,
            });
        }
        // A named volume, or an anonymous one (removed by `rm -v`).
        Source::Volume(Some(n)) => (n, false),
        Source::Volume(None) => (crate::names::new_id(), true),
    };
    if name.len() < 2 || !crate::record::valid_name(&name) {
        return Err(EngineError::msg(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    let data = e.root.join("volumes").join(&name).join("_data");
    fs::create_dir_all(&data).map_err(|x| EngineError::msg(format!("volume {name}: {x}")))?;
    let unused = idmap.is_some() && never_used(&data)?;
    if spec.copy {
        crate::copyup::copy_up(e, layers, &dst, &data)?;
    }
    if let (true, Some(map)) = (unused, idmap) {
        give_to(&data, map).map_err(|x| EngineError::msg(format!("volume {name}: {x}")))?;
    }
    Ok(MountRecord {
        kind: "volume".into(),
        name: Some(name),
        source: data.display().to_string(),
        destination: dst,
        rw: !spec.read_only,
        anonymous,
    })
}

/// A volume directory no container has written to: empty and still root's (podman's
/// "needs chown").
fn never_used(data: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let io = |x| EngineError::io(data.display(), x);
    let meta = fs::symlink_metadata(data).map_err(io)?;
    let empty = fs::read_dir(data).map_err(io)?.next().is_none();
    Ok(empty && meta.uid() == 0 && meta.gid() == 0)
}

/// Hands a fresh volume (and what copy-up put in it) to a container with its own ids: every
/// owner is moved through the map (container root's files become the mapped root's), as the
/// container would have written them. Symlinks are changed, never followed; the walk keeps its
/// own stack, so a deep tree cannot exhaust ours.
fn give_to(data: &Path, map: &IdMap) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut todo = vec![data.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = fs::symlink_metadata(&p)?;
        let uid = map.host_uid(meta.uid()).unwrap_or(meta.uid());
        let gid = map.host_gid(meta.gid()).unwrap_or(meta.gid());
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))?;
        // chown clears set-id bits (even root's): what the image had is put back.
        if !meta.file_type().is_symlink() && meta.mode() & 0o6000 != 0 {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&p)? {
                todo.push(entry?.path());
            }
        }
    }
    Ok(())
}

pub(crate) fn mount_tmpfs(mounts: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for m in mounts {
        if !m.split(',').any(|kv| kv == "type=tmpfs") {
            continue;
        }
        let mut dst = None;
        let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
        for kv in m.split(',') {
            match kv.split_once('=') {
                Some(("target" | "destination" | "dst", d)) => dst = Some(d.to_string()),
                Some(("tmpfs-size", s)) => opts.push(format!(
                    "size={}",
                    parse_bytes(s).map_err(EngineError::other)?
                )),
                Some(("tmpfs-mode", s)) => opts.push(format!("mode={s}")),
                _ => {}
            }
        }
        out.push((
            dst.ok_or_else(|| {
                EngineError::msg(format!("invalid --mount {m:?}: target is required"))
            })?,
            opts.join(","),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_names_are_64_hex() {
        assert!(is_anonymous_name(&"ab".repeat(32)));
        assert!(!is_anonymous_name("data"));
        assert!(!is_anonymous_name(&"AB".repeat(32)));
    }
}
