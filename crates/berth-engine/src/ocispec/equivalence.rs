//! Temporary proof that the typed spec is the `json!` one it replaces (`legacy.rs`): for a matrix
//! of flags covering every run flag, both give the same error sentence, or the same config.json
//! up to what means nothing (object key order; capability order, a set in oci-spec), and the
//! old JSON read back as the runtime reads it is exactly the new `Spec`. Goes with legacy.rs.

use super::{legacy, spec, SpecInput};
use crate::options::RunOptions;
use crate::record::MountRecord;
use crate::user::ResolvedUser;
use oci_spec::runtime::Spec;
use serde_json::Value;
use std::path::Path;

/// How a case's two outputs must compare.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// The same config.json and the same runtime view.
    SameSpec,
    /// The same error sentence.
    SameError,
    /// The same runtime view: the old JSON carried fields oci-spec does not have (a Docker-style
    /// seccomp profile's `comment`, `archMap`…), which the runtime never read.
    SameRuntimeView,
    /// The old JSON was written but the runtime would have refused it; the new spec refuses it
    /// up front with this sentence.
    RefusedEarlier(&'static str),
}

struct Case {
    name: String,
    opts: RunOptions,
    mounts: Vec<MountRecord>,
    tmpfs: Vec<(String, String)>,
    expect: Expect,
}

fn case(name: &str, f: impl FnOnce(&mut RunOptions)) -> Case {
    let mut opts = RunOptions::default();
    f(&mut opts);
    Case {
        name: name.into(),
        opts,
        mounts: Vec::new(),
        tmpfs: Vec::new(),
        expect: Expect::SameSpec,
    }
}

/// A case both must refuse with the same sentence.
fn refused(name: &str, f: impl FnOnce(&mut RunOptions)) -> Case {
    Case {
        expect: Expect::SameError,
        ..case(name, f)
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn bind(source: &str, destination: &str, rw: bool) -> MountRecord {
    MountRecord {
        kind: "bind".into(),
        source: source.into(),
        destination: destination.into(),
        rw,
        ..MountRecord::default()
    }
}

/// Profiles for `--security-opt seccomp=FILE`, in a directory removed on drop.
struct Profiles {
    dir: tempfile::TempDir,
}

impl Profiles {
    fn new() -> Profiles {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "oci.json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                  "errnoRet": 1},
                 {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        write(
            "docker.json",
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "comment": "Docker-style",
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}],
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                  "comment": "", "includes": {}, "excludes": {}}]}"#,
        );
        write("broken.json", "{\"defaultAction\": ");
        write("not-a-profile.json", r#"{"syscalls": "none"}"#);
        Profiles { dir }
    }

    fn opt(&self, name: &str) -> String {
        format!("seccomp={}", self.dir.path().join(name).display())
    }
}

fn matrix(p: &Profiles) -> Vec<Case> {
    let mut cases = vec![
        case("defaults", |_| {}),
        case("privileged", |o| o.privileged = true),
        case("cap add and drop, any case", |o| {
            o.cap_add = strings(&["SYS_ADMIN", "cap_net_admin"]);
            o.cap_drop = strings(&["net_raw", "CAP_CHOWN"]);
        }),
        case("cap add of a default cap", |o| {
            o.cap_add = strings(&["kill"])
        }),
        case("cap drop ALL", |o| o.cap_drop = strings(&["ALL"])),
        case("cap drop all then add", |o| {
            o.cap_drop = strings(&["all"]);
            o.cap_add = strings(&["chown", "SYS_PTRACE"]);
        }),
        case("cap add ALL", |o| o.cap_add = strings(&["ALL"])),
        case("cap add all beats drop all", |o| {
            o.cap_add = strings(&["all"]);
            o.cap_drop = strings(&["ALL", "chown"]);
        }),
        refused("cap add unknown", |o| o.cap_add = strings(&["CAP_BOGUS"])),
        refused("cap drop unknown", |o| o.cap_drop = strings(&["bogus"])),
        refused("cap drop unknown with ALL", |o| {
            o.cap_drop = strings(&["ALL", "bogus"])
        }),
        refused("cap add unknown before ALL", |o| {
            o.cap_add = strings(&["bogus", "ALL"])
        }),
        case("seccomp unconfined", |o| {
            o.security_opts = strings(&["seccomp=unconfined"])
        }),
        case("seccomp:unconfined", |o| {
            o.security_opts = strings(&["seccomp:unconfined"])
        }),
        case("seccomp file", |o| {
            o.security_opts = vec![p.opt("oci.json")]
        }),
        case("seccomp file then unconfined", |o| {
            o.security_opts = vec![p.opt("oci.json"), "seccomp=unconfined".into()]
        }),
        refused("seccomp file missing", |o| {
            o.security_opts = vec![p.opt("missing.json")]
        }),
        refused("seccomp file not json", |o| {
            o.security_opts = vec![p.opt("broken.json")]
        }),
        case("privileged with a seccomp file", |o| {
            o.privileged = true;
            o.security_opts = vec![p.opt("oci.json")];
        }),
        refused("privileged with a missing seccomp file", |o| {
            o.privileged = true;
            o.security_opts = vec![p.opt("missing.json")];
        }),
        case("no-new-privileges=false", |o| {
            o.security_opts = strings(&["no-new-privileges=false"])
        }),
        case("no-new-privileges:false then bare", |o| {
            o.security_opts = strings(&["no-new-privileges:false", "no-new-privileges"])
        }),
        case("no-new-privileges=true", |o| {
            o.security_opts = strings(&["no-new-privileges=false", "no-new-privileges=true"])
        }),
        case("apparmor and label accepted", |o| {
            o.security_opts = strings(&["apparmor=unconfined", "label:disable"])
        }),
        refused("security opt unknown", |o| {
            o.security_opts = strings(&["bogus"])
        }),
        refused("security opt unknown key", |o| {
            o.security_opts = strings(&["selinux=x"])
        }),
        case("ulimits", |o| {
            o.ulimits = strings(&["nproc=5", "core=-1", "memlock=-1:-1", "nofile=10:20"])
        }),
        case("ulimit repeated", |o| {
            o.ulimits = strings(&["NOFILE=10", "stack=1:2", "nofile=30:40", "stack=3"])
        }),
        refused("ulimit without value", |o| o.ulimits = strings(&["nofile"])),
        refused("ulimit not a number", |o| {
            o.ulimits = strings(&["nofile=a:2"])
        }),
        refused("ulimit hard not a number", |o| {
            o.ulimits = strings(&["nofile=1:"])
        }),
        refused("ulimit soft above hard", |o| {
            o.ulimits = strings(&["nofile=30:20"])
        }),
        case("device", |o| o.devices = strings(&["/dev/null"])),
        case("device renamed with access", |o| {
            o.devices = strings(&["/dev/null:/dev/x:r", "/dev/zero:rw", "/dev/full:/dev/f"])
        }),
        case("device privileged", |o| {
            o.privileged = true;
            o.devices = strings(&["/dev/null:/dev/n:rm"]);
        }),
        refused("device relative", |o| o.devices = strings(&["null"])),
        refused("device four parts", |o| {
            o.devices = strings(&["/dev/null:/a:r:w"])
        }),
        refused("device bad access", |o| {
            o.devices = strings(&["/dev/null:/dev/x:rwx"])
        }),
        refused("device empty", |o| o.devices = strings(&[""])),
        refused("device missing", |o| {
            o.devices = strings(&["/dev/berth-none"])
        }),
        refused("device not a node", |o| o.devices = strings(&["/"])),
        case("memory", |o| o.memory = Some(64 << 20)),
        case("memory least", |o| o.memory = Some(6 << 20)),
        case("memory and swap", |o| {
            o.memory = Some(64 << 20);
            o.memory_swap = Some(128 << 20);
        }),
        case("memory and equal swap", |o| {
            o.memory = Some(64 << 20);
            o.memory_swap = Some(64 << 20);
        }),
        case("memory and unlimited swap", |o| {
            o.memory = Some(64 << 20);
            o.memory_swap = Some(-1);
        }),
        refused("memory too small", |o| o.memory = Some(1 << 20)),
        refused("swap without memory", |o| o.memory_swap = Some(128 << 20)),
        case("unlimited swap without memory", |o| {
            o.memory_swap = Some(-1)
        }),
        refused("swap below memory", |o| {
            o.memory = Some(64 << 20);
            o.memory_swap = Some(32 << 20);
        }),
        refused("too small beats swap below", |o| {
            o.memory = Some(1 << 20);
            o.memory_swap = Some(1);
        }),
        case("cpus", |o| o.cpus = Some(0.5)),
        case("cpus fraction", |o| o.cpus = Some(0.01)),
        refused("cpus zero", |o| o.cpus = Some(0.0)),
        refused("cpus negative", |o| o.cpus = Some(-1.0)),
        refused("cpus too many", |o| o.cpus = Some(100_000.0)),
        case("cpu shares", |o| o.cpu_shares = Some(512)),
        case("cpu shares zero", |o| o.cpu_shares = Some(0)),
        case("cpuset", |o| o.cpuset_cpus = Some("0".into())),
        case("cpus shares and cpuset", |o| {
            o.cpus = Some(1.0);
            o.cpu_shares = Some(2048);
            o.cpuset_cpus = Some("0-1".into());
        }),
        case("pids limit", |o| o.pids_limit = Some(100)),
        case("pids limit zero", |o| o.pids_limit = Some(0)),
        case("pids limit negative", |o| o.pids_limit = Some(-5)),
        case("blkio weight", |o| o.blkio_weight = Some(500)),
        case("blkio weight least", |o| o.blkio_weight = Some(10)),
        case("blkio weight most", |o| o.blkio_weight = Some(1000)),
        refused("blkio weight too small", |o| o.blkio_weight = Some(5)),
        refused("blkio weight too large", |o| o.blkio_weight = Some(1001)),
        case("read-only root", |o| o.read_only = true),
        case("init", |o| o.init = true),
        case("tty", |o| o.tty = true),
        case("interactive tty", |o| {
            o.tty = true;
            o.interactive = true;
        }),
        case("network none", |o| o.network = "none".into()),
        case("network host", |o| o.network = "host".into()),
        case("network default", |o| o.network = "default".into()),
        case("network bridge", |o| o.network = "bridge".into()),
        refused("network unknown", |o| o.network = "mynet".into()),
        case("shm size", |o| o.shm_size = Some(1 << 30)),
        case("shm size zero", |o| o.shm_size = Some(0)),
        case("privileged with everything", |o| {
            o.privileged = true;
            o.cap_drop = strings(&["ALL"]);
            o.read_only = true;
            o.network = "host".into();
        }),
        case("kitchen sink", |o| {
            o.cap_add = strings(&["NET_ADMIN", "sys_nice"]);
            o.cap_drop = strings(&["MKNOD"]);
            o.security_opts = strings(&["no-new-privileges=false", "label=disable"]);
            o.ulimits = strings(&["nofile=100:200", "nproc=50"]);
            o.devices = strings(&["/dev/null:/dev/mynull:rw"]);
            o.memory = Some(256 << 20);
            o.memory_swap = Some(512 << 20);
            o.cpus = Some(1.0);
            o.cpu_shares = Some(256);
            o.cpuset_cpus = Some("0".into());
            o.pids_limit = Some(64);
            o.blkio_weight = Some(300);
            o.read_only = true;
            o.init = true;
            o.tty = true;
            o.network = "none".into();
            o.shm_size = Some(128 << 20);
        }),
        refused("first of several errors", |o| {
            o.cap_add = strings(&["bogus"]);
            o.ulimits = strings(&["nofile"]);
            o.network = "mynet".into();
            o.memory = Some(1);
            o.blkio_weight = Some(1);
        }),
        refused("ulimit error before network error", |o| {
            o.ulimits = strings(&["nofile=x"]);
            o.network = "mynet".into();
        }),
        refused("network error before device error", |o| {
            o.network = "mynet".into();
            o.devices = strings(&["null"]);
        }),
        refused("device error before memory error", |o| {
            o.devices = strings(&["/dev/berth-none"]);
            o.memory = Some(1);
        }),
        refused("memory error before cpus error", |o| {
            o.memory_swap = Some(1);
            o.cpus = Some(0.0);
        }),
        refused("cpus error before blkio error", |o| {
            o.cpus = Some(0.0);
            o.blkio_weight = Some(1);
        }),
    ];
    // Each capability Docker's profile gives syscalls back for.
    for cap in [
        "SYS_ADMIN",
        "SYS_PTRACE",
        "SYS_MODULE",
        "SYS_TIME",
        "SYS_BOOT",
        "SYS_PACCT",
        "SYS_RAWIO",
        "SYS_NICE",
        "SYSLOG",
        "SYS_TTY_CONFIG",
        "DAC_READ_SEARCH",
        "BPF",
        "PERFMON",
    ] {
        cases.push(case(&format!("seccomp with cap {cap}"), |o| {
            o.cap_add = vec![cap.into()]
        }));
    }
    let mut binds = case("binds ro and rw", |_| {});
    binds.mounts = vec![
        bind("/var/lib/berth/volumes/v/_data", "/data", true),
        bind("/srv/config", "/etc/app", false),
    ];
    let mut tmpfs = case("tmpfs with options", |_| {});
    tmpfs.tmpfs = vec![
        ("/run".into(), String::new()),
        ("/tmp".into(), "size=65536k,exec".into()),
        ("/x".into(), ",,mode=1777,".into()),
        ("/m".into(), "nosuid,nodev,size=1024,mode=700".into()),
    ];
    let mut docker_profile = case("seccomp file in Docker's form", |o| {
        o.security_opts = vec![p.opt("docker.json")]
    });
    docker_profile.expect = Expect::SameRuntimeView;
    let mut not_a_profile = case("seccomp file not a profile", |o| {
        o.security_opts = vec![p.opt("not-a-profile.json")]
    });
    not_a_profile.expect = Expect::RefusedEarlier("not-a-profile.json: invalid type");
    let mut unknown_limit = case("ulimit unknown", |o| o.ulimits = strings(&["bogus=1"]));
    unknown_limit.expect =
        Expect::RefusedEarlier(r#"invalid --ulimit "bogus=1": unknown limit "bogus""#);
    cases.extend([binds, tmpfs, docker_profile, not_a_profile, unknown_limit]);
    cases
}

fn input<'a>(c: &'a Case, dir: &'a Path) -> SpecInput<'a> {
    SpecInput {
        opts: &c.opts,
        args: strings(&["/bin/sh", "-c", "echo hi"]),
        env: strings(&["PATH=/usr/bin:/bin", "HOME=/root"]),
        cwd: "/work".into(),
        user: ResolvedUser {
            uid: 1000,
            gid: 100,
            additional_gids: vec![10, 20],
            home: "/home/u".into(),
        },
        hostname: "c0ffee".into(),
        container_dir: dir,
        cgroup_path: "/berth-c0ffee".into(),
        mounts: &c.mounts,
        tmpfs: c.tmpfs.clone(),
    }
}

/// `v` with what means nothing taken out: objects' key order (sorted), and the order of the
/// capability sets (oci-spec keeps them in a HashSet).
fn normalise(mut v: Value) -> Value {
    if let Some(sets) = v.pointer_mut("/process/capabilities") {
        for set in sets
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            if let Some(caps) = set.as_array_mut() {
                caps.sort_by_key(|c| c.as_str().unwrap_or_default().to_string());
            }
        }
    }
    v.sort_all_objects();
    v
}

/// Where `a` and `b` differ, as JSON pointers with both values.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (p, null) = (format!("{path}/{k}"), Value::Null);
                differences(
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    &p,
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (n, (i, j)) in x.iter().zip(y).enumerate() {
                differences(i, j, &format!("{path}/{n}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            let only = |a: &[Value], b: &[Value]| {
                let v = a.iter().filter(|v| !b.contains(v)).map(Value::to_string);
                v.collect::<Vec<_>>().join(",")
            };
            out.push(format!(
                "{path}: {} entries old, {} new; only old [{}], only new [{}]",
                x.len(),
                y.len(),
                only(x, y),
                only(y, x)
            ));
        }
        _ if a != b => out.push(format!("{path}: old {a}, new {b}")),
        _ => {}
    }
}

/// Checks one case; returns what differs (empty when the case holds).
fn compare(c: &Case, dir: &Path) -> Vec<String> {
    let i = input(c, dir);
    let (old, new) = (legacy::spec(&i), spec(&i));
    let mut out = Vec::new();
    match (old, new, c.expect) {
        (Err(o), Err(n), Expect::SameError) if o == n.to_string() => {}
        (Ok(o), Ok(n), expect) if matches!(expect, Expect::SameSpec | Expect::SameRuntimeView) => {
            let new_json = serde_json::to_value(&n).expect("a spec serialises");
            if expect == Expect::SameSpec {
                differences(&normalise(o.clone()), &normalise(new_json), "", &mut out);
            }
            match serde_json::from_value::<Spec>(o) {
                Ok(runtime_view) if runtime_view == n => {}
                Ok(_) => out.push("the runtime reads the old JSON differently".into()),
                Err(e) => out.push(format!("the runtime could not read the old JSON: {e}")),
            }
        }
        (Ok(o), Err(n), Expect::RefusedEarlier(want)) if n.to_string().contains(want) => {
            if let Ok(s) = serde_json::from_value::<Spec>(o) {
                out.push(format!("the runtime would have read the old JSON: {s:?}"));
            }
        }
        (o, n, _) => out.push(format!("old {o:?}, new {n:?}")),
    }
    out
}

#[test]
fn typed_spec_equals_json_spec_for_every_run_flag() {
    let profiles = Profiles::new();
    let dir = Path::new("/var/lib/berth/containers/c0ffee");
    let cases = matrix(&profiles);
    let failures: Vec<String> = cases
        .iter()
        .map(|c| (c, compare(c, dir)))
        .filter(|(_, d)| !d.is_empty())
        .map(|(c, d)| format!("{}:\n  {}", c.name, d.join("\n  ")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() > 100, "the matrix shrank: {}", cases.len());
}

#[test]
fn the_comparison_catches_a_real_difference() {
    // The check above must fail on a meaningful change: a dropped limit, an extra capability.
    let profiles = Profiles::new();
    let c = &matrix(&profiles)[0];
    let dir = Path::new("/c");
    let mut new = serde_json::to_value(spec(&input(c, dir)).unwrap()).unwrap();
    let old = legacy::spec(&input(c, dir)).unwrap();
    new["process"]["rlimits"] = Value::Array(vec![]);
    new["process"]["capabilities"]["effective"]
        .as_array_mut()
        .unwrap()
        .push("CAP_SYS_ADMIN".into());
    let mut out = Vec::new();
    differences(&normalise(old), &normalise(new), "", &mut out);
    assert_eq!(out.len(), 2, "{out:#?}");
}
