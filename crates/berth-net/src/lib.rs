//! berth's container networks, as a library the engine calls: Docker's bridge driver (a Linux
//! bridge per network, a veth pair per container, an address lease, masquerade and published
//! ports in berth's own nftables table) and a small resolver per user network. It parses no
//! command line, prints nothing and knows nothing of images or container records: the engine
//! hands it a namespace path, a container id and a liveness key.
//!
//! Every call is synchronous and leaves no thread or runtime behind: netlink is spoken on
//! blocking sockets, a namespace is entered only by a short-lived helper thread that is joined
//! before the call returns, and nftables changes are one `nft` run each (none for a container
//! that publishes no port). Host changes berth makes: `net.ipv4.ip_forward=1` and
//! `route_localnet=1` on its bridges (see `store.rs`).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod config;
pub mod dns;
pub mod endpoint;
pub mod files;
pub mod firewall;
pub mod inspect;
pub mod ipam;
pub mod link;
pub mod liveness;
pub mod netns;
pub mod ports;
pub mod reclaim;
pub mod state;
pub mod store;

pub use config::{CreateRequest, NetworkConfig, DEFAULT_NETWORK};
pub use dns::DnsCommand;
pub use endpoint::{AttachRequest, Endpoint, EndpointError};
pub use files::{hosts, resolv_conf, DnsSettings};
pub use inspect::{EndpointSettings, Explain, IpamRequest};
pub use ports::{PortMapping, PortSpec, Proto};
pub use reclaim::ReclaimReport;
pub use store::{DefaultNetwork, NetworkError, Networks, Options};
