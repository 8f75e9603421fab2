//! After crashes: frees what containers that are gone still hold (veth, lease, port claims, DNAT
//! elements, resolver entries), leases and claims no record explains, resolvers with no names
//! left (and restarts a killed one that still has names), and rebuilds berth's table when
//! anything was freed. It judges liveness only through the caller's `is_alive`.

use std::collections::HashSet;
use std::fs;

use crate::dns::table;
use crate::endpoint::EndpointError;
use crate::ipam::Ipam;
use crate::ports::PortClaims;
use crate::store::Networks;

/// What a reclaim freed, and what it kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReclaimReport {
    /// The endpoints of live containers, read on the way (a listing shows them without
    /// reading them again).
    pub live: Vec<crate::Endpoint>,
    /// (network, container) of each endpoint torn down.
    pub endpoints: Vec<(String, String)>,
    /// Leases, port claims and resolver entries that no record explained.
    pub orphans: usize,
    /// Resolvers stopped (no names left) or restarted (killed with names left).
    pub resolvers: usize,
    /// Whether berth's table was rebuilt.
    pub firewall_synced: bool,
}

impl Networks {
    /// Frees everything held for containers whose endpoint `is_alive` rejects (judged by its
    /// liveness key, or by what the caller knows of its container).
    pub fn reclaim(
        &self,
        is_alive: &dyn Fn(&crate::Endpoint) -> bool,
    ) -> Result<ReclaimReport, EndpointError> {
        let mut report = ReclaimReport::default();
        let nets = self.list()?;
        let mut owners: HashSet<String> = HashSet::new();
        for cfg in &nets {
            let _l = self.lock_network(&cfg.id)?;
            let mut live = HashSet::new();
            for ep in self.endpoints(&cfg.id)? {
                if is_alive(&ep) {
                    live.insert(ep.container_id.clone());
                    owners.insert(ep.container_id.clone());
                    report.live.push(ep);
                } else {
                    self.teardown_endpoint(cfg, &ep)?;
                    report.endpoints.push((cfg.name.clone(), ep.container_id));
                }
            }
            let ipam = Ipam::of(cfg, &self.net_run(&cfg.id));
            for (ip, owner) in ipam.leases()? {
                if !live.contains(&owner) {
                    ipam.release(ip, &owner);
                    report.orphans += 1;
                }
            }
            let resolver = self.resolver(cfg);
            let tpath = resolver.table_path();
            for e in table::read(&tpath).unwrap_or_default() {
                if !live.contains(&e.container_id) {
                    let _ = table::update(&tpath, &e.container_id, None);
                    report.orphans += 1;
                }
            }
            let names_left = tpath.exists();
            let running = resolver.running().is_some();
            if !names_left && (running || resolver.dir.exists()) {
                resolver.stop();
                report.resolvers += running as usize;
            } else if names_left && !running {
                if let Some(cmd) = &self.opts.dns {
                    self.ensure_bridge(cfg)?;
                    let scfg = crate::dns::server_config(
                        cfg.gateway,
                        !cfg.internal,
                        crate::dns::upstreams(&self.opts.resolv_conf),
                        tpath,
                    );
                    resolver.ensure(cmd, &scfg)?;
                    report.resolvers += 1;
                }
            }
        }
        let claims = PortClaims::new(&self.run);
        {
            let p = claims.lock_path();
            let _l = crate::state::lock(&p).map_err(crate::store::state_err(&p))?;
            for (m, owner) in claims.all()? {
                if !owners.contains(&owner) {
                    claims.release_claim(&m);
                    report.orphans += 1;
                }
            }
        }
        // Run directories of networks that no longer exist.
        let ids: HashSet<&str> = nets.iter().map(|n| n.id.as_str()).collect();
        if let Ok(rd) = fs::read_dir(&self.run) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.len() == 64 && e.path().is_dir() && !ids.contains(name.as_str()) {
                    let _ = fs::remove_dir_all(e.path());
                    report.orphans += 1;
                }
            }
        }
        if !report.endpoints.is_empty() || report.orphans > 0 {
            let _f = self.lock_firewall()?;
            if nets.is_empty() {
                self.fw.delete_table()?;
            } else {
                self.sync_firewall_locked()?;
            }
            report.firewall_synced = true;
        }
        Ok(report)
    }
}
