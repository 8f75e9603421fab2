//! The crate's error type. Every message is one line that names the controller or file and the
//! cause, e.g. `cgroup memory: write memory.limit_in_bytes = "abc": Invalid argument`.
//! This module only describes failures; it never decides policy.

use std::io;
use std::path::PathBuf;

/// A failed cgroup operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {controller}: write {file} = {value:?}: {}", os_cause(.err))]
    Write {
        controller: String,
        file: String,
        value: String,
        err: io::Error,
    },
    #[error("cgroup {controller}: read {file}: {}", os_cause(.err))]
    Read {
        controller: String,
        file: String,
        err: io::Error,
    },
    #[error("cgroup: {op} {}: {}", .path.display(), os_cause(.err))]
    Dir {
        op: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    #[error("cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("cgroup {controller}: {resource} requested but the controller is not available")]
    ControllerMissing {
        controller: String,
        resource: String,
    },
    #[error("cgroup {controller}: {reason}")]
    Unsupported { controller: String, reason: String },
    #[error("cgroup {controller}: invalid {resource}: {reason}")]
    InvalidValue {
        controller: String,
        resource: String,
        reason: String,
    },
    #[error("cgroup {controller}: {}: timed out waiting for {state}", .path.display())]
    Timeout {
        controller: String,
        path: PathBuf,
        state: &'static str,
    },
    #[error("cgroup: read /proc/self/mountinfo: {}", os_cause(.0))]
    Mountinfo(io::Error),
    #[error("cgroup: no cgroup filesystem is mounted")]
    NotMounted,
    #[error("cgroup devices: {op}: {}", os_cause(.err))]
    Bpf { op: String, err: io::Error },
    #[error("cgroup: signal {sig} to pid {pid}: {}", os_cause(.err))]
    Kill { pid: i32, sig: i32, err: io::Error },
}

/// Convenience alias used by the whole crate.
pub type Result<T> = std::result::Result<T, Error>;

/// `Invalid argument` rather than `Invalid argument (os error 22)`.
fn os_cause(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Error {
    /// The raw OS error number, when the failure came from the kernel.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Write { err, .. }
            | Error::Read { err, .. }
            | Error::Dir { err, .. }
            | Error::Bpf { err, .. }
            | Error::Kill { err, .. }
            | Error::Mountinfo(err) => err.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn unsupported(controller: &str, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            controller: controller.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(controller: &str, resource: &str) -> Error {
        Error::ControllerMissing {
            controller: controller.into(),
            resource: resource.into(),
        }
    }

    pub(crate) fn invalid(controller: &str, resource: &str, reason: impl Into<String>) -> Error {
        Error::InvalidValue {
            controller: controller.into(),
            resource: resource.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_error_reads_as_one_sentence() {
        let e = Error::Write {
            controller: "memory".into(),
            file: "memory.limit_in_bytes".into(),
            value: "abc".into(),
            err: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(
            e.to_string(),
            r#"cgroup memory: write memory.limit_in_bytes = "abc": Invalid argument"#
        );
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }
}
