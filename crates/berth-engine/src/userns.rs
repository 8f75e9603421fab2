//! The container's user namespace, from `--userns` and `--uidmap/--gidmap`: `host` (the default:
//! none, root is the host's root), `auto` (a fresh 65536-id range per container from berth's own
//! range in /etc/subuid and /etc/subgid, like podman's), or the maps given. A range is in use for
//! as long as a snapshot is remapped to it, so `rm` releases it; allocation runs under the names
//! lock. It never edits a line of /etc/subuid or /etc/subgid but berth's own, added once.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use berth_image::snapshot::{IdMap, IdMapping};

/// The name berth's range goes by in /etc/subuid and /etc/subgid.
pub const SUBID_OWNER: &str = "berth";
/// The ids each `--userns=auto` container gets (container ids 0-65535).
pub const AUTO_SIZE: u32 = 65536;
/// The range berth adds for itself when the files have none: above where `useradd` hands out
/// subordinate ids (SUB_UID_MAX defaults to 600100000), room for 16384 containers.
const OWN_START: u32 = 1 << 30;
const OWN_COUNT: u32 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("--userns {0:?}: want host or auto")]
    BadMode(String),
    #[error("{flag} {value:?}: want CONTAINER_ID:HOST_ID:SIZE")]
    BadMap { flag: &'static str, value: String },
    #[error("conflicting options: --userns={0} and --uidmap/--gidmap")]
    Conflict(String),
    #[error("--userns=auto: {file}: {source}")]
    SubIds {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("--userns=auto: berth's ranges in /etc/subuid ({uid:?}) and /etc/subgid ({gid:?}) differ: make them the same")]
    Mismatch { uid: (u32, u32), gid: (u32, u32) },
    #[error("--userns=auto: every {AUTO_SIZE}-id range of berth's {start}-{end} is in use (`rm` containers, or widen the \"berth\" lines of /etc/subuid and /etc/subgid)")]
    Exhausted { start: u32, end: u64 },
    #[error("--userns/--uidmap/--gidmap: rootless berth's containers share your user namespace already (root in them is you)")]
    Rootless,
    #[error("--userns=auto: the ranges in use could not be read: {0}")]
    InUse(#[source] berth_image::snapshot::SnapshotError),
}

/// What the flags ask for (checked before anything is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// No user namespace.
    Host,
    /// A fresh range from berth's own.
    Auto,
    /// The maps given (`--gidmap` defaults to `--uidmap`'s, as podman's).
    Maps(IdMap),
}

/// `--userns`, `--uidmap`, `--gidmap` as one request.
pub fn request(userns: &str, uidmap: &[String], gidmap: &[String]) -> Result<Request, UsernsError> {
    let mode = match userns {
        "" | "host" => None,
        "auto" => Some("auto"),
        other => return Err(UsernsError::BadMode(other.into())),
    };
    if uidmap.is_empty() && gidmap.is_empty() {
        return Ok(match mode {
            None => Request::Host,
            Some(_) => Request::Auto,
        });
    }
    if let Some(m) = mode.or((userns == "host").then_some("host")) {
        return Err(UsernsError::Conflict(m.into()));
    }
    let uid = parse_maps("--uidmap", uidmap)?;
    let gid = parse_maps("--gidmap", gidmap)?;
    let (uid, gid) = match (uid.is_empty(), gid.is_empty()) {
        (false, true) => (uid.clone(), uid),
        (true, false) => (gid.clone(), gid),
        _ => (uid, gid),
    };
    Ok(Request::Maps(IdMap { uid, gid }))
}

fn parse_maps(flag: &'static str, values: &[String]) -> Result<Vec<IdMapping>, UsernsError> {
    values
        .iter()
        .map(|v| {
            let bad = || UsernsError::BadMap {
                flag,
                value: v.clone(),
            };
            let n: Vec<u32> = v
                .split(':')
                .map(|f| f.parse::<u32>().map_err(|_| bad()))
                .collect::<Result<_, _>>()?;
            match n[..] {
                [c, h, s] if s > 0 && c.checked_add(s).is_some() && h.checked_add(s).is_some() => {
                    Ok(IdMapping {
                        container_id: c,
                        host_id: h,
                        size: s,
                    })
                }
                _ => Err(bad()),
            }
        })
        .collect()
}

/// A fresh map for `--userns=auto`: container ids 0-65535 on the first `AUTO_SIZE` slot of
/// berth's range that no map in `in_use` touches.
pub fn allocate(own: (u32, u32), in_use: &[IdMap]) -> Result<IdMap, UsernsError> {
    let (start, count) = own;
    let end = start as u64 + count as u64;
    let taken = |lo: u64| {
        let hi = lo + AUTO_SIZE as u64;
        in_use.iter().any(|m| {
            m.uid.iter().chain(&m.gid).any(|r| {
                let (a, b) = (r.host_id as u64, r.host_id as u64 + r.size as u64);
                a < hi && lo < b
            })
        })
    };
    let mut lo = start as u64;
    while lo + AUTO_SIZE as u64 <= end {
        if !taken(lo) {
            let range = vec![IdMapping {
                container_id: 0,
                host_id: lo as u32,
                size: AUTO_SIZE,
            }];
            return Ok(IdMap {
                uid: range.clone(),
                gid: range,
            });
        }
        lo += AUTO_SIZE as u64;
    }
    Err(UsernsError::Exhausted { start, end })
}

/// Berth's range in /etc/subuid and /etc/subgid (the same in both), added to both when neither
/// has one: `berth:1073741824:1073741824`, or else the lowest place above that, aligned to
/// `AUTO_SIZE`, that no range in use touches (podman's `containers` lines often sit above it).
pub fn own_range() -> Result<(u32, u32), UsernsError> {
    own_range_in(Path::new("/etc/subuid"), Path::new("/etc/subgid"))
}

fn own_range_in(subuid: &Path, subgid: &Path) -> Result<(u32, u32), UsernsError> {
    let err = |file: &Path| {
        let file = file.display().to_string();
        move |source| UsernsError::SubIds { file, source }
    };
    let (uid_text, gid_text) = (
        read_or_empty(subuid).map_err(err(subuid))?,
        read_or_empty(subgid).map_err(err(subgid))?,
    );
    match (find_own(&uid_text), find_own(&gid_text)) {
        (Some(u), Some(g)) if u == g => return Ok(u),
        (Some(u), Some(g)) => return Err(UsernsError::Mismatch { uid: u, gid: g }),
        _ => {}
    }
    let in_use: Vec<(u64, u64)> = ranges(&uid_text)
        .chain(ranges(&gid_text))
        .map(|(_, s, c)| (s as u64, s as u64 + c as u64))
        .collect();
    let start = first_free(in_use, OWN_START as u64, OWN_COUNT as u64)
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| {
            err(subuid)(io::Error::other(
                "no room for berth's range among the ranges in use: add a \"berth:START:COUNT\" line",
            ))
        })?;
    let own = (start, OWN_COUNT);
    for file in [subuid, subgid] {
        add_own(file, own).map_err(err(file))?;
    }
    Ok(own)
}

fn read_or_empty(p: &Path) -> io::Result<String> {
    match std::fs::read_to_string(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        r => r,
    }
}

/// The lowest start `>= from`, aligned to `AUTO_SIZE`, of `count` ids within u32 that overlap
/// no `[start, end)` of `in_use`; one pass over the ranges sorted by start.
fn first_free(mut in_use: Vec<(u64, u64)>, from: u64, count: u64) -> Option<u64> {
    let align = |v: u64| v.div_ceil(AUTO_SIZE as u64) * AUTO_SIZE as u64;
    in_use.sort_unstable();
    let mut at = align(from);
    for (a, b) in in_use {
        if a >= at + count {
            break;
        }
        if b > at {
            at = align(b);
        }
    }
    (at + count <= 1 << 32).then_some(at)
}

/// `(name, start, count)` of each well-formed line.
fn ranges(text: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    text.lines().filter_map(|l| {
        let mut f = l.trim().split(':');
        let (name, start, count) = (f.next()?, f.next()?, f.next()?);
        Some((name, start.parse().ok()?, count.parse().ok()?))
    })
}

fn find_own(text: &str) -> Option<(u32, u32)> {
    ranges(text)
        .find(|(n, _, _)| *n == SUBID_OWNER)
        .map(|(_, s, c)| (s, c))
}

/// Appends berth's line under an exclusive flock, unless another berth added it meanwhile.
fn add_own(file: &Path, (start, count): (u32, u32)) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(file)?;
    // SAFETY: flock on an fd we own; released when `f` is closed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    if find_own(&text).is_some() {
        return Ok(());
    }
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.write_all(format!("{sep}{SUBID_OWNER}:{start}:{count}\n").as_bytes())
}

/// The map in words, for `explain`: "root in the container is uid 100000 on the host, …".
pub fn describe(map: &IdMap) -> Vec<String> {
    let mut out = Vec::new();
    match (map.host_uid(0), map.host_gid(0)) {
        (Some(u), Some(g)) => out.push(format!(
            "root in the container is uid {u} (gid {g}) on the host, an unprivileged id there"
        )),
        _ => out.push("root in the container is not mapped to any host id".into()),
    }
    for (what, ranges) in [("uids", &map.uid), ("gids", &map.gid)] {
        for r in ranges {
            out.push(format!(
                "container {what} {}-{} are host {what} {}-{}",
                r.container_id,
                r.container_id as u64 + r.size as u64 - 1,
                r.host_id,
                r.host_id as u64 + r.size as u64 - 1
            ));
        }
    }
    out
}

/// How the files of a container with its own maps are owned, for `explain`.
pub const IDMAPPED_FILES: &str = "the image's files show as owned by the mapped ids through idmapped mounts (the layers stay root's on disk); what the container writes is stored with its mapped ids";

/// What rootless berth cannot do, for `explain`.
pub const ROOTLESS_LIMITS: &str = "rootless: the layers are unpacked with their owners mapped to your subordinate ids; no cgroup limits without a delegated cgroup (a limit asked for is an error); networks: the default one through pasta (published ports forwarded by pasta), none, host (your own) and container:, no user-defined networks; no --userns=auto (the namespace is yours already)";

#[cfg(test)]
mod tests {
    use super::*;

    fn map(host: u32, size: u32) -> IdMap {
        let r = vec![IdMapping {
            container_id: 0,
            host_id: host,
            size,
        }];
        IdMap {
            uid: r.clone(),
            gid: r,
        }
    }

    #[test]
    fn auto_ranges_never_overlap_one_in_use() {
        let own = (1 << 30, 4 * AUTO_SIZE);
        let first = allocate(own, &[]).unwrap();
        assert_eq!(first, map(1 << 30, AUTO_SIZE));
        let second = allocate(own, std::slice::from_ref(&first)).unwrap();
        assert_eq!(second.uid[0].host_id, (1 << 30) + AUTO_SIZE);
        // An explicit map straddling the third slot pushes auto past it.
        let odd = map((1 << 30) + 2 * AUTO_SIZE + 10, 5);
        let third = allocate(own, &[first.clone(), second.clone(), odd.clone()]).unwrap();
        assert_eq!(third.uid[0].host_id, (1 << 30) + 3 * AUTO_SIZE);
        assert!(matches!(
            allocate(own, &[first, second, odd, third]),
            Err(UsernsError::Exhausted { .. })
        ));
    }

    #[test]
    fn flags_make_one_request() {
        assert_eq!(request("", &[], &[]).unwrap(), Request::Host);
        assert_eq!(request("host", &[], &[]).unwrap(), Request::Host);
        assert_eq!(request("auto", &[], &[]).unwrap(), Request::Auto);
        assert!(request("keep-id", &[], &[]).is_err());
        let m = vec!["0:100000:65536".to_string()];
        assert_eq!(
            request("", &m, &[]).unwrap(),
            Request::Maps(map(100000, 65536))
        );
        assert!(matches!(
            request("auto", &m, &[]),
            Err(UsernsError::Conflict(_))
        ));
        for bad in ["0:1", "0:x:1", "0:1:0", "4294967295:1:2"] {
            assert!(request("", &[bad.into()], &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_range_is_added_once_above_the_ranges_in_use() {
        let dir = std::env::temp_dir().join(format!("berth-subid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (u, g) = (dir.join("subuid"), dir.join("subgid"));
        std::fs::write(&u, "alice:100000:65536\nbig:1073741824:5\n").unwrap();
        std::fs::write(&g, "alice:100000:65536").unwrap();
        let own = own_range_in(&u, &g).unwrap();
        assert_eq!(own, (1073741824 + AUTO_SIZE, OWN_COUNT));
        assert_eq!(own_range_in(&u, &g).unwrap(), own);
        let text = std::fs::read_to_string(&g).unwrap();
        assert_eq!(text.matches("berth:").count(), 1, "{text}");
        assert!(text.starts_with("alice:100000:65536\nberth:"), "{text}");
        std::fs::write(&g, "berth:5:5\n").unwrap();
        assert!(matches!(
            own_range_in(&u, &g),
            Err(UsernsError::Mismatch { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn own_range_takes_the_lowest_gap_that_fits() {
        let g = 1u64 << 30;
        assert_eq!(first_free(vec![], g, g), Some(g));
        // podman's "containers" line above berth's default leaves the default free.
        assert_eq!(first_free(vec![(2 * g, 3 * g)], g, g), Some(g));
        // A range inside the default pushes berth above it, aligned.
        assert_eq!(
            first_free(vec![(g + 5, g + 10), (3 * g, 3 * g + 1)], g, g),
            Some(g + AUTO_SIZE as u64)
        );
        // Nothing fits below 2^32.
        assert_eq!(first_free(vec![(g, 2 * g), (2 * g + 1, 4 * g)], g, g), None);
    }

    #[test]
    fn explain_says_who_root_is_on_the_host() {
        let words = describe(&map(100000, 65536)).join("\n");
        assert!(
            words.contains("root in the container is uid 100000"),
            "{words}"
        );
        assert!(words.contains("container uids 0-65535 are host uids 100000-165535"));
    }
}
