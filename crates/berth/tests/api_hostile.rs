//! A catalogue of hostile requests sent to a real `berth serve` over its socket: numbers that
//! overflow (stop and restart timeouts, signal numbers, `since`, `tail`, resize sizes), JSON of
//! the wrong shape, names and paths that climb out (`..`), bytes that are not UTF-8 or not a
//! character boundary, headers that are not what they claim (`X-Registry-Auth`, `Upgrade`),
//! exec and attach on missing or stopped containers. Each gets a 4xx (or Docker's 404/409) with
//! Docker's `{"message": …}` naming the problem; afterwards the service still answers, its log
//! shows no panic, and it holds no more descriptors, containers, mounts or processes. The
//! streaming cases (clients that leave a hijacked or waiting stream, a delete while logs and
//! attach stream, a chunked body that never ends) hold no worker once the client is gone.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/service.rs"]
mod service;

use fixture::{Sandbox, IMAGE};
use service::Service;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// One raw request: `Connection: close`, extra header lines, an optional body.
fn raw(method: &str, path: &str, headers: &str, body: Option<&[u8]>) -> Vec<u8> {
    let mut r =
        format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n{headers}")
            .into_bytes();
    match body {
        Some(b) => {
            r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes());
            r.extend_from_slice(b);
        }
        None => r.extend_from_slice(b"\r\n"),
    }
    r
}

fn json_req(method: &str, path: &str, body: &str) -> Vec<u8> {
    raw(
        method,
        path,
        "Content-Type: application/json\r\n",
        Some(body.as_bytes()),
    )
}

/// The `message` of Docker's error body, or why there is none.
fn message(body: &str) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {body:?}"))?;
    v["message"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no message: {body}"))
}

/// Sends each case; returns every mismatch (status not wanted, no message, the message not
/// naming the problem, or an answer slower than 10 s).
fn run_cases(svc: &Service, cases: &[(&str, Vec<u8>, &[u16], &str)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (what, request, want, says) in cases {
        let started = Instant::now();
        let (status, body) = svc.http(request);
        let took = started.elapsed();
        let shown = &body[..body.floor_char_boundary(300)];
        if !want.contains(&status) {
            failures.push(format!("{what}: status {status}, wanted {want:?}: {shown}"));
            continue;
        }
        if took > Duration::from_secs(10) {
            failures.push(format!("{what}: took {took:?}"));
        }
        // A HEAD answer has no body by HTTP's rules.
        if status >= 400 && !request.starts_with(b"HEAD ") {
            match message(&body) {
                Ok(m) if m.to_lowercase().contains(&says.to_lowercase()) => {}
                Ok(m) => failures.push(format!("{what}: message {m:?} does not say {says:?}")),
                Err(e) => failures.push(format!("{what}: {e}")),
            }
        }
    }
    failures
}

fn ping(svc: &Service) {
    assert_eq!(
        svc.request("GET", "/_ping", None),
        (200, "OK".into()),
        "the service still answers"
    );
}

/// Waits until the service holds no more descriptors than `before` (its connections closed,
/// its sessions ended); returns the count at the end.
fn fds_settle(svc: &Service, before: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = svc.footprint().0;
        if now <= before || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The service's open sockets (its listener and its clients' connections; files it opens for
/// a moment are not counted).
fn sockets(svc: &Service) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", svc.pid())).map_or(0, |d| {
        d.flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .count()
    })
}

/// Waits until the service holds no more sockets than `before`; returns the count at the end.
fn sockets_settle(svc: &Service, before: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = sockets(svc);
        if now <= before || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn service_log(sb: &Sandbox) -> String {
    std::fs::read_to_string(sb.dir().join("serve.log")).unwrap_or_default()
}

fn create_body(fields: &str) -> String {
    format!("{{\"Image\": \"{IMAGE}\", \"Cmd\": [\"true\"], {fields}}}")
}

/// `X-Registry-Auth` with a value already base64 (no base64 crate among the tests').
fn auth_header(base64: &str) -> String {
    format!("X-Registry-Auth: {base64}\r\n")
}

#[test]
fn hostile_requests_get_a_4xx_naming_the_problem_and_leave_nothing_behind() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    // Exits on SIGTERM (a shell as PID 1 ignores it otherwise), so stop and restart are quick.
    // It says when its trap is set: a SIGTERM before that would be lost (PID 1 ignores it).
    let run = sb.run_d_sh(
        "",
        "trap 'exit 0' TERM; echo trapped; while :; do sleep 0.2; done",
    );
    let stopped = sb.ok(&["create", IMAGE, "true"]).trim().to_string();
    sb.track(&stopped);
    let secret = sb.dir().join("host-secret");
    std::fs::write(&secret, "host only").unwrap();
    let escape = sb.dir().join("escaped-from-archive");
    let climb = format!("../../../../../../../../..{}", secret.display());
    let evil_tar = common::image::LayerTar::new()
        .raw(
            tar::EntryType::Regular,
            &format!("../../../../../../../../..{}", escape.display()),
            "",
            b"out",
        )
        .finish();
    ping(&svc);
    let before = svc.footprint().0;
    let c = |rest: &str| format!("/v1.45/containers/{run}/{rest}");
    let s = |rest: &str| format!("/v1.45/containers/{stopped}/{rest}");
    let huge = "9".repeat(40);
    let cases: Vec<(&str, Vec<u8>, &[u16], &str)> = vec![
        // Numbers out of range.
        ("stop t not a number", raw("POST", &c("stop?t=soon"), "", None), &[400], "t"),
        ("stop t past i64", raw("POST", &c(&format!("stop?t={huge}")), "", None), &[400], "t"),
        ("kill signal past SIGRTMAX", raw("POST", &c("kill?signal=RTMIN%2B2147483647"), "", None), &[400], "signal"),
        ("kill signal 99", raw("POST", &c("kill?signal=99"), "", None), &[400], "signal"),
        ("kill signal -9", raw("POST", &c("kill?signal=-9"), "", None), &[400], "signal"),
        ("kill signal 0", raw("POST", &c("kill?signal=0"), "", None), &[400], "signal"),
        ("kill signal not UTF-8", raw("POST", &c("kill?signal=%ff%fe"), "", None), &[400], "signal"),
        ("kill a stopped container", raw("POST", &s("kill"), "", None), &[409], "not running"),
        ("resize negative", raw("POST", &c("resize?h=-1&w=80"), "", None), &[400], "h"),
        ("resize past u16", raw("POST", &c("resize?h=24&w=65536"), "", None), &[400], "w"),
        ("resize a stopped container", raw("POST", &s("resize?h=24&w=80"), "", None), &[409], "not running"),
        ("logs of no stream", raw("GET", &c("logs"), "", None), &[400], "stream"),
        ("logs since past i128 nanoseconds", raw("GET", &c(&format!("logs?stdout=1&since={huge}")), "", None), &[400], "since"),
        ("logs until before time", raw("GET", &c(&format!("logs?stdout=1&until=-{huge}")), "", None), &[400], "until"),
        ("logs since a bad date", raw("GET", &c("logs?stdout=1&since=2026-13-45T99:00:00Z"), "", None), &[400], "since"),
        ("logs tail not a number", raw("GET", &c("logs?stdout=1&tail=lots"), "", None), &[400], "tail"),
        ("logs tail past usize", raw("GET", &c(&format!("logs?stdout=1&tail={huge}")), "", None), &[400], "tail"),
        ("events since past i128 nanoseconds", raw("GET", &format!("/v1.45/events?since={huge}"), "", None), &[400], "since"),
        ("events until not a time", raw("GET", "/v1.45/events?until=%e2%82%ac%e2%82%ac", "", None), &[400], "until"),
        ("list limit not a number", raw("GET", "/v1.45/containers/json?limit=ten", "", None), &[400], "limit"),
        // A repeated key counts by its first value, as Go's FormValue takes it.
        ("repeated t, the first one bad", raw("POST", &c("stop?t=x&t=1"), "", None), &[400], "t"),
        // Filters of the wrong shape.
        ("filters a string", raw("GET", "/v1.45/containers/json?filters=%22status%22", "", None), &[400], "filters"),
        ("filters a list", raw("GET", "/v1.45/containers/json?filters=%5B1%5D", "", None), &[400], "filters"),
        ("filters of numbers", raw("GET", "/v1.45/containers/json?filters=%7B%22status%22%3A%5B1%5D%7D", "", None), &[400], "filters"),
        ("filters a bare string value", raw("GET", "/v1.45/events?filters=%7B%22type%22%3A%22container%22%7D", "", None), &[400], "filters"),
        ("image filter unknown", raw("GET", "/v1.45/images/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D", "", None), &[400], "colour"),
        // A pattern that backtracks without end in a naive matcher: answered at once.
        ("image reference of many stars", raw("GET", &format!("/v1.45/images/json?filters=%7B%22reference%22%3A%5B%22{}c%22%5D%7D", "*b".repeat(40)), "", None), &[200], ""),
        // Names and paths that climb out.
        ("container name with ..", raw("POST", "/v1.45/containers/create?name=..%2F..%2Fetc", "Content-Type: application/json\r\n", Some(create_body("\"Labels\": {}").as_bytes())), &[400], "name"),
        ("container name not UTF-8", raw("POST", "/v1.45/containers/create?name=%ff%fe", "Content-Type: application/json\r\n", Some(create_body("\"Labels\": {}").as_bytes())), &[400], "name"),
        ("container name too long", raw("POST", &format!("/v1.45/containers/create?name={}", "a".repeat(300)), "Content-Type: application/json\r\n", Some(create_body("\"Labels\": {}").as_bytes())), &[400], "name"),
        ("rename to ..", raw("POST", &c("rename?name=..%2Fx"), "", None), &[400], "name"),
        ("volume create ..", json_req("POST", "/v1.45/volumes/create", "{\"Name\": \"../../etc\"}"), &[400], "invalid characters"),
        ("volume create of one letter", json_req("POST", "/v1.45/volumes/create", "{\"Name\": \"a\"}"), &[400], "invalid characters"),
        ("volume inspect ..", raw("GET", "/v1.45/volumes/..%2F..%2Fcontainers", "", None), &[404], "no such volume"),
        ("volume remove ..", raw("DELETE", "/v1.45/volumes/..%2F..%2Fcontainers", "", None), &[404], "no such volume"),
        ("archive stat climbing out", raw("HEAD", &c(&format!("archive?path={climb}")), "", None), &[404], ""),
        ("archive get climbing out", raw("GET", &c(&format!("archive?path={climb}")), "", None), &[404], "Could not find"),
        ("archive put of an entry climbing out", raw("PUT", &c("archive?path=%2Ftmp"), "Content-Type: application/x-tar\r\n", Some(&evil_tar)), &[200, 400], ""),
        ("archive put not a tar", raw("PUT", &c("archive?path=%2Ftmp"), "Content-Type: application/x-tar\r\n", Some(b"not a tar at all, not even close")), &[400], ""),
        ("archive put into a file", raw("PUT", &c("archive?path=%2Fbin%2Fsh"), "", Some(&evil_tar)), &[400], "not a directory"),
        ("archive without a path", raw("GET", &c("archive"), "", None), &[400], "path"),
        ("image name with ..", raw("DELETE", "/v1.45/images/..%2F..%2Fetc", "", None), &[400, 404], ""),
        ("image tag to a bad name", raw("POST", &format!("/v1.45/images/{IMAGE}/tag?repo=UP%2F..%2Fx"), "", None), &[400], ""),
        ("build dockerfile outside", raw("POST", "/v1.45/build?dockerfile=..%2F..%2Fetc%2Fpasswd", "", Some(b"")), &[400], "inside the context"),
        ("path segment not a char boundary", raw("GET", "/v1.45/containers/%a\u{e9}/json", "", None), &[400, 404], ""),
        ("path segment not UTF-8", raw("GET", "/v1.45/containers/%ff%fe/json", "", None), &[404], "No such container"),
        ("version prefix of no number", raw("GET", "/v1.45abc/info", "", None), &[404], "page not found"),
        ("version past u32", raw("GET", &format!("/v1.{huge}/info"), "", None), &[400, 404], ""),
        // JSON of the wrong shape.
        ("create body a list", json_req("POST", "/v1.45/containers/create", "[]"), &[400], "invalid JSON"),
        ("create Image a number", json_req("POST", "/v1.45/containers/create", "{\"Image\": 5}"), &[400], "invalid JSON"),
        ("create Cmd of numbers", json_req("POST", "/v1.45/containers/create", &create_body("\"Entrypoint\": [1]")), &[400], "invalid JSON"),
        ("create Memory a word", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"Memory\": \"lots\"}")), &[400], "invalid JSON"),
        ("create BlkioWeight past u16", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"BlkioWeight\": 70000}")), &[400], "invalid JSON"),
        ("create Labels of numbers", json_req("POST", "/v1.45/containers/create", &create_body("\"Labels\": {\"a\": 5}")), &[400], "invalid JSON"),
        ("create Memory negative", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"Memory\": -5}")), &[400], "memory"),
        ("create StopTimeout huge", json_req("POST", "/v1.45/containers/create", &create_body("\"StopTimeout\": 9223372036854775807, \"StopSignal\": \"SIGNOPE\"")), &[400], "signal"),
        ("create restart policy unknown", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"RestartPolicy\": {\"Name\": \"sometimes\"}}")), &[400], "sometimes"),
        ("create healthcheck CMD alone", json_req("POST", "/v1.45/containers/create", &create_body("\"Healthcheck\": {\"Test\": [\"CMD\"]}")), &[400], "Healthcheck"),
        ("create healthcheck interval negative", json_req("POST", "/v1.45/containers/create", &create_body("\"Healthcheck\": {\"Test\": [\"CMD\", \"true\"], \"Interval\": -9223372036854775808}")), &[400], "interval"),
        ("create port past u16", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"PortBindings\": {\"80/tcp\": [{\"HostPort\": \"99999\"}]}}")), &[400], "99999"),
        ("create exposed port not a port", json_req("POST", "/v1.45/containers/create", &create_body("\"ExposedPorts\": {\"http/tcp\": {}}")), &[400], "http"),
        ("create relative working dir", json_req("POST", "/v1.45/containers/create", &create_body("\"WorkingDir\": \"relative\"")), &[400], "relative"),
        ("create relative bind target", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"Binds\": [\"/etc:../x\"]}")), &[400], "../x"),
        ("create log driver unknown", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"LogConfig\": {\"Type\": \"splunk\"}}")), &[400], "splunk"),
        ("create capability unknown", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"CapAdd\": [\"CAP_NOPE\"]}")), &[400], "NOPE"),
        ("create ulimit soft above hard", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"Ulimits\": [{\"Name\": \"nofile\", \"Soft\": 10, \"Hard\": 5}]}")), &[400], "nofile"),
        ("create network of a missing container", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"NetworkMode\": \"container:nope\"}")), &[400, 404], "nope"),
        ("update body a list", json_req("POST", &c("update"), "[1]"), &[400], "invalid JSON"),
        ("update restart policy unknown", json_req("POST", &c("update"), "{\"RestartPolicy\": {\"Name\": \"sometimes\"}}"), &[400], "sometimes"),
        ("update memory negative", json_req("POST", &c("update"), "{\"Memory\": -5}"), &[400], "cannot be negative"),
        ("network name with ..", json_req("POST", "/v1.45/networks/create", "{\"Name\": \"../../x\"}"), &[400], "invalid"),
        // What berth cannot do is refused by name, never dropped.
        ("network of swarm's ingress", json_req("POST", "/v1.45/networks/create", "{\"Name\": \"hostile-in\", \"Ingress\": true}"), &[400], "Ingress"),
        ("network with another IPAM driver", json_req("POST", "/v1.45/networks/create", "{\"Name\": \"hostile-ipam\", \"IPAM\": {\"Driver\": \"dhcp\"}}"), &[400], "IPAM.Driver"),
        ("connect with a MAC", json_req("POST", "/v1.45/networks/bridge/connect", &format!("{{\"Container\": \"{run}\", \"EndpointConfig\": {{\"MacAddress\": \"02:42:ac:11:00:02\"}}}}")), &[400], "MacAddress"),
        ("build with extra hosts", raw("POST", "/v1.45/build?extrahosts=a%3A1.2.3.4", "Content-Type: application/x-tar\r\n", Some(b"")), &[400], "extrahosts"),
        ("create with --gpus", json_req("POST", "/v1.45/containers/create", &create_body("\"HostConfig\": {\"DeviceRequests\": [{\"Count\": -1}]}")), &[400], "DeviceRequests"),
        ("swarm init", json_req("POST", "/v1.45/swarm/init", "{}"), &[503], "swarm"),
        ("network gateway outside its subnet", json_req("POST", "/v1.45/networks/create", "{\"Name\": \"hostile-gw\", \"IPAM\": {\"Config\": [{\"Subnet\": \"10.231.0.0/16\", \"Gateway\": \"1.2.3.4\"}]}}"), &[400], "gateway"),
        ("load of no tarball", raw("POST", "/v1.45/images/load", "Content-Type: application/x-tar\r\n", Some(b"garbage, not a tar")), &[400], ""),
        ("commit of an unknown change", raw("POST", &format!("/v1.45/commit?container={run}&changes=BOGUS%20x"), "", Some(b"")), &[400], "BOGUS"),
        ("commit to a bad name", raw("POST", &format!("/v1.45/commit?container={run}&repo=UP..x"), "", Some(b"")), &[400], "reference"),
        ("rename to nothing", raw("POST", &c("rename?name="), "", None), &[400], "name"),
        ("rename past a file name", raw("POST", &c(&format!("rename?name={}", "a".repeat(300))), "", None), &[400], "name"),
        ("archive path past a file name", raw("HEAD", &c(&format!("archive?path=%2F{}", "a".repeat(300))), "", None), &[400, 404], ""),
        ("archive path past PATH_MAX", raw("GET", &c(&format!("archive?path={}", "%2Fa".repeat(3000))), "", None), &[400, 404], ""),
        // Exec on what cannot run it.
        ("exec on a stopped container", json_req("POST", &s("exec"), "{\"Cmd\": [\"true\"]}"), &[409], "not running"),
        ("exec on a missing container", json_req("POST", "/v1.45/containers/nope/exec", "{\"Cmd\": [\"true\"]}"), &[404], "No such container"),
        ("exec of nothing", json_req("POST", &c("exec"), "{\"Cmd\": []}"), &[400], "command"),
        ("exec console size negative", json_req("POST", &c("exec"), "{\"Cmd\": [\"true\"], \"ConsoleSize\": [-1, 80]}"), &[400], "invalid JSON"),
        ("exec start of a missing instance", json_req("POST", "/v1.45/exec/nope/start", "{}"), &[404], "No such exec instance"),
        ("exec resize of a missing instance", raw("POST", "/v1.45/exec/nope/resize?h=1&w=1", "", None), &[404], "No such exec instance"),
        ("exec inspect of a missing instance", raw("GET", "/v1.45/exec/nope/json", "", None), &[404], "No such exec instance"),
        ("top with ps options ps refuses", raw("GET", &c("top?ps_args=--no-such-option"), "", None), &[400], "ps"),
        ("attach detach keys unknown", raw("POST", &c("attach?stream=1&stdout=1&detachKeys=ctrl-%C3%A9"), "", None), &[400], "detach keys"),
        // Headers that are not what they claim.
        ("registry auth not base64", raw("POST", "/v1.45/images/create?fromImage=127.0.0.1%3A1%2Fx&tag=1", "X-Registry-Auth: !!!not-base64!!!\r\n", None), &[400], "X-Registry-Auth"),
        ("registry auth a JSON list", raw("POST", "/v1.45/images/create?fromImage=127.0.0.1%3A1%2Fx&tag=1", &auth_header("WzEsIDJd") /* [1,2] */, None), &[400], "X-Registry-Auth"),
        ("registry auth for a push not JSON", raw("POST", &format!("/v1.45/images/{IMAGE}/push"), &auth_header("dXNlcjpwYXNz") /* user:pass */, None), &[400], "X-Registry-Auth"),
        ("upgrade asked of a plain endpoint", raw("GET", "/v1.45/containers/json", "Upgrade: tcp\r\n", None), &[200], ""),
        ("websocket asked of ping", raw("GET", "/_ping", "Upgrade: websocket\r\nSec-WebSocket-Key: x\r\n", None), &[200], ""),
        ("pull without a name", raw("POST", "/v1.45/images/create", "", None), &[400], "fromImage"),
        ("chunked body of a bad chunk size", raw("POST", "/v1.45/containers/create", "Transfer-Encoding: chunked\r\n", None).into_iter().chain(*b"zz\r\n{}\r\n0\r\n\r\n").collect(), &[400], ""),
    ];
    let mut failures = run_cases(&svc, &cases);
    // Timeouts past any clock: the stop waits for the container's exit, never panics.
    let trapped = || sb.ok(&["logs", &run]).matches("trapped").count();
    fixture::wait_until("the trap is set", Duration::from_secs(10), || {
        trapped() == 1
    });
    for (n, path) in [
        c(&format!("restart?t={}", i64::MAX)),
        c(&format!("stop?t={}", i64::MAX)),
    ]
    .iter()
    .enumerate()
    {
        // The restarted shell sets its trap again before it is stopped.
        fixture::wait_until("the trap is set", Duration::from_secs(10), || {
            trapped() == n + 1
        });
        let (status, body) = svc.request("POST", path, None);
        if status != 204 {
            failures.push(format!("{path}: {status} {body}"));
        }
    }
    ping(&svc);
    let log = service_log(&sb);
    failures.extend(
        log.lines()
            .filter(|l| l.contains("panicked"))
            .map(|l| format!("the service panicked: {l}")),
    );
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        !escape.exists(),
        "an archive entry climbed out of the container"
    );
    let mut dirs = sb.container_dirs();
    dirs.sort();
    let mut ours = vec![run.clone(), stopped.clone()];
    ours.sort();
    assert_eq!(dirs, ours, "a hostile request made a container");
    let after = fds_settle(&svc, before);
    assert!(after <= before, "descriptors leaked: {before} -> {after}");
    sb.ok(&["rm", "-f", &run, &stopped]);
    sb.assert_clean();
}

/// Opens a raw connection and sends `request` (left open).
fn open(svc: &Service, request: &[u8]) -> UnixStream {
    let mut s = UnixStream::connect(&svc.socket).expect("connect to the service");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    s
}

/// Reads until the headers' end; returns them.
fn head(s: &mut UnixStream) -> String {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
        got.push(b[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads to the end; true when the service ended the stream within the read timeout.
fn ends(mut s: UnixStream) -> bool {
    let mut sink = Vec::new();
    s.read_to_end(&mut sink).is_ok()
}

#[test]
fn clients_that_leave_or_never_finish_hold_no_worker_and_deletes_end_streams() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let stopped = sb.ok(&["create", IMAGE, "true"]).trim().to_string();
    sb.track(&stopped);
    let run = sb.run_d_sh("", "while :; do echo tick; sleep 0.2; done");
    ping(&svc);
    let before = svc.footprint().0;
    let sockets_before = sockets(&svc);
    // Attach (hijacked, and as a plain body) to a container that never starts, then leave.
    for upgrade in ["Connection: Upgrade\r\nUpgrade: tcp\r\n", ""] {
        let mut s = open(
            &svc,
            format!("POST /v1.45/containers/{stopped}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n").as_bytes(),
        );
        let h = head(&mut s);
        assert!(
            h.starts_with("HTTP/1.1 101") || h.starts_with("HTTP/1.1 200"),
            "{h}"
        );
        drop(s);
    }
    let after = sockets_settle(&svc, sockets_before);
    assert!(
        after <= sockets_before,
        "a session outlived its client: sockets {sockets_before} -> {after}"
    );
    // A chunked body that never ends, and a Content-Length body cut short by a half-close.
    let stalled = open(&svc, b"POST /v1.45/containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"Ima\r\n");
    let mut short = open(
        &svc,
        b"POST /v1.45/volumes/create HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"Na",
    );
    short.shutdown(std::net::Shutdown::Write).unwrap();
    let h = head(&mut short);
    assert!(h.is_empty() || h.starts_with("HTTP/1.1 4"), "{h}");
    ping(&svc);
    drop(stalled);
    drop(short);
    // A delete while its logs follow and a client is attached ends both streams.
    let mut logs = open(&svc, format!("GET /v1.45/containers/{run}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    assert!(head(&mut logs).starts_with("HTTP/1.1 200"));
    let mut attach = open(&svc, format!("POST /v1.45/containers/{run}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").as_bytes());
    assert!(head(&mut attach).starts_with("HTTP/1.1 101"));
    let (status, body) = svc.request("DELETE", &format!("/v1.45/containers/{run}?force=1"), None);
    assert_eq!(status, 204, "{body}");
    assert!(ends(logs), "the logs stream outlived its container");
    assert!(ends(attach), "the attach stream outlived its container");
    // Exec made while it ran, started after it stopped: Docker's 409.
    let run2 = sb.run_d_sh("", "trap 'exit 0' TERM; while :; do sleep 0.2; done");
    let (status, body) = svc.request(
        "POST",
        &format!("/v1.45/containers/{run2}/exec"),
        Some("{\"Cmd\": [\"true\"]}"),
    );
    assert_eq!(status, 201, "{body}");
    let exec: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exec = exec["Id"].as_str().unwrap().to_string();
    sb.ok(&["stop", &run2]);
    let (status, body) = svc.request(
        "POST",
        &format!("/v1.45/exec/{exec}/start"),
        Some("{\"Detach\": true}"),
    );
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).unwrap().contains("not running"), "{body}");
    ping(&svc);
    let after = fds_settle(&svc, before);
    assert!(after <= before, "descriptors leaked: {before} -> {after}");
    let log = service_log(&sb);
    assert!(!log.contains("panicked"), "the service panicked:\n{log}");
    sb.ok(&["rm", "-f", &stopped, &run2]);
    sb.assert_clean();
}

#[test]
fn stops_with_a_long_grace_hold_no_worker_and_go_on_when_their_clients_leave() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let deaf = sb.run_d_sh("", "trap '' TERM; while :; do sleep 0.2; done");
    // More stops with an hour's grace than the service has blocking workers (128).
    let mut waiting: Vec<UnixStream> = (0..140)
        .map(|_| {
            open(
                &svc,
                format!("POST /v1.45/containers/{deaf}/stop?t=3600 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Every other request still gets a worker at once.
    let started = Instant::now();
    let (status, body) = svc.request("GET", "/v1.45/containers/json", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&deaf), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a listing waited {:?} behind the stops",
        started.elapsed()
    );
    // Half the clients leave; the container's end answers the rest.
    waiting.truncate(70);
    let (status, body) = svc.request(
        "POST",
        &format!("/v1.45/containers/{deaf}/kill?signal=KILL"),
        None,
    );
    assert_eq!(status, 204, "{body}");
    for mut s in waiting {
        let h = head(&mut s);
        assert!(h.starts_with("HTTP/1.1 204"), "{h}");
    }
    assert_eq!(sb.status(&deaf), "exited");

    // A stop whose client leaves during the grace still ends in SIGKILL after it, as Docker's.
    let deaf2 = sb.run_d_sh("", "trap '' TERM; while :; do sleep 0.2; done");
    let leaving = open(
        &svc,
        format!("POST /v1.45/containers/{deaf2}/stop?t=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(500));
    drop(leaving);
    fixture::wait_until(
        "the stop finished without its client",
        Duration::from_secs(20),
        || sb.status(&deaf2) == "exited",
    );
    assert_eq!(sb.exit_state(&deaf2), ("exited".to_string(), 137));
    ping(&svc);
    let log = service_log(&sb);
    assert!(!log.contains("panicked"), "the service panicked:\n{log}");
    sb.ok(&["rm", "-f", &deaf, &deaf2]);
    sb.assert_clean();
}

#[test]
fn slow_uploads_hold_at_most_their_slots_and_every_other_request_is_served() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let run = sb.run_d_sh("", "sleep 300");
    ping(&svc);
    let before = svc.footprint().0;
    // More tarballs than the service has blocking workers (128), each sent as far as its first
    // bytes and then left to trickle: loads, imports and copies into a container.
    let paths = [
        "/v1.45/images/load".to_string(),
        "/v1.45/images/create?fromSrc=-&repo=slow".to_string(),
        format!("/v1.45/containers/{run}/archive?path=/tmp"),
    ];
    let slow: Vec<UnixStream> = (0..135)
        .map(|i| {
            let path = &paths[i % paths.len()];
            let method = if path.contains("archive") { "PUT" } else { "POST" };
            open(
                &svc,
                format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: 1048576\r\n\r\nslow").as_bytes(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    served_promptly(&svc, &run, "json", "the uploads");
    // The uploaders leave: every worker and descriptor they held comes back.
    drop(slow);
    ends_clean(&sb, &svc, before, &run);
}

#[test]
fn streams_that_live_as_long_as_their_clients_leave_every_worker_free() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let run = sb.run_d_sh("", "while :; do echo tick; sleep 0.5; done");
    ping(&svc);
    let before = svc.footprint().0;
    // `docker stats` opens one stream per container, `docker logs -f` one each: more of them
    // than the service has blocking workers (128).
    let streams: Vec<UnixStream> = (0..140)
        .map(|i| {
            let path = if i % 10 != 0 {
                format!("/v1.45/containers/{run}/stats?stream=1")
            } else {
                format!("/v1.45/containers/{run}/logs?follow=1&stdout=1")
            };
            let mut s = open(
                &svc,
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            );
            assert!(head(&mut s).starts_with("HTTP/1.1 200"));
            s
        })
        .collect();
    served_promptly(&svc, &run, "top", "the streams");
    drop(streams);
    ends_clean(&sb, &svc, before, &run);
}

/// The container list and `run`'s `what` (`json`, `top`) are both answered within 5 s while
/// `behind` holds the service.
fn served_promptly(svc: &Service, run: &str, what: &str, behind: &str) {
    let started = Instant::now();
    let (status, body) = svc.request("GET", "/v1.45/containers/json", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = svc.request("GET", &format!("/v1.45/containers/{run}/{what}"), None);
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "requests waited {:?} behind {behind}",
        started.elapsed()
    );
}

/// Once a load's clients left: the service holds no more descriptors than `before`, still
/// answers and never panicked; removing `run` leaves the store clean.
fn ends_clean(sb: &Sandbox, svc: &Service, before: usize, run: &str) {
    let after = fds_settle(svc, before);
    assert!(after <= before, "descriptors leaked: {before} -> {after}");
    ping(svc);
    let log = service_log(sb);
    assert!(!log.contains("panicked"), "the service panicked:\n{log}");
    sb.ok(&["rm", "-f", run]);
    sb.assert_clean();
}
