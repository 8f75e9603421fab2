//! The uid and gid maps of a new user namespace, written by the parent once the child exists.
//! Root (in its own namespace) writes any map itself. An ordinary user may write only a map of
//! their own ids, and only after denying `setgroups`; anything wider goes through the setuid
//! helpers `newuidmap`/`newgidmap` (Debian's `uidmap`), which check `/etc/subuid` and
//! `/etc/subgid`, as runc does. A map that cannot be written is an error, never a narrower map.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::error::{Context, Error, Result};
use crate::rootless::Privilege;

/// How the maps of one container are written.
#[derive(Debug, PartialEq, Eq)]
enum Writer {
    /// Root in its own user namespace: both maps straight into /proc.
    Direct,
    /// An ordinary user mapping only their own uid and gid: `setgroups` denied, then directly.
    OwnIds,
    /// Anything else for an ordinary user: newuidmap and newgidmap.
    Helpers,
}

fn writer(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping], p: &Privilege) -> Writer {
    if p.euid == 0 {
        return Writer::Direct;
    }
    let own = |maps: &[LinuxIdMapping], id: u32| matches!(maps, [m] if m.host_id() == id && m.size() == 1);
    if own(uid, p.euid) && own(gid, p.egid) {
        Writer::OwnIds
    } else {
        Writer::Helpers
    }
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the maps of the child `pid`, the spec's `linux.uidMappings` and `gidMappings`.
pub fn write(pid: i32, spec: &Spec, p: &Privilege) -> Result<()> {
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("user namespace without linux section"))?;
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    write_for(pid, uid, gid, p)
}

/// Writes these maps for `pid`, as this process may (rootless berth's own namespace).
pub fn write_maps(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    write_for(pid, uid, gid, &Privilege::detect()?)
}

fn write_for(
    pid: i32,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
    p: &Privilege,
) -> Result<()> {
    match writer(uid, gid, p) {
        Writer::Direct => {
            write_file(pid, "uid_map", &map_text(uid))?;
            write_file(pid, "gid_map", &map_text(gid))
        }
        Writer::OwnIds => {
            // An unprivileged gid_map needs setgroups denied first (user_namespaces(7)): the
            // container can then never call setgroups, which the init checks before it does.
            write_file(pid, "setgroups", "deny")?;
            write_file(pid, "uid_map", &map_text(uid))?;
            write_file(pid, "gid_map", &map_text(gid))
        }
        Writer::Helpers => {
            run_helper("newuidmap", pid, uid)?;
            run_helper("newgidmap", pid, gid)
        }
    }
}

fn write_file(pid: i32, name: &str, text: &str) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/{name}"), text.as_bytes())
        .with_ctx(|| format!("write {name} {text:?}"))
}

/// The helper's path: from PATH, else Debian's /usr/bin.
fn helper_path(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `newuidmap PID INSIDE OUTSIDE COUNT…`; its complaint (a range /etc/subuid does not grant)
/// becomes the error.
fn run_helper(name: &str, pid: i32, maps: &[LinuxIdMapping]) -> Result<()> {
    let path = helper_path(name).ok_or_else(|| {
        Error::msg(format!(
            "{name} not found: mapping ids other than your own needs it (install Debian's uidmap)"
        ))
    })?;
    let mut cmd = Command::new(&path);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_ctx(|| format!("run {}", path.display()))?;
    if !out.status.success() {
        crate::bail!(
            "{name} {}: {} ({})",
            map_text(maps).trim_end().replace('\n', ", "),
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    fn user(id: u32) -> Privilege {
        Privilege {
            euid: id,
            egid: id,
            initial_userns: true,
        }
    }

    #[test]
    fn root_writes_any_map_itself() {
        let p = Privilege::root();
        assert_eq!(
            writer(&[m(0, 100000, 65536)], &[m(0, 100000, 65536)], &p),
            Writer::Direct
        );
    }

    #[test]
    fn a_user_maps_their_own_ids_alone_and_others_through_the_helpers() {
        let p = user(1000);
        assert_eq!(
            writer(&[m(0, 1000, 1)], &[m(0, 1000, 1)], &p),
            Writer::OwnIds
        );
        let wide = [m(0, 1000, 1), m(1, 100000, 65536)];
        assert_eq!(writer(&wide, &[m(0, 1000, 1)], &p), Writer::Helpers);
        assert_eq!(
            writer(&[m(0, 1001, 1)], &[m(0, 1000, 1)], &p),
            Writer::Helpers
        );
    }

    #[test]
    fn map_text_is_one_line_a_range() {
        assert_eq!(
            map_text(&[m(0, 1000, 1), m(1, 100000, 65536)]),
            "0 1000 1\n1 100000 65536\n"
        );
    }
}
