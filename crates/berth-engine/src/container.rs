//! The container lifecycle: create (a record and a snapshot), launch (mount the snapshot, write the
//! generated files and the OCI spec, create and start through the runtime library), finish (record
//! the exit, tear down the runtime container and the mount), stop, kill and remove — and reconcile,
//! which turns whatever a crash or a reboot left into the truth.

use crate::ocispec::{self, SpecInput};
use crate::options::{parse_bytes, RunOptions};
use crate::record::{MountRecord, Record, RecordError, Records, State};
use berth_image::images::ImageRecord;
use berth_image::manifest::ImageConfig;
use berth_image::snapshot::{self, Snapshots};
use berth_image::store::Store;
use berth_runtime::create::{self, CreateOptions};
use berth_runtime::state::ContainerState;
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Why a container could not run, as Docker's exit codes tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// berth itself failed (125).
    Engine,
    /// The command exists but cannot be invoked (126).
    CannotInvoke,
    /// The command was not found (127).
    NotFound,
}

#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct EngineError {
    pub kind: Failure,
    pub msg: String,
}

impl EngineError {
    pub fn msg(m: impl Into<String>) -> EngineError {
        EngineError {
            kind: Failure::Engine,
            msg: m.into(),
        }
    }
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Failure::Engine => 125,
            Failure::CannotInvoke => 126,
            Failure::NotFound => 127,
        }
    }
}

impl From<RecordError> for EngineError {
    fn from(e: RecordError) -> Self {
        EngineError::msg(e.to_string())
    }
}

impl From<berth_runtime::Error> for EngineError {
    fn from(e: berth_runtime::Error) -> Self {
        use berth_runtime::error::ErrorKind;
        let kind = match e.kind() {
            ErrorKind::CommandNotFound => Failure::NotFound,
            ErrorKind::CannotInvoke => Failure::CannotInvoke,
            ErrorKind::Other => Failure::Engine,
        };
        EngineError {
            kind,
            msg: e.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

pub(crate) fn err(m: impl std::fmt::Display) -> EngineError {
    EngineError::msg(m.to_string())
}

pub struct Engine {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub store: Store,
    pub snapshots: Snapshots,
    pub records: Records,
    pub runtime_root: PathBuf,
}

/// Who watches a container being launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watcher {
    /// The user's own `berth run` in the foreground: with `--rm` the container belongs to it and
    /// is killed if it dies (what Docker users expect of `run --rm`: no orphan outlives it).
    Foreground,
    /// A detached container's monitor: the container outlives it (its keeper takes over).
    Monitor,
}

/// A started container: its init's pid, the runtime's state, and the pty master for `-t`.
pub struct Launched {
    pub pid: i32,
    pub state: ContainerState,
    pub master: Option<OwnedFd>,
}

fn now() -> String {
    berth_sys::time::now_rfc3339_nanos()
}

/// Is someone still watching this container: its monitor, or the keeper that takes over when
/// the monitor is killed?
fn watcher_alive(st: &State) -> bool {
    // A zombie (killed, not yet reaped) or a reused pid (after a reboot) is not watching.
    berth_sys::process::alive(st.monitor_pid, st.monitor_start)
        || berth_sys::process::alive(st.keeper_pid, st.keeper_start)
}

impl Engine {
    pub fn open(root: &Path, runroot: &Path) -> Result<Engine> {
        let store = Store::open(root).map_err(err)?;
        let snapshots = Snapshots::open(root, store.layers.clone()).map_err(err)?;
        let records = Records::open(root).map_err(err)?;
        let runtime_root = runroot.join("runtime");
        fs::create_dir_all(&runtime_root)
            .map_err(|e| err(format!("{}: {e}", runtime_root.display())))?;
        fs::create_dir_all(root.join("volumes"))
            .map_err(|e| err(format!("{}: {e}", root.display())))?;
        Ok(Engine {
            root: root.into(),
            runroot: runroot.into(),
            store,
            snapshots,
            records,
            runtime_root,
        })
    }

    /// The options a container was created with (for `start`, `restart` and the monitor).
    pub fn options(&self, rec: &Record) -> Result<RunOptions> {
        let p = self.records.dir(&rec.id).join("options.json");
        let data = fs::read(&p).map_err(|e| err(format!("{}: {e}", p.display())))?;
        let mut o: RunOptions =
            serde_json::from_slice(&data).map_err(|e| err(format!("{}: {e}", p.display())))?;
        o.auto_remove = rec.auto_remove;
        Ok(o)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.records.dir(id).join(format!("{id}-json.log"))
    }

    fn rootfs(&self, id: &str) -> PathBuf {
        self.records.dir(id).join("rootfs")
    }

    /// Makes a container record and its snapshot from an image and the user's options.
    pub fn create(&self, o: &RunOptions, image: &ImageRecord) -> Result<Record> {
        let cfg_bytes = self
            .store
            .content
            .read(&image.id, berth_image::pull::MAX_CONFIG_BYTES)
            .map_err(err)?;
        let cfg = ImageConfig::parse(&cfg_bytes)
            .map_err(|e| err(format!("image {}: config: {e}", o.image)))?;
        let rc = cfg.config.clone().unwrap_or_default();
        let (path, args) = command(o, &rc)?;
        let env = merge_env(rc.env.as_deref().unwrap_or(&[]), &o.env, o.tty);
        // Checked here; the watcher applies it.
        crate::options::parse_restart(&o.restart).map_err(err)?;
        let mut labels: BTreeMap<String, String> = rc.labels.clone().unwrap_or_default();
        labels.extend(o.labels.clone());
        let (log_max_size, log_max_file) = log_opts(&o.log_opts)?;
        let id = crate::names::new_id();
        let _names = self.records.names_lock().map_err(err)?;
        let reserve = |n: &str| {
            self.records
                .reserve_name(n, &id)
                .map_err(|e| err(format!("name {n}: {e}")))
        };
        let name = match &o.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !crate::record::valid_name(n) {
                    return Err(RecordError::BadName(n.into()).into());
                }
                if !reserve(n)? {
                    return Err(RecordError::NameInUse(n.into()).into());
                }
                n.to_string()
            }
            None => {
                let mut n = crate::names::random_name();
                while !reserve(&n)? {
                    n = format!(
                        "{}{}",
                        crate::names::random_name(),
                        crate::names::random_bytes::<1>()[0] % 10
                    );
                }
                n
            }
        };
        let dir = self.records.dir(&id);
        // Made under a hidden name with its record inside, then renamed: every container
        // directory anyone sees has a record (a create killed earlier leaves only `.new-*`).
        let staging = self
            .records
            .make_staging(&id)
            .map_err(|e| err(format!("{}: {e}", self.records.staging_dir(&id).display())))?;
        let mut rec = Record {
            id: id.clone(),
            name,
            created: now(),
            image: o.image.clone(),
            image_id: image.id.to_string(),
            layers: image.layers.iter().map(|d| d.to_string()).collect(),
            path,
            args,
            env,
            working_dir: o
                .workdir
                .clone()
                .or(rc.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: o.user.clone().or(rc.user.clone()).unwrap_or_default(),
            hostname: o.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
            labels,
            tty: o.tty,
            open_stdin: o.interactive,
            stop_signal: o
                .stop_signal
                .clone()
                .or(rc.stop_signal.clone())
                .unwrap_or_else(|| "SIGTERM".into()),
            stop_timeout: o.stop_timeout,
            auto_remove: o.auto_remove,
            restart_policy: if o.restart.is_empty() {
                "no".into()
            } else {
                o.restart.clone()
            },
            host_config: host_config(o),
            mounts: Vec::new(),
            state: State {
                status: "created".into(),
                ..State::default()
            },
            log_max_size,
            log_max_file,
            manually_stopped: false,
            holds: Vec::new(),
        };
        // The record first: whatever fails after this, `rm` finds something to clean.
        let staged = (|| {
            crate::record::write_meta(&staging, &rec)?;
            crate::record::write_atomic(
                &staging.join("options.json"),
                &serde_json::to_vec(o).expect("options serialize"),
            )?;
            fs::remove_file(staging.join("owner"))?;
            fs::rename(&staging, &dir)
        })();
        if let Err(e) = staged {
            let _ = fs::remove_dir_all(&staging);
            self.records.release_name(&rec.name, &id);
            return Err(err(format!("{}: {e}", dir.display())));
        }
        let made = (|| -> Result<()> {
            rec.mounts = crate::container::volumes(self, o, rc.volumes.as_ref())?;
            self.snapshots.prepare(&id, &image.layers).map_err(err)?;
            self.records.save(&rec)?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = self.remove_files(&rec, true);
            return Err(e);
        }
        Ok(rec)
    }

    /// Mounts the snapshot, writes the generated files and the spec, creates and starts the
    /// container through the runtime library. Signals must already be blocked by a foreground caller.
    pub fn launch(&self, rec: &mut Record, o: &RunOptions, watcher: Watcher) -> Result<Launched> {
        // Under the container's lock: a `cp` into a stopped container mounts the same snapshot.
        // Released before the clone: the init is a fork of this process and would hold it.
        let rootfs = self.rootfs(&rec.id);
        {
            let _lock = self.records.lock(&rec.id)?;
            let mount = self.snapshots.mounts(&rec.id).map_err(err)?;
            if !is_mountpoint(&rootfs) {
                snapshot::mount(&mount, &rootfs).map_err(err)?;
            }
        }
        berth_runtime::trace("engine: snapshot mounted");
        let launched = self.launch_mounted(rec, o, watcher);
        if launched.is_err() {
            unmount(&rootfs);
        }
        launched
    }

    fn launch_mounted(
        &self,
        rec: &mut Record,
        o: &RunOptions,
        watcher: Watcher,
    ) -> Result<Launched> {
        let dir = self.records.dir(&rec.id);
        let rootfs = self.rootfs(&rec.id);
        write_etc_files(&dir, rec)?;
        let user = crate::user::resolve(&rootfs, &rec.user).map_err(err)?;
        make_workdir(&rootfs, &rec.working_dir)?;
        let mut env = rec.env.clone();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!(
                "HOME={}",
                if user.home.is_empty() {
                    "/"
                } else {
                    &user.home
                }
            ));
        }
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let tmpfs: Vec<(String, String)> = o
            .tmpfs
            .iter()
            .map(|t| match t.split_once(':') {
                Some((d, opts)) => (d.to_string(), opts.to_string()),
                None => (t.clone(), String::new()),
            })
            .chain(mount_tmpfs(&o.mounts)?)
            .collect();
        let spec = ocispec::spec(&SpecInput {
            opts: o,
            args,
            env,
            cwd: rec.working_dir.clone(),
            user,
            hostname: rec.hostname.clone(),
            container_dir: &dir,
            cgroup_path: cgroup_path(&rec.id),
            mounts: &rec.mounts,
            tmpfs,
        })?;
        crate::record::write_atomic(
            &dir.join("config.json"),
            &serde_json::to_vec(&spec).expect("spec serializes"),
        )
        .map_err(|e| err(format!("{}: {e}", dir.display())))?;
        berth_runtime::trace("engine: spec written");
        let h = berth_cgroups::Hierarchy::detect().map_err(|e| err(e.to_string()))?;
        let mut created = create::create(
            CreateOptions {
                root: self.runtime_root.clone(),
                id: rec.id.clone(),
                bundle: dir.clone(),
                pid_file: None,
                console_socket: None,
                no_pivot: false,
                no_new_keyring: false,
                preserve_fds: 0,
                // A terminal is proxied by whoever watches: the pty master comes back here.
                proxy_terminal: rec.tty,
                parent_death_signal: (watcher == Watcher::Foreground && rec.auto_remove)
                    .then_some(libc::SIGKILL),
            },
            &h,
        )?;
        let pid = created.state.pid;
        rec.state = State {
            status: "running".into(),
            pid,
            started_at: now(),
            monitor_pid: std::process::id() as i32,
            monitor_start: berth_sys::process::start_time(std::process::id() as i32),
            keeper_pid: rec.state.keeper_pid,
            keeper_start: rec.state.keeper_start,
            restart_count: rec.state.restart_count,
            ..State::default()
        };
        self.records.save(rec)?;
        let master = created.master.take();
        let state = match berth_runtime::ops::start_created(&self.runtime_root, created) {
            Ok(st) => st,
            Err(e) => {
                let _ = berth_runtime::ops::delete(&self.runtime_root, &rec.id, true);
                return Err(e.into());
            }
        };
        Ok(Launched { pid, state, master })
    }

    /// Records the end of a watched container whose status is `code`, or was lost (None: its
    /// parent was killed and no keeper caught it). A lost status is 128 + the signal when berth
    /// itself sent a certainly fatal one (SIGKILL), else 255 with `State.Error` saying why.
    /// Returns the code recorded.
    pub fn finish_watched(
        &self,
        rec: &mut Record,
        st: Option<&ContainerState>,
        code: Option<i32>,
    ) -> i32 {
        let code = match code {
            Some(c) => c,
            None => self.lost_status(rec),
        };
        self.finish(rec, st, code);
        code
    }

    /// The exit code of a container whose status nobody could reap.
    fn lost_status(&self, rec: &mut Record) -> i32 {
        if rec.state.killed_by == libc::SIGKILL {
            return 128 + libc::SIGKILL;
        }
        if rec.state.error.is_empty() {
            rec.state.error =
                "exit status unknown: the container ended while no monitor watched it".into();
        }
        255
    }

    /// Records the exit of a launched container and tears down its runtime container and mount.
    /// Without the runtime's state (a reboot emptied the runroot) there is nothing of the
    /// runtime to tear down; the mount and the record are still put right.
    pub fn finish(&self, rec: &mut Record, st: Option<&ContainerState>, code: i32) {
        let oom = st
            .and_then(|s| s.cgroup.as_ref())
            .and_then(|c| c.oom_kill_count().ok())
            .unwrap_or(0)
            > 0;
        if let Some(st) = st {
            let _ = berth_runtime::ops::destroy(&self.runtime_root, st);
            berth_runtime::trace("engine: runtime container destroyed");
        }
        unmount(&self.rootfs(&rec.id));
        berth_runtime::trace("engine: unmounted");
        rec.state.status = "exited".into();
        rec.state.exit_code = code;
        rec.state.oom_killed = oom;
        rec.state.pid = 0;
        rec.state.finished_at = now();
        let _ = self.records.save(rec);
    }

    /// Removes everything of a container: runtime state, mount, snapshot, anonymous volumes (with
    /// `volumes`), its directory. Idempotent.
    pub fn remove_files(&self, rec: &Record, volumes: bool) -> Result<()> {
        let _ = berth_runtime::ops::delete(&self.runtime_root, &rec.id, true);
        self.remove_half_made(&rec.id);
        unmount(&self.rootfs(&rec.id));
        self.snapshots.remove(&rec.id).map_err(err)?;
        if volumes {
            for m in rec.mounts.iter().filter(|m| m.anonymous) {
                if let Some(n) = &m.name {
                    let _ = fs::remove_dir_all(self.root.join("volumes").join(n));
                }
            }
        }
        let _ = fs::remove_file(crate::attach::socket_path(&self.runroot, &rec.id));
        let dir = self.records.dir(&rec.id);
        self.records.release_name(&rec.name, &rec.id);
        let doomed = self.root.join("containers").join(format!(".rm-{}", rec.id));
        if fs::rename(&dir, &doomed).is_ok() {
            fs::remove_dir_all(&doomed).map_err(|e| err(format!("{}: {e}", doomed.display())))?;
        }
        Ok(())
    }

    /// What a create killed midway leaves where the runtime cannot see it (no state file yet):
    /// the container's cgroup (and any process in it) and the runtime's state directory.
    fn remove_half_made(&self, id: &str) {
        if let Ok(h) = berth_cgroups::Hierarchy::detect() {
            if let Ok(cg) = berth_cgroups::Cgroup::new(&h, &cgroup_path(id)) {
                let _ = cg.kill_all(libc::SIGKILL);
                for _ in 0..100 {
                    if cg.procs().map(|p| p.is_empty()).unwrap_or(true) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                // A handle from `new` made nothing: every directory is removed if it is empty.
                let _ = cg.remove_preexisting_if_unused();
            }
        }
        let _ = fs::remove_dir_all(self.runtime_root.join(id));
    }

    /// Is the container's init alive (according to the runtime)?
    pub fn init_alive(&self, rec: &Record) -> bool {
        match ContainerState::load(&self.runtime_root, &rec.id) {
            Ok(st) => st.init_alive(),
            Err(_) => false,
        }
    }

    /// Makes the record tell the truth after crashes and reboots: a container whose watcher is gone
    /// and whose init is dead is exited, and its runtime container and mount are torn down.
    pub fn reconcile(&self, rec: &mut Record) {
        if rec.holds.iter().any(|h| !h.owner().alive()) {
            if let Ok(_lock) = self.records.lock(&rec.id) {
                if let Ok(mut fresh) = self.records.load(&rec.id) {
                    self.release_dead_holds(&mut fresh);
                    *rec = fresh;
                }
            }
        }
        if !rec.is_active() {
            return;
        }
        let watching = watcher_alive(&rec.state);
        if watching {
            return;
        }
        let Ok(_lock) = self.records.lock(&rec.id) else {
            return;
        };
        let Ok(fresh) = self.records.load(&rec.id) else {
            return;
        };
        *rec = fresh;
        if !matches!(
            rec.state.status.as_str(),
            "running" | "paused" | "restarting"
        ) || watcher_alive(&rec.state)
        {
            return;
        }
        if self.init_alive(rec) {
            return; // orphaned but running: `stop`/`rm -f` still reach it through the runtime
        }
        let st = ContainerState::load(&self.runtime_root, &rec.id).ok();
        self.finish_watched(rec, st.as_ref(), None);
        let _ = fs::remove_file(crate::attach::socket_path(&self.runroot, &rec.id));
        if rec.auto_remove {
            // Its watcher died before it could: `--rm` still holds.
            let _ = self.remove_files(rec, true);
        }
    }

    /// Removes what crashes left without a record: directories of creates killed before their
    /// first `meta.json` (older than a minute, so a create in progress is never touched) and
    /// removals killed midway (`.rm-*`).
    fn clean_orphans(&self) {
        let minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for id in self.records.orphans() {
            let dir = self.records.dir(&id);
            let old = fs::metadata(&dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < minute_ago);
            if old && id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.remove_half_made(&id);
                unmount(&self.rootfs(&id));
                let _ = self.snapshots.remove(&id);
                let _ = fs::remove_dir_all(&dir);
            }
        }
        if let Ok(rd) = fs::read_dir(self.root.join("containers")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let stale = name.starts_with(".rm-")
                    || name
                        .strip_prefix(".new-")
                        .is_some_and(|id| !self.records.staging_alive(id));
                if stale {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// Every container, reconciled.
    pub fn list(&self) -> Vec<Record> {
        self.clean_orphans();
        // Staging whose owners died (killed pulls, commits, loads) goes with the next listing.
        self.store.reclaim_staging();
        let mut all = self.records.list();
        for r in all.iter_mut() {
            self.reconcile(r);
        }
        // Reconciling applies a `--rm` its dead watcher could not.
        all.retain(|r| self.records.dir(&r.id).join("meta.json").exists());
        all
    }

    pub fn get(&self, what: &str) -> Result<Record> {
        let id = self.records.resolve(what)?;
        let mut r = self.records.load(&id)?;
        self.reconcile(&mut r);
        if !self.records.dir(&id).join("meta.json").exists() {
            return Err(RecordError::NoSuch(what.to_string()).into());
        }
        Ok(r)
    }

    /// Sends a signal to the container's init.
    pub fn kill(&self, rec: &Record, sig: i32) -> Result<()> {
        if rec.state.status != "running" && rec.state.status != "paused" {
            return Err(err(format!(
                "cannot kill container {}: container is not running",
                &rec.id[..12]
            )));
        }
        if sig == libc::SIGKILL {
            self.note_kill(&rec.id, sig)?;
        }
        berth_runtime::ops::kill(&self.runtime_root, &rec.id, sig, false)?;
        Ok(())
    }

    /// Records, before sending it, a signal that will certainly end the container: if nobody is
    /// left to reap it, its status is still known.
    fn note_kill(&self, id: &str, sig: i32) -> Result<()> {
        let _l = self.records.lock(id)?;
        let mut fresh = self.records.load(id)?;
        fresh.state.killed_by = sig;
        self.records.save(&fresh)?;
        Ok(())
    }

    /// Waits until the container is no longer running (its watcher records the exit), up to
    /// `timeout`; true when it stopped.
    pub fn wait_stopped(&self, id: &str, timeout: Option<std::time::Duration>) -> bool {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            match self.get(id) {
                Ok(r) if matches!(r.state.status.as_str(), "running" | "paused" | "restarting") => {
                }
                _ => return true,
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A `start` or `restart` by the user undoes an earlier `stop` for the restart policy. Saved
    /// (the monitor that starts the container reads the record from disk).
    pub fn user_started(&self, rec: &mut Record) -> Result<()> {
        let _l = self.records.lock(&rec.id)?;
        let mut fresh = self.records.load(&rec.id)?;
        fresh.manually_stopped = false;
        self.records.save(&fresh)?;
        *rec = fresh;
        Ok(())
    }

    /// `pause`/`unpause`: freezes or thaws the container's cgroup and records it, under its lock.
    pub fn set_paused(&self, rec: &Record, paused: bool) -> Result<()> {
        let _l = self.records.lock(&rec.id)?;
        if paused {
            berth_runtime::ops::pause(&self.runtime_root, &rec.id)?;
        } else {
            berth_runtime::ops::resume(&self.runtime_root, &rec.id)?;
        }
        let mut fresh = self.records.load(&rec.id)?;
        fresh.state.status = if paused { "paused" } else { "running" }.into();
        self.records.save(&fresh)?;
        Ok(())
    }

    /// Docker's stop: the stop signal, then SIGKILL after the timeout.
    pub fn stop(&self, rec: &mut Record, timeout: Option<u64>) -> Result<()> {
        if !matches!(
            rec.state.status.as_str(),
            "running" | "paused" | "restarting"
        ) {
            return Ok(());
        }
        {
            let _l = self.records.lock(&rec.id)?;
            let mut fresh = self.records.load(&rec.id)?;
            fresh.manually_stopped = true;
            self.records.save(&fresh)?;
        }
        let sig = signal_number(&rec.stop_signal).unwrap_or(libc::SIGTERM);
        let t = timeout.or(rec.stop_timeout).unwrap_or(10);
        if rec.state.status == "paused" {
            let _ = berth_runtime::ops::resume(&self.runtime_root, &rec.id);
        }
        let _ = berth_runtime::ops::kill(&self.runtime_root, &rec.id, sig, false);
        if !self.wait_stopped(&rec.id, Some(std::time::Duration::from_secs(t))) {
            self.note_kill(&rec.id, libc::SIGKILL)?;
            let _ = berth_runtime::ops::kill(&self.runtime_root, &rec.id, libc::SIGKILL, true);
            self.wait_stopped(&rec.id, Some(std::time::Duration::from_secs(10)));
        }
        *rec = self.get(&rec.id)?;
        Ok(())
    }

    /// `rm`: refuses a running container unless `force` (then kills it first).
    pub fn remove(&self, what: &str, force: bool, volumes: bool) -> Result<String> {
        let mut rec = self.get(what)?;
        if matches!(
            rec.state.status.as_str(),
            "running" | "paused" | "restarting"
        ) {
            if !force {
                return Err(err(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            {
                let _l = self.records.lock(&rec.id)?;
                if let Ok(mut fresh) = self.records.load(&rec.id) {
                    fresh.manually_stopped = true;
                    fresh.auto_remove = false;
                    fresh.state.killed_by = libc::SIGKILL;
                    self.records.save(&fresh)?;
                }
            }
            let _ = berth_runtime::ops::kill(&self.runtime_root, &rec.id, libc::SIGKILL, true);
            self.wait_stopped(&rec.id, Some(std::time::Duration::from_secs(10)));
            wait_watcher_gone(&rec.state);
            rec = match self.get(&rec.id) {
                Ok(r) => r,
                Err(_) => return Ok(rec.id), // its watcher's --rm got there first
            };
        }
        let _l = self.records.lock(&rec.id)?;
        self.remove_files(&rec, volumes)?;
        Ok(rec.id)
    }

    /// The mounts and layers of a container, for `explain` and `inspect`.
    pub fn snapshot_mount(&self, id: &str) -> Option<berth_image::snapshot::Mount> {
        self.snapshots.mounts(id).ok()
    }

    pub fn upper_dir(&self, id: &str) -> PathBuf {
        self.snapshots.upper_dir(id)
    }
}

/// Entrypoint and Cmd, combined as Docker does.
fn command(o: &RunOptions, rc: &berth_image::manifest::RunConfig) -> Result<(String, Vec<String>)> {
    let mut full: Vec<String> = match &o.entrypoint {
        Some(e) if e.is_empty() => o.cmd.clone(),
        Some(e) => std::iter::once(e.clone())
            .chain(o.cmd.iter().cloned())
            .collect(),
        None => {
            let mut v = rc.entrypoint.clone().unwrap_or_default();
            if o.cmd.is_empty() {
                v.extend(rc.cmd.clone().unwrap_or_default());
            } else {
                v.extend(o.cmd.iter().cloned());
            }
            v
        }
    };
    if full.is_empty() {
        return Err(err("no command specified"));
    }
    let path = full.remove(0);
    Ok((path, full))
}

/// Environment entries by name, the last setting of a name winning in its first position.
/// Linear: each name is looked up in a hash index, never searched for.
#[derive(Default)]
pub struct EnvList {
    entries: Vec<Option<String>>,
    index: std::collections::HashMap<String, usize>,
}

impl EnvList {
    /// `NAME=value` (or a bare `NAME`) replaces an earlier setting of NAME, in place.
    pub fn set(&mut self, kv: &str) {
        let key = kv.split('=').next().unwrap_or(kv);
        match self.index.get(key) {
            Some(&i) => self.entries[i] = Some(kv.to_string()),
            None => {
                self.index.insert(key.to_string(), self.entries.len());
                self.entries.push(Some(kv.to_string()));
            }
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    pub fn into_vec(self) -> Vec<String> {
        self.entries.into_iter().flatten().collect()
    }
}

fn merge_env(image: &[String], user: &[String], tty: bool) -> Vec<String> {
    let mut env = EnvList::default();
    if !image.iter().any(|e| e.starts_with("PATH=")) {
        env.set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    for e in image {
        env.set(e);
    }
    if tty {
        env.set("TERM=xterm");
    }
    for e in user {
        if e.contains('=') {
            env.set(e);
        } else if let Ok(v) = std::env::var(e) {
            // `-e NAME` passes the caller's value through, as Docker does.
            env.set(&format!("{e}={v}"));
        }
    }
    env.into_vec()
}

fn log_opts(opts: &[String]) -> Result<(Option<u64>, Option<u32>)> {
    let mut size = None;
    let mut files = None;
    for o in opts {
        match o.split_once('=') {
            Some(("max-size", v)) => size = Some(parse_bytes(v).map_err(err)? as u64),
            Some(("max-file", v)) => {
                files = Some(
                    v.parse()
                        .map_err(|_| err(format!("invalid --log-opt {o:?}")))?,
                )
            }
            _ => {
                return Err(err(format!(
                    "unknown log opt {o:?} for json-file (max-size, max-file)"
                )))
            }
        }
    }
    Ok((size, files))
}

fn host_config(o: &RunOptions) -> serde_json::Value {
    serde_json::json!({
        "Memory": o.memory.unwrap_or(0), "MemorySwap": o.memory_swap.unwrap_or(0),
        "NanoCpus": o.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0), "CpuShares": o.cpu_shares.unwrap_or(0),
        "CpusetCpus": o.cpuset_cpus.clone().unwrap_or_default(), "PidsLimit": o.pids_limit,
        "BlkioWeight": o.blkio_weight.unwrap_or(0), "ReadonlyRootfs": o.read_only, "Privileged": o.privileged,
        "CapAdd": o.cap_add, "CapDrop": o.cap_drop, "SecurityOpt": o.security_opts, "NetworkMode": if o.network.is_empty() { "default" } else { &o.network },
        "AutoRemove": o.auto_remove, "RestartPolicy": {"Name": if o.restart.is_empty() { "no" } else { o.restart.split(':').next().unwrap_or("no") }},
        "Init": o.init, "Devices": o.devices, "Ulimits": o.ulimits, "Tmpfs": o.tmpfs, "Binds": o.volumes,
        "LogConfig": {"Type": "json-file", "Config": o.log_opts},
        "ShmSize": o.shm_size.unwrap_or(64 << 20),
    })
}

/// The most `Volumes` an image may declare: each is a directory and a mount of its own.
pub const MAX_IMAGE_VOLUMES: usize = 1024;

/// `-v`, `--mount type=bind|volume` and the image's `Volumes`, as bind mounts of host paths.
pub fn volumes(
    e: &Engine,
    o: &RunOptions,
    image_volumes: Option<&BTreeMap<String, serde_json::Value>>,
) -> Result<Vec<MountRecord>> {
    let mut out: Vec<MountRecord> = Vec::new();
    let mut specs: Vec<(Option<String>, String, bool)> = Vec::new(); // (source, destination, ro)
    for v in &o.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [d] => (None, *d, ""),
            [s, d] => (Some(*s), *d, ""),
            [s, d, m] => (Some(*s), *d, *m),
            _ => return Err(err(format!("invalid volume specification: {v:?}"))),
        };
        let ro = mode.split(',').any(|m| m == "ro");
        if !mode.is_empty()
            && !mode
                .split(',')
                .all(|m| matches!(m, "ro" | "rw" | "z" | "Z" | "rprivate" | "private"))
        {
            return Err(err(format!(
                "invalid mode {mode:?} in volume specification {v:?}"
            )));
        }
        specs.push((src.map(str::to_string), dst.to_string(), ro));
    }
    for m in &o.mounts {
        let mut kind = "volume";
        let (mut src, mut dst, mut ro) = (None, None, false);
        for kv in m.split(',') {
            match kv.split_once('=') {
                Some(("type", t)) => {
                    kind = if t == "bind" {
                        "bind"
                    } else if t == "volume" {
                        "volume"
                    } else if t == "tmpfs" {
                        "tmpfs"
                    } else {
                        return Err(err(format!("invalid --mount type {t:?}")));
                    }
                }
                Some(("source" | "src", s)) => src = Some(s.to_string()),
                Some(("target" | "destination" | "dst", d)) => dst = Some(d.to_string()),
                Some(("readonly" | "ro", v)) => ro = v != "false" && v != "0",
                None if kv == "readonly" || kv == "ro" => ro = true,
                Some(("tmpfs-size" | "tmpfs-mode", _)) => {}
                _ => return Err(err(format!("invalid --mount field {kv:?}"))),
            }
        }
        if kind == "tmpfs" {
            continue;
        }
        let dst = dst.ok_or_else(|| err(format!("invalid --mount {m:?}: target is required")))?;
        if kind == "bind" && !src.as_deref().is_some_and(|s| s.starts_with('/')) {
            return Err(err(format!(
                "invalid --mount {m:?}: a bind needs an absolute source"
            )));
        }
        specs.push((src, dst, ro));
    }
    let declared = image_volumes.map_or(0, BTreeMap::len);
    if declared > MAX_IMAGE_VOLUMES {
        return Err(err(format!(
            "image config: Volumes has {declared} entries, over the limit of {MAX_IMAGE_VOLUMES}"
        )));
    }
    let image_volumes = image_volumes.into_iter().flatten();
    let taken: std::collections::HashSet<String> =
        specs.iter().map(|(_, d, _)| d.clone()).collect();
    for (dst, _) in image_volumes {
        if !taken.contains(dst) {
            specs.push((None, dst.clone(), false));
        }
    }
    for (src, dst, ro) in specs {
        if !dst.starts_with('/') {
            return Err(err(format!(
                "invalid mount destination {dst:?}: must be an absolute path"
            )));
        }
        let rec = match src {
            Some(s) if s.starts_with('/') => {
                if !Path::new(&s).exists() {
                    return Err(err(format!(
                        "invalid mount config: bind source path does not exist: {s}"
                    )));
                }
                MountRecord {
                    kind: "bind".into(),
                    name: None,
                    source: s,
                    destination: dst,
                    rw: !ro,
                    anonymous: false,
                }
            }
            // A named volume, or an anonymous one (removed by `rm -v`) when no source is given.
            named => {
                let anonymous = named.is_none();
                let name = named.unwrap_or_else(crate::names::new_id);
                if !crate::record::valid_name(&name) {
                    return Err(err(format!("invalid volume name {name:?}")));
                }
                let data = e.root.join("volumes").join(&name).join("_data");
                fs::create_dir_all(&data).map_err(|x| err(format!("volume {name}: {x}")))?;
                MountRecord {
                    kind: "volume".into(),
                    name: Some(name),
                    source: data.display().to_string(),
                    destination: dst,
                    rw: !ro,
                    anonymous,
                }
            }
        };
        out.push(rec);
    }
    Ok(out)
}

fn mount_tmpfs(mounts: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for m in mounts {
        if !m.split(',').any(|kv| kv == "type=tmpfs") {
            continue;
        }
        let mut dst = None;
        let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
        for kv in m.split(',') {
            match kv.split_once('=') {
                Some(("target" | "destination" | "dst", d)) => dst = Some(d.to_string()),
                Some(("tmpfs-size", s)) => {
                    opts.push(format!("size={}", parse_bytes(s).map_err(err)?))
                }
                Some(("tmpfs-mode", s)) => opts.push(format!("mode={s}")),
                _ => {}
            }
        }
        out.push((
            dst.ok_or_else(|| err(format!("invalid --mount {m:?}: target is required")))?,
            opts.join(","),
        ));
    }
    Ok(out)
}

fn write_etc_files(dir: &Path, rec: &Record) -> Result<()> {
    let io = |e: std::io::Error| err(format!("{}: {e}", dir.display()));
    fs::write(dir.join("hostname"), format!("{}\n", rec.hostname)).map_err(io)?;
    fs::write(
        dir.join("hosts"),
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{}\n", rec.hostname),
    )
    .map_err(io)?;
    // The host's resolvers, without loopback ones (unreachable from a private network namespace).
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out: Vec<String> = host
        .lines()
        .filter(|l| !(l.starts_with("nameserver") && (l.contains(" 127.") || l.contains(" ::1"))))
        .map(str::to_string)
        .collect();
    if !out.iter().any(|l| l.starts_with("nameserver")) {
        out.push("nameserver 8.8.8.8".into());
        out.push("nameserver 8.8.4.4".into());
    }
    fs::write(dir.join("resolv.conf"), out.join("\n") + "\n").map_err(io)?;
    Ok(())
}

/// A container's cgroup: `/berth-<id>`, directly under each hierarchy's root. No parent is shared
/// between containers: a shared `/berth` would be created by one container and outlive it
/// whenever another was running at its end (the runtime removes only parents it made), and
/// removing it later would race with the next container's create.
pub fn cgroup_path(id: &str) -> String {
    format!("/berth-{id}")
}

/// Waits (up to 5 s) for a detached container's watcher to finish its bookkeeping and exit, so
/// `rm -f` returns with nothing of the container left running.
fn wait_watcher_gone(st: &State) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while watcher_alive(st) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Creates the working directory inside the root when the image lacks it, as Docker does.
fn make_workdir(rootfs: &Path, dir: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let root = fs::File::open(rootfs).map_err(|e| err(format!("{}: {e}", rootfs.display())))?;
    berth_runtime::inroot::open_or_create(
        root.as_raw_fd(),
        Path::new(dir),
        berth_runtime::inroot::Leaf::Dir,
    )
    .map(drop)
    .map_err(|e| err(format!("working directory {dir}: {e}")))
}

/// Whether the container's rootfs directory has its overlay mounted: a mount has a device of its
/// own (two stats instead of reading the whole mount table on the start path).
pub fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(p), p.parent().map(fs::metadata)) {
        (Ok(me), Some(Ok(parent))) => me.dev() != parent.dev(),
        _ => false,
    }
}

pub fn unmount(p: &Path) {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: unmounting by a NUL-terminated path; failure (not mounted) is fine.
    while unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {}
}

/// `SIGTERM`, `TERM`, `15` → the number.
pub fn signal_number(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "ALRM" => libc::SIGALRM,
        "PIPE" => libc::SIGPIPE,
        _ => return None,
    })
}
