//! Docker's detach keys (`--detach-keys`, ctrl-p ctrl-q by default): the sequence parsed from
//! its syntax, and a matcher that passes typed input on and holds back a partial sequence until
//! the next byte decides. Shared by `attach`'s client and the runtime's terminal proxy (`exec`).

/// The key sequence that leaves an attached session (`--detach-keys`): Docker's default is
/// ctrl-p ctrl-q.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(pub Vec<u8>);

impl Default for DetachKeys {
    fn default() -> DetachKeys {
        DetachKeys(vec![0x10, 0x11])
    }
}

impl DetachKeys {
    /// Docker's syntax: comma-separated keys, each `ctrl-X` (X one of a-z, @, [, \, ], ^, _) or
    /// a single ASCII character (`ctrl-a,x`).
    pub fn parse(s: &str) -> Result<DetachKeys, String> {
        let bad = |k: &str| format!("invalid detach keys {s:?}: unknown key {k:?}");
        let mut out = Vec::new();
        for key in s.split(',') {
            let b = match key.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => match c.as_bytes()[0].to_ascii_lowercase() {
                    l @ b'a'..=b'z' => l - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(bad(key)),
                },
                None if key.len() == 1 && key.is_ascii() => key.as_bytes()[0],
                _ => return Err(bad(key)),
            };
            out.push(b);
        }
        Ok(DetachKeys(out))
    }
}

/// Input bytes through the detach-key matcher: what to send on, and whether the whole sequence
/// was typed. A partial match is held back until the next byte decides.
pub struct KeyMatcher<'a> {
    keys: &'a [u8],
    held: usize,
}

impl KeyMatcher<'_> {
    pub fn new(keys: &DetachKeys) -> KeyMatcher<'_> {
        KeyMatcher {
            keys: &keys.0,
            held: 0,
        }
    }

    /// Passes `input` on into `out`; true once the whole sequence was typed (what follows it
    /// in `input` is dropped, as the session ends).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_and_match_across_reads() {
        assert_eq!(
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap(),
            DetachKeys::default()
        );
        assert_eq!(DetachKeys::parse("ctrl-a,x").unwrap().0, [1, b'x']);
        assert_eq!(DetachKeys::parse("ctrl-\\").unwrap().0, [28]);
        assert!(DetachKeys::parse("ctrl-1").is_err());
        assert!(DetachKeys::parse("xy").is_err());
        let keys = DetachKeys::default();
        let mut m = KeyMatcher::new(&keys);
        let mut out = Vec::new();
        assert!(!m.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        assert!(!m.feed(b"\x10c", &mut out));
        assert_eq!(out, b"ab\x10\x10c");
        out.clear();
        assert!(!m.feed(b"\x10", &mut out));
        assert!(m.feed(b"\x11", &mut out));
        assert!(out.is_empty());
    }
}
