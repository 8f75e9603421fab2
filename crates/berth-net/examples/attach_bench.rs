//! Times attach and detach of one container (as root): on the default bridge without ports, with
//! one published port, and on a user network with DNS (the first attach starts the resolver).
//! Namespaces are made beforehand with `ip netns add` (not timed: the runtime makes them anyway).
//!
//!     cargo run --release -p berth-net --example attach_bench -- [ROUNDS]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_net::{AttachRequest, CreateRequest, DnsCommand, Networks, Options};

fn sh(cmd: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map(|s| s.success());
    assert!(matches!(ok, Ok(true)), "{cmd}");
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<44} n={:<4} median {:>6.2} ms  p90 {:>6.2} ms  min {:>6.2} ms",
        v.len(),
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        ms(v[0])
    );
}

fn req(net: &str, id: &str, ns: &std::path::Path, ports: &[&str], names: &[&str]) -> AttachRequest {
    AttachRequest {
        network: net.into(),
        container_id: id.into(),
        liveness: format!("bench:{id}"),
        netns: ns.to_path_buf(),
        ifname: "eth0".into(),
        names: names.iter().map(|s| s.to_string()).collect(),
        ports: ports.iter().map(|p| p.parse().unwrap()).collect(),
        ip: None,
        ..Default::default()
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let dir = std::env::temp_dir().join(format!("berth-net-bench-{}", std::process::id()));
    let exe = std::env::current_exe().unwrap();
    let dns = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("berth-net-dns");
    let opts = Options {
        table: "berth-bench".into(),
        default_bridge: "berthb0".into(),
        veth_prefix: "vb".into(),
        dns: dns.exists().then(|| DnsCommand {
            program: dns,
            args: vec![],
        }),
        ..Options::default()
    };
    let nets = Networks::open_with(&dir.join("state"), &dir.join("run"), opts).unwrap();
    let t = Instant::now();
    let def = nets.default_network().unwrap();
    println!(
        "default network created in {:.2} ms: {} {}",
        t.elapsed().as_secs_f64() * 1e3,
        def.config.subnet,
        def.note.unwrap_or_default()
    );
    let t = Instant::now();
    nets.create(&CreateRequest {
        name: "benchnet".into(),
        subnet: Some("10.232.0.0/16".parse().unwrap()),
        ..Default::default()
    })
    .unwrap();
    println!(
        "user network created in {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let names: Vec<String> = (0..rounds).map(|i| format!("bnch{i}")).collect();
    for n in &names {
        sh(&format!("ip netns add {n}"));
    }
    let path = |n: &str| PathBuf::from(format!("/run/netns/{n}"));
    let mut cases: Vec<(&str, &str, Vec<&str>, Vec<&str>)> = vec![
        ("bridge, no ports", "bridge", vec![], vec![]),
        (
            "bridge, one published port",
            "bridge",
            vec!["18099:80"],
            vec![],
        ),
    ];
    if nets.options().dns.is_some() {
        cases.push((
            "user network with DNS (resolver running)",
            "benchnet",
            vec![],
            vec!["web"],
        ));
    }
    let runs0 = nets.nft_runs();
    for (label, net, ports, dnsnames) in cases {
        let (mut att, mut det) = (vec![], vec![]);
        let runs = nets.nft_runs();
        // On the user network one endpoint stays so the resolver keeps running.
        let keep = if net == "benchnet" {
            sh("ip netns add bnchkeep");
            Some(
                nets.attach(&req(net, "keep", &path("bnchkeep"), &[], &["keep"]))
                    .unwrap(),
            )
        } else {
            None
        };
        for (i, n) in names.iter().enumerate() {
            let id = format!("c{i}");
            let t = Instant::now();
            nets.attach(&req(net, &id, &path(n), &ports, &dnsnames))
                .unwrap();
            att.push(t.elapsed());
            let t = Instant::now();
            nets.detach(net, &id).unwrap();
            det.push(t.elapsed());
        }
        stats(&format!("attach: {label}"), att);
        stats(&format!("detach: {label} (namespace alive)"), det);
        println!(
            "  nft runs: {} for {} attach+detach",
            nets.nft_runs() - runs,
            names.len()
        );
        if keep.is_some() {
            nets.detach(net, "keep").unwrap();
            sh("ip netns delete bnchkeep");
        }
    }
    // The first attach on a user network starts its resolver; the last detach stops it.
    if nets.options().dns.is_some() {
        let (mut first, mut last) = (vec![], vec![]);
        for (i, n) in names.iter().take(20).enumerate() {
            let id = format!("d{i}");
            let t = Instant::now();
            nets.attach(&req("benchnet", &id, &path(n), &[], &["web"]))
                .unwrap();
            first.push(t.elapsed());
            if i == 0 {
                let pid = std::fs::read_to_string(
                    dir.join("run")
                        .join(nets.get("benchnet").unwrap().id)
                        .join("dns/pid"),
                )
                .unwrap();
                let pid = pid.split(' ').next().unwrap().to_string();
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let rss = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS"))
                    .unwrap_or("");
                println!(
                    "resolver pid {pid}: {}",
                    rss.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
            let t = Instant::now();
            nets.detach("benchnet", &id).unwrap();
            last.push(t.elapsed());
        }
        stats("attach: user network, first (starts resolver)", first);
        stats("detach: user network, last (stops resolver)", last);
    }
    // Detach after the container is gone (its namespace deleted): the usual case for the engine.
    let mut det = vec![];
    for (i, n) in names.iter().enumerate() {
        nets.attach(&req("bridge", &format!("g{i}"), &path(n), &[], &[]))
            .unwrap();
    }
    for n in &names {
        sh(&format!("ip netns delete {n}"));
    }
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..names.len() {
        let t = Instant::now();
        nets.detach("bridge", &format!("g{i}")).unwrap();
        det.push(t.elapsed());
    }
    stats("detach: bridge, namespace already gone", det);
    println!("nft runs in all: {}", nets.nft_runs() - runs0);
    nets.remove_all().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
