//! The addresses a container asks for on its first network beyond `--ip`: `--mac-address` (six
//! octets, unicast), `--ip6` (a user network with an IPv6 subnet) and `--link-local-ip`
//! (169.254.0.0/16 or fe80::/10, on user networks), checked at create into its attachment.
//! The lease itself (and an `--ip6` already taken) is berth-net's, at each start.

use super::Attachment;
use crate::error::{EngineError, Result};
use crate::options::RunOptions;
use crate::Engine;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::IpAddr;

/// `--mac-address` as berth-net takes it, or a one-line refusal naming it.
pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6]> {
    berth_net::link::parse_mac(s).ok_or_else(|| {
        EngineError::msg(format!(
            "invalid --mac-address {s:?}: expected six hex octets of a unicast address (92:d0:c6:0a:29:33)"
        ))
    })
}

/// A link-local address with its link's prefix (/16 for IPv4, /64 for IPv6).
pub(crate) fn link_local_net(ip: IpAddr) -> Result<IpNet> {
    let net = match ip {
        IpAddr::V4(a) if a.is_link_local() => IpNet::V4(Ipv4Net::new(a, 16).expect("16 fits")),
        IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80 => {
            IpNet::V6(Ipv6Net::new(a, 64).expect("64 fits"))
        }
        _ => {
            return Err(EngineError::msg(format!(
                "invalid --link-local-ip {ip}: not a link-local address (169.254.0.0/16, fe80::/10)"
            )))
        }
    };
    Ok(net)
}

impl Engine {
    /// Puts `o`'s `--mac-address`, `--ip6` and `--link-local-ip`s into the attachment to its
    /// network `a`, checked: the IPv6 ones only on a user network, `--ip6` only where the
    /// network has an IPv6 subnet and inside it.
    pub(crate) fn add_addresses(
        &self,
        a: &mut Attachment,
        o: &RunOptions,
        user_network: bool,
    ) -> Result<()> {
        if let Some(m) = &o.mac_address {
            a.mac = Some(berth_net::link::format_mac(parse_mac(m)?));
        }
        if (o.ip6.is_some() || !o.link_local_ips.is_empty()) && !user_network {
            return Err(EngineError::msg(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        for ip in &o.link_local_ips {
            link_local_net(*ip)?;
        }
        a.link_local = o.link_local_ips.clone();
        if let Some(ip6) = o.ip6 {
            let cfg = self.networks()?.get(&a.network)?;
            match cfg.subnet6 {
                None => {
                    return Err(EngineError::msg(format!(
                        "invalid --ip6 {ip6}: network {:?} has no IPv6 subnet (berth networks are IPv4 unless made with --ipv6 --subnet)",
                        cfg.name
                    )))
                }
                Some(s6) if !s6.contains(&ip6) => {
                    return Err(EngineError::msg(format!(
                        "invalid --ip6 {ip6}: not in network {:?}'s subnet {s6}",
                        cfg.name
                    )))
                }
                Some(_) => a.ip6 = Some(ip6),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_must_be_six_unicast_octets() {
        assert!(parse_mac("92:d0:c6:0a:29:33").is_ok());
        assert!(parse_mac("92-d0-c6-0a-29-33").is_ok());
        for bad in [
            "01:00:5e:00:00:01",
            "92:d0:c6:0a:29",
            "92:d0:c6:0a:29:33:44",
            "zz:d0:c6:0a:29:33",
            "00:00:00:00:00:00",
        ] {
            let e = parse_mac(bad).unwrap_err().to_string();
            assert!(e.contains("--mac-address") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn link_local_addresses_get_their_links_prefix() {
        let v4 = link_local_net("169.254.3.4".parse().unwrap()).unwrap();
        assert_eq!(v4.to_string(), "169.254.3.4/16");
        let v6 = link_local_net("fe80::12".parse().unwrap()).unwrap();
        assert_eq!(v6.to_string(), "fe80::12/64");
        assert!(link_local_net("10.0.0.1".parse().unwrap()).is_err());
        assert!(link_local_net("fd00::1".parse().unwrap()).is_err());
    }
}
