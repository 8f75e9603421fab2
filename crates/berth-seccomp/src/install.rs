//! Loads a compiled filter into the kernel for the calling thread (or all threads with
//! TSYNC). It allocates nothing, so it is safe between fork and exec; it never sets
//! no_new_privs or changes capabilities, which the caller must have arranged.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::{Error, Filter};

impl Filter {
    /// Installs the filter via seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog), or
    /// prctl(PR_SET_SECCOMP) on kernels without seccomp(2) when no flags are needed.
    /// Requires no_new_privs or CAP_SYS_ADMIN. Returns the notify listener fd
    /// (close-on-exec, set by the kernel) when the filter uses SCMP_ACT_NOTIFY.
    pub fn install(&self) -> Result<Option<OwnedFd>, Error> {
        let prog = libc::sock_fprog {
            len: self.instructions.len() as u16,
            filter: self.instructions.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `len` initialised instructions that outlive the call;
        // the kernel copies the program and does not keep the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ENOSYS) || self.flags != 0 {
                return Err(Error::Install(err));
            }
            // SAFETY: as above; PR_SET_SECCOMP takes the same program pointer.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    &prog as *const libc::sock_fprog,
                )
            };
            if rc < 0 {
                return Err(Error::Install(io::Error::last_os_error()));
            }
            return Ok(None);
        }
        if self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 == 0 {
            // Without a listener, TSYNC reports a thread it could not sync by its id.
            if rc > 0 {
                return Err(Error::Tsync(rc as i64));
            }
            return Ok(None);
        }
        // SAFETY: with NEW_LISTENER a successful seccomp(2) returns a new fd that nothing
        // else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as libc::c_int) }))
    }
}
