//! The content store: blobs by digest under `blobs/<algo>/<hex>`, each verified while it is written
//! into `ingest/` and renamed into place only when its digest and size match. A blob's name is
//! always what its bytes hash to; a crash leaves at most a stray file in `ingest/`.

use crate::digest::{Digest, HashingWriter};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("blob {0}: not in the content store")]
    NotFound(Digest),
    #[error("blob {expected}: digest mismatch (the data hashes to {actual})")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest}: size mismatch (expected {expected} bytes, got {actual})")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest}: larger than the allowed {limit} bytes")]
    TooLarge { digest: Digest, limit: u64 },
    #[error("content store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl ContentStore {
    /// Opens (creating if needed) a store rooted at `root` (`/var/lib/berth`).
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        for d in ["blobs/sha256", "blobs/sha512", "ingest"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).exists()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let p = self.path(digest);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let p = self.path(digest);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ContentError::NotFound(digest.clone()),
            _ => ContentError::Io {
                path: p.clone(),
                source: e,
            },
        })
    }

    /// Reads a whole blob, bounded by `limit` bytes (manifests and configs).
    pub fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ContentError> {
        let f = self.open_blob(digest)?;
        let mut data = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut data)
            .map_err(io_err(&self.path(digest)))?;
        if data.len() as u64 > limit {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                limit,
            });
        }
        Ok(data)
    }

    /// Stores `data` under the digest it hashes to (`expected`, when given, must match).
    pub fn put(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest, ContentError> {
        let algorithm = expected
            .map(|d| d.algorithm())
            .unwrap_or(crate::digest::Algorithm::Sha256);
        let mut w = self.writer(algorithm)?;
        w.write_all(data).map_err(io_err(&self.root))?;
        w.commit(expected, Some(data.len() as u64))
    }

    /// A writer into `ingest/`; `commit` verifies and renames it into place.
    pub fn writer(&self, algorithm: crate::digest::Algorithm) -> Result<BlobWriter, ContentError> {
        let path = self.root.join("ingest").join(crate::staging::name(""));
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(BlobWriter {
            store: self.clone(),
            inner: Some(HashingWriter::new(
                BufWriter::with_capacity(256 * 1024, file),
                algorithm,
            )),
            path,
        })
    }

    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let p = self.path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    /// Every blob in the store with its size.
    pub fn list(&self) -> Result<Vec<(Digest, u64)>, ContentError> {
        let mut out = Vec::new();
        for algo in ["sha256", "sha512"] {
            let dir = self.root.join("blobs").join(algo);
            for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
                let entry = entry.map_err(io_err(&dir))?;
                let name = format!("{algo}:{}", entry.file_name().to_string_lossy());
                if let Ok(d) = Digest::parse(&name) {
                    let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    out.push((d, len));
                }
            }
        }
        Ok(out)
    }

    /// Flushes everything written to the store's filesystem (one `syncfs` per pull or load).
    pub fn sync(&self) -> Result<(), ContentError> {
        let dir = File::open(&self.root).map_err(io_err(&self.root))?;
        // SAFETY: syncfs on an fd we own.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
            return Err(ContentError::Io {
                path: self.root.clone(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Removes ingest files left by processes that no longer run (a crash mid-download);
    /// returns the disk space freed.
    pub fn clean_ingest(&self) -> u64 {
        crate::staging::reclaim(&self.root.join("ingest"))
    }
}

/// A blob being written. Dropped without `commit`, it removes its ingest file.
pub struct BlobWriter {
    store: ContentStore,
    inner: Option<HashingWriter<BufWriter<File>>>,
    path: PathBuf,
}

impl BlobWriter {
    /// Verifies digest (and size, when known), syncs and renames the blob into place.
    pub fn commit(
        mut self,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Digest, ContentError> {
        let result = self.verify_and_rename(expected, size);
        if result.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        result
    }

    fn verify_and_rename(
        &mut self,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Digest, ContentError> {
        let (actual, count, buf) = self.inner.take().expect("committed once").finish();
        let file = buf.into_inner().map_err(|e| ContentError::Io {
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        if let Some(exp) = expected {
            if *exp != actual {
                return Err(ContentError::DigestMismatch {
                    expected: exp.clone(),
                    actual,
                });
            }
        }
        if let Some(sz) = size {
            if sz != count {
                return Err(ContentError::SizeMismatch {
                    digest: actual,
                    expected: sz,
                    actual: count,
                });
            }
        }
        // No fsync per blob: a pull syncs the filesystem once before it records the image
        // (`ContentStore::sync`), and a reused blob is size-checked.
        drop(file);
        let dest = self.store.path(&actual);
        fs::rename(&self.path, &dest).map_err(io_err(&dest))?;
        Ok(actual)
    }

    pub fn written(&self) -> u64 {
        self.inner.as_ref().map(|w| w.written_bytes()).unwrap_or(0)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.as_mut().expect("not committed").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().expect("not committed").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verifies_and_stores_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.put(b"hello", None).unwrap();
        assert!(cs.has(&d));
        assert_eq!(cs.read(&d, 100).unwrap(), b"hello");
        let wrong = Digest::of_bytes(b"other");
        let err = cs.put(b"hello", Some(&wrong)).unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        assert!(!cs.has(&wrong));
        assert_eq!(
            fs::read_dir(dir.path().join("ingest")).unwrap().count(),
            0,
            "failed ingest left behind"
        );
    }

    #[test]
    fn size_mismatch_is_refused_and_read_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let mut w = cs.writer(crate::digest::Algorithm::Sha256).unwrap();
        w.write_all(b"abc").unwrap();
        assert!(w
            .commit(None, Some(4))
            .unwrap_err()
            .to_string()
            .contains("size mismatch"));
        let d = cs.put(b"0123456789", None).unwrap();
        assert!(cs
            .read(&d, 5)
            .unwrap_err()
            .to_string()
            .contains("larger than"));
    }
}
