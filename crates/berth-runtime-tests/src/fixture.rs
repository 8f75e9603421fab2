//! One test's world: a temp dir holding the bundle, the runtime's `--root` and command
//! output, plus the leak guard. Its Drop always runs (also when the test panics): it
//! force-deletes the test's containers, then fails the test on anything left behind.

use crate::bundle::Bundle;
use crate::leaks;
use crate::runtime::{Outcome, Running, Runtime};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub struct Fixture {
    /// `/tmp/berth-test-XXXXXX`: everything of this test lives below it.
    pub base: PathBuf,
    pub rt: Runtime,
    pub bundle: Bundle,
    /// The main container id (already registered for cleanup).
    pub id: String,
    ids: Mutex<Vec<String>>,
}

/// A fresh container id: `<name>-<test pid>-<n>`, unique on the host.
fn unique_id(name: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("{name}-{}-{n}", std::process::id())
}

/// The cgroupsPath every test container gets: nested (so parent creation and removal are exercised)
/// under a parent of its own, named after the id, so the container that makes the parent also removes
/// it and the leak guard finds either level. (A parent shared by tests running at once leaked: each
/// saw the other's child in it and left it.)
pub fn cgroups_path_for(id: &str) -> String {
    format!("/berth-test-{id}/{id}")
}

fn make_base() -> PathBuf {
    let dir = nix::unistd::mkdtemp("/tmp/berth-test-XXXXXX").expect("mkdtemp");
    // Readable by mapped users (user namespace tests) but writable by root only.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

impl Fixture {
    /// A fixture with a busybox bundle that runs `args`.
    pub fn new(name: &str, args: &[&str]) -> Fixture {
        assert!(crate::is_root(), "runtime tests must run as root");
        let base = make_base();
        let id = unique_id(name);
        let bundle = Bundle::busybox_at(base.join("bundle"), args, &cgroups_path_for(&id), &id);
        let rt = Runtime::new(base.join("state"), base.join("out"));
        Fixture {
            rt,
            bundle,
            ids: Mutex::new(vec![id.clone()]),
            id,
            base,
        }
    }

    /// A fixture whose runtime runs as `user` (an ordinary user, no capabilities): bundle and
    /// state directory are theirs and the spec is converted as `runc spec --rootless` does.
    /// Declare it after the user, so it is dropped (its containers deleted) first.
    pub fn rootless(name: &str, args: &[&str], user: &crate::user::TestUser) -> Fixture {
        let mut fx = Fixture::new(name, args);
        crate::bundle::to_rootless(&mut fx.bundle.spec, user.uid, user.gid);
        fx.bundle.write();
        std::fs::create_dir_all(&fx.rt.root).unwrap();
        user.give(&fx.bundle.dir);
        user.give(&fx.rt.root);
        fx.rt.as_user = Some((user.uid, user.gid));
        fx
    }

    /// Registers another container id for cleanup and leak checks.
    pub fn new_id(&self, name: &str) -> String {
        let id = unique_id(name);
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// Registers an id chosen by the test (e.g. an invalid one) for the leak checks.
    pub fn track_id(&self, id: &str) {
        self.ids.lock().unwrap().push(id.to_string());
    }

    pub fn bundle_dir(&self) -> String {
        self.bundle.dir.display().to_string()
    }

    /// A scratch directory inside the fixture (removed with it).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.base.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// `run --bundle B ID` in the foreground (writes config.json first).
    #[track_caller]
    pub fn run(&self) -> Outcome {
        self.bundle.write();
        self.rt
            .exec(&["run", "--bundle", &self.bundle_dir(), &self.id])
    }

    /// `run -d`, asserting success and that the container is running.
    #[track_caller]
    pub fn run_detached(&self) -> Outcome {
        self.bundle.write();
        let out = self
            .rt
            .exec(&["run", "-d", "--bundle", &self.bundle_dir(), &self.id])
            .ok();
        self.rt.wait_status(&self.id, "running");
        out
    }

    /// `run` in the background (for signal tests).
    pub fn spawn_run(&self) -> Running {
        self.bundle.write();
        self.rt
            .spawn(&["run", "--bundle", &self.bundle_dir(), &self.id])
    }

    #[track_caller]
    pub fn create(&self) -> Outcome {
        self.bundle.write();
        self.rt
            .exec(&["create", "--bundle", &self.bundle_dir(), &self.id])
    }

    #[track_caller]
    pub fn start(&self) -> Outcome {
        self.rt.exec(&["start", &self.id])
    }

    /// `exec [flags…] ID cmd…`.
    #[track_caller]
    pub fn exec_in(&self, flags: &[&str], cmd: &[&str]) -> Outcome {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.push(&self.id);
        args.extend_from_slice(cmd);
        self.rt.exec(&args)
    }

    /// Runs the cleanup and returns what leaked, in words.
    fn clean_and_collect_leaks(&self) -> Vec<String> {
        let ids = self.ids.lock().unwrap().clone();
        let mut leaks = Vec::new();
        for id in &ids {
            force_delete(&self.rt, id);
        }
        for id in &ids {
            let state = self.rt.root.join(id);
            if state.exists() && !id.contains('/') {
                leaks.push(format!("state left in {}", state.display()));
                leaks::unmount_under(&state);
                let _ = std::fs::remove_dir_all(&state);
            }
        }
        let bundle: &Path = &self.bundle.dir;
        let procs = leaks::processes_matching(&self.id, &[bundle, &self.rt.root]);
        let mut procs = procs;
        for id in ids.iter().filter(|i| **i != self.id) {
            procs.extend(leaks::processes_matching(id, &[]));
        }
        if !procs.is_empty() {
            leaks.push(format!("processes left: {procs:?}"));
            leaks::kill_all(&procs);
        }
        for id in &ids {
            for cg in leaks::cgroups_named(id) {
                leaks.push(format!("cgroup left: {}", cg.display()));
                leaks::remove_cgroup(&cg);
            }
        }
        let mounts = leaks::mounts_under(&self.base);
        if !mounts.is_empty() {
            leaks.push(format!("mounts left: {mounts:?}"));
            leaks::unmount_under(&self.base);
        }
        leaks
    }
}

/// `delete -f ID` with a deadline; never panics.
fn force_delete(rt: &Runtime, id: &str) {
    let Ok(mut child) = rt
        .command(&["delete", "-f", id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("leak guard: `delete -f {id}` hung");
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let leaks = self.clean_and_collect_leaks();
        if leaks::mounts_under(&self.base).is_empty() {
            let _ = std::fs::remove_dir_all(&self.base);
        } else {
            eprintln!(
                "leak guard: not removing {} (still mounted)",
                self.base.display()
            );
        }
        if leaks.is_empty() {
            return;
        }
        let report = format!("container {} leaked:\n  {}", self.id, leaks.join("\n  "));
        if std::thread::panicking() {
            eprintln!("leak guard (test already failing): {report}");
        } else {
            panic!("{report}");
        }
    }
}
