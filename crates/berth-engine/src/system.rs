//! What berth and this host are, in Docker's `version` and `info` shapes: berth's version and
//! the API versions `berth serve` speaks, the kernel, the OS, CPUs and memory, the cgroup
//! version, counts of containers and images. Reads the system once per call; changes nothing.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// The Docker Engine API version `berth serve` advertises (and the oldest it accepts).
pub const API_VERSION: &str = "1.45";
pub const MIN_API_VERSION: &str = "1.24";

/// Docker's `version` document (`types.Version`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionInfo {
    pub platform: Platform,
    pub components: Vec<Component>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub build_time: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Component {
    pub name: String,
    pub version: String,
    pub details: BTreeMap<String, String>,
}

/// Docker's `info` document (`system.Info`): the fields its CLI shows, with their zero values
/// where berth has nothing to say (no swarm, no plugins beyond its own).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub driver: String,
    pub driver_status: Vec<[String; 2]>,
    pub plugins: Plugins,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    pub debug: bool,
    pub n_fd: usize,
    pub oom_kill_disable: bool,
    pub n_goroutines: usize,
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub n_events_listener: usize,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    pub index_server_address: String,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    pub docker_root_dir: String,
    pub name: String,
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    pub runtimes: BTreeMap<String, Runtime>,
    pub default_runtime: String,
    pub swarm: Swarm,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub security_options: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Plugins {
    pub volume: Vec<String>,
    pub network: Vec<String>,
    pub authorization: Option<Vec<String>>,
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Runtime {
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Swarm {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
}

/// `uname -r`, `uname -m` and the host name.
struct Uname {
    release: String,
    machine: String,
    nodename: String,
}

fn uname() -> Uname {
    // SAFETY: uname fills a zeroed struct; its fields are NUL-terminated.
    let u = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        u
    };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Uname {
        release: field(&u.release),
        machine: field(&u.machine),
        nodename: field(&u.nodename),
    }
}

/// Go's name for this architecture (`amd64`, `arm64`), as Docker reports it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `PRETTY_NAME` and `VERSION_ID` of /etc/os-release.
fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |k| k * 1024)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The version `berth` was built as, and the commit when the build knew it.
pub fn version_info() -> VersionInfo {
    let u = uname();
    let commit = option_env!("BERTH_COMMIT").unwrap_or("unknown").to_string();
    let version = env!("CARGO_PKG_VERSION").to_string();
    let details = BTreeMap::from([
        ("ApiVersion".to_string(), API_VERSION.to_string()),
        ("MinAPIVersion".into(), MIN_API_VERSION.into()),
        ("GitCommit".into(), commit.clone()),
        ("Os".into(), "linux".into()),
        ("Arch".into(), go_arch().into()),
        ("KernelVersion".into(), u.release.clone()),
    ]);
    VersionInfo {
        platform: Platform {
            name: "berth".into(),
        },
        components: vec![Component {
            name: "Engine".into(),
            version: version.clone(),
            details,
        }],
        version,
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: commit,
        go_version: String::new(),
        os: "linux".into(),
        arch: go_arch().into(),
        kernel_version: u.release,
        build_time: String::new(),
    }
}

impl Engine {
    /// Docker's `info` for this store and host.
    pub fn system_info(&self) -> Result<SystemInfo> {
        let containers = self.list();
        let count = |s: &str| containers.iter().filter(|r| r.state.status == s).count();
        let (running, paused) = (count("running"), count("paused"));
        let images = self.store.index()?.images.len();
        let u = uname();
        let (os, os_version) = os_release();
        let v2 = berth_cgroups::Hierarchy::detect().is_ok_and(|h| h.is_v2());
        let forwarding =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|s| s.trim() == "1");
        Ok(SystemInfo {
            id: self.store_id(),
            containers: containers.len(),
            containers_running: running,
            containers_paused: paused,
            containers_stopped: containers.len() - running - paused,
            images,
            driver: "overlay2".into(),
            driver_status: vec![
                ["Backing Filesystem".into(), backing_fs(&self.root)],
                ["Supports d_type".into(), "true".into()],
            ],
            plugins: Plugins {
                volume: vec!["local".into()],
                network: vec!["bridge".into(), "host".into(), "null".into()],
                authorization: None,
                log: vec!["json-file".into()],
            },
            memory_limit: true,
            swap_limit: true,
            cpu_cfs_period: true,
            cpu_cfs_quota: true,
            cpu_shares: true,
            cpu_set: true,
            pids_limit: true,
            ipv4_forwarding: forwarding,
            debug: false,
            n_fd: open_fds(),
            oom_kill_disable: !v2,
            n_goroutines: 0,
            system_time: berth_sys::time::now_rfc3339_nanos(),
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: if v2 { "2" } else { "1" }.into(),
            n_events_listener: 0,
            kernel_version: u.release,
            operating_system: os,
            os_version,
            os_type: "linux".into(),
            architecture: u.machine,
            index_server_address: "https://index.docker.io/v1/".into(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: mem_total(),
            docker_root_dir: self.root.display().to_string(),
            name: u.nodename,
            labels: Vec::new(),
            experimental_build: false,
            server_version: env!("CARGO_PKG_VERSION").into(),
            runtimes: BTreeMap::from([(
                "berth".to_string(),
                Runtime {
                    path: "berth-runtime (in-process)".into(),
                },
            )]),
            default_runtime: "berth".into(),
            swarm: Swarm {
                node_id: String::new(),
                node_addr: String::new(),
                local_node_state: "inactive".into(),
                control_available: false,
                error: String::new(),
            },
            live_restore_enabled: true,
            isolation: String::new(),
            security_options: vec![
                "name=seccomp,profile=builtin".into(),
                "name=no-new-privileges".into(),
            ],
            warnings: Vec::new(),
        })
    }

    /// A stable identity of this store (Docker's daemon `ID`): made once, kept in the store.
    pub fn store_id(&self) -> String {
        let p = self.root.join("store-id");
        if let Ok(id) = std::fs::read_to_string(&p) {
            return id.trim().to_string();
        }
        let id = crate::names::new_id();
        // A lost race leaves the other process's ID, read back below.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .and_then(|mut f| std::io::Write::write_all(&mut f, id.as_bytes()));
        std::fs::read_to_string(&p).map_or(id, |s| s.trim().to_string())
    }
}

/// The filesystem the store lives on (`extfs`, `xfs`, `tmpfs`…), as Docker names it.
fn backing_fs(root: &std::path::Path) -> String {
    let Ok(c) = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: statfs fills a zeroed struct for a NUL-terminated path.
    let kind = unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut s) != 0 {
            return "unknown".into();
        }
        s.f_type
    };
    match kind {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x0102_1994 => "tmpfs",
        0x9123_683E => "btrfs",
        _ => "unknown",
    }
    .into()
}

impl Engine {
    /// `system migrate` (podman's name): ends the user's pause process, so the next command
    /// makes their user namespace anew. Refused while a container runs (it lives in that
    /// namespace); nothing to do for root.
    pub fn system_migrate(&self) -> Result<()> {
        if !crate::rootless::is_rootless()? {
            return Ok(());
        }
        let running: Vec<String> = self
            .list()
            .into_iter()
            .filter(|r| r.is_active())
            .map(|r| r.name)
            .collect();
        if !running.is_empty() {
            return Err(EngineError::msg(format!(
                "system migrate: containers still run in your user namespace ({}): stop them first",
                running.join(", ")
            )));
        }
        crate::rootless::stop_pause(&self.runroot)?;
        Ok(())
    }
}
