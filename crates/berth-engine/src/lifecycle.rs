//! The life of a started container: its end recorded (with the exit status, or what is known of a
//! lost one) and its runtime container and mount torn down; kill, stop, pause, and removal with
//! everything it owns (runtime state, cgroup, mount, snapshot, volumes, socket, name).

use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::launch::{cgroup_path, unmount};
use crate::reconcile::watcher_alive;
use crate::record::{Record, State};
use berth_runtime::state::ContainerState;
use std::fs;

fn now() -> String {
    berth_sys::time::now_rfc3339_nanos()
}

impl Engine {
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
        self.finish_watched_then(rec, st, code, |_, _| false).0
    }

    /// As `finish_watched`, and `restart` (asked with the record and the code) decides whether
    /// the container is recorded as restarting rather than exited, in the same save that records
    /// its end: as Docker's, no moment shows it exited (a `rm` there would take a container its
    /// restart policy keeps). Returns the code and whether it restarts.
    pub fn finish_watched_then(
        &self,
        rec: &mut Record,
        st: Option<&ContainerState>,
        code: Option<i32>,
        restart: impl FnOnce(&Record, i32) -> bool,
    ) -> (i32, bool) {
        let code = match code {
            Some(c) => c,
            None => self.lost_status(rec),
        };
        let restarting = restart(rec, code);
        self.finish_as(rec, st, code, restarting);
        (code, restarting)
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

    /// Records the exit of a launched container and tears down its runtime container, mount and
    /// attach socket.
    /// Without the runtime's state (a reboot emptied the runroot) there is nothing of the
    /// runtime to tear down; the mount and the record are still put right.
    pub fn finish(&self, rec: &mut Record, st: Option<&ContainerState>, code: i32) {
        self.finish_as(rec, st, code, false);
    }

    /// `finish`, recording the container as restarting (one more restart counted) when
    /// `restarting`, else as exited.
    fn finish_as(
        &self,
        rec: &mut Record,
        st: Option<&ContainerState>,
        code: i32,
        restarting: bool,
    ) {
        let oom = st
            .and_then(|s| s.cgroup.as_ref())
            .and_then(|c| c.oom_kill_count().ok())
            .unwrap_or(0)
            > 0;
        if let Some(st) = st {
            let _ = berth_runtime::ops::destroy(&self.runtime_root, st);
            berth_runtime::trace("engine: runtime container destroyed");
        }
        // Its processes are gone: its network namespace (and veths) go with them.
        self.detach_networks_exited(rec);
        self.unmount_rootfs(&rec.id);
        unmount(&self.records.dir(&rec.id).join("shm"));
        berth_runtime::trace("engine: unmounted");
        if restarting {
            rec.state.status = "restarting".into();
            rec.state.restart_count += 1;
        } else {
            rec.state.status = "exited".into();
        }
        rec.state.exit_code = code;
        rec.state.oom_killed = oom;
        rec.state.pid = 0;
        rec.state.finished_at = now();
        // Whatever the container owns in the runroot goes before the record says it ended: a
        // watcher killed after the save leaves nothing behind.
        let _ = fs::remove_file(crate::attach::socket_path(&self.runroot, &rec.id));
        let _ = self.records.save(rec);
        self.emit(crate::events::Event::container(rec, "die").attr("exitCode", code));
    }

    /// Removes everything of a container: runtime state, mount, snapshot, anonymous volumes (with
    /// `volumes`), its directory. Idempotent.
    pub fn remove_files(&self, rec: &Record, volumes: bool) -> Result<()> {
        let _ = berth_runtime::ops::delete(&self.runtime_root, &rec.id, true);
        self.remove_half_made(&rec.id);
        self.detach_networks(rec);
        self.unmount_rootfs(&rec.id);
        unmount(&self.records.dir(&rec.id).join("shm"));
        self.snapshots.remove(&rec.id).map_err(EngineError::other)?;
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
            fs::remove_dir_all(&doomed)
                .map_err(|e| EngineError::msg(format!("{}: {e}", doomed.display())))?;
        }
        self.emit(crate::events::Event::container(rec, "destroy"));
        Ok(())
    }

    /// What a create killed midway leaves where the runtime cannot see it (no state file yet):
    /// the container's cgroup (and any process in it) and the runtime's state directory.
    pub(crate) fn remove_half_made(&self, id: &str) {
        if let Ok(h) = berth_cgroups::Hierarchy::detect() {
            // Its `--cgroup-parent`, if its options say one (read as well as they can be).
            let parent = fs::read(self.records.dir(id).join("options.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<crate::options::RunOptions>(&b).ok())
                .map(|o| o.cgroup_parent)
                .unwrap_or_default();
            let path =
                crate::ocispec::cgroup::path(id, &parent).unwrap_or_else(|_| cgroup_path(id));
            if let Ok(cg) = berth_cgroups::Cgroup::new(&h, &path) {
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

    /// Sends a signal to the container's init.
    pub fn kill(&self, rec: &Record, sig: i32) -> Result<()> {
        if rec.state.status != "running" && rec.state.status != "paused" {
            return Err(EngineError::msg(format!(
                "cannot kill container {}: container is not running",
                &rec.id[..12]
            )));
        }
        if sig == libc::SIGKILL {
            self.note_kill(&rec.id, sig)?;
        }
        berth_runtime::ops::kill(&self.runtime_root, &rec.id, sig, false)?;
        self.emit(crate::events::Event::container(rec, "kill").attr("signal", sig));
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
        self.poll_record(id, timeout, |r| !r.is_active())
    }

    /// Waits until the run `rec` shows has ended (its exit recorded: the container stopped, or
    /// its restart policy restarts it), up to `timeout`; true when it ended.
    pub fn wait_run_ended(&self, rec: &Record, timeout: std::time::Duration) -> bool {
        self.poll_record(&rec.id, Some(timeout), |r| {
            !r.is_active() || r.state.finished_at != rec.state.finished_at
        })
    }

    /// Reads the container's record every 20 ms until `done` holds for it (or it is gone), up
    /// to `timeout`; true when it did.
    fn poll_record(
        &self,
        id: &str,
        timeout: Option<std::time::Duration>,
        done: impl Fn(&Record) -> bool,
    ) -> bool {
        // A timeout past what the clock can hold (`stop -t 9223372036854775807`) is none.
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        loop {
            match self.get(id) {
                Ok(r) if !done(&r) => {}
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
        self.emit(crate::events::Event::container(
            &fresh,
            if paused { "pause" } else { "unpause" },
        ));
        Ok(())
    }

    /// Docker's stop: the stop signal, then SIGKILL after the timeout.
    pub fn stop(&self, rec: &mut Record, timeout: Option<u64>) -> Result<()> {
        self.stop_with(rec, None, timeout)
    }

    /// `stop -s SIGNAL`: `signal` instead of the container's stop signal, then SIGKILL after
    /// the timeout.
    pub fn stop_with(
        &self,
        rec: &mut Record,
        signal: Option<i32>,
        timeout: Option<u64>,
    ) -> Result<()> {
        let Some(grace) = self.begin_stop(rec, signal, timeout)? else {
            return Ok(());
        };
        if !self.wait_stopped(&rec.id, Some(std::time::Duration::from_secs(grace))) {
            self.force_stop(&rec.id)?;
        }
        self.end_stop(rec)
    }

    /// A stop's first step: records that the user stopped it (no restart policy brings it
    /// back), thaws a paused container and sends the stop signal. Returns the seconds to wait
    /// before `force_stop`, or `None` when it does not run. The API waits for the container
    /// itself, on the event feed, holding no worker however long the grace period is.
    pub fn begin_stop(
        &self,
        rec: &Record,
        signal: Option<i32>,
        timeout: Option<u64>,
    ) -> Result<Option<u64>> {
        if !matches!(
            rec.state.status.as_str(),
            "running" | "paused" | "restarting"
        ) {
            return Ok(None);
        }
        {
            let _l = self.records.lock(&rec.id)?;
            let mut fresh = self.records.load(&rec.id)?;
            fresh.manually_stopped = true;
            self.records.save(&fresh)?;
        }
        let sig = signal
            .or_else(|| signal_number(&rec.stop_signal))
            .unwrap_or(libc::SIGTERM);
        if rec.state.status == "paused" {
            let _ = berth_runtime::ops::resume(&self.runtime_root, &rec.id);
        }
        let _ = berth_runtime::ops::kill(&self.runtime_root, &rec.id, sig, false);
        Ok(Some(timeout.or(rec.stop_timeout).unwrap_or(10)))
    }

    /// A stop's grace period ended: SIGKILL (recorded first, so the exit reads as berth's
    /// kill), then a wait of at most ten seconds for the watcher to record the end.
    pub fn force_stop(&self, id: &str) -> Result<()> {
        self.note_kill(id, libc::SIGKILL)?;
        // A kill that fails found the container gone already: the wait below tells either way.
        let _ = berth_runtime::ops::kill(&self.runtime_root, id, libc::SIGKILL, true);
        self.wait_stopped(id, Some(std::time::Duration::from_secs(10)));
        Ok(())
    }

    /// A stop's end: the record as it is now, and the `stop` event.
    pub fn end_stop(&self, rec: &mut Record) -> Result<()> {
        *rec = self.get(&rec.id)?;
        self.emit(crate::events::Event::container(rec, "stop"));
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
                return Err(EngineError::msg(format!(
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
            self.emit(crate::events::Event::container(&rec, "kill").attr("signal", libc::SIGKILL));
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
}

/// Waits (up to 5 s) for a detached container's watcher to finish its bookkeeping and exit, so
/// `rm -f` returns with nothing of the container left running.
fn wait_watcher_gone(st: &State) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while watcher_alive(st) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `SIGTERM`, `TERM`, `15` → the number (0 is no signal here).
pub fn signal_number(s: &str) -> Option<i32> {
    berth_sys::signal::parse_signal(s).filter(|n| *n > 0)
}
