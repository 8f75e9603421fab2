//! Shared by the unpack tests: a sandbox (a layer directory and, beside it, one the layer must never
//! touch) and a tar stream builder that writes headers byte for byte.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_image::unpack::{unpack, UnpackError, UnpackOptions, UnpackStats};
use tar::{EntryType, Header};

pub const MTIME: u64 = 1_600_000_000;

/// A layer directory and, beside it, a directory the layer must never touch.
pub struct Sandbox {
    _tmp: tempfile::TempDir,
    pub dest: PathBuf,
    pub outside: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        fs::create_dir(&dest).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), "secret").unwrap();
        Sandbox {
            _tmp: tmp,
            dest,
            outside,
        }
    }

    pub fn unpack(&self, tar: &[u8]) -> Result<UnpackStats, UnpackError> {
        self.unpack_with(tar, &UnpackOptions::default())
    }

    pub fn unpack_with(
        &self,
        tar: &[u8],
        opts: &UnpackOptions,
    ) -> Result<UnpackStats, UnpackError> {
        unpack(tar, &self.dest, opts)
    }

    /// `p` inside the layer.
    pub fn at(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dest.join(p)
    }

    /// The outside directory's absolute path as the layer sees it (leading `/` dropped).
    pub fn outside_in_layer(&self) -> PathBuf {
        self.dest.join(self.outside.strip_prefix("/").unwrap())
    }

    pub fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"], "something appeared outside the layer");
        let secret = self.outside.join("secret");
        let meta = fs::symlink_metadata(&secret).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.nlink(), 1, "the outside file was hardlinked");
        assert_eq!(fs::read_to_string(&secret).unwrap(), "secret");
        let parent = self.outside.parent().unwrap();
        let mut around: Vec<_> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        around.sort();
        assert_eq!(
            around,
            ["layer", "outside"],
            "something appeared beside the layer"
        );
    }
}

/// Whether the test may go on: it needs root. Not being root fails the test (CI runs as root, so
/// a skip there would hide a bug) unless `BERTH_ALLOW_SKIP=1` says skipping is wanted.
pub fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("BERTH_ALLOW_SKIP").is_some_and(|v| v == "1"),
        "unpacking tests need root (BERTH_ALLOW_SKIP=1 skips them instead)"
    );
    eprintln!("skipped: unpacking tests need root");
    false
}

/// A tar stream under construction.
pub struct Layer(pub tar::Builder<Vec<u8>>);

impl Layer {
    pub fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    /// A GNU header with `name` written byte for byte (no checks), owned by root, mtime MTIME.
    pub fn header(name: &[u8], ty: EntryType, size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(ty);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h
    }

    pub fn add(&mut self, mut h: Header, data: &[u8]) -> &mut Layer {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &str) -> &mut Layer {
        let h = Layer::header(
            name.as_bytes(),
            EntryType::Regular,
            data.len() as u64,
            0o644,
        );
        self.add(h, data.as_bytes())
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Layer {
        let h = Layer::header(name.as_bytes(), EntryType::Directory, 0, mode);
        self.add(h, &[])
    }

    pub fn link(&mut self, ty: EntryType, name: &str, target: &str) -> &mut Layer {
        let mut h = Layer::header(name.as_bytes(), ty, 0, 0o777);
        h.set_link_name_literal(target).unwrap();
        self.add(h, &[])
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Layer {
        self.link(EntryType::Symlink, name, target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Layer {
        self.link(EntryType::Link, name, target)
    }

    pub fn node(
        &mut self,
        name: &str,
        ty: EntryType,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> &mut Layer {
        let mut h = Layer::header(name.as_bytes(), ty, 0, mode);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.add(h, &[])
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.0.finish().unwrap();
        std::mem::take(self.0.get_mut())
    }
}

pub fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: p and n are NUL-terminated; buf is valid for buf.len() bytes and outlives the call.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

pub fn lstat(p: impl AsRef<Path>) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}
