//! User namespaces as /proc shows them: a process's uid and gid maps, and whether this process
//! runs in the initial user namespace (the host's root is root) or in one with a narrower map
//! (rootless berth, a user-namespaced container). It only reads; making namespaces and writing
//! maps belong to the runtime and the engine.

use std::fmt;
use std::io;

/// One line of a `uid_map` or `gid_map`: `count` ids from `inside` are `outside` and on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl IdRange {
    /// The id outside for `inside`, if this range maps it.
    pub fn outside_of(&self, inside: u32) -> Option<u32> {
        let offset = inside.checked_sub(self.inside)?;
        (offset < self.count).then(|| self.outside.wrapping_add(offset))
    }
}

impl fmt::Display for IdRange {
    /// `inside outside count`, as the map files write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

/// A process's two maps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdMaps {
    pub uid: Vec<IdRange>,
    pub gid: Vec<IdRange>,
}

/// The map of the initial user namespace: every id is itself.
const IDENTITY: IdRange = IdRange {
    inside: 0,
    outside: 0,
    count: u32::MAX,
};

impl IdMaps {
    /// The maps of `pid` ("self" for this process).
    pub fn of(pid: &str) -> io::Result<IdMaps> {
        let read = |which: &str| -> io::Result<Vec<IdRange>> {
            let path = format!("/proc/{pid}/{which}");
            let text = std::fs::read_to_string(&path)?;
            parse_map(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        };
        Ok(IdMaps {
            uid: read("uid_map")?,
            gid: read("gid_map")?,
        })
    }

    /// The initial user namespace's maps (each id is itself).
    pub fn is_identity(&self) -> bool {
        self.uid == [IDENTITY] && self.gid == [IDENTITY]
    }

    /// The host uid of `inside`, if mapped.
    pub fn host_uid(&self, inside: u32) -> Option<u32> {
        self.uid.iter().find_map(|r| r.outside_of(inside))
    }

    /// The host gid of `inside`, if mapped.
    pub fn host_gid(&self, inside: u32) -> Option<u32> {
        self.gid.iter().find_map(|r| r.outside_of(inside))
    }
}

/// Parses the text of a `uid_map`/`gid_map` (three numbers a line).
pub fn parse_map(text: &str) -> Result<Vec<IdRange>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let n: Vec<u32> = l
                .split_whitespace()
                .map(|f| f.parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("id map line {l:?}: {e}"))?;
            match n[..] {
                [inside, outside, count] => Ok(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => Err(format!("id map line {l:?}: want three numbers")),
            }
        })
        .collect()
}

/// Whether this process is in the initial user namespace. Read each time (a small /proc file):
/// a process may join a user namespace after its first question (rootless berth does), and a
/// cached answer would then be wrong. An unreadable map is an error: callers decide what a
/// namespace they cannot see means.
pub fn in_initial_namespace() -> io::Result<bool> {
    Ok(IdMaps::of("self")?.is_identity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernels_padded_columns() {
        let m = parse_map("         0       1000          1\n         1     100000      65536\n")
            .unwrap();
        assert_eq!(
            m,
            [
                IdRange {
                    inside: 0,
                    outside: 1000,
                    count: 1
                },
                IdRange {
                    inside: 1,
                    outside: 100000,
                    count: 65536
                }
            ]
        );
        let maps = IdMaps {
            uid: m.clone(),
            gid: m,
        };
        assert_eq!(maps.host_uid(0), Some(1000));
        assert_eq!(maps.host_uid(1), Some(100000));
        assert_eq!(maps.host_gid(65536), Some(165535));
        assert_eq!(maps.host_uid(65537), None);
        assert!(!maps.is_identity());
    }

    #[test]
    fn identity_is_the_initial_namespace() {
        let m = parse_map("0 0 4294967295\n").unwrap();
        let maps = IdMaps {
            uid: m.clone(),
            gid: m,
        };
        assert!(maps.is_identity());
        assert_eq!(maps.host_uid(4242), Some(4242));
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(parse_map("0 1000\n").is_err());
        assert!(parse_map("0 x 1\n").is_err());
        assert!(parse_map("0 1 2 3\n").is_err());
    }

    #[test]
    fn this_test_sees_its_own_maps() {
        let maps = IdMaps::of("self").unwrap();
        assert!(!maps.uid.is_empty() && !maps.gid.is_empty());
        assert_eq!(in_initial_namespace().unwrap(), maps.is_identity());
    }
}
