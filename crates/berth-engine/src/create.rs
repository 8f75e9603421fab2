//! Making a container: its record (staged under `.new-<id>` and renamed into place, so every
//! container directory has one), its name, its volumes and its snapshot; the command from
//! Docker's Entrypoint/Cmd rule and the environment merged as Docker merges it. Nothing runs here.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::options::{parse_bytes, RunOptions};
use crate::record::{Record, RecordError, State};
use berth_image::images::ImageRecord;
use berth_image::manifest::ImageConfig;
use std::collections::BTreeMap;
use std::fs;

fn now() -> String {
    berth_sys::time::now_rfc3339_nanos()
}

/// What Docker refuses at create besides the spec's own checks (`ocispec::check_at_create`): a
/// stop signal it does not know, a working directory that is not absolute, a numeric user or
/// group out of range (names wait for the image's files at the start).
fn check_process_options(o: &RunOptions) -> Result<()> {
    if let Some(u) = o.user.as_deref() {
        crate::user::check(u)?;
    }
    if let Some(s) = o.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        if crate::lifecycle::signal_number(s).is_none() {
            return Err(EngineError::msg(format!("Invalid signal: {s}")));
        }
    }
    if let Some(w) = o
        .workdir
        .as_deref()
        .filter(|w| !w.is_empty() && !w.starts_with('/'))
    {
        return Err(EngineError::msg(format!(
            "the working directory '{w}' is invalid, it needs to be an absolute path"
        )));
    }
    Ok(())
}

impl Engine {
    /// Makes a container record and its snapshot from an image and the user's options.
    pub fn create(&self, o: &RunOptions, image: &ImageRecord) -> Result<Record> {
        let cfg_bytes = self
            .store
            .content
            .read(&image.id, berth_image::pull::MAX_CONFIG_BYTES)
            .map_err(EngineError::other)?;
        let cfg = ImageConfig::parse(&cfg_bytes)
            .map_err(|e| EngineError::msg(format!("image {}: config: {e}", o.image)))?;
        let rc = cfg.config.clone().unwrap_or_default();
        check_process_options(o)?;
        let (entrypoint, cmd) = entrypoint_and_cmd(o, &rc);
        let (path, args) = command(&entrypoint, &cmd)?;
        check_env(&o.env)?;
        let env = merge_env(rc.env.as_deref().unwrap_or(&[]), &o.env, o.tty);
        // Checked here; the watcher applies it.
        crate::options::parse_restart(&o.restart).map_err(EngineError::other)?;
        let mut labels: BTreeMap<String, String> = rc.labels.clone().unwrap_or_default();
        labels.extend(o.labels.clone());
        let (log_max_size, log_max_file) = log_opts(&o.log_opts)?;
        let image_exposed: Vec<String> = rc
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let net = self.plan_network(o, &image_exposed)?;
        let sharing = check_sharing(o)?;
        let h = berth_cgroups::Hierarchy::detect().map_err(EngineError::other)?;
        crate::ocispec::check_at_create(o, &h)?;
        if h.is_v2() && o.memory_swappiness.is_some_and(|s| s != -1) {
            // cgroup v2 has no such file; Docker discards it with the same warning.
            self.warn("cgroup v2 has no memory swappiness: --memory-swappiness discarded");
        }
        let health_check = crate::health::resolve(rc.healthcheck.as_ref(), &o.health)?;
        let log_driver = log_driver(&o.log_driver)?;
        if log_driver == "none" && !o.log_opts.is_empty() {
            return Err(EngineError::msg(format!(
                "unknown log opt {:?} for none log driver",
                o.log_opts[0]
            )));
        }
        let from_others = self.volumes_from(&o.volumes_from)?;
        let userns = crate::userns::request(&o.userns, &o.uidmap, &o.gidmap)?;
        let id = crate::names::new_id();
        let _names = self.records.names_lock().map_err(EngineError::other)?;
        // Under the names lock, held until the snapshot records the range: no other create
        // can pick it meanwhile.
        let idmap = self.idmap_for(userns)?;
        let reserve = |n: &str| {
            self.records
                .reserve_name(n, &id)
                .map_err(|e| EngineError::msg(format!("name {n}: {e}")))
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
        let staging = self.records.make_staging(&id).map_err(|e| {
            EngineError::msg(format!("{}: {e}", self.records.staging_dir(&id).display()))
        })?;
        let mut rec = Record {
            id: id.clone(),
            name,
            created: now(),
            image: o.image.clone(),
            image_id: image.id.to_string(),
            layers: image.layers.iter().map(|d| d.to_string()).collect(),
            path,
            args,
            config_entrypoint: Some(entrypoint),
            config_cmd: Some(cmd),
            env,
            working_dir: o
                .workdir
                .clone()
                .or(rc.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: o.user.clone().or(rc.user.clone()).unwrap_or_default(),
            hostname: match (&net.shares_with, &o.hostname) {
                (Some(other), _) => other.hostname.clone(),
                (None, Some(h)) => h.clone(),
                // Docker's: the host's name when the container has the host's UTS namespace or
                // network stack, else its short ID.
                (None, None) if sharing.uts_host || o.network == "host" => host_name(),
                (None, None) => id[..12].to_string(),
            },
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
            networks: net.networks,
            publish: net.publish,
            exposed_ports: net.exposed,
            health_check,
            log_driver,
            idmap,
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
            return Err(EngineError::msg(format!("{}: {e}", dir.display())));
        }
        let made = (|| -> Result<()> {
            rec.mounts = crate::volume::volumes(self, o, rc.volumes.as_ref(), rec.idmap.as_ref())?;
            for m in &from_others {
                if !rec.mounts.iter().any(|x| x.destination == m.destination) {
                    rec.mounts.push(m.clone());
                }
            }
            self.snapshots
                .prepare_mapped(&id, &image.layers, rec.idmap.as_ref())
                .map_err(EngineError::other)?;
            self.records.save(&rec)?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = self.remove_files(&rec, true);
            return Err(e);
        }
        self.emit(crate::events::Event::container(&rec, "create"));
        Ok(rec)
    }
}

impl Engine {
    /// The maps a new container gets: none for the host's ids, the ones given, or a fresh range
    /// of berth's that no snapshot is remapped to (the caller holds the names lock).
    fn idmap_for(
        &self,
        request: crate::userns::Request,
    ) -> Result<Option<berth_image::snapshot::IdMap>> {
        use crate::userns::{allocate, own_range, Request, UsernsError};
        if request != Request::Host && crate::rootless::is_rootless()? {
            return Err(UsernsError::Rootless.into());
        }
        Ok(match request {
            Request::Host => None,
            Request::Maps(m) => Some(m),
            Request::Auto => {
                let own = own_range()?;
                let in_use = self.snapshots.idmaps_in_use().map_err(UsernsError::InUse)?;
                Some(allocate(own, &in_use)?)
            }
        })
    }
}

/// What the namespace-sharing flags ask for, checked (`--ipc`, `--pid`, `--uts`).
struct Sharing {
    uts_host: bool,
}

fn check_sharing(o: &RunOptions) -> Result<Sharing> {
    use crate::options::ShareMode;
    ShareMode::ipc(&o.ipc).map_err(EngineError::msg)?;
    ShareMode::pid(&o.pid).map_err(EngineError::msg)?;
    let uts_host = ShareMode::uts(&o.uts).map_err(EngineError::msg)? == ShareMode::Host;
    if uts_host && o.hostname.is_some() {
        return Err(EngineError::msg(
            "conflicting options: hostname and the UTS mode",
        ));
    }
    uts_name("--hostname", o.hostname.as_deref())?;
    uts_name("--domainname", o.domainname.as_deref())?;
    Ok(Sharing { uts_host })
}

/// A `--hostname`/`--domainname` the kernel takes (at most 64 bytes) and that cannot break the
/// line of /etc/hosts it is written into (no whitespace or control characters). Shown cut short.
fn uts_name(flag: &str, name: Option<&str>) -> Result<()> {
    let Some(name) = name else { return Ok(()) };
    let why = if name.len() > 64 {
        "longer than 64 bytes"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it holds whitespace or control characters"
    } else {
        return Ok(());
    };
    let shown: String = name.chars().take(64).collect();
    let cut = if shown.len() < name.len() { "…" } else { "" };
    Err(EngineError::msg(format!(
        "invalid {flag} {shown:?}{cut}: {why}"
    )))
}

/// The host's own name (`/proc/sys/kernel/hostname`).
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// `--log-driver`: berth keeps `json-file` (and `local`, stored the same way) or `none`.
fn log_driver(d: &str) -> Result<String> {
    match d {
        "" | "json-file" | "local" => Ok(String::new()),
        "none" => Ok("none".into()),
        other => Err(EngineError::msg(format!(
            "logger: no log driver named '{other}' is registered (berth has json-file, local and none)"
        ))),
    }
}

impl Engine {
    /// `--volumes-from CONTAINER[:ro|:rw]`: that container's volumes and binds, at the same
    /// places, read-only with `:ro`, else as they are there.
    fn volumes_from(&self, specs: &[String]) -> Result<Vec<crate::record::MountRecord>> {
        let mut out = Vec::new();
        for spec in specs {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m @ ("ro" | "rw"))) => (n, Some(m)),
                _ => (spec.as_str(), None),
            };
            let other = self.get(name)?;
            for mut m in other.mounts {
                if let Some(mode) = mode {
                    m.rw = mode == "rw";
                }
                // The volume belongs to the other container: removing this one keeps it.
                m.anonymous = false;
                out.push(m);
            }
        }
        Ok(out)
    }
}

/// `Config.Entrypoint` and `Config.Cmd` as Docker sets them: the user's `--entrypoint` replaces
/// the image's and drops its Cmd (an empty one clears both); the user's command replaces the
/// image's Cmd.
fn entrypoint_and_cmd(
    o: &RunOptions,
    rc: &berth_image::manifest::RunConfig,
) -> (Vec<String>, Vec<String>) {
    let cmd = |fallback: Option<&Vec<String>>| {
        if o.cmd.is_empty() {
            fallback.cloned().unwrap_or_default()
        } else {
            o.cmd.clone()
        }
    };
    match &o.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), o.cmd.clone()),
        Some(e) => (vec![e.clone()], o.cmd.clone()),
        None => (
            rc.entrypoint.clone().unwrap_or_default(),
            cmd(rc.cmd.as_ref()),
        ),
    }
}

/// The process to run: Entrypoint then Cmd, as Docker joins them.
fn command(entrypoint: &[String], cmd: &[String]) -> Result<(String, Vec<String>)> {
    let mut full: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if full.is_empty() {
        return Err(EngineError::msg("no command specified"));
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
    // A bare `NAME` is one the client had no value for (the CLI resolves `-e NAME` from its
    // own environment): kept bare, as Docker keeps it. Never looked up here: through the API
    // that would hand the service's own environment to whoever asks.
    for e in user {
        env.set(e);
    }
    env.into_vec()
}

/// Environment entries a client sent: `NAME=value` or a bare `NAME`, never an empty name
/// (Docker's "invalid environment variable") nor a NUL, which no process environment can hold.
pub fn check_env(entries: &[String]) -> Result<()> {
    match entries
        .iter()
        .find(|e| e.is_empty() || e.starts_with('=') || e.contains('\0'))
    {
        Some(bad) => Err(EngineError::msg(format!(
            "invalid environment variable: {bad:?}"
        ))),
        None => Ok(()),
    }
}

fn log_opts(opts: &[String]) -> Result<(Option<u64>, Option<u32>)> {
    let mut size = None;
    let mut files = None;
    for o in opts {
        match o.split_once('=') {
            Some(("max-size", v)) => {
                size = Some(parse_bytes(v).map_err(EngineError::other)? as u64)
            }
            Some(("max-file", v)) => {
                files = Some(
                    v.parse()
                        .map_err(|_| EngineError::msg(format!("invalid --log-opt {o:?}")))?,
                )
            }
            _ => {
                return Err(EngineError::msg(format!(
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
        "CapAdd": o.cap_add, "CapDrop": o.cap_drop, "SecurityOpt": o.security_opts,
        "NetworkMode": crate::network::NetworkMode::parse(&o.network).docker_name(),
        "PortBindings": crate::network::port_bindings(&o.publish), "PublishAllPorts": o.publish_all,
        "Dns": o.dns, "DnsSearch": o.dns_search, "DnsOptions": o.dns_options, "ExtraHosts": o.add_hosts,
        "AutoRemove": o.auto_remove, "RestartPolicy": {"Name": if o.restart.is_empty() { "no" } else { o.restart.split(':').next().unwrap_or("no") }},
        "Init": o.init, "Devices": o.devices, "Ulimits": o.ulimits, "Tmpfs": o.tmpfs, "Binds": o.volumes,
        "LogConfig": {"Type": "json-file", "Config": o.log_opts},
        "ShmSize": o.shm_size.unwrap_or(64 << 20),
    })
}

#[cfg(test)]
mod tests {
    use super::{check_env, merge_env, uts_name};

    #[test]
    fn a_bare_name_stays_unset_and_the_engines_own_environment_is_never_read() {
        // Set in this process by cargo: through the API the engine is the service, and a
        // client's bare name must not read the service's environment.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let env = merge_env(
            &["A=1".into()],
            &["CARGO_MANIFEST_DIR".into(), "B=2".into()],
            false,
        );
        assert!(
            env.iter().all(|e| !e.starts_with("CARGO_MANIFEST_DIR=")),
            "{env:?}"
        );
        assert!(
            env.contains(&"CARGO_MANIFEST_DIR".to_string()),
            "kept bare: {env:?}"
        );
        assert!(env.contains(&"A=1".to_string()) && env.contains(&"B=2".to_string()));
        for bad in ["", "=x", "A\0B=1"] {
            assert!(check_env(&[bad.into()]).is_err(), "{bad:?}");
        }
        assert!(check_env(&["A".into(), "B=".into()]).is_ok());
    }

    #[test]
    fn uts_names_the_kernel_and_etc_hosts_take_pass_and_others_are_refused_cut_short() {
        for ok in [
            None,
            Some(""),
            Some("web-1.example"),
            Some(&"a".repeat(64)[..]),
        ] {
            assert!(uts_name("--hostname", ok).is_ok(), "{ok:?}");
        }
        let long = "a".repeat(300);
        let err = uts_name("--hostname", Some(&long)).unwrap_err().to_string();
        assert!(err.ends_with("…: longer than 64 bytes"), "{err}");
        assert!(err.len() < 120, "{err}");
        for bad in ["a b", "a\nb", "a\tb"] {
            assert!(uts_name("--domainname", Some(bad)).is_err(), "{bad:?}");
        }
    }
}
