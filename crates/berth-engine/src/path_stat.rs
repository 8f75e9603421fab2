//! What a path inside a container is, for the API's `archive` (Docker's
//! `X-Docker-Container-Path-Stat`): its name, size, Go-style file mode (type bits included),
//! mtime and link target. The path is resolved by the kernel inside the container's root
//! (`RESOLVE_IN_ROOT`), the final symlink not followed, as `cp` resolves it.

use crate::copy::open_root;
use crate::error::{EngineError, Result};
use crate::record::Record;
use crate::Engine;
use serde::Serialize;
use std::os::fd::AsFd;
use std::path::Path;

/// Docker's `container.PathStat`.
#[derive(Debug, Clone, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`: permissions, setuid/setgid/sticky and type bits.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` of a `st_mode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    if st_mode & libc::S_ISUID != 0 {
        m |= 1 << 23;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= 1 << 22;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= 1 << 20;
    }
    m | match st_mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        _ => 0,
    }
}

impl Engine {
    /// The stat of `path` in container `rec` (relative paths are from its `/`); None when
    /// there is no such path.
    pub fn path_stat(&self, rec: &Record, path: &str) -> Result<Option<PathStat>> {
        let root = open_root(self, rec)?;
        let p = Path::new("/").join(path);
        let fd = match root.open(&p, libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(None)
            }
            Err(e) => {
                return Err(EngineError::io(
                    format!("{path} in container {}", rec.name),
                    e,
                ))
            }
        };
        let st = nix::sys::stat::fstat(fd.as_fd())
            .map_err(|e| EngineError::io(format!("{path} in container {}", rec.name), e.into()))?;
        let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            nix::fcntl::readlinkat(fd.as_fd(), "")
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let name = p
            .file_name()
            .map_or_else(|| "/".to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Some(PathStat {
            name,
            size: st.st_size,
            mode: go_mode(st.st_mode),
            mtime: berth_sys::time::rfc3339(st.st_mtime),
            link_target,
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn modes_carry_gos_type_bits() {
        assert_eq!(super::go_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(super::go_mode(libc::S_IFREG | 0o4755), (1 << 23) | 0o755);
        assert_eq!(super::go_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
    }
}
