//! Links and forwarding, as root against the real kernel: containers are network namespaces.

mod common;

use std::net::SocketAddr;

use berth_net::CreateRequest;
use common::{tcp_ask, Fixture, Peer};

fn create(fx: &Fixture, name: &str, subnet: &str, internal: bool) -> berth_net::NetworkConfig {
    fx.nets
        .create(&CreateRequest {
            name: name.into(),
            subnet: Some(subnet.parse().unwrap()),
            internal,
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn containers_on_one_network_reach_each_other_and_not_another_network() {
    let mut fx = Fixture::new();
    create(&fx, "front", "10.231.1.0/24", false);
    create(&fx, "back", "10.231.2.0/24", false);
    let (a, b, c) = (fx.netns("a"), fx.netns("b"), fx.netns("c"));
    let ea = fx.attach("front", &a, "ca", &[], &[]);
    let eb = fx.attach("front", &b, "cb", &[], &[]);
    let ec = fx.attach("back", &c, "cc", &[], &[]);
    assert_eq!(ea.ip.to_string(), "10.231.1.2");
    assert_eq!(eb.ip.to_string(), "10.231.1.3");
    assert_eq!(ea.mac, "02:42:0a:e7:01:02");
    let _srv = Peer::tcp(Some(&a), 80);
    let to_a = SocketAddr::from((ea.ip, 80));
    // Same network: direct, so the server sees b's own address.
    assert_eq!(tcp_ask(Some(&b), to_a).unwrap(), eb.ip.to_string());
    // Another network: dropped in the forward chain.
    assert!(tcp_ask(Some(&c), to_a).is_err(), "back reached front");
    // The host reaches both through its bridges.
    assert_eq!(tcp_ask(None, to_a).unwrap(), ea.gateway.to_string());
    let _ = ec;
    fx.finish();
}

#[test]
fn outbound_is_masqueraded_and_internal_networks_have_no_way_out() {
    let mut fx = Fixture::new();
    let out = fx.outside(11);
    let (out_ns, out_ip, host_side) = (out.ns.clone(), out.ip, out.host_ip);
    create(&fx, "open", "10.231.11.0/24", false);
    create(&fx, "closed", "10.231.12.0/24", true);
    let (a, b) = (fx.netns("a"), fx.netns("b"));
    fx.attach("open", &a, "ca", &[], &[]);
    let eb = fx.attach("closed", &b, "cb", &[], &[]);
    let _srv = Peer::tcp(Some(&out_ns), 8080);
    let server = SocketAddr::from((out_ip, 8080));
    // The outside host has no route to 10.231.11.0/24: it answers the host's address.
    assert_eq!(tcp_ask(Some(&a), server).unwrap(), host_side.to_string());
    assert!(
        tcp_ask(Some(&b), server).is_err(),
        "internal network reached outside"
    );
    // The host still reaches a container on an internal network.
    let _in = Peer::tcp(Some(&b), 81);
    assert_eq!(
        tcp_ask(None, SocketAddr::from((eb.ip, 81))).unwrap(),
        eb.gateway.to_string()
    );
    fx.finish();
}
