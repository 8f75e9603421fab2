//! bench/cri.sh's driver: a pod sandbox and one container, started to running through the CRI,
//! with the `berth` and the `runc` handler taking turns on one containerd. Two phases:
//! timed (the handlers' binaries as they are), then traced (each binary behind a wrapper that
//! stamps every runtime command and runs it with `--debug`), which splits the time between the
//! runtime's own commands and the rest (containerd, the shim, CNI, the client).
//!
//!     cargo run -p berth-cri-tests --example cri_bench -- ROUNDS BERTH_BINARY

use berth_cri_tests::pod::{container_config, sandbox_config, CONTAINER_RUNNING};
use berth_cri_tests::{Handler, Node};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Wraps a runtime: stamps each command (start, end, subcommand) and keeps `create`'s debug log.
const WRAPPER: &str = r#"#!/bin/bash
t0=$EPOCHREALTIME
"@REAL@" --debug "$@"
rc=$?
t1=$EPOCHREALTIME
cmd= log= prev=
for a in "$@"; do
    [ "$prev" = --log ] && log=$a
    case "$a" in create|start|state|kill|delete|exec|update|ps|pause|resume|events) [ -z "$cmd" ] && cmd=$a ;; esac
    prev=$a
done
echo "$t0 $t1 $cmd" >> "@TRACE@/times"
if [ "$cmd" = create ] && [ -n "$log" ]; then { echo "== $t0"; cat "$log"; } >> "@TRACE@/create-debug"; fi
exit $rc
"#;

/// One pod start: (RunPodSandbox, CreateContainer, StartContainer, until running), in ms.
struct Start {
    sandbox: f64,
    create: f64,
    start: f64,
    total: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Starts a pod and its container on `handler`, waits for running, then removes both.
fn one_pod(node: &Node, handler: &str, n: usize) -> Start {
    let cri = &node.cri;
    let uid = format!("bench-{handler}-{n}");
    let parent = node.cgroups.pod(&uid);
    let logs = node.log_dir(&uid);
    std::fs::create_dir_all(&logs).expect("log dir");
    let sandbox = sandbox_config(&uid, &uid, &logs.display().to_string(), &parent);
    let cfg = container_config("c", &node.busybox, &["sleep", "3600"], 64 << 20);
    let t = Instant::now();
    let pod = cri
        .run_pod_sandbox(&sandbox, handler)
        .expect("RunPodSandbox");
    let t_sandbox = t.elapsed();
    let id = cri
        .create_container(&pod, &cfg, &sandbox)
        .expect("CreateContainer");
    let t_create = t.elapsed();
    cri.start_container(&id).expect("StartContainer");
    let t_start = t.elapsed();
    while cri.container_status(&id).expect("ContainerStatus").state != CONTAINER_RUNNING {
        std::thread::sleep(Duration::from_millis(1));
    }
    let total = t.elapsed();
    cri.stop_container(&id, 0).expect("StopContainer");
    cri.remove_container(&id).expect("RemoveContainer");
    cri.stop_pod_sandbox(&pod).expect("StopPodSandbox");
    cri.remove_pod_sandbox(&pod).expect("RemovePodSandbox");
    assert!(
        node.cgroups.remove_pod(&parent),
        "pod cgroup {parent} left busy"
    );
    Start {
        sandbox: ms(t_sandbox),
        create: ms(t_create - t_sandbox),
        start: ms(t_start - t_create),
        total: ms(total),
    }
}

/// Runs `rounds` pods per handler, alternating; returns each handler's starts.
fn rounds(node: &Node, handlers: &[&str], rounds: usize) -> BTreeMap<String, Vec<Start>> {
    let mut out: BTreeMap<String, Vec<Start>> = BTreeMap::new();
    for n in 0..rounds {
        for h in handlers {
            out.entry(h.to_string())
                .or_default()
                .push(one_pod(node, h, n));
        }
    }
    out
}

fn print_starts(title: &str, starts: &BTreeMap<String, Vec<Start>>) {
    println!(
        "\n{title} (median ms over {} pods each)",
        starts.values().next().map_or(0, Vec::len)
    );
    println!("| handler | RunPodSandbox | CreateContainer | StartContainer | pod + container to running |");
    println!("|:---|---:|---:|---:|---:|");
    for (h, v) in starts {
        println!(
            "| {h} | {:.1} | {:.1} | {:.1} | {:.1} |",
            median(v.iter().map(|s| s.sandbox).collect()),
            median(v.iter().map(|s| s.create).collect()),
            median(v.iter().map(|s| s.start).collect()),
            median(v.iter().map(|s| s.total).collect()),
        );
    }
}

/// (start, end, command) lines a wrapper wrote.
fn stamps(trace: &Path) -> Vec<(f64, f64, String)> {
    std::fs::read_to_string(trace.join("times"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let a: f64 = w.next()?.parse().ok()?;
            let b: f64 = w.next()?.parse().ok()?;
            Some((a, b, w.next().unwrap_or("?").to_string()))
        })
        .collect()
}

/// A traced start: which runtime commands ran inside it, and for how long (ms).
fn traced(
    node: &Node,
    handler: &str,
    trace: &Path,
    rounds: usize,
) -> (f64, BTreeMap<String, (f64, usize)>) {
    let mut totals = Vec::new();
    let mut by_cmd: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for n in 0..rounds {
        let _ = std::fs::remove_file(trace.join("times"));
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        };
        let t0 = now();
        let s = one_pod(node, handler, 1000 + n);
        let t_running = t0 + s.total / 1000.0;
        totals.push(s.total);
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for (a, b, cmd) in stamps(trace)
            .into_iter()
            .filter(|(a, _, _)| *a >= t0 && *a <= t_running)
        {
            *sums.entry(cmd.clone()).or_default() += (b - a) * 1000.0;
            if n == 0 {
                *counts.entry(cmd).or_default() += 1;
            }
        }
        for (cmd, v) in sums {
            by_cmd.entry(cmd).or_default().push(v);
        }
    }
    let cmds = by_cmd
        .into_iter()
        .map(|(c, v)| {
            let n = counts.get(&c).copied().unwrap_or(0);
            (c, (median(v), n))
        })
        .collect();
    (median(totals), cmds)
}

/// berth's own create steps from its `--debug` lines: (ms since the first line, message).
fn create_timeline(trace: &Path) -> Vec<(f64, String)> {
    let text = std::fs::read_to_string(trace.join("create-debug")).unwrap_or_default();
    // The last create in the file is a container's (the pod's sandbox comes first).
    let last = text.rsplit("== ").next().unwrap_or_default();
    let mut out = Vec::new();
    let mut first = None;
    for line in last.lines().skip(1) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(time), Some(msg)) = (v["time"].as_str(), v["msg"].as_str()) else {
            continue;
        };
        // RFC 3339 with nanoseconds: the seconds-of-minute and fraction are enough within a create.
        let Some(sec) = time.get(17..).and_then(|s| {
            s.trim_end_matches('Z')
                .split('+')
                .next()?
                .parse::<f64>()
                .ok()
        }) else {
            continue;
        };
        let f = *first.get_or_insert(sec);
        out.push((((sec - f + 60.0) % 60.0) * 1000.0, msg.to_string()));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let berth = PathBuf::from(args.get(2).expect("usage: cri_bench ROUNDS BERTH_BINARY"));
    let runc = berth_cri_tests::handlers()
        .into_iter()
        .find(|h| h.name == "runc")
        .expect("runc")
        .binary;
    let trace_root = nix::unistd::mkdtemp("/tmp/berth-cri-bench-XXXXXX").expect("mkdtemp");
    let mut handlers = vec![
        Handler {
            name: "berth".into(),
            binary: berth.clone(),
        },
        Handler {
            name: "runc".into(),
            binary: runc.clone(),
        },
    ];
    for (name, real) in [("berth-traced", &berth), ("runc-traced", &runc)] {
        let dir = trace_root.join(name);
        std::fs::create_dir_all(&dir).expect("trace dir");
        let script = dir.join("runtime");
        let text = WRAPPER
            .replace("@REAL@", &real.display().to_string())
            .replace("@TRACE@", &dir.display().to_string());
        std::fs::write(&script, text).expect("wrapper");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        handlers.push(Handler {
            name: name.into(),
            binary: script,
        });
    }
    let node = Node::start(&handlers);
    node.cri.pull_image(&node.busybox).expect("pull busybox");
    node.cri.pull_image(&node.pause).expect("pull pause");
    // Warm-up: one pod per handler (first snapshot unpacks, page cache).
    rounds(&node, &["berth", "runc", "berth-traced", "runc-traced"], 1);

    let timed = rounds(&node, &["berth", "runc"], n);
    print_starts(
        "Pod sandbox + one container to running, through the CRI",
        &timed,
    );

    println!("\nWhere the time goes (traced: each runtime command stamped by a wrapper and run with --debug; median ms per pod start over {} pods)", n.div_ceil(2));
    println!("| handler | to running | in the runtime | runtime commands (ms, count) | containerd, shim, CNI, client |");
    println!("|:---|---:|---:|:---|---:|");
    for name in ["berth-traced", "runc-traced"] {
        let (total, cmds) = traced(&node, name, &trace_root.join(name), n.div_ceil(2));
        let inside: f64 = cmds.values().map(|(t, _)| t).sum();
        let list: Vec<String> = cmds
            .iter()
            .map(|(c, (t, k))| format!("{c} {t:.1} ({k})"))
            .collect();
        println!(
            "| {name} | {total:.1} | {inside:.1} | {} | {:.1} |",
            list.join(", "),
            total - inside
        );
    }
    println!("\nberth-runtime's own steps in one container `create` (its --debug lines, ms from the first):");
    for (t, msg) in create_timeline(&trace_root.join("berth-traced")) {
        println!("  {t:7.2}  {msg}");
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&trace_root);
}
