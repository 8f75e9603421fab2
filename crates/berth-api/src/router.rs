//! From a request to its handler: the API version prefix (`/v1.45/…`, refused when newer than
//! berth speaks or older than it accepts), the path's segments (image names may hold slashes),
//! the method. An unknown path is Docker's 404 `page not found`; every error is `{"message"}`.

use crate::error::{ApiError, ApiResult};
use crate::http::{self, Query, Resp};
use crate::state::App;
use crate::{
    build, containers, exec, images, networks, stopping, streams, system, transfer, volumes,
};
use berth_engine::system::{API_VERSION, MIN_API_VERSION};
use hyper::body::Incoming;
use hyper::{Method, Request};
use std::sync::Arc;

pub type Req = Request<Incoming>;

/// Whether each request is logged with its status and time (`BERTH_API_TRACE=1`); never its
/// headers or body, which may carry credentials.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("BERTH_API_TRACE").is_some())
}

/// Answers one request; never fails (an error is a response).
pub async fn handle(app: Arc<App>, req: Req) -> Resp {
    let started = std::time::Instant::now();
    let shown = tracing().then(|| format!("{} {}", req.method(), req.uri()));
    let resp = match route(app, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                eprintln!("berth serve: {e}");
            }
            http::error(&e)
        }
    };
    if let Some(s) = shown {
        eprintln!(
            "berth serve: {s} {} {:.1} ms",
            resp.status().as_u16(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    resp
}

/// `(major, minor)` of `1.45`.
fn version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The path without its version prefix, checked against what berth speaks.
fn unversioned(path: &str) -> ApiResult<&str> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (v, tail) = rest.split_once('/').map_or((rest, ""), |(v, t)| (v, t));
    let Some(asked) = version(v) else {
        return Ok(path);
    };
    let max = version(API_VERSION).expect("a valid version");
    let min = version(MIN_API_VERSION).expect("a valid version");
    if asked > max {
        return Err(ApiError::bad(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if asked < min {
        return Err(ApiError::bad(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(&path[path.len() - tail.len() - 1..])
}

fn decode(seg: &str) -> String {
    percent_decode(seg)
}

/// `%XX` escapes decoded byte by byte (a `%` not followed by two hex digits stays as it is);
/// bytes that are not UTF-8 become U+FFFD, so such a name matches nothing.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let (b'%', Some(hi), Some(lo)) = (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            // Two hex digits are at most 0xff.
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The most bytes of header names and values a request may have.
const MAX_HEADER_BYTES: usize = 64 * 1024;

async fn route(app: Arc<App>, req: Req) -> ApiResult<Resp> {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    let path = unversioned(req.uri().path())?.to_string();
    let q = Query::parse(req.uri().query());
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method().clone();
    let is = |want: &Method| m == want;
    let get = is(&Method::GET) || is(&Method::HEAD);
    let post = is(&Method::POST);
    match s.as_slice() {
        ["_ping"] if get => Ok(system::ping(&m)),
        ["version"] if get => system::version(&app).await,
        ["info"] if get => system::info(&app).await,
        ["events"] if get => system::events(&app, &q).await,
        ["system", "df"] if get => system::df(&app).await,
        ["auth"] if post => system::auth(&app, req).await,
        ["containers", "json"] if get => containers::list(&app, &q).await,
        ["containers", "create"] if post => containers::create(&app, &q, req).await,
        ["containers", "prune"] if post => containers::prune(&app, &q).await,
        ["containers", id, rest @ ..] => container_route(&app, &m, id, rest, &q, req).await,
        ["exec", id, "start"] if post => exec::start(&app, id, req).await,
        ["exec", id, "resize"] if post => exec::resize(&app, id, &q).await,
        ["exec", id, "json"] if get => exec::inspect(&app, id).await,
        ["commit"] if post => images::commit(&app, &q, req).await,
        ["images", rest @ ..] => image_route(&app, &m, rest, &q, req).await,
        ["build"] if post => build::build(&app, &q, req).await,
        ["build", "prune"] if post => build::prune(&app).await,
        ["volumes"] if get => volumes::list(&app, &q).await,
        ["volumes", "create"] if post => volumes::create(&app, req).await,
        ["volumes", "prune"] if post => volumes::prune(&app, &q).await,
        ["volumes", name] if get => volumes::inspect(&app, name).await,
        ["volumes", name] if is(&Method::DELETE) => volumes::remove(&app, name, &q).await,
        ["networks"] if get => networks::list(&app, &q).await,
        ["networks", "create"] if post => networks::create(&app, req).await,
        ["networks", "prune"] if post => networks::prune(&app).await,
        ["networks", id] if get => networks::inspect(&app, id).await,
        ["networks", id] if is(&Method::DELETE) => networks::remove(&app, id).await,
        ["networks", id, "connect"] if post => networks::connect(&app, id, req).await,
        ["networks", id, "disconnect"] if post => networks::disconnect(&app, id, req).await,
        ["swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs", ..] => {
            Err(ApiError::Unavailable(
                "This node is not a swarm manager: berth has no swarm mode".into(),
            ))
        }
        // No plugins: an empty list, and anything else about them refused by name.
        ["plugins"] if get => Ok(http::json(hyper::StatusCode::OK, &serde_json::json!([]))),
        ["plugins", ..] => Err(ApiError::NotImplemented(
            "plugins are not supported by berth".into(),
        )),
        ["session"] | ["grpc"] => Err(ApiError::NotImplemented(
            "BuildKit sessions are not supported by berth".into(),
        )),
        _ => Err(ApiError::NotFound("page not found".into())),
    }
}

async fn container_route(
    app: &Arc<App>,
    m: &Method,
    id: &str,
    rest: &[&str],
    q: &Query,
    req: Req,
) -> ApiResult<Resp> {
    let get = *m == Method::GET || *m == Method::HEAD;
    let post = *m == Method::POST;
    match rest {
        [] if *m == Method::DELETE => containers::remove(app, id, q).await,
        ["json"] if get => containers::inspect(app, id, q).await,
        ["top"] if get => containers::top(app, id, q).await,
        ["logs"] if get => streams::logs(app, id, q).await,
        ["changes"] if get => transfer::changes(app, id).await,
        ["export"] if get => transfer::export(app, id).await,
        ["stats"] if get => streams::stats(app, id, q).await,
        ["resize"] if post => streams::resize(app, id, q).await,
        ["start"] if post => containers::start(app, id).await,
        ["stop"] if post => stopping::stop(app, id, q).await,
        ["restart"] if post => stopping::restart(app, id, q).await,
        ["kill"] if post => containers::kill(app, id, q).await,
        ["update"] if post => containers::update(app, id, req).await,
        ["rename"] if post => containers::rename(app, id, q).await,
        ["pause"] if post => containers::pause(app, id, true).await,
        ["unpause"] if post => containers::pause(app, id, false).await,
        ["attach"] if post => streams::attach(app, id, q, req).await,
        ["attach", "ws"] if get => streams::attach(app, id, q, req).await,
        ["wait"] if post => streams::wait(app, id, q).await,
        ["exec"] if post => exec::create(app, id, req).await,
        ["archive"] if *m == Method::HEAD => transfer::archive_stat(app, id, q).await,
        ["archive"] if *m == Method::GET => transfer::archive_get(app, id, q).await,
        ["archive"] if *m == Method::PUT => transfer::archive_put(app, id, q, req).await,
        _ => Err(ApiError::NotFound("page not found".into())),
    }
}

async fn image_route(
    app: &Arc<App>,
    m: &Method,
    rest: &[&str],
    q: &Query,
    req: Req,
) -> ApiResult<Resp> {
    let get = *m == Method::GET || *m == Method::HEAD;
    let post = *m == Method::POST;
    match rest {
        ["json"] if get => images::list(app, q).await,
        ["create"] if post => images::create(app, q, req).await,
        ["load"] if post => images::load(app, q, req).await,
        ["get"] if get => images::save(app, q.all("names")).await,
        ["prune"] if post => images::prune(app, q).await,
        ["search"] if get => Err(ApiError::NotImplemented(
            "image search is not supported by berth: search your registry's own interface".into(),
        )),
        [name @ .., "json"] if get && !name.is_empty() => {
            images::inspect(app, &name.join("/")).await
        }
        [name @ .., "history"] if get && !name.is_empty() => {
            images::history(app, &name.join("/")).await
        }
        [name @ .., "get"] if get && !name.is_empty() => {
            images::save(app, vec![name.join("/")]).await
        }
        [name @ .., "push"] if post && !name.is_empty() => {
            images::push(app, &name.join("/"), q, req).await
        }
        [name @ .., "tag"] if post && !name.is_empty() => {
            images::tag(app, &name.join("/"), q).await
        }
        name if *m == Method::DELETE && !name.is_empty() => {
            images::remove(app, &name.join("/"), q).await
        }
        _ => Err(ApiError::NotFound("page not found".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped_and_checked() {
        assert_eq!(
            unversioned("/v1.45/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(unversioned("/v1.24/_ping").unwrap(), "/_ping");
        assert_eq!(unversioned("/_ping").unwrap(), "/_ping");
        assert!(unversioned("/v1.99/info").is_err());
        assert!(unversioned("/v1.12/info").is_err());
        assert_eq!(percent_decode("a%2Fb%3A1"), "a/b:1");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
        // A `%` before a multi-byte character: never a slice inside it.
        assert_eq!(percent_decode("%a\u{e9}"), "%a\u{e9}");
        assert_eq!(percent_decode("\u{e9}%\u{e9}%4"), "\u{e9}%\u{e9}%4");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(percent_decode("a%2f"), "a/");
    }
}
