//! Reading containers so that the answer is the truth: a record whose watcher (monitor or keeper)
//! is dead and whose init is gone is finished, holds whose owners died are undone, and what
//! killed creates and removals left is cleaned, by every command that lists or reads one.

use crate::container::Engine;
use crate::error::Result;
use crate::record::{Record, RecordError, State};
use berth_net::Endpoint;
use berth_runtime::state::ContainerState;
use std::collections::{HashMap, HashSet};
use std::fs;

/// What `reconciled` found a record to be.
enum Reconciled {
    /// Not running (or its dead holds released), nothing else to do.
    Settled,
    /// Running with a live watcher: its watcher keeps it true.
    Watched,
    /// Looked at under its lock: changed, finished, or removed (`--rm`).
    Acted,
}

/// Every container, as a listing reads it once.
pub struct Listing {
    pub records: Vec<Record>,
    /// The endpoints of each running container on a network, by container id (`None`: the
    /// networks could not be read as a whole).
    endpoints: Option<HashMap<String, Vec<Endpoint>>>,
}

impl Listing {
    /// The endpoints of a listed container, in its record's order (`None`: not known here).
    pub fn endpoints(&self, rec: &Record) -> Option<Vec<Endpoint>> {
        let all = self.endpoints.as_ref()?;
        let Some(eps) = all.get(&rec.id).filter(|_| rec.is_active()) else {
            return Some(Vec::new());
        };
        let ordered = rec
            .networks
            .iter()
            .filter_map(|a| {
                eps.iter()
                    .find(|ep| ep.network_name == a.network || ep.network_id == a.network)
            })
            .cloned()
            .collect();
        Some(ordered)
    }
}

impl Engine {
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
        self.reconciled(rec);
    }

    /// `reconcile`, saying what it found: most records are settled or watched, known from the
    /// record and one look at the watcher, with nothing taken or changed.
    fn reconciled(&self, rec: &mut Record) -> Reconciled {
        let mut seen = Reconciled::Settled;
        if rec.holds.iter().any(|h| !h.owner().alive()) {
            seen = Reconciled::Acted;
            if let Ok(_lock) = self.records.lock(&rec.id) {
                if let Ok(mut fresh) = self.records.load(&rec.id) {
                    self.release_dead_holds(&mut fresh);
                    *rec = fresh;
                }
            }
        }
        if !rec.is_active() {
            return seen;
        }
        if watcher_alive(&rec.state) {
            return Reconciled::Watched;
        }
        let Ok(_lock) = self.records.lock(&rec.id) else {
            return Reconciled::Acted;
        };
        let Ok(fresh) = self.records.load(&rec.id) else {
            return Reconciled::Acted;
        };
        *rec = fresh;
        if !matches!(
            rec.state.status.as_str(),
            "running" | "paused" | "restarting"
        ) || watcher_alive(&rec.state)
        {
            return Reconciled::Acted;
        }
        if self.init_alive(rec) {
            return Reconciled::Acted; // orphaned but running: `stop`/`rm -f` still reach it
        }
        let st = ContainerState::load(&self.runtime_root, &rec.id).ok();
        self.finish_watched(rec, st.as_ref(), None);
        if rec.auto_remove {
            // Its watcher died before it could: `--rm` still holds.
            let _ = self.remove_files(rec, true);
        }
        Reconciled::Acted
    }

    /// Removes what crashes left without a record: directories of creates killed before their
    /// first `meta.json` (older than a minute, so a create in progress is never touched) and
    /// removals killed midway (`.rm-*` of containers and of snapshots).
    fn clean_orphans(&self, orphans: Vec<String>) {
        let minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for id in orphans {
            let dir = self.records.dir(&id);
            let old = fs::metadata(&dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < minute_ago);
            if old && id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.remove_half_made(&id);
                self.unmount_rootfs(&id);
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
        // Best effort, as the directories above: a sweep that fails is tried again by the
        // next listing, and the listing itself must not fail for it.
        let _ = self.snapshots.reclaim_removed();
    }

    /// Every container, reconciled.
    pub fn list(&self) -> Vec<Record> {
        self.listing().records
    }

    /// Every container, reconciled, with the endpoints of those on networks: one read of each
    /// record and each endpoint, and one look at each watcher, however many containers there are.
    pub fn listing(&self) -> Listing {
        let (mut all, orphans) = self.records.scan();
        self.clean_orphans(orphans);
        // Staging whose owners died (killed pulls, commits, loads) goes with the next listing.
        self.store.reclaim_staging();
        let mut watched = HashSet::new();
        let mut acted = HashSet::new();
        for r in all.iter_mut() {
            match self.reconciled(r) {
                Reconciled::Watched => watched.insert(r.id.clone()),
                Reconciled::Acted => acted.insert(r.id.clone()),
                Reconciled::Settled => false,
            };
        }
        // Reconciling applies a `--rm` its dead watcher could not.
        all.retain(|r| {
            !acted.contains(&r.id) || self.records.dir(&r.id).join("meta.json").exists()
        });
        // Endpoints, leases, ports and resolver names of containers that are gone. A container
        // whose watcher lives is not gone: its watcher detaches it at its end.
        let kept = self.reclaim_networks(&|ep| {
            watched.contains(&ep.container_id) || berth_net::liveness::endpoint_alive(ep)
        });
        let endpoints = kept.map(|kept| {
            let mut by_container: HashMap<String, Vec<Endpoint>> = HashMap::new();
            for ep in kept {
                by_container
                    .entry(ep.container_id.clone())
                    .or_default()
                    .push(ep);
            }
            by_container
        });
        Listing {
            records: all,
            endpoints,
        }
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
}

/// Is someone still watching this container: its monitor, or the keeper that takes over when
/// the monitor is killed?
pub(crate) fn watcher_alive(st: &State) -> bool {
    // A zombie (killed, not yet reaped) or a reused pid (after a reboot) is not watching.
    berth_sys::process::alive(st.monitor_pid, st.monitor_start)
        || berth_sys::process::alive(st.keeper_pid, st.keeper_start)
}
