//! Work inside a container's network namespace from a single-threaded caller: a short-lived thread
//! `setns`es into the namespace, opens the netlink socket and exits (the socket stays bound to the
//! namespace it was made in). It never changes the calling thread's namespace and leaves no thread
//! behind: the helper is joined before the call returns.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use nix::sched::{setns, CloneFlags};

use crate::link::{LinkError, Netlink};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {path}: setns: {source}")]
    Enter {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("network namespace {path}: {source}")]
    Link {
        path: PathBuf,
        #[source]
        source: LinkError,
    },
    #[error("network namespace {path}: no interface {ifname:?}")]
    NoInterface { path: PathBuf, ifname: String },
}

/// Opens the namespace file (for `IFLA_NET_NS_FD`).
pub fn open(netns: &Path) -> Result<File, NetnsError> {
    File::open(netns).map_err(|source| NetnsError::Open {
        path: netns.to_path_buf(),
        source,
    })
}

/// A netlink socket inside the namespace `ns` (an open namespace file).
pub fn netlink_in(ns: &File, path: &Path) -> Result<Netlink, NetnsError> {
    let fd = ns.try_clone().map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let p = path.to_path_buf();
    let helper = std::thread::spawn(move || -> Result<Netlink, NetnsError> {
        setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
            path: p.clone(),
            source,
        })?;
        Netlink::open().map_err(|source| NetnsError::Link { path: p, source })
    });
    match helper.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The IPv4 default gateway of the namespace bound at `netns`, as its main table holds it
/// (`None` without one), read over a netlink socket opened inside.
pub fn ipv4_gateway(netns: &Path) -> Result<Option<Ipv4Addr>, NetnsError> {
    let mut nl = netlink_in(&open(netns)?, netns)?;
    let routes = nl.routes(false).map_err(|source| NetnsError::Link {
        path: netns.to_path_buf(),
        source,
    })?;
    Ok(crate::link::default_gateway_v4(&routes))
}

/// What the container's side of an endpoint gets.
pub struct InsideConfig<'a> {
    pub ifname: &'a str,
    pub address: IpNet,
    pub gateway: IpAddr,
    pub address6: Option<(IpNet, IpAddr)>,
    /// `--link-local-ip`s, added beside the addresses.
    pub link_local: &'a [IpNet],
}

/// Inside the namespace: `lo` up, the address on `ifname`, `ifname` up, the default route(s)
/// unless the namespace has them already (a second network's interface: the first network keeps
/// the way out, as Docker's).
pub fn configure_inside(nl: &mut Netlink, path: &Path, c: &InsideConfig) -> Result<(), NetnsError> {
    let err = |source| NetnsError::Link {
        path: path.to_path_buf(),
        source,
    };
    if let Some(lo) = nl.link_by_name("lo").map_err(err)? {
        if !lo.up {
            nl.set_up(lo.index, "lo").map_err(err)?;
        }
    }
    let link = nl
        .link_by_name(c.ifname)
        .map_err(err)?
        .ok_or_else(|| NetnsError::NoInterface {
            path: path.to_path_buf(),
            ifname: c.ifname.to_string(),
        })?;
    nl.add_address(link.index, c.address, c.ifname)
        .map_err(err)?;
    if let Some((a6, _)) = c.address6 {
        nl.add_address(link.index, a6, c.ifname).map_err(err)?;
    }
    for ll in c.link_local {
        nl.add_address(link.index, *ll, c.ifname).map_err(err)?;
    }
    nl.set_up(link.index, c.ifname).map_err(err)?;
    let already = |r: Result<(), crate::link::LinkError>| match r {
        Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
        r => r,
    };
    already(nl.add_default_route(c.gateway, link.index)).map_err(err)?;
    if let Some((_, gw6)) = c.address6 {
        already(nl.add_default_route(gw6, link.index)).map_err(err)?;
    }
    Ok(())
}
