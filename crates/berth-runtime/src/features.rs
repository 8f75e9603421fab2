//! The runtime-spec 1.1 "features" document printed by `berth-runtime features`: which spec
//! versions, hooks, mount options, namespaces, capabilities and seccomp names berth accepts.
//! It only describes what berth was built to support; it never probes the host and never
//! claims a feature berth does not implement (idmap mounts, AppArmor, SELinux, Intel RDT).

use serde_json::{json, Value};

/// Annotation carrying berth's version, in the place runc reports its own.
pub const VERSION_ANNOTATION: &str = "io.github.berth.version";

/// Hook names in lifecycle order (`prestart` is deprecated but still run).
const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// mount(2) flags, propagation types and mount_setattr(2) recursive attributes, sorted.
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// Namespace types, sorted.
const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Every capability up to CAP_CHECKPOINT_RESTORE (40), in kernel number order: index = number.
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Seccomp actions, sorted.
const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// Seccomp argument comparison operators, sorted.
const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Seccomp architectures berth can compile filters for, sorted.
const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// Seccomp filter flags berth knows how to pass to seccomp(2).
const SECCOMP_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
];

/// The features document, shaped like `runc features` output (runtime-spec `features.md`).
pub fn features() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": HOOKS,
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": CAPABILITIES,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": SECCOMP_ARCHS,
                "knownFlags": SECCOMP_FLAGS,
                "supportedFlags": SECCOMP_FLAGS
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": { VERSION_ANNOTATION: env!("CARGO_PKG_VERSION") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Features;

    #[test]
    fn features_document_parses_as_runtime_spec_features() {
        let parsed: Features = serde_json::from_value(features()).expect("features must parse");
        assert_eq!(parsed.oci_version_min(), "1.0.0");
        assert_eq!(parsed.oci_version_max(), "1.1.0");
        assert_eq!(parsed.hooks().as_ref().unwrap().len(), 6);
        let linux = parsed.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 8);
        let seccomp = linux.seccomp().as_ref().unwrap();
        assert_eq!(seccomp.actions().as_ref().unwrap().len(), 9);
        assert_eq!(seccomp.operators().as_ref().unwrap().len(), 7);
        let annotations = parsed.annotations().as_ref().unwrap();
        assert_eq!(
            annotations.get(VERSION_ANNOTATION).map(String::as_str),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn features_claim_no_unimplemented_security_modules_or_idmap() {
        let doc = features();
        let linux = &doc["linux"];
        for key in ["apparmor", "selinux", "intelRdt"] {
            assert_eq!(linux[key]["enabled"], false, "{key}");
        }
        assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], false);
        let options = doc["mountOptions"].as_array().unwrap();
        assert!(!options.iter().any(|o| o == "idmap" || o == "ridmap"));
        assert_eq!(linux["cgroup"]["systemd"], false);
    }

    #[test]
    fn sorted_lists_are_sorted_and_unique() {
        for list in [
            MOUNT_OPTIONS,
            NAMESPACES,
            SECCOMP_ACTIONS,
            SECCOMP_OPERATORS,
            SECCOMP_ARCHS,
        ] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
        assert_eq!(CAPABILITIES.len(), 41);
    }
}
