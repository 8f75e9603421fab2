//! Holds: what an operation does to a container on the user's behalf besides its job (freezes it
//! for a `commit`, mounts a stopped one's root for a `cp`, half-makes it while starting it) is written into the record, under the
//! container's lock, before it is done, and taken out after it is undone. A process killed in
//! between leaves its hold behind with its pid and start time; the next command that reads the
//! container (every `ps`, `inspect`, `start`…) finds the owner dead and undoes what it did.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::launch::{is_mountpoint, unmount};
use crate::record::{Hold, Record};
use berth_sys::process::Owner;

/// What a hold does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Freeze the running container (its cgroup's freezer).
    Freeze,
    /// Mount the stopped container's snapshot on its root (the caller holds the container lock).
    Mount,
}

/// An operation's hold; undone and taken out of the record when dropped.
pub struct Held<'e> {
    e: &'e Engine,
    id: String,
    hold: Hold,
}

impl Engine {
    /// Records `op`'s freeze of container `id`, then freezes it. Not an error when the container
    /// is not running (nothing is frozen then).
    pub fn freeze_for(&self, id: &str, op: &str) -> Result<Held<'_>> {
        let hold = Hold {
            op: op.into(),
            froze: true,
            ..mine()
        };
        {
            let _l = self.records.lock(id)?;
            let mut rec = self.records.load(id)?;
            if rec.state.status != "running" {
                return Ok(Held {
                    e: self,
                    id: id.into(),
                    hold: Hold {
                        froze: false,
                        ..hold
                    },
                });
            }
            rec.holds.push(hold.clone());
            self.records.save(&rec)?;
        }
        let held = Held {
            e: self,
            id: id.into(),
            hold,
        };
        if let Err(err) = berth_runtime::ops::pause(&self.runtime_root, id) {
            // The container ended after its record said running (its watcher has not recorded
            // the exit yet): nothing is left to freeze, and the operation goes on unfrozen, as
            // Docker's commit of a container that just stopped does. Dropping `held` removes
            // the hold; the thaw it would do finds nothing running.
            let ended = berth_runtime::state::ContainerState::load(&self.runtime_root, id)
                .map_or(true, |st| !st.init_alive());
            if ended {
                return Ok(held);
            }
            return Err(err.into());
        }
        Ok(held)
    }

    /// Records `op`'s mount of the stopped container's root, then mounts it (unless mounted
    /// already). The caller holds the container's lock for as long as the hold lives.
    pub fn mount_for(&self, rec: &Record, op: &str) -> Result<Option<Held<'_>>> {
        let rootfs = self.records.dir(&rec.id).join("rootfs");
        if is_mountpoint(&rootfs) {
            return Ok(None);
        }
        let hold = Hold {
            op: op.into(),
            mounted: true,
            ..mine()
        };
        let mut fresh = self.records.load(&rec.id)?;
        fresh.holds.push(hold.clone());
        self.records.save(&fresh)?;
        let held = Held {
            e: self,
            id: rec.id.clone(),
            hold,
        };
        let m = self.snapshots.mounts(&rec.id).map_err(EngineError::other)?;
        berth_image::snapshot::mount(&m, &rootfs)
            .map_err(|x| EngineError::msg(format!("container {}: {x}", rec.name)))?;
        Ok(Some(held))
    }

    /// Undoes the holds of dead owners (with the container's lock held by the caller); true when
    /// the record changed (it is saved here).
    pub(crate) fn release_dead_holds(&self, rec: &mut Record) -> bool {
        let (dead, live): (Vec<Hold>, Vec<Hold>) =
            rec.holds.drain(..).partition(|h| !h.owner().alive());
        rec.holds = live;
        if dead.is_empty() {
            return false;
        }
        for h in &dead {
            self.undo(rec, h);
        }
        let _ = self.records.save(rec);
        true
    }

    /// Records that this process is starting the container (its root is about to be mounted);
    /// the caller holds the container's lock. [`Engine::started`] takes it out.
    pub(crate) fn hold_for_start(&self, rec: &mut Record) -> Result<()> {
        let me = Owner::me();
        if rec.holds.iter().any(|h| h.starting && h.owner() == me) {
            return Ok(()); // a monitor records it before making the container's attach socket
        }
        rec.holds.push(Hold {
            op: "start".into(),
            mounted: true,
            starting: true,
            ..mine()
        });
        self.records.save(rec).map_err(Into::into)
    }

    /// Takes this process's start hold out of the record (in memory: the caller saves it, with
    /// the state that says the container runs, or after undoing a failed start).
    pub(crate) fn started(&self, rec: &mut Record) {
        let me = Owner::me();
        rec.holds.retain(|h| !(h.starting && h.owner() == me));
    }

    /// Undoes one hold's effect, unless another live hold (or the user) still wants it.
    fn undo(&self, rec: &Record, h: &Hold) {
        if h.starting && !rec.is_active() {
            // Killed while starting it: whatever the start made goes, the record stays created.
            self.remove_half_made(&rec.id);
            unmount(&self.records.dir(&rec.id).join("shm"));
            self.detach_networks(rec);
            let _ = std::fs::remove_file(crate::attach::socket_path(&self.runroot, &rec.id));
        }
        if h.froze && rec.state.status == "running" && !rec.holds.iter().any(|o| o.froze) {
            let _ = berth_runtime::ops::resume(&self.runtime_root, &rec.id);
        }
        if h.mounted && !rec.is_active() && !rec.holds.iter().any(|o| o.mounted) {
            unmount(&self.records.dir(&rec.id).join("rootfs"));
        }
    }
}

fn mine() -> Hold {
    let me = Owner::me();
    Hold {
        pid: me.pid,
        start: me.start,
        ..Hold::default()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.hold.froze && !self.hold.mounted {
            return;
        }
        // A mount hold's caller holds the container lock already: flock is per open file, so
        // taking it again here would wait on ourselves. Only a freeze takes it.
        let _lock = self.hold.froze.then(|| self.e.records.lock(&self.id).ok());
        let Ok(mut rec) = self.e.records.load(&self.id) else {
            return;
        };
        let Some(i) = rec.holds.iter().position(|h| *h == self.hold) else {
            return;
        };
        rec.holds.remove(i);
        self.e.undo(&rec, &self.hold);
        let _ = self.e.records.save(&rec);
    }
}
