//! The text of a container's `/etc/resolv.conf` and `/etc/hosts`, shaped as Docker writes them.
//! Pure functions of their inputs: the engine writes the files where it wants them.

use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilesError {
    #[error("--add-host {0:?}: expected HOST:IP")]
    AddHostSyntax(String),
    #[error("--add-host {0:?}: {1:?} is not an IP address")]
    AddHostAddress(String, String),
    #[error("--add-host {0:?}: host-gateway needs a network with a gateway")]
    NoGateway(String),
}

/// `--dns`, `--dns-search`, `--dns-option`.
#[derive(Debug, Clone, Default)]
pub struct DnsSettings {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The `nameserver` addresses of a resolv.conf text.
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    directive(text, "nameserver")
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect()
}

fn directive<'a>(text: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.lines().filter_map(move |l| {
        let l = l.trim();
        let rest = l.strip_prefix(key)?;
        rest.starts_with([' ', '\t']).then(|| rest.trim())
    })
}

/// Docker's fallback when the host has no resolver a container can reach.
const FALLBACK: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
];

/// A container's resolv.conf. `network_dns` is the network's resolver (the gateway of a user
/// network) or `None` (the default bridge, or no resolver): then the host's resolvers minus
/// loopback ones, which a container cannot reach. `--dns` replaces the nameservers;
/// `--dns-search` and `--dns-option` replace the host's `search` and `options`.
pub fn resolv_conf(host_text: &str, network_dns: Option<Ipv4Addr>, s: &DnsSettings) -> String {
    let servers: Vec<IpAddr> = if !s.servers.is_empty() {
        s.servers.clone()
    } else if let Some(gw) = network_dns {
        vec![IpAddr::V4(gw)]
    } else {
        let host: Vec<IpAddr> = nameservers(host_text)
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect();
        if host.is_empty() {
            FALLBACK.to_vec()
        } else {
            host
        }
    };
    let search: Vec<String> = if s.search.is_empty() {
        directive(host_text, "search")
            .flat_map(|v| v.split_whitespace().map(String::from))
            .collect()
    } else {
        s.search.clone()
    };
    let options: Vec<String> = if s.options.is_empty() {
        directive(host_text, "options")
            .flat_map(|v| v.split_whitespace().map(String::from))
            .collect()
    } else {
        s.options.clone()
    };
    let mut out: String = servers
        .iter()
        .map(|ip| format!("nameserver {ip}\n"))
        .collect();
    if !search.is_empty() {
        out += &format!("search {}\n", search.join(" "));
    }
    if !options.is_empty() {
        out += &format!("options {}\n", options.join(" "));
    }
    out
}

/// The `--add-host` address that stands for the host's side of the container's network.
pub const HOST_GATEWAY: &str = "host-gateway";

/// `--add-host HOST:IP` split into its host and its address text (brackets of an IPv6 address
/// dropped). An IPv6 address has colons of its own: the split is at the first colon.
fn split_add_host(spec: &str) -> Result<(&str, &str), FilesError> {
    let (host, ip) = spec
        .split_once(':')
        .filter(|(h, i)| !h.is_empty() && !i.is_empty())
        .ok_or_else(|| FilesError::AddHostSyntax(spec.to_string()))?;
    Ok((host, ip.trim_start_matches('[').trim_end_matches(']')))
}

/// Whether any `--add-host` names `host-gateway` (a malformed one, refused by `hosts`, does not).
pub fn asks_host_gateway(add_hosts: &[String]) -> bool {
    add_hosts
        .iter()
        .any(|spec| split_add_host(spec).is_ok_and(|(_, ip)| ip == HOST_GATEWAY))
}

/// A container's /etc/hosts: the standard entries, each `--add-host HOST:IP` (`host-gateway`
/// meaning `gateway`), then the container's own address with its hostname (and aliases).
pub fn hosts(
    own: Option<(IpAddr, &[String])>,
    add_hosts: &[String],
    gateway: Option<Ipv4Addr>,
) -> Result<String, FilesError> {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for spec in add_hosts {
        let (host, ip) = split_add_host(spec)?;
        let addr: IpAddr = if ip == HOST_GATEWAY {
            IpAddr::V4(gateway.ok_or_else(|| FilesError::NoGateway(spec.clone()))?)
        } else {
            ip.parse()
                .map_err(|_| FilesError::AddHostAddress(spec.clone(), ip.to_string()))?
        };
        out += &format!("{addr}\t{host}\n");
    }
    if let Some((ip, names)) = own {
        if !names.is_empty() {
            out += &format!("{ip}\t{}\n", names.join(" "));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch corp.example\noptions edns0 trust-ad\n";

    #[test]
    fn bridge_gets_host_resolvers_without_loopback() {
        assert_eq!(
            resolv_conf(HOST, None, &DnsSettings::default()),
            "nameserver 10.255.255.53\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        assert!(
            resolv_conf("nameserver 127.0.0.1\n", None, &DnsSettings::default())
                .starts_with("nameserver 8.8.8.8\n")
        );
    }

    #[test]
    fn user_network_points_at_its_gateway_and_flags_replace() {
        let gw = Some(Ipv4Addr::new(10, 7, 0, 1));
        assert!(resolv_conf(HOST, gw, &DnsSettings::default())
            .starts_with("nameserver 10.7.0.1\nsearch corp.example\n"));
        let s = DnsSettings {
            servers: vec!["1.1.1.1".parse().unwrap()],
            search: vec!["a.test".into(), "b.test".into()],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            resolv_conf(HOST, gw, &s),
            "nameserver 1.1.1.1\nsearch a.test b.test\noptions ndots:2\n"
        );
    }

    #[test]
    fn hosts_has_add_host_and_host_gateway_then_own_name() {
        let names = vec!["abc123".to_string(), "web".to_string()];
        let text = hosts(
            Some(("10.7.0.2".parse().unwrap(), &names)),
            &[
                "db:10.0.0.9".into(),
                "gw:host-gateway".into(),
                "v6:[fd00::1]".into(),
            ],
            Some(Ipv4Addr::new(10, 7, 0, 1)),
        )
        .unwrap();
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(
            text.ends_with("10.0.0.9\tdb\n10.7.0.1\tgw\nfd00::1\tv6\n10.7.0.2\tabc123 web\n"),
            "{text}"
        );
        assert_eq!(
            hosts(None, &["x".into()], None).unwrap_err(),
            FilesError::AddHostSyntax("x".into())
        );
        assert!(matches!(
            hosts(None, &["x:host-gateway".into()], None),
            Err(FilesError::NoGateway(_))
        ));
        assert!(matches!(
            hosts(None, &["x:nope".into()], None),
            Err(FilesError::AddHostAddress(..))
        ));
    }

    #[test]
    fn only_a_well_formed_host_gateway_entry_asks_for_the_host() {
        let asks = |specs: &[&str]| {
            asks_host_gateway(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert!(asks(&["db:10.0.0.9", "h:host-gateway"]));
        assert!(asks(&["h:[host-gateway]"]));
        assert!(!asks(&[]));
        assert!(!asks(&["db:10.0.0.9", "v6:[fd00::1]"]));
        assert!(!asks(&[":host-gateway", "host-gateway"]));
        assert!(!asks(&["h:host-gateway.example"]));
    }
}
