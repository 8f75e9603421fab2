//! The per-network resolver, as root against the real kernel: names on a user network follow
//! attach and detach, other names go to the host's resolver (a responder on the outside host), and
//! the resolver process lives exactly as long as the network has endpoints.

mod common;

use std::net::Ipv4Addr;

use berth_net::CreateRequest;
use common::{dns_ask, Fixture, Peer};

#[test]
fn names_resolve_while_attached_and_others_are_forwarded() {
    let mut fx = Fixture::new();
    let out = fx.outside(31);
    let (out_ns, out_ip) = (out.ns.clone(), out.ip);
    let external = Ipv4Addr::new(10, 99, 0, 7);
    let _upstream = Peer::dns(
        Some(&out_ns),
        out_ip,
        vec![("external.test".into(), external)],
    );
    fx.nets
        .create(&CreateRequest {
            name: "app".into(),
            subnet: Some("10.231.31.0/24".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
    let (a, b, c) = (fx.netns("a"), fx.netns("b"), fx.netns("c"));
    let ea = fx.attach("app", &a, "ca", &["web", "www"], &[]);
    let eb = fx.attach("app", &b, "cb", &["client"], &[]);
    let gw = eb.dns_server.expect("a user network has a resolver");
    assert_eq!(gw, eb.gateway);
    assert_eq!(dns_ask(Some(&b), gw, "web"), Ok(vec![ea.ip]));
    assert_eq!(dns_ask(Some(&b), gw, "WWW."), Ok(vec![ea.ip]));
    assert_eq!(dns_ask(Some(&b), gw, "external.test"), Ok(vec![external]));
    assert_eq!(
        dns_ask(Some(&b), gw, "missing.test"),
        Err("NXDomain".into())
    );
    // A container that joins later is found at once.
    let ec = fx.attach("app", &c, "cc", &["late"], &[]);
    assert_eq!(dns_ask(Some(&a), gw, "late"), Ok(vec![ec.ip]));
    // One that leaves is not.
    assert!(fx.nets.detach("app", "ca").unwrap());
    assert_eq!(dns_ask(Some(&b), gw, "web"), Err("NXDomain".into()));
    let resolver_pid = dns_pid(&fx);
    assert!(
        resolver_pid.is_some(),
        "resolver runs while endpoints remain"
    );
    fx.nets.detach("app", "cb").unwrap();
    fx.nets.detach("app", "cc").unwrap();
    let pid = resolver_pid.unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie_or_gone(pid),
        "resolver outlived the last endpoint"
    );
    fx.finish();
}

#[test]
fn the_default_network_has_no_resolver_and_internal_ones_do_not_forward() {
    let mut fx = Fixture::new();
    let out = fx.outside(32);
    let (out_ns, out_ip) = (out.ns.clone(), out.ip);
    let _upstream = Peer::dns(
        Some(&out_ns),
        out_ip,
        vec![("external.test".into(), Ipv4Addr::new(10, 99, 0, 7))],
    );
    fx.nets
        .create(&CreateRequest {
            name: "bridge".into(),
            subnet: Some("10.231.32.0/24".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
    fx.nets
        .create(&CreateRequest {
            name: "private".into(),
            subnet: Some("10.231.33.0/24".parse().unwrap()),
            internal: true,
            ..Default::default()
        })
        .unwrap();
    let (a, b) = (fx.netns("a"), fx.netns("b"));
    let ea = fx.attach("bridge", &a, "ca", &["web"], &[]);
    assert_eq!(ea.dns_server, None);
    assert!(dns_pid(&fx).is_none());
    let eb = fx.attach("private", &b, "cb", &["db"], &[]);
    let gw = eb.dns_server.unwrap();
    assert_eq!(dns_ask(Some(&b), gw, "db"), Ok(vec![eb.ip]));
    assert_eq!(
        dns_ask(Some(&b), gw, "external.test"),
        Err("Refused".into())
    );
    fx.finish();
}

fn zombie_or_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
}

/// The pid of a resolver this fixture started, if one runs.
fn dns_pid(fx: &Fixture) -> Option<i32> {
    let needle = fx.dir.path().to_string_lossy().into_owned();
    std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).into_owned();
        let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
        (cmd.contains("berth-net-dns") && cmd.contains(&needle) && !zombie_or_gone(pid))
            .then_some(pid)
    })
}
