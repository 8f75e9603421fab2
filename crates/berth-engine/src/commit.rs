//! `commit`: a container's writable layer becomes a new image layer (a gzip tar of the upper
//! directory with overlayfs whiteouts turned back into `.wh.` files) on top of its image, with the
//! container's command, environment, user and working directory as the new image's config. It
//! reads the writable layer through fds (a symlink there is archived, never followed).

use crate::changes::placeholders;
use crate::error::{EngineError, Result};
use crate::record::Record;
use crate::Engine;
use berth_image::archive::{register, LocalLayer};
use berth_image::digest::{Algorithm, Digest, HashingWriter};
use berth_image::images::ImageRecord;
use berth_image::manifest::{self, Manifest, MAX_MANIFEST_BYTES};
use berth_image::pull::MAX_CONFIG_BYTES;
use berth_image::reference::Reference;
use berth_image::tree::diff::open_store_dir;
use berth_image::tree::tar::TreeWriter;
use berth_sys::time::now_rfc3339;
use serde_json::{json, Map, Value};
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub message: Option<String>,
    pub author: Option<String>,
    /// Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=b`, …).
    pub changes: Vec<String>,
    /// Freeze a running container while its layer is read.
    pub pause: bool,
    /// `REPOSITORY[:TAG]` for the new image.
    pub reference: Option<String>,
}

/// Makes the new image; returns its record.
pub fn commit(e: &Engine, what: &str, o: &CommitOptions) -> Result<ImageRecord> {
    let rec = e.get(what)?;
    let tag = match &o.reference {
        Some(r) => {
            let r = Reference::parse(r).map_err(EngineError::other)?;
            if r.digest.is_some() {
                return Err(EngineError::msg(format!(
                    "refusing to create a tag with a digest reference: {r}"
                )));
            }
            vec![r.to_string()]
        }
        None => Vec::new(),
    };
    let base = e.store.find(&rec.image_id).map_err(|x| {
        EngineError::msg(format!(
            "container {}: image {}: {x}",
            rec.name, rec.image_id
        ))
    })?;
    let mut config: Value = serde_json::from_slice(
        &e.store
            .content
            .read(&base.id, MAX_CONFIG_BYTES)
            .map_err(EngineError::other)?,
    )
    .map_err(|x| EngineError::msg(format!("image {}: config: {x}", base.id)))?;
    let mut layers = base_layers(e, &base, &config)?;
    let _adding = e.store.adding().map_err(EngineError::other)?;
    // Recorded before the freeze: a commit killed while the container is frozen is thawed by
    // the next command that reads it.
    let _frozen = match o.pause {
        true => Some(e.freeze_for(&rec.id, "commit")?),
        false => None,
    };
    // Judged as `diff` does, so the mount targets the runtime made do not make a layer.
    let new = if crate::changes::changes(e, &rec)?.is_empty() {
        None
    } else {
        Some(write_layer(e, &rec)?)
    };
    let now = now_rfc3339();
    let obj = config
        .as_object_mut()
        .ok_or_else(|| EngineError::msg(format!("image {}: config is not an object", base.id)))?;
    obj.insert("created".into(), json!(now));
    if let Some(a) = &o.author {
        obj.insert("author".into(), json!(a));
    }
    let mut run = run_config(&rec, obj.get("config"));
    for c in &o.changes {
        apply_change(&mut run, c)?;
    }
    obj.insert("config".into(), Value::Object(run));
    let mut history = json!({"created": now, "created_by": created_by(&rec)});
    if let Some(a) = &o.author {
        history["author"] = json!(a);
    }
    if let Some(m) = o.message.as_deref().filter(|m| !m.is_empty()) {
        history["comment"] = json!(m);
    }
    match new {
        Some(l) => {
            let ids = obj
                .entry("rootfs")
                .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
            match ids["diff_ids"].as_array_mut() {
                Some(a) => a.push(json!(l.diff_id.to_string())),
                None => ids["diff_ids"] = json!([l.diff_id.to_string()]),
            }
            layers.push(l);
        }
        None => history["empty_layer"] = json!(true),
    }
    match obj.get_mut("history").and_then(Value::as_array_mut) {
        Some(h) => h.push(history),
        None => {
            obj.insert("history".into(), json!([history]));
        }
    }
    let bytes = serde_json::to_vec(&config).expect("config serializes");
    register(&e.store, &bytes, &layers, &tag).map_err(EngineError::other)
}

/// The layers of the container's image, as blobs in the content store with their diff_ids.
fn base_layers(e: &Engine, base: &ImageRecord, config: &Value) -> Result<Vec<LocalLayer>> {
    let m: Manifest = serde_json::from_slice(
        &e.store
            .content
            .read(&base.manifest, MAX_MANIFEST_BYTES)
            .map_err(EngineError::other)?,
    )
    .map_err(|x| EngineError::msg(format!("image {}: manifest: {x}", base.id)))?;
    let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().and_then(|s| Digest::parse(s).ok()))
        .collect();
    if diff_ids.len() != m.layers.len() {
        return Err(EngineError::msg(format!(
            "image {}: {} diff_ids for {} layers",
            base.id,
            diff_ids.len(),
            m.layers.len()
        )));
    }
    Ok(m.layers
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| LocalLayer {
            blob: l.digest.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
            diff_id,
        })
        .collect())
}

/// The writable layer as a gzip tar in the content store.
fn write_layer(e: &Engine, rec: &Record) -> Result<LocalLayer> {
    let what = |x: std::io::Error| {
        EngineError::msg(format!("container {}: writable layer: {x}", rec.name))
    };
    let upper = open_store_dir(&e.snapshots.upper_dir(&rec.id)).map_err(what)?;
    let mut blob = e
        .store
        .content
        .writer(Algorithm::Sha256)
        .map_err(EngineError::other)?;
    let gz = flate2::write::GzEncoder::new(&mut blob, flate2::Compression::fast());
    let plain = HashingWriter::new(gz, Algorithm::Sha256);
    let mut w = TreeWriter::new(plain, true)
        .skip(placeholders(e, rec))
        .owners(rec.idmap.clone());
    w.add_contents(&upper, Path::new("")).map_err(what)?;
    let (diff_id, _, gz) = w.finish().map_err(what)?.finish();
    gz.finish().map_err(what)?;
    let size = blob.written();
    let digest = blob.commit(None, Some(size)).map_err(EngineError::other)?;
    Ok(LocalLayer {
        blob: digest,
        media_type: manifest::OCI_LAYER_GZIP.into(),
        size,
        diff_id,
    })
}

fn created_by(rec: &Record) -> String {
    std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The image config's `config` with the container's own settings over it, as Docker commits them.
fn run_config(rec: &Record, image: Option<&Value>) -> Map<String, Value> {
    let mut c = image
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let image_entrypoint = c.get("Entrypoint").cloned().unwrap_or(Value::Null);
    let mut full = vec![rec.path.clone()];
    full.extend(rec.args.iter().cloned());
    // The container's command is Entrypoint + Cmd; keep the image's Entrypoint when it still leads.
    let ep: Vec<String> = serde_json::from_value(image_entrypoint).unwrap_or_default();
    if !ep.is_empty() && full.starts_with(&ep) {
        c.insert("Cmd".into(), json!(full[ep.len()..]));
    } else {
        c.remove("Entrypoint");
        c.insert("Cmd".into(), json!(full));
    }
    c.insert("Env".into(), json!(rec.env));
    if rec.working_dir != "/" || c.contains_key("WorkingDir") {
        c.insert("WorkingDir".into(), json!(rec.working_dir));
    }
    if !rec.user.is_empty() || c.contains_key("User") {
        c.insert("User".into(), json!(rec.user));
    }
    if !rec.labels.is_empty() {
        c.insert("Labels".into(), json!(rec.labels));
    }
    c
}

/// Words with Dockerfile quoting: `"a b"`, `'a b'`, `a\ b`.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quote, mut started, mut chars) = (None, false, s.chars());
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (None, '"' | '\'') => (quote, started) = (Some(ch), true),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                cur.extend(chars.next());
                started = true;
            }
            (_, c) => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(cur);
    }
    out
}

/// `["a","b"]` as is, anything else through `/bin/sh -c`.
fn exec_form(rest: &str) -> Value {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) => json!(v),
        Err(_) => json!(["/bin/sh", "-c", rest]),
    }
}

/// `K=V K2="V 2"`, or the legacy `K V…` form.
fn pairs(rest: &str, instr: &str) -> Result<Vec<(String, String)>> {
    let ws = words(rest);
    if ws.is_empty() {
        return Err(EngineError::msg(format!(
            "{instr} requires at least one argument"
        )));
    }
    if !ws[0].contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(k.to_string(), words(v).join(" "))]);
    }
    ws.iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    EngineError::msg(format!("{instr} names must be followed by '=': {w:?}"))
                })
        })
        .collect()
}

fn set_map(c: &mut Map<String, Value>, key: &str, k: &str, v: Value) {
    let m = c.entry(key).or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m[k] = v;
}

/// Applies one `--change` instruction to a run config.
pub fn apply_change(c: &mut Map<String, Value>, line: &str) -> Result<()> {
    let line = line.trim();
    let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let up = instr.to_ascii_uppercase();
    match up.as_str() {
        "CMD" => drop(c.insert("Cmd".into(), exec_form(rest))),
        "ENTRYPOINT" => drop(c.insert("Entrypoint".into(), exec_form(rest))),
        "USER" => drop(c.insert("User".into(), json!(rest))),
        "STOPSIGNAL" => drop(c.insert("StopSignal".into(), json!(rest))),
        "WORKDIR" => {
            let cur = c.get("WorkingDir").and_then(Value::as_str).unwrap_or("/");
            let dir = Path::new(if cur.is_empty() { "/" } else { cur }).join(rest);
            c.insert("WorkingDir".into(), json!(dir.display().to_string()));
        }
        "ENV" => {
            let mut env: Vec<String> = c
                .get("Env")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            for (k, v) in pairs(rest, "ENV")? {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            c.insert("Env".into(), json!(env));
        }
        "LABEL" => {
            for (k, v) in pairs(rest, "LABEL")? {
                set_map(c, "Labels", &k, json!(v));
            }
        }
        "EXPOSE" => {
            for spec in words(rest) {
                for p in crate::network::port_key(&spec)? {
                    set_map(c, "ExposedPorts", &p, json!({}));
                }
            }
        }
        "VOLUME" => {
            let list = serde_json::from_str::<Vec<String>>(rest).unwrap_or_else(|_| words(rest));
            for v in list {
                set_map(c, "Volumes", &v, json!({}));
            }
        }
        "ONBUILD" => {
            let list = c.entry("OnBuild").or_insert_with(|| json!([]));
            match list.as_array_mut() {
                Some(a) => a.push(json!(rest)),
                None => *list = json!([rest]),
            }
        }
        "" => return Err(EngineError::msg("empty --change instruction")),
        _ => {
            return Err(EngineError::msg(format!(
                "{up} is not a valid change command"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_instructions_edit_the_config_like_dockerfile_lines() {
        let mut c = Map::new();
        apply_change(&mut c, r#"CMD ["sh", "-c", "echo hi"]"#).unwrap();
        apply_change(&mut c, "ENTRYPOINT top -b").unwrap();
        apply_change(&mut c, r#"ENV A=1 B="two words""#).unwrap();
        apply_change(&mut c, "ENV C three four").unwrap();
        apply_change(&mut c, "LABEL k=v").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        apply_change(&mut c, "WORKDIR app").unwrap();
        assert_eq!(c["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "top -b"]));
        assert_eq!(c["Env"], json!(["A=1", "B=two words", "C=three four"]));
        assert_eq!(c["Labels"], json!({"k": "v"}));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["WorkingDir"], json!("/srv/app"));
        let e = apply_change(&mut c, "RUN rm -rf /").unwrap_err();
        assert_eq!(e.to_string(), "RUN is not a valid change command");
    }

    #[test]
    fn committed_command_keeps_the_image_entrypoint() {
        let rec = Record {
            path: "/entry".into(),
            args: vec!["a".into()],
            working_dir: "/".into(),
            ..Record::default()
        };
        let img = json!({"Entrypoint": ["/entry"], "Cmd": ["x"]});
        let c = run_config(&rec, Some(&img));
        assert_eq!(c["Entrypoint"], json!(["/entry"]));
        assert_eq!(c["Cmd"], json!(["a"]));
        assert!(!c.contains_key("WorkingDir"));
    }
}
