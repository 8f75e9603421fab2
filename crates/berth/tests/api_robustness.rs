//! Hostile and careless clients of `berth serve`: malformed JSON, unknown endpoints and
//! versions, oversized bodies and headers, JSON nested without end, a hijacked stream half
//! closed, a client gone in the middle of a pull, a client that stalls, 50 clients at once; the
//! service answers each with a 4xx and `{"message": …}`, keeps serving, and holds no more file
//! descriptors or threads afterwards. Also: the socket's mode and owner, and TCP refused
//! without TLS.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/service.rs"]
mod service;

use fixture::{Sandbox, IMAGE};
use service::Service;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn message(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"))
        .to_string()
}

fn ping(svc: &Service) {
    assert_eq!(
        svc.request("GET", "/_ping", None),
        (200, "OK".into()),
        "the service still answers"
    );
}

/// Waits until the service's footprint comes back to `before` (connections close, worker
/// threads idle out); returns what it was at the end.
fn settles(svc: &Service, before: (usize, usize)) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = svc.footprint();
        if (now.0 <= before.0 && now.1 <= before.1 + 2) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bad_requests_get_a_4xx_with_a_message_and_the_service_goes_on() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    ping(&svc);
    let before = svc.footprint();
    let (s, b) = svc.request(
        "POST",
        "/v1.45/containers/create",
        Some("{\"Image\": \"bb\", "),
    );
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("invalid JSON"), "{b}");
    let (s, b) = svc.request("GET", "/v1.45/no/such/endpoint", None);
    assert_eq!((s, message(&b)), (404, "page not found".to_string()));
    let (s, b) = svc.request("GET", "/v9.99/info", None);
    assert_eq!(s, 400);
    assert!(message(&b).contains("too new"), "{b}");
    let (s, b) = svc.request("GET", "/v1.45/containers/nope/json", None);
    assert_eq!(
        (s, message(&b)),
        (404, "No such container: nope".to_string())
    );
    let (s, b) = svc.request(
        "POST",
        "/v1.45/containers/create",
        Some("{\"Image\": \"no-such-image\"}"),
    );
    assert_eq!(s, 404, "docker run pulls on a 404: {b}");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (s, b) = svc.request("POST", "/v1.45/containers/create", Some(&deep));
    assert_eq!(s, 400);
    assert!(message(&b).contains("nested"), "{b}");
    let big = format!(
        "{{\"Image\": \"bb\", \"Env\": [\"A={}\"]}}",
        "x".repeat(5 << 20)
    );
    let (s, b) = svc.request("POST", "/v1.45/containers/create", Some(&big));
    assert_eq!(s, 413, "{}", &b[..b.len().min(200)]);
    let (s, b) = svc.request(
        "POST",
        "/v1.45/containers/create",
        Some("{\"Image\": \"bb\", \"HostConfig\": {\"UsernsMode\": \"private\"}}"),
    );
    assert_eq!(s, 400);
    assert!(message(&b).contains("UsernsMode"), "{b}");
    let (s, b) = svc.request(
        "POST",
        "/v1.45/containers/create",
        Some("{\"Image\": \"bb\", \"Cmd\": [\"true\"], \"HostConfig\": {\"PidMode\": \"bogus\"}}"),
    );
    assert_eq!(
        s, 400,
        "an option the engine refuses is the client's error: {b}"
    );
    assert!(!message(&b).is_empty(), "{b}");
    let (s, _) = svc.request("GET", "/v1.45/containers/json?filters=%7Bnot-json", None);
    assert_eq!(s, 400);
    let (s, _) = svc.request(
        "GET",
        "/v1.45/containers/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
        None,
    );
    assert_eq!(s, 400);
    // Headers past the bound: refused (431) or the connection closed, never served.
    let flood = format!(
        "GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "y".repeat(100_000)
    );
    let (s, _) = svc.http(flood.as_bytes());
    assert!(
        s == 431 || s == 400 || s == 0,
        "an oversized header was served: {s}"
    );
    // Not HTTP at all.
    let (s, _) = svc.http(b"\x00\x01\x02 garbage\r\n\r\n");
    assert!(s == 400 || s == 0, "{s}");
    ping(&svc);
    assert!(
        sb.container_dirs().is_empty(),
        "no bad request made a container"
    );
    let after = settles(&svc, before);
    assert!(
        after.0 <= before.0,
        "file descriptors leaked: {before:?} -> {after:?}"
    );
    sb.assert_clean();
}

#[test]
fn a_stalled_client_holds_no_worker_and_fifty_clients_are_served_at_once() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let before = svc.footprint();
    // Half a request, then nothing: the others must not wait for it.
    let mut stalled = UnixStream::connect(&svc.socket).unwrap();
    stalled.write_all(b"POST /v1.45/containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Im").unwrap();
    let started = Instant::now();
    let workers: Vec<_> = (0..50)
        .map(|i| {
            let sock = svc.socket.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/v1.45/containers/json?all=1"
                } else {
                    "/v1.45/images/json"
                };
                let mut s = UnixStream::connect(&sock).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                write!(
                    s,
                    "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut raw = Vec::new();
                let _ = s.read_to_end(&mut raw);
                service::parse_response(&raw).0
            })
        })
        .collect();
    let statuses: Vec<u16> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "50 clients took {:?}",
        started.elapsed()
    );
    ping(&svc);
    drop(stalled);
    let after = settles(&svc, before);
    assert!(
        after.0 <= before.0,
        "file descriptors leaked: {before:?} -> {after:?}"
    );
    sb.assert_clean();
}

#[test]
fn a_half_closed_hijacked_stream_ends_the_containers_stdin_only() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let (s, b) = svc.request("POST", "/v1.45/containers/create", Some(&format!(
        "{{\"Image\": \"{IMAGE}\", \"Cmd\": [\"sh\", \"-c\", \"cat; echo done-after-eof\"], \"OpenStdin\": true, \"StdinOnce\": true, \"AttachStdin\": true}}"
    )));
    assert_eq!(s, 201, "{b}");
    let id = serde_json::from_str::<serde_json::Value>(&b).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    sb.track(&id);
    let mut conn = UnixStream::connect(&svc.socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(conn, "POST /v1.45/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    let (s, _) = svc.request("POST", &format!("/v1.45/containers/{id}/start"), None);
    assert_eq!(s, 204);
    conn.write_all(b"line one\n").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.contains("line one") && text.contains("done-after-eof"),
        "{text:?}"
    );
    sb.ok(&["wait", &id]);
    assert_eq!(sb.exit_state(&id), ("exited".to_string(), 0));
    sb.ok(&["rm", &id]);
    sb.assert_clean();
}

#[test]
fn a_client_gone_mid_pull_leaves_the_service_serving_and_no_staging() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let reg = common::registry::Registry::start();
    let name = format!("{}/bb:v1", reg.addr);
    sb.ok(&["tag", IMAGE, &name]);
    sb.ok(&["push", &name]);
    sb.ok(&["rmi", &name]);
    sb.ok(&["rmi", "bb:latest", "bb:imported"]);
    let mut conn = UnixStream::connect(&svc.socket).unwrap();
    write!(conn, "POST /v1.45/images/create?fromImage={}/bb&tag=v1 HTTP/1.1\r\nHost: x\r\nX-Registry-Auth: e30=\r\n\r\n", reg.addr).unwrap();
    let mut first = [0u8; 64];
    let _ = conn.read(&mut first);
    drop(conn);
    ping(&svc);
    // The pull finishes or stops on its own; nothing of it is left staged.
    fixture::wait_until(
        "the pull's staging is gone",
        Duration::from_secs(30),
        || std::fs::read_dir(sb.b.root.join("ingest")).map_or(true, |d| d.count() == 0),
    );
    let out = svc.docker_ok(&["pull", &name]);
    assert!(out.contains(&name), "{out}");
    sb.assert_clean();
}

#[test]
fn the_socket_is_0660_root_and_tcp_without_tls_is_refused() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let m = std::fs::metadata(&svc.socket).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    assert_eq!(m.uid(), 0);
    drop(svc);
    let out = sb.b.run(&["serve", "-H", "tcp://127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("--tlsverify"), "{}", out.stderr);
    let out = sb.b.run(&[
        "serve",
        "-H",
        "unix:///tmp/x.sock",
        "--group",
        "no-such-group-here",
    ]);
    assert!(
        !out.status.success() && out.stderr.contains("no such group"),
        "{}",
        out.stderr
    );
    sb.assert_clean();
}

#[test]
fn clients_gone_mid_response_never_end_the_service() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    for path in [
        format!("/v1.45/images/get?names={IMAGE}"),
        "/v1.45/events?since=0".to_string(),
        format!("/v1.45/images/{IMAGE}/get"),
    ] {
        for _ in 0..3 {
            let mut conn = UnixStream::connect(&svc.socket).unwrap();
            write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut first = [0u8; 100];
            let _ = conn.read(&mut first);
            drop(conn);
        }
        std::thread::sleep(Duration::from_millis(300));
        ping(&svc);
    }
    sb.assert_clean();
}
