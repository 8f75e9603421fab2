//! Leases under concurrency, crashes and reboots, network removal, as root against the real kernel.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_net::liveness::{endpoint_alive, process_key};
use berth_net::{AttachRequest, CreateRequest, NetworkError, Networks, PortSpec};
use common::{dns_ask, sh, tcp_ask, Fixture, Peer};

fn create(fx: &Fixture, name: &str, subnet: &str) {
    fx.nets
        .create(&CreateRequest {
            name: name.into(),
            subnet: Some(subnet.parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn ten_parallel_attaches_get_ten_distinct_addresses() {
    let mut fx = Fixture::new();
    create(&fx, "par", "10.231.41.0/24");
    let namespaces: Vec<PathBuf> = (0..10).map(|i| fx.netns(&format!("p{i}"))).collect();
    let (state, run) = (fx.dir.path().join("state"), fx.dir.path().join("run"));
    let threads: Vec<_> = namespaces
        .into_iter()
        .enumerate()
        .map(|(i, ns)| {
            // Each its own Networks (its own lock descriptors), as ten processes would be.
            let nets = Networks::open_with(&state, &run, fx.opts.clone()).unwrap();
            std::thread::spawn(move || {
                nets.attach(&AttachRequest {
                    network: "par".into(),
                    container_id: format!("c{i}"),
                    liveness: format!("test:c{i}"),
                    netns: ns,
                    ifname: "eth0".into(),
                    names: vec![format!("n{i}")],
                    ..Default::default()
                })
                .unwrap()
            })
        })
        .collect();
    let eps: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ips: HashSet<_> = eps.iter().map(|e| e.ip).collect();
    assert_eq!(ips.len(), 10, "{ips:?}");
    let veths: HashSet<_> = eps.iter().map(|e| e.host_veth.clone()).collect();
    assert_eq!(veths.len(), 10);
    // Every one of them answers on its address, and every name resolves to it.
    let gw = eps[0].gateway;
    for e in &eps {
        assert_eq!(dns_ask(None, gw, &e.names[0]), Ok(vec![e.ip]));
    }
    fx.finish();
}

/// A "container" whose namespace lives as long as a process: `unshare -n sleep`.
fn container_process() -> (std::process::Child, PathBuf) {
    let child = Command::new("unshare")
        .args(["-n", "sleep", "100"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ns = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
    // Wait until unshare has exec'd sleep in its new namespace.
    for _ in 0..200 {
        if std::fs::read_link(&ns).ok() != std::fs::read_link("/proc/self/ns/net").ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, ns)
}

#[test]
fn reclaim_after_a_kill_frees_the_dead_and_keeps_the_living() {
    let mut fx = Fixture::new();
    create(&fx, "app", "10.231.42.0/24");
    let live_ns = fx.netns("live");
    let live = fx.attach("app", &live_ns, "alive", &["alive"], &[]);
    let (mut victim, ns) = container_process();
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = fx
        .nets
        .attach(&AttachRequest {
            network: "app".into(),
            container_id: "victim".into(),
            liveness: process_key(victim.id() as i32),
            netns: ns,
            ifname: "eth0".into(),
            names: vec!["victim".into()],
            ports: vec![format!("{port}:80").parse::<PortSpec>().unwrap()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dns_ask(None, live.gateway, "victim"), Ok(vec![dead.ip]));
    // Nothing is reclaimed while both live.
    let r = fx.nets.reclaim(&endpoint_alive).unwrap();
    assert!(
        r.endpoints.is_empty() && r.orphans == 0 && !r.firewall_synced,
        "{r:?}"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    // A crash mid-attach of a third container: a lease and a port claim without a record.
    let run = fx.dir.path().join("run");
    let net = fx.nets.get("app").unwrap();
    std::os::unix::fs::symlink("ghost", run.join(&net.id).join("leases/10.231.42.200")).unwrap();
    std::os::unix::fs::symlink("ghost", run.join("ports/tcp-1-0.0.0.0")).unwrap();
    // And the resolver was killed with names left in it.
    let pid: i32 = std::fs::read_to_string(run.join(&net.id).join("dns/pid"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    sh(&format!("kill -9 {pid}"));

    let r = fx.nets.reclaim(&endpoint_alive).unwrap();
    assert_eq!(r.endpoints, vec![("app".to_string(), "victim".to_string())]);
    assert_eq!(r.orphans, 2, "{r:?}");
    assert_eq!(r.resolvers, 1, "the killed resolver is restarted");
    assert!(r.firewall_synced);
    assert!(!sh("ip -o link").contains(&dead.host_veth));
    let table = sh(&format!("nft list table inet {}", fx.opts.table));
    assert!(!table.contains(&dead.ip.to_string()), "{table}");
    assert!(
        !run.join("ports").read_dir().unwrap().any(|_| true),
        "claims left"
    );
    let leases: Vec<_> = run
        .join(&net.id)
        .join("leases")
        .read_dir()
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leases.len(),
        2,
        "the live lease and the round-robin cursor: {leases:?}"
    );
    // No upstream answers in this fixture: the relay fails fast (connection refused).
    assert_eq!(
        dns_ask(None, live.gateway, "victim"),
        Err("ServFail".to_string())
    );
    assert_eq!(dns_ask(None, live.gateway, "alive"), Ok(vec![live.ip]));
    // The freed port can be published again.
    let again = fx.netns("again");
    fx.attach("app", &again, "again", &[], &[&format!("{port}:80")]);
    fx.finish();
}

#[test]
fn networks_come_back_after_a_reboot() {
    let mut fx = Fixture::new();
    let def = fx.nets.default_network().unwrap();
    assert_eq!(def.config.name, "bridge");
    assert_eq!(def.config.bridge, fx.opts.default_bridge);
    let a = fx.netns("a");
    let ea = fx.attach("bridge", &a, "ca", &[], &[]);
    assert!(def.config.subnet.contains(&ea.ip));
    // A reboot: containers, links, berth's table and the run directory are gone.
    fx.nets.detach("bridge", "ca").unwrap();
    sh(&format!("ip link delete {}", def.config.bridge));
    sh(&format!("nft delete table inet {}", fx.opts.table));
    std::fs::remove_dir_all(fx.dir.path().join("run")).unwrap();
    let nets = Networks::open_with(
        &fx.dir.path().join("state"),
        &fx.dir.path().join("run"),
        fx.opts.clone(),
    )
    .unwrap();
    assert_eq!(nets.default_network().unwrap().config, def.config);
    let b = fx.netns("b");
    let eb = nets
        .attach(&AttachRequest {
            network: "bridge".into(),
            container_id: "cb".into(),
            liveness: "test:cb".into(),
            netns: b.clone(),
            ifname: "eth0".into(),
            ..Default::default()
        })
        .unwrap();
    let _srv = Peer::tcp(Some(&b), 80);
    assert_eq!(
        tcp_ask(None, SocketAddr::from((eb.ip, 80))).unwrap(),
        eb.gateway.to_string()
    );
    assert!(sh("nft list tables").contains(&fx.opts.table));
    fx.finish();
}

#[test]
fn remove_is_refused_while_in_use_and_prune_takes_only_unused_networks() {
    let mut fx = Fixture::new();
    create(&fx, "used", "10.231.44.0/24");
    create(&fx, "idle", "10.231.45.0/24");
    let e = fx
        .nets
        .create(&CreateRequest {
            name: "dup".into(),
            subnet: Some("10.231.44.128/25".parse().unwrap()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "network \"dup\": subnet 10.231.44.128/25 overlaps network \"used\""
    );
    let e = fx.nets.create(&CreateRequest {
        name: "x".into(),
        subnet: Some("10.254.99.0/24".parse().unwrap()),
        ..Default::default()
    });
    assert!(e.is_ok(), "no host route there");
    let a = fx.netns("a");
    fx.attach("used", &a, "ca", &[], &[]);
    let e = fx.nets.remove("used").unwrap_err();
    assert!(matches!(e, NetworkError::InUse { count: 1, .. }), "{e}");
    assert_eq!(e.to_string(), "network \"used\": in use by 1 endpoint(s)");
    let bridge = fx.nets.get("idle").unwrap().bridge;
    let mut pruned = fx.nets.prune().unwrap();
    pruned.sort();
    assert_eq!(pruned, vec!["idle".to_string(), "x".to_string()]);
    assert!(!sh("ip -o link").contains(&bridge));
    assert!(fx.nets.get("used").is_ok());
    let id = fx.nets.get("used").unwrap().id;
    assert_eq!(fx.nets.get(&id[..6]).unwrap().name, "used");
    fx.finish();
}
