//! The names one network's resolver answers: `<run>/<net>/dns/hosts`, one line per endpoint,
//! `<container-id> <ipv4> [<ipv6>|-] <name> <alias>…`, replaced atomically (so the server sees a
//! new inode and re-reads it). Written by attach/detach under the network lock; read by the server.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::state::write_atomic;

/// One endpoint's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub container_id: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    pub names: Vec<String>,
}

impl Entry {
    fn line(&self) -> String {
        let v6 = self
            .ipv6
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        format!(
            "{} {} {} {}\n",
            self.container_id,
            self.ipv4,
            v6,
            self.names.join(" ")
        )
    }

    fn parse(line: &str) -> Option<Entry> {
        let mut it = line.split_whitespace();
        let container_id = it.next()?.to_string();
        let ipv4 = it.next()?.parse().ok()?;
        let ipv6 = match it.next()? {
            "-" => None,
            a => Some(a.parse().ok()?),
        };
        Some(Entry {
            container_id,
            ipv4,
            ipv6,
            names: it.map(|n| n.to_ascii_lowercase()).collect(),
        })
    }
}

/// Every entry of the table at `path` (none if it does not exist).
pub fn read(path: &Path) -> io::Result<Vec<Entry>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s.lines().filter_map(Entry::parse).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Replaces the entry of `container_id` (or removes it with `None`); returns how many are left.
/// An empty table is removed.
pub fn update(path: &Path, container_id: &str, entry: Option<&Entry>) -> io::Result<usize> {
    let mut entries: Vec<Entry> = read(path)?
        .into_iter()
        .filter(|e| e.container_id != container_id)
        .collect();
    entries.extend(entry.cloned());
    if entries.is_empty() {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => return Ok(0),
        }
    }
    let text: String = entries.iter().map(Entry::line).collect();
    write_atomic(path, text.as_bytes())?;
    Ok(entries.len())
}

/// Lookups built from a table: lower-case name → addresses, address → first name.
#[derive(Debug, Default)]
pub struct Names {
    pub by_name: HashMap<String, Vec<IpAddr>>,
    pub by_addr: HashMap<IpAddr, String>,
}

impl Names {
    pub fn from_entries(entries: &[Entry]) -> Names {
        let mut n = Names::default();
        for e in entries {
            let addrs: Vec<IpAddr> = std::iter::once(IpAddr::V4(e.ipv4))
                .chain(e.ipv6.map(IpAddr::V6))
                .collect();
            for name in &e.names {
                n.by_name.entry(name.clone()).or_default().extend(&addrs);
            }
            if let Some(first) = e.names.first() {
                for a in &addrs {
                    n.by_addr.entry(*a).or_insert_with(|| first.clone());
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_replaced_and_the_last_removal_deletes_the_table() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("hosts");
        let e = |id: &str, ip: &str, names: &[&str]| Entry {
            container_id: id.into(),
            ipv4: ip.parse().unwrap(),
            ipv6: None,
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            update(&p, "a", Some(&e("a", "10.0.0.2", &["web", "www"]))).unwrap(),
            1
        );
        assert_eq!(
            update(&p, "b", Some(&e("b", "10.0.0.3", &["db"]))).unwrap(),
            2
        );
        assert_eq!(
            update(&p, "a", Some(&e("a", "10.0.0.4", &["web"]))).unwrap(),
            2
        );
        let names = Names::from_entries(&read(&p).unwrap());
        assert_eq!(names.by_name["web"], vec![IpAddr::from([10, 0, 0, 4])]);
        assert!(!names.by_name.contains_key("www"));
        assert_eq!(names.by_addr[&IpAddr::from([10, 0, 0, 3])], "db");
        assert_eq!(update(&p, "a", None).unwrap(), 1);
        assert_eq!(update(&p, "b", None).unwrap(), 0);
        assert!(!p.exists());
    }
}
