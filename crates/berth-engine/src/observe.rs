//! Looking at containers from the host: `explain` (each namespace against the host's, the cgroup's
//! limits beside usage, the layers, capabilities and seccomp — isolation at a glance), the
//! processes of `top` and the figures of `stats`. Reads /proc and cgroupfs; changes nothing.

use crate::error::{EngineError, Result};
use crate::record::Record;
use crate::Engine;
use berth_runtime::state::ContainerState;
use berth_sys::units::human_size;
use serde::Serialize;
use std::path::{Path, PathBuf};

const NAMESPACES: [(&str, &str); 8] = [
    ("pid", "process IDs"),
    ("net", "network stack"),
    ("ipc", "System V IPC, POSIX queues"),
    ("mnt", "mount table"),
    ("uts", "hostname"),
    ("user", "user and group IDs"),
    ("cgroup", "cgroup root"),
    ("time", "clocks"),
];

/// Everything `explain` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub id: String,
    pub name: String,
    pub image: String,
    pub pid: i32,
    pub status: String,
    pub namespaces: Vec<NamespaceView>,
    pub cgroup: CgroupView,
    pub filesystem: FilesystemView,
    pub security: SecurityView,
    pub network: NetworkView,
}

/// The container's network: its mode, each network it is on as the kernel sees it from inside
/// (interfaces, addresses, routes, the host end of its veth and its bridge, published ports),
/// and the resolvers its resolv.conf names.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkView {
    pub mode: String,
    pub networks: Vec<berth_net::Explain>,
    pub dns_servers: Vec<std::net::IpAddr>,
    /// Rootless: the pasta that connects the running container's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_mode: Option<UserModeView>,
}

/// A rootless container's user-mode network: its pasta, the ports pasta forwards, and the
/// gateway address pasta maps to the host (only for `--add-host NAME:host-gateway`).
#[derive(Debug, Clone, Serialize)]
pub struct UserModeView {
    pub pasta_pid: i32,
    pub ports: Vec<berth_net::PortMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_gateway: Option<std::net::Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamespaceView {
    #[serde(rename = "type")]
    pub kind: String,
    pub isolates: String,
    pub inode: u64,
    pub shared_with_host: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CgroupView {
    pub path: Option<String>,
    pub limits: Vec<LimitView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LimitView {
    pub resource: String,
    pub limit: String,
    pub usage: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilesystemView {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub lower_layers: Vec<LayerView>,
    pub upper: UpperView,
    pub read_only_root: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerView {
    pub chain_id: String,
    pub dir: PathBuf,
    pub size: u64,
    pub shared_by_images: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpperView {
    pub dir: PathBuf,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecurityView {
    pub capabilities: Vec<String>,
    pub seccomp: String,
    pub no_new_privs: bool,
    pub uid_map: String,
    /// The user namespace in words ("root in the container is uid 100000 on the host").
    pub user_namespace: Vec<String>,
}

/// A container's resource figures for `stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub cpu_ns: u64,
    pub memory: u64,
    /// The memory limit, or the host's memory when there is none.
    pub memory_limit: u64,
    pub block_io: u64,
    pub pids: u64,
}

fn ns_inode(pid: &str, ns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// The first of `names` found in the container's cgroup directories, trimmed.
fn cg_file(dirs: &[PathBuf], names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        dirs.iter()
            .find_map(|d| std::fs::read_to_string(d.join(n)).ok())
            .map(|s| s.trim().to_string())
    })
}

fn limit_text(v: Option<String>) -> String {
    match v.as_deref() {
        None => "-".into(),
        Some("max") | Some("-1") => "unlimited".into(),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n >= 1 << 60 => "unlimited".into(),
            Ok(n) if n > 1 << 20 => human_size(n),
            _ => s.to_string(),
        },
    }
}

/// The names (`chown`, `net_raw`, …) of the capabilities set in a `CapEff:` mask.
fn cap_names(hex: &str) -> Vec<String> {
    let bits = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
    berth_runtime::features::CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, c)| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect()
}

impl Engine {
    /// Docker's `SizeRw` and `SizeRootFs` of a container: the bytes its writable layer holds, and
    /// those plus its image's layers.
    pub fn container_sizes(&self, r: &Record) -> (u64, u64) {
        let rw = du(&self.upper_dir(&r.id));
        let image: u64 = r
            .layers
            .iter()
            .filter_map(|c| berth_image::digest::Digest::parse(c).ok())
            .map(|c| self.store.layers.info(&c).map(|i| i.size).unwrap_or(0))
            .sum();
        (rw, rw + image)
    }
}

/// Apparent bytes of the regular files under `path`.
fn du(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                if m.is_dir() {
                    stack.push(e.path());
                } else if m.is_file() {
                    total += m.size();
                }
            }
        }
    }
    total
}

/// The host's memory, for a container without a limit.
pub(crate) fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |k| k * 1024)
}

/// The init's user namespace in words, from the maps the kernel holds for it.
fn user_namespace_words(pid: &str) -> Vec<String> {
    use berth_image::snapshot::{IdMap, IdMapping};
    let maps = match berth_sys::userns::IdMaps::of(pid) {
        Ok(m) => m,
        Err(e) => return vec![format!("its id maps could not be read: {e}")],
    };
    if maps.is_identity() {
        return vec![
            "no user namespace of its own (--userns=host): root in the container is root on the host"
                .into(),
        ];
    }
    let ranges = |v: &[berth_sys::userns::IdRange]| {
        v.iter()
            .map(|r| IdMapping {
                container_id: r.inside,
                host_id: r.outside,
                size: r.count,
            })
            .collect()
    };
    crate::userns::describe(&IdMap {
        uid: ranges(&maps.uid),
        gid: ranges(&maps.gid),
    })
}

impl Engine {
    /// A running (or paused) container and the runtime's state of it.
    fn running(&self, what: &str) -> Result<(Record, ContainerState)> {
        let r = self.get(what)?;
        if !matches!(r.state.status.as_str(), "running" | "paused") {
            return Err(EngineError::NotRunning(format!(
                "container {} is not running",
                r.name
            )));
        }
        let st = ContainerState::load(&self.runtime_root, &r.id)?;
        Ok((r, st))
    }

    /// What isolates the running container `what`.
    pub fn explain(&self, what: &str) -> Result<Explanation> {
        let (r, st) = self.running(what)?;
        let pid = st.pid.to_string();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let seccomp = match field("Seccomp:").as_str() {
            "0" => "disabled",
            "1" => "strict",
            "2" => "filter",
            _ => "unknown",
        };
        let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
        Ok(Explanation {
            id: r.id.clone(),
            name: r.name.clone(),
            image: r.image.clone(),
            pid: st.pid,
            status: r.state.status.clone(),
            namespaces: namespaces(&pid),
            cgroup: cgroup_view(&st),
            filesystem: self.filesystem_view(&r),
            security: SecurityView {
                capabilities: cap_names(&field("CapEff:")),
                seccomp: seccomp.into(),
                no_new_privs: field("NoNewPrivs:") == "1",
                uid_map: uid_map.split_whitespace().collect::<Vec<_>>().join(" "),
                user_namespace: {
                    let mut words = user_namespace_words(&pid);
                    if r.idmap.is_some() {
                        words.push(crate::userns::IDMAPPED_FILES.into());
                    }
                    if crate::rootless::is_rootless()? {
                        words.push(crate::userns::ROOTLESS_LIMITS.into());
                    }
                    words
                },
            },
            network: self.network_view(&r)?,
        })
    }

    fn network_view(&self, r: &Record) -> Result<NetworkView> {
        let mode = self.options(r)?.network;
        let mut networks = Vec::new();
        let endpoints = self.endpoints(r);
        if !endpoints.is_empty() {
            let nets = self.networks()?;
            for ep in &endpoints {
                networks.push(nets.explain(ep)?);
            }
        }
        let resolv = std::fs::read_to_string(self.records.dir(&r.id).join("resolv.conf"));
        let dns_servers = berth_net::files::nameservers(&resolv.unwrap_or_default());
        for n in networks.iter_mut() {
            n.dns_servers = dns_servers.clone();
        }
        let pasta = self.pasta(&r.id);
        let user_mode = match pasta.pid().filter(|_| r.is_active()) {
            Some(pasta_pid) => {
                let connection = pasta.connection()?.unwrap_or_default();
                Some(UserModeView {
                    pasta_pid,
                    ports: connection.ports,
                    host_gateway: connection.host_gateway,
                })
            }
            None => None,
        };
        Ok(NetworkView {
            mode: crate::network::NetworkMode::parse(&mode).docker_name(),
            networks,
            dns_servers,
            user_mode,
        })
    }

    fn filesystem_view(&self, r: &Record) -> FilesystemView {
        let index = self.store.index().ok();
        let lower_layers = r
            .layers
            .iter()
            .rev()
            .filter_map(|c| berth_image::digest::Digest::parse(c).ok())
            .map(|c| LayerView {
                chain_id: c.to_string(),
                dir: self.store.layers.diff_dir(&c),
                size: self.store.layers.info(&c).map(|i| i.size).unwrap_or(0),
                shared_by_images: index.as_ref().map_or(0, |i| {
                    i.images
                        .values()
                        .filter(|im| im.layers.contains(&c))
                        .count()
                }),
            })
            .collect();
        let upper = self.upper_dir(&r.id);
        FilesystemView {
            kind: self.snapshot_mount(&r.id).map(|m| m.kind),
            lower_layers,
            upper: UpperView {
                size: du(&upper),
                dir: upper,
            },
            read_only_root: r.host_config["ReadonlyRootfs"].clone(),
        }
    }

    /// The host pids of the running container `what`'s processes.
    pub fn pids(&self, what: &str) -> Result<Vec<i32>> {
        let (r, _) = self.running(what)?;
        Ok(berth_runtime::ops::pids(&self.runtime_root, &r.id)?)
    }

    /// A container's resource usage now (zeros when it is not running).
    pub fn usage(&self, r: &Record) -> Usage {
        let s = ContainerState::load(&self.runtime_root, &r.id)
            .ok()
            .and_then(|st| st.cgroup.as_ref().and_then(|c| c.stats().ok()))
            .unwrap_or_default();
        let memory_limit = if s.memory.limit == 0 || s.memory.limit >= 1 << 60 {
            total_memory()
        } else {
            s.memory.limit
        };
        Usage {
            cpu_ns: s.cpu.usage_total_ns,
            memory: s.memory.usage,
            memory_limit,
            block_io: s
                .blkio_bytes
                .iter()
                .filter(|b| b.op == "Total")
                .map(|b| b.value)
                .sum(),
            pids: s.pids.current,
        }
    }
}

fn namespaces(pid: &str) -> Vec<NamespaceView> {
    NAMESPACES
        .iter()
        .filter_map(|(ns, what)| {
            let mine = ns_inode(pid, ns)?;
            // berth itself runs in the host's namespaces, but for the user and mount ones a
            // rootless berth left for its pause process's.
            let host = crate::rootless::host_namespace(ns).or_else(|| ns_inode("self", ns));
            Some(NamespaceView {
                kind: ns.to_string(),
                isolates: what.to_string(),
                inode: mine,
                shared_with_host: host == Some(mine),
            })
        })
        .collect()
}

fn cgroup_view(st: &ContainerState) -> CgroupView {
    let dirs: Vec<PathBuf> = st.cgroup.as_ref().map(|c| c.paths()).unwrap_or_default();
    let stats = st
        .cgroup
        .as_ref()
        .and_then(|c| c.stats().ok())
        .unwrap_or_default();
    let limit = |resource: &str, limit: String, usage: String| LimitView {
        resource: resource.into(),
        limit,
        usage,
    };
    let cpu_quota = cg_file(&dirs, &["cpu.max"]).or_else(|| {
        let q = cg_file(&dirs, &["cpu.cfs_quota_us"])?;
        let p = cg_file(&dirs, &["cpu.cfs_period_us"])?;
        Some(if q == "-1" {
            "unlimited".into()
        } else {
            format!("{q}us per {p}us")
        })
    });
    let io: u64 = stats
        .blkio_bytes
        .iter()
        .filter(|b| b.op == "Total")
        .map(|b| b.value)
        .sum();
    CgroupView {
        path: st.cgroup.as_ref().map(|c| c.path().display().to_string()),
        limits: vec![
            limit(
                "memory",
                limit_text(cg_file(&dirs, &["memory.max", "memory.limit_in_bytes"])),
                human_size(stats.memory.usage),
            ),
            limit(
                "memory+swap",
                limit_text(cg_file(
                    &dirs,
                    &["memory.swap.max", "memory.memsw.limit_in_bytes"],
                )),
                human_size(stats.memory.swap_usage),
            ),
            limit(
                "pids",
                limit_text(cg_file(&dirs, &["pids.max"])),
                stats.pids.current.to_string(),
            ),
            limit(
                "cpu quota",
                cpu_quota.unwrap_or_else(|| "-".into()),
                format!("{:.2}s cpu", stats.cpu.usage_total_ns as f64 / 1e9),
            ),
            limit(
                "cpu weight",
                cg_file(&dirs, &["cpu.weight", "cpu.shares"]).unwrap_or_else(|| "-".into()),
                String::new(),
            ),
            limit(
                "cpuset",
                cg_file(&dirs, &["cpuset.cpus"])
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "all".into()),
                String::new(),
            ),
            limit(
                "block I/O weight",
                cg_file(&dirs, &["io.weight", "blkio.weight"]).unwrap_or_else(|| "-".into()),
                human_size(io),
            ),
        ],
    }
}
