//! A token-gating proxy in front of an anonymous registry, acting as both the registry's front door
//! and its token server (the scheme of Docker Hub and most hosted registries):
//!
//! - `/v2/…` without `Authorization: Bearer <a token this proxy issued>` that grants what the
//!   request needs (pull for GET/HEAD, push for anything else) gets `401` and
//!   `WWW-Authenticate: Bearer realm="http://ADDR/token",service="test-registry"`, plus
//!   `scope="repository:<repo>:pull"` (`…:pull,push` for writes) when the path names a repository;
//! - `GET /token?service=…&scope=…` checks the service and scope and, for a private registry, the
//!   `Authorization: Basic` credentials, and answers `{"token": …}` or `{"access_token": …}`;
//! - everything with a good token is piped to the registry, one request per connection.
//!
//! Every token request and every challenge is recorded for the tests to inspect. Stops when dropped.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The `service` the challenges name and the token endpoint insists on.
pub const SERVICE: &str = "test-registry";

/// Which JSON field carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenField {
    /// `{"token": …}` (Docker's token spec).
    Token,
    /// `{"access_token": …}` (the OAuth2 spelling).
    AccessToken,
}

/// One request the token endpoint saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The decoded `scope` parameter (absent and empty are both `None`).
    pub scope: Option<String>,
    /// The decoded `service` parameter.
    pub service: Option<String>,
    /// The `Authorization` header as sent (`Basic …`), if any.
    pub authorization: Option<String>,
    /// The HTTP status the endpoint answered.
    pub status: u16,
}

/// What a token grants: pull and/or push on one repository, or nothing but `/v2/` (a login check).
#[derive(Debug, Clone)]
struct Grant {
    repo: Option<String>,
    pull: bool,
    push: bool,
}

struct State {
    upstream: String,
    addr: String,
    /// `user`, `password` wanted at the token endpoint; `None`: anonymous tokens.
    credentials: Option<(String, String)>,
    field: TokenField,
    tokens: Mutex<HashMap<String, Grant>>,
    requests: Mutex<Vec<TokenRequest>>,
    challenges: Mutex<Vec<String>>,
    forwarded: AtomicUsize,
    issued: AtomicUsize,
}

pub struct TokenProxy {
    /// `127.0.0.1:PORT`: the registry host berth is given, and the token realm's host.
    pub addr: String,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenProxy {
    /// A proxy to `upstream` (`127.0.0.1:PORT` of a registry without auth) whose token endpoint
    /// gives anonymous tokens.
    pub fn anonymous(upstream: &str, field: TokenField) -> TokenProxy {
        TokenProxy::start(upstream, None, field)
    }

    /// A proxy whose token endpoint wants `Authorization: Basic base64(user:password)`.
    pub fn private(upstream: &str, user: &str, password: &str, field: TokenField) -> TokenProxy {
        TokenProxy::start(upstream, Some((user.into(), password.into())), field)
    }

    fn start(
        upstream: &str,
        credentials: Option<(String, String)>,
        field: TokenField,
    ) -> TokenProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            addr: addr.clone(),
            credentials,
            field,
            tokens: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            challenges: Mutex::new(Vec::new()),
            forwarded: AtomicUsize::new(0),
            issued: AtomicUsize::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let state = state.clone();
                            std::thread::spawn(move || {
                                let _ = s.set_nonblocking(false);
                                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                                let _ = serve(s, &state);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        TokenProxy {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `ADDR/repo:tag`, the reference berth is given.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr)
    }

    /// Every request the token endpoint saw, in order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().expect("requests").clone()
    }

    /// The `WWW-Authenticate` value of every 401 sent for a `/v2/` request, in order.
    pub fn challenges(&self) -> Vec<String> {
        self.state.challenges.lock().expect("challenges").clone()
    }

    /// How many requests reached the registry (each with a good token).
    pub fn forwarded(&self) -> usize {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A proxy thread that panicked has failed its test already; this only stops it.
            let _ = t.join();
        }
    }
}

/// Standard base64 with padding (what `Basic` credentials are written in).
pub use crate::common::registry::base64;

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Decodes one `application/x-www-form-urlencoded` value (`%3A`, `+`).
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed request head.
struct Head {
    raw: Vec<u8>,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request head through the blank line; returns it and any body bytes read with it.
fn read_head(s: &mut TcpStream) -> io::Result<(Head, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let rest = buf.split_off(end + 4);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((
        Head {
            raw: buf,
            method,
            target,
            headers,
        },
        rest,
    ))
}

/// Reads and drops the rest of a request body (by `Content-Length`), so that closing the
/// connection after an early answer does not reset it under the client's feet.
fn drain_body(s: &mut TcpStream, head: &Head, already: usize) {
    let len: usize = head
        .header("Content-Length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if len > already {
        let _ = io::copy(&mut s.take((len - already) as u64), &mut io::sink());
    }
}

fn respond(
    s: &mut TcpStream,
    method: &str,
    status: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut resp = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\n");
    for (k, v) in extra {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(resp.as_bytes())?;
    if method != "HEAD" {
        s.write_all(body)?;
    }
    s.flush()?;
    s.shutdown(Shutdown::Write)
}

fn serve(mut s: TcpStream, state: &State) -> io::Result<()> {
    let (head, rest) = read_head(&mut s)?;
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    if path == "/token" {
        drain_body(&mut s, &head, rest.len());
        return token(s, state, &head, query);
    }
    if let Some(under) = path.strip_prefix("/v2/") {
        let repo = repository(under);
        let write = !matches!(head.method.as_str(), "GET" | "HEAD");
        if authorized(state, &head, repo.as_deref(), write) {
            return forward(s, state, &head, rest);
        }
        drain_body(&mut s, &head, rest.len());
        let mut challenge = format!(
            "Bearer realm=\"http://{}/token\",service=\"{SERVICE}\"",
            state.addr
        );
        if let Some(r) = &repo {
            let actions = if write { "pull,push" } else { "pull" };
            challenge.push_str(&format!(",scope=\"repository:{r}:{actions}\""));
        }
        state
            .challenges
            .lock()
            .expect("challenges")
            .push(challenge.clone());
        return respond(
            &mut s,
            &head.method,
            "401 Unauthorized",
            &[
                ("WWW-Authenticate", challenge),
                (
                    "Docker-Distribution-API-Version",
                    "registry/2.0".to_string(),
                ),
            ],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    drain_body(&mut s, &head, rest.len());
    respond(&mut s, &head.method, "404 Not Found", &[], b"{}")
}

/// The repository a `/v2/` path names: everything before `/manifests/`, `/blobs/` or `/tags/`.
fn repository(under_v2: &str) -> Option<String> {
    ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| under_v2.find(m))
        .min()
        .map(|i| under_v2[..i].to_string())
}

fn authorized(state: &State, head: &Head, repo: Option<&str>, write: bool) -> bool {
    let Some(token) = head
        .header("Authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    else {
        return false;
    };
    let tokens = state.tokens.lock().expect("tokens");
    let Some(grant) = tokens.get(token.trim()) else {
        return false;
    };
    match repo {
        // `GET /v2/`: any token this server issued.
        None => true,
        Some(r) => grant.repo.as_deref() == Some(r) && grant.pull && (grant.push || !write),
    }
}

/// Parses `repository:<name>:<actions>` into the name and its pull/push flags.
fn parse_scope(scope: &str) -> Option<(String, bool, bool)> {
    let rest = scope.strip_prefix("repository:")?;
    let (name, actions) = rest.rsplit_once(':')?;
    if name.is_empty() {
        return None;
    }
    let mut pull = false;
    let mut push = false;
    for a in actions.split(',') {
        match a {
            "pull" => pull = true,
            "push" => push = true,
            _ => return None,
        }
    }
    Some((name.to_string(), pull, push))
}

fn token(mut s: TcpStream, state: &State, head: &Head, query: &str) -> io::Result<()> {
    let mut scope = None;
    let mut service = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match form_decode(k).as_str() {
            "scope" => scope = Some(form_decode(v)).filter(|v| !v.is_empty()),
            "service" => service = Some(form_decode(v)),
            _ => {}
        }
    }
    let authorization = head.header("Authorization").map(str::to_string);
    let parsed = scope.as_deref().map(parse_scope);
    let (status, body) = if head.method != "GET" {
        ("405 Method Not Allowed", String::from("{}"))
    } else if service.as_deref() != Some(SERVICE) {
        (
            "400 Bad Request",
            format!(r#"{{"details":"service must be {SERVICE}"}}"#),
        )
    } else if matches!(parsed, Some(None)) {
        (
            "400 Bad Request",
            String::from(r#"{"details":"invalid scope"}"#),
        )
    } else if state
        .credentials
        .as_ref()
        .is_some_and(|(u, p)| authorization.as_deref() != Some(basic(u, p).as_str()))
    {
        (
            "401 Unauthorized",
            String::from(r#"{"details":"incorrect username or password"}"#),
        )
    } else {
        let n = state.issued.fetch_add(1, Ordering::SeqCst);
        let token = format!("berth-test-token-{n}-{}", state.addr.replace(':', "-"));
        let grant = match parsed.flatten() {
            Some((repo, pull, push)) => Grant {
                repo: Some(repo),
                pull,
                push,
            },
            None => Grant {
                repo: None,
                pull: false,
                push: false,
            },
        };
        state
            .tokens
            .lock()
            .expect("tokens")
            .insert(token.clone(), grant);
        let key = match state.field {
            TokenField::Token => "token",
            TokenField::AccessToken => "access_token",
        };
        (
            "200 OK",
            format!(r#"{{"{key}":"{token}","expires_in":300,"issued_at":"2026-01-02T03:04:05Z"}}"#),
        )
    };
    state.requests.lock().expect("requests").push(TokenRequest {
        scope: scope.clone(),
        service,
        authorization,
        status: status[..3].parse().expect("a status code"),
    });
    respond(&mut s, &head.method, status, &[], body.as_bytes())
}

/// Pipes one request to the registry (asking it to close after answering) and its answer back.
/// The bearer token stays here: the registry behind has no auth of its own.
fn forward(client: TcpStream, state: &State, head: &Head, rest: Vec<u8>) -> io::Result<()> {
    state.forwarded.fetch_add(1, Ordering::SeqCst);
    crate::common::proxy::pipe_request(
        client,
        &state.upstream,
        &head.raw,
        &rest,
        &["authorization"],
    )
}
