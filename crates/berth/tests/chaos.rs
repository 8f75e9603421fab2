//! A seeded chaos run: `kill -9` of the berth CLI, of its whole process group, or of a detached
//! container's monitor, at a random moment of pull, run (foreground and detached), rm, commit,
//! stop and exec; then the ordinary commands must answer within seconds and tell the truth, and
//! nothing may be left in the kernel (mounts, cgroups, processes) or the store (staging, attach
//! sockets) once the next command ran. At the end a fresh pull and run of the image give the same
//! file digest. `BERTH_CHAOS_TRIALS` (default 30) and `BERTH_CHAOS_SEED` choose the run; the
//! table of operations × outcomes is printed.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use common::{sha256, Reaped};
use fixture::{busybox_rootfs, cgroup_dirs, mounts_under, processes_of, Sandbox};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// xorshift64*: a small seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Pull,
    RunForeground,
    RunDetached,
    Rm,
    Commit,
    Stop,
    Exec,
}

const OPS: [Op; 7] = [
    Op::Pull,
    Op::RunForeground,
    Op::RunDetached,
    Op::Rm,
    Op::Commit,
    Op::Stop,
    Op::Exec,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Berth,
    Group,
    Monitor,
}

#[derive(Default)]
struct Tally {
    trials: usize,
    inconsistent: usize,
    leaks: usize,
    hangs: usize,
}

/// Runs `berth ARGS` and gives up after `limit` (a hang).
fn within(sb: &Sandbox, args: &[&str], limit: Duration) -> Option<common::Output> {
    let mut cmd = sb.b.command(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Reaped(cmd.spawn().expect("spawn berth"));
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.0.try_wait() {
            use std::io::Read;
            let (mut out, mut err) = (String::new(), String::new());
            let _ = child.0.stdout.take().unwrap().read_to_string(&mut out);
            let _ = child.0.stderr.take().unwrap().read_to_string(&mut err);
            return Some(common::Output {
                status,
                stdout: out,
                stderr: err,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn frozen(id: &str) -> bool {
    let v1 = format!("/sys/fs/cgroup/freezer/berth-{id}/freezer.state");
    match std::fs::read_to_string(v1) {
        Ok(s) => s.trim() != "THAWED",
        Err(_) => std::fs::read_to_string(format!("/sys/fs/cgroup/berth-{id}/cgroup.freeze"))
            .is_ok_and(|s| s.trim() == "1"),
    }
}

fn alive(pid: i64) -> bool {
    fixture::pid_alive(pid)
}

/// What the store and kernel say after the next command, against what berth says.
fn check(sb: &Sandbox, problems: &mut Vec<String>, hangs: &mut usize) {
    let limit = Duration::from_secs(10);
    let Some(ps) = within(sb, &["ps", "-a", "-q", "--no-trunc"], limit) else {
        *hangs += 1;
        problems.push("ps hung".into());
        return;
    };
    if within(sb, &["images", "-q"], limit).is_none() {
        *hangs += 1;
        problems.push("images hung".into());
    }
    let ids: Vec<String> = ps.stdout.lines().map(str::to_string).collect();
    for id in &ids {
        sb.track(id);
        let Some(out) = within(sb, &["inspect", id], limit) else {
            *hangs += 1;
            problems.push(format!("inspect {id} hung"));
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&out.stdout) else {
            continue; // removed meanwhile (a --rm applied)
        };
        let st = &v[0]["State"];
        let status = st["Status"].as_str().unwrap_or_default().to_string();
        let pid = st["Pid"].as_i64().unwrap_or(0);
        match status.as_str() {
            "running" | "restarting" => {
                // A container that just ended reads as running until its watcher (the monitor,
                // or the keeper taking over) records the exit, a few milliseconds; a lie lasts.
                let settled = |id: &str| {
                    within(sb, &["inspect", "-f", "{{.State.Status}}", id], limit)
                        .is_some_and(|o| o.stdout.trim() != "running")
                };
                let start = Instant::now();
                let mut lie = pid > 0 && !alive(pid);
                while lie && start.elapsed() < Duration::from_secs(3) {
                    std::thread::sleep(Duration::from_millis(50));
                    lie = !settled(id);
                }
                if lie {
                    problems.push(format!("{id}: says {status} but its init {pid} is dead"));
                }
                if frozen(id) {
                    problems.push(format!("{id}: says {status} but is frozen"));
                }
            }
            "paused" => {}
            _ => {
                // A start a live monitor is making reads as created for a few milliseconds,
                // with its processes, cgroup, mount and socket already there; a lie lasts.
                let start = Instant::now();
                let mut found = leftovers(sb, id, &status);
                while !found.is_empty() && start.elapsed() < Duration::from_secs(3) {
                    std::thread::sleep(Duration::from_millis(50));
                    let now = within(sb, &["inspect", "-f", "{{.State.Status}}", id], limit)
                        .map(|o| o.stdout.trim().to_string())
                        .unwrap_or_default();
                    found = match now.as_str() {
                        "running" | "restarting" | "paused" | "" => Vec::new(),
                        _ => leftovers(sb, id, &now),
                    };
                }
                problems.extend(found);
            }
        }
    }
    for d in ["ingest", "layers/tmp"] {
        let left: Vec<_> = std::fs::read_dir(sb.b.root.join(d))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        if !left.is_empty() {
            problems.push(format!("{d} holds {left:?} after ps"));
        }
    }
    for d in ["containers", "snapshots"] {
        let staging: Vec<_> = std::fs::read_dir(sb.b.root.join(d))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".new-") || n.starts_with(".rm-"))
            .collect();
        if !staging.is_empty() {
            problems.push(format!("{d} staging left: {staging:?}"));
        }
    }
}

/// What a container that says it does not run (`status`) must not have: processes, cgroups, a
/// mounted root, an attach socket.
fn leftovers(sb: &Sandbox, id: &str, status: &str) -> Vec<String> {
    let mut found = Vec::new();
    let live: Vec<_> = processes_of(id);
    if !live.is_empty() {
        found.push(format!("{id}: says {status} but has processes {live:?}"));
    }
    if !cgroup_dirs(id).is_empty() {
        found.push(format!("{id}: says {status} but keeps cgroups"));
    }
    let rootfs = sb.b.root.join("containers").join(id).join("rootfs");
    if mounts_under(&rootfs).iter().any(|m| m == &rootfs) {
        found.push(format!("{id}: says {status} but its root is mounted"));
    }
    let sock =
        sb.b.runroot
            .join("attach")
            .join(format!("{}.sock", &id[..12]));
    if sock.exists() {
        found.push(format!("{id}: says {status} but keeps its attach socket"));
    }
    found
}

/// The monitor of container `name` once it has one (up to a few seconds).
fn monitor_of(sb: &Sandbox, name: &str) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(out) = within(
            sb,
            &["inspect", "-f", "{{.Id}}", name],
            Duration::from_secs(5),
        ) {
            let id = out.stdout.trim().to_string();
            if id.len() == 64 {
                if let Some((p, _)) = processes_of(&id)
                    .into_iter()
                    .find(|(_, c)| c == "berth-monitor")
                {
                    return Some(p);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn kill(pid: i32) {
    // SAFETY: SIGKILL to a process (or, negative, a process group) this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn kill_9_at_random_moments_leaves_a_store_that_tells_the_truth() {
    let trials: usize = std::env::var("BERTH_CHAOS_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("BERTH_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_b3a7);
    eprintln!("chaos: {trials} trials, seed {seed}");
    let mut rng = Rng(seed | 1);

    let data: Vec<u8> = (0..(4u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let want = sha256(&data);
    let mut fs = LayerTar::new().dir("data", 0o755);
    fs = fs.file("data/blob", &data, 0o644);
    let mut base = busybox_rootfs();
    // The fixture's busybox lacks sha256sum: add the applet.
    base.truncate(base.len() - 1024);
    let extra = LayerTar::new().symlink("bin/sha256sum", "busybox").finish();
    base.extend_from_slice(&extra);
    let img = Image::new(vec![
        Layer::new(&base, Compression::Gzip),
        Layer::new(&fs.finish(), Compression::Gzip),
    ]);
    let reg = Registry::start();
    reg.push_image("test/chaos", "1", &img);
    let reference = reg.reference("test/chaos", "1");

    let sb = Sandbox::new();
    sb.ok(&["pull", "-q", &reference]);
    let image = reference.as_str();

    let mut table: BTreeMap<Op, Tally> = BTreeMap::new();
    let mut all_problems = Vec::new();
    for n in 0..trials {
        let op = OPS[rng.below(OPS.len() as u64) as usize];
        let target = match rng.below(3) {
            0 => Target::Berth,
            1 => Target::Group,
            _ => Target::Monitor,
        };
        let delay = Duration::from_millis(rng.below(400));
        let name = format!("c{n}");
        // The container an operation acts on, made (not killed) beforehand.
        let setup = |script: &str| {
            sb.ok(&["run", "-d", "--name", &name, image, "sh", "-c", script]);
        };
        let args: Vec<String> = match op {
            Op::Pull => {
                let _ = within(&sb, &["rmi", "-f", &reference], Duration::from_secs(30));
                vec!["pull".into(), reference.clone()]
            }
            Op::RunForeground => {
                let mut a = vec!["run".to_string()];
                if rng.below(2) == 0 {
                    a.push("--rm".into());
                }
                a.extend([
                    "--name".into(),
                    name.clone(),
                    image.into(),
                    "sleep".into(),
                    "1".into(),
                ]);
                a
            }
            Op::RunDetached => {
                vec![
                    "run".into(),
                    "-d".into(),
                    "--name".into(),
                    name.clone(),
                    image.into(),
                    "sh".into(),
                    "-c".into(),
                    "sleep 1; exit 3".into(),
                ]
            }
            Op::Rm => {
                setup("sleep 60");
                vec!["rm".into(), "-f".into(), name.clone()]
            }
            Op::Commit => {
                setup("dd if=/dev/zero of=/z bs=1M count=40 2>/dev/null; sleep 60");
                std::thread::sleep(Duration::from_millis(300));
                vec!["commit".into(), name.clone(), format!("snap{n}")]
            }
            Op::Stop => {
                setup("sleep 60");
                vec!["stop".into(), "-t".into(), "1".into(), name.clone()]
            }
            Op::Exec => {
                setup("sleep 60");
                vec![
                    "exec".into(),
                    name.clone(),
                    "sh".into(),
                    "-c".into(),
                    "sleep 2".into(),
                ]
            }
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = sb.b.command(&argv);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut cli = Reaped(cmd.spawn().expect("spawn berth"));
        let cli_pid = cli.0.id() as i32;
        let target = match target {
            Target::Monitor if op != Op::RunDetached => Target::Berth,
            t => t,
        };
        match target {
            Target::Berth => {
                std::thread::sleep(delay);
                kill(cli_pid);
            }
            Target::Group => {
                std::thread::sleep(delay);
                kill(-cli_pid);
            }
            Target::Monitor => {
                if let Some(m) = monitor_of(&sb, &name) {
                    std::thread::sleep(delay);
                    kill(m);
                }
            }
        }
        let _ = cli.0.wait();
        let mut problems = Vec::new();
        let mut hangs = 0;
        check(&sb, &mut problems, &mut hangs);
        let t = table.entry(op).or_default();
        t.trials += 1;
        t.hangs += hangs;
        let (leaks, lies): (Vec<_>, Vec<_>) = problems.iter().partition(|p| {
            p.contains("processes")
                || p.contains("cgroups")
                || p.contains("mounted")
                || p.contains("socket")
                || p.contains("holds")
                || p.contains("staging")
        });
        t.leaks += leaks.len();
        t.inconsistent += lies.iter().filter(|p| !p.contains("hung")).count();
        for p in problems {
            all_problems.push(format!("trial {n} ({op:?}, {target:?}, {delay:?}): {p}"));
        }
        if op == Op::Pull {
            // The next trials run the image: a killed pull's image is pulled again, whole.
            sb.ok(&["pull", "-q", &reference]);
        }
        // Every few trials, clear the store of containers (through the CLI).
        if n % 5 == 4 {
            for id in sb.container_dirs() {
                sb.track(&id);
                let _ = within(&sb, &["rm", "-f", &id], Duration::from_secs(30));
            }
        }
    }
    sb.remove_all_and_assert_clean();
    // A fresh pull of the same image runs with the same bytes.
    sb.ok(&["rmi", "-f", &reference]);
    sb.ok(&["pull", "-q", &reference]);
    let out = sb.ok(&["run", "--rm", &reference, "sha256sum", "/data/blob"]);
    let got = format!(
        "sha256:{}",
        out.split_whitespace().next().unwrap_or_default()
    );

    eprintln!("operation        trials  inconsistent  leaks  hangs");
    for (op, t) in &table {
        eprintln!(
            "{:<16} {:>6}  {:>12}  {:>5}  {:>5}",
            format!("{op:?}"),
            t.trials,
            t.inconsistent,
            t.leaks,
            t.hangs
        );
    }
    for p in &all_problems {
        eprintln!("{p}");
    }
    assert!(
        all_problems.is_empty(),
        "{} problems (seed {seed})",
        all_problems.len()
    );
    assert_eq!(got, want, "the re-pulled image's file changed");
}
