//! Isolation as the process inside sees it: capabilities exactly as configured,
//! no_new_privs, seccomp's configured errno, masked and read-only paths, a read-only
//! root, no leaked fds (CVE-2024-21626) and no path back to the runtime binary.

use berth_runtime_tests::Fixture;
use serde_json::json;

/// The `CapXxx:` value of /proc/self/status printed by the container, as a number.
fn cap_field(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;

#[test]
fn capabilities_are_exactly_the_configured_ones() {
    let mut fx = Fixture::new("caps", &["grep", "Cap", "/proc/self/status"]);
    fx.bundle
        .set_capabilities(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE"], &[]);
    let out = fx.run().ok();
    let want = CAP_CHOWN | CAP_NET_BIND_SERVICE;
    assert_eq!(cap_field(&out.stdout, "CapEff"), want, "{out}");
    assert_eq!(cap_field(&out.stdout, "CapPrm"), want, "{out}");
    assert_eq!(cap_field(&out.stdout, "CapBnd"), want, "{out}");
    assert_eq!(
        cap_field(&out.stdout, "CapInh"),
        0,
        "inheritable granted by surprise: {out}"
    );
    assert_eq!(cap_field(&out.stdout, "CapAmb"), 0, "{out}");
}

#[test]
fn inheritable_and_ambient_capabilities_when_asked() {
    let mut fx = Fixture::new("capamb", &["grep", "Cap", "/proc/self/status"]);
    fx.bundle.set_capabilities(&["CAP_KILL"], &["CAP_KILL"]);
    fx.bundle.spec["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
    let out = fx.run().ok();
    assert_eq!(cap_field(&out.stdout, "CapInh"), CAP_KILL, "{out}");
    assert_eq!(cap_field(&out.stdout, "CapAmb"), CAP_KILL, "{out}");
    assert_eq!(cap_field(&out.stdout, "CapEff"), CAP_KILL, "{out}");
}

#[test]
fn no_new_privileges_is_set() {
    let fx = Fixture::new("nnp", &["grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(fx.run().ok().stdout.split_whitespace().nth(1), Some("1"));
}

#[test]
fn no_new_privileges_off_when_not_asked() {
    let mut fx = Fixture::new("nonnp", &["grep", "NoNewPrivs", "/proc/self/status"]);
    fx.bundle.spec["process"]["noNewPrivileges"] = json!(false);
    assert_eq!(fx.run().ok().stdout.split_whitespace().nth(1), Some("0"));
}

#[test]
fn seccomp_rule_returns_the_configured_errno() {
    let mut fx = Fixture::new(
        "seccomp",
        &[
            "sh",
            "-c",
            "mkdir /tmp/x; echo status=$?; touch /tmp/y && echo touched",
        ],
    );
    fx.bundle.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
    });
    let out = fx.run().ok();
    assert!(
        out.stderr.contains("Function not implemented"),
        "mkdir did not get ENOSYS: {out}"
    );
    assert!(out.stdout.contains("status=1"), "{out}");
    assert!(
        out.stdout.contains("touched"),
        "the filter blocked more than mkdir: {out}"
    );
    assert!(!fx.bundle.rootfs().join("tmp/x").exists());
}

#[test]
fn seccomp_default_errno_is_eperm() {
    let mut fx = Fixture::new("seccompeperm", &["sh", "-c", "mkdir /tmp/x"]);
    fx.bundle.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    });
    let out = fx.run().failed();
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
}

#[test]
fn masked_paths_are_empty() {
    // /proc/kcore is absent on some kernels (this VM's): mask files the host really has.
    assert!(std::fs::read_to_string("/proc/timer_list").map_or(0, |s| s.len()) > 0);
    assert!(std::fs::read_dir("/sys/firmware").map_or(0, |d| d.count()) > 0);
    let fx = Fixture::new(
        "masked",
        &[
            "sh",
            "-c",
            "wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l",
        ],
    );
    let out = fx.run().ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "0"],
        "/proc/timer_list or /sys/firmware not masked: {out}"
    );
}

#[test]
fn readonly_paths_refuse_writes() {
    let fx = Fixture::new(
        "ropaths",
        &["sh", "-c", "echo x > /proc/sys/kernel/domainname"],
    );
    let out = fx.run().failed();
    assert!(out.stderr.contains("Read-only file system"), "{out}");
}

#[test]
fn readonly_root_refuses_writes() {
    let mut fx = Fixture::new("roroot", &["touch", "/x"]);
    fx.bundle.spec["root"]["readonly"] = json!(true);
    let out = fx.run().failed();
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!fx.bundle.rootfs().join("x").exists());
}

#[test]
fn no_fds_leak_into_the_container() {
    // CVE-2024-21626: only stdio (and ls's own directory fd) may be open, cwd is inside.
    let fx = Fixture::new(
        "fdleak",
        &["sh", "-c", "ls /proc/self/fd; readlink /proc/self/cwd"],
    );
    let out = fx.run().ok();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    let cwd = lines.pop().unwrap();
    assert_eq!(cwd, "/", "cwd escapes the container: {out}");
    let fds: Vec<u32> = lines.iter().map(|l| l.trim().parse().unwrap()).collect();
    assert!(fds.iter().all(|fd| *fd <= 3), "leaked fds: {fds:?}");
}

#[test]
fn exec_process_cannot_reach_the_runtime_binary() {
    let fx = Fixture::new("procexe", &["sleep", "100"]);
    fx.run_detached();
    let out = fx
        .exec_in(
            &[],
            &[
                "sh",
                "-c",
                "readlink /proc/self/exe; ls /proc/self/fd; readlink /proc/self/cwd",
            ],
        )
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"/bin/busybox"), "{out}");
    assert_eq!(lines.last(), Some(&"/"), "{out}");
    let fds: Vec<u32> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(fds.iter().all(|fd| *fd <= 3), "exec leaked fds: {fds:?}");
}

/// A capability name the runtime does not know is ignored with a warning, as runc does (a
/// containerd newer than the runtime may list one for a privileged pod); the known ones apply.
#[test]
fn unknown_capability_names_are_ignored_with_a_warning() {
    let mut fx = Fixture::new("capunknown", &["grep", "CapEff", "/proc/self/status"]);
    fx.bundle
        .set_capabilities(&["CAP_KILL", "CAP_FUTURE_THING"], &[]);
    let out = fx.run().ok();
    assert_eq!(out.stdout.trim(), "CapEff:\t0000000000000020", "{out}");
    assert!(out.stderr.contains("CAP_FUTURE_THING"), "no warning: {out}");
}
