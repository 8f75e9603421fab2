//! Tiny HTTP servers on threads: a fault proxy in front of a registry that answers the first N
//! requests whose path contains a pattern with `500` + `Connection: close` and pipes everything else
//! through, and a fake registry that serves fixed documents. Both stop when dropped.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Reads a request head (through the blank line); returns it and any body bytes read with it.
fn read_head(s: &mut TcpStream) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `GET` and `/v2/...` from the request line.
fn request_line(head: &[u8]) -> (String, String) {
    let line =
        String::from_utf8_lossy(head.split(|&b| b == b'\r').next().unwrap_or(&[])).into_owned();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    (method, path)
}

/// Accepts connections until `stop`, handing each to `serve` on its own thread.
fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    serve: impl Fn(TcpStream) + Send + Sync + 'static,
) -> JoinHandle<()> {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).expect("blocking stream");
                    let serve = serve.clone();
                    std::thread::spawn(move || serve(s));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// A listener on a free loopback port and its address.
fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

pub struct FaultProxy {
    /// `127.0.0.1:PORT`: give berth this instead of the registry's address.
    pub addr: String,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Proxies to `upstream`; for each `(pattern, n)`, the first `n` requests whose path contains
    /// `pattern` get a 500.
    pub fn start(upstream: &str, rules: Vec<(String, usize)>) -> FaultProxy {
        let (listener, addr) = listen();
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicUsize::new(0));
        let rules = Arc::new(Mutex::new(rules));
        let upstream = upstream.to_string();
        let counter = failed.clone();
        let thread = accept_loop(listener, stop.clone(), move |s| {
            let _ = proxy_one(s, &upstream, &rules, &counter);
        });
        FaultProxy {
            addr,
            failed,
            stop,
            thread: Some(thread),
        }
    }

    /// How many requests were answered with an injected 500.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_one(
    mut client: TcpStream,
    upstream: &str,
    rules: &Mutex<Vec<(String, usize)>>,
    failed: &AtomicUsize,
) -> io::Result<()> {
    let (head, rest) = read_head(&mut client)?;
    let (_, path) = request_line(&head);
    let inject = {
        let mut rules = rules.lock().expect("rules");
        match rules
            .iter_mut()
            .find(|(p, n)| *n > 0 && path.contains(p.as_str()))
        {
            Some((_, n)) => {
                *n -= 1;
                true
            }
            None => false,
        }
    };
    if inject {
        failed.fetch_add(1, Ordering::SeqCst);
        let body = br#"{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}"#;
        let resp = format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        client.write_all(resp.as_bytes())?;
        client.write_all(body)?;
        return client.shutdown(Shutdown::Both);
    }
    // One request per connection, so every request passes the rules.
    pipe_request(client, upstream, &head, &rest, &[])
}

/// Sends one request (its `head` and what was read past it) to `upstream`, asking it to close
/// afterwards and leaving out the headers named in `drop` (lowercase), then pipes the body up and
/// the answer back.
pub fn pipe_request(
    mut client: TcpStream,
    upstream: &str,
    head: &[u8],
    rest: &[u8],
    drop: &[&str],
) -> io::Result<()> {
    let text = String::from_utf8_lossy(head).into_owned();
    let mut rewritten = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        let name = lower.split(':').next().unwrap_or_default();
        if name != "connection" && !drop.contains(&name) {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(rewritten.as_bytes())?;
    up.write_all(rest)?;
    let mut up_read = up.try_clone()?;
    let mut client_write = client.try_clone()?;
    let body = std::thread::spawn(move || {
        let _ = io::copy(&mut client, &mut up);
        let _ = up.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut up_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = body.join();
    Ok(())
}

/// What a `CutProxy` does to a matching response once it has passed `after` body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Sends nothing more and keeps the connection open (a registry that stopped sending).
    Stall,
    /// Closes the connection (a dropped connection).
    Drop,
}

/// A proxy in front of a registry that cuts the first `times` responses to requests whose path
/// contains a pattern after `after` bytes of their body; every request head is kept.
pub struct CutProxy {
    pub addr: String,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CutProxy {
    pub fn start(upstream: &str, pattern: &str, after: usize, cut: Cut, times: usize) -> CutProxy {
        let (listener, addr) = listen();
        let stop = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let left = Arc::new(AtomicUsize::new(times));
        let (upstream, pattern) = (upstream.to_string(), pattern.to_string());
        let (seen, stopping) = (heads.clone(), stop.clone());
        let thread = accept_loop(listener, stop.clone(), move |s| {
            let _ = cut_one(s, &upstream, &pattern, after, cut, &left, &seen, &stopping);
        });
        CutProxy {
            addr,
            heads,
            stop,
            thread: Some(thread),
        }
    }

    /// The request heads seen so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("heads").clone()
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn cut_one(
    mut client: TcpStream,
    upstream: &str,
    pattern: &str,
    after: usize,
    cut: Cut,
    left: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let (head, rest) = read_head(&mut client)?;
    seen.lock()
        .expect("heads")
        .push(String::from_utf8_lossy(&head).into_owned());
    let (_, path) = request_line(&head);
    let matched = path.contains(pattern)
        && left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if !matched {
        return pipe_request(client, upstream, &head, &rest, &[]);
    }
    let mut up = TcpStream::connect(upstream)?;
    let text = String::from_utf8_lossy(&head).replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    up.write_all(text.as_bytes())?;
    up.write_all(&rest)?;
    let (resp_head, body) = read_head(&mut up)?;
    client.write_all(&resp_head)?;
    let mut sent = body.len().min(after);
    client.write_all(&body[..sent])?;
    let mut buf = [0u8; 4096];
    while sent < after {
        let n = up.read(&mut buf[..(after - sent).min(4096)])?;
        if n == 0 {
            break;
        }
        client.write_all(&buf[..n])?;
        sent += n;
    }
    client.flush()?;
    if cut == Cut::Stall {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    client.shutdown(Shutdown::Both)
}

/// A fake registry that serves fixed documents by exact path (GET and HEAD) and 404s the rest.
pub struct FakeRegistry {
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// One document the fake registry serves.
pub struct Doc {
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl FakeRegistry {
    pub fn start(docs: Vec<Doc>) -> FakeRegistry {
        let (listener, addr) = listen();
        let stop = Arc::new(AtomicBool::new(false));
        let docs = Arc::new(docs);
        let thread = accept_loop(listener, stop.clone(), move |s| {
            let _ = serve_doc(s, &docs);
        });
        FakeRegistry {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_doc(mut s: TcpStream, docs: &[Doc]) -> io::Result<()> {
    let (head, _) = read_head(&mut s)?;
    let (method, path) = request_line(&head);
    let found = docs.iter().find(|d| d.path == path);
    let (status, ct, body): (&str, &str, &[u8]) = match found {
        Some(d) => ("200 OK", &d.content_type, &d.body),
        None if path == "/v2/" => ("200 OK", "application/json", b"{}"),
        None => (
            "404 Not Found",
            "application/json",
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(resp.as_bytes())?;
    if method != "HEAD" {
        // The client may hang up once it has seen the length; that is its right.
        let _ = s.write_all(body);
    }
    s.shutdown(Shutdown::Both)
}
