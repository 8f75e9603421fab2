//! Starting and restarting containers by name for front ends that hold no terminal (the API
//! service; the CLI's detached paths do the same steps): a user's start clears an earlier stop
//! for the restart policy, the container starts under its monitor, a restart is a stop then a
//! start. Each emits its event (the monitor's launch emits `start`).

use crate::error::Result;
use crate::events::Event;
use crate::record::Record;
use crate::Engine;

/// What a start did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Started,
    /// It was running already (Docker's 304).
    AlreadyRunning,
}

impl Engine {
    /// Starts container `what` under its monitor; with `attach_first` its watcher waits for the
    /// first attach client before reading its output.
    pub fn start_container(&self, what: &str, attach_first: bool) -> Result<(Started, Record)> {
        let mut rec = self.get(what)?;
        if rec.state.status == "running" || rec.state.status == "paused" {
            return Ok((Started::AlreadyRunning, rec));
        }
        self.user_started(&mut rec)?;
        if let Err(e) = crate::monitor::start_detached_with(self, &mut rec, attach_first) {
            self.remove_after_failed_start(&rec);
            return Err(e);
        }
        Ok((Started::Started, rec))
    }

    /// A `--rm` container whose start failed is removed, as Docker's daemon removes it (a
    /// client waiting for its removal, as `docker run --rm` does, is answered).
    pub fn remove_after_failed_start(&self, rec: &Record) {
        if rec.auto_remove {
            // Dropped: the caller reports the start's failure, and a container this removal
            // cannot take stays listed for a later `rm`.
            let _ = self.remove(&rec.id, true, true);
        }
    }

    /// Stops container `what` (after `timeout` seconds, its stop signal's grace) and starts it.
    pub fn restart_container(&self, what: &str, timeout: Option<u64>) -> Result<Record> {
        let mut rec = self.get(what)?;
        self.stop(&mut rec, timeout)?;
        self.start_again(&rec.id)
    }

    /// A restart's second half, once the container is stopped: started, and the `restart`
    /// event.
    pub fn start_again(&self, id: &str) -> Result<Record> {
        let (_, rec) = self.start_container(id, false)?;
        self.emit(Event::container(&rec, "restart"));
        Ok(rec)
    }
}
