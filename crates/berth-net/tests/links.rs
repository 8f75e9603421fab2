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
    // explain: the kernel's view from inside, and inspect's facts.
    let x = fx.nets.explain(&ea).unwrap();
    assert_eq!(
        (x.host_veth.as_str(), x.bridge.as_str()),
        (ea.host_veth.as_str(), ea.bridge.as_str())
    );
    let eth0 = x.interfaces.iter().find(|i| i.name == "eth0").unwrap();
    assert!(eth0.up && eth0.mac.as_deref() == Some(ea.mac.as_str()));
    assert!(
        eth0.addresses.contains(&"10.231.1.2/24".parse().unwrap()),
        "{:?}",
        eth0.addresses
    );
    assert!(x.interfaces.iter().any(|i| i.name == "lo" && i.up));
    assert!(
        x.routes
            .iter()
            .any(|r| r.0.prefix_len() == 0 && r.1 == Some(ea.gateway.into())),
        "{:?}",
        x.routes
    );
    let s = ea.settings();
    assert_eq!(
        (s.ip_address.as_str(), s.gateway.as_str(), s.ip_prefix_len),
        ("10.231.1.2", "10.231.1.1", 24)
    );
    // The namespace's IPv4 default gateway read back over netlink (as rootless host-gateway
    // reads pasta's); a namespace without a default route has none.
    assert_eq!(
        berth_net::netns::ipv4_gateway(&a).unwrap(),
        Some(ea.gateway)
    );
    let bare = fx.netns("bare");
    assert_eq!(berth_net::netns::ipv4_gateway(&bare).unwrap(), None);
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
