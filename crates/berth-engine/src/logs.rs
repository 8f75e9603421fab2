//! Container logs in Docker's json-file format (`{"log":"…\n","stream":"stdout","time":"…"}` per
//! line), with `max-size`/`max-file` rotation, and reading them back for `berth logs`.

use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    /// Unfinished line per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
    /// The first write that failed (a full disk), for the record once the container ends.
    failure: Option<String>,
}

impl LogWriter {
    pub fn open(
        path: &Path,
        max_size: Option<u64>,
        max_file: Option<u32>,
    ) -> io::Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        LogWriter::adopt(path, file, max_size, max_file)
    }

    /// A writer over `file`, already open for appending at `path` (handed over by a process
    /// that opened it).
    pub fn adopt(
        path: &Path,
        file: File,
        max_size: Option<u64>,
        max_file: Option<u32>,
    ) -> io::Result<LogWriter> {
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.into(),
            file,
            size,
            max_size,
            max_file: max_file.unwrap_or(1).max(1),
            partial: [Vec::new(), Vec::new()],
            failure: None,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Appends output like `write`; a failure is kept (the first one) for `failure`, so copying
    /// the container's output goes on whatever the disk does.
    pub fn write_or_note(&mut self, stream: usize, data: &[u8]) {
        if let Err(e) = self.write(stream, data) {
            self.note(e);
        }
    }

    /// `flush_partial`, with a failure kept like `write_or_note`.
    pub fn finish(&mut self) {
        if let Err(e) = self.flush_partial() {
            self.note(e);
        }
    }

    fn note(&mut self, e: io::Error) {
        if self.failure.is_none() {
            self.failure = Some(format!("writing the log {}: {e}", self.path.display()));
        }
    }

    /// What went wrong writing the log, if anything did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Appends output of `stream` (0 stdout, 1 stderr), one entry per complete line.
    pub fn write(&mut self, stream: usize, data: &[u8]) -> io::Result<()> {
        self.partial[stream].extend_from_slice(data);
        while let Some(nl) = self.partial[stream].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[stream].drain(..=nl).collect();
            self.entry(stream, &line)?;
        }
        // Docker splits lines longer than 16 KiB.
        if self.partial[stream].len() >= 16 * 1024 {
            let line = std::mem::take(&mut self.partial[stream]);
            self.entry(stream, &line)?;
        }
        Ok(())
    }

    /// Writes what is left of unfinished lines (at the container's exit).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for s in 0..2 {
            if !self.partial[s].is_empty() {
                let line = std::mem::take(&mut self.partial[s]);
                self.entry(s, &line)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: usize, line: &[u8]) -> io::Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
            time: berth_sys::time::now_rfc3339_nanos(),
        };
        let mut out = serde_json::to_vec(&e).expect("entry serializes");
        out.push(b'\n');
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + out.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(&out)?;
        self.size += out.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for i in (1..self.max_file - 1).rev() {
            let _ = fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, i: u32) -> PathBuf {
    PathBuf::from(format!("{}.{i}", path.display()))
}

/// Every entry, oldest first, across rotated files.
pub fn read_all(path: &Path) -> Vec<Entry> {
    let mut files: Vec<PathBuf> = (1..100)
        .map(|i| rotated(path, i))
        .filter(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for f in files {
        if let Ok(file) = File::open(&f) {
            out.extend(
                BufReader::new(file)
                    .lines()
                    .map_while(Result::ok)
                    .filter_map(|l| serde_json::from_str(&l).ok()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_per_stream_and_rotation_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut w = LogWriter::open(&p, Some(300), Some(2)).unwrap();
        w.write(0, b"hello\nwor").unwrap();
        w.write(1, b"oops\n").unwrap();
        w.write(0, b"ld\n").unwrap();
        let e = read_all(&p);
        assert_eq!(
            e.iter()
                .map(|e| (e.stream.as_str(), e.log.as_str()))
                .collect::<Vec<_>>(),
            [
                ("stdout", "hello\n"),
                ("stderr", "oops\n"),
                ("stdout", "world\n")
            ]
        );
        for i in 0..20 {
            w.write(0, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(p.exists() && rotated(&p, 1).exists() && !rotated(&p, 2).exists());
        assert_eq!(read_all(&p).last().unwrap().log, "line 19\n");
    }
}
