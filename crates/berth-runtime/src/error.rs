//! The runtime's error type: one line that names the object and the cause, ready to show a user,
//! and underneath it a kind that code decides on (exit codes are chosen from `Error::kind`, never
//! from the text) and the source the system gave (`io::Error`, an errno). Context is added once,
//! where it is known (`.ctx("mount /proc")`), never logged and re-thrown.

use std::fmt;

pub type Result<T> = std::result::Result<T, Error>;

/// What kind of failure an error is, for code that must decide on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The container's program does not exist (Docker's exit code 127).
    CommandNotFound,
    /// The program exists but cannot be executed: a directory, no permission, not a binary
    /// (Docker's exit code 126).
    CannotInvoke,
    /// Anything else the runtime could not do (Docker's 125).
    Other,
}

impl ErrorKind {
    /// The byte that carries the kind across the sync channel.
    pub(crate) fn code(self) -> u8 {
        match self {
            ErrorKind::Other => 0,
            ErrorKind::CommandNotFound => 1,
            ErrorKind::CannotInvoke => 2,
        }
    }

    pub(crate) fn from_code(c: u8) -> ErrorKind {
        match c {
            1 => ErrorKind::CommandNotFound,
            2 => ErrorKind::CannotInvoke,
            _ => ErrorKind::Other,
        }
    }

    /// The kind an `execve` failure with `errno` is: ENOENT (and ENOTDIR on the way) is a missing
    /// program, every other refusal a program that cannot be invoked.
    pub fn of_exec_errno(errno: i32) -> ErrorKind {
        match errno {
            libc::ENOENT | libc::ENOTDIR => ErrorKind::CommandNotFound,
            _ => ErrorKind::CannotInvoke,
        }
    }

    /// Docker's exit code for a container that failed this way before its program ran.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::CommandNotFound => 127,
            ErrorKind::CannotInvoke => 126,
            ErrorKind::Other => 125,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed; the source keeps the errno.
    #[error("{}", io_text(.context, .source))]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The container's program could not be executed (or found).
    #[error("{message}")]
    Exec { kind: ErrorKind, message: String },
    /// A failure reported by the container's init over the sync channel, with its kind.
    #[error("{message}")]
    Remote { kind: ErrorKind, message: String },
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    #[error(transparent)]
    Seccomp(#[from] berth_seccomp::Error),
    /// What was being done when `source` failed.
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
    /// A sentence: an invalid spec or argument, a state that forbids the operation.
    #[error("{0}")]
    Msg(String),
}

impl Error {
    pub fn msg(s: impl Into<String>) -> Error {
        Error::Msg(s.into())
    }

    /// The errno of a failed system call, `what` being the operation (`mount /proc`).
    pub fn sys(what: impl fmt::Display, errno: i32) -> Error {
        Error::Io {
            context: what.to_string(),
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    /// `what` failed with the last OS error.
    pub fn last_os(what: impl fmt::Display) -> Error {
        Error::Io {
            context: what.to_string(),
            source: std::io::Error::last_os_error(),
        }
    }

    /// The whole sentence (the same as `to_string()`).
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Exec { kind, .. } | Error::Remote { kind, .. } => *kind,
            Error::Context { source, .. } => source.kind(),
            _ => ErrorKind::Other,
        }
    }

    /// The errno underneath, when a system call failed.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Context { source, .. } => source.errno(),
            _ => None,
        }
    }
}

/// `context: cause`, or the cause alone when it says everything (an error that names its path).
fn io_text(context: &str, source: &std::io::Error) -> String {
    let cause = strip_errno(&source.to_string()).to_string();
    if context.is_empty() {
        cause
    } else {
        format!("{context}: {cause}")
    }
}

/// An io::Error that names its object already (e.g. from `berth_sys::root`).
impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Error {
        Error::Io {
            context: String::new(),
            source,
        }
    }
}

/// Build an error from a format string: `bail!("container {id:?} does not exist")`.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::error::Error::msg(format!($($t)*))) };
}

/// Errors that can take a context: each keeps what it can of its source.
pub trait IntoError {
    fn with_context(self, context: String) -> Error;
}

impl IntoError for std::io::Error {
    fn with_context(self, context: String) -> Error {
        Error::Io {
            context,
            source: self,
        }
    }
}

impl IntoError for nix::errno::Errno {
    fn with_context(self, context: String) -> Error {
        Error::sys(context, self as i32)
    }
}

impl IntoError for Error {
    fn with_context(self, context: String) -> Error {
        Error::Context {
            context,
            source: Box::new(self),
        }
    }
}

impl IntoError for berth_cgroups::Error {
    fn with_context(self, context: String) -> Error {
        Error::from(self).with_context(context)
    }
}

impl IntoError for berth_seccomp::Error {
    fn with_context(self, context: String) -> Error {
        Error::from(self).with_context(context)
    }
}

/// Errors that are text only (parsers, conversions): the sentence is kept.
macro_rules! textual {
    ($($t:ty),*) => {$(
        impl IntoError for $t {
            fn with_context(self, context: String) -> Error {
                Error::Msg(format!("{context}: {self}"))
            }
        }
    )*};
}
textual!(
    serde_json::Error,
    std::ffi::NulError,
    std::num::ParseIntError,
    std::string::FromUtf8Error,
    String,
    &str
);

/// Adds what was being done to an error from below.
pub trait Context<T> {
    fn ctx(self, what: impl fmt::Display) -> Result<T>;
    fn with_ctx<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: IntoError> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.with_context(what.to_string()))
    }
    fn with_ctx<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.with_context(what().to_string()))
    }
}

/// nix prints `EPERM: Operation not permitted` and std `Operation not permitted (os error 1)`;
/// users want the sentence only.
fn strip_errno(s: &str) -> &str {
    let s = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_errno_and_the_kind() {
        let e: Result<()> = Err(std::io::Error::from_raw_os_error(libc::EACCES)).ctx("open x");
        let e = e.ctx("container c").unwrap_err();
        assert_eq!(e.to_string(), "container c: open x: Permission denied");
        assert_eq!(e.errno(), Some(libc::EACCES));
        assert_eq!(e.kind(), ErrorKind::Other);
        let x: Result<()> = Err(Error::Exec {
            kind: ErrorKind::CommandNotFound,
            message: "exec: \"nope\": executable file not found in $PATH".into(),
        });
        let x = x.ctx("create").unwrap_err();
        assert_eq!(x.kind(), ErrorKind::CommandNotFound);
        assert_eq!(x.kind().exit_code(), 127);
    }

    #[test]
    fn errno_text_is_the_sentence_only() {
        let e: Result<()> = Err(nix::errno::Errno::EPERM).ctx("mount");
        assert_eq!(e.unwrap_err().to_string(), "mount: Operation not permitted");
        assert_eq!(
            ErrorKind::of_exec_errno(libc::ENOENT),
            ErrorKind::CommandNotFound
        );
        assert_eq!(
            ErrorKind::of_exec_errno(libc::EACCES),
            ErrorKind::CannotInvoke
        );
        assert_eq!(
            ErrorKind::of_exec_errno(libc::ENOEXEC),
            ErrorKind::CannotInvoke
        );
    }
}
