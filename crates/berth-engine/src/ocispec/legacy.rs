//! The spec as berth built it before the typed one: `json!` maps, kept unchanged (but for
//! sharing `SpecInput`) as the reference the equivalence test compares the typed spec with.
//! Test-only; goes with equivalence.rs.

use super::SpecInput;
use crate::options::RunOptions;
use serde_json::{json, Value};

pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The capability names this kernel knows, numbered by position (up to cap_last_cap).
fn known_caps() -> &'static [&'static str] {
    let all = berth_runtime::features::CAPABILITIES;
    let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(all.len() - 1);
    &all[..=last.min(all.len() - 1)]
}

/// Every capability berth itself may grant (`--privileged`, `--cap-add ALL`): those in its own
/// bounding set, so a berth running with a reduced set still starts privileged containers.
fn all_caps() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    known_caps()
        .iter()
        .enumerate()
        .filter(|(n, _)| bounding & (1u64 << n) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn normalize_cap(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set after `--cap-add`/`--cap-drop` (`ALL` allowed in both, like Docker).
pub fn capabilities(o: &RunOptions) -> Result<Vec<String>, String> {
    if o.privileged {
        return Ok(all_caps());
    }
    let known: Vec<String> = known_caps().iter().map(|c| c.to_string()).collect();
    let mut caps: Vec<String> = if o.cap_drop.iter().any(|c| c.eq_ignore_ascii_case("all")) {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !o.cap_drop.iter().any(|d| normalize_cap(d) == *c))
            .collect()
    };
    for d in &o.cap_drop {
        if !d.eq_ignore_ascii_case("all") && !known.contains(&normalize_cap(d)) {
            return Err(format!("invalid --cap-drop: unknown capability {d:?}"));
        }
    }
    for a in &o.cap_add {
        if a.eq_ignore_ascii_case("all") {
            return Ok(all_caps());
        }
        let n = normalize_cap(a);
        if !known.contains(&n) {
            return Err(format!("invalid --cap-add: unknown capability {a:?}"));
        }
        if !caps.contains(&n) {
            caps.push(n);
        }
    }
    Ok(caps)
}

/// Docker's default seccomp policy, as an allow list: every syscall the kernel tables know is
/// allowed except those Docker's profile leaves out, and anything else (including syscalls
/// newer than the tables, which get ENOSYS so libc falls back) is refused with EPERM. As in
/// Docker, some of the left-out calls come back with the capability that governs them
/// (`--cap-add SYS_ADMIN` brings mount, unshare, setns…; SYS_PTRACE brings ptrace…), `clone`
/// may not ask for new namespaces without SYS_ADMIN, `clone3` gets ENOSYS (libc falls back to
/// `clone`), and `personality` accepts only the harmless personas.
pub fn default_seccomp(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut denied: Vec<&str> = vec![
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "create_module",
        "delete_module",
        "finit_module",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "get_kernel_syms",
        "get_mempolicy",
        "init_module",
        "ioperm",
        "iopl",
        "kcmp",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mbind",
        "mount",
        "mount_setattr",
        "move_mount",
        "move_pages",
        "name_to_handle_at",
        "nfsservctl",
        "open_by_handle_at",
        "open_tree",
        "perf_event_open",
        "pivot_root",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
        "query_module",
        "quotactl",
        "quotactl_fd",
        "reboot",
        "request_key",
        "set_mempolicy",
        "setns",
        "settimeofday",
        "stime",
        "swapoff",
        "swapon",
        "sysfs",
        "_sysctl",
        "syslog",
        "umount",
        "umount2",
        "unshare",
        "uselib",
        "userfaultfd",
        "ustat",
        "vhangup",
        "vm86",
        "vm86old",
        "personality",
        "clone",
        "clone3",
    ];
    let mut give_back = |cap: &str, calls: &[&str]| {
        if has(cap) {
            denied.retain(|d| !calls.contains(d));
        }
    };
    give_back(
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "perf_event_open",
            "bpf",
            "name_to_handle_at",
            "clone",
            "clone3",
        ],
    );
    give_back(
        "CAP_SYS_PTRACE",
        &["ptrace", "process_vm_readv", "process_vm_writev", "kcmp"],
    );
    give_back(
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    );
    give_back(
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    );
    give_back("CAP_SYS_BOOT", &["reboot"]);
    give_back("CAP_SYS_PACCT", &["acct"]);
    give_back("CAP_SYS_RAWIO", &["iopl", "ioperm"]);
    give_back(
        "CAP_SYS_NICE",
        &["mbind", "set_mempolicy", "get_mempolicy", "move_pages"],
    );
    give_back("CAP_SYSLOG", &["syslog"]);
    give_back("CAP_SYS_TTY_CONFIG", &["vhangup"]);
    give_back("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]);
    give_back("CAP_BPF", &["bpf"]);
    give_back("CAP_PERFMON", &["perf_event_open"]);
    let allowed: Vec<&str> = berth_seccomp::known_syscalls()
        .into_iter()
        .filter(|n| !denied.contains(n))
        .collect();
    let mut rules = vec![json!({"names": allowed, "action": "SCMP_ACT_ALLOW"})];
    if denied.contains(&"personality") {
        // PER_LINUX, PER_LINUX32 (and their UNAME26 forms), and the query.
        for p in [0x0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
            rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}));
        }
    }
    if denied.contains(&"clone") {
        // CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID and NEWNET all clear.
        let ns_mask: u64 = 0x0002_0000
            | 0x0200_0000
            | 0x0400_0000
            | 0x0800_0000
            | 0x1000_0000
            | 0x2000_0000
            | 0x4000_0000;
        rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": ns_mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
    }
    if denied.contains(&"clone3") {
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

/// Parses `--ulimit nofile=1024:2048` into an OCI rlimit.
fn ulimit(u: &str) -> Result<Value, String> {
    let (name, vals) = u
        .split_once('=')
        .ok_or_else(|| format!("invalid --ulimit {u:?}: expected name=soft[:hard]"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (s, h),
        None => (vals, vals),
    };
    let p = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("invalid --ulimit {u:?}: {v:?} is not a number"))
    };
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard {
        return Err(format!(
            "invalid --ulimit {u:?}: soft limit above hard limit"
        ));
    }
    let conv = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    Ok(
        json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": conv(soft), "hard": conv(hard)}),
    )
}

/// Parses `--device /dev/x[:/dev/y[:rwm]]` into (host path, container path, permissions).
pub fn parse_device(d: &str) -> Result<(String, String, String), String> {
    let parts: Vec<&str> = d.split(':').collect();
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if c.chars().all(|x| "rwm".contains(x)) && !c.is_empty() => (*h, *h, *c),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(format!("invalid --device {d:?}")),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') || !perms.chars().all(|x| "rwm".contains(x))
    {
        return Err(format!(
            "invalid --device {d:?}: expected /dev/host[:/dev/container[:rwm]]"
        ));
    }
    Ok((host.into(), ctr.into(), perms.into()))
}

fn device_entry(host: &str, ctr: &str, perms: &str) -> Result<(Value, Value), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(host).map_err(|e| format!("--device {host}: {e}"))?;
    let kind = if m.file_type().is_char_device() {
        "c"
    } else if m.file_type().is_block_device() {
        "b"
    } else {
        return Err(format!("--device {host}: not a device node"));
    };
    let (major, minor) = (libc::major(m.rdev()) as i64, libc::minor(m.rdev()) as i64);
    Ok((
        json!({"path": ctr, "type": kind, "major": major, "minor": minor, "fileMode": m.mode() & 0o7777, "uid": m.uid(), "gid": m.gid()}),
        json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": perms}),
    ))
}

pub fn spec(i: &SpecInput) -> Result<Value, String> {
    let o = i.opts;
    let caps = capabilities(o)?;
    let mut no_new_privs = true;
    let mut seccomp = Some(default_seccomp(&caps));
    for s in &o.security_opts {
        match s.split_once(['=', ':']) {
            Some(("seccomp", "unconfined")) => seccomp = None,
            Some(("seccomp", file)) => {
                let data = std::fs::read(file)
                    .map_err(|e| format!("--security-opt seccomp={file}: {e}"))?;
                seccomp = Some(
                    serde_json::from_slice(&data)
                        .map_err(|e| format!("--security-opt seccomp={file}: {e}"))?,
                );
            }
            Some(("no-new-privileges", v)) => no_new_privs = v != "false",
            None if s == "no-new-privileges" => no_new_privs = true,
            Some(("apparmor", _)) | Some(("label", _)) => {}
            _ => return Err(format!("invalid --security-opt {s:?}")),
        }
    }
    if o.privileged {
        seccomp = None;
    }
    let mut rlimits = vec![json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024})];
    for u in &o.ulimits {
        let r = ulimit(u)?;
        rlimits.retain(|x| x["type"] != r["type"]);
        rlimits.push(r);
    }
    let dir = i.container_dir.display();
    let shm = o.shm_size.unwrap_or(64 << 20);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if o.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if o.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
        json!({"destination": "/etc/hostname", "type": "bind", "source": format!("{dir}/hostname"), "options": ["rbind", "rprivate"]}),
        json!({"destination": "/etc/hosts", "type": "bind", "source": format!("{dir}/hosts"), "options": ["rbind", "rprivate"]}),
        json!({"destination": "/etc/resolv.conf", "type": "bind", "source": format!("{dir}/resolv.conf"), "options": ["rbind", "rprivate"]}),
    ];
    for m in i.mounts {
        let mut opts = vec!["rbind", "rprivate"];
        if !m.rw {
            opts.push("ro");
        }
        mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": opts}));
    }
    for (dest, opts) in &i.tmpfs {
        // Docker's defaults first; the user's options follow and win (`exec` undoes `noexec`).
        let mut v: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        v.extend(
            opts.split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
        mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": v}));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match o.network.as_str() {
        "host" => {}
        "" | "none" | "default" | "bridge" => namespaces.push(json!({"type": "network"})),
        other => {
            return Err(format!(
                "network {other:?} not found (berth has none and host; bridges come later)"
            ))
        }
    }
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    let mut devices = Vec::new();
    if !o.privileged {
        // Docker's default allow list beyond the runtime's default devices: the pty pair and tun.
        let allowed = [
            ("c", 1, 3),
            ("c", 1, 5),
            ("c", 1, 7),
            ("c", 1, 8),
            ("c", 1, 9),
            ("c", 5, 0),
            ("c", 5, 1),
            ("c", 5, 2),
            ("c", 136, -1),
            ("c", 10, 200),
        ];
        let list = resources["devices"].as_array_mut().expect("array");
        for (t, maj, min) in allowed {
            list.push(
                json!({"allow": true, "type": t, "major": maj, "minor": min, "access": "rwm"}),
            );
        }
    } else {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    for d in &o.devices {
        let (host, ctr, perms) = parse_device(d)?;
        let (dev, rule) = device_entry(&host, &ctr, &perms)?;
        devices.push(dev);
        resources["devices"]
            .as_array_mut()
            .expect("array")
            .push(rule);
    }
    let mut memory = serde_json::Map::new();
    if let Some(m) = o.memory {
        if m < 6 << 20 {
            return Err("Minimum memory limit allowed is 6MB".into());
        }
        memory.insert("limit".into(), json!(m));
        // Docker: swap defaults to twice the memory when unset.
        let swap = match o.memory_swap {
            Some(s) => s,
            None => m * 2,
        };
        memory.insert("swap".into(), json!(swap));
    } else if o.memory_swap.is_some_and(|s| s != -1) {
        return Err("You should always set the Memory limit when using Memoryswap limit".into());
    }
    if let (Some(m), Some(s)) = (o.memory, o.memory_swap) {
        if s != -1 && s < m {
            return Err(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            );
        }
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(c) = o.cpus {
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        if c <= 0.0 || c > ncpu {
            return Err(format!(
                "range of CPUs is from 0.01 to {ncpu:.2}, as there are only {ncpu} CPUs available"
            ));
        }
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!((c * 100_000.0) as i64));
    }
    if let Some(s) = o.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(s) = &o.cpuset_cpus {
        cpu.insert("cpus".into(), json!(s));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = o.pids_limit {
        resources["pids"] = json!({"limit": if p <= 0 { -1 } else { p }});
    }
    if let Some(w) = o.blkio_weight {
        if !(10..=1000).contains(&w) {
            return Err(format!("invalid --blkio-weight {w}: range is 10 to 1000"));
        }
        resources["blockIO"] = json!({"weight": w});
    }
    let mut process = json!({
        "terminal": o.tty,
        "user": {"uid": i.user.uid, "gid": i.user.gid, "additionalGids": i.user.additional_gids},
        "args": i.args,
        "env": i.env,
        "cwd": i.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "noNewPrivileges": no_new_privs,
        "oomScoreAdj": 0,
    });
    if o.tty {
        process["consoleSize"] = json!({"height": 24, "width": 80});
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": i.cgroup_path,
        "resources": resources,
        "devices": devices,
        "maskedPaths": if o.privileged { vec![] } else { MASKED.to_vec() },
        "readonlyPaths": if o.privileged { vec![] } else { READONLY.to_vec() },
    });
    if let Some(s) = seccomp {
        linux["seccomp"] = s;
    }
    let mut annotations = serde_json::Map::new();
    if o.init {
        annotations.insert(berth_runtime::init::INIT_ANNOTATION.into(), json!("true"));
    }
    Ok(json!({
        "ociVersion": "1.1.0",
        "annotations": annotations,
        "process": process,
        "root": {"path": "rootfs", "readonly": o.read_only},
        "hostname": i.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_docker_defaults_and_flags() {
        let mut o = RunOptions::default();
        assert_eq!(capabilities(&o).unwrap().len(), 14);
        o.cap_drop = vec!["net_raw".into()];
        o.cap_add = vec!["SYS_ADMIN".into()];
        let c = capabilities(&o).unwrap();
        assert!(
            !c.contains(&"CAP_NET_RAW".to_string()) && c.contains(&"CAP_SYS_ADMIN".to_string())
        );
        o.cap_add = vec!["CAP_BOGUS".into()];
        assert!(capabilities(&o).unwrap_err().contains("CAP_BOGUS"));
        o.cap_add.clear();
        o.cap_drop = vec!["ALL".into()];
        assert!(capabilities(&o).unwrap().is_empty());
    }

    #[test]
    fn ulimits_and_devices_parse() {
        assert_eq!(ulimit("nofile=10:20").unwrap()["hard"], 20);
        assert!(ulimit("nofile=30:20").is_err());
        assert_eq!(
            parse_device("/dev/null:/dev/x:r").unwrap(),
            ("/dev/null".into(), "/dev/x".into(), "r".into())
        );
        assert_eq!(parse_device("/dev/null:rw").unwrap().2, "rw");
        assert!(parse_device("null").is_err());
    }
}
