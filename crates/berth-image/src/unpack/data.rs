//! File contents from the tar stream into a new file, keeping runs of zeros as holes: a block of
//! zeros is skipped with the write offset instead of written, and the file is truncated to its full
//! size at the end. A GNU sparse entry (which the tar crate reads as zero-filled data) and a plain
//! file full of zeros both stay small on disk. Owns no fds.

use std::io::{self, Read};
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::uio::pwrite;
use nix::unistd::ftruncate;

/// Holes are made in whole blocks of this size (the page and usual filesystem block size).
const BLOCK: usize = 4096;
static ZEROS: [u8; BLOCK] = [0; BLOCK];

/// The copy buffer's size: a multiple of `BLOCK`, large enough that big files take few syscalls.
pub(super) const BUF_SIZE: usize = 256 * 1024;

/// Copies exactly `size` bytes from `src` into the empty file `file`, leaving zero blocks as holes.
/// `buf` is `BUF_SIZE` long.
pub(super) fn copy_sparse(
    src: &mut impl Read,
    file: BorrowedFd<'_>,
    size: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    let mut off: u64 = 0;
    let mut ends_in_hole = false;
    while off < size {
        let want = buf
            .len()
            .min(usize::try_from(size - off).unwrap_or(usize::MAX));
        let n = fill(src, &mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the tar stream ends inside the file's data",
            ));
        }
        ends_in_hole = write_runs(file, &buf[..n], off)?;
        off += n as u64;
    }
    if ends_in_hole {
        ftruncate(file, to_off(size)?)?;
    }
    Ok(())
}

/// Reads until `buf` is full or the entry ends; returns the bytes read.
fn fill(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes the non-zero blocks of `data` (which starts at file offset `off`, a multiple of `BLOCK`)
/// with one `pwrite` per run. Returns whether the last block was a hole.
fn write_runs(file: BorrowedFd<'_>, data: &[u8], off: u64) -> io::Result<bool> {
    let mut run_start: Option<usize> = None;
    let mut pos = 0;
    for block in data.chunks(BLOCK) {
        let zero = block == &ZEROS[..block.len()];
        match (zero, run_start) {
            (true, Some(start)) => {
                write_all_at(file, &data[start..pos], off + start as u64)?;
                run_start = None;
            }
            (false, None) => run_start = Some(pos),
            _ => {}
        }
        pos += block.len();
    }
    match run_start {
        Some(start) => {
            write_all_at(file, &data[start..], off + start as u64)?;
            Ok(false)
        }
        None => Ok(!data.is_empty()),
    }
}

fn write_all_at(file: BorrowedFd<'_>, mut data: &[u8], mut off: u64) -> io::Result<()> {
    while !data.is_empty() {
        match pwrite(file, data, to_off(off)?) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                off += n as u64;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn to_off(n: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(n).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    fn copy(data: &[u8]) -> (Vec<u8>, std::fs::Metadata) {
        let mut file = tempfile::tempfile().unwrap();
        let mut buf = vec![0u8; BUF_SIZE];
        copy_sparse(&mut &data[..], file.as_fd(), data.len() as u64, &mut buf).unwrap();
        let meta = file.metadata().unwrap();
        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut back).unwrap();
        (back, meta)
    }

    #[test]
    fn copy_keeps_content_with_holes_between_data() {
        let mut data = vec![0u8; 3 * BUF_SIZE + 100];
        data[10] = 1;
        data[BUF_SIZE + 5000] = 2;
        data[3 * BUF_SIZE + 99] = 3;
        let (back, _) = copy(&data);
        assert_eq!(back, data);
    }

    #[test]
    fn copy_of_all_zeros_allocates_nothing() {
        let data = vec![0u8; 4 * BUF_SIZE + 17];
        let (back, meta) = copy(&data);
        assert_eq!(back, data);
        assert_eq!(meta.len(), data.len() as u64);
        assert_eq!(meta.blocks(), 0);
    }

    #[test]
    fn copy_of_dense_data_is_exact() {
        let data: Vec<u8> = (0..BUF_SIZE * 2 + 1234)
            .map(|i| (i % 251) as u8 + 1)
            .collect();
        let (back, _) = copy(&data);
        assert_eq!(back, data);
    }

    #[test]
    fn copy_reports_a_short_stream() {
        let file = tempfile::tempfile().unwrap();
        let mut buf = vec![0u8; BUF_SIZE];
        let err = copy_sparse(&mut &[1u8; 10][..], file.as_fd(), 20, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
