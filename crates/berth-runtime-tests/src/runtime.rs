//! Runs the runtime binary under test (`$BERTH_RUNTIME`, default the workspace's debug
//! build) with a per-test `--root`. Output goes to files, never pipes, so a detached
//! container holding stdout open cannot hang a test; every call has a deadline.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long any single runtime command may take before the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The runtime binary under test.
pub fn runtime_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("debug/berth-runtime")
}

/// A short name for messages ("runc", "berth-runtime").
pub fn runtime_name() -> String {
    runtime_binary()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// True when the binary under test is runc (some tests check runc-only quirks loosely).
pub fn is_runc() -> bool {
    runtime_name() == "runc"
}

#[derive(Debug)]
pub struct Outcome {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Exit code, or 128+signal when killed by a signal (as a shell reports it).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the command and its output unless it succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.success(), "`{}` failed: {self}", self.args.join(" "));
        self
    }

    /// Panics unless the command failed.
    #[track_caller]
    pub fn failed(self) -> Self {
        assert!(
            !self.success(),
            "`{}` unexpectedly succeeded: {self}",
            self.args.join(" ")
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}): {self}", self.args.join(" ")))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// A runtime command started in the background.
pub struct Running {
    pub child: Child,
    args: Vec<String>,
    out: PathBuf,
    err: PathBuf,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What the command has printed to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits for exit; on timeout kills the command and panics (a hang is a failure).
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`{}` hung for {timeout:?}; stdout so far: {}\nstderr: {}",
                    self.args.join(" "),
                    self.stdout_so_far(),
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Outcome {
            args: self.args,
            status,
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }
}

pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
    out_dir: PathBuf,
    seq: AtomicUsize,
    /// Run every command as this (uid, gid), no supplementary groups: a rootless runtime.
    pub as_user: Option<(u32, u32)>,
}

impl Runtime {
    /// A runtime whose state lives in `root`; command output files go to `out_dir`.
    pub fn new(root: PathBuf, out_dir: PathBuf) -> Runtime {
        std::fs::create_dir_all(&out_dir).unwrap();
        Runtime {
            bin: runtime_binary(),
            root,
            out_dir,
            seq: AtomicUsize::new(0),
            as_user: None,
        }
    }

    /// A `Command` for the binary with `--root` already set, stdin from /dev/null.
    pub fn command<S: AsRef<str>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.bin);
        if let Some((uid, gid)) = self.as_user {
            use std::os::unix::process::CommandExt;
            // std drops root's supplementary groups when it switches the uid.
            cmd.uid(uid).gid(gid).env_remove("XDG_RUNTIME_DIR");
        }
        cmd.arg("--root").arg(&self.root);
        cmd.args(args.iter().map(|a| a.as_ref()));
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Starts a command with its output going to fresh files.
    pub fn spawn<S: AsRef<str>>(&self, args: &[S]) -> Running {
        self.spawn_command(self.command(args), args)
    }

    pub fn spawn_command<S: AsRef<str>>(&self, mut cmd: Command, args: &[S]) -> Running {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let out = self.out_dir.join(format!("{n}.out"));
        let err = self.out_dir.join(format!("{n}.err"));
        cmd.stdout(File::create(&out).unwrap());
        cmd.stderr(File::create(&err).unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        let args = std::iter::once(self.bin.display().to_string())
            .chain(args.iter().map(|a| a.as_ref().to_string()))
            .collect();
        Running {
            child,
            args,
            out,
            err,
        }
    }

    /// Runs a command to completion (20 s deadline).
    #[track_caller]
    pub fn exec<S: AsRef<str>>(&self, args: &[S]) -> Outcome {
        self.spawn(args).wait(DEFAULT_TIMEOUT)
    }

    /// `state ID` parsed, or None when the runtime does not know the id.
    pub fn state(&self, id: &str) -> Option<serde_json::Value> {
        let out = self.exec(&["state", id]);
        out.success().then(|| out.json())
    }

    /// The container's `status` from `state`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        let st = self
            .state(id)
            .unwrap_or_else(|| panic!("state {id} failed"));
        st["status"].as_str().unwrap_or_default().to_string()
    }

    /// Waits until `state ID` reports `status`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) {
        let ok = crate::wait_for(Duration::from_secs(10), || {
            self.state(id).is_some_and(|s| s["status"] == status)
        });
        assert!(
            ok,
            "container {id} never reached status {status:?} (now {:?})",
            self.state(id)
        );
    }

    /// The container's init pid from `state`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let st = self
            .state(id)
            .unwrap_or_else(|| panic!("state {id} failed"));
        st["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state {id} has no pid: {st}")) as i32
    }
}
