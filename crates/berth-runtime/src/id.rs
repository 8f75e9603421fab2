//! Container IDs: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 1024 bytes. An ID names a directory under the
//! runtime's root, so anything else (slashes, `..`, NUL) is refused before any path is built.

use crate::error::{Error, Result};

pub const MAX_ID_LEN: usize = 1024;

pub fn validate(id: &str) -> Result<()> {
    let ok_first = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if id.is_empty() || id.len() > MAX_ID_LEN || !ok_first || !ok_rest {
        return Err(Error::msg(format!(
            "invalid container id {id:?}: must match [A-Za-z0-9][A-Za-z0-9_.-]* and be at most {MAX_ID_LEN} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_plain_ids() {
        for id in ["a", "abc-1.2_3", "0x", "A.b"] {
            assert!(validate(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_path_tricks_and_empty() {
        for id in [
            "",
            "..",
            ".a",
            "a/b",
            "../x",
            "-a",
            "a b",
            "a\0b",
            &"x".repeat(1025),
        ] {
            assert!(validate(id).is_err(), "{id:?}");
        }
    }
}
