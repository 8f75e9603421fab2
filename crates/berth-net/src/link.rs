//! rtnetlink, synchronously: a socket bound to the network namespace it was opened in, requests
//! acknowledged one by one, dumps read to the end. Owns the bridges and veth pairs berth makes and
//! the addresses and routes it puts on them; it never changes a link it was not named (by name or
//! index) by its caller.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, RawFd};

use ipnet::{IpNet, Ipv4Net};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: unreadable netlink reply: {detail}")]
    Decode { what: String, detail: String },
}

impl LinkError {
    /// The errno of a refused request, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            LinkError::Request { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A route of the host's main table, as read for overlap checks and `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
}

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAddress {
    pub index: u32,
    pub address: IpNet,
}

/// A link's name, index, state and MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub mac: Option<[u8; 6]>,
    pub controller: Option<u32>,
}

/// One rtnetlink socket. Its namespace is the one current when it was opened.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    pub fn open() -> Result<Netlink, LinkError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(LinkError::Socket)?;
        sock.bind_auto().map_err(LinkError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(LinkError::Socket)?;
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0)?;
        Ok(self.seq)
    }

    /// Reads replies to `seq`, handing each inner message to `each`, until the ack (or the end of
    /// a dump).
    fn receive(
        &mut self,
        seq: u32,
        what: &dyn Fn() -> String,
        each: &mut dyn FnMut(RouteNetlinkMessage),
    ) -> Result<(), LinkError> {
        loop {
            self.buf.clear();
            let n = self
                .sock
                .recv(&mut self.buf, 0)
                .map_err(|source| LinkError::Request {
                    what: what(),
                    source,
                })?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| LinkError::Decode {
                        what: what(),
                        detail: e.to_string(),
                    })?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::Done(_) => return Ok(()),
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(()),
                                Some(_) => Err(LinkError::Request {
                                    what: what(),
                                    source: e.to_io(),
                                }),
                            }
                        }
                        NetlinkPayload::InnerMessage(m) => each(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// Sends one change and waits for its acknowledgement.
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &dyn Fn() -> String,
    ) -> Result<(), LinkError> {
        let seq = self
            .send(msg, NLM_F_ACK | flags)
            .map_err(|source| LinkError::Request {
                what: what(),
                source,
            })?;
        self.receive(seq, what, &mut |_| {})
    }

    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, LinkError> {
        let seq = self
            .send(msg, NLM_F_DUMP)
            .map_err(|source| LinkError::Request {
                what: what(),
                source,
            })?;
        let mut out = Vec::new();
        self.receive(seq, what, &mut |m| out.push(m))?;
        Ok(out)
    }

    /// The link named `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, LinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let seq = self
            .send(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK)
            .map_err(|source| LinkError::Request {
                what: format!("link {name:?}"),
                source,
            })?;
        let mut found = None;
        match self.receive(seq, &|| format!("link {name:?}"), &mut |m| {
            if let RouteNetlinkMessage::NewLink(l) = m {
                found = Some(to_link(&l));
            }
        }) {
            Ok(()) => Ok(found),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of this namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, LinkError> {
        let msgs = self.dump(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            &|| "list links".into(),
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(&l)),
                _ => None,
            })
            .collect())
    }

    /// Makes a bridge named `name` with a fixed MAC (so it does not change as ports come and go).
    pub fn add_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<(), LinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("create bridge {name:?}"),
        )
    }

    /// Makes a veth pair in one request: `host` up on `controller` (a bridge) here, and its peer
    /// named `peer` with `peer_mac` directly in the namespace `netns_fd`.
    pub fn add_veth(
        &mut self,
        host: &str,
        controller: u32,
        peer: &str,
        peer_mac: [u8; 6],
        netns_fd: RawFd,
    ) -> Result<(), LinkError> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_msg
            .attributes
            .push(LinkAttribute::Address(peer_mac.to_vec()));
        peer_msg.attributes.push(LinkAttribute::NetNsFd(netns_fd));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(controller));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("create veth {host:?}"),
        )
    }

    /// Sets a link up.
    pub fn set_up(&mut self, index: u32, name: &str) -> Result<(), LinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &|| {
            format!("set link {name:?} up")
        })
    }

    /// Deletes the link named `name`; `Ok(false)` if there was none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool, LinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0, &|| {
            format!("delete link {name:?}")
        }) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `addr/prefix` to a link (`EEXIST` is success: the call is idempotent).
    pub fn add_address(&mut self, index: u32, net: IpNet, what: &str) -> Result<(), LinkError> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = net.prefix_len();
        msg.header.scope = AddressScope::Universe;
        match net {
            IpNet::V4(n) => {
                msg.header.family = AddressFamily::Inet;
                msg.attributes
                    .push(AddressAttribute::Local(n.addr().into()));
                msg.attributes
                    .push(AddressAttribute::Address(n.addr().into()));
                msg.attributes
                    .push(AddressAttribute::Broadcast(n.broadcast()));
            }
            IpNet::V6(n) => {
                msg.header.family = AddressFamily::Inet6;
                msg.attributes
                    .push(AddressAttribute::Address(n.addr().into()));
                // No duplicate address detection: the address is ours by lease, and a tentative
                // address would not answer for a second or so.
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        match self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add address {net} to {what:?}"),
        ) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Every address of this namespace.
    pub fn addresses(&mut self) -> Result<Vec<LinkAddress>, LinkError> {
        let msgs = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            &|| "list addresses".into(),
        )?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            let ip = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = ip {
                if let Ok(address) = IpNet::new(ip, a.header.prefix_len) {
                    out.push(LinkAddress {
                        index: a.header.index,
                        address,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Adds a default route through `gateway` (IPv4 or IPv6).
    pub fn add_default_route(&mut self, gateway: IpAddr, oif: u32) -> Result<(), LinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = match gateway {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.header.table = libc::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        msg.attributes.push(RouteAttribute::Oif(oif));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add default route via {gateway}"),
        )
    }

    /// The routes of the main table for one family.
    pub fn routes(&mut self, v6: bool) -> Result<Vec<Route>, LinkError> {
        let mut q = RouteMessage::default();
        q.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(q), &|| "list routes".into())?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            if r.header.table != libc::RT_TABLE_MAIN || r.header.kind != RouteType::Unicast {
                continue;
            }
            let mut dst: Option<IpAddr> = None;
            let mut gateway = None;
            let mut oif = None;
            for at in &r.attributes {
                match at {
                    RouteAttribute::Destination(a) => dst = route_ip(a),
                    RouteAttribute::Gateway(a) => gateway = route_ip(a),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            let dst = dst.unwrap_or(if v6 {
                IpAddr::from([0u16; 8])
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            });
            if let Ok(destination) = IpNet::new(dst, r.header.destination_prefix_length) {
                out.push(Route {
                    destination,
                    gateway,
                    oif,
                });
            }
        }
        Ok(out)
    }
}

impl AsRawFd for Netlink {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn to_link(l: &LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        up: l.header.flags.contains(LinkFlags::Up),
        mac: None,
        controller: None,
    };
    for at in &l.attributes {
        match at {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(a);
                link.mac = Some(mac);
            }
            LinkAttribute::Controller(c) => link.controller = Some(*c),
            _ => {}
        }
    }
    link
}

/// True if `net` overlaps any of `routes`, except default routes (which cover everything).
pub fn overlapping_route(net: &IpNet, routes: &[Route]) -> Option<IpNet> {
    routes
        .iter()
        .map(|r| r.destination)
        .filter(|d| d.prefix_len() > 0)
        .find(|d| overlaps(net, d))
}

/// The gateway of the IPv4 default route among `routes` (the first, as the kernel lists them),
/// if there is one with a gateway (a default route through a device alone has none).
pub fn default_gateway_v4(routes: &[Route]) -> Option<Ipv4Addr> {
    routes
        .iter()
        .filter(|r| r.destination.prefix_len() == 0)
        .find_map(|r| match (r.destination, r.gateway) {
            (IpNet::V4(_), Some(IpAddr::V4(gw))) => Some(gw),
            _ => None,
        })
}

/// Whether two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Docker's MAC for an IPv4 address: 02:42 followed by the address's four bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A MAC address as `--mac-address` takes it (`92:d0:c6:0a:29:33`, or with dashes): six
/// octets, unicast (the first octet's lowest bit clear) and not all zero.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(&parts) {
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    (mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The gateway address as an interface address of `subnet` (for the bridge).
pub fn gateway_net(gateway: Ipv4Addr, subnet: Ipv4Net) -> IpNet {
    IpNet::V4(Ipv4Net::new(gateway, subnet.prefix_len()).expect("prefix of a valid subnet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_docker_shaped() {
        assert_eq!(
            format_mac(mac_for("172.17.0.2".parse().unwrap())),
            "02:42:ac:11:00:02"
        );
    }

    #[test]
    fn overlap_is_symmetric_and_ignores_default_routes() {
        let a: IpNet = "10.1.0.0/16".parse().unwrap();
        let b: IpNet = "10.1.2.0/24".parse().unwrap();
        let c: IpNet = "10.2.0.0/16".parse().unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a) && !overlaps(&a, &c));
        let routes = vec![
            Route {
                destination: "0.0.0.0/0".parse().unwrap(),
                gateway: None,
                oif: None,
            },
            Route {
                destination: c,
                gateway: None,
                oif: None,
            },
        ];
        assert_eq!(overlapping_route(&a, &routes), None);
        assert_eq!(
            overlapping_route(&"10.2.3.0/24".parse().unwrap(), &routes),
            Some(c)
        );
    }

    #[test]
    fn the_ipv4_default_gateway_is_the_default_route_with_a_gateway() {
        let route = |dst: &str, gw: Option<&str>| Route {
            destination: dst.parse().unwrap(),
            gateway: gw.map(|g| g.parse().unwrap()),
            oif: Some(2),
        };
        let routes = vec![
            route("192.0.2.0/24", None),
            route("10.0.0.0/8", Some("192.0.2.9")),
            route("::/0", Some("fe80::1")),
            route("0.0.0.0/0", Some("192.0.2.1")),
        ];
        assert_eq!(
            default_gateway_v4(&routes),
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        // No default route, or one through a device alone: no gateway.
        assert_eq!(default_gateway_v4(&routes[..3]), None);
        assert_eq!(default_gateway_v4(&[route("0.0.0.0/0", None)]), None);
    }
}
