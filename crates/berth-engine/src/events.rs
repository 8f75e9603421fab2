//! The event journal: what happened to containers, images, networks and volumes, appended by
//! whichever berth process did it (the CLI, a monitor, the API service) to `<root>/events/journal`
//! as one JSON line per event, in Docker's event shape. It is bounded: past `MAX_JOURNAL` bytes
//! the file becomes `journal.1` (the one before is dropped). `berth events` and the API's
//! `/events` read it back and follow it with inotify. Writing an event never fails an operation.

use crate::container::Engine;
use crate::record::Record;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The size past which the journal is rotated (the rotated file is kept, so at most about twice
/// this is on disk).
pub const MAX_JOURNAL: u64 = 1 << 20;

/// A longer line is no event of ours and is skipped.
const MAX_LINE: usize = 64 * 1024;

/// Docker's event message (`events.Message`), with the legacy `status`/`id`/`from` of
/// container and image events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i128,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

impl Event {
    /// An event of `kind` (container, image, network, volume) about `id`, now.
    pub fn new(kind: &str, action: &str, id: &str) -> Event {
        let nanos = now_nanos();
        let legacy = matches!(kind, "container" | "image");
        Event {
            status: if legacy { action.into() } else { String::new() },
            id: if legacy { id.into() } else { String::new() },
            from: String::new(),
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: BTreeMap::new(),
            },
            scope: "local".into(),
            time: (nanos / 1_000_000_000) as i64,
            time_nano: nanos,
        }
    }

    /// A container event with Docker's attributes: its name, image and labels.
    pub fn container(rec: &Record, action: &str) -> Event {
        let mut e = Event::new("container", action, &rec.id);
        e.from = rec.image.clone();
        e.actor.attributes = rec.labels.clone();
        e.attr("image", &rec.image).attr("name", &rec.name)
    }

    /// An image event: `name` is the reference (pull, push, tag) or the ID (delete).
    pub fn image(action: &str, name: &str) -> Event {
        Event::new("image", action, name).attr("name", name)
    }

    /// What removing an image did: `untag` (by name) or `delete` (by ID).
    pub fn image_removed(r: &crate::images::Removed) -> Event {
        match r {
            crate::images::Removed::Untagged(name) => Event::image("untag", name),
            crate::images::Removed::Deleted(id) => Event::image("delete", id),
        }
    }

    /// A network event (`container` set for connect and disconnect).
    pub fn network(action: &str, id: &str, name: &str) -> Event {
        Event::new("network", action, id)
            .attr("name", name)
            .attr("type", "bridge")
    }

    /// A volume event.
    pub fn volume(action: &str, name: &str) -> Event {
        Event::new("volume", action, name).attr("driver", "local")
    }

    /// Adds an attribute.
    pub fn attr(mut self, key: &str, value: impl ToString) -> Event {
        self.actor.attributes.insert(key.into(), value.to_string());
        self
    }
}

/// Docker's event filters (`type`, `event`, `container`, `image`, `label`, `network`, `volume`),
/// each key matching when any of its values does.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    filters: BTreeMap<String, Vec<String>>,
}

const FILTER_KEYS: [&str; 9] = [
    "type",
    "event",
    "container",
    "image",
    "label",
    "network",
    "volume",
    "scope",
    "daemon",
];

impl EventFilter {
    /// From `key` → values; an unknown key is refused as Docker refuses it.
    pub fn new(filters: BTreeMap<String, Vec<String>>) -> Result<EventFilter, String> {
        if let Some(k) = filters.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
            return Err(format!("invalid filter '{k}'"));
        }
        Ok(EventFilter { filters })
    }

    /// From `key=value` words (the CLI's `--filter`).
    pub fn parse(words: &[String]) -> Result<EventFilter, String> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("bad format of filter (expected name=value): {w}"))?;
            map.entry(k.to_string()).or_default().push(v.to_string());
        }
        EventFilter::new(map)
    }

    pub fn matches(&self, e: &Event) -> bool {
        self.filters.iter().all(|(k, values)| {
            // Docker ANDs the values of `label` (each must match) and ORs those of other keys.
            let one = |v: &String| match k.as_str() {
                "type" => e.kind == *v,
                // `exec_start: sh -c …` is matched by `exec_start`.
                "event" => e.action == *v || e.action.split(':').next() == Some(v.as_str()),
                "container" => e.kind == "container" && names(e, v),
                "image" => match e.kind.as_str() {
                    "container" => e.actor.attributes.get("image") == Some(v),
                    "image" => names(e, v),
                    _ => false,
                },
                "network" => e.kind == "network" && names(e, v),
                "volume" => e.kind == "volume" && names(e, v),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => e.actor.attributes.get(lk).is_some_and(|x| x == lv),
                    None => e.actor.attributes.contains_key(v),
                },
                "scope" => e.scope == *v,
                _ => false,
            };
            match k.as_str() {
                "label" => values.iter().all(one),
                _ => values.iter().any(one),
            }
        })
    }
}

/// Whether `v` names the event's actor: its ID (or a prefix of 12 or more), or its name.
fn names(e: &Event, v: &str) -> bool {
    e.actor.id == v
        || (v.len() >= 12 && e.actor.id.starts_with(v))
        || e.actor.attributes.get("name").is_some_and(|n| n == v)
}

/// The journal of one store.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(root: &Path) -> Journal {
        Journal {
            dir: root.join("events"),
        }
    }

    fn current(&self) -> PathBuf {
        self.dir.join("journal")
    }

    fn rotated(&self) -> PathBuf {
        self.dir.join("journal.1")
    }

    /// Appends one event (one `write` of one line on an `O_APPEND` file: lines from several
    /// processes never interleave), rotating the journal when it has grown past its bound.
    pub fn append(&self, e: &Event) -> io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut f = match self.open_append() {
            Err(x) if x.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&self.dir)?;
                self.open_append()?
            }
            other => other?,
        };
        f.write_all(&line)?;
        if f.metadata()?.len() > MAX_JOURNAL {
            self.rotate(&f)?;
        }
        Ok(())
    }

    fn open_append(&self) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(self.current())
    }

    /// Renames the full journal aside, under the journal's lock, unless another writer did.
    fn rotate(&self, written: &File) -> io::Result<()> {
        let _lock = crate::record::flock(&self.dir.join("lock"))?;
        let mine = written.metadata()?;
        match fs::metadata(self.current()) {
            Ok(now) if now.ino() == mine.ino() && now.len() > MAX_JOURNAL => {
                fs::rename(self.current(), self.rotated())
            }
            _ => Ok(()),
        }
    }

    /// Every event on record, oldest first, and a follower that goes on from the last one.
    pub fn snapshot(&self) -> io::Result<(Vec<Event>, Follower)> {
        let mut follower = Follower::new(&self.dir)?;
        let mut events = read_events(&self.rotated());
        events.extend(follower.read_new());
        Ok((events, follower))
    }

    /// The events between `since` and `until` (nanoseconds since the epoch, inclusive).
    pub fn read(&self, since: Option<i128>, until: Option<i128>) -> Vec<Event> {
        let mut all = read_events(&self.rotated());
        all.extend(read_events(&self.current()));
        all.retain(|e| in_window(e, since, until));
        all
    }
}

/// Whether an event falls between `since` and `until` (inclusive; None is open).
pub fn in_window(e: &Event, since: Option<i128>, until: Option<i128>) -> bool {
    since.is_none_or(|s| e.time_nano >= s) && until.is_none_or(|u| e.time_nano <= u)
}

fn read_events(path: &Path) -> Vec<Event> {
    match File::open(path) {
        Ok(f) => parse_lines(BufReader::new(f)),
        Err(_) => Vec::new(),
    }
}

fn parse_lines(r: impl BufRead) -> Vec<Event> {
    r.split(b'\n')
        .map_while(Result::ok)
        .filter(|l| l.len() <= MAX_LINE)
        .filter_map(|l| serde_json::from_slice(&l).ok())
        .collect()
}

/// Follows the journal as it grows (and across its rotation), woken by inotify on its directory.
pub struct Follower {
    dir: PathBuf,
    inotify: OwnedFd,
    file: Option<File>,
    ino: u64,
    /// An unfinished last line (a write seen half way).
    partial: Vec<u8>,
}

impl Follower {
    fn new(dir: &Path) -> io::Result<Follower> {
        fs::create_dir_all(dir)?;
        // SAFETY: inotify_init1 returns a new fd or -1; ownership is taken at once.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a valid fd just returned to us alone.
        let inotify = unsafe { OwnedFd::from_raw_fd(fd) };
        let path =
            std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
        let mask = libc::IN_MODIFY | libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM;
        // SAFETY: a NUL-terminated path and our inotify fd.
        if unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), path.as_ptr(), mask) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut f = Follower {
            dir: dir.to_path_buf(),
            inotify,
            file: None,
            ino: 0,
            partial: Vec::new(),
        };
        f.reopen();
        Ok(f)
    }

    /// Opens the current journal if it is a file other than the one held.
    fn reopen(&mut self) -> bool {
        let Ok(file) = File::open(self.dir.join("journal")) else {
            return false;
        };
        let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
        if self.file.is_some() && ino == self.ino {
            return false;
        }
        self.file = Some(file);
        self.ino = ino;
        self.partial.clear();
        true
    }

    /// What was appended since the last read (all of a journal newly rotated in).
    fn read_new(&mut self) -> Vec<Event> {
        let mut out = self.drain_file();
        if self.reopen() {
            out.extend(self.drain_file());
        }
        out
    }

    fn drain_file(&mut self) -> Vec<Event> {
        let Some(f) = self.file.as_mut() else {
            return Vec::new();
        };
        let mut buf = std::mem::take(&mut self.partial);
        let _ = f.read_to_end(&mut buf);
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = buf.split_off(complete);
        if self.partial.len() > MAX_LINE {
            self.partial.clear();
        }
        parse_lines(&buf[..])
    }

    /// The events appended since the last call, waiting up to `timeout` for one.
    pub fn next(&mut self, timeout: Duration) -> Vec<Event> {
        let ready = self.read_new();
        if !ready.is_empty() {
            return ready;
        }
        let mut pfd = libc::pollfd {
            fd: self.inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: polling one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } > 0 {
            let mut drain = [0u8; 4096];
            // SAFETY: reading queued inotify events into our buffer (non-blocking fd).
            while unsafe {
                libc::read(
                    self.inotify.as_raw_fd(),
                    drain.as_mut_ptr().cast(),
                    drain.len(),
                )
            } > 0
            {}
        }
        self.read_new()
    }

    /// Where the follower stands in the current file (for tests).
    pub fn position(&mut self) -> u64 {
        self.file
            .as_mut()
            .and_then(|f| f.stream_position().ok())
            .unwrap_or(0)
    }

    /// Skips to the end of the current file.
    pub fn skip_to_end(&mut self) {
        if let Some(f) = self.file.as_mut() {
            let _ = f.seek(SeekFrom::End(0));
        }
        self.partial.clear();
    }
}

impl Engine {
    /// The store's event journal.
    pub fn journal(&self) -> Journal {
        Journal::new(&self.root)
    }

    /// Records an event. A journal that cannot be written loses the event, never the operation
    /// that caused it (the container started, the image was pulled).
    pub fn emit(&self, e: Event) {
        let _ = self.journal().append(&e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, id: &str) -> Event {
        Event::new("container", action, id).attr("name", format!("n-{id}"))
    }

    #[test]
    fn events_are_read_back_in_order_and_filtered() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        j.append(&ev("create", "a1")).unwrap();
        j.append(&ev("start", "a1")).unwrap();
        j.append(&Event::image("pull", "busybox:latest")).unwrap();
        let all = j.read(None, None);
        assert_eq!(
            all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["create", "start", "pull"]
        );
        let f = EventFilter::parse(&["type=container".into(), "event=start".into()]).unwrap();
        assert_eq!(all.iter().filter(|e| f.matches(e)).count(), 1);
        let f = EventFilter::parse(&["container=n-a1".into()]).unwrap();
        assert_eq!(all.iter().filter(|e| f.matches(e)).count(), 2);
        assert!(EventFilter::parse(&["colour=red".into()]).is_err());
        let since = all[1].time_nano;
        assert_eq!(j.read(Some(since), None).len(), 2);
        assert_eq!(j.read(None, Some(all[0].time_nano)).len(), 1);
    }

    #[test]
    fn the_journal_rotates_at_its_bound_and_a_follower_crosses_the_rotation() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        j.append(&ev("create", "first")).unwrap();
        let (seen, mut f) = j.snapshot().unwrap();
        assert_eq!(seen.len(), 1);
        let big = "x".repeat(1000);
        let mut written = 0;
        while !j.rotated().exists() {
            j.append(&ev("start", "b").attr("pad", &big)).unwrap();
            written += 1;
        }
        j.append(&ev("die", "last")).unwrap();
        let mut got = Vec::new();
        while got.last().map(|e: &Event| e.action.as_str()) != Some("die") {
            let batch = f.next(Duration::from_secs(2));
            assert!(
                !batch.is_empty(),
                "the follower stalled after {}",
                got.len()
            );
            got.extend(batch);
        }
        assert_eq!(
            got.len(),
            written + 1,
            "every event once, across the rotation"
        );
        let on_disk =
            fs::metadata(j.current()).unwrap().len() + fs::metadata(j.rotated()).unwrap().len();
        assert!(on_disk <= 2 * MAX_JOURNAL + 4096, "bounded: {on_disk}");
    }
}
