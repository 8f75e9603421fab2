//! `kill -9` of berth, a monitor or a keeper at the moments that used to leave lies or leftovers,
//! then the ordinary commands: a killed commit's freeze is undone, a killed monitor's container
//! reports its real exit status (or 137 when berth killed it) and leaves no attach socket, the
//! staging of killed pulls is reclaimed and counted, a killed run's name is free at once, and a
//! killed `run --rm` takes its container with it.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::image::{Compression, Image, Layer};
use common::proxy::{Cut, CutProxy};
use common::registry::Registry;
use common::Reaped;
use fixture::{busybox_rootfs, pid_alive, processes_of, wait_until, Sandbox, IMAGE};
use std::process::Stdio;
use std::time::Duration;

const SECS_10: Duration = Duration::from_secs(10);

fn sigkill(pid: i32) {
    // SAFETY: SIGKILL to a berth process this test started (found by its container's ID).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
}

/// The live processes of a container named `comm` (`berth-monitor`, `berth-keeper`).
fn named(id: &str, comm: &str) -> Vec<i32> {
    processes_of(id)
        .into_iter()
        .filter(|(_, c)| c == comm)
        .map(|(p, _)| p)
        .collect()
}

fn kill_all_named(id: &str, comm: &str) {
    // A watcher re-executing itself is briefly named after its binary: wait for the name.
    wait_until(&format!("a {comm} runs"), SECS_10, || {
        named(id, comm).len() == 1
    });
    let pids = named(id, comm);
    assert_eq!(pids.len(), 1, "one {comm}: {:?}", processes_of(id));
    sigkill(pids[0]);
    wait_until(&format!("{comm} is gone"), SECS_10, || {
        named(id, comm).is_empty()
    });
}

fn spawn(sb: &Sandbox, args: &[&str]) -> Reaped {
    let mut cmd = sb.b.command(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Reaped(cmd.spawn().expect("spawn berth"))
}

fn attach_socket(sb: &Sandbox, id: &str) -> std::path::PathBuf {
    sb.b.runroot
        .join("attach")
        .join(format!("{}.sock", &id[..12]))
}

#[test]
fn a_killed_monitors_container_reports_its_own_exit_status() {
    let sb = Sandbox::new();
    let id = sb.run_d(&["--name", "own", IMAGE, "sh", "-c", "sleep 1; exit 3"]);
    kill_all_named(&id, "berth-monitor");
    wait_until("it exits", SECS_10, || sb.status("own") == "exited");
    assert_eq!(
        sb.exit_state("own"),
        ("exited".into(), 3),
        "the keeper caught the status"
    );
    assert!(
        !attach_socket(&sb, &id).exists(),
        "the attach socket outlived the container"
    );

    let id = sb.run_d(&["--name", "stopped", IMAGE, "sleep", "30"]);
    kill_all_named(&id, "berth-monitor");
    sb.ok(&["stop", "-t", "1", "stopped"]);
    assert_eq!(sb.exit_state("stopped"), ("exited".into(), 137));
    assert!(!attach_socket(&sb, &id).exists());
    sb.remove_all_and_assert_clean();
}

#[test]
fn with_monitor_and_keeper_killed_a_lost_status_says_so_and_berths_kill_is_137() {
    let sb = Sandbox::new();
    let id = sb.run_d(&["--name", "lost", IMAGE, "sh", "-c", "sleep 1; exit 3"]);
    kill_all_named(&id, "berth-keeper");
    kill_all_named(&id, "berth-monitor");
    wait_until("it exits", SECS_10, || sb.status("lost") == "exited");
    let v = sb.inspect("lost");
    assert_eq!(v["State"]["ExitCode"], 255);
    assert!(
        v["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("exit status unknown"),
        "{}",
        v["State"]
    );
    assert!(!attach_socket(&sb, &id).exists());

    let id = sb.run_d(&["--name", "killed", IMAGE, "sleep", "30"]);
    kill_all_named(&id, "berth-keeper");
    kill_all_named(&id, "berth-monitor");
    sb.ok(&["stop", "-t", "1", "killed"]);
    assert_eq!(
        sb.exit_state("killed"),
        ("exited".into(), 137),
        "berth sent the SIGKILL"
    );
    assert!(!attach_socket(&sb, &id).exists());
    let id = sb.run_d(&["--name", "removed", IMAGE, "sleep", "30"]);
    kill_all_named(&id, "berth-keeper");
    kill_all_named(&id, "berth-monitor");
    sb.ok(&["rm", "-f", "removed"]);
    assert!(
        !attach_socket(&sb, &id).exists(),
        "rm -f left the attach socket"
    );
    sb.remove_all_and_assert_clean();
}

/// `freezer.state` of a container's v1 freezer cgroup (or `cgroup.freeze` on v2).
fn frozen(id: &str) -> bool {
    let v1 = format!("/sys/fs/cgroup/freezer/berth-{id}/freezer.state");
    if let Ok(s) = std::fs::read_to_string(&v1) {
        return s.trim() != "THAWED";
    }
    let v2 = format!("/sys/fs/cgroup/berth-{id}/cgroup.freeze");
    std::fs::read_to_string(v2).is_ok_and(|s| s.trim() == "1")
}

#[test]
fn a_commit_killed_while_the_container_is_frozen_is_undone_by_the_next_command() {
    let sb = Sandbox::new();
    let id = sb.run_d(&[
        "--name",
        "busy",
        IMAGE,
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1M count=400 2>/dev/null; touch /ready; sleep 60",
    ]);
    wait_until("the layer is written", Duration::from_secs(60), || {
        sb.code(&["exec", "busy", "test", "-f", "/ready"]).0 == 0
    });
    let mut froze = 0;
    for ms in [50u64, 150, 300, 600] {
        let mut commit = spawn(&sb, &["commit", "busy", "snap:1"]);
        std::thread::sleep(Duration::from_millis(ms));
        if frozen(&id) {
            froze += 1;
        }
        commit.0.kill().unwrap();
        commit.0.wait().unwrap();
        // The next command tells the truth and thaws what the dead commit froze.
        assert_eq!(
            sb.status("busy"),
            "running",
            "after a commit killed at {ms} ms"
        );
        assert!(
            !frozen(&id),
            "still frozen after a commit killed at {ms} ms"
        );
        let meta =
            std::fs::read_to_string(sb.b.root.join("containers").join(&id).join("meta.json"))
                .unwrap();
        assert!(
            !meta.contains("\"Holds\""),
            "the dead commit's hold stayed: {meta}"
        );
        assert_eq!(
            sb.code(&["exec", "busy", "true"]).0,
            0,
            "exec into a thawed container"
        );
    }
    assert!(froze > 0, "no kill landed while the container was frozen");
    // The killed commits' staging goes with the next command that takes the store's lock, and
    // prune counts it.
    let staged = |d: &str| {
        std::fs::read_dir(sb.b.root.join(d))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    let out = sb.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!((staged("ingest"), staged("layers/tmp")), (0, 0));
    sb.remove_all_and_assert_clean();
}

#[test]
fn a_killed_pulls_staging_is_reclaimed_and_counted_by_prune() {
    let reg = Registry::start();
    let big: Vec<u8> = (0..(8u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let tar = common::image::LayerTar::new()
        .file("big", &big, 0o644)
        .finish();
    let img = Image::new(vec![
        Layer::new(&busybox_rootfs(), Compression::Gzip),
        Layer::new(&tar, Compression::None),
    ]);
    reg.push_image("test/big", "1", &img);
    let proxy = CutProxy::start(
        &reg.addr,
        &format!("/blobs/{}", img.layers[1].digest),
        4 << 20,
        Cut::Stall,
        1,
    );
    let sb = Sandbox::new();
    let mut pull = spawn(&sb, &["pull", &format!("{}/test/big:1", proxy.addr)]);
    let ingest = sb.b.root.join("ingest");
    let partial = || {
        std::fs::read_dir(&ingest)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
    };
    wait_until(
        "part of the blob is staged",
        Duration::from_secs(30),
        || partial() >= 2 << 20,
    );
    pull.0.kill().unwrap();
    pull.0.wait().unwrap();
    assert!(std::fs::read_dir(&ingest).unwrap().count() > 0);
    let out = sb.ok(&["image", "prune", "-f"]);
    let reclaimed = out.lines().last().unwrap_or_default().to_string();
    assert!(
        reclaimed.starts_with("Total reclaimed space:") && !reclaimed.ends_with(" 0B"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(&ingest).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(sb.b.root.join("layers/tmp"))
            .unwrap()
            .count(),
        0
    );
    drop(proxy);
    // A fresh pull of the same image works and gives the same bytes.
    sb.ok(&["pull", "-q", &reg.reference("test/big", "1")]);
    let out = sb.ok(&[
        "run",
        "--rm",
        &reg.reference("test/big", "1"),
        "sh",
        "-c",
        "wc -c < /big",
    ]);
    assert_eq!(out.trim(), (8u32 << 20).to_string());
}

#[test]
fn a_name_held_by_a_killed_run_is_free_at_once() {
    let sb = Sandbox::new();
    // What a `run --name taken` killed between its reservation and its record leaves.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = (child.id(), berth_sys_start_time(child.id() as i32));
    child.wait().unwrap();
    let id = "f".repeat(64);
    let containers = sb.b.root.join("containers");
    let staging = containers.join(format!(".new-{id}"));
    std::fs::create_dir_all(staging.join("rootfs")).unwrap();
    std::fs::write(staging.join("owner"), format!("{}.{}", dead.0, dead.1)).unwrap();
    std::fs::create_dir_all(containers.join(".names")).unwrap();
    std::os::unix::fs::symlink(&id, containers.join(".names/taken")).unwrap();
    let out = sb.ok(&["create", "--name", "taken", IMAGE, "true"]);
    sb.track(out.trim());
    assert_eq!(sb.ok(&["ps", "-a", "--format", "{{.Names}}"]), "taken\n");
    assert!(!staging.exists(), "the dead run's staging stayed");
    sb.remove_all_and_assert_clean();
}

fn berth_sys_start_time(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    s.rsplit(") ")
        .next()
        .and_then(|r| r.split(' ').nth(19))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_killed_foreground_run_rm_takes_its_container_with_it() {
    let sb = Sandbox::new();
    let mut cli = spawn(
        &sb,
        &["run", "--rm", "--name", "mine", IMAGE, "sleep", "30"],
    );
    wait_until("it runs", SECS_10, || {
        sb.code(&["inspect", "mine"]).0 == 0 && sb.status("mine") == "running"
    });
    let id = sb.id_of("mine");
    let pid = sb.inspect("mine")["State"]["Pid"].as_i64().unwrap();
    cli.0.kill().unwrap();
    cli.0.wait().unwrap();
    wait_until("the container dies with its client", SECS_10, || {
        !pid_alive(pid)
    });
    assert_eq!(
        sb.ok(&["ps", "-a", "-q"]),
        "",
        "--rm: the next command removes it"
    );
    assert!(!sb.b.root.join("containers").join(&id).exists());
    sb.assert_clean();

    // Without --rm the container belongs to the daemon-less store and runs on, as with Docker.
    let mut cli = spawn(&sb, &["run", "--name", "kept", IMAGE, "sleep", "30"]);
    wait_until("it runs", SECS_10, || {
        sb.code(&["inspect", "kept"]).0 == 0 && sb.status("kept") == "running"
    });
    let pid = sb.inspect("kept")["State"]["Pid"].as_i64().unwrap();
    cli.0.kill().unwrap();
    cli.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(pid_alive(pid));
    assert_eq!(sb.status("kept"), "running");
    sb.remove_all_and_assert_clean();
}

#[test]
fn a_start_killed_halfway_is_torn_down_by_the_next_command() {
    let sb = Sandbox::new();
    let id = sb.ok(&["create", "--name", "half", IMAGE, "sleep", "30"]);
    let id = id.trim().to_string();
    sb.track(&id);
    // What a start killed between its first mount and the record saying "running" leaves: its
    // hold (a dead owner), the root mounted, a cgroup with a process in it, the attach socket.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = (child.id(), berth_sys_start_time(child.id() as i32));
    child.wait().unwrap();
    let dir = sb.b.root.join("containers").join(&id);
    let rootfs = dir.join("rootfs");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "half", rootfs.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(mounted.success());
    // Its cgroup in every hierarchy, as the runtime makes it (symlinked names are skipped).
    let cgroups: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.path().join("cgroup.procs").exists())
        .map(|e| e.path().join(format!("berth-{id}")))
        .collect();
    for c in &cgroups {
        std::fs::create_dir(c).unwrap();
        // A new cpuset takes no task until it has CPUs and memory nodes: its parent's.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read(c.parent().unwrap().join(f)) {
                std::fs::write(c.join(f), v).unwrap();
            }
        }
    }
    // Whatever berth fails to undo is undone here, after the test's own asserts failed.
    let _undo = Undo(rootfs.clone(), cgroups.clone(), std::cell::Cell::new(0));
    // The init of a killed start is not ours to reap: a sleep left to pid 1, as it would be.
    let out = std::process::Command::new("sh")
        .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
        .output()
        .unwrap();
    let init: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    _undo.2.set(init);
    for c in &cgroups {
        std::fs::write(c.join("cgroup.procs"), init.to_string()).unwrap();
    }
    let socket = attach_socket(&sb, &id);
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let meta_path = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["Holds"] = serde_json::json!([{
        "Op": "start", "Pid": dead.0, "Start": dead.1, "Mounted": true, "Starting": true
    }]);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();

    // The next command finds the owner dead and undoes the start; the record stays created.
    assert_eq!(sb.status("half"), "created");
    assert_eq!(
        fixture::mounts_under(&dir),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(
        !socket.exists(),
        "the half-made start's attach socket stayed"
    );
    assert!(
        !pid_alive(init.into()),
        "the half-made start's process lives"
    );
    assert_eq!(
        fixture::cgroup_dirs(&id),
        Vec::<std::path::PathBuf>::new(),
        "the half-made start's cgroups stayed"
    );
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    assert!(
        !meta.contains("\"Holds\""),
        "the dead start's hold stayed: {meta}"
    );
    // And it starts as any created container does.
    sb.ok(&["start", "half"]);
    assert_eq!(sb.status("half"), "running");
    sb.remove_all_and_assert_clean();
}

/// A failed test's leftovers: the mount on .0, the cgroups .1 and their process .2.
struct Undo(
    std::path::PathBuf,
    Vec<std::path::PathBuf>,
    std::cell::Cell<i32>,
);

impl Drop for Undo {
    fn drop(&mut self) {
        if self.2.get() > 0 {
            // SAFETY: SIGKILL to the sleep this test started.
            unsafe { libc::kill(self.2.get(), libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::process::Command::new("umount")
            .args(["-l", self.0.to_str().unwrap_or("")])
            .stderr(Stdio::null())
            .status();
        for c in &self.1 {
            let _ = std::fs::remove_dir(c);
        }
    }
}
