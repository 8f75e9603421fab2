//! The harness of berth's CLI tests: a `Berth` with its own temporary `--root`, `--runroot` and
//! Docker config, every child process run with a deadline and reaped, and the store inspected from
//! outside (layer directories, `tmp/`, `ingest/`). The registry, image builder and fault proxy live
//! in the submodules. Nothing here ever touches `/var/lib/berth` or the host's Docker config.
#![allow(dead_code)]

pub mod image;
pub mod proxy;
pub mod registry;

use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// How long any one child process may run before the test kills it and fails.
const DEADLINE: Duration = Duration::from_secs(180);

/// What a finished child printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams unless the child exited 0.
    pub fn success(self, what: &str) -> Output {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Kills and reaps a child when dropped, so a panicking test leaves no process behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `cmd` to completion (stdin from `input`, or /dev/null), killing it after the deadline.
pub fn run(mut cmd: Command, input: Option<&[u8]>) -> Output {
    let shown = format!("{cmd:?}");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = Reaped(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("spawning {shown}: {e}")),
    );
    let out = drain(child.0.stdout.take().expect("piped"));
    let err = drain(child.0.stderr.take().expect("piped"));
    if let Some(data) = input {
        let mut stdin = child.0.stdin.take().expect("piped");
        // A child that exits without reading all of stdin is not this function's failure.
        let _ = stdin.write_all(data);
    }
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("waiting for the child") {
            break s;
        }
        if start.elapsed() > DEADLINE {
            drop(child);
            panic!("{shown} ran longer than {DEADLINE:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The image spec's chain IDs of a stack of diff_ids (bottom first), computed independently of berth.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => sha256(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// One berth store in a temporary directory, and the CLI pointed at it.
pub struct Berth {
    dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
    /// `DOCKER_CONFIG` of every command: credentials never reach the host's config.
    pub docker_config: PathBuf,
    /// `BERTH_NETWORK_PREFIX` of every command: this store's nftables table, bridges (`P0`,
    /// `P-<id>`) and veths (`P<hex>`), apart from every other test's and the host's.
    pub net_prefix: String,
}

/// A network prefix no other live store in this run has: `t` and 5 hex digits of the pid and a
/// counter.
fn net_prefix() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "t{:05x}",
        (std::process::id().wrapping_mul(256) + n) & 0xfffff
    )
}

/// What a store's networks left on the host: links named with its prefix (`P0` and `P-…`
/// bridges, `P<hex>` veths), its nftables table, and resolver processes of its runroot.
pub fn network_leftovers(prefix: &str, runroot: &Path) -> Vec<String> {
    let mut out: Vec<String> = links_with_prefix(prefix)
        .into_iter()
        .map(|l| format!("link {l}"))
        .collect();
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if tables
        .lines()
        .any(|l| l.trim() == format!("table inet {prefix}"))
    {
        out.push(format!("nft table inet {prefix}"));
    }
    out.extend(
        resolvers_of(runroot)
            .into_iter()
            .map(|p| format!("resolver process {p}")),
    );
    out
}

/// Interfaces on the host whose names start with `prefix`.
pub fn links_with_prefix(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Pids of `berth __dns` processes serving a network of this runroot.
pub fn resolvers_of(runroot: &Path) -> Vec<i32> {
    let needle = runroot.display().to_string();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("__dns") && cmd.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

impl Drop for Berth {
    /// Removes what the store's networks made on the host, whatever the test left.
    fn drop(&mut self) {
        for pid in resolvers_of(&self.runroot) {
            // SAFETY: SIGKILL to a resolver of this test's own runroot (found by its command line).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for l in links_with_prefix(&self.net_prefix) {
            let _ = Command::new("ip").args(["link", "del", &l]).output();
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.net_prefix])
            .output();
    }
}

impl Berth {
    pub fn new() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("berth-cli-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("root");
        let runroot = dir.path().join("run");
        let docker_config = dir.path().join("docker");
        Berth {
            dir,
            root,
            runroot,
            docker_config,
            net_prefix: net_prefix(),
        }
    }

    /// A path inside this test's temporary directory (removed with it).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("HOME", self.dir.path())
            .env("BERTH_PULL_IDLE_TIMEOUT", "15")
            .env("BERTH_NETWORK_PREFIX", &self.net_prefix)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUNROOT")
            .env_remove("BERTH_INSECURE_REGISTRIES");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(self.command(args), None)
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        run(self.command(args), Some(input))
    }

    /// Runs berth, asserts it succeeded, returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args)
            .success(&format!("berth {}", args.join(" ")))
            .stdout
    }

    /// Runs berth, asserts it failed with exactly one line on stderr, returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        expect_failure(out, &format!("berth {}", args.join(" ")))
    }

    /// The chain-ID directories under `<root>/layers` (`tmp` aside).
    pub fn layer_dirs(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.root.join("layers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "tmp")
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts a failed command left nothing: the layer directories are `before`, `layers/tmp` and
    /// `ingest` are empty.
    pub fn assert_nothing_left(&self, before: &BTreeSet<String>) {
        assert_eq!(&self.layer_dirs(), before, "layer directories changed");
        for d in ["layers/tmp", "ingest"] {
            let left: Vec<_> = std::fs::read_dir(self.root.join(d))
                .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{d} is not empty: {left:?}");
        }
    }

    /// `berth image inspect NAME` as one JSON object.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("image inspect {name}: {e}:\n{out}"));
        let arr = v.as_array().expect("inspect prints an array");
        assert_eq!(arr.len(), 1, "{out}");
        arr[0].clone()
    }

    /// The unpacked layer directories of an image, bottom first, found by the chain IDs of the
    /// diff_ids `image inspect` reports.
    pub fn diff_dirs(&self, name: &str) -> Vec<PathBuf> {
        let v = self.inspect(name);
        let diff_ids: Vec<String> = v["RootFS"]["Layers"]
            .as_array()
            .expect("RootFS.Layers")
            .iter()
            .map(|d| d.as_str().expect("a digest").to_string())
            .collect();
        chain_ids(&diff_ids)
            .iter()
            .map(|c| self.root.join("layers").join(hex_of(c)).join("diff"))
            .collect()
    }
}

/// Asserts a command failed and wrote exactly one non-empty line to stderr; returns it.
pub fn expect_failure(out: Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} succeeded but should have failed:\nstdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: stderr should be one line:\n{}",
        out.stderr
    );
    assert!(!lines[0].trim().is_empty(), "{what}: empty error line");
    eprintln!("{what}: {}", lines[0]);
    lines[0].to_string()
}

/// The root filesystem of a busybox image, as a plain tar: Debian's static `/bin/busybox` and
/// symlinks for a few applets.
pub fn busybox_rootfs() -> Vec<u8> {
    let busybox =
        std::fs::read("/bin/busybox").expect("busybox-static is installed (/bin/busybox)");
    let mut t = image::LayerTar::new()
        .dir("bin", 0o755)
        .file("bin/busybox", &busybox, 0o755);
    for applet in ["sh", "ls", "cat", "echo", "true"] {
        t = t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.dir("etc", 0o755)
        .file("etc/hostname", b"berth\n", 0o644)
        .dir("tmp", 0o1777)
        .finish()
}

/// Reads an extended attribute of `path` (not following a final symlink).
pub fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL");
    let n = std::ffi::CString::new(name).expect("no NUL");
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for `buf.len()` bytes.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return None;
    }
    buf.truncate(len as usize);
    Some(buf)
}

/// The names in a directory, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
