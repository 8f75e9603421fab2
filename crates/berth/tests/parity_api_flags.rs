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
