//! `-v` and `--mount type=bind|volume` as Docker's CLI and daemon read them, into typed specs:
//! the CLI makes a source that starts with `.` absolute against its working directory (Docker
//! CLI ≥ 23) before the engine sees it, `-v` makes a missing host directory while `--mount`
//! refuses it, and `nocopy` / `volume-nocopy` turn off the copy-up of the image's files. Pure
//! parsing; nothing is made here.

use crate::error::{EngineError, Result};
use std::path::{Component, Path, PathBuf};

/// Where a mount's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host path; `create` makes it (a directory) when missing, as `-v` does.
    Bind { path: String, create: bool },
    /// A named volume, or an anonymous one (None).
    Volume(Option<String>),
}

/// One mount a user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub source: Source,
    pub destination: String,
    pub read_only: bool,
    /// Fill a new volume with the image's files at the destination (Docker's default).
    pub copy: bool,
}

/// `path` made absolute against the working directory when it starts with `.` (Docker CLI's
/// rule for `-v ./dir:/x`, `-v .:/x` and `--mount source=./dir`), cleaned as Go's
/// `filepath.Abs` cleans it.
pub fn absolute_source(path: &str) -> Result<String> {
    if !path.starts_with('.') {
        return Ok(path.to_string());
    }
    let cwd = std::env::current_dir()
        .map_err(|x| EngineError::io("the working directory (for a relative source)", x))?;
    Ok(clean_absolute(&cwd.join(path)).display().to_string())
}

/// `p` under `/`, cleaned by its words as Go's `filepath.Clean` cleans an absolute path: `.`
/// dropped, `..` taking the component before it (never above `/`). Nothing is looked up.
pub(crate) fn clean_absolute(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// A `-v` flag as Docker's CLI sends it on: a source starting with `.` made absolute, the rest
/// as given. The engine never resolves against its own working directory (`berth serve` has none
/// of the user's).
pub fn absolute_volume_flag(v: &str) -> Result<String> {
    match v.split_once(':') {
        Some((src, rest)) if src.starts_with('.') => {
            Ok(format!("{}:{rest}", absolute_source(src)?))
        }
        _ => Ok(v.to_string()),
    }
}

/// A `--mount` flag as Docker's CLI sends it on: its `source`/`src` made absolute when it starts
/// with `.`.
pub fn absolute_mount_flag(m: &str) -> Result<String> {
    let fields = m
        .split(',')
        .map(|field| match field.split_once('=') {
            Some((k, v))
                if matches!(k.to_ascii_lowercase().as_str(), "source" | "src")
                    && v.starts_with('.') =>
            {
                Ok(format!("{k}={}", absolute_source(v)?))
            }
            _ => Ok(field.to_string()),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(fields.join(","))
}

/// `-v [SOURCE:]DESTINATION[:OPTIONS]`.
pub fn parse_volume(v: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] => (Some(*s), *d, ""),
        [s, d, m] => (Some(*s), *d, *m),
        _ => {
            return Err(EngineError::msg(format!(
                "invalid volume specification: '{v}'"
            )))
        }
    };
    if src == Some("") || dst.is_empty() {
        return Err(EngineError::msg(format!(
            "invalid volume specification: '{v}'"
        )));
    }
    let options: Vec<&str> = mode.split(',').filter(|m| !m.is_empty()).collect();
    for m in &options {
        if !matches!(
            *m,
            "ro" | "rw" | "z" | "Z" | "nocopy" | "private" | "rprivate"
        ) {
            return Err(EngineError::msg(format!(
                "invalid mode: {m} (in volume specification '{v}')"
            )));
        }
    }
    let source = match src {
        None => Source::Volume(None),
        Some(s) if s.starts_with('/') => Source::Bind {
            path: s.to_string(),
            create: true,
        },
        Some(s) => Source::Volume(Some(s.to_string())),
    };
    Ok(MountSpec {
        source,
        destination: dst.to_string(),
        read_only: options.contains(&"ro"),
        copy: !options.contains(&"nocopy"),
    })
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(EngineError::msg(format!("invalid value for {key}: {v}"))),
    }
}

/// `--mount type=bind|volume,…`; None for a tmpfs (`mount_tmpfs` reads those).
pub fn parse_mount(m: &str) -> Result<Option<MountSpec>> {
    let mut kind = "volume";
    let (mut src, mut dst, mut ro, mut copy) = (None, None, false, true);
    for field in m.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("type", Some(t)) => {
                kind = match t {
                    "bind" => "bind",
                    "volume" => "volume",
                    "tmpfs" => "tmpfs",
                    _ => return Err(EngineError::msg(format!("invalid --mount type {t:?}"))),
                }
            }
            ("source" | "src", Some(s)) => src = Some(s.to_string()),
            ("target" | "destination" | "dst", Some(d)) => dst = Some(d.to_string()),
            ("readonly" | "ro", None) => ro = true,
            ("readonly" | "ro", Some(v)) => ro = parse_bool(&key, v)?,
            ("volume-nocopy", None) => copy = false,
            ("volume-nocopy", Some(v)) => copy = !parse_bool(&key, v)?,
            ("tmpfs-size" | "tmpfs-mode", Some(_)) => {}
            (_, None) => {
                return Err(EngineError::msg(format!(
                    "invalid field '{field}' must be a key=value pair"
                )))
            }
            _ => return Err(EngineError::msg(format!("unexpected key '{key}' in '{m}'"))),
        }
    }
    if kind == "tmpfs" {
        return Ok(None);
    }
    let destination =
        dst.ok_or_else(|| EngineError::msg(format!("invalid --mount {m:?}: target is required")))?;
    let source = match (kind, src) {
        ("bind", Some(s)) if s.starts_with('/') => Source::Bind {
            path: s,
            create: false,
        },
        ("bind", _) => {
            return Err(EngineError::msg(format!(
                "invalid --mount {m:?}: a bind needs an absolute source"
            )))
        }
        (_, s) => Source::Volume(s),
    };
    Ok(Some(MountSpec {
        source,
        destination,
        read_only: ro,
        copy,
    }))
}

/// Checks a bind's host path: made when `-v` asked for it (a directory), else it must exist.
pub fn prepare_bind(path: &str, create: bool) -> Result<()> {
    if Path::new(path).exists() {
        return Ok(());
    }
    if !create {
        return Err(EngineError::msg(format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {path}"
        )));
    }
    std::fs::create_dir_all(path).map_err(|x| EngineError::io(format!("mkdir {path}"), x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cwd() -> String {
        std::env::current_dir().unwrap().display().to_string()
    }

    #[test]
    fn relative_sources_are_made_absolute_as_dockers_cli_does() {
        assert_eq!(
            absolute_volume_flag(".:/x").unwrap(),
            format!("{}:/x", cwd())
        );
        assert_eq!(
            absolute_volume_flag("./dir/../other:/x:ro").unwrap(),
            format!("{}/other:/x:ro", cwd())
        );
        assert_eq!(absolute_volume_flag("data:/x").unwrap(), "data:/x");
        assert_eq!(absolute_volume_flag("/d").unwrap(), "/d");
        assert_eq!(
            absolute_mount_flag("type=bind,source=./d,target=/x").unwrap(),
            format!("type=bind,source={}/d,target=/x", cwd())
        );
        let sub = parse_volume(&absolute_volume_flag("./sub:/x:ro").unwrap()).unwrap();
        assert_eq!(
            sub.source,
            Source::Bind {
                path: format!("{}/sub", cwd()),
                create: true
            }
        );
        assert!(sub.read_only);
        // Unresolved, `./sub` is not a volume name the engine takes for a path.
        assert_eq!(
            parse_volume("./sub:/x").unwrap().source,
            Source::Volume(Some("./sub".into()))
        );
    }

    #[test]
    fn names_anonymous_and_nocopy() {
        let named = parse_volume("data:/d:nocopy").unwrap();
        assert_eq!(named.source, Source::Volume(Some("data".into())));
        assert!(!named.copy);
        let anon = parse_volume("/d").unwrap();
        assert_eq!(anon.source, Source::Volume(None));
        assert!(anon.copy);
        let m = parse_mount("type=volume,src=v,dst=/d,volume-nocopy")
            .unwrap()
            .unwrap();
        assert!(!m.copy);
        let m = parse_mount("type=volume,src=v,dst=/d,volume-nocopy=false")
            .unwrap()
            .unwrap();
        assert!(m.copy);
        assert!(parse_mount("type=volume,dst=/d,volume-nocopy=maybe").is_err());
        assert_eq!(parse_mount("type=tmpfs,dst=/t").unwrap(), None);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(parse_volume("a:b:c:d").is_err());
        assert!(parse_volume("a:/b:bogus").is_err());
        assert!(parse_mount("type=bind,src=rel,dst=/x").is_err());
        assert!(parse_mount("type=volume,src=v").is_err());
        assert!(parse_mount("type=volume,bogus,dst=/x").is_err());
    }
}
