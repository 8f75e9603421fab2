//! Published ports, as root against the real kernel.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use berth_net::CreateRequest;
use common::{sh, tcp_ask, udp_ask, Fixture, Peer};

fn create(fx: &Fixture, name: &str, subnet: &str) {
    fx.nets
        .create(&CreateRequest {
            name: name.into(),
            subnet: Some(subnet.parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
}

/// A host port nobody uses now (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn published_ports_answer_on_loopback_host_addresses_outside_and_hairpin() {
    let mut fx = Fixture::new();
    let out = fx.outside(21);
    let (out_ns, host_side) = (out.ns.clone(), out.host_ip);
    create(&fx, "web", "10.231.21.0/24");
    let (srv, cli) = (fx.netns("s"), fx.netns("c"));
    let (tp, up) = (free_port(), free_port());
    let before = fx.nets.nft_runs();
    let es = fx.attach(
        "web",
        &srv,
        "srv",
        &[],
        &[&format!("{tp}:80"), &format!("{up}:81/udp")],
    );
    assert_eq!(
        fx.nets.nft_runs() - before,
        1,
        "one nft run for a container with ports"
    );
    let before = fx.nets.nft_runs();
    let ec = fx.attach("web", &cli, "cli", &[], &[]);
    assert_eq!(
        fx.nets.nft_runs(),
        before,
        "no nft run for a container without ports"
    );
    let _t = Peer::tcp(Some(&srv), 80);
    let _u = Peer::udp(Some(&srv), 81);
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, tp));
    let host = SocketAddr::from((host_side, tp));
    // From the host on 127.0.0.1: the source is masqueraded to the gateway.
    assert_eq!(tcp_ask(None, lo).unwrap(), es.gateway.to_string());
    assert_eq!(
        udp_ask(None, SocketAddr::from((Ipv4Addr::LOCALHOST, up))).unwrap(),
        es.gateway.to_string()
    );
    // From the host on one of its own addresses: the source is that address.
    assert_eq!(tcp_ask(None, host).unwrap(), host_side.to_string());
    // From another host: its own address is seen.
    let out_ip = fx.outside.as_ref().unwrap().ip;
    assert_eq!(tcp_ask(Some(&out_ns), host).unwrap(), out_ip.to_string());
    assert_eq!(
        udp_ask(Some(&out_ns), SocketAddr::from((host_side, up))).unwrap(),
        out_ip.to_string()
    );
    // From a container on the same bridge through the host's address (hairpin): masqueraded.
    assert_eq!(tcp_ask(Some(&cli), host).unwrap(), es.gateway.to_string());
    let _ = ec;
    // Detach removes exactly its elements.
    fx.nets.detach("web", "srv").unwrap();
    let maps = sh(&format!("nft list table inet {}", fx.opts.table));
    assert!(!maps.contains(&es.ip.to_string()), "{maps}");
    assert!(tcp_ask(None, lo).is_err());
    fx.finish();
}

#[test]
fn ports_on_one_address_ranges_and_random_ports() {
    let mut fx = Fixture::new();
    create(&fx, "r", "10.231.22.0/24");
    let ns = fx.netns("s");
    let p = free_port();
    let ep = fx.attach(
        "r",
        &ns,
        "srv",
        &[],
        &[&format!("127.0.0.1:{p}:80"), "90-91", "7000"],
    );
    assert_eq!(ep.ports.len(), 4);
    assert_eq!(ep.ports[0].host_ip, Ipv4Addr::LOCALHOST);
    let (lo, hi) = berth_net::ports::ephemeral_range();
    assert!(
        ep.ports[1..]
            .iter()
            .all(|m| (lo..=hi).contains(&m.host_port)),
        "{:?}",
        ep.ports
    );
    assert_eq!(
        ep.docker_ports()[0],
        (
            "80/tcp".to_string(),
            vec![("127.0.0.1".to_string(), p.to_string())]
        )
    );
    let _a = Peer::tcp(Some(&ns), 80);
    let _b = Peer::tcp(Some(&ns), 91);
    assert!(tcp_ask(None, SocketAddr::from((Ipv4Addr::LOCALHOST, p))).is_ok());
    let r91 = ep
        .ports
        .iter()
        .find(|m| m.container_port == 91)
        .unwrap()
        .host_port;
    assert!(tcp_ask(None, SocketAddr::from((Ipv4Addr::LOCALHOST, r91))).is_ok());
    fx.finish();
}

#[test]
fn a_port_in_use_is_refused_before_anything_is_made() {
    let mut fx = Fixture::new();
    create(&fx, "busy", "10.231.23.0/24");
    let (a, b) = (fx.netns("a"), fx.netns("b"));
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = fx
        .try_attach("busy", &a, "ca", &[], &[&format!("{port}:80")])
        .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "port 0.0.0.0:{port}/tcp: already in use on the host"
        )),
        "{e}"
    );
    assert!(fx.nets.endpoints("busy").unwrap().is_empty());
    assert!(
        !sh("ip -o link").contains(&fx.opts.veth_prefix),
        "a veth was made"
    );
    drop(taken);
    // berth's own claim is refused too, with the owner named.
    fx.attach("busy", &a, "ca", &[], &[&format!("{port}:80")]);
    let e = fx
        .try_attach("busy", &b, "cb", &[], &[&format!("127.0.0.1:{port}:80")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("port 127.0.0.1:{port}/tcp: already published by container ca")
    );
    assert_eq!(fx.nets.endpoints("busy").unwrap().len(), 1);
    fx.finish();
}
