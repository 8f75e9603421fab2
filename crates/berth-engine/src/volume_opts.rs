//! The local driver's options (`volume create --opt type=…,device=…,o=…`), as Docker's: a tmpfs
//! (`type=tmpfs,device=tmpfs,o=size=64m`) or a bind of a host directory
//! (`type=none,o=bind,device=/path`), checked at create and mounted on the volume's `_data`
//! when a container first uses it; unmounted when the volume is removed. Other filesystem
//! types (nfs, ext4…) are refused by name. It never deletes anything.

use crate::error::{EngineError, Result};
use nix::mount::MsFlags;
use std::collections::BTreeMap;
use std::path::Path;

/// The option keys Docker's local driver knows (`size` is its xfs quota: not here).
const KEYS: [&str; 3] = ["type", "device", "o"];

/// tmpfs's data options (`key=value`) and the flags it may be given.
const TMPFS_DATA: [&str; 6] = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"];
const FLAGS: [(&str, MsFlags); 4] = [
    ("ro", MsFlags::MS_RDONLY),
    ("noexec", MsFlags::MS_NOEXEC),
    ("nosuid", MsFlags::MS_NOSUID),
    ("nodev", MsFlags::MS_NODEV),
];

/// What a volume's options ask to mount on its `_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalMount {
    Tmpfs { flags: MsFlags, data: String },
    Bind { device: String, flags: MsFlags },
}

fn bad(volume: &str, why: String) -> EngineError {
    EngineError::msg(format!("create {volume}: {why}"))
}

/// The mount `opts` ask for (None for none), refusing what the local driver cannot do.
pub fn parse(volume: &str, opts: &BTreeMap<String, String>) -> Result<Option<LocalMount>> {
    if let Some(k) = opts.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(bad(
            volume,
            format!("invalid option key {k:?} (the local driver takes type, device, o)"),
        ));
    }
    if opts.is_empty() {
        return Ok(None);
    }
    let (Some(kind), Some(device)) = (opts.get("type"), opts.get("device")) else {
        return Err(bad(
            volume,
            "the local driver needs both type= and device= (type=tmpfs,device=tmpfs or type=none,o=bind,device=/path)".into(),
        ));
    };
    let words: Vec<&str> = opts
        .get("o")
        .map(|o| o.split(',').filter(|w| !w.is_empty()).collect())
        .unwrap_or_default();
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut bind = false;
    for w in &words {
        let key = w.split_once('=').map_or(*w, |(k, _)| k);
        if let Some((_, f)) = FLAGS.iter().find(|(n, _)| n == w) {
            flags |= *f;
        } else if *w == "rw" {
        } else if kind == "none" && matches!(*w, "bind" | "rbind") {
            bind = true;
        } else if kind == "tmpfs" && w.contains('=') && TMPFS_DATA.contains(&key) {
            data.push(*w);
        } else {
            return Err(bad(
                volume,
                format!("invalid option o={w:?} for type {kind}"),
            ));
        }
    }
    match kind.as_str() {
        "tmpfs" => Ok(Some(LocalMount::Tmpfs {
            flags,
            data: data.join(","),
        })),
        "none" if bind => {
            let p = Path::new(device);
            if !p.is_absolute() || !p.is_dir() {
                return Err(bad(
                    volume,
                    format!("device {device:?} is not an absolute path to a directory"),
                ));
            }
            Ok(Some(LocalMount::Bind {
                device: device.clone(),
                flags,
            }))
        }
        "none" => Err(bad(volume, "type=none needs o=bind".into())),
        other => Err(bad(
            volume,
            format!("type {other:?} is not supported by berth's local driver (tmpfs, or none with o=bind)"),
        )),
    }
}

/// Mounts `m` on `data` unless something already is (a volume stays mounted until removed).
pub fn ensure_mounted(volume: &str, data: &Path, m: &LocalMount) -> Result<()> {
    if is_mounted(data) {
        return Ok(());
    }
    let err = |e: nix::Error| EngineError::io(format!("volume {volume}: mount"), e.into());
    match m {
        LocalMount::Tmpfs { flags, data: d } => nix::mount::mount(
            Some("tmpfs"),
            data,
            Some("tmpfs"),
            *flags,
            Some(d.as_str()).filter(|d| !d.is_empty()),
        )
        .map_err(err),
        LocalMount::Bind { device, flags } => {
            nix::mount::mount(
                Some(device.as_str()),
                data,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(err)?;
            if flags.is_empty() {
                return Ok(());
            }
            let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | *flags;
            nix::mount::mount(None::<&str>, data, None::<&str>, remount, None::<&str>).map_err(
                |e| {
                    crate::launch::unmount(data);
                    err(e)
                },
            )
        }
    }
}

/// Whether `p` is itself a mount point (mountinfo's view: a bind of a directory on the same
/// filesystem has the same device number as its parent).
pub fn is_mounted(p: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = p.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m) == want)
}

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        match u8::from_str_radix(rest.get(i + 1..i + 4).unwrap_or(""), 8) {
            Ok(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tmpfs_and_bind_options_parse_as_dockers_local_driver() {
        assert_eq!(parse("v", &BTreeMap::new()).unwrap(), None);
        let t = parse(
            "v",
            &opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=64m,noexec"),
            ]),
        )
        .unwrap();
        assert_eq!(
            t,
            Some(LocalMount::Tmpfs {
                flags: MsFlags::MS_NOEXEC,
                data: "size=64m".into()
            })
        );
        let b = parse(
            "v",
            &opts(&[("type", "none"), ("device", "/tmp"), ("o", "bind,ro")]),
        )
        .unwrap();
        assert_eq!(
            b,
            Some(LocalMount::Bind {
                device: "/tmp".into(),
                flags: MsFlags::MS_RDONLY
            })
        );
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let err = |kv: &[(&str, &str)]| parse("v", &opts(kv)).unwrap_err().to_string();
        assert!(err(&[("color", "blue")]).contains("\"color\""));
        assert!(err(&[("type", "tmpfs")]).contains("device="));
        assert!(
            err(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "bogus=1")])
                .contains("o=\"bogus=1\"")
        );
        assert!(err(&[("type", "nfs"), ("device", ":/x")]).contains("\"nfs\""));
        assert!(err(&[("type", "none"), ("device", "/tmp")]).contains("o=bind"));
        assert!(
            err(&[("type", "none"), ("device", "relative"), ("o", "bind")]).contains("absolute")
        );
        assert!(err(&[
            ("type", "none"),
            ("device", "/nonexistent-x"),
            ("o", "bind")
        ])
        .contains("/nonexistent-x"));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/proc/self")));
    }
}
