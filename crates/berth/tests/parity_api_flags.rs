//! The real docker CLI against `berth serve` with the cgroup, block I/O, annotation and address
//! flags and the local driver's volume options: the Engine API's HostConfig fields
//! (CgroupParent, CgroupnsMode, CpuRealtime*, BlkioDevice*, MemorySwappiness, Annotations),
//! EndpointSettings' MacAddress and `DriverOpts` reach the container, proven from inside it.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/service.rs"]
mod service;

use fixture::{Sandbox, IMAGE};
use service::Service;

#[test]
fn docker_cli_flags_reach_the_container_through_the_api() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let parent = format!("berth-api-test-{}", std::process::id());
    let out = svc.docker_ok(&[
        "run",
        "--rm",
        "--cgroup-parent",
        &format!("/{parent}"),
        "--cgroupns",
        "host",
        "--memory-swappiness",
        "9",
        "--cpu-rt-period",
        "100000",
        "--cpu-rt-runtime",
        "0",
        "--device-read-bps",
        "/dev/loop0:1mb",
        "--annotation",
        "org.example.k=v",
        "--mac-address",
        "92:d0:c6:0a:29:36",
        IMAGE,
        "sh",
        "-c",
        "grep ':memory:' /proc/self/cgroup; cat /sys/class/net/eth0/address \
         /sys/fs/cgroup/memory/memory.swappiness /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains(&format!(":memory:/{parent}/berth-")),
        "the host's cgroup namespace shows the parent: {out}"
    );
    assert_eq!(lines[1], "92:d0:c6:0a:29:36", "{out}");
    assert_eq!(lines[2], "9", "{out}");
    assert!(lines[3].ends_with(" 1048576"), "{out}");
    // Made through the API, seen by berth's own inspect.
    let id = svc.docker_ok(&[
        "create",
        "--annotation",
        "org.example.k=v",
        "--memory-swappiness",
        "0",
        IMAGE,
        "true",
    ]);
    let hc = &sb.inspect(id.trim())["HostConfig"];
    assert_eq!(hc["Annotations"], serde_json::json!({"org.example.k": "v"}));
    assert_eq!(hc["MemorySwappiness"], 0);
    svc.docker_ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=32m",
        "apitv",
    ]);
    let out = svc.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "apitv:/data",
        IMAGE,
        "grep",
        " /data ",
        "/proc/mounts",
    ]);
    assert!(
        out.contains("tmpfs") && out.contains("size=32768k"),
        "{out}"
    );
    let refused = svc.docker(&[
        "volume",
        "create",
        "--opt",
        "type=nfs",
        "--opt",
        "device=:/x",
    ]);
    assert!(!refused.status.success());
    assert!(refused.stderr.contains("nfs"), "{}", refused.stderr);
    sb.ok(&["rm", "-f", id.trim()]);
    sb.ok(&["volume", "rm", "apitv"]);
    sb.remove_all_and_assert_clean();
    // The runtime removes the parents it made; whatever a failure left goes here.
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(e.path().join(&parent));
    }
    let left: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(&parent))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// HostConfig fields the docker CLI sends that berth once dropped without a word (OomScoreAdj,
/// CpusetMems) reach the container; those it cannot serve are refused by name; and values the
/// kernel would refuse only at the start are a 400 at create, leaving no container behind.
#[test]
fn host_config_fields_are_applied_refused_by_name_or_checked_at_create() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let out = svc.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--oom-score-adj",
        "300",
        "--cpuset-mems",
        "0",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/self/oom_score_adj /sys/fs/cgroup/cpuset/cpuset.mems",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["300", "0"],
        "{out}"
    );
    for (flag, value, said) in [
        ("--gpus", "all", "DeviceRequests"),
        ("--storage-opt", "size=1G", "StorageOpt"),
        ("--volume-driver", "nfs", "VolumeDriver"),
        (
            "--oom-score-adj",
            "5000",
            "range for oom score adj is [-1000, 1000]",
        ),
        ("--cpuset-cpus", "99", "Requested CPUs are not available"),
    ] {
        let o = svc.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            flag,
            value,
            IMAGE,
            "true",
        ]);
        assert!(!o.status.success(), "{flag} {value}");
        assert!(o.stderr.contains(said), "{flag} {value}: {}", o.stderr);
    }
    // Each a field of the create body beside Image and Cmd.
    for (field, said) in [
        (
            r#""HostConfig":{"Tmpfs":{"t":""}}"#,
            "must be an absolute path",
        ),
        (r#""HostConfig":{"Tmpfs":{"/t":"size=abc"}}"#, "not a size"),
        (
            r#""HostConfig":{"Devices":[{"PathOnHost":"/etc/passwd","PathInContainer":"/dev/x"}]}"#,
            "not a device node",
        ),
        (
            r#""HostConfig":{"Sysctls":{"kernel.hostname":"x"}}"#,
            "is not allowed",
        ),
        (
            r#""HostConfig":{"ShmSize":-1}"#,
            "SHM size can not be less than 0",
        ),
        (
            r#""HostConfig":{"OomScoreAdj":99999999999}"#,
            "range for oom score adj",
        ),
        (r#""User":"99999999999""#, "out of range"),
        (r#""Env":["=x"]"#, "invalid environment variable"),
        (r#""Hostname":"a\nb""#, "whitespace or control characters"),
    ] {
        let body = format!(r#"{{"Image":"{IMAGE}","Cmd":["true"],{field}}}"#);
        let (code, text) = svc.request("POST", "/v1.45/containers/create", Some(&body));
        assert_eq!(code, 400, "{field}: {text}");
        assert!(text.contains(said), "{field}: {text}");
    }
    assert_eq!(
        sb.ok(&["ps", "-aq"]).trim(),
        "",
        "a refused create leaves nothing"
    );
    sb.remove_all_and_assert_clean();
}
