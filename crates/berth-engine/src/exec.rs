//! `exec`: a new process in a running container, through the runtime library in-process, with the
//! caller's stdio. The process is built from the container's own spec with the request's changes.
//! The runtime first re-executes this program from a sealed memfd (CVE-2019-5736), so the process
//! in the container can never reach the host's berth binary through /proc; that step fails closed.

use crate::create::EnvList;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_runtime::exec::ExecOptions;
use berth_runtime::state::ContainerState;
use std::os::fd::AsRawFd;

/// What `exec` runs and how.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// `NAME=value` entries added to (and replacing those of) the container's environment.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `name|uid[:group|gid]`, resolved through the container's own passwd and group files.
    pub user: Option<String>,
    pub tty: bool,
    /// Keep stdin open (without it the process reads nothing).
    pub interactive: bool,
    /// Return at once; the process runs on.
    pub detach: bool,
    pub privileged: bool,
    /// `--detach-keys` (Docker's syntax): with `-i -t`, the keys that leave the process
    /// running (None: none do; the CLI sends Docker's default, ctrl-p ctrl-q).
    pub detach_keys: Option<String>,
}

impl Engine {
    /// Runs `req` in the running container `what`; returns its exit status (0 at once with
    /// `detach`).
    pub fn exec(&self, what: &str, req: &ExecRequest) -> Result<i32> {
        let r = self.get(what)?;
        if r.state.status == "paused" {
            return Err(EngineError::NotRunning(format!(
                "container {} is paused, unpause the container before exec",
                &r.id[..12]
            )));
        }
        if r.state.status != "running" {
            return Err(EngineError::NotRunning(format!(
                "container {} is not running",
                &r.id[..12]
            )));
        }
        if req.privileged {
            return Err(EngineError::msg(
                "exec --privileged is not supported: the container's capability set applies",
            ));
        }
        let detach_keys = req
            .detach_keys
            .as_deref()
            .map(berth_sys::keys::DetachKeys::parse)
            .transpose()
            .map_err(EngineError::msg)?
            .filter(|_| req.tty && req.interactive);
        let process = self.exec_process(&r, req)?;
        berth_runtime::exec::reexec_from_sealed_memfd()?;
        // `-d -t`: a background keeper holds the terminal for the process (output discarded,
        // input a pipe that never ends, so it is never hung up on) and reaps it.
        let kept = req.tty && req.detach;
        if kept && keep_terminal_in_background()? {
            return Ok(0);
        }
        // Without -i the process reads nothing, as with Docker.
        if !req.interactive && !kept {
            let null =
                std::fs::File::open("/dev/null").map_err(|e| EngineError::io("/dev/null", e))?;
            // SAFETY: replacing our own stdin with /dev/null before the process inherits it.
            unsafe { libc::dup2(null.as_raw_fd(), 0) };
        }
        let code = berth_runtime::exec::exec(ExecOptions {
            root: self.runtime_root.clone(),
            id: r.id.clone(),
            process,
            detach: req.detach && !kept,
            pid_file: None,
            console_socket: None,
            preserve_fds: 0,
            ignore_paused: false,
            sub_cgroups: Vec::new(),
            detach_keys,
        });
        if kept {
            // The keeper is a fork of the caller: it must never return into the caller's code.
            std::process::exit(code.unwrap_or(255).clamp(0, 255));
        }
        Ok(code?)
    }

    /// The container's own process, with the request's command, environment, directory and user.
    fn exec_process(
        &self,
        r: &crate::record::Record,
        req: &ExecRequest,
    ) -> Result<oci_spec::runtime::Process> {
        let st = ContainerState::load(&self.runtime_root, &r.id)?;
        let mut process = st.config.process().clone().unwrap_or_default();
        process.set_args(Some(req.command.clone()));
        process.set_terminal(Some(req.tty));
        crate::create::check_env(&req.env)?;
        let mut env = EnvList::default();
        // A bare NAME has no value: never resolved here (see `merge_env`), and not in the
        // process's environment, which holds KEY=VALUE only.
        let asked = req.env.iter().filter(|e| e.contains('='));
        for kv in process.env().iter().flatten().chain(asked) {
            env.set(kv);
        }
        process.set_env(Some(env.into_vec()));
        if let Some(w) = &req.workdir {
            process.set_cwd(w.into());
        }
        if let Some(u) = &req.user {
            let rootfs = self.records.dir(&r.id).join("rootfs");
            let ru = crate::user::resolve(&rootfs, u)?;
            let mut user = process.user().clone();
            user.set_uid(ru.uid);
            user.set_gid(ru.gid);
            user.set_additional_gids(Some(ru.additional_gids));
            process.set_user(user);
        }
        Ok(process)
    }
}

/// Forks a keeper for `exec -d -t`: true in the caller (which returns at once), false in the
/// keeper, which goes on in its own session with stdio on /dev/null and stdin on a pipe it keeps
/// open, to run the process with a terminal it proxies to nowhere.
fn keep_terminal_in_background() -> Result<bool> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| EngineError::io("/dev/null", e))?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds; both stay open in the keeper on purpose.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), 0) } != 0 {
        return Err(EngineError::io("pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: berth is single-threaded here; the child continues with plain Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(EngineError::io("fork", std::io::Error::last_os_error()));
    }
    if pid > 0 {
        // SAFETY: closing our copies of the keeper's pipe.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        return Ok(true);
    }
    // SAFETY: the keeper's own session and stdio.
    unsafe {
        libc::setsid();
        libc::dup2(fds[0], 0);
        libc::dup2(null.as_raw_fd(), 1);
        libc::dup2(null.as_raw_fd(), 2);
    }
    Ok(false)
}
