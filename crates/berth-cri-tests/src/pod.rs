//! Pod and container configs as the kubelet sends them for a plain pod: the pod's network and
//! IPC shared by its containers (pid per container), `RuntimeDefault` seccomp, a cgroup parent
//! made by the caller, CRI log files under the pod's log directory.

use k8s_cri::v1::*;

/// CRI enum values, named.
pub const NS_POD: i32 = NamespaceMode::Pod as i32;
pub const NS_CONTAINER: i32 = NamespaceMode::Container as i32;
pub const RUNTIME_DEFAULT: i32 = security_profile::ProfileType::RuntimeDefault as i32;
pub const CONTAINER_RUNNING: i32 = ContainerState::ContainerRunning as i32;
pub const CONTAINER_EXITED: i32 = ContainerState::ContainerExited as i32;
pub const SANDBOX_READY: i32 = PodSandboxState::SandboxReady as i32;

fn namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NS_POD,
        pid: NS_CONTAINER,
        ipc: NS_POD,
        ..Default::default()
    }
}

fn runtime_default() -> SecurityProfile {
    SecurityProfile {
        profile_type: RUNTIME_DEFAULT,
        ..Default::default()
    }
}

/// A pod named `name` (uid `uid`) in the `berth-cri` namespace.
pub fn sandbox_config(
    name: &str,
    uid: &str,
    log_dir: &str,
    cgroup_parent: &str,
) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: "berth-cri".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.into(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                seccomp: Some(runtime_default()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container `name` of `image` running `command`, limited to `memory` bytes (0: no limit).
pub fn container_config(name: &str, image: &str, command: &[&str], memory: i64) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_shares: 2,
                memory_limit_in_bytes: memory,
                oom_score_adj: 1000,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                seccomp: Some(runtime_default()),
                masked_paths: MASKED.iter().map(|s| s.to_string()).collect(),
                readonly_paths: READONLY.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// The security context of a container config made by [`container_config`].
pub fn security(cfg: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    cfg.linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .expect("a container_config has a security context")
}

/// The kubelet's default masked and read-only paths (it sends them with every container).
const MASKED: &[&str] = &[
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
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
