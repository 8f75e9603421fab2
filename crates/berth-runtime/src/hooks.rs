//! OCI lifecycle hooks: runs each hook binary with exactly its configured argv and environment,
//! the container state JSON on stdin and an optional timeout, and reports failures as one line.
//! It never passes the runtime's own environment to a hook, never runs a hook through a shell,
//! and never returns while a hook it started is still unreaped.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use oci_spec::runtime::Hook;

/// A hook that could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook {}: path must be absolute", .path.display())]
    RelativePath { path: PathBuf },
    #[error("hook {}: timeout must be positive, got {secs}", .path.display())]
    InvalidTimeout { path: PathBuf, secs: i64 },
    #[error("hook {}: cannot start: {err}", .path.display())]
    Spawn { path: PathBuf, err: io::Error },
    #[error("hook {}: cannot wait: {err}", .path.display())]
    Wait { path: PathBuf, err: io::Error },
    #[error("hook {}: exited with status {status}", .path.display())]
    Exited { path: PathBuf, status: i32 },
    #[error("hook {}: killed by signal {signal} ({})", .path.display(), signal_name(*.signal))]
    Signaled { path: PathBuf, signal: i32 },
    #[error("hook {}: timed out after {secs} s", .path.display())]
    TimedOut { path: PathBuf, secs: i64 },
    /// A failure of one hook of a lifecycle stage, e.g. `createRuntime: error running hook /x: ...`.
    #[error("{kind}: error running {inner}")]
    Stage { kind: String, inner: Box<HookError> },
}

/// Runs the hooks of one lifecycle stage (`kind`, e.g. "createRuntime") in order and stops
/// at the first failure, whose error names the stage.
pub fn run_hooks(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    for hook in hooks {
        run_hook(hook, state_json).map_err(|inner| HookError::Stage {
            kind: kind.to_owned(),
            inner: Box::new(inner),
        })?;
    }
    Ok(())
}

/// Runs one hook: `path` with `args` (`args[0]` is argv[0]; `path` when `args` is empty) and
/// exactly `env` (entries without `=` are skipped), `state_json` on stdin, stdout and stderr
/// both on the runtime's stderr. A hook that outlives its `timeout` is killed with SIGKILL.
pub fn run_hook(hook: &Hook, state_json: &[u8]) -> Result<(), HookError> {
    let path = hook.path();
    if !path.is_absolute() {
        return Err(HookError::RelativePath { path: path.clone() });
    }
    let timeout = match hook.timeout() {
        Some(secs) if secs <= 0 => {
            return Err(HookError::InvalidTimeout {
                path: path.clone(),
                secs,
            })
        }
        Some(secs) => Some(secs),
        None => None,
    };

    let mut child = spawn(path, hook).map_err(|err| HookError::Spawn {
        path: path.clone(),
        err,
    })?;
    let status = supervise(&mut child, state_json, timeout).map_err(|err| HookError::Wait {
        path: path.clone(),
        err,
    })?;
    let Some(status) = status else {
        return Err(HookError::TimedOut {
            path: path.clone(),
            secs: timeout.unwrap_or_default(),
        });
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(status), _) => Err(HookError::Exited {
            path: path.clone(),
            status,
        }),
        (None, signal) => Err(HookError::Signaled {
            path: path.clone(),
            signal: signal.unwrap_or_default(),
        }),
    }
}

/// Starts the hook with a fresh environment, a stdin pipe and its output on our stderr.
fn spawn(path: &Path, hook: &Hook) -> io::Result<Child> {
    let mut cmd = Command::new(path);
    match hook.args().as_deref() {
        Some([argv0, rest @ ..]) => {
            cmd.arg0(argv0).args(rest);
        }
        _ => {
            cmd.arg0(path);
        }
    }
    cmd.env_clear();
    for entry in hook.env().as_deref().unwrap_or_default() {
        if let Some((key, value)) = entry.split_once('=') {
            cmd.env(key, value);
        }
    }
    // With no stderr to share (fd 2 closed), the hook's stdout goes nowhere.
    let stdout = match io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    };
    cmd.stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
}

/// Feeds `input` to the child's stdin while waiting for it to exit. Returns `None` after
/// killing and reaping a child that outlived `timeout_secs`.
fn supervise(
    child: &mut Child,
    input: &[u8],
    timeout_secs: Option<i64>,
) -> io::Result<Option<ExitStatus>> {
    let deadline = timeout_secs.map(|s| Instant::now() + Duration::from_secs(s.unsigned_abs()));
    let mut stdin = child.stdin.take();
    if let Some(pipe) = &stdin {
        set_nonblocking(pipe)?;
    }
    let mut written = 0;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(pipe) = stdin.as_mut() {
            if feed(pipe, input, &mut written) {
                stdin = None; // EOF for the hook, or it stopped reading.
            }
        }
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            drop(stdin);
            // The child is not yet reaped, so its pid cannot have been reused.
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Writes what the pipe takes without blocking. True when the pipe is done with: all of
/// `input` was written, or the hook closed its end (EPIPE) or the write failed.
fn feed(pipe: &mut ChildStdin, input: &[u8], written: &mut usize) -> bool {
    while *written < input.len() {
        match pipe.write(&input[*written..]) {
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    true
}

fn set_nonblocking(pipe: &ChildStdin) -> io::Result<()> {
    let flags = fcntl(pipe.as_fd(), FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(pipe.as_fd(), FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// "bad system call" for SIGSYS: the C library's description, lower-cased like Go's.
fn signal_name(sig: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string (or null).
    let p = unsafe { libc::strsignal(sig) };
    if p.is_null() {
        return format!("signal {sig}");
    }
    // SAFETY: a valid NUL-terminated C string from libc.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("berth-hooks-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str) -> String {
            self.0.join(name).to_str().unwrap().to_owned()
        }

        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.0.join(name)).unwrap()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sh(script: &str) -> Hook {
        HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()])
            .build()
            .unwrap()
    }

    #[test]
    fn hooks_run_in_order() {
        let dir = TempDir::new("order");
        let log = dir.file("log");
        let hooks = [
            sh(&format!("echo one >> {log}")),
            sh(&format!("echo two >> {log}")),
        ];
        run_hooks("createRuntime", &hooks, b"{}").unwrap();
        assert_eq!(dir.read("log"), "one\ntwo\n");
    }

    #[test]
    fn hook_receives_state_json_on_stdin() {
        let dir = TempDir::new("stdin");
        let state = br#"{"ociVersion":"1.1.0","id":"c1","status":"created","pid":42}"#;
        run_hook(&sh(&format!("cat > {}", dir.file("state"))), state).unwrap();
        assert_eq!(dir.read("state").as_bytes(), state);
    }

    #[test]
    fn hook_that_ignores_large_stdin_still_succeeds() {
        let state = vec![b'x'; 1 << 20];
        run_hook(&sh("exit 0"), &state).unwrap();
    }

    #[test]
    fn hook_env_is_exactly_the_configured_env() {
        let dir = TempDir::new("env");
        let mut hook = sh(&format!("env > {}", dir.file("env")));
        hook.set_env(Some(vec!["A=1".to_owned(), "B=x=y".to_owned()]));
        run_hook(&hook, b"{}").unwrap();
        let mut lines: Vec<_> = dir.read("env").lines().map(str::to_owned).collect();
        // Some shells export PWD, SHLVL or _ themselves; nothing may come from our env.
        lines.retain(|l| !["PWD=", "SHLVL=", "_="].iter().any(|p| l.starts_with(p)));
        assert_eq!(lines, ["A=1", "B=x=y"]);
    }

    #[test]
    fn hook_gets_args_with_argv0() {
        let dir = TempDir::new("args");
        let out = dir.file("args");
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "my-hook".to_owned(),
                "-c".to_owned(),
                format!("tr '\\0' ' ' < /proc/$$/cmdline > {out}"),
                "first".to_owned(),
                "second".to_owned(),
            ])
            .build()
            .unwrap();
        run_hook(&hook, b"{}").unwrap();
        // argv as the kernel saw it: argv[0] is args[0], not the path.
        let argv = dir.read("args");
        assert!(argv.starts_with("my-hook -c "), "{argv}");
        assert!(argv.ends_with(" first second "), "{argv}");
    }

    #[test]
    fn hook_past_timeout_is_killed_promptly() {
        let mut hook = sh("sleep 10");
        hook.set_timeout(Some(1));
        let start = Instant::now();
        let err = run_hook(&hook, b"{}").unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(err.to_string(), "hook /bin/sh: timed out after 1 s");
    }

    #[test]
    fn failing_hook_stops_the_stage_and_names_it() {
        let dir = TempDir::new("fail");
        let hooks = [sh("exit 3"), sh(&format!("touch {}", dir.file("ran")))];
        let err = run_hooks("createRuntime", &hooks, b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "createRuntime: error running hook /bin/sh: exited with status 3"
        );
        assert!(!dir.0.join("ran").exists());
    }

    #[test]
    fn relative_hook_path_and_bad_timeout_are_rejected() {
        let hook = HookBuilder::default().path("sh").build().unwrap();
        assert!(matches!(
            run_hook(&hook, b"{}"),
            Err(HookError::RelativePath { .. })
        ));
        let mut hook = sh("true");
        hook.set_timeout(Some(0));
        assert!(matches!(
            run_hook(&hook, b"{}"),
            Err(HookError::InvalidTimeout { secs: 0, .. })
        ));
    }

    #[test]
    fn missing_hook_binary_is_a_spawn_error() {
        let hook = HookBuilder::default()
            .path("/nonexistent/berth-hook")
            .build()
            .unwrap();
        let err = run_hook(&hook, b"{}").unwrap_err().to_string();
        assert!(
            err.starts_with("hook /nonexistent/berth-hook: cannot start:"),
            "{err}"
        );
    }
}
