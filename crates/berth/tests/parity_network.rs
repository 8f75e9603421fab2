//! Docker's network flags, each proven from inside the container: `network create --ip-range`
//! and `--aux-address` (leases only from the range, auxiliary addresses never handed out, both
//! checked against the subnet), and what `network inspect` shows of them; `run --mac-address`,
//! `--ip6` (only on a network with an IPv6 subnet) and `--link-local-ip`.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{Sandbox, IMAGE};

/// The IPv4 address of `eth0`, as the container itself sees it.
fn inside_ip(sb: &Sandbox, c: &str) -> String {
    let out = sb.ok(&["exec", c, "ip", "-4", "-o", "addr", "show", "eth0"]);
    let word = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no inet in {out:?}"));
    word.split('/').next().unwrap().to_string()
}

#[test]
fn ip_range_bounds_leases_and_aux_addresses_are_never_handed_out() {
    let sb = Sandbox::new();
    sb.ok(&[
        "network",
        "create",
        "--subnet",
        "10.247.0.0/24",
        "--ip-range",
        "10.247.0.128/30",
        "--aux-address",
        "router=10.247.0.129",
        "rng",
    ]);
    let mut got: Vec<String> = (0..3)
        .map(|i| {
            let name = format!("r{i}");
            sb.run_d(&["--name", &name, "--network", "rng", IMAGE, "sleep", "60"]);
            inside_ip(&sb, &name)
        })
        .collect();
    got.sort();
    assert_eq!(got, ["10.247.0.128", "10.247.0.130", "10.247.0.131"]);
    // The range is used up; the auxiliary address stays out of it.
    let (code, _, err) = sb.cli("run --rm --network rng bb true");
    assert_ne!(code, 0);
    assert!(err.contains("no free address"), "{err}");
    let (code, _, err) = sb.cli("run --rm --network rng --ip 10.247.0.129 bb true");
    assert_ne!(code, 0);
    assert!(
        err.contains("10.247.0.129") && err.contains("reserved"),
        "{err}"
    );
    // A static address may lie outside the range (inside the subnet), as with Docker.
    let out = sb.sh_ok(
        "--network rng --ip 10.247.0.7",
        "ip -4 -o addr show eth0 | grep -o '10.247.0.7/24'",
    );
    assert_eq!(out, "10.247.0.7/24\n");
    let v: serde_json::Value =
        serde_json::from_str(&sb.ok(&["network", "inspect", "rng"])).unwrap();
    let pool = &v[0]["IPAM"]["Config"][0];
    assert_eq!(pool["IPRange"], "10.247.0.128/30");
    assert_eq!(
        pool["AuxiliaryAddresses"],
        serde_json::json!({"router": "10.247.0.129"})
    );
    for (args, want) in [
        (
            "--subnet 10.246.0.0/24 --ip-range 10.245.0.0/28 bad1",
            "ip range 10.245.0.0/28 is not inside subnet 10.246.0.0/24",
        ),
        (
            "--subnet 10.246.0.0/24 --aux-address gw2=10.9.9.9 bad2",
            "auxiliary address gw2=10.9.9.9",
        ),
        ("--ip-range 10.246.0.0/28 bad3", "--ip-range needs"),
        ("--aux-address x=10.246.0.5 bad4", "--aux-address needs"),
        (
            "--subnet 10.246.0.0/24 --aux-address novalue bad5",
            "invalid --aux-address",
        ),
    ] {
        let (code, _, err) = sb.cli(&format!("network create {args}"));
        assert_ne!(code, 0, "{args}");
        assert!(err.contains(want), "{args}: {err}");
    }
    sb.remove_all_and_assert_clean();
    sb.ok(&["network", "rm", "rng"]);
    let ls = sb.ok(&["network", "ls", "-q", "--filter", "name=bad"]);
    assert!(ls.trim().is_empty(), "refused networks were not made: {ls}");
}

#[test]
fn mac_ip6_and_link_local_addresses_reach_the_containers_interface() {
    let sb = Sandbox::new();
    sb.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.248.0.0/24",
        "--subnet",
        "fd00:b48::/64",
        "six",
    ]);
    sb.ok(&["network", "create", "--subnet", "10.249.0.0/24", "four"]);
    let id = sb.run_d(&[
        "--name",
        "addr",
        "--network",
        "six",
        "--mac-address",
        "92:D0:C6:0A:29:33",
        "--ip6",
        "fd00:b48::42",
        "--link-local-ip",
        "169.254.10.10",
        "--link-local-ip",
        "fe80::1:2",
        IMAGE,
        "sleep",
        "60",
    ]);
    let mac = sb.ok(&["exec", "addr", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac, "92:d0:c6:0a:29:33\n");
    let addrs = sb.ok(&["exec", "addr", "ip", "-o", "addr", "show", "eth0"]);
    for want in ["fd00:b48::42/64", "169.254.10.10/16", "fe80::1:2/64"] {
        assert!(addrs.contains(want), "{want} in {addrs}");
    }
    let net = &sb.inspect(&id)["NetworkSettings"]["Networks"]["six"];
    assert_eq!(net["MacAddress"], "92:d0:c6:0a:29:33");
    assert_eq!(net["GlobalIPv6Address"], "fd00:b48::42");
    // The same --ip6 twice is refused while the first holds it.
    let (code, _, err) = sb.cli("run --rm --network six --ip6 fd00:b48::42 bb true");
    assert_ne!(code, 0);
    assert!(
        err.contains("fd00:b48::42") && err.contains("in use"),
        "{err}"
    );
    for (flags, want) in [
        (
            "--network four --ip6 fd00:b48::43",
            "network \"four\" has no IPv6 subnet",
        ),
        ("--ip6 fd00:b48::43", "user defined networks only"),
        (
            "--network six --ip6 fd00:b49::1",
            "not in network \"six\"'s subnet",
        ),
        ("--mac-address 01:00:5e:00:00:01", "invalid --mac-address"),
        ("--mac-address 92:d0:c6:0a:29", "invalid --mac-address"),
        (
            "--network host --mac-address 92:d0:c6:0a:29:34",
            "mac-address",
        ),
        (
            "--network six --link-local-ip 10.0.0.1",
            "not a link-local address",
        ),
    ] {
        let (code, _, err) = sb.cli(&format!("run --rm {flags} bb true"));
        assert_eq!(code, 125, "{flags}: {err}");
        assert!(err.contains(want), "{flags}: {err}");
    }
    // On the default bridge a MAC is allowed, as with Docker.
    let mac = sb.sh_ok(
        "--mac-address 92:d0:c6:0a:29:35",
        "cat /sys/class/net/eth0/address",
    );
    assert_eq!(mac, "92:d0:c6:0a:29:35\n");
    sb.remove_all_and_assert_clean();
    sb.ok(&["network", "rm", "six", "four"]);
}
