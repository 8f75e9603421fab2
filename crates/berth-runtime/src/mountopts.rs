//! Mount options from config.json: mount(2) flags, propagation, recursive attributes
//! (`rro`, `rnosuid`, ... applied with mount_setattr) and the data string left for the filesystem.
//! Pure parsing, no syscalls.

use libc::c_ulong;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for mount(2).
    pub flags: c_ulong,
    /// Flags that a flag-clearing option (`rw`, `suid`, ...) removes.
    pub cleared: c_ulong,
    /// Propagation changes, applied one by one after the mount.
    pub propagation: Vec<c_ulong>,
    /// mount_setattr attributes to set and clear recursively.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Filesystem-specific options, comma separated.
    pub data: String,
    pub bind: bool,
    pub recursive_bind: bool,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;

pub fn propagation(name: &str) -> Option<c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// (name, set-flag?, flag)
const FLAGS: &[(&str, bool, c_ulong)] = &[
    ("defaults", false, 0),
    ("ro", true, libc::MS_RDONLY),
    ("rw", false, libc::MS_RDONLY),
    ("suid", false, libc::MS_NOSUID),
    ("nosuid", true, libc::MS_NOSUID),
    ("dev", false, libc::MS_NODEV),
    ("nodev", true, libc::MS_NODEV),
    ("exec", false, libc::MS_NOEXEC),
    ("noexec", true, libc::MS_NOEXEC),
    ("sync", true, libc::MS_SYNCHRONOUS),
    ("async", false, libc::MS_SYNCHRONOUS),
    ("dirsync", true, libc::MS_DIRSYNC),
    ("remount", true, libc::MS_REMOUNT),
    ("mand", true, libc::MS_MANDLOCK),
    ("nomand", false, libc::MS_MANDLOCK),
    ("atime", false, libc::MS_NOATIME),
    ("noatime", true, libc::MS_NOATIME),
    ("diratime", false, libc::MS_NODIRATIME),
    ("nodiratime", true, libc::MS_NODIRATIME),
    ("relatime", true, libc::MS_RELATIME),
    ("norelatime", false, libc::MS_RELATIME),
    ("strictatime", true, libc::MS_STRICTATIME),
    ("nostrictatime", false, libc::MS_STRICTATIME),
    ("silent", true, libc::MS_SILENT),
    ("loud", false, libc::MS_SILENT),
    ("iversion", true, libc::MS_I_VERSION),
    ("noiversion", false, libc::MS_I_VERSION),
    ("lazytime", true, libc::MS_LAZYTIME),
    ("nolazytime", false, libc::MS_LAZYTIME),
];

/// (name, set?, attr)
const REC_ATTRS: &[(&str, bool, u64)] = &[
    ("rro", true, MOUNT_ATTR_RDONLY),
    ("rrw", false, MOUNT_ATTR_RDONLY),
    ("rnosuid", true, MOUNT_ATTR_NOSUID),
    ("rsuid", false, MOUNT_ATTR_NOSUID),
    ("rnodev", true, MOUNT_ATTR_NODEV),
    ("rdev", false, MOUNT_ATTR_NODEV),
    ("rnoexec", true, MOUNT_ATTR_NOEXEC),
    ("rexec", false, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", true, MOUNT_ATTR_NODIRATIME),
    ("rdiratime", false, MOUNT_ATTR_NODIRATIME),
    ("rrelatime", true, MOUNT_ATTR_RELATIME),
    ("rnorelatime", false, MOUNT_ATTR_RELATIME),
    ("rnoatime", true, MOUNT_ATTR_NOATIME),
    ("ratime", false, MOUNT_ATTR_NOATIME),
    ("rstrictatime", true, MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", false, MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", true, MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", false, MOUNT_ATTR_NOSYMFOLLOW),
];

pub fn parse(opts: &[String]) -> Result<MountOptions, String> {
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in opts {
        let opt = opt.as_str();
        if let Some(&(_, set, f)) = FLAGS.iter().find(|(n, _, _)| *n == opt) {
            if set {
                o.flags |= f;
                o.cleared &= !f;
            } else {
                o.flags &= !f;
                o.cleared |= f;
            }
        } else if let Some(p) = propagation(opt) {
            o.propagation.push(p);
        } else if let Some(&(name, set, a)) = REC_ATTRS.iter().find(|(n, _, _)| *n == opt) {
            if set {
                o.rec_set |= a;
                o.rec_clr &= !a;
                if name.contains("atime") {
                    o.rec_clr |= MOUNT_ATTR__ATIME;
                }
            } else {
                o.rec_clr |= a;
                o.rec_set &= !a;
            }
        } else if opt == "bind" {
            o.bind = true;
        } else if opt == "rbind" {
            o.bind = true;
            o.recursive_bind = true;
        } else if opt == "idmap" || opt == "ridmap" {
            return Err(format!(
                "mount option {opt:?}: id-mapped mounts are not supported"
            ));
        } else if opt.is_empty() {
            continue;
        } else {
            data.push(opt);
        }
    }
    o.data = data.join(",");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> MountOptions {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o = p(&["nosuid", "ro", "mode=755", "size=65536k", "rslave", "rbind"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_RDONLY);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
        assert!(o.bind && o.recursive_bind);
    }

    #[test]
    fn later_option_wins() {
        assert_eq!(p(&["ro", "rw"]).flags, 0);
        assert_eq!(p(&["rw", "ro"]).flags, libc::MS_RDONLY);
    }

    #[test]
    fn recursive_attributes() {
        let o = p(&["rro", "rnosuid"]);
        assert_eq!(o.rec_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert!(parse(&["idmap".into()]).is_err());
    }
}
