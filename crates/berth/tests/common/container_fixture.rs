//! The fixture of berth's container tests: a `Berth` store holding a busybox image (`bb`, imported
//! and tagged by the CLI) with the applets the tests call and a non-root user; a guard that, even
//! when a test panics, force-removes every container of its store, kills what is left of their
//! processes, unmounts what is left under its directory and removes their cgroups; and leak checks
//! that ask the kernel (mountinfo, cgroupfs, /proc), never berth. Test files include it with
//! `#[path = "common/container_fixture.rs"] mod fixture;` beside `mod common;`.
#![allow(dead_code)]

use crate::common::image::LayerTar;
use crate::common::{Berth, Output};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The image every test runs.
pub const IMAGE: &str = "bb";

/// The busybox applets linked into `/bin`.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "ls", "sleep", "id", "hostname", "grep", "head", "tail", "dd", "touch",
    "mkdir", "rm", "wc", "true", "false", "pwd", "env", "stty", "test", "printf", "seq", "stat",
    "kill", "cut", "tr", "readlink", "sed", "chown", "unshare", "uname", "httpd", "wget", "nc",
    "ip", "nslookup", "timeout", "awk", "sort", "ln",
];

/// The root filesystem of `bb`: static busybox, its applets, a passwd with `alice` (1000) and
/// `nobody`, a group file where `alice` is also in `staff` (50).
pub fn busybox_rootfs() -> Vec<u8> {
    let busybox =
        std::fs::read("/bin/busybox").expect("busybox-static is installed (/bin/busybox)");
    let mut t = LayerTar::new()
        .dir("bin", 0o755)
        .file("bin/busybox", &busybox, 0o755);
    for applet in APPLETS {
        t = t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.dir("etc", 0o755)
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        )
        .file(
            "etc/group",
            b"root:x:0:\nstaff:x:50:alice\nalice:x:1000:\nnogroup:x:65534:\n",
            0o644,
        )
        .dir("home", 0o755)
        .dir("home/alice", 0o755)
        .dir("root", 0o700)
        .dir("tmp", 0o1777)
        .finish()
}

/// One berth store with `bb` in it, cleaned up when dropped.
pub struct Sandbox {
    pub b: Berth,
    /// Every container ID a test learnt of: the guard cleans their cgroups and processes even
    /// after berth forgot them.
    seen: RefCell<BTreeSet<String>>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let b = Berth::new();
        let tarball = b.path("bb-rootfs.tar");
        std::fs::write(&tarball, busybox_rootfs()).expect("rootfs tarball");
        b.ok(&["import", tarball.to_str().expect("utf-8"), "bb:imported"]);
        b.ok(&["tag", "bb:imported", "bb:latest"]);
        Sandbox {
            b,
            seen: RefCell::new(BTreeSet::new()),
        }
    }

    /// The test's temporary directory (root, runroot and scratch files live under it).
    pub fn dir(&self) -> PathBuf {
        self.b
            .root
            .parent()
            .expect("root has a parent")
            .to_path_buf()
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.b.run(args)
    }

    /// Asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.b.ok(args)
    }

    /// The exit code, stdout and stderr of a berth command.
    pub fn code(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.b.run(args);
        (out.status.code().unwrap_or(-1), out.stdout, out.stderr)
    }

    /// A berth command line split at whitespace (for arguments without spaces): exit code, stdout
    /// and stderr.
    pub fn cli(&self, line: &str) -> (i32, String, String) {
        self.code(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Like `cli`, asserting success; returns stdout.
    pub fn cli_ok(&self, line: &str) -> String {
        self.ok(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// `berth run --rm FLAGS bb sh -c SCRIPT` (flags split at whitespace): exit code and stdout.
    pub fn sh(&self, flags: &str, script: &str) -> (i32, String) {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.split_whitespace());
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        let (code, out, err) = self.code(&args);
        eprintln!("berth {args:?} -> {code}\nstdout:\n{out}stderr:\n{err}");
        (code, out)
    }

    /// Like `sh`, asserting the script exits 0; returns its stdout.
    pub fn sh_ok(&self, flags: &str, script: &str) -> String {
        let (code, out) = self.sh(flags, script);
        assert_eq!(code, 0, "{script:?} with {flags:?} exited {code}:\n{out}");
        out
    }

    /// `berth run -d ARGS…`: asserts it printed a full ID and returns it.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        let id = out.trim().to_string();
        assert!(
            id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()),
            "run -d prints the full container ID: {out:?}"
        );
        self.track(&id);
        id
    }

    /// `berth run -d FLAGS bb sh -c SCRIPT` (flags split at whitespace); returns the ID.
    pub fn run_d_sh(&self, flags: &str, script: &str) -> String {
        let mut args: Vec<&str> = flags.split_whitespace().collect();
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        self.run_d(&args)
    }

    /// `State.Status` and `State.ExitCode` of a container.
    pub fn exit_state(&self, c: &str) -> (String, i64) {
        let v = self.inspect(c);
        let status = v["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (status, v["State"]["ExitCode"].as_i64().unwrap_or(-1))
    }

    /// Remembers a container for the guard and the leak checks.
    pub fn track(&self, id: &str) {
        self.seen.borrow_mut().insert(id.to_string());
    }

    /// The full ID of a container by name (tracked).
    pub fn id_of(&self, name: &str) -> String {
        let id = self.inspect(name)["Id"]
            .as_str()
            .expect("Id is a string")
            .to_string();
        self.track(&id);
        id
    }

    /// `berth inspect C` (a container) as one JSON object.
    pub fn inspect(&self, c: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", c]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect {c}: {e}:\n{out}"));
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_else(|| panic!("inspect prints an array of one: {out}"))
    }

    /// `State.Status` of a container.
    pub fn status(&self, c: &str) -> String {
        self.inspect(c)["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The IDs of every container directory in the store (what berth knows or half-made).
    pub fn container_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.b.root.join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The container's JSON log, as berth's monitor wrote it.
    pub fn log_file(&self, id: &str) -> PathBuf {
        self.b
            .root
            .join("containers")
            .join(id)
            .join(format!("{id}-json.log"))
    }

    /// Everything the kernel still holds for this store: mounts under the test directory, and
    /// cgroup directories and live processes of every tracked container.
    pub fn leaks(&self) -> Vec<String> {
        let mut out: Vec<String> = mounts_under(&self.dir())
            .into_iter()
            .map(|m| format!("mount {}", m.display()))
            .collect();
        out.extend(self.network_leaks());
        for id in self.seen.borrow().iter() {
            out.extend(
                cgroup_dirs(id)
                    .into_iter()
                    .map(|d| format!("cgroup {}", d.display())),
            );
            out.extend(
                processes_of(id)
                    .into_iter()
                    .map(|(p, what)| format!("process {p} ({what})")),
            );
        }
        out
    }

    /// What containers' networks still hold once none runs: veths (the prefix and 8 hex digits;
    /// bridges of networks that still exist may stay), resolver processes, address leases and
    /// published-port claims.
    pub fn network_leaks(&self) -> Vec<String> {
        let prefix = &self.b.net_prefix;
        let mut out: Vec<String> = crate::common::links_with_prefix(prefix)
            .into_iter()
            .filter(|l| l.len() == prefix.len() + 8 && !l.contains('-'))
            .map(|l| format!("veth {l}"))
            .collect();
        out.extend(
            crate::common::resolvers_of(&self.b.runroot)
                .into_iter()
                .map(|p| format!("resolver process {p}")),
        );
        let nets = self.b.runroot.join("networks");
        for e in std::fs::read_dir(&nets).into_iter().flatten().flatten() {
            for sub in ["leases", "endpoints"] {
                for f in std::fs::read_dir(e.path().join(sub))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if !f.file_name().to_string_lossy().starts_with('.') {
                        out.push(format!("{sub} {}", f.path().display()));
                    }
                }
            }
        }
        for f in std::fs::read_dir(nets.join("ports"))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(format!("port claim {}", f.path().display()));
        }
        out
    }

    /// Asserts the store holds no container and the kernel nothing of any tracked container,
    /// waiting a little for exits in flight (a monitor finishing its `--rm`).
    pub fn assert_clean(&self) {
        for id in self.container_dirs() {
            self.track(&id);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let dirs = self.container_dirs();
            let leaks = self.leaks();
            if dirs.is_empty() && leaks.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!("left behind: containers {dirs:?}, {leaks:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `berth ARGS…` run inside a pty by util-linux `script`; `input` (printf escapes) is typed
    /// a second later, once berth has put the terminal in raw mode (before that the tty driver
    /// would eat ctrl-q as flow control and hold a line until its newline). Returns (status,
    /// output).
    pub fn in_pty(&self, args: &[&str], input: &str) -> (i32, String) {
        let berth = self.b.command(args);
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut line = quote(&berth.get_program().to_string_lossy());
        for a in berth.get_args() {
            line.push(' ');
            line.push_str(&quote(&a.to_string_lossy()));
        }
        let script = format!(
            "(sleep 1; printf {}) | script -qec {} /dev/null",
            quote(input),
            quote(&line)
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]);
        for (k, v) in berth.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = crate::common::run(cmd, None);
        (out.status.code().unwrap_or(-1), out.stdout)
    }

    /// `rm -f -v` of every container through the CLI, then `assert_clean`.
    pub fn remove_all_and_assert_clean(&self) {
        for id in self.container_dirs() {
            self.track(&id);
            let out = self.berth(&["rm", "-f", "-v", &id]);
            assert!(
                out.status.success() || out.stderr.contains("No such container"),
                "rm -f {id}: {}",
                out.stderr
            );
        }
        self.assert_clean();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let mut ids = self.seen.borrow().clone();
        ids.extend(self.container_dirs());
        // Processes first: a stuck one may hold a container's lock that `rm -f` would wait on.
        for id in &ids {
            for (pid, _) in processes_of(id) {
                // SAFETY: SIGKILL to a process of this test's own container (found by its cgroup or
                // its monitor's command line); a pid already gone only returns ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for id in &ids {
            let mut cmd = self.b.command(&["rm", "-f", "-v", id]);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            run_quietly(cmd, Duration::from_secs(30));
        }
        std::thread::sleep(Duration::from_millis(50));
        for m in mounts_under(&self.dir()) {
            unmount(&m);
        }
        for id in &ids {
            for d in cgroup_dirs(id) {
                let _ = std::fs::remove_dir(&d);
            }
        }
    }
}

/// Spawns `cmd` and waits for it up to `limit`, killing it after; never panics (used in `Drop`).
fn run_quietly(mut cmd: Command, limit: Duration) {
    let Ok(mut child) = cmd.spawn() else { return };
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn unmount(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: a lazy unmount of a NUL-terminated path under the test's own directory.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
}

/// Mount points at or under `dir`, deepest first (from this process's mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

/// `/sys/fs/cgroup/<hierarchy>/berth-<id>` directories that exist (v1 controllers and the v2 mount).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let d = e.path().join(format!("berth-{id}"));
        if d.is_dir() {
            out.push(d);
        }
    }
    let v2 = Path::new("/sys/fs/cgroup").join(format!("berth-{id}"));
    if v2.is_dir() {
        out.push(v2);
    }
    out
}

/// Live (non-zombie) processes in the container's cgroup or naming it on their command line
/// (its monitor), with their `comm`.
pub fn processes_of(id: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let needle = format!("/berth-{id}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        if matches!(state, None | Some('Z') | Some('X')) {
            continue;
        }
        let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cgroup.contains(&needle) || cmdline.contains(id) {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_string()));
        }
    }
    out
}

/// Live processes whose `comm` is `berth-monitor` and whose command line names `id`.
/// Live processes whose name (`comm`) is `name`.
pub fn processes_named(name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == name && pid_alive(pid.into()) {
            out.push(pid);
        }
    }
    out
}

pub fn monitors_of(id: &str) -> Vec<i32> {
    processes_of(id)
        .into_iter()
        .filter(|(_, comm)| comm == "berth-monitor")
        .map(|(p, _)| p)
        .collect()
}

/// Polls `f` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn pid_alive(pid: i64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    pid > 0 && !matches!(state, None | Some('Z') | Some('X'))
}

/// The value of a `Key:\tvalue` line of a `/proc/PID/status` dump.
pub fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
        .trim()
}
