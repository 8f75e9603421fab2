//! Entry names from an untrusted tar stream, cleaned lexically into components that stay inside the
//! layer, and the overlayfs whiteout names among them. Pure: never touches the filesystem.
//!
//! The choice (Docker's): a leading `/` is stripped, so `/etc/passwd` is the layer's `etc/passwd`;
//! `.` and empty components are dropped; `..` removes the previous component, and a `..` that would
//! climb above the layer root is an error.

/// Prefix of an overlay/aufs whiteout: `.wh.NAME` hides `NAME` of the layers below.
const WHITEOUT: &[u8] = b".wh.";
/// Prefix of aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`), skipped.
const WHITEOUT_META: &[u8] = b".wh..wh.";
/// Marks its directory opaque: nothing of the layers below shows through it.
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Why a name cannot be cleaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BadPath {
    /// A `..` climbs above the layer root.
    Escapes,
    /// A NUL byte, which no file name can hold.
    Nul,
}

/// A cleaned entry path: normal components joined by single `/`, no `.`, `..` or empty components.
/// The empty path is the layer root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LayerPath {
    bytes: Vec<u8>,
}

impl LayerPath {
    pub(super) fn clean(raw: &[u8]) -> Result<LayerPath, BadPath> {
        if raw.contains(&0) {
            return Err(BadPath::Nul);
        }
        let mut bytes = Vec::with_capacity(raw.len());
        for comp in raw.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => {}
                b".." => {
                    if bytes.is_empty() {
                        return Err(BadPath::Escapes);
                    }
                    let cut = bytes.iter().rposition(|&b| b == b'/').unwrap_or(0);
                    bytes.truncate(cut);
                }
                _ => {
                    if !bytes.is_empty() {
                        bytes.push(b'/');
                    }
                    bytes.extend_from_slice(comp);
                }
            }
        }
        Ok(LayerPath { bytes })
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub(super) fn is_root(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The parent directory (empty for the root) and the last component; `None` for the root.
    pub(super) fn split(&self) -> Option<(&[u8], &[u8])> {
        if self.is_root() {
            return None;
        }
        Some(match self.bytes.iter().rposition(|&b| b == b'/') {
            Some(i) => (&self.bytes[..i], &self.bytes[i + 1..]),
            None => (&[][..], &self.bytes[..]),
        })
    }

    /// What the name means to overlayfs.
    pub(super) fn kind(&self) -> Result<Kind<'_>, BadWhiteout> {
        let Some((_, name)) = self.split() else {
            return Ok(Kind::Plain);
        };
        if name == OPAQUE {
            return Ok(Kind::Opaque);
        }
        if self
            .bytes
            .split(|&b| b == b'/')
            .any(|c| c.starts_with(WHITEOUT_META))
        {
            return Ok(Kind::AufsMeta);
        }
        match name.strip_prefix(WHITEOUT) {
            None => Ok(Kind::Plain),
            Some(b"..") => Err(BadWhiteout::Escapes),
            Some(b"" | b".") => Err(BadWhiteout::NoName),
            Some(hidden) => Ok(Kind::Whiteout(hidden)),
        }
    }
}

/// The overlayfs meaning of a cleaned name.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind<'a> {
    Plain,
    /// `.wh.NAME`: hide `NAME` (the component given) in the same directory.
    Whiteout(&'a [u8]),
    /// `.wh..wh..opq`: the parent directory is opaque.
    Opaque,
    /// Other `.wh..wh.` names (aufs bookkeeping): skipped.
    AufsMeta,
}

/// Why a whiteout name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BadWhiteout {
    /// `.wh...` would hide the parent of its directory.
    Escapes,
    /// `.wh.` or `.wh..` names no file.
    NoName,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> Result<String, BadPath> {
        LayerPath::clean(s.as_bytes()).map(|p| String::from_utf8(p.into_bytes()).unwrap())
    }

    #[test]
    fn clean_strips_leading_slash_dots_and_empty_components() {
        assert_eq!(clean("/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(clean("./usr//bin/./ls").unwrap(), "usr/bin/ls");
        assert_eq!(clean("usr/share/").unwrap(), "usr/share");
        assert_eq!(clean("./").unwrap(), "");
        assert_eq!(clean("").unwrap(), "");
    }

    #[test]
    fn clean_resolves_dotdot_inside_and_rejects_escape() {
        assert_eq!(clean("a/b/../c").unwrap(), "a/c");
        assert_eq!(clean("a/..").unwrap(), "");
        assert_eq!(clean("../etc/passwd"), Err(BadPath::Escapes));
        assert_eq!(clean("a/../../x"), Err(BadPath::Escapes));
        assert_eq!(clean("/.."), Err(BadPath::Escapes));
        assert_eq!(clean("a\0b"), Err(BadPath::Nul));
    }

    #[test]
    fn split_gives_parent_and_name() {
        let p = LayerPath::clean(b"a/b/c").unwrap();
        assert_eq!(p.split(), Some((&b"a/b"[..], &b"c"[..])));
        let p = LayerPath::clean(b"top").unwrap();
        assert_eq!(p.split(), Some((&b""[..], &b"top"[..])));
        assert_eq!(LayerPath::clean(b"/").unwrap().split(), None);
    }

    /// The kind of `s` with the hidden name copied out (so it outlives the path).
    fn kind(s: &str) -> Result<(&'static str, String), BadWhiteout> {
        let p = LayerPath::clean(s.as_bytes()).unwrap();
        Ok(match p.kind()? {
            Kind::Plain => ("plain", String::new()),
            Kind::Whiteout(n) => ("whiteout", String::from_utf8(n.to_vec()).unwrap()),
            Kind::Opaque => ("opaque", String::new()),
            Kind::AufsMeta => ("aufs", String::new()),
        })
    }

    #[test]
    fn kind_recognizes_whiteouts_opaque_and_aufs_metadata() {
        assert_eq!(kind("etc/.wh.passwd"), Ok(("whiteout", "passwd".into())));
        assert_eq!(kind("etc/.wh..wh..opq"), Ok(("opaque", String::new())));
        assert_eq!(kind(".wh..wh.plnk"), Ok(("aufs", String::new())));
        assert_eq!(kind(".wh..wh.plnk/123.45"), Ok(("aufs", String::new())));
        assert_eq!(kind("etc/.wh..."), Err(BadWhiteout::Escapes));
        assert_eq!(kind("etc/.wh.."), Err(BadWhiteout::NoName));
        assert_eq!(kind("etc/.wh."), Err(BadWhiteout::NoName));
        assert_eq!(kind("etc/passwd"), Ok(("plain", String::new())));
        assert_eq!(kind(""), Ok(("plain", String::new())));
    }
}
