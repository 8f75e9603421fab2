//! Network endpoints: list, inspect, create, remove, connect, disconnect, prune (the engine's
//! `network` commands).

use crate::docker::{NetworkConnect, NetworkCreate};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Query, Resp};
use crate::router::Req;
use crate::state::App;
use hyper::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn list(app: &Arc<App>, q: &Query) -> ApiResult<Resp> {
    let filters = q.filters()?;
    let nets = app
        .blocking(move |e| {
            let mut out = Vec::new();
            for row in e.network_rows()? {
                let keep = crate::http::filters_match(&filters, |k, v| match k {
                    "name" => row.name.contains(v),
                    "id" => row.id.starts_with(v),
                    "driver" => row.driver == v,
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => row.labels.get(lk).is_some_and(|l| l == lv),
                        None => row.labels.contains_key(v),
                    },
                    "type" => {
                        (v == "builtin") == matches!(row.name.as_str(), "bridge" | "host" | "none")
                    }
                    _ => false,
                });
                if keep {
                    out.push(e.inspect_network(&row.name)?);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(http::json(StatusCode::OK, &nets))
}

pub async fn inspect(app: &Arc<App>, id: &str) -> ApiResult<Resp> {
    let what = id.to_string();
    let n = app.blocking(move |e| Ok(e.inspect_network(&what)?)).await?;
    Ok(http::json(StatusCode::OK, &n))
}

pub async fn create(app: &Arc<App>, req: Req) -> ApiResult<Resp> {
    let body = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let c: NetworkCreate = http::parse_json(&body)?;
    let name = c
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad("network name is required"))?;
    if let Some(d) = c
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "bridge")
    {
        return Err(ApiError::bad(format!(
            "network driver {d:?} is not supported by berth (bridge)"
        )));
    }
    // Swarm's and plugins' kinds of network, refused by name rather than made as a bridge.
    let refused = [
        ("Ingress", c.ingress == Some(true)),
        ("ConfigOnly", c.config_only == Some(true)),
        (
            "ConfigFrom",
            c.config_from.as_ref().is_some_and(|v| !v.is_null()),
        ),
        (
            "Scope",
            c.scope
                .as_deref()
                .is_some_and(|s| !matches!(s, "" | "local")),
        ),
        (
            "IPAM.Driver",
            c.ipam
                .as_ref()
                .and_then(|i| i.driver.as_deref())
                .is_some_and(|d| !matches!(d, "" | "default")),
        ),
    ];
    if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
        return Err(ApiError::bad(format!(
            "network {field} is not supported by berth (local bridge networks only)"
        )));
    }
    let pools = c.ipam.and_then(|i| i.config).unwrap_or_default();
    let mut subnet = None;
    let mut subnet6 = None;
    let mut gateway = None;
    let mut ip_range = None;
    let mut aux_addresses = BTreeMap::new();
    for p in &pools {
        let Some(s) = p.subnet.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        match s
            .parse::<ipnet::IpNet>()
            .map_err(|e| ApiError::bad(format!("invalid subnet {s:?}: {e}")))?
        {
            ipnet::IpNet::V4(n) => {
                subnet = Some(n);
                if let Some(r) = p.ip_range.as_deref().filter(|r| !r.is_empty()) {
                    ip_range = Some(
                        r.parse()
                            .map_err(|_| ApiError::bad(format!("invalid IPRange {r:?}")))?,
                    );
                }
                for (k, ip) in p.auxiliary_addresses.iter().flatten() {
                    let ip = ip.parse().map_err(|_| {
                        ApiError::bad(format!("invalid AuxiliaryAddresses {k}={ip:?}"))
                    })?;
                    aux_addresses.insert(k.clone(), ip);
                }
                gateway = match p.gateway.as_deref().filter(|g| !g.is_empty()) {
                    Some(g) => Some(
                        g.parse()
                            .map_err(|_| ApiError::bad(format!("invalid gateway {g:?}")))?,
                    ),
                    None => None,
                };
            }
            ipnet::IpNet::V6(n) => subnet6 = Some(n),
        }
    }
    if c.enable_ipv6 == Some(true) && subnet6.is_none() {
        return Err(ApiError::bad(
            "EnableIPv6 needs an IPv6 subnet in IPAM.Config",
        ));
    }
    let req = berth_net::CreateRequest {
        name,
        subnet,
        gateway,
        internal: c.internal.unwrap_or(false),
        labels: c.labels.unwrap_or_default(),
        options: c.options.unwrap_or_default(),
        subnet6,
        ip_range,
        aux_addresses,
    };
    let made = app
        .blocking(move |e| {
            if e.inspect_network(&req.name).is_ok() {
                return Err(ApiError::Conflict(format!(
                    "network with name {} already exists",
                    req.name
                )));
            }
            // Its refusals are about the request (a name, a gateway outside its subnet).
            e.create_network(&req).map_err(ApiError::refused)
        })
        .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": made.id, "Warning": ""}),
    ))
}

pub async fn remove(app: &Arc<App>, id: &str) -> ApiResult<Resp> {
    let what = id.to_string();
    app.blocking(move |e| Ok(e.remove_network(&what)?)).await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

pub async fn prune(app: &Arc<App>) -> ApiResult<Resp> {
    let gone = app.blocking(|e| Ok(e.prune_networks()?)).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"NetworksDeleted": gone}),
    ))
}

pub async fn connect(app: &Arc<App>, id: &str, req: Req) -> ApiResult<Resp> {
    let body = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let c: NetworkConnect = http::parse_json(&body)?;
    let container = c
        .container
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("Container is required"))?;
    let ep = c.endpoint_config.unwrap_or_default();
    // Refused by name rather than dropped: a connect takes aliases and an IPv4 address.
    if crate::config::has_more_addresses(&ep) {
        return Err(ApiError::bad(
            "EndpointConfig: MacAddress, IPv6Address and LinkLocalIPs are not supported by berth on a connect (give them at create, for the container's first network)",
        ));
    }
    let ip = match ep
        .ipam_config
        .and_then(|i| i.ipv4_address)
        .filter(|a| !a.is_empty())
    {
        Some(a) => Some(
            a.parse()
                .map_err(|_| ApiError::bad(format!("invalid IPv4 address {a:?}")))?,
        ),
        None => None,
    };
    let (net, aliases) = (id.to_string(), ep.aliases.unwrap_or_default());
    app.blocking(move |e| Ok(e.connect_network(&net, &container, aliases, ip)?))
        .await?;
    Ok(http::empty(StatusCode::OK))
}

pub async fn disconnect(app: &Arc<App>, id: &str, req: Req) -> ApiResult<Resp> {
    let body = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let c: NetworkConnect = http::parse_json(&body)?;
    let container = c
        .container
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("Container is required"))?;
    let net = id.to_string();
    app.blocking(move |e| Ok(e.disconnect_network(&net, &container)?))
        .await?;
    Ok(http::empty(StatusCode::OK))
}
