//! A file tree written as a tar stream through file descriptors: each entry is reached by an `*at`
//! call relative to its parent directory's fd and opened with `O_NOFOLLOW`, so a symlink planted or
//! swapped in by a container is archived as a symlink and never followed. In layer mode overlayfs
//! whiteouts and opaque directories become the image spec's `.wh.` files (for `commit`); only the
//! xattrs a layer may carry (`unpack::xattr_allowed`) are written.

use ::tar::{EntryType, Header};
use nix::fcntl::readlinkat;
use nix::sys::stat::{fstat, FileStat, SFlag};
use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{file_type, handle_at, is_opaque, is_whiteout, names, open_dir, reopen_file, xattrs};

/// Reads exactly `size` bytes: a file that shrank while it was read is padded with zeros, one that
/// grew is cut, so the tar header stays true.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes trees into a tar stream.
pub struct TreeWriter<W: Write> {
    tar: ::tar::Builder<W>,
    layer: bool,
    skip: HashSet<PathBuf>,
    links: HashMap<(u64, u64), PathBuf>,
    /// A user-namespaced container's map: owners are written as the container sees them.
    owners: Option<crate::snapshot::IdMap>,
}

impl<W: Write> TreeWriter<W> {
    /// `layer`: convert overlayfs whiteouts and opaque directories to `.wh.` files.
    pub fn new(out: W, layer: bool) -> TreeWriter<W> {
        let mut tar = ::tar::Builder::new(out);
        tar.mode(::tar::HeaderMode::Complete);
        TreeWriter {
            tar,
            layer,
            skip: HashSet::new(),
            links: HashMap::new(),
            owners: None,
        }
    }

    /// Archive names (relative, `etc/hosts`) to leave out.
    pub fn skip(mut self, paths: HashSet<PathBuf>) -> Self {
        self.skip = paths;
        self
    }

    /// Archives owners through a container's id map (host ids back to its own).
    pub fn owners(mut self, map: Option<crate::snapshot::IdMap>) -> Self {
        self.owners = map;
        self
    }

    /// Archives the entry an `O_PATH` handle names as `name`, and for a directory all below it.
    pub fn add(&mut self, handle: &OwnedFd, name: &Path) -> io::Result<()> {
        let mut st = fstat(handle.as_fd())?;
        if let Some(map) = &self.owners {
            st.st_uid = map.container_uid(st.st_uid);
            st.st_gid = map.container_gid(st.st_gid);
        }
        self.entry(handle, &st, name)
    }

    /// Archives what is in the directory `dir` (an `O_PATH` handle) under `prefix` (may be empty).
    pub fn add_contents(&mut self, dir: &OwnedFd, prefix: &Path) -> io::Result<()> {
        for n in names(dir.as_fd())? {
            let child = handle_at(dir.as_fd(), &n)?;
            self.add(&child, &prefix.join(&n))?;
        }
        Ok(())
    }

    pub fn finish(self) -> io::Result<W> {
        self.tar.into_inner()
    }

    fn entry(&mut self, h: &OwnedFd, st: &FileStat, name: &Path) -> io::Result<()> {
        if self.skip.contains(name) {
            return Ok(());
        }
        let ty = file_type(st);
        if self.layer && is_whiteout(st) {
            let mut wh = name.parent().map(Path::to_path_buf).unwrap_or_default();
            let base = name.file_name().unwrap_or_default().as_bytes();
            wh.push(OsStr::from_bytes(&[b".wh.", base].concat()));
            let mut hd = header(st, EntryType::Regular);
            hd.set_mode(0o644);
            return self.append(&mut hd, &wh, io::empty());
        }
        match ty {
            SFlag::S_IFDIR => {
                let dir = open_dir(h.as_fd())?;
                self.pax_xattrs(&xattrs(dir.as_fd()))?;
                self.append(&mut header(st, EntryType::Directory), name, io::empty())?;
                if self.layer && is_opaque(dir.as_fd()) {
                    let mut hd = header(st, EntryType::Regular);
                    hd.set_mode(0o644);
                    self.append(&mut hd, &name.join(".wh..wh..opq"), io::empty())?;
                }
                self.add_contents(h, name)
            }
            SFlag::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut hd = header(st, EntryType::Link);
                        return self.tar.append_link(&mut hd, name, first);
                    }
                    self.links.insert(key, name.to_path_buf());
                }
                let f = reopen_file(h.as_fd())?;
                self.pax_xattrs(&xattrs(f.as_fd()))?;
                let mut hd = header(st, EntryType::Regular);
                hd.set_size(st.st_size as u64);
                let data = Exact {
                    inner: f,
                    left: st.st_size as u64,
                };
                self.append(&mut hd, name, data)
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(h.as_fd(), "")?;
                let mut hd = header(st, EntryType::Symlink);
                self.tar.append_link(&mut hd, name, target)
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                let kind = match ty {
                    SFlag::S_IFCHR => EntryType::Char,
                    SFlag::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut hd = header(st, kind);
                if kind != EntryType::Fifo {
                    hd.set_device_major(libc::major(st.st_rdev))?;
                    hd.set_device_minor(libc::minor(st.st_rdev))?;
                }
                self.append(&mut hd, name, io::empty())
            }
            _ => Ok(()), // sockets have no place in an archive
        }
    }

    fn append(&mut self, hd: &mut Header, name: &Path, data: impl Read) -> io::Result<()> {
        self.tar.append_data(hd, name, data)
    }

    /// A PAX extended header carrying the next entry's xattrs (`SCHILY.xattr.NAME`).
    fn pax_xattrs(&mut self, attrs: &[(CString, Vec<u8>)]) -> io::Result<()> {
        if attrs.is_empty() {
            return Ok(());
        }
        let mut body = Vec::new();
        for (k, v) in attrs {
            let rec = [b"SCHILY.xattr.", k.as_bytes(), b"=", v, b"\n"].concat();
            body.extend(pax_record(&rec));
        }
        let mut hd = Header::new_ustar();
        hd.set_entry_type(EntryType::XHeader);
        hd.set_mode(0o644);
        hd.set_size(body.len() as u64);
        hd.set_path("././@PaxHeader")?;
        hd.set_cksum();
        self.tar.append(&hd, &body[..])
    }
}

/// One PAX record: `LEN key=value\n`, where LEN counts itself.
fn pax_record(rec: &[u8]) -> Vec<u8> {
    let mut len = rec.len() + 2;
    while format!("{len} ").len() + rec.len() != len {
        len = format!("{len} ").len() + rec.len();
    }
    [format!("{len} ").as_bytes(), rec].concat()
}

fn header(st: &FileStat, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record(b"SCHILY.xattr.user.a=b\n");
        let s = String::from_utf8(r.clone()).unwrap();
        let (n, _) = s.split_once(' ').unwrap();
        assert_eq!(n.parse::<usize>().unwrap(), r.len());
        let long = vec![b'x'; 95];
        let r = pax_record(&long);
        assert_eq!(
            String::from_utf8_lossy(&r)
                .split(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap(),
            r.len()
        );
    }

    #[test]
    fn symlink_to_host_is_archived_not_followed() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("d/evil")).unwrap();
        std::fs::write(t.path().join("d/f"), b"data").unwrap();
        let root =
            nix::fcntl::open(t.path(), OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        let d = handle_at(root.as_fd(), OsStr::new("d")).unwrap();
        let mut w = TreeWriter::new(Vec::new(), false);
        w.add(&d, Path::new("d")).unwrap();
        let bytes = w.finish().unwrap();
        let mut a = ::tar::Archive::new(&bytes[..]);
        let got: Vec<(String, EntryType)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("d".to_string(), EntryType::Directory),
                ("d/evil".to_string(), EntryType::Symlink),
                ("d/f".to_string(), EntryType::Regular),
            ]
        );
    }
}
