//! Entry metadata (owner, mode, times, xattrs) read from tar headers and PAX records, applied in the
//! order that keeps all of it: owner, then xattrs (chown drops `security.capability`), then mode
//! (chown drops setuid), then times. Directories get theirs in a last pass, since making their
//! children changes them. Never follows a symlink at the final component.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, futimens, utimensat, FchmodatFlags, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, Gid, Uid};

use super::layer_dir::open_dir_in_root;
use super::{one_line, shown, Context, EntryProblem, UnpackError};

const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Whether an extended attribute from a tar stream may be set (containerd's and moby's rule):
/// file capabilities and plain `user.*` ones only. overlayfs reads `trusted.overlay.*` (and, in a
/// user namespace, `user.overlay.*`) as instructions (`redirect`, `metacopy`, `opaque`, `origin`)
/// that could point a directory at another layer's content; `security.selinux` and the rest of
/// `trusted.*`/`security.*` are the host's business, never an image's.
pub fn xattr_allowed(name: &[u8]) -> bool {
    name == b"security.capability"
        || (name.starts_with(b"user.") && !name.starts_with(b"user.overlay."))
}

/// What an entry says about its file besides the contents.
pub(super) struct Meta {
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// Permission bits with setuid, setgid and sticky.
    pub(super) mode: u32,
    pub(super) mtime: TimeSpec,
    pub(super) xattrs: Vec<(CString, Vec<u8>)>,
}

impl Meta {
    pub(super) fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, EntryProblem> {
        let h = entry.header();
        let raw = h.as_old();
        let id = |what: &str, v: u64| {
            u32::try_from(v)
                .map_err(|_| EntryProblem::Invalid(format!("{what} {v} is out of range")))
        };
        let uid = id("uid", numeric(h.uid(), &raw.uid, "uid")?)?;
        let gid = id("gid", numeric(h.gid(), &raw.gid, "gid")?)?;
        let mode = numeric(h.mode(), &raw.mode, "mode")? & 0o7777;
        let secs = numeric(h.mtime(), &raw.mtime, "mtime")?;
        let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
        let mut xattrs = Vec::new();
        let bad =
            |e: std::io::Error| EntryProblem::Invalid(format!("PAX records: {}", one_line(&e)));
        if let Some(pax) = entry.pax_extensions().map_err(bad)? {
            for rec in pax {
                let rec = rec.map_err(bad)?;
                let key = rec.key_bytes();
                if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                    if !xattr_allowed(name) {
                        continue;
                    }
                    let name = CString::new(name)
                        .map_err(|_| EntryProblem::Invalid("xattr name holds a NUL byte".into()))?;
                    xattrs.push((name, rec.value_bytes().to_vec()));
                } else if key == b"mtime" {
                    if let Some(t) = parse_pax_time(rec.value_bytes()) {
                        mtime = t;
                    }
                }
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
    }

    /// A chown's result: EINVAL means an owner the user namespace does not map.
    fn owned(&self, r: nix::Result<()>) -> Result<(), EntryProblem> {
        match r {
            Err(nix::errno::Errno::EINVAL) => Err(EntryProblem::UnmappedOwner {
                uid: self.uid,
                gid: self.gid,
            }),
            r => r.op("setting the owner"),
        }
    }

    fn perm(&self) -> Mode {
        Mode::from_bits_truncate(self.mode)
    }

    /// Applies everything to an open file.
    pub(super) fn apply_fd(
        &self,
        fd: BorrowedFd<'_>,
        same_owner: bool,
    ) -> Result<(), EntryProblem> {
        if same_owner {
            let (u, g) = self.owner();
            self.owned(fchown(fd, u, g))?;
        }
        self.apply_xattrs(fd, same_owner)?;
        fchmod(fd, self.perm()).op("setting the mode")?;
        futimens(fd, &self.mtime, &self.mtime).op("setting the times")
    }

    /// Sets the entry's xattrs on an open file or directory.
    pub(super) fn apply_xattrs(
        &self,
        fd: BorrowedFd<'_>,
        same_owner: bool,
    ) -> Result<(), EntryProblem> {
        for (name, value) in &self.xattrs {
            // SAFETY: fd is open, name is NUL-terminated and value is valid for value.len() bytes;
            // the kernel copies both and keeps neither.
            let r = unsafe {
                libc::fsetxattr(
                    fd.as_raw_fd(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            };
            xattr_result(r, name, same_owner)?;
        }
        Ok(())
    }

    /// Applies everything to `name` in `parent`, which was just made (a symlink, device or fifo).
    /// `chmod` is false for symlinks, whose mode means nothing.
    pub(super) fn apply_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        same_owner: bool,
        chmod: bool,
    ) -> Result<(), EntryProblem> {
        if same_owner {
            let (u, g) = self.owner();
            self.owned(fchownat(parent, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW))?;
        }
        if !self.xattrs.is_empty() {
            self.xattrs_at(parent, name, same_owner)?;
        }
        if chmod {
            // `name` is the device or fifo made a moment ago, not a symlink: following is moot.
            fchmodat(parent, name, self.perm(), FchmodatFlags::FollowSymlink)
                .op("setting the mode")?;
        }
        utimensat(
            parent,
            name,
            &self.mtime,
            &self.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .op("setting the times")
    }

    /// No `*at` xattr call predates Linux 6.13: open the file itself with O_PATH (a symlink stays a
    /// symlink) and name it through its /proc/self/fd link, which lands on that very inode.
    fn xattrs_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        same_owner: bool,
    ) -> Result<(), EntryProblem> {
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(parent, name, flags, Mode::empty()).op("opening for xattrs")?;
        let link = CString::new(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
            .map_err(|_| EntryProblem::Invalid("fd path".into()))?;
        for (key, value) in &self.xattrs {
            // SAFETY: link and key are NUL-terminated, value is valid for value.len() bytes; the
            // kernel copies all three. fd stays open for the call, so the link names our file.
            let r = unsafe {
                libc::setxattr(
                    link.as_ptr(),
                    key.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            };
            xattr_result(r, key, same_owner)?;
        }
        Ok(())
    }
}

/// Sets `xattr` to `value` on the open directory `dir`.
pub(super) fn set_dir_xattr(dir: BorrowedFd<'_>, xattr: &CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: as in Meta::apply_fd.
    let r = unsafe {
        libc::fsetxattr(
            dir.as_raw_fd(),
            xattr.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// A filesystem without xattrs loses them quietly, like `tar -x`; so does an unprivileged unpack
/// that may not set `trusted.*` or `security.*` ones.
fn xattr_result(r: libc::c_int, name: &CStr, same_owner: bool) -> Result<(), EntryProblem> {
    match Errno::result(r) {
        Ok(_) | Err(Errno::EOPNOTSUPP) => Ok(()),
        Err(Errno::EPERM) if !same_owner => Ok(()),
        Err(e) => Err(EntryProblem::Io {
            op: format!("setting xattr {:?}", name.to_string_lossy()).into(),
            source: e.into(),
        }),
    }
}

/// Owner, mode and times of every directory entry, applied after all entries are in (the latest
/// entry for a path wins). A path that is no longer a directory by then is skipped.
pub(super) fn finish_dirs(
    root: BorrowedFd<'_>,
    dirs: &[(Vec<u8>, Meta)],
    same_owner: bool,
) -> Result<(), UnpackError> {
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(dirs.len());
    for (path, meta) in dirs.iter().rev() {
        if !seen.insert(path) {
            continue;
        }
        let fail = |problem| UnpackError::Entry {
            path: shown(path),
            problem,
        };
        let fd = match open_dir_in_root(root, path, OFlag::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                ) =>
            {
                continue
            }
            Err(e) => return Err(fail(EntryProblem::op("reopening the directory", e))),
        };
        let m = Meta {
            xattrs: Vec::new(),
            ..*meta
        };
        m.apply_fd(fd.as_fd(), same_owner).map_err(fail)?;
    }
    Ok(())
}

/// A numeric header field; an empty one (all NULs or spaces) is 0, as Go's archive/tar reads it.
fn numeric<T: Default>(v: std::io::Result<T>, raw: &[u8], what: &str) -> Result<T, EntryProblem> {
    match v {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(T::default()),
        Err(e) => Err(EntryProblem::Invalid(format!("{what}: {}", one_line(&e)))),
    }
}

/// Parses a PAX time, `SECONDS[.FRACTION]`, possibly negative.
fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    Some(match (neg, nanos) {
        (false, _) => TimeSpec::new(secs, nanos),
        (true, 0) => TimeSpec::new(-secs, 0),
        (true, n) => TimeSpec::new(-secs - 1, 1_000_000_000 - n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<(i64, i64)> {
        parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()))
    }

    #[test]
    fn pax_time_keeps_nanoseconds() {
        assert_eq!(t("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(t("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(t("1.123456789123"), Some((1, 123_456_789)));
    }

    #[test]
    fn pax_time_handles_negative_and_rejects_junk() {
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("-3"), Some((-3, 0)));
        assert_eq!(t("12x"), None);
        assert_eq!(t("1.2e3"), None);
        assert_eq!(t(""), None);
        assert_eq!(t(".5"), None);
    }
}
