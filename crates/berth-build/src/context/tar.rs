//! A context given on stdin (`berth build -`): a tar (plain or gzip) unpacked into a scratch
//! directory the caller owns, or a bare Dockerfile. Entry count, data size and name length are
//! bounded; names are cleaned and may not climb out; every write is an `*at` call below the scratch
//! directory with no symlink followed on the way, so nothing outside it is ever written.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{linkat, symlinkat, unlinkat, UnlinkatFlags};

use super::fsat::{self, mkdir_all, open_dir_path, split_last};
use super::{ContextError, ContextLimits};
use crate::plan::values::clean_path;

/// What stdin held.
#[derive(Debug, PartialEq, Eq)]
pub enum StdinContext {
    /// A tar, unpacked into the scratch directory.
    Unpacked,
    /// Not a tar: the Dockerfile itself, with an empty context.
    Dockerfile(Vec<u8>),
}

fn terr(m: impl Into<String>) -> ContextError {
    ContextError::Tar(m.into())
}

/// Whether a 512-byte block looks like a tar header (ustar magic or a valid checksum).
fn is_tar_header(b: &[u8]) -> bool {
    if b.len() < 512 {
        return false;
    }
    if &b[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&b[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '));
    let Some(Ok(stored)) = stored.map(|s| u32::from_str_radix(s, 8)) else {
        return false;
    };
    let sum: u32 = b
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(c)
            }
        })
        .sum();
    sum == stored
}

/// Reads stdin's context: a tar into `scratch` (an existing, empty directory), or a Dockerfile of at
/// most `max_dockerfile` bytes.
pub fn read_stdin_context(
    input: impl Read,
    scratch: &Path,
    limits: &ContextLimits,
    max_dockerfile: usize,
) -> Result<StdinContext, ContextError> {
    let mut r = BufReader::with_capacity(64 << 10, input);
    let head = r.fill_buf().map_err(|e| terr(e.to_string()))?.to_vec();
    let compressed: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
    {
        return Err(terr(
            "xz, bzip2 and zstd contexts are not supported; use a plain or gzip tar",
        ));
    } else {
        Box::new(r)
    };
    let mut r = BufReader::with_capacity(64 << 10, compressed);
    let mut block = Vec::with_capacity(512);
    (&mut r)
        .take(512)
        .read_to_end(&mut block)
        .map_err(|e| terr(e.to_string()))?;
    if !is_tar_header(&block) {
        let mut all = block;
        (&mut r)
            .take(max_dockerfile as u64 + 1)
            .read_to_end(&mut all)
            .map_err(|e| terr(e.to_string()))?;
        if all.len() > max_dockerfile {
            return Err(terr(format!(
                "stdin is neither a tar nor a Dockerfile of at most {max_dockerfile} bytes"
            )));
        }
        return Ok(StdinContext::Dockerfile(all));
    }
    let root = nix::fcntl::open(scratch, fsat::DIR_FLAGS, Mode::empty())
        .map_err(|e| terr(format!("{}: {e}", scratch.display())))?;
    unpack(std::io::Cursor::new(block).chain(r), &root, limits)?;
    Ok(StdinContext::Unpacked)
}

/// A name as stored, cleaned: leading `/` and `./` dropped; `None` for the root; an error for `..`.
fn clean_name(raw: &[u8], limits: &ContextLimits) -> Result<Option<String>, ContextError> {
    if raw.len() > limits.max_name_bytes {
        return Err(terr(format!(
            "entry name longer than {} bytes",
            limits.max_name_bytes
        )));
    }
    let s = std::str::from_utf8(raw).map_err(|_| {
        terr(format!(
            "entry name {:?} is not UTF-8",
            String::from_utf8_lossy(raw)
        ))
    })?;
    if s.contains('\0') {
        return Err(terr("entry name holds a NUL byte"));
    }
    let c = clean_path(s.trim_start_matches('/'));
    if c == ".." || c.starts_with("../") {
        return Err(terr(format!("entry {s:?} points outside the context")));
    }
    Ok(if c == "." { None } else { Some(c) })
}

fn pax_records(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(sp) = rest.iter().position(|b| *b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len - 1];
        if let Some(eq) = rec.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                rec[eq + 1..].to_vec(),
            ));
        }
        rest = &rest[len..];
    }
    out
}

/// Removes whatever is at `name` in `dir` unless it is a directory and `keep_dir`.
fn clear(dir: &OwnedFd, name: &str, keep_dir: bool) -> Result<(), ContextError> {
    match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(terr(format!("{name}: {e}"))),
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            if keep_dir {
                Ok(())
            } else {
                Err(terr(format!("{name}: a directory is in the way")))
            }
        }
        Ok(_) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| terr(format!("{name}: {e}"))),
    }
}

fn unpack(input: impl Read, root: &OwnedFd, limits: &ContextLimits) -> Result<(), ContextError> {
    let mut archive = tar::Archive::new(input);
    let mut entries = archive
        .entries()
        .map_err(|e| terr(e.to_string()))?
        .raw(true);
    let (mut long_name, mut long_link): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    let (mut count, mut total) = (0usize, 0u64);
    let mut dir_modes: Vec<(String, u32)> = Vec::new();
    for entry in &mut entries {
        let mut entry = entry.map_err(|e| terr(e.to_string()))?;
        count += 1;
        if count > limits.max_entries {
            return Err(ContextError::TooManyEntries(limits.max_entries));
        }
        let header = entry.header().clone();
        let size = header.entry_size().map_err(|e| terr(e.to_string()))?;
        let kind = header.entry_type();
        let small = |what: &str| -> Result<(), ContextError> {
            if size > limits.max_name_bytes as u64 + 1024 {
                return Err(terr(format!("{what} record of {size} bytes is too large")));
            }
            Ok(())
        };
        if kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions()
        {
            small("metadata")?;
            let mut data = Vec::new();
            (&mut entry)
                .take(size)
                .read_to_end(&mut data)
                .map_err(|e| terr(e.to_string()))?;
            if kind.is_gnu_longname() {
                long_name = Some(data.split(|b| *b == 0).next().unwrap_or_default().to_vec());
            } else if kind.is_gnu_longlink() {
                long_link = Some(data.split(|b| *b == 0).next().unwrap_or_default().to_vec());
            } else if kind.is_pax_local_extensions() {
                for (k, v) in pax_records(&data) {
                    match k.as_str() {
                        "path" => long_name = Some(v),
                        "linkpath" => long_link = Some(v),
                        _ => {}
                    }
                }
            }
            continue;
        }
        let raw_name = long_name
            .take()
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let raw_link = long_link
            .take()
            .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        let Some(name) = clean_name(&raw_name, limits)? else {
            continue;
        };
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let (parent, base) = split_last(&name);
        let at = |e: std::io::Error| terr(format!("{name}: {e}"));
        let dir = mkdir_all(root, parent).map_err(at)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total = total.saturating_add(size);
                if total > limits.max_total_bytes {
                    return Err(terr(format!(
                        "context larger than {} bytes",
                        limits.max_total_bytes
                    )));
                }
                clear(&dir, base, false)?;
                let fd = openat(
                    &dir,
                    base,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| at(e.into()))?;
                let mut f = std::fs::File::from(fd);
                let copied = std::io::copy(&mut (&mut entry).take(size), &mut f).map_err(at)?;
                if copied != size {
                    return Err(terr(format!("{name}: archive ends inside the entry")));
                }
                fchmod(&f, Mode::from_bits_truncate(mode)).map_err(|e| at(e.into()))?;
            }
            tar::EntryType::Directory => {
                clear(&dir, base, true)?;
                match mkdirat(&dir, base, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(at(e.into())),
                }
                dir_modes.push((name.clone(), mode));
            }
            tar::EntryType::Symlink => {
                let target =
                    raw_link.ok_or_else(|| terr(format!("{name}: symlink without a target")))?;
                if target.len() > limits.max_name_bytes || target.contains(&0) {
                    return Err(terr(format!("{name}: bad symlink target")));
                }
                clear(&dir, base, false)?;
                let target = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&target);
                symlinkat(target, &dir, base).map_err(|e| at(e.into()))?;
            }
            tar::EntryType::Link => {
                let target =
                    raw_link.ok_or_else(|| terr(format!("{name}: hard link without a target")))?;
                let Some(target) = clean_name(&target, limits)? else {
                    return Err(terr(format!("{name}: hard link to the root")));
                };
                let (tparent, tbase) = split_last(&target);
                let tdir = open_dir_path(root, tparent)
                    .map_err(|e| terr(format!("{name}: link target {target}: {e}")))?;
                clear(&dir, base, false)?;
                linkat(&tdir, tbase, &dir, base, AtFlags::empty())
                    .map_err(|e| terr(format!("{name}: link target {target}: {e}")))?;
            }
            tar::EntryType::GNUSparse => {
                return Err(terr(format!("{name}: sparse files are not supported")))
            }
            // Devices, FIFOs and the like have no place in a build context.
            _ => {}
        }
    }
    for (name, mode) in dir_modes.iter().rev() {
        let fd = open_dir_path(root, name).map_err(|e| terr(format!("{name}: {e}")))?;
        fchmod(&fd, Mode::from_bits_truncate(*mode)).map_err(|e| terr(format!("{name}: {e}")))?;
    }
    Ok(())
}
