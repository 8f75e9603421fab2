//! cgroup v2 behaviour against a cgroupfs tree laid out in a temp dir: what `create`, `apply`,
//! `freeze`, `stats` and `destroy` write and read. No root or real cgroup2 needed.

mod common;

use berth_cgroups::{Cgroup, Hierarchy};
use common::{populate, read, TempDir};
use oci_spec::runtime::LinuxResources;

const LEAF_FILES: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.freeze", "0"),
    ("cgroup.events", "populated 0\nfrozen 0\n"),
    ("memory.max", "max"),
    ("memory.swap.max", "max"),
    ("memory.low", "0"),
    ("memory.high", "max"),
    ("cpu.weight", "100"),
    ("cpu.max", "max 100000"),
    ("pids.max", "max"),
    ("io.weight", "default 100"),
    ("io.max", ""),
    ("cpuset.cpus", ""),
    ("cpuset.mems", ""),
    ("hugetlb.2MB.max", "max"),
];

fn fake_root() -> TempDir {
    let t = TempDir::new();
    populate(
        t.path(),
        &[
            ("cgroup.controllers", "cpuset cpu io memory hugetlb pids"),
            ("cgroup.subtree_control", ""),
        ],
    );
    t
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn create_enables_controllers_in_parent_and_destroy_removes_what_it_made() {
    let root = fake_root();
    let cg = Cgroup::new(&Hierarchy::v2_at(root.path()), "/berth/abc").unwrap();
    cg.create().unwrap();
    assert!(root.path().join("berth/abc").is_dir());
    assert_eq!(
        read(root.path(), "cgroup.subtree_control"),
        "+cpuset +cpu +io +memory +hugetlb +pids"
    );
    assert_eq!(cg.paths(), vec![root.path().join("berth/abc")]);

    // The state file keeps what was created, so a later `delete` removes the parent too.
    let saved = serde_json::to_string(&cg).unwrap();
    let restored: Cgroup = serde_json::from_str(&saved).unwrap();
    restored.destroy().unwrap();
    assert!(!root.path().join("berth").exists());
    restored.destroy().unwrap(); // already gone: fine
}

#[test]
fn apply_writes_converted_values_to_v2_files() {
    let root = fake_root();
    let leaf = root.path().join("c1");
    populate(&leaf, LEAF_FILES);
    let cg = Cgroup::new(&Hierarchy::v2_at(root.path()), "c1").unwrap();
    cg.create().unwrap();
    cg.apply(&resources(
        r#"{
        "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432, "kernel": 1000, "swappiness": 10, "disableOOMKiller": true},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500, "leafWeight": 300,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "50000000"}
    }"#,
    ))
    .unwrap();
    assert_eq!(read(&leaf, "memory.max"), "67108864");
    assert_eq!(
        read(&leaf, "memory.swap.max"),
        "67108864",
        "OCI swap is memory+swap"
    );
    assert_eq!(read(&leaf, "memory.low"), "33554432");
    assert_eq!(read(&leaf, "cpu.weight"), "39");
    assert_eq!(read(&leaf, "cpu.max"), "50000 100000");
    assert_eq!(read(&leaf, "pids.max"), "64");
    assert_eq!(
        read(&leaf, "io.weight"),
        format!("default {}", 1 + 490 * 9999 / 990)
    );
    assert_eq!(read(&leaf, "io.max"), "8:0 rbps=1048576 wiops=100");
    assert_eq!(read(&leaf, "cpuset.cpus"), "0-1");
    assert_eq!(read(&leaf, "cpuset.mems"), "0");
    assert_eq!(read(&leaf, "hugetlb.2MB.max"), "4194304");
    assert_eq!(read(&leaf, "memory.high"), "50000000");
}

#[test]
fn unlimited_values_become_max() {
    let root = fake_root();
    let leaf = root.path().join("c1");
    populate(&leaf, LEAF_FILES);
    let cg = Cgroup::new(&Hierarchy::v2_at(root.path()), "c1").unwrap();
    cg.apply(&resources(r#"{"memory": {"limit": -1, "swap": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1, "period": 20000}}"#))
        .unwrap();
    assert_eq!(read(&leaf, "memory.max"), "max");
    assert_eq!(read(&leaf, "memory.swap.max"), "max");
    assert_eq!(read(&leaf, "pids.max"), "max");
    assert_eq!(read(&leaf, "cpu.max"), "max 20000");
}

#[test]
fn swap_equal_to_the_limit_needs_no_swap_accounting() {
    let root = fake_root();
    let leaf = root.path().join("c1");
    let without_swap: Vec<_> = LEAF_FILES
        .iter()
        .copied()
        .filter(|(f, _)| *f != "memory.swap.max")
        .collect();
    populate(&leaf, &without_swap);
    let cg = Cgroup::new(&Hierarchy::v2_at(root.path()), "c1").unwrap();
    cg.apply(&resources(
        r#"{"memory": {"limit": 1048576, "swap": 1048576}}"#,
    ))
    .unwrap();
    assert_eq!(read(&leaf, "memory.max"), "1048576");
    assert!(!leaf.join("memory.swap.max").exists());
    let e = cg
        .apply(&resources(
            r#"{"memory": {"limit": 1048576, "swap": 2097152}}"#,
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory.swap.max"), "{e}");
}

#[test]
fn bad_values_are_refused_with_a_named_cause() {
    let root = fake_root();
    let leaf = root.path().join("c1");
    populate(&leaf, &[("cgroup.procs", "")]);
    let cg = Cgroup::new(&Hierarchy::v2_at(root.path()), "c1").unwrap();
    let err = |json: &str| cg.apply(&resources(json)).unwrap_err().to_string();
    let e = err(r#"{"memory": {"limit": 1000}}"#);
    assert!(
        e.starts_with(r#"cgroup memory: write memory.max = "1000": No such file"#),
        "{e}"
    );
    assert!(err(r#"{"memory": {"swap": 1000}}"#).contains("needs a memory limit"));
    assert!(err(r#"{"unified": {"../../etc/passwd": "x"}}"#).contains("not a cgroup file name"));
    assert!(err(r#"{"network": {"classID": 1}}"#).contains("require cgroup v1"));
    assert!(err(r#"{"cpu": {"realtimeRuntime": 1000}}"#).contains("require cgroup v1"));
    assert!(Cgroup::new(&Hierarchy::v2_at(root.path()), "/a/../../b").is_err());
}

#[test]
fn freeze_waits_for_cgroup_events_frozen() {
    let root = fake_root();
    let leaf = root.path().join("c1");
    populate(&leaf, LEAF_FILES);
    let cg = Cgroup::new(&Hierarchy::v2_at(root.path()), "c1").unwrap();
    std::fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    cg.freeze().unwrap();
    assert_eq!(read(&leaf, "cgroup.freeze"), "1");
    assert!(cg.is_frozen().unwrap());
    std::fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    cg.thaw().unwrap();
    assert_eq!(read(&leaf, "cgroup.freeze"), "0");
    assert!(!cg.is_frozen().unwrap());
}

#[test]
fn stats_and_procs_read_v2_files() {
    let root = fake_root();
    let leaf = root.path().join("c1");
    populate(&leaf, &[
        ("cgroup.procs", "10\n11\n"),
        ("cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\nnr_throttled 1\nthrottled_usec 4\n"),
        ("memory.current", "4096"),
        ("memory.max", "max"),
        ("memory.stat", "anon 1024\nfile 2048\n"),
        ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
        ("pids.current", "2"),
        ("pids.max", "max"),
        ("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"),
    ]);
    populate(&leaf.join("sub"), &[("cgroup.procs", "12\n")]);
    let cg = Cgroup::new(&Hierarchy::v2_at(root.path()), "c1").unwrap();
    assert_eq!(
        cg.procs().unwrap(),
        vec![10, 11, 12],
        "child cgroups included"
    );
    let s = cg.stats().unwrap();
    assert_eq!(
        (
            s.cpu.usage_total_ns,
            s.cpu.usage_user_ns,
            s.cpu.throttled_time_ns
        ),
        (5000, 3000, 4000)
    );
    assert_eq!(
        (
            s.memory.usage,
            s.memory.limit,
            s.memory.rss,
            s.memory.cache,
            s.memory.failcnt
        ),
        (4096, u64::MAX, 1024, 2048, 2)
    );
    assert_eq!((s.pids.current, s.pids.limit), (2, None));
    assert_eq!(s.blkio_bytes[1].value, 200);
    assert_eq!(s.oom_kill, 1);
    assert_eq!(cg.oom_kill_count().unwrap(), 1);
    assert!(serde_json::to_string(&s)
        .unwrap()
        .contains("\"oom_kill\":1"));
    assert!(cg.v1_mounts().is_empty());
}
