//! HTTP plumbing shared by every endpoint: the response body (whole, or streamed from a channel),
//! Docker's JSON and error responses, bounded request bodies (whole for JSON, streamed for
//! tarballs, both with an idle timeout), JSON with bounded nesting, and query parameters with
//! Docker's `filters`.

use crate::error::{ApiError, ApiResult};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{header, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// The largest JSON request body (a container's create with its environment, a network…).
pub const MAX_JSON_BODY: usize = 4 << 20;
/// The deepest nesting of arrays and objects a JSON body may have.
pub const MAX_JSON_DEPTH: usize = 64;
/// How long a client may send nothing in the middle of its request body.
pub const BODY_IDLE: Duration = Duration::from_secs(60);

/// A response body: whole, or chunks sent on a channel until its sender is dropped.
pub enum Body {
    Full(Option<Bytes>),
    Chan(mpsc::Receiver<Bytes>),
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Chan(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Chan(_) => SizeHint::default(),
        }
    }
}

pub type Resp = Response<Body>;

fn builder(status: StatusCode) -> hyper::http::response::Builder {
    Response::builder()
        .status(status)
        .header("Api-Version", berth_engine::system::API_VERSION)
        .header("Docker-Experimental", "false")
        .header("Ostype", "linux")
        .header(header::SERVER, concat!("berth/", env!("CARGO_PKG_VERSION")))
}

pub fn bytes(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    builder(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::Full(Some(body.into())))
        .expect("a valid response")
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, v: &T) -> Resp {
    let mut body = serde_json::to_vec(v).expect("a response serializes");
    body.push(b'\n');
    bytes(status, "application/json", body)
}

pub fn empty(status: StatusCode) -> Resp {
    builder(status)
        .body(Body::Full(None))
        .expect("a valid response")
}

/// Docker's error body, `{"message": "…"}`.
pub fn error(e: &ApiError) -> Resp {
    json(e.status(), &serde_json::json!({ "message": e.to_string() }))
}

/// A streamed response: what is sent on the returned channel, until it is dropped.
pub fn stream(status: StatusCode, content_type: &str) -> (mpsc::Sender<Bytes>, Resp) {
    let (tx, rx) = mpsc::channel(16);
    let resp = builder(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::Chan(rx))
        .expect("a valid response");
    (tx, resp)
}

/// A response with extra headers (the hijack's upgrade, `X-Docker-Container-Path-Stat`).
pub fn with_header(mut r: Resp, name: &'static str, value: &str) -> Resp {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

/// The whole body, at most `limit` bytes, each chunk within `BODY_IDLE` of the last.
pub async fn read_body(mut body: Incoming, limit: usize) -> ApiResult<Bytes> {
    let mut out = bytes::BytesMut::new();
    loop {
        let frame = tokio::time::timeout(BODY_IDLE, body.frame())
            .await
            .map_err(|_| ApiError::bad("timed out reading the request body"))?;
        match frame {
            None => return Ok(out.freeze()),
            Some(Err(e)) => return Err(ApiError::bad(format!("reading the request body: {e}"))),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    if out.len() + d.len() > limit {
                        return Err(ApiError::TooLarge { limit });
                    }
                    out.extend_from_slice(&d);
                }
            }
        }
    }
}

/// Parses a JSON object body into `T` (an empty body or `null` is `T`'s default, as Docker
/// treats a missing body), refusing nesting deeper than `MAX_JSON_DEPTH` and any other shape
/// (serde would read a struct from a list, field by field).
pub fn parse_json<T: DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    let text = body.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(T::default());
    }
    check_depth(body)?;
    if text[0] != b'{' {
        return Err(ApiError::bad("invalid JSON: expected an object"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON: {e}")))
}

/// Refuses JSON nested deeper than `MAX_JSON_DEPTH` before any parser recurses into it.
fn check_depth(body: &[u8]) -> ApiResult<()> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ApiError::bad(format!(
                        "invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A request body read on a blocking thread (a tarball to load, extract or build from): chunks
/// come from a task reading the connection, at most `limit` bytes in all. It holds one of the
/// service's upload slots (`App::body_reader`) until dropped.
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl BodyReader {
    pub fn spawn(
        mut body: Incoming,
        limit: u64,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> BodyReader {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let mut total = 0u64;
            loop {
                let item = match tokio::time::timeout(BODY_IDLE, body.frame()).await {
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "timed out reading the request body",
                    )),
                    Ok(None) => return,
                    Ok(Some(Err(e))) => {
                        Err(io::Error::other(format!("reading the request body: {e}")))
                    }
                    Ok(Some(Ok(f))) => match f.into_data() {
                        Ok(d) => {
                            total += d.len() as u64;
                            if total > limit {
                                Err(io::Error::other(format!(
                                    "request body is larger than {limit} bytes"
                                )))
                            } else {
                                Ok(d)
                            }
                        }
                        Err(_) => continue,
                    },
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        BodyReader {
            rx,
            cur: Bytes::new(),
            _slot: slot,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.cur = chunk?,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Query parameters (the first value of a repeated key counts, as in Go, except with `all`).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query {
            pairs: form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The first value of `k`, as Go's `FormValue` takes it (docker-py sends `dockerfile`
    /// twice for a Dockerfile outside the context, the name first).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key (`names=a&names=b`).
    pub fn all(&self, k: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's booleans: `1`, `true`, `True` (and a bare key) are true.
    pub fn flag(&self, k: &str) -> bool {
        self.get(k)
            .is_some_and(|v| matches!(v, "" | "1" | "true" | "True" | "TRUE" | "yes"))
    }

    /// A flag defaulting to `default` when absent.
    pub fn flag_or(&self, k: &str, default: bool) -> bool {
        match self.get(k) {
            None => default,
            Some(_) => self.flag(k),
        }
    }

    pub fn number<T: std::str::FromStr>(&self, k: &str) -> ApiResult<Option<T>> {
        match self.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad(format!("invalid value for {k}: {v:?}"))),
        }
    }

    /// Docker's `filters`: `{"key": ["v", …]}`, or the older `{"key": {"v": true}}`.
    pub fn filters(&self) -> ApiResult<BTreeMap<String, Vec<String>>> {
        let Some(raw) = self.get("filters").filter(|f| !f.is_empty()) else {
            return Ok(BTreeMap::new());
        };
        check_depth(raw.as_bytes())?;
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Values {
            List(Vec<String>),
            Set(HashMap<String, bool>),
        }
        let parsed: BTreeMap<String, Values> = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad(format!("invalid filters: {e}")))?;
        Ok(parsed
            .into_iter()
            .map(|(k, v)| {
                let values = match v {
                    Values::List(l) => l,
                    Values::Set(s) => s
                        .into_iter()
                        .filter(|(_, on)| *on)
                        .map(|(v, _)| v)
                        .collect(),
                };
                (k, values)
            })
            .collect())
    }
}

/// A response body written on a blocking thread (a tarball being made): 64 KiB chunks onto the
/// response's channel; a client that went away makes the next write fail.
pub struct BodyWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl BodyWriter {
    pub fn new(tx: mpsc::Sender<Bytes>) -> BodyWriter {
        BodyWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        }
    }
}

impl io::Write for BodyWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(64 * 1024),
        ));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        let _ = io::Write::flush(self);
    }
}

/// Docker's filter semantics: every key must match; a key matches when any of its values does,
/// except `label`, whose values must all match.
pub fn filters_match(
    filters: &BTreeMap<String, Vec<String>>,
    one: impl Fn(&str, &str) -> bool,
) -> bool {
    filters.iter().all(|(k, vs)| match k.as_str() {
        "label" => vs.iter().all(|v| one(k, v)),
        _ => vs.iter().any(|v| one(k, v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_nesting_is_bounded_and_strings_do_not_count() {
        let deep = "[".repeat(MAX_JSON_DEPTH + 1);
        assert!(check_depth(deep.as_bytes()).is_err());
        let quoted = format!("{{\"a\": \"{}\"}}", "[".repeat(1000));
        assert!(check_depth(quoted.as_bytes()).is_ok());
        let v: serde_json::Value = parse_json(b"  ").unwrap();
        assert!(v.is_null());
        #[derive(serde::Deserialize, Default, Debug)]
        struct Two {
            #[allow(dead_code)]
            a: Option<i64>,
        }
        assert!(
            parse_json::<Two>(b"[1]").is_err(),
            "a list is not an object"
        );
        assert!(parse_json::<Two>(b" null ").is_ok());
        assert!(parse_json::<Two>(b"{\"a\": 1}").is_ok());
    }

    #[test]
    fn filters_read_both_of_dockers_shapes() {
        let q = Query::parse(Some(
            "filters=%7B%22status%22%3A%5B%22running%22%5D%7D&all=1",
        ));
        assert_eq!(q.filters().unwrap()["status"], vec!["running"]);
        assert!(q.flag("all"));
        let q = Query::parse(Some("filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D"));
        assert_eq!(q.filters().unwrap()["label"], vec!["a=b"]);
        assert!(Query::parse(Some("filters=%7Bnope")).filters().is_err());
    }
}
