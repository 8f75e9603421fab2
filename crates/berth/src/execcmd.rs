//! `exec`: a new process in a running container, through the runtime library in-process. berth
//! re-executes itself from a sealed memfd first, so the process in the container can never reach
//! the host's berth binary through /proc (CVE-2019-5736).

use crate::Ctx;
use berth_engine::{Engine, EngineError};
use berth_runtime::exec::ExecOptions;
use berth_runtime::state::ContainerState;
use clap::Args;

#[derive(Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn fail(e: EngineError) -> (String, u8) {
    let c = e.exit_code();
    (e.msg, c)
}

pub fn exec(ctx: &Ctx, a: ExecArgs) -> Result<u8, (String, u8)> {
    let e = Engine::open(&ctx.root, &ctx.runroot).map_err(fail)?;
    let r = e.get(&a.container).map_err(fail)?;
    if r.state.status != "running" {
        return Err((format!("container {} is not running", &r.id[..12]), 1));
    }
    let st = ContainerState::load(&e.runtime_root, &r.id).map_err(|x| (x.to_string(), 125))?;
    let mut process = st.config.process().clone().unwrap_or_default();
    process.set_args(Some(a.command.clone()));
    process.set_terminal(Some(a.tty));
    let mut env = berth_engine::container::EnvList::default();
    for kv in process.env().iter().flatten().chain(&a.env) {
        env.set(kv);
    }
    process.set_env(Some(env.into_vec()));
    if let Some(w) = &a.workdir {
        process.set_cwd(w.into());
    }
    if let Some(u) = &a.user {
        let rootfs = e.records.dir(&r.id).join("rootfs");
        let ru = berth_engine::user::resolve(&rootfs, u).map_err(|x| (x.to_string(), 125))?;
        let mut user = process.user().clone();
        user.set_uid(ru.uid);
        user.set_gid(ru.gid);
        user.set_additional_gids(Some(ru.additional_gids));
        process.set_user(user);
    }
    if a.privileged {
        return Err((
            "exec --privileged is not supported: the container's capability set applies".into(),
            125,
        ));
    }
    berth_runtime::exec::reexec_from_sealed_memfd().map_err(|e| (e.to_string(), 125))?;
    // `-d -t`: a background keeper holds the terminal for the process (output discarded, input
    // a pipe that never ends, so it is never hung up on) and reaps it; we return.
    let kept = a.tty && a.detach;
    if kept {
        keep_terminal_in_background()?;
    }
    let detach = a.detach && !kept;
    // Without -i the process reads nothing, as with Docker.
    if !a.interactive && !kept {
        if let Ok(null) = std::fs::File::open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: replacing our stdin with /dev/null before the process inherits it.
            unsafe { libc::dup2(null.as_raw_fd(), 0) };
        }
    }
    let code = berth_runtime::exec::exec(ExecOptions {
        root: e.runtime_root.clone(),
        id: r.id.clone(),
        process,
        detach,
        pid_file: None,
        console_socket: None,
        preserve_fds: 0,
        ignore_paused: false,
        sub_cgroups: Vec::new(),
    })
    .map_err(|x| {
        let ee: EngineError = x.into();
        fail(ee)
    })?;
    Ok(code.clamp(0, 255) as u8)
}

/// Forks: the parent (the user's `berth exec -d -t`) exits 0 at once; the child goes on, in its
/// own session with stdio on /dev/null and stdin on a pipe it keeps open, to run the process with
/// a terminal it proxies to nowhere.
fn keep_terminal_in_background() -> Result<(), (String, u8)> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| (format!("/dev/null: {e}"), 125))?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds; both stay open in the keeper on purpose.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), 0) } != 0 {
        return Err((format!("pipe: {}", std::io::Error::last_os_error()), 125));
    }
    // SAFETY: berth is single-threaded here; the child continues with plain Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err((format!("fork: {}", std::io::Error::last_os_error()), 125));
    }
    if pid > 0 {
        std::process::exit(0);
    }
    // SAFETY: the keeper's own session and stdio.
    unsafe {
        libc::setsid();
        libc::dup2(fds[0], 0);
        libc::dup2(null.as_raw_fd(), 1);
        libc::dup2(null.as_raw_fd(), 2);
    }
    Ok(())
}
