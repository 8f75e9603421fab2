//! The prune commands' engine half: stopped containers (`container prune`), and user networks
//! under filters (`network prune` / `system prune --filter`). Docker's `until`, `label` and
//! `label!` filters decide; what was removed comes back for the caller to print.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::filters::Filters;
use berth_sys::time::parse_rfc3339;

/// The keys `container prune`, `network prune` and `system prune` know.
pub const PRUNE_FILTERS: &[&str] = &["until", "label", "label!"];

/// Whether a thing created at `created` (RFC 3339) is older than `until`, when given.
fn created_before(created: &str, until: Option<i64>) -> bool {
    until.is_none_or(|u| parse_rfc3339(created).is_some_and(|c| c < u))
}

impl Engine {
    /// `container prune`: removes every container that is not running, paused or restarting
    /// and passes the filters (through `remove`, which refuses one that started meanwhile).
    /// Returns the full IDs removed and their writable layers' bytes.
    pub fn prune_containers(&self, filters: &Filters) -> Result<(Vec<String>, u64)> {
        let until = filters
            .until(berth_sys::time::now_secs())
            .map_err(EngineError::from)?;
        let mut gone = Vec::new();
        let mut bytes = 0;
        for r in self.list() {
            if r.is_active()
                || !created_before(&r.created, until)
                || !filters.labels_match(&r.labels)
            {
                continue;
            }
            let size = crate::changes::upper_size(self, &r.id);
            if let Ok(id) = self.remove(&r.id, false, false) {
                gone.push(id);
                bytes += size;
            }
        }
        Ok((gone, bytes))
    }

    /// `network prune [--filter …]`: the user networks no container uses that pass the
    /// filters; their names.
    pub fn prune_networks_filtered(&self, filters: &Filters) -> Result<Vec<String>> {
        if filters.is_empty() {
            return self.prune_networks();
        }
        let until = filters
            .until(berth_sys::time::now_secs())
            .map_err(EngineError::from)?;
        if !self.root.join("networks").exists() {
            return Ok(Vec::new());
        }
        let candidates: Vec<String> = self
            .networks()?
            .list()?
            .into_iter()
            .filter(|n| n.name != berth_net::DEFAULT_NETWORK)
            .filter(|n| created_before(&n.created, until) && filters.labels_match(&n.labels))
            .map(|n| n.name)
            .collect();
        let mut removed = Vec::new();
        for name in candidates {
            // One in use (or made predefined) stays, as Docker's prune skips it.
            if let Ok(n) = self.remove_network(&name) {
                removed.push(n);
            }
        }
        Ok(removed)
    }
}
