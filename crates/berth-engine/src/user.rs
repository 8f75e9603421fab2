//! `--user NAME|UID[:GROUP]` resolved through the image's own `/etc/passwd` and `/etc/group`, read
//! with every path resolved inside the container's root (a hostile image's symlinked `/etc/passwd`
//! cannot make berth read a host file).

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let root = std::fs::File::open(rootfs).ok()?;
    // An O_PATH handle resolved inside the root, reopened for reading through /proc (the kernel
    // does not resolve the path again).
    let fd = berth_runtime::inroot::open(root.as_raw_fd(), Path::new(path), 0).ok()?;
    let file = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut s = String::new();
    file.take(4 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) against the root at `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let passwd = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    let groups = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    // name:x:uid:gid:gecos:home:shell
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && (f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user)));
    let (uid, mut gid, home, name) = match (&entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse::<u32>()
                .map_err(|_| format!("unable to find user {user}: bad /etc/passwd entry"))?,
            f[3].parse::<u32>().unwrap_or(0),
            f[5].to_string(),
            f[0].to_string(),
        ),
        (None, Ok(n)) => (n, 0, "/".to_string(), String::new()),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ))
        }
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    // Supplementary groups: those listing the user by name (only when no group was forced).
    let additional_gids = if group.is_none() && !name.is_empty() {
        groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect()
    } else {
        Vec::new()
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_uids_and_groups_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .unwrap();
        let app = resolve(d.path(), "app").unwrap();
        assert_eq!(
            (
                app.uid,
                app.gid,
                app.additional_gids.clone(),
                app.home.as_str()
            ),
            (1000, 1000, vec![10], "/home/app")
        );
        assert_eq!(resolve(d.path(), "1000:wheel").unwrap().gid, 10);
        assert_eq!(resolve(d.path(), "4242").unwrap().uid, 4242);
        assert!(resolve(d.path(), "nobody")
            .unwrap_err()
            .contains("unable to find user nobody"));
    }

    #[test]
    fn a_symlinked_passwd_cannot_point_at_the_host() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("etc/passwd")).unwrap();
        // The link resolves inside the root, where there is no /etc/passwd beyond itself.
        assert!(resolve(d.path(), "root").is_err());
    }
}
