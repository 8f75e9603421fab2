//! `--user NAME|UID[:GROUP|GID]` resolved through the image's own `/etc/passwd` and `/etc/group`,
//! read with every path resolved inside the container's root (a hostile image's symlinked
//! `/etc/passwd` cannot make berth read a host file). runc's rule: a number is always an id and is
//! never matched against the names in those files, whatever names they hold; a name must be there.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;

/// The largest uid or gid accepted (runc's bound, for 32-bit `id_t` compatibility).
pub const MAX_ID: u64 = (1 << 31) - 1;
/// The largest passwd or group file read.
const MAX_FILE: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{what} {value} is out of range (0-{MAX_ID})")]
    OutOfRange { what: &'static str, value: String },
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("unable to find user {user}: bad /etc/passwd entry: uid {uid:?} is not a number")]
    BadEntry { user: String, uid: String },
    #[error("{path} in the image: {source}")]
    Read {
        path: &'static str,
        source: std::io::Error,
    },
}

/// A user or group argument: a number (always an id) or a name.
#[derive(Debug, PartialEq, Eq)]
enum Arg<'a> {
    Id(u32),
    Name(&'a str),
}

/// Go's `strconv.Atoi` decides what is numeric: an optional sign and decimal digits. Such an
/// argument is an id, and one outside `0..=MAX_ID` is refused as such.
fn parse_arg<'a>(what: &'static str, s: &'a str) -> Result<Arg<'a>, UserError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Arg::Name(s));
    }
    let out_of_range = || UserError::OutOfRange {
        what,
        value: s.to_string(),
    };
    if s.starts_with('-') && digits.bytes().any(|b| b != b'0') {
        return Err(out_of_range());
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= MAX_ID => Ok(Arg::Id(n as u32)),
        _ => Err(out_of_range()),
    }
}

/// The contents of `path` inside the root; a missing file reads as empty (a numeric user needs no
/// passwd file), anything else that cannot be read is an error.
fn read_in_root(rootfs: &Path, path: &'static str) -> Result<String, UserError> {
    let fail = |source| UserError::Read { path, source };
    let root = std::fs::File::open(rootfs).map_err(fail)?;
    // An O_PATH handle resolved inside the root, reopened for reading through /proc (the kernel
    // does not resolve the path again).
    let fd = match berth_sys::root::open(root.as_raw_fd(), Path::new(path), 0) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(fail(e)),
    };
    let file = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(fail)?;
    if !file.metadata().map_err(fail)?.is_file() {
        return Err(fail(std::io::Error::other("not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(fail(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        ))));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The colon-separated fields of each line with at least `min` of them.
fn entries(file: &str, min: usize) -> impl Iterator<Item = Vec<&str>> {
    file.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(move |f| f.len() >= min)
}

/// What can be told of `spec` without the image's files: a numeric uid or gid in range.
pub fn check(spec: &str) -> Result<(), UserError> {
    let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
    parse_arg("uid", user)?;
    parse_arg("gid", group)?;
    Ok(())
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) against the root at `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser, UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = parse_arg("uid", if user.is_empty() { "0" } else { user })?;
    let group = group.map(|g| parse_arg("gid", g)).transpose()?;
    let passwd = read_in_root(rootfs, "/etc/passwd")?;
    // name:x:uid:gid:gecos:home:shell
    let entry = entries(&passwd, 7).find(|f| match user {
        Arg::Id(uid) => f[2].parse::<u32>() == Ok(uid),
        Arg::Name(name) => f[0] == name,
    });
    let (uid, mut gid, home, name) = match (entry, &user) {
        (Some(f), _) => (
            f[2].parse::<u32>().map_err(|_| UserError::BadEntry {
                user: f[0].to_string(),
                uid: f[2].to_string(),
            })?,
            f[3].parse::<u32>().unwrap_or(0),
            f[5].to_string(),
            f[0].to_string(),
        ),
        (None, Arg::Id(uid)) => (*uid, 0, "/".to_string(), String::new()),
        (None, Arg::Name(name)) => return Err(UserError::NoUser(name.to_string())),
    };
    let needs_groups = match group {
        Some(Arg::Name(_)) => true,
        Some(Arg::Id(_)) => false,
        None => !name.is_empty(),
    };
    let groups = if needs_groups {
        read_in_root(rootfs, "/etc/group")?
    } else {
        String::new()
    };
    match group {
        Some(Arg::Id(n)) => gid = n,
        Some(Arg::Name(g)) => {
            gid = entries(&groups, 3)
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?
        }
        None => {}
    }
    // Supplementary groups: those listing the user by name (only when no group was forced).
    let additional_gids = if group.is_none() && !name.is_empty() {
        entries(&groups, 4)
            .filter(|f| f[3].split(',').any(|m| m == name))
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

/// `--group-add` entries as group ids: a number is the id, a name is looked up in the root's
/// `/etc/group` (and must be there).
pub fn group_ids(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>, UserError> {
    let mut file = None;
    let mut out = Vec::new();
    for g in groups {
        let id = match parse_arg("gid", g)? {
            Arg::Id(n) => n,
            Arg::Name(name) => {
                if file.is_none() {
                    file = Some(read_in_root(rootfs, "/etc/group")?);
                }
                entries(file.as_deref().unwrap_or_default(), 3)
                    .find(|f| f[0] == name)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| UserError::NoGroup(name.to_string()))?
            }
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_add_takes_ids_and_names_from_the_roots_group_file() {
        let d = root("root:x:0:0::/root:/bin/sh\n", "staff:x:50:\naudio:x:29:\n");
        let ids = group_ids(
            d.path(),
            &["audio".into(), "1234".into(), "staff".into(), "29".into()],
        );
        assert_eq!(ids.unwrap(), [29, 1234, 50]);
        assert!(matches!(
            group_ids(d.path(), &["nope".into()]),
            Err(UserError::NoGroup(_))
        ));
    }

    fn root(passwd: &str, group: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(d.path().join("etc/group"), group).unwrap();
        d
    }

    #[test]
    fn names_uids_and_groups_resolve_inside_the_root() {
        let d = root(
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
        );
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
        let by_uid = resolve(d.path(), "1000").unwrap();
        assert_eq!(
            (by_uid.uid, by_uid.gid, by_uid.home.as_str()),
            (1000, 1000, "/home/app")
        );
        assert_eq!(resolve(d.path(), "4242").unwrap().uid, 4242);
        assert_eq!(resolve(d.path(), "").unwrap().home, "/root");
        assert_eq!(
            resolve(d.path(), "nobody").unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            resolve(d.path(), "app:staff").unwrap_err().to_string(),
            "unable to find group staff: no matching entries in group file"
        );
    }

    #[test]
    fn a_number_is_always_a_uid_never_a_name() {
        // Users named with digits: "1000" is root, "0" is an unprivileged user.
        let d = root(
            "1000:x:0:0:evil:/root:/bin/sh\n0:x:5000:5000::/home/zero:/bin/sh\nreal:x:1000:1000::/home/real:/bin/sh\n",
            "1000:x:0:\n77:x:0:\nstaff:x:50:\n",
        );
        let u = resolve(d.path(), "1000").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/real"));
        let u = resolve(d.path(), "0").unwrap();
        assert_eq!((u.uid, u.gid), (0, 0), "the user named \"0\" was picked");
        // Numeric groups are gids too, never the group named "77".
        let u = resolve(d.path(), "1000:77").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 77));
        // Zero-padded and signed forms are numbers as Go's Atoi reads them.
        assert_eq!(resolve(d.path(), "01000").unwrap().uid, 1000);
        assert_eq!(resolve(d.path(), "+1000").unwrap().uid, 1000);
        // A uid with no entry runs with gid 0 and home /.
        let u = resolve(d.path(), "31337").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (31337, 0, "/"));
    }

    #[test]
    fn ids_out_of_range_are_refused_before_the_image_is_read() {
        assert!(check("").is_ok() && check("app:staff").is_ok() && check("1000:1000").is_ok());
        assert!(check("99999999999").is_err());
        assert!(check("0:4294967296").is_err());
    }

    #[test]
    fn ids_out_of_range_are_refused_as_such() {
        let d = root("4294967296:x:0:0::/:/bin/sh\n", "4294967296:x:0:\n");
        for (spec, msg) in [
            (
                "4294967296",
                "uid 4294967296 is out of range (0-2147483647)",
            ),
            (
                "2147483648",
                "uid 2147483648 is out of range (0-2147483647)",
            ),
            ("-1", "uid -1 is out of range (0-2147483647)"),
            (
                "0:4294967296",
                "gid 4294967296 is out of range (0-2147483647)",
            ),
            ("0:-5", "gid -5 is out of range (0-2147483647)"),
            (
                "99999999999999999999999",
                "uid 99999999999999999999999 is out of range (0-2147483647)",
            ),
        ] {
            assert_eq!(resolve(d.path(), spec).unwrap_err().to_string(), msg);
        }
        assert_eq!(resolve(d.path(), "2147483647").unwrap().uid, 2147483647);
    }

    #[test]
    fn a_symlinked_passwd_cannot_point_at_the_host() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("etc/passwd")).unwrap();
        // The link resolves inside the root, where there is no /etc/passwd beyond itself.
        assert!(resolve(d.path(), "root").is_err());
    }

    #[test]
    fn an_unreadable_passwd_fails_closed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/passwd")).unwrap();
        assert_eq!(
            resolve(d.path(), "1000").unwrap_err().to_string(),
            "/etc/passwd in the image: not a regular file"
        );
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve(d.path(), "1000").unwrap().uid,
            1000,
            "no /etc at all"
        );
    }
}
