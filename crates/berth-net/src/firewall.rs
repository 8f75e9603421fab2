//! berth's nftables rules, all in one `inet` table of its own (default `berth`), written through
//! the `nftables` crate (JSON through `nft -j -f -`). The chains are fixed; networks and published
//! ports are elements of named sets and maps, so a network or a container adds or deletes exactly
//! its own elements and deleting the table removes everything berth did. It never reads or
//! touches another table.
//!
//! forward: traffic inside one bridge passes; an internal bridge's traffic to or from anywhere
//! else is dropped; into a bridge only replies and published (DNAT-ed) connections pass, which
//! also isolates bridges from each other. prerouting/output: a packet to a local address (any of
//! the host's, 127.0.0.1 included) on a published port is DNAT-ed to its container. postrouting:
//! masquerade a network's traffic leaving through a non-berth interface, DNAT-ed traffic from a
//! berth subnet back into a bridge (hairpin), and 127.0.0.0/8 sources sent into a bridge (the
//! host's own connections to 127.0.0.1, with `route_localnet` on the bridge).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Map as MapExpr, Meta, MetaKey, NamedExpression, Payload,
    PayloadField, Prefix, CT,
};
use nftables::schema::{
    Chain, Element, Map, NfListObject, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{JumpTarget, Match, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::config::NetworkConfig;
use crate::ports::{PortMapping, Proto};

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables table {table:?}: running {nft:?}: {source}")]
    Run {
        table: String,
        nft: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nftables table {table:?}: nft failed ({status}): {detail}")]
    Nft {
        table: String,
        status: std::process::ExitStatus,
        /// nft's own first line of complaint.
        detail: String,
    },
}

/// berth's table and the `nft` binary that loads it.
#[derive(Debug, Clone, Default)]
pub struct Firewall {
    pub table: String,
    pub nft: String,
    /// How many times `nft` was run through this value (to keep the per-attach count honest).
    pub runs: Arc<AtomicU32>,
}

const FAMILY: NfFamily = NfFamily::INet;

fn s(v: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(v.to_string()))
}
fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}
fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(field),
        },
    )))
}
fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}
fn concat(items: Vec<Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(items))
}
fn prefix(addr: String, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(&addr)),
        len: len.into(),
    }))
}
fn m(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}
fn is(left: Expression<'static>, right: &str) -> Statement<'static> {
    m(left, Operator::EQ, s(right))
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// Map names: published on one address (`pub_*`) or on every local address (`any_*`).
fn map_name(kind: &str, p: Proto, part: &str) -> String {
    format!("{kind}_{}_{part}", proto_name(p))
}

impl Firewall {
    fn table(&self) -> Cow<'static, str> {
        Cow::Owned(self.table.clone())
    }

    /// Loads a batch through `nft -j -f` on its stdin, its output (and its complaints) captured: nothing
    /// of nft's reaches the user's terminal, and a failure says nft's first error line.
    fn apply(&self, batch: Batch<'static>) -> Result<(), FirewallError> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let payload = serde_json::to_vec(&batch.to_nftables()).expect("nftables JSON serializes");
        self.runs.fetch_add(1, Ordering::Relaxed);
        let run_err = |source| FirewallError::Run {
            table: self.table.clone(),
            nft: self.nft.clone(),
            source,
        };
        let mut child = Command::new(&self.nft)
            // `-` makes nft open /dev/stdin, which a minimal /dev may lack; the fd itself never.
            .args(["-j", "-f", "/proc/self/fd/0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(run_err)?;
        let written = child.stdin.take().expect("piped").write_all(&payload);
        let out = child.wait_with_output().map_err(run_err)?;
        written.map_err(run_err)?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(FirewallError::Nft {
            table: self.table.clone(),
            status: out.status,
            detail: stderr
                .lines()
                .find(|l| l.contains("Error"))
                .or_else(|| stderr.lines().next())
                .unwrap_or("no message")
                .trim()
                .to_string(),
        })
    }

    fn set(&self, name: &str, ty: SetTypeValue<'static>, interval: bool) -> NfListObject<'static> {
        NfListObject::Set(Box::new(Set {
            family: FAMILY,
            table: self.table(),
            name: Cow::Owned(name.into()),
            set_type: ty,
            flags: interval.then(|| HashSet::from([SetFlag::Interval])),
            ..Default::default()
        }))
    }

    fn map(
        &self,
        name: String,
        key: SetTypeValue<'static>,
        data: SetType,
    ) -> NfListObject<'static> {
        NfListObject::Map(Box::new(Map {
            family: FAMILY,
            table: self.table(),
            name: Cow::Owned(name),
            set_type: key,
            map: SetTypeValue::Single(data),
            ..Default::default()
        }))
    }

    fn chain(&self, name: &str, hook: Option<(NfChainType, NfHook, i32)>) -> NfListObject<'static> {
        NfListObject::Chain(Chain {
            family: FAMILY,
            table: self.table(),
            name: Cow::Owned(name.into()),
            _type: hook.map(|h| h.0),
            hook: hook.map(|h| h.1),
            prio: hook.map(|h| h.2),
            policy: hook.map(|_| NfChainPolicy::Accept),
            ..Default::default()
        })
    }

    fn rule(&self, chain: &str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
        NfListObject::Rule(Rule {
            family: FAMILY,
            table: self.table(),
            chain: Cow::Owned(chain.into()),
            expr: Cow::Owned(expr),
            ..Default::default()
        })
    }

    fn element(&self, set: &str, elem: Vec<Expression<'static>>) -> NfListObject<'static> {
        NfListObject::Element(Element {
            family: FAMILY,
            table: self.table(),
            name: Cow::Owned(set.into()),
            elem: Cow::Owned(elem),
        })
    }

    /// The table, its sets, maps and chains, empty of elements.
    fn skeleton(&self, b: &mut Batch<'static>) {
        use SetType::{Ifname, InetService, Ipv4Addr};
        let table = NfListObject::Table(Table {
            family: FAMILY,
            name: self.table(),
            ..Default::default()
        });
        // add + delete + add: the table exists afterwards, and nothing older is left in it.
        b.add(table.clone());
        b.delete(table.clone());
        b.add(table);
        b.add(self.set("bridges", SetTypeValue::Single(Ifname), false));
        b.add(self.set("internal", SetTypeValue::Single(Ifname), false));
        b.add(self.set(
            "same",
            SetTypeValue::Concatenated(vec![Ifname, Ifname].into()),
            false,
        ));
        b.add(self.set("masq4", SetTypeValue::Single(Ipv4Addr), true));
        b.add(self.set("subnets4", SetTypeValue::Single(Ipv4Addr), true));
        for p in [Proto::Tcp, Proto::Udp] {
            let on_ip = || SetTypeValue::Concatenated(vec![Ipv4Addr, InetService].into());
            b.add(self.map(map_name("pub", p, "addr"), on_ip(), Ipv4Addr));
            b.add(self.map(map_name("pub", p, "port"), on_ip(), InetService));
            let any = || SetTypeValue::Single(InetService);
            b.add(self.map(map_name("any", p, "addr"), any(), Ipv4Addr));
            b.add(self.map(map_name("any", p, "port"), any(), InetService));
        }
        b.add(self.chain("forward", Some((NfChainType::Filter, NfHook::Forward, 0))));
        b.add(self.chain("published", None));
        b.add(self.chain(
            "prerouting",
            Some((NfChainType::NAT, NfHook::Prerouting, -100)),
        ));
        b.add(self.chain("output", Some((NfChainType::NAT, NfHook::Output, -100))));
        b.add(self.chain(
            "postrouting",
            Some((NfChainType::NAT, NfHook::Postrouting, 100)),
        ));
        self.rules(b);
    }

    fn rules(&self, b: &mut Batch<'static>) {
        use MetaKey::{Iifname, Oifname};
        let fwd = [
            vec![
                m(
                    concat(vec![meta(Iifname), meta(Oifname)]),
                    Operator::EQ,
                    s("@same"),
                ),
                Statement::Accept(None),
            ],
            vec![is(meta(Iifname), "@internal"), Statement::Drop(None)],
            vec![is(meta(Oifname), "@internal"), Statement::Drop(None)],
            vec![
                is(meta(Oifname), "@bridges"),
                m(
                    ct("state"),
                    Operator::IN,
                    Expression::List(vec![s("established"), s("related")]),
                ),
                Statement::Accept(None),
            ],
            vec![
                is(meta(Oifname), "@bridges"),
                m(ct("status"), Operator::IN, s("dnat")),
                Statement::Accept(None),
            ],
            vec![is(meta(Oifname), "@bridges"), Statement::Drop(None)],
        ];
        for r in fwd {
            b.add(self.rule("forward", r));
        }
        let local = || {
            m(
                Expression::Named(NamedExpression::Fib(Fib {
                    result: FibResult::Type,
                    flags: HashSet::from([FibFlag::Daddr]),
                })),
                Operator::EQ,
                s("local"),
            )
        };
        let jump = || {
            Statement::Jump(JumpTarget {
                target: Cow::Borrowed("published"),
            })
        };
        b.add(self.rule("prerouting", vec![local(), jump()]));
        b.add(self.rule("output", vec![local(), jump()]));
        for p in [Proto::Tcp, Proto::Udp] {
            let on_ip = || {
                concat(vec![
                    payload("ip", "daddr"),
                    payload(proto_name(p), "dport"),
                ])
            };
            let any = || payload(proto_name(p), "dport");
            for (kind, key) in [
                ("pub", &on_ip as &dyn Fn() -> Expression<'static>),
                ("any", &any),
            ] {
                let lookup = |part: &str| {
                    Expression::Named(NamedExpression::Map(Box::new(MapExpr {
                        key: key(),
                        data: s(&format!("@{}", map_name(kind, p, part))),
                    })))
                };
                b.add(self.rule(
                    "published",
                    vec![
                        is(meta(MetaKey::L4proto), proto_name(p)),
                        Statement::DNAT(Some(NAT {
                            addr: Some(lookup("addr")),
                            family: Some(nftables::stmt::NATFamily::IP),
                            port: Some(lookup("port")),
                            flags: None,
                        })),
                    ],
                ));
            }
        }
        let post = [
            vec![
                is(meta(Oifname), "@bridges"),
                m(
                    payload("ip", "saddr"),
                    Operator::EQ,
                    prefix("127.0.0.0".into(), 8),
                ),
                Statement::Masquerade(None),
            ],
            vec![
                is(meta(Oifname), "@bridges"),
                m(ct("status"), Operator::IN, s("dnat")),
                is(payload("ip", "saddr"), "@subnets4"),
                Statement::Masquerade(None),
            ],
            vec![
                m(meta(Oifname), Operator::NEQ, s("@bridges")),
                is(payload("ip", "saddr"), "@masq4"),
                Statement::Masquerade(None),
            ],
        ];
        for r in post {
            b.add(self.rule("postrouting", r));
        }
    }

    fn network_elements(&self, n: &NetworkConfig) -> Vec<NfListObject<'static>> {
        let subnet = || {
            vec![prefix(
                n.subnet.network().to_string(),
                n.subnet.prefix_len(),
            )]
        };
        let mut v = vec![
            self.element("bridges", vec![s(&n.bridge)]),
            self.element("same", vec![concat(vec![s(&n.bridge), s(&n.bridge)])]),
            self.element("subnets4", subnet()),
        ];
        if n.internal {
            v.push(self.element("internal", vec![s(&n.bridge)]));
        } else {
            v.push(self.element("masq4", subnet()));
        }
        v
    }

    fn port_elements(
        &self,
        container_ip: std::net::Ipv4Addr,
        ports: &[PortMapping],
    ) -> Vec<NfListObject<'static>> {
        let mut v = Vec::new();
        for p in ports {
            let (kind, key) = if p.host_ip.is_unspecified() {
                ("any", Expression::Number(p.host_port.into()))
            } else {
                (
                    "pub",
                    concat(vec![
                        s(&p.host_ip.to_string()),
                        Expression::Number(p.host_port.into()),
                    ]),
                )
            };
            let addr = Expression::List(vec![key.clone(), s(&container_ip.to_string())]);
            let port = Expression::List(vec![key, Expression::Number(p.container_port.into())]);
            v.push(self.element(&map_name(kind, p.proto, "addr"), vec![addr]));
            v.push(self.element(&map_name(kind, p.proto, "port"), vec![port]));
        }
        v
    }

    /// Rebuilds the whole table from the state: every network and every published port.
    pub fn sync<'a>(
        &self,
        networks: &[NetworkConfig],
        published: impl IntoIterator<Item = (std::net::Ipv4Addr, &'a [PortMapping])>,
    ) -> Result<(), FirewallError> {
        let mut b = Batch::new();
        self.skeleton(&mut b);
        for n in networks {
            for e in self.network_elements(n) {
                b.add(e);
            }
        }
        for (ip, ports) in published {
            for e in self.port_elements(ip, ports) {
                b.add(e);
            }
        }
        self.apply(b)
    }

    /// Adds (or with `add == false` deletes) one network's elements.
    pub fn network(&self, n: &NetworkConfig, add: bool) -> Result<(), FirewallError> {
        let mut b = Batch::new();
        for e in self.network_elements(n) {
            if add {
                b.add(e)
            } else {
                b.delete(e)
            }
        }
        self.apply(b)
    }

    /// Adds (or deletes) one container's published ports. No ports: no `nft` run.
    pub fn ports(
        &self,
        container_ip: std::net::Ipv4Addr,
        ports: &[PortMapping],
        add: bool,
    ) -> Result<(), FirewallError> {
        if ports.is_empty() {
            return Ok(());
        }
        let mut b = Batch::new();
        for e in self.port_elements(container_ip, ports) {
            if add {
                b.add(e)
            } else {
                b.delete(e)
            }
        }
        self.apply(b)
    }

    /// Deletes berth's table (and so every rule berth made); a missing table is fine.
    pub fn delete_table(&self) -> Result<(), FirewallError> {
        let table = NfListObject::Table(Table {
            family: FAMILY,
            name: self.table(),
            ..Default::default()
        });
        let mut b = Batch::new();
        b.add(table.clone());
        b.delete(table);
        self.apply(b)
    }
}
