//! A container's create body (Docker's `Config`, `HostConfig`, `NetworkingConfig`) as the
//! engine's `RunOptions` — the same options the CLI's flags make — and the networks to connect
//! after the create. What berth cannot honour is refused by name, never silently dropped.

use crate::docker::{
    CreateBody, DeviceRate, EndpointConfig, Healthcheck, HostConfig, Mount, Resources,
};
use crate::error::{ApiError, ApiResult};
use berth_engine::options::{HealthOptions, RunOptions};
use std::collections::BTreeMap;

/// A network to join after the create (the second and later `EndpointsConfig` entries).
pub struct ExtraNetwork {
    pub name: String,
    pub aliases: Vec<String>,
    pub ip: Option<std::net::Ipv4Addr>,
}

fn unsupported(field: &str, value: &str) -> ApiError {
    ApiError::bad(format!(
        "HostConfig.{field} {value:?} is not supported by berth"
    ))
}

fn nonempty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// Refuses what berth has no way to do yet, by its Docker name.
fn refuse_unsupported(h: &HostConfig) -> ApiResult<()> {
    // Docker's `host` (berth's default), and podman's `auto`; anything else by name.
    if let Some(v) = h
        .userns_mode
        .as_deref()
        .filter(|v| !matches!(*v, "" | "host" | "auto"))
    {
        return Err(unsupported("UsernsMode", v));
    }
    if let Some(v) = h
        .runtime
        .as_deref()
        .filter(|v| !matches!(*v, "" | "runc" | "berth"))
    {
        return Err(unsupported("Runtime", v));
    }
    if nonempty(&h.device_requests) {
        return Err(ApiError::bad(
            "HostConfig.DeviceRequests (--gpus) is not supported by berth: pass devices with --device",
        ));
    }
    if let Some(v) = h
        .volume_driver
        .as_deref()
        .filter(|v| !matches!(*v, "" | "local"))
    {
        return Err(unsupported("VolumeDriver", v));
    }
    if h.storage_opt.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad(
            "HostConfig.StorageOpt is not supported by berth: overlay snapshots have no per-container size",
        ));
    }
    if nonempty(&h.links) {
        return Err(ApiError::bad(
            "HostConfig.Links is not supported by berth: use a user network and its names",
        ));
    }
    Ok(())
}

/// Whether an endpoint asks for a MAC, an IPv6 or a link-local address.
pub(crate) fn has_more_addresses(e: &EndpointConfig) -> bool {
    let ipam = e.ipam_config.as_ref();
    e.mac_address.as_deref().is_some_and(|m| !m.is_empty())
        || ipam
            .and_then(|i| i.ipv6_address.as_deref())
            .is_some_and(|a| !a.is_empty())
        || ipam
            .and_then(|i| i.link_local_ips.as_ref())
            .is_some_and(|l| !l.is_empty())
}

/// Nanoseconds (0 for Docker's default) as a Go duration for the engine's health options.
fn nanos(v: Option<i64>) -> Option<String> {
    v.filter(|n| *n != 0).map(|n| format!("{n}ns"))
}

/// `Config.Healthcheck` as the `--health-*` flags. `["CMD", arg…]` runs without a shell in
/// Docker; here its words are quoted for the shell, which runs them unchanged.
fn health(h: Option<&Healthcheck>) -> ApiResult<HealthOptions> {
    let Some(h) = h else {
        return Ok(HealthOptions::default());
    };
    let test: Vec<String> = h.test.clone().unwrap_or_default();
    let (cmd, disable) = match test.first().map(String::as_str) {
        None | Some("") => (None, false),
        Some("NONE") => (None, true),
        Some("CMD-SHELL") if test.len() == 2 => (Some(test[1].clone()), false),
        Some("CMD") if test.len() > 1 => (
            Some(
                test[1..]
                    .iter()
                    .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            false,
        ),
        Some(_) => {
            return Err(ApiError::bad(format!(
                "Healthcheck.Test {test:?}: expected [\"CMD-SHELL\", command], [\"CMD\", args…] or [\"NONE\"]"
            )))
        }
    };
    Ok(HealthOptions {
        cmd,
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h
            .retries
            .filter(|r| *r != 0)
            .map(|r| {
                u32::try_from(r).map_err(|_| ApiError::bad("Healthcheck.Retries must be positive"))
            })
            .transpose()?,
        start_period: nanos(h.start_period),
        start_interval: nanos(h.start_interval),
        disable,
    })
}

/// `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}` as `-p` values.
fn publish(h: &HostConfig) -> Vec<String> {
    let mut out = Vec::new();
    for (port, bindings) in h.port_bindings.iter().flatten() {
        for b in bindings.iter().flatten() {
            let ip = b.host_ip.as_deref().unwrap_or("");
            let hp = b.host_port.as_deref().unwrap_or("");
            out.push(match (ip, hp) {
                ("", "") => port.clone(),
                ("", hp) => format!("{hp}:{port}"),
                // An IPv6 address is bracketed, as on the command line.
                (ip, hp) if ip.contains(':') => format!("[{ip}]:{hp}:{port}"),
                (ip, hp) => format!("{ip}:{hp}:{port}"),
            });
        }
    }
    out
}

/// A `Mounts` entry as a `--mount` value.
fn mount_flag(m: &Mount) -> ApiResult<String> {
    let kind = m.kind.as_deref().unwrap_or("volume");
    let target = m
        .target
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad("Mounts: Target is required"))?;
    let mut parts = vec![format!("type={kind}")];
    if let Some(s) = m.source.as_deref().filter(|s| !s.is_empty()) {
        parts.push(format!("source={s}"));
    }
    parts.push(format!("target={target}"));
    if m.read_only == Some(true) {
        parts.push("readonly".into());
    }
    if m.volume_options.as_ref().and_then(|v| v.no_copy) == Some(true) {
        parts.push("volume-nocopy".into());
    }
    if let Some(t) = &m.tmpfs_options {
        if let Some(size) = t.size_bytes.filter(|s| *s > 0) {
            parts.push(format!("tmpfs-size={size}"));
        }
        if let Some(mode) = t.mode.filter(|m| *m > 0) {
            parts.push(format!("tmpfs-mode={mode:o}"));
        }
    }
    if parts
        .iter()
        .any(|p| p.contains(',') && !p.starts_with("type="))
    {
        return Err(ApiError::bad(format!(
            "Mounts: {target}: a comma in a path is not supported"
        )));
    }
    Ok(parts.join(","))
}

/// `NanoCpus`, or `CpuQuota`/`CpuPeriod`, as `--cpus`.
pub fn cpus(r: &Resources) -> Option<f64> {
    match (
        r.nano_cpus.filter(|n| *n > 0),
        r.cpu_quota.filter(|q| *q > 0),
    ) {
        (Some(n), _) => Some(n as f64 / 1e9),
        (None, Some(q)) => {
            Some(q as f64 / r.cpu_period.filter(|p| *p > 0).unwrap_or(100_000) as f64)
        }
        _ => None,
    }
}

/// `Memory`-like sizes: 0 (or absent) is unset.
fn size(v: Option<i64>) -> Option<i64> {
    v.filter(|n| *n != 0)
}

fn resources(o: &mut RunOptions, r: &Resources) {
    o.memory = size(r.memory);
    o.memory_swap = size(r.memory_swap);
    o.memory_reservation = size(r.memory_reservation);
    o.oom_kill_disable = r.oom_kill_disable.unwrap_or(false);
    // `--cpus` arrives as NanoCpus, `--cpu-period/--cpu-quota` as themselves (as the CLI's).
    o.cpus = r.nano_cpus.filter(|n| *n > 0).map(|n| n as f64 / 1e9);
    o.cpu_period = r.cpu_period.filter(|p| *p > 0).map(|p| p as u64);
    o.cpu_quota = r.cpu_quota.filter(|q| *q != 0);
    o.device_cgroup_rules = r.device_cgroup_rules.clone().unwrap_or_default();
    o.cpu_shares = r.cpu_shares.filter(|s| *s > 0).map(|s| s as u64);
    o.cpuset_cpus = r.cpuset_cpus.clone().filter(|c| !c.is_empty());
    o.cpuset_mems = r.cpuset_mems.clone().filter(|c| !c.is_empty());
    o.pids_limit = r.pids_limit.filter(|p| *p != 0);
    o.blkio_weight = r.blkio_weight.filter(|w| *w > 0);
    o.devices = r
        .devices
        .iter()
        .flatten()
        .map(|d| {
            let host = d.path_on_host.clone().unwrap_or_default();
            let inside = d
                .path_in_container
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| host.clone());
            let perms = d
                .cgroup_permissions
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "rwm".into());
            format!("{host}:{inside}:{perms}")
        })
        .collect();
    o.ulimits = r
        .ulimits
        .iter()
        .flatten()
        .map(|u| {
            format!(
                "{}={}:{}",
                u.name.as_deref().unwrap_or(""),
                u.soft.unwrap_or(0),
                u.hard.unwrap_or(0)
            )
        })
        .collect();
    if let Some(p) = &r.restart_policy {
        o.restart = p.flag();
    }
    o.cpu_rt_period = r.cpu_realtime_period.filter(|p| *p > 0).map(|p| p as u64);
    o.cpu_rt_runtime = r.cpu_realtime_runtime.filter(|r| *r != 0);
    // Docker's CLI sends -1 for "not set" in older versions, null in newer ones.
    o.memory_swappiness = r.memory_swappiness.filter(|s| *s != -1);
    o.blkio_weight_device = device_flags(&r.blkio_weight_device, |d| d.weight);
    o.device_read_bps = device_flags(&r.blkio_device_read_bps, |d| d.rate);
    o.device_write_bps = device_flags(&r.blkio_device_write_bps, |d| d.rate);
    o.device_read_iops = device_flags(&r.blkio_device_read_iops, |d| d.rate);
    o.device_write_iops = device_flags(&r.blkio_device_write_iops, |d| d.rate);
}

/// `[{"Path": "/dev/sda", "Rate": 1048576}]` (or `Weight`) as the CLI's `DEVICE:VALUE` flags,
/// which the engine checks as it checks the CLI's.
fn device_flags(
    list: &Option<Vec<DeviceRate>>,
    value: impl Fn(&DeviceRate) -> Option<u64>,
) -> Vec<String> {
    list.iter()
        .flatten()
        .map(|d| {
            format!(
                "{}:{}",
                d.path.as_deref().unwrap_or(""),
                value(d).unwrap_or(0)
            )
        })
        .collect()
}

/// The create body as run options (`name` from the query) and the further networks to join.
pub fn run_options(
    body: CreateBody,
    name: Option<String>,
) -> ApiResult<(RunOptions, Vec<ExtraNetwork>)> {
    let image = body
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad("Config.Image is required"))?;
    let h = body.host_config.unwrap_or_default();
    refuse_unsupported(&h)?;
    let log = h.log_config.as_ref();
    // Checked by the engine, as the CLI's `--log-driver` is.
    let log_driver = log.and_then(|l| l.kind.clone()).unwrap_or_default();
    let mut volumes: Vec<String> = h.binds.clone().unwrap_or_default();
    // `Config.Volumes`: anonymous volumes, as `-v /path`, unless a bind or a mount already
    // takes the path (docker-py sends both for `volumes=[...]`; the bind wins, as in Docker).
    let taken: Vec<String> = volumes
        .iter()
        .filter_map(|b| b.split(':').nth(1).map(String::from))
        .chain(h.mounts.iter().flatten().filter_map(|m| m.target.clone()))
        .map(|p| p.trim_end_matches('/').to_string())
        .collect();
    volumes.extend(
        body.volumes
            .iter()
            .flatten()
            .map(|(p, _)| p.clone())
            .filter(|p| !taken.contains(&p.trim_end_matches('/').to_string())),
    );
    let entrypoint = body.entrypoint.map(Words::into_vec_or_empty);
    let mut cmd: Vec<String> = body.cmd.map(|c| c.into_vec()).unwrap_or_default();
    let entrypoint = match entrypoint {
        None => None,
        Some(e) if e.is_empty() => Some(String::new()),
        Some(e) => {
            let mut e = e.into_iter();
            let first = e.next();
            let rest: Vec<String> = e.collect();
            cmd = rest.into_iter().chain(cmd).collect();
            first
        }
    };
    let mode = h
        .network_mode
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "default".into());
    let mode = if body.network_disabled == Some(true) {
        "none".to_string()
    } else {
        mode
    };
    let endpoints: BTreeMap<String, EndpointConfig> = body
        .networking_config
        .and_then(|n| n.endpoints_config)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let primary = endpoints.get(&mode).cloned().unwrap_or_default();
    let parse_ip = |e: &EndpointConfig| -> ApiResult<Option<std::net::Ipv4Addr>> {
        match e
            .ipam_config
            .as_ref()
            .and_then(|i| i.ipv4_address.as_deref())
            .filter(|a| !a.is_empty())
        {
            None => Ok(None),
            Some(a) => a
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad(format!("invalid IPv4 address {a:?}"))),
        }
    };
    let extra = endpoints
        .iter()
        .filter(|(k, _)| **k != mode)
        .map(|(k, e)| {
            if has_more_addresses(e) {
                return Err(ApiError::bad(format!(
                    "EndpointsConfig.{k}: MacAddress, IPv6Address and LinkLocalIPs are supported on the container's first network only"
                )));
            }
            Ok(ExtraNetwork {
                name: k.clone(),
                aliases: e.aliases.clone().unwrap_or_default(),
                ip: parse_ip(e)?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let mut o = RunOptions {
        image,
        name: name.filter(|n| !n.is_empty()),
        cmd,
        entrypoint,
        // As given: an entry without `=` stays bare (Docker keeps it so), and the engine never
        // resolves it against the service's own environment.
        env: body.env.unwrap_or_default(),
        workdir: body.working_dir.filter(|w| !w.is_empty()),
        user: body.user.filter(|u| !u.is_empty()),
        hostname: body.hostname.filter(|h| !h.is_empty()),
        labels: body.labels.unwrap_or_default(),
        tty: body.tty.unwrap_or(false),
        interactive: body.open_stdin.unwrap_or(false),
        detach: true,
        auto_remove: h.auto_remove.unwrap_or(false),
        read_only: h.readonly_rootfs.unwrap_or(false),
        cap_add: h.cap_add.clone().unwrap_or_default(),
        cap_drop: h.cap_drop.clone().unwrap_or_default(),
        privileged: h.privileged.unwrap_or(false),
        security_opts: h.security_opt.clone().unwrap_or_default(),
        init: h.init.unwrap_or(false),
        restart: "no".into(),
        stop_signal: body.stop_signal.filter(|s| !s.is_empty()),
        stop_timeout: body.stop_timeout.filter(|t| *t >= 0).map(|t| t as u64),
        network: mode,
        network_aliases: primary.aliases.clone().unwrap_or_default(),
        ip: parse_ip(&primary)?,
        publish: publish(&h),
        publish_all: h.publish_all_ports.unwrap_or(false),
        expose: body.exposed_ports.unwrap_or_default().into_keys().collect(),
        dns: h
            .dns
            .iter()
            .flatten()
            .map(|d| {
                d.parse()
                    .map_err(|_| ApiError::bad(format!("invalid DNS server {d:?}")))
            })
            .collect::<ApiResult<_>>()?,
        dns_search: h.dns_search.clone().unwrap_or_default(),
        dns_options: h.dns_options.clone().unwrap_or_default(),
        add_hosts: h.extra_hosts.clone().unwrap_or_default(),
        volumes,
        tmpfs: h
            .tmpfs
            .iter()
            .flatten()
            .map(|(p, opts)| {
                if opts.is_empty() {
                    p.clone()
                } else {
                    format!("{p}:{opts}")
                }
            })
            .collect(),
        mounts: h
            .mounts
            .iter()
            .flatten()
            .map(mount_flag)
            .collect::<ApiResult<_>>()?,
        log_opts: log
            .and_then(|l| l.config.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        shm_size: size(h.shm_size),
        log_driver,
        sysctls: h
            .sysctls
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        group_add: h.group_add.clone().unwrap_or_default(),
        ipc: h.ipc_mode.clone().unwrap_or_default(),
        userns: h.userns_mode.clone().unwrap_or_default(),
        pid: h.pid_mode.clone().unwrap_or_default(),
        uts: h.uts_mode.clone().unwrap_or_default(),
        volumes_from: h.volumes_from.clone().unwrap_or_default(),
        health: health(body.healthcheck.as_ref())?,
        // `Config.MacAddress` (API < 1.44) or the endpoint's (newer clients).
        mac_address: primary
            .mac_address
            .clone()
            .or(body.mac_address.clone())
            .filter(|m| !m.is_empty()),
        ip6: primary
            .ipam_config
            .as_ref()
            .and_then(|i| i.ipv6_address.as_deref())
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse()
                    .map_err(|_| ApiError::bad(format!("invalid IPv6 address {a:?}")))
            })
            .transpose()?,
        link_local_ips: primary
            .ipam_config
            .as_ref()
            .and_then(|i| i.link_local_ips.clone())
            .unwrap_or_default()
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| ApiError::bad(format!("invalid LinkLocalIPs address {a:?}")))
            })
            .collect::<ApiResult<_>>()?,
        cgroup_parent: h.cgroup_parent.clone().unwrap_or_default(),
        cgroupns: h.cgroupns_mode.clone().unwrap_or_default(),
        annotations: h.annotations.clone().unwrap_or_default(),
        // The engine checks the range; one past i32 is out of it too, said with its own value.
        oom_score_adj: h
            .oom_score_adj
            .map(|v| {
                i32::try_from(v).map_err(|_| {
                    ApiError::bad(berth_engine::ocispec::SpecError::OomScoreAdj(v).to_string())
                })
            })
            .transpose()?
            .unwrap_or(0),
        ..RunOptions::default()
    };
    resources(&mut o, &h.resources);
    if o.auto_remove && o.restart != "no" {
        return Err(ApiError::bad(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    berth_engine::options::parse_restart(&o.restart).map_err(ApiError::BadRequest)?;
    Ok((o, extra))
}

use crate::docker::Words;

impl Words {
    /// The entrypoint as words (`[""]` clears it, as an empty list does).
    fn into_vec_or_empty(self) -> Vec<String> {
        let v = self.into_vec();
        if v.len() == 1 && v[0].is_empty() {
            Vec::new()
        } else {
            v
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
