//! Tar as real tools write it, for every place berth reads a tar stream (layers, `load`, `cp`,
//! build contexts): a reader that sits under the `tar` crate, follows the archive's 512-byte
//! framing and rewrites numeric header fields that are all NULs or all spaces to zero, as GNU tar
//! and Go's archive/tar read them (Python's tarfile writes empty device numbers for FIFOs and
//! files). It never changes a header whose checksum is wrong: the `tar` crate still refuses it.

use std::io::{self, Read};

const BLOCK: usize = 512;

/// The numeric fields of a ustar/GNU header, as byte ranges: mode, uid, gid, size, mtime,
/// devmajor, devminor.
const NUMERIC: [(usize, usize); 7] = [
    (100, 108),
    (108, 116),
    (116, 124),
    (124, 136),
    (136, 148),
    (329, 337),
    (337, 345),
];
const SIZE: (usize, usize) = (124, 136);
const CHECKSUM: (usize, usize) = (148, 156);
const TYPEFLAG: usize = 156;
/// GNU sparse headers: "more sparse maps follow in extension blocks".
const GNU_ISEXTENDED: usize = 482;
const GNU_EXT_ISEXTENDED: usize = 504;

/// What the next bytes of the stream are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Header,
    /// GNU sparse map extension blocks, then `data` bytes of data.
    SparseExtension {
        data: u64,
    },
    /// An entry's data with its padding.
    Data(u64),
    /// The framing is lost (an unparsable size): the rest goes through untouched.
    Raw,
}

/// A tar stream with empty numeric header fields read as zero. Wrap the raw (decompressed) stream
/// and hand this to `tar::Archive::new`.
pub struct Compat<R> {
    inner: R,
    block: [u8; BLOCK],
    /// `block[pos..len]` is still to be handed out.
    pos: usize,
    len: usize,
    next: Next,
}

impl<R: Read> Compat<R> {
    pub fn new(inner: R) -> Compat<R> {
        Compat {
            inner,
            block: [0; BLOCK],
            pos: 0,
            len: 0,
            next: Next::Header,
        }
    }

    /// Reads one whole block (fewer bytes only at the end of the stream).
    fn fill_block(&mut self) -> io::Result<usize> {
        let mut got = 0;
        while got < BLOCK {
            match self.inner.read(&mut self.block[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos = 0;
        self.len = got;
        Ok(got)
    }
}

impl<R: Read> Read for Compat<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.len {
                let n = (self.len - self.pos).min(buf.len());
                buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.next {
                Next::Raw => return self.inner.read(buf),
                Next::Data(0) => self.next = Next::Header,
                Next::Data(left) => {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[..want])?;
                    self.next = Next::Data(left - n as u64);
                    return Ok(n);
                }
                Next::Header => {
                    let got = self.fill_block()?;
                    if got == 0 {
                        return Ok(0);
                    }
                    self.next = if got < BLOCK {
                        Next::Raw
                    } else {
                        after_header(&mut self.block)
                    };
                }
                Next::SparseExtension { data } => {
                    let got = self.fill_block()?;
                    if got == 0 {
                        return Ok(0);
                    }
                    self.next = if got < BLOCK {
                        Next::Raw
                    } else if self.block[GNU_EXT_ISEXTENDED] != 0 {
                        Next::SparseExtension { data }
                    } else {
                        Next::Data(data)
                    };
                }
            }
        }
    }
}

/// Mends the header block in place and says what follows it.
fn after_header(block: &mut [u8; BLOCK]) -> Next {
    if block.iter().all(|&b| b == 0) {
        return Next::Header; // an end-of-archive block
    }
    if checksum_ok(block) && zero_empty_fields(block) {
        write_checksum(block);
    }
    let Some(size) = numeric(&block[SIZE.0..SIZE.1]) else {
        return Next::Raw;
    };
    let padded = size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64);
    if block[TYPEFLAG] == b'S' && block[GNU_ISEXTENDED] != 0 {
        Next::SparseExtension { data: padded }
    } else {
        Next::Data(padded)
    }
}

/// Rewrites every numeric field that is all NULs or spaces as octal zero; true if any was.
fn zero_empty_fields(block: &mut [u8; BLOCK]) -> bool {
    let mut changed = false;
    for (a, b) in NUMERIC {
        let field = &mut block[a..b];
        if field.iter().all(|&c| c == 0 || c == b' ') {
            let last = field.len() - 1;
            field[..last].fill(b'0');
            field[last] = 0;
            changed = true;
        }
    }
    changed
}

fn sums(block: &[u8; BLOCK]) -> (u64, i64) {
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in block.iter().enumerate() {
        let b = if (CHECKSUM.0..CHECKSUM.1).contains(&i) {
            b' '
        } else {
            b
        };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    (unsigned, signed)
}

/// The header's checksum matches (unsigned, or the signed sum old tools wrote).
fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let Some(want) = numeric(&block[CHECKSUM.0..CHECKSUM.1]) else {
        return false;
    };
    let (unsigned, signed) = sums(block);
    want == unsigned || i64::try_from(want).is_ok_and(|w| w == signed)
}

fn write_checksum(block: &mut [u8; BLOCK]) {
    let (sum, _) = sums(block);
    let text = format!("{sum:06o}\0 ");
    block[CHECKSUM.0..CHECKSUM.1].copy_from_slice(&text.as_bytes()[..8]);
}

/// A numeric field: octal digits (leading spaces, then NUL or space terminated), or GNU base-256
/// (high bit set; negative values are refused).
fn numeric(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] == 0xff {
            return None;
        }
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = field
        .iter()
        .position(|&b| b != b' ')
        .map_or(&field[field.len()..], |i| &field[i..]);
    let end = s
        .iter()
        .position(|&b| b == 0 || b == b' ')
        .unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    if !rest.iter().all(|&b| b == 0 || b == b' ') {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    digits.iter().try_fold(0u64, |v, &d| match d {
        b'0'..=b'7' => v.checked_mul(8)?.checked_add(u64::from(d - b'0')),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header for `name` with the given type, size and data, its numeric fields then
    /// blanked by `blank` (a list of field ranges), the checksum written last.
    fn entry(name: &str, ty: u8, data: &[u8], blank: &[(usize, usize)], fill: u8) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::new(ty));
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        let mut block: [u8; BLOCK] = h.as_bytes().to_owned();
        for &(a, b) in blank {
            block[a..b].fill(fill);
        }
        write_checksum(&mut block);
        let mut out = block.to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend_from_slice(&[0; 2 * BLOCK]);
        out
    }

    fn listed(bytes: &[u8]) -> Vec<(String, u64, u32, u64)> {
        let mut a = tar::Archive::new(Compat::new(bytes));
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.size().unwrap(),
                    h.mode().unwrap(),
                    u64::from(h.device_major().unwrap().unwrap_or(0)),
                )
            })
            .collect()
    }

    #[test]
    fn empty_numeric_fields_read_as_zero() {
        for fill in [0u8, b' '] {
            let fifo = entry("fifo", b'6', b"", &[(329, 337), (337, 345)], fill);
            let file = entry("f", b'0', b"hello", &[(100, 108), (108, 116)], fill);
            let dir = entry("d/", b'5', b"", &[(124, 136), (136, 148)], fill);
            let got = listed(&archive(&[fifo, file, dir]));
            assert_eq!(
                got,
                vec![
                    ("fifo".into(), 0, 0o644, 0),
                    ("f".into(), 5, 0, 0),
                    ("d/".into(), 0, 0o644, 0),
                ],
                "fill {fill}"
            );
        }
    }

    #[test]
    fn without_the_fix_the_tar_crate_refuses_them() {
        let fifo = entry("fifo", b'6', b"", &[(124, 136)], 0);
        let bytes = archive(&[fifo]);
        let mut a = tar::Archive::new(&bytes[..]);
        assert!(a.entries().unwrap().next().unwrap().is_err());
        assert_eq!(listed(&bytes).len(), 1);
    }

    #[test]
    fn a_bad_checksum_is_left_for_the_tar_crate_to_refuse() {
        let mut fifo = entry("fifo", b'6', b"", &[(329, 337)], 0);
        fifo[0] ^= 1; // the checksum no longer matches
        let bytes = archive(&[fifo]);
        let mut a = tar::Archive::new(Compat::new(&bytes[..]));
        assert!(a.entries().unwrap().next().unwrap().is_err());
    }

    #[test]
    fn data_that_looks_like_a_header_is_not_touched() {
        // A file whose content is itself a header with empty fields must come through byte-exact.
        let inner = entry("x", b'6', b"", &[(329, 337)], 0);
        let outer = entry("f", b'0', &inner, &[], 0);
        let bytes = archive(&[outer, entry("g", b'0', b"z", &[], 0)]);
        let mut a = tar::Archive::new(Compat::new(&bytes[..]));
        let mut it = a.entries().unwrap();
        let mut first = it.next().unwrap().unwrap();
        let mut data = Vec::new();
        first.read_to_end(&mut data).unwrap();
        assert_eq!(data, inner);
        drop(first);
        assert_eq!(
            it.next().unwrap().unwrap().path().unwrap().to_str(),
            Some("g")
        );
    }

    #[test]
    fn any_read_size_gives_the_same_bytes() {
        let bytes = archive(&[
            entry("a", b'0', &[7u8; 1000], &[(108, 116)], 0),
            entry("b", b'6', b"", &[(329, 345)], b' '),
        ]);
        let mut whole = Vec::new();
        Compat::new(&bytes[..]).read_to_end(&mut whole).unwrap();
        for step in [1, 3, 511, 512, 513, 4096] {
            let mut r = Compat::new(&bytes[..]);
            let mut out = Vec::new();
            let mut buf = vec![0u8; step];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, whole, "step {step}");
        }
        assert_eq!(whole.len(), bytes.len());
    }

    #[test]
    fn numeric_fields_parse_like_gnu_tar() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b"  644 \0\0"), Some(0o644));
        assert_eq!(numeric(b"\0\0\0\0"), Some(0));
        assert_eq!(numeric(b"64x\0"), None);
        assert_eq!(numeric(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(numeric(&[0xff, 0xff]), None);
    }
}
