//! A thin client for the OCI distribution API over `ureq` (blocking, pure Rust, no async runtime to
//! keep out of the create path): manifests, blobs, uploads, the token dance and retries. It moves bytes
//! and checks their digests; storing them is the caller's business.

pub mod auth;
mod tls;

use crate::digest::{Digest, Hasher};
use crate::manifest::{DOCKER_LIST, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST};
use auth::{Challenge, Credentials};
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{url}: {status} {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{host}: authentication required (try `berth login {host}`)")]
    Unauthorized { host: String },
    /// Credentials were given and refused.
    #[error("{host}: unauthorized: wrong username or password")]
    WrongCredentials { host: String },
    /// A connection that broke or stalled: worth another try.
    #[error("{host}: {message}")]
    Transport { host: String, message: String },
    /// Nothing answers there (refused, no such host, a TLS failure): trying again cannot help.
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{what}: not found in registry {host}")]
    NotFound { host: String, what: String },
    #[error("{what}: larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{what}: digest mismatch (the registry sent {actual})")]
    DigestMismatch { what: String, actual: Digest },
    #[error("{host}: bad token response: {message}")]
    Token { host: String, message: String },
}

/// A fetched manifest or index: exact bytes, the type the registry declared and their digest.
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Digest,
}

/// How a registry is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
    /// HTTPS without a certificate check, else plain HTTP (Docker's insecure registries).
    Insecure,
}

/// One registry host. Cheap to share between threads (`&Client`).
pub struct Client {
    host: String,
    scheme: Scheme,
    /// `scheme://host`, decided on first use (an insecure registry is probed once).
    base: OnceLock<String>,
    agent: ureq::Agent,
    creds: Option<Credentials>,
    /// Authorization header per scope, learnt from challenges.
    tokens: Mutex<HashMap<String, String>>,
}

/// Plain HTTP is allowed for loopback hosts (as Docker does) and for hosts listed as insecure.
pub fn plain_http_allowed(host: &str, insecure: &[String]) -> bool {
    is_loopback(host) || is_listed(host, insecure)
}

fn host_name(host: &str) -> &str {
    let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    name.trim_start_matches('[').trim_end_matches(']')
}

fn is_loopback(host: &str) -> bool {
    let name = host_name(host);
    name == "localhost" || name.starts_with("127.") || name == "::1"
}

fn is_listed(host: &str, insecure: &[String]) -> bool {
    let name = host_name(host);
    insecure.iter().any(|i| i == host || i == name)
}

fn status_message(resp: ureq::Response) -> String {
    let mut body = String::new();
    let _ = resp.into_reader().take(8192).read_to_string(&mut body);
    // The distribution spec's error body: {"errors":[{"code":"…","message":"…"}]}
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
        if let Some(first) = v.get("errors").and_then(|e| e.get(0)) {
            let code = first.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = first.get("message").and_then(|c| c.as_str()).unwrap_or("");
            return format!("{code}: {msg}")
                .trim_matches([' ', ':'])
                .to_string();
        }
    }
    body.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

impl Client {
    /// A client for `host` (`localhost:5000`, `registry-1.docker.io`).
    pub fn new(host: &str, insecure: &[String], creds: Option<Credentials>) -> Client {
        let scheme = if is_loopback(host) {
            Scheme::Http
        } else if is_listed(host, insecure) {
            Scheme::Insecure
        } else {
            Scheme::Https
        };
        let idle = idle_timeout();
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(idle)
            .timeout_write(idle)
            .max_idle_connections_per_host(8)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        if scheme == Scheme::Insecure {
            builder = builder.tls_config(tls::unverified());
        }
        Client {
            host: host.to_string(),
            scheme,
            base: OnceLock::new(),
            agent: builder.build(),
            creds,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `scheme://host`: for an insecure registry, HTTPS when it answers TLS at all, else HTTP.
    fn base(&self) -> &str {
        self.base.get_or_init(|| {
            let https = format!("https://{}", self.host);
            match self.scheme {
                Scheme::Http => format!("http://{}", self.host),
                Scheme::Https => https,
                Scheme::Insecure => match self.agent.get(&format!("{https}/v2/")).call() {
                    Ok(_) | Err(ureq::Error::Status(..)) => https,
                    Err(ureq::Error::Transport(_)) => format!("http://{}", self.host),
                },
            }
        })
    }

    /// Credentials refused, or none given (`Unauthorized`).
    fn refused(&self) -> RegistryError {
        match self.creds {
            Some(_) => RegistryError::WrongCredentials {
                host: self.host.clone(),
            },
            None => RegistryError::Unauthorized {
                host: self.host.clone(),
            },
        }
    }

    fn scope(repo: &str, push: bool) -> String {
        if push {
            format!("repository:{repo}:pull,push")
        } else {
            format!("repository:{repo}:pull")
        }
    }

    /// Sends a request built by `build`, authenticating on 401 and retrying 429/5xx and transport
    /// failures with exponential backoff. 4xx other than 401/429 are returned at once.
    fn send(
        &self,
        scope: &str,
        build: &dyn Fn(&ureq::Agent) -> ureq::Request,
        body: Option<&[u8]>,
    ) -> Result<ureq::Response, RegistryError> {
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            let mut req = build(&self.agent);
            if let Some(h) = self.tokens.lock().expect("token lock").get(scope) {
                req = req.set("Authorization", h);
            }
            let url = req.url().to_string();
            let result = match body {
                Some(b) => req.send_bytes(b),
                None => req.call(),
            };
            let retry = match result {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(401, resp)) if !authenticated => {
                    let challenge = resp
                        .header("WWW-Authenticate")
                        .and_then(auth::parse_challenge);
                    self.authenticate(scope, challenge)?;
                    authenticated = true;
                    continue;
                }
                Err(ureq::Error::Status(401, _)) => return Err(self.refused()),
                Err(ureq::Error::Status(code, resp)) if code == 429 || code >= 500 => {
                    let wait = resp
                        .header("Retry-After")
                        .and_then(|s| s.parse::<u64>().ok());
                    (
                        RegistryError::Status {
                            url,
                            status: code,
                            message: status_message(resp),
                        },
                        wait,
                    )
                }
                Err(ureq::Error::Status(code, resp)) => {
                    return Err(RegistryError::Status {
                        url,
                        status: code,
                        message: status_message(resp),
                    })
                }
                Err(ureq::Error::Transport(t)) if !worth_retrying(&t) => {
                    return Err(RegistryError::Unreachable {
                        url,
                        message: transport_message(&t),
                    })
                }
                Err(ureq::Error::Transport(t)) => (
                    RegistryError::Transport {
                        host: self.host.clone(),
                        message: transport_message(&t),
                    },
                    None,
                ),
            };
            attempt += 1;
            if attempt >= ATTEMPTS {
                return Err(retry.0);
            }
            let backoff = retry
                .1
                .map(|s| s.min(10) * 1000)
                .unwrap_or(100u64 << attempt);
            std::thread::sleep(Duration::from_millis(backoff));
        }
    }

    fn authenticate(&self, scope: &str, challenge: Option<Challenge>) -> Result<(), RegistryError> {
        let header = match challenge {
            Some(Challenge::Basic) | None => match &self.creds {
                Some(c) => c.basic_header(),
                None => return Err(self.refused()),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.fetch_token(&realm, service.as_deref(), scope)?
            }
        };
        self.tokens
            .lock()
            .expect("token lock")
            .insert(scope.to_string(), header);
        Ok(())
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let mut req = self.agent.get(realm);
        // `login` checks credentials without a repository: no scope at all, as Docker sends.
        // Several scopes (a cross-repository mount's) go as several parameters, as Docker sends.
        for one in scope.split(' ').filter(|s| !s.is_empty()) {
            req = req.query("scope", one);
        }
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(c) = &self.creds {
            req = req.set("Authorization", &c.basic_header());
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(401 | 403, _)) => return Err(self.refused()),
            Err(e) => {
                return Err(RegistryError::Token {
                    host: self.host.clone(),
                    message: e.to_string(),
                })
            }
        };
        /// The token server's answer (Docker's `token` or OAuth2's `access_token`).
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let bad = |message: String| RegistryError::Token {
            host: self.host.clone(),
            message,
        };
        let mut body = Vec::new();
        resp.into_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .map_err(|e| bad(e.to_string()))?;
        let v: TokenResponse = crate::gojson::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        let token = [v.token, v.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
            .ok_or_else(|| bad("no token field".into()))?;
        Ok(format!("Bearer {token}"))
    }

    /// Checks that the registry speaks the v2 API and that credentials work (`berth login`).
    pub fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base());
        self.send("", &|a| a.get(&url), None).map(|_| ())
    }

    /// GETs a manifest or index by tag or digest, bounded to 4 MiB; a digest reference is verified.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base());
        let what = format!("{}/{repo}:{reference}", self.host);
        let resp = self.send(
            &Self::scope(repo, false),
            &|a| a.get(&url).set("Accept", ACCEPT_MANIFESTS),
            None,
        );
        let resp = match resp {
            Err(RegistryError::Status { status: 404, .. }) => {
                return Err(RegistryError::NotFound {
                    host: self.host.clone(),
                    what: format!("manifest {what}"),
                })
            }
            other => other?,
        };
        if let Some(len) = resp
            .header("Content-Length")
            .and_then(|l| l.parse::<u64>().ok())
        {
            if len > MAX_MANIFEST_BYTES {
                return Err(RegistryError::TooLarge {
                    what: format!("manifest {what}"),
                    limit: MAX_MANIFEST_BYTES,
                });
            }
        }
        let content_type = resp.header("Content-Type").map(str::to_string);
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Transport {
                host: self.host.clone(),
                message: e.to_string(),
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                what: format!("manifest {what}"),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let algorithm = Digest::parse(reference)
            .map(|d| d.algorithm())
            .unwrap_or(crate::digest::Algorithm::Sha256);
        let mut h = Hasher::new(algorithm);
        h.update(&bytes);
        let digest = h.finish();
        if let Ok(want) = Digest::parse(reference) {
            if want != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {what}"),
                    actual: digest,
                });
            }
        }
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest,
        })
    }

    /// HEADs a manifest: its digest as the registry reports it, when it does (a warm pull's check).
    pub fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base());
        match self.send(
            &Self::scope(repo, false),
            &|a| a.head(&url).set("Accept", ACCEPT_MANIFESTS),
            None,
        ) {
            Ok(resp) => Ok(resp
                .header("Docker-Content-Digest")
                .and_then(|d| Digest::parse(d).ok())),
            Err(RegistryError::Status { status: 404, .. }) => Err(RegistryError::NotFound {
                host: self.host.clone(),
                what: format!("manifest {}/{repo}:{reference}", self.host),
            }),
            Err(e) => Err(e),
        }
    }

    /// Opens a blob of `size` bytes (its descriptor's) for streaming. The caller verifies the
    /// digest as it reads; the stream never yields more than `size` bytes, and resumes where it
    /// broke off when the connection stalls or drops (see `BlobReader`).
    pub fn get_blob<'c>(
        &'c self,
        repo: &'c str,
        digest: &'c Digest,
        size: u64,
    ) -> Result<BlobReader<'c>, RegistryError> {
        let body = self.open_blob(repo, digest, 0)?;
        Ok(BlobReader {
            client: self,
            repo,
            digest,
            size,
            offset: 0,
            body,
            resumes: 0,
        })
    }

    /// GETs a blob from byte `offset` on (a Range request past 0); a server that ignores the
    /// range and sends the whole blob has the bytes before `offset` skipped.
    fn open_blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<Box<dyn Read + Send + Sync>, RegistryError> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base());
        let range = format!("bytes={offset}-");
        let build = |a: &ureq::Agent| {
            let req = a.get(&url);
            if offset > 0 {
                req.set("Range", &range)
            } else {
                req
            }
        };
        match self.send(&Self::scope(repo, false), &build, None) {
            Ok(resp) if offset > 0 && resp.status() != 206 => {
                let mut body = resp.into_reader();
                let skipped = io::copy(&mut (&mut body).take(offset), &mut io::sink())
                    .map_err(|e| self.transport(e))?;
                if skipped < offset {
                    return Err(self.transport(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(body)
            }
            Ok(resp) => Ok(resp.into_reader()),
            Err(RegistryError::Status { status: 404, .. }) => Err(RegistryError::NotFound {
                host: self.host.clone(),
                what: format!("blob {digest}"),
            }),
            Err(e) => Err(e),
        }
    }

    fn transport(&self, e: io::Error) -> RegistryError {
        RegistryError::Transport {
            host: self.host.clone(),
            message: e.to_string(),
        }
    }

    pub fn blob_exists(
        &self,
        repo: &str,
        digest: &Digest,
        push: bool,
    ) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base());
        match self.send(&Self::scope(repo, push), &|a| a.head(&url), None) {
            Ok(_) => Ok(true),
            Err(RegistryError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The repository's tags (`GET /v2/<repo>/tags/list`, following `Link` pages), at most
    /// `MAX_TAGS`.
    pub fn list_tags(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        /// The registry's answer: `{"name": …, "tags": […]}`.
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut url = format!("{}/v2/{repo}/tags/list", self.base());
        loop {
            let resp = match self.send(&Self::scope(repo, false), &|a| a.get(&url), None) {
                Err(RegistryError::Status { status: 404, .. }) => {
                    return Err(RegistryError::NotFound {
                        host: self.host.clone(),
                        what: format!("repository {repo}"),
                    })
                }
                other => other?,
            };
            let next = resp.header("Link").and_then(next_link);
            let mut body = Vec::new();
            resp.into_reader()
                .take(MAX_MANIFEST_BYTES + 1)
                .read_to_end(&mut body)
                .map_err(|e| self.transport(e))?;
            if body.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(RegistryError::TooLarge {
                    what: format!("tag list of {repo}"),
                    limit: MAX_MANIFEST_BYTES,
                });
            }
            let page: TagList =
                crate::gojson::from_slice(&body).map_err(|e| RegistryError::Transport {
                    host: self.host.clone(),
                    message: format!("tag list of {repo}: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > MAX_TAGS {
                return Err(RegistryError::TooLarge {
                    what: format!("tag list of {repo} ({} tags)", tags.len()),
                    limit: MAX_TAGS as u64,
                });
            }
            match next {
                Some(n) if n.starts_with('/') => url = format!("{}{n}", self.base()),
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
    }

    /// Asks the registry to link a blob `repo` lacks from another repository of it (`POST
    /// …/uploads/?mount=DIGEST&from=REPO`). True when it did (201); false when it started an
    /// upload instead (202) or refused, so the caller uploads the blob.
    pub fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let url = format!(
            "{}/v2/{repo}/blobs/uploads/?mount={digest}&from={from}",
            self.base()
        );
        // The token must allow pulling from the source repository too.
        let scope = format!("{} repository:{from}:pull", Self::scope(repo, true));
        match self.send(
            &scope,
            &|a| a.post(&url).set("Content-Length", "0"),
            Some(&[]),
        ) {
            Ok(resp) => Ok(resp.status() == 201),
            Err(RegistryError::Status { status, .. }) if (400..500).contains(&status) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads a blob in one PUT (POST for a session, then PUT with the digest).
    pub fn push_blob(&self, repo: &str, digest: &Digest, data: &[u8]) -> Result<(), RegistryError> {
        let scope = Self::scope(repo, true);
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base());
        let resp = self.send(
            &scope,
            &|a| a.post(&url).set("Content-Length", "0"),
            Some(&[]),
        )?;
        let location = resp
            .header("Location")
            .ok_or_else(|| RegistryError::Transport {
                host: self.host.clone(),
                message: "upload session without a Location".into(),
            })?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base())
        } else {
            location.to_string()
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={digest}");
        self.send(
            &scope,
            &|a| {
                a.put(&put_url)
                    .set("Content-Type", "application/octet-stream")
            },
            Some(data),
        )?;
        Ok(())
    }

    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<(), RegistryError> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base());
        self.send(
            &Self::scope(repo, true),
            &|a| a.put(&url).set("Content-Type", media_type),
            Some(data),
        )?;
        Ok(())
    }
}

/// A transport failure that another try may get past: a connection that broke or was reset
/// (a registry restarting). A refused connection, a name that does not resolve, a TLS failure or
/// a stall fails at once.
fn worth_retrying(t: &ureq::Transport) -> bool {
    if t.kind() != ureq::ErrorKind::Io {
        return false;
    }
    let io = std::error::Error::source(t).and_then(|s| s.downcast_ref::<io::Error>());
    io.is_some_and(|e| {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::BrokenPipe
        )
    })
}

/// A transport failure in one line: the cause, without ureq's own framing of the URL.
fn transport_message(t: &ureq::Transport) -> String {
    match std::error::Error::source(t) {
        Some(src) => {
            let mut msg = src.to_string();
            let mut cur = src.source();
            while let Some(c) = cur {
                msg = format!("{msg}: {c}");
                cur = c.source();
            }
            match t.kind() {
                ureq::ErrorKind::ConnectionFailed => format!("connect: {msg}"),
                ureq::ErrorKind::Dns => format!("lookup: {msg}"),
                _ => msg,
            }
        }
        None => t
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| t.kind().to_string()),
    }
}

/// How long a transfer may go without a byte before it counts as stalled:
/// `BERTH_PULL_IDLE_TIMEOUT` seconds (fractions allowed), 30 by default. The older
/// `BERTH_STALL_TIMEOUT_SECS` is still read.
pub fn idle_timeout() -> Duration {
    ["BERTH_PULL_IDLE_TIMEOUT", "BERTH_STALL_TIMEOUT_SECS"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|s| s.trim().trim_end_matches('s').parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(30))
}

/// The most tags `list_tags` reads for one repository.
const MAX_TAGS: usize = 100_000;

/// The next page's URL in a `Link: <URL>; rel="next"` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// How many times one blob's stream is resumed after a stall or a dropped connection.
const RESUMES: u32 = 5;

/// A blob's bytes as the registry sends them, bounded by the descriptor's size. A dropped
/// connection reopens the blob from the current offset with a Range request, so the bytes already
/// read (and hashed, and unpacked) are never fetched again and the reader above sees one unbroken
/// stream. A stall (no byte for `idle_timeout()`) fails the read at once: a registry that stopped
/// sending is not waited for again. Errors name the blob.
pub struct BlobReader<'c> {
    client: &'c Client,
    repo: &'c str,
    digest: &'c Digest,
    size: u64,
    offset: u64,
    body: Box<dyn Read + Send + Sync>,
    resumes: u32,
}

impl BlobReader<'_> {
    /// A final error (kind `Other`: nothing above retries it).
    fn fail(&self, what: String) -> io::Error {
        io::Error::other(format!("blob {}: {what}", self.digest))
    }

    fn describe(&self, e: &io::Error) -> String {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
                "no data for {:?} at byte {} of {} (BERTH_PULL_IDLE_TIMEOUT)",
                idle_timeout(),
                self.offset,
                self.size
            ),
            io::ErrorKind::UnexpectedEof => format!(
                "the connection ended at byte {} of {}",
                self.offset, self.size
            ),
            _ => format!("at byte {} of {}: {e}", self.offset, self.size),
        }
    }

    /// Reopens the blob at the current offset, or gives up with what went wrong.
    fn resume(&mut self, e: io::Error) -> io::Result<()> {
        let why = self.describe(&e);
        if self.resumes >= RESUMES {
            return Err(self.fail(format!("{why}; gave up after {RESUMES} resumes")));
        }
        self.resumes += 1;
        match self.client.open_blob(self.repo, self.digest, self.offset) {
            Ok(body) => {
                self.body = body;
                Ok(())
            }
            Err(r) => Err(self.fail(format!("{why}; resuming failed: {r}"))),
        }
    }
}

/// A connection that broke (as opposed to one that stalled, or bad data).
fn dropped(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
    )
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // One byte past the size is asked for, so a registry sending too much is caught.
            let left = (self.size - self.offset).saturating_add(1);
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let result = match self.body.read(&mut buf[..want]) {
                Ok(0) if self.offset < self.size => Err(io::ErrorKind::UnexpectedEof.into()),
                other => other,
            };
            match result {
                Ok(n) => {
                    self.offset += n as u64;
                    if self.offset > self.size {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "blob {}: the registry sent more than its {} bytes",
                                self.digest, self.size
                            ),
                        ));
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if dropped(&e) => self.resume(e)?,
                Err(e) => return Err(self.fail(self.describe(&e))),
            }
        }
    }
}

/// The media types berth accepts for a manifest document.
pub fn is_manifest_type(t: &str) -> bool {
    matches!(t, OCI_MANIFEST | DOCKER_MANIFEST | OCI_INDEX | DOCKER_LIST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_comes_from_the_link_header() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"<https://x/y>; rel="prev""#), None);
    }

    #[test]
    fn loopback_and_listed_hosts_may_use_plain_http() {
        assert!(plain_http_allowed("localhost:5000", &[]));
        assert!(plain_http_allowed("127.0.0.1:5000", &[]));
        assert!(plain_http_allowed("[::1]:5000", &[]));
        assert!(!plain_http_allowed("registry.example:5000", &[]));
        assert!(plain_http_allowed(
            "registry.example:5000",
            &["registry.example:5000".into()]
        ));
    }
}
