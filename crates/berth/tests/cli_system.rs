//! `version`, `info`, `events` (the journal every berth command appends to: history with
//! `--since`/`--until` and filters, and following), `export` (a container's filesystem as a
//! tar, nothing of /proc in it) and `update` (limits of a running container, seen in its cgroup,
//! and of a stopped one, applied at its next start).

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{Sandbox, IMAGE};
use std::io::{BufRead, Read};
use std::time::Duration;

#[test]
fn version_and_info_answer_with_formats() {
    let sb = Sandbox::new();
    let v = sb.ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Client.APIVersion}}",
    ]);
    assert_eq!(v.trim(), format!("{} 1.45", env!("CARGO_PKG_VERSION")));
    assert!(sb.ok(&["version"]).contains("API version:       1.45"));
    let id = sb.run_d(&[IMAGE, "sleep", "30"]);
    let info = sb.ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.Images}} {{.Driver}} {{.DockerRootDir}}",
    ]);
    assert_eq!(
        info.trim(),
        format!("1 1 1 overlay2 {}", sb.b.root.display())
    );
    assert!(sb.ok(&["info"]).contains("Storage Driver: overlay2"));
    let bad = sb.berth(&["info", "--format", "{{.NoSuchKey}}"]);
    assert!(!bad.status.success());
    sb.ok(&["rm", "-f", &id]);
    sb.assert_clean();
}

#[test]
fn events_are_journaled_by_every_command_and_followed() {
    let sb = Sandbox::new();
    let mut follow = sb.b.command(&[
        "events",
        "--filter",
        "container=watched",
        "--format",
        "{{.Action}}",
    ]);
    follow.stdout(std::process::Stdio::piped());
    let mut child = common::Reaped(follow.spawn().expect("berth events"));
    std::thread::sleep(Duration::from_millis(300));
    sb.berth(&[
        "run", "--rm", "--name", "watched", IMAGE, "sh", "-c", "exit 3",
    ]);
    sb.ok(&["run", "--rm", "--name", "other", IMAGE, "true"]);
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    let got: Vec<String> = (0..4)
        .map_while(|_| lines.next().and_then(Result::ok))
        .collect();
    drop(child);
    assert_eq!(got, ["create", "start", "die", "destroy"]);
    let history = sb.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.name}}={{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(history, "watched=3\nother=0\n");
    sb.ok(&["volume", "create", "vol1"]);
    sb.ok(&["tag", IMAGE, "retagged:1"]);
    let kinds = sb.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "type=volume",
        "--filter",
        "type=image",
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    // The sandbox's own import and tag of `bb`, then ours.
    assert_eq!(kinds, "image import\nimage tag\nvolume create\nimage tag\n");
    assert!(sb
        .berth(&["events", "--filter", "colour=red", "--until", "0s"])
        .stderr
        .contains("invalid filter"));
    sb.ok(&["volume", "rm", "vol1"]);
    sb.assert_clean();
}

#[test]
fn export_writes_the_root_filesystem_and_nothing_mounted_in_it() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh("", "echo made > /made-here; sleep 30");
    fixture::wait_until("the file is written", Duration::from_secs(10), || {
        sb.berth(&["exec", &id, "cat", "/made-here"])
            .status
            .success()
    });
    for (when, tar) in [
        ("running", sb.dir().join("running.tar")),
        ("stopped", sb.dir().join("stopped.tar")),
    ] {
        if when == "stopped" {
            sb.ok(&["stop", "-t", "1", &id]);
        }
        sb.ok(&["export", "-o", tar.to_str().unwrap(), &id]);
        let mut names = Vec::new();
        let mut made = String::new();
        let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name.trim_start_matches("./") == "made-here" {
                entry.read_to_string(&mut made).unwrap();
            }
            names.push(name);
        }
        assert_eq!(made, "made\n", "{when}: {names:?}");
        assert!(names.iter().any(|n| n.ends_with("bin/busybox")), "{when}");
        assert!(
            !names
                .iter()
                .any(|n| n.contains("proc/self") || n.contains("proc/1/")),
            "{when}: /proc was archived"
        );
    }
    let to_tty = sb.berth(&["export", &id]);
    assert!(
        to_tty.status.success() && to_tty.stdout.len() > 1024,
        "stdout is a pipe here: the tar goes to it"
    );
    sb.ok(&["rm", &id]);
    sb.assert_clean();
}

/// The container's memory limit as its cgroup holds it (v1 or v2).
fn memory_limit(id: &str) -> u64 {
    for f in [
        format!("/sys/fs/cgroup/memory/berth-{id}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup/berth-{id}/memory.max"),
    ] {
        if let Ok(s) = std::fs::read_to_string(&f) {
            return s.trim().parse().unwrap_or(0);
        }
    }
    panic!("no memory cgroup for {id}");
}

#[test]
fn update_changes_a_running_containers_cgroup_and_a_stopped_ones_next_start() {
    let sb = Sandbox::new();
    let id = sb.run_d(&["--memory", "64m", IMAGE, "sleep", "60"]);
    assert_eq!(memory_limit(&id), 64 << 20);
    sb.ok(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:2",
        &id,
    ]);
    assert_eq!(memory_limit(&id), 128 << 20);
    let hc = &sb.inspect(&id)["HostConfig"];
    assert_eq!(
        (hc["Memory"].as_i64(), hc["PidsLimit"].as_i64()),
        (Some(128 << 20), Some(50))
    );
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");
    // The CFS period and quota, the soft limit and the memory nodes, read back inside.
    sb.ok(&[
        "update",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--memory-reservation",
        "32m",
        "--cpuset-mems",
        "0",
        &id,
    ]);
    let inside = sb.ok(&[
        "exec",
        &id,
        "cat",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
        "/sys/fs/cgroup/cpuset/cpuset.mems",
    ]);
    assert_eq!(
        inside.split_whitespace().collect::<Vec<_>>(),
        ["50000", "25000", &(32u64 << 20).to_string(), "0"]
    );
    let hc = &sb.inspect(&id)["HostConfig"];
    assert_eq!(
        (
            hc["CpuPeriod"].as_i64(),
            hc["CpuQuota"].as_i64(),
            hc["MemoryReservation"].as_i64(),
            hc["CpusetMems"].as_str()
        ),
        (Some(50000), Some(25000), Some(32 << 20), Some("0"))
    );
    let small = sb.berth(&["update", "--memory", "1m", &id]);
    assert!(
        !small.status.success(),
        "Docker's minimum memory is refused: {}",
        small.stdout
    );
    sb.ok(&["stop", "-t", "1", &id]);
    sb.ok(&["update", "--memory", "96m", &id]);
    sb.ok(&["start", &id]);
    assert_eq!(
        memory_limit(&id),
        96 << 20,
        "the next start takes the update"
    );
    sb.ok(&["rm", "-f", &id]);
    sb.assert_clean();
}
