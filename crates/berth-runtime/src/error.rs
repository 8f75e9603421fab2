//! The runtime's error type: one line that names the object and the cause, ready to show a user.
//! Context is added once, where it is known (`.ctx("mount /proc")`), never logged and re-thrown.

use std::fmt;

/// A runtime error: a human sentence, e.g. `mount "/proc" on "/x/rootfs/proc": Permission denied`.
#[derive(Debug)]
pub struct Error(String);

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn msg(s: impl Into<String>) -> Error {
        Error(s.into())
    }
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Build an error from a format string: `bail!("container {id:?} does not exist")`.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::error::Error::msg(format!($($t)*))) };
}

/// Adds what was being done to an error from below.
pub trait Context<T> {
    fn ctx(self, what: impl fmt::Display) -> Result<T>;
    fn with_ctx<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {}", strip_errno(&e.to_string()))))
    }
    fn with_ctx<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {}", what(), strip_errno(&e.to_string()))))
    }
}

/// nix prints `EPERM: Operation not permitted`; users want the sentence only.
fn strip_errno(s: &str) -> &str {
    match s.split_once(": ") {
        Some((code, rest))
            if code.starts_with('E')
                && code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            rest
        }
        _ => s,
    }
}

impl From<berth_cgroups::Error> for Error {
    fn from(e: berth_cgroups::Error) -> Error {
        Error(e.to_string())
    }
}

impl From<berth_seccomp::Error> for Error {
    fn from(e: berth_seccomp::Error) -> Error {
        Error(e.to_string())
    }
}
