//! A container's json-file log read as a stream, for the API's `logs` (and any follower): what
//! is on record between `since` and `until`, the last `tail` lines of it, then, when following,
//! each line as it is written (across a rotation) until the container stops. Reads only.

use crate::logs::Entry;
use crate::Engine;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

/// What part of the log to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Nanoseconds since the epoch, inclusive; None is open.
    pub since: Option<i128>,
    pub until: Option<i128>,
    /// The last N lines of what is on record (before following).
    pub tail: Option<usize>,
    pub follow: bool,
}

/// One container's log, read on.
pub struct LogStream {
    path: PathBuf,
    id: String,
    query: LogQuery,
    file: Option<File>,
    ino: u64,
    partial: Vec<u8>,
    /// The lines on record, not handed out yet (the first call's answer).
    backlog: Option<Vec<Entry>>,
}

fn entry_time(e: &Entry) -> Option<i128> {
    berth_sys::time::parse_rfc3339_nanos(&e.time)
}

impl LogQuery {
    fn keeps(&self, e: &Entry) -> bool {
        let t = entry_time(e);
        self.since.is_none_or(|s| t.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| t.is_some_and(|t| t <= u))
    }

    /// Past `until` nothing more will match: a follow ends.
    fn past_until(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        self.until.is_some_and(|u| now > u)
    }
}

impl Engine {
    /// The log of container `id` as a stream (see `LogQuery`).
    pub fn log_stream(&self, id: &str, query: LogQuery) -> LogStream {
        let path = self.log_path(id);
        // Held before the rotated files are read: what is written meanwhile is read from it.
        let file = File::open(&path).ok();
        let ino = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.ino());
        let mut s = LogStream {
            path,
            id: id.to_string(),
            query,
            file,
            ino,
            partial: Vec::new(),
            backlog: None,
        };
        let mut entries = rotated_entries(&s.path);
        entries.extend(s.read_new());
        entries.retain(|e| s.query.keeps(e));
        if let Some(n) = s.query.tail {
            entries.drain(..entries.len().saturating_sub(n));
        }
        s.backlog = Some(entries);
        s
    }
}

/// The entries of the rotated files (`-json.log.N`, oldest first).
fn rotated_entries(path: &std::path::Path) -> Vec<Entry> {
    let mut out = Vec::new();
    for i in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{i}", path.display()));
        if let Ok(f) = File::open(&p) {
            out.extend(
                BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .filter_map(|l| serde_json::from_str(&l).ok()),
            );
        }
    }
    out
}

impl LogStream {
    /// Complete lines appended to the held file since the last read.
    fn read_new(&mut self) -> Vec<Entry> {
        let Some(f) = self.file.as_mut() else {
            return Vec::new();
        };
        let mut buf = std::mem::take(&mut self.partial);
        let _ = f.read_to_end(&mut buf);
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = buf.split_off(complete);
        buf.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }

    /// The log was rotated (or made) since it was opened: the new file is read from its start.
    fn reopen_if_rotated(&mut self) -> bool {
        let Ok(f) = File::open(&self.path) else {
            return false;
        };
        let ino = f.metadata().map_or(0, |m| m.ino());
        if self.file.is_some() && ino == self.ino {
            return false;
        }
        self.file = Some(f);
        self.ino = ino;
        self.partial.clear();
        true
    }

    /// The next entries: first everything on record, then (following) new lines as they come,
    /// waiting in steps of `poll`; None when the stream ends (not following, the container
    /// stopped and its log is drained, or `until` passed). `alive` is asked whether the
    /// container still runs.
    pub fn next_batch(
        &mut self,
        poll: Duration,
        alive: impl Fn(&str) -> bool,
    ) -> Option<Vec<Entry>> {
        if let Some(b) = self.backlog.take() {
            if !b.is_empty() || self.query.follow {
                return Some(b);
            }
            return None;
        }
        if !self.query.follow {
            return None;
        }
        loop {
            let running = alive(&self.id);
            let mut got = self.read_new();
            if self.reopen_if_rotated() {
                got.extend(self.read_new());
            }
            got.retain(|e| self.query.keeps(e));
            if !got.is_empty() {
                return Some(got);
            }
            // Checked before the read above: a line written just before the exit was read.
            if !running || self.query.past_until() {
                return None;
            }
            std::thread::sleep(poll);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogWriter;

    #[test]
    fn a_stream_gives_the_tail_then_follows_across_a_rotation() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let e = Engine::open(&root, &d.path().join("run")).unwrap();
        let id = "c".repeat(64);
        std::fs::create_dir_all(e.records.dir(&id)).unwrap();
        let mut w = LogWriter::open(&e.log_path(&id), Some(400), Some(3)).unwrap();
        for i in 0..3 {
            w.write(0, format!("old {i}\n").as_bytes()).unwrap();
        }
        let q = LogQuery {
            tail: Some(2),
            follow: true,
            ..LogQuery::default()
        };
        let mut s = e.log_stream(&id, q);
        let first = s.next_batch(Duration::from_millis(5), |_| true).unwrap();
        assert_eq!(
            first.iter().map(|x| x.log.as_str()).collect::<Vec<_>>(),
            ["old 1\n", "old 2\n"]
        );
        for i in 0..20 {
            w.write(1, format!("new {i}\n").as_bytes()).unwrap();
        }
        let mut got = Vec::new();
        let done = std::cell::Cell::new(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let alive = |_: &str| !done.get() && std::time::Instant::now() < deadline;
        while let Some(b) = s.next_batch(Duration::from_millis(5), alive) {
            for x in b {
                done.set(done.get() || x.log == "new 19\n");
                got.push(x.log);
            }
        }
        // Rotation at 400 bytes keeps three files; what the follower had open is read to its
        // end, then the new file from its start, so nothing in between is lost.
        assert!(
            got.len() >= 5 && got.last().unwrap() == "new 19\n",
            "{got:?}"
        );
    }
}
