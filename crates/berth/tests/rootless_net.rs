//! Rootless networking, as a real unprivileged user the test creates: a container on the default
//! network is connected by pasta, reaches a server in an "outside" network namespace the test
//! makes (joined to the host by a veth), resolves names through pasta's DNS forwarder, and
//! publishes ports that answer from the host. A taken host port fails before the start; pasta
//! ends with its container (rm -f, kill -9, a failed start) and nothing is left: no pasta, no
//! process, no namespace mount. `--network host` is the user's own namespace; user-defined
//! networks are refused. `--add-host NAME:host-gateway` reaches the host's loopback (and only
//! then), and a published UDP port delivers the host's datagrams.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/rootless_user.rs"]
mod rootless_user;

use berth_runtime_tests::user::TestUser;
use common::registry::Registry;
use rootless_user::{
    alive, berth, busybox_image, ok, pulled, user_mounts_with, user_processes, wait_until,
    TunAccess, UserDirs,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A network namespace "outside" the host, joined to it by a veth (`10.213.N.1` on the host,
/// `10.213.N.2` outside); removed with its veth when dropped.
struct Outside {
    name: String,
    host_if: String,
    server: String,
}

impl Outside {
    fn make() -> Outside {
        let pid = std::process::id();
        let n = pid % 250 + 1;
        let o = Outside {
            name: format!("brlout{pid}"),
            host_if: format!("brlh{pid}"),
            server: format!("10.213.{n}.2"),
        };
        let peer = format!("brlo{pid}");
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["netns", "add", &o.name]);
        ip(&[
            "link", "add", &o.host_if, "type", "veth", "peer", "name", &peer, "netns", &o.name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("10.213.{n}.1/30"),
            "dev",
            &o.host_if,
        ]);
        ip(&["link", "set", &o.host_if, "up"]);
        let inside = ["netns", "exec", &o.name, "ip"];
        let addr = format!("{}/30", o.server);
        ip(&[&inside[..], &["addr", "add", &addr, "dev", &peer]].concat());
        ip(&[&inside[..], &["link", "set", &peer, "up"]].concat());
        ip(&[&inside[..], &["link", "set", "lo", "up"]].concat());
        o
    }

    /// Serves `body` over HTTP/1.0 on `server:port` inside the namespace, to each client.
    fn serve(&self, port: u16, body: &'static str) {
        let ns = PathBuf::from(format!("/run/netns/{}", self.name));
        let addr = format!("{}:{port}", self.server);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let f = std::fs::File::open(&ns).unwrap();
            // A thread of its own: setns moves only this thread into the namespace.
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let l = TcpListener::bind(&addr).unwrap();
            tx.send(()).unwrap();
            for mut c in l.incoming().flatten() {
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                let reply = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = c.write_all(reply.as_bytes());
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        // Deleting the namespace takes the veth pair with it; the host end is deleted too in
        // case a server thread still holds the namespace.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A GET of `/` from the host, its body.
fn http_get(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The pasta recorded for container `id` in the user's store: its pid.
fn pasta_of(dirs: &UserDirs, id: &str) -> Option<i32> {
    let file = dirs
        .base
        .join("data/berth/containers")
        .join(id)
        .join("pasta.pid");
    let text = std::fs::read_to_string(file).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Nothing of the user's runs but their pause process, and no network namespace of theirs is
/// mounted in their mount namespace (the host's own /run/netns mounts show there too).
fn assert_nothing_left(user: &TestUser, dirs: &UserDirs, when: &str) {
    let settled = wait_until(Duration::from_secs(5), || {
        user_processes(user, dirs).is_empty()
    });
    assert!(
        settled,
        "{when}: processes left: {:?}",
        user_processes(user, dirs)
    );
    let ns: Vec<String> = user_mounts_with(dirs, " nsfs ")
        .into_iter()
        .filter(|l| l.contains(&dirs.base.display().to_string()))
        .collect();
    assert!(ns.is_empty(), "{when}: namespace mounts left: {ns:?}");
}

/// What the host's own resolver says of `name` (busybox nslookup), if it answers at all.
fn host_lookup(name: &str) -> Option<String> {
    let out = Command::new("busybox")
        .args(["timeout", "5", "busybox", "nslookup", name])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (text.contains("NXDOMAIN") || text.contains("Address:") && text.contains(name)).then_some(text)
}

#[test]
fn rootless_default_network_reaches_outside_resolves_and_publishes_through_pasta() {
    let tun = TunAccess::grant();
    let user = TestUser::create();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let r = pulled(&user, &dirs, &reg, "rootless-net", &busybox_image());
    let outside = Outside::make();
    outside.serve(7777, "hello-from-outside\n");

    // Out through pasta to a server beyond the host, names through pasta's forwarder.
    let url = format!("http://{}:7777/", outside.server);
    let script = format!(
        "wget -qO- {url}; grep nameserver /etc/resolv.conf; ip -o link | grep -c -v ' lo:'"
    );
    let out = ok(&user, &dirs, &["run", "--rm", &r, "sh", "-c", &script]);
    assert_eq!(
        out, "hello-from-outside\nnameserver 169.254.1.1\n1\n",
        "the container's own interface, pasta's resolver, the outside server"
    );
    if let Some(host) = host_lookup("example.com") {
        // NXDOMAIN is an answer (nslookup then exits 1): the query made the round trip.
        let seen = berth(
            &user,
            &dirs,
            &["run", "--rm", &r, "nslookup", "example.com"],
        )
        .stdout;
        let answered = |t: &str| t.contains("NXDOMAIN") || t.contains("Address: ");
        assert!(
            answered(&seen) && seen.contains("169.254.1.1"),
            "the host's resolver answers ({host}) but not through pasta: {seen}"
        );
    }
    assert_nothing_left(&user, &dirs, "after run --rm");

    // Published ports answer from the host: a fixed one and a random one.
    let fixed = free_port();
    let publish = format!("{fixed}:8080");
    let id = ok(
        &user,
        &dirs,
        &[
            "run", "-d", "--name", "web", "-p", &publish, "-p", "8081", &r, "sh", "-c",
            "mkdir /www; echo hello-from-container > /www/index.html; httpd -p 8081 -h /www; httpd -f -p 8080 -h /www",
        ],
    );
    let id = id.trim().to_string();
    let random = ok(&user, &dirs, &["port", "web", "8081"]);
    let random = random.trim().rsplit(':').next().unwrap().to_string();
    assert!(random.parse::<u16>().is_ok(), "port web 8081: {random:?}");
    for port in [fixed.to_string(), random] {
        let addr = format!("127.0.0.1:{port}");
        let got = wait_until(Duration::from_secs(10), || {
            TcpStream::connect(&addr).is_ok() && http_get(&addr) == "hello-from-container\n"
        });
        assert!(got, "published port {addr} does not answer from the host");
    }
    let explain = ok(&user, &dirs, &["explain", "web"]);
    assert!(
        explain.contains("user-mode network through pasta")
            && explain.contains(&format!("published 0.0.0.0:{fixed}->8080/tcp")),
        "{explain}"
    );
    let ps = ok(&user, &dirs, &["ps"]);
    assert!(ps.contains(&format!("0.0.0.0:{fixed}->8080/tcp")), "{ps}");
    let pasta = pasta_of(&dirs, &id).expect("the container's pasta is recorded");
    assert!(alive(pasta));

    // stop ends its pasta and namespace; start makes them anew and the port answers again.
    ok(&user, &dirs, &["stop", "-t", "1", "web"]);
    assert!(!alive(pasta), "pasta {pasta} outlived stop");
    assert_nothing_left(&user, &dirs, "after stop");
    ok(&user, &dirs, &["start", "web"]);
    let addr = format!("127.0.0.1:{fixed}");
    let again = wait_until(Duration::from_secs(10), || {
        TcpStream::connect(&addr).is_ok() && http_get(&addr) == "hello-from-container\n"
    });
    assert!(again, "{addr} does not answer after stop and start");
    let pasta = pasta_of(&dirs, &id).expect("the restarted container's pasta is recorded");
    assert!(alive(pasta));

    // A port below net.ipv4.ip_unprivileged_port_start: refused, saying why.
    let low = berth(&user, &dirs, &["run", "--rm", "-p", "80:80", &r, "true"]);
    assert!(!low.status.success());
    assert!(
        low.stderr.contains("ip_unprivileged_port_start"),
        "{}",
        low.stderr
    );

    // UDP: pasta holds the published host port while the container runs (the image's busybox
    // has no UDP listener to answer through it), and lets it go with the container.
    let udp_port = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let udp_publish = format!("{udp_port}:9999/udp");
    ok(
        &user,
        &dirs,
        &[
            "run",
            "-d",
            "--name",
            "udp",
            "-p",
            &udp_publish,
            &r,
            "sleep",
            "1000",
        ],
    );
    let held = std::net::UdpSocket::bind(("0.0.0.0", udp_port));
    assert_eq!(
        held.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::AddrInUse),
        "pasta does not hold {udp_publish}"
    );
    assert_eq!(
        ok(&user, &dirs, &["port", "udp"]).trim(),
        format!("9999/udp -> 0.0.0.0:{udp_port}")
    );
    ok(&user, &dirs, &["rm", "-f", "udp"]);
    assert!(
        std::net::UdpSocket::bind(("0.0.0.0", udp_port)).is_ok(),
        "{udp_publish} is still held after rm -f"
    );

    // A host port in use: refused before the container starts.
    let held = TcpListener::bind("0.0.0.0:0").unwrap();
    let taken = format!("{}:80", held.local_addr().unwrap().port());
    let refused = berth(
        &user,
        &dirs,
        &["run", "-d", "-p", &taken, &r, "sleep", "100"],
    );
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("port is already allocated"),
        "{}",
        refused.stderr
    );
    drop(held);

    // rm -f ends its pasta; nothing else of the user's runs.
    ok(&user, &dirs, &["rm", "-f", "web"]);
    assert!(!alive(pasta), "pasta {pasta} outlived rm -f");
    // The refused container stays created, as Docker leaves it.
    for left in ok(&user, &dirs, &["ps", "-aq"]).split_whitespace() {
        ok(&user, &dirs, &["rm", "-f", left]);
    }
    assert_nothing_left(&user, &dirs, "after rm -f and a refused port");

    // kill -9 of the container's init: its pasta goes with it.
    let id = ok(&user, &dirs, &["run", "-d", &r, "sleep", "1000"]);
    let id = id.trim().to_string();
    let pid: i32 = ok(&user, &dirs, &["inspect", "-f", "{{.State.Pid}}", &id])
        .trim()
        .parse()
        .unwrap();
    let pasta = pasta_of(&dirs, &id).expect("pasta recorded");
    // SAFETY: kill(2) of the container's init, a pid read just now.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pasta)),
        "pasta {pasta} outlived its killed container"
    );
    let exited = wait_until(Duration::from_secs(10), || {
        ok(&user, &dirs, &["inspect", "-f", "{{.State.Status}}", &id]).trim() == "exited"
    });
    assert!(exited, "the killed container is not recorded as exited");
    ok(&user, &dirs, &["rm", &id]);

    // A start that fails after pasta was started: nothing left.
    let failed = berth(&user, &dirs, &["run", "--rm", &r, "/no/such/program"]);
    assert!(!failed.status.success());
    assert_nothing_left(&user, &dirs, "after a failed start");

    // --network host: the user's own namespace (the host's links, the outside veth among them).
    let links = ok(
        &user,
        &dirs,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            &r,
            "cat",
            "/proc/net/dev",
        ],
    );
    assert!(links.contains(&outside.host_if), "{links}");

    // User-defined networks stay root's.
    for args in [
        &["network", "create", "mine"][..],
        &["run", "--rm", "--network", "mine", &r, "true"][..],
    ] {
        let out = berth(&user, &dirs, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stderr.contains("need root"), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
    assert_eq!(ok(&user, &dirs, &["ps", "-aq"]), "");
    assert_nothing_left(&user, &dirs, "at the end");
    drop(tun);
}

/// Without /dev/net/tun open to them, a rootless run on the default network fails before its
/// container is made, in one line saying why and what to do; `--network none` still runs.
#[test]
fn without_tun_access_a_rootless_run_says_why() {
    let user = TestUser::create();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let r = pulled(&user, &dirs, &reg, "rootless-notun", &busybox_image());
    let (refused, none) = TunAccess::denied(|| {
        (
            berth(&user, &dirs, &["run", "--rm", &r, "true"]),
            berth(
                &user,
                &dirs,
                &["run", "--rm", "--network", "none", &r, "true"],
            ),
        )
    });
    assert!(!refused.status.success());
    let err = refused.stderr.trim();
    assert!(
        err.contains("/dev/net/tun") && err.contains("--network none") && err.lines().count() == 1,
        "{err}"
    );
    assert!(none.status.success(), "{}", none.stderr);
    assert_eq!(
        ok(&user, &dirs, &["ps", "-aq"]),
        "",
        "a refused run left a container"
    );
    assert_nothing_left(&user, &dirs, "after a refused run");
}

/// The host's IPv4 default gateway, which pasta copies into a container's namespace.
fn host_gateway() -> String {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "via");
    words
        .next()
        .unwrap_or_else(|| panic!("the host has no IPv4 default gateway: {text:?}"))
        .to_string()
}

/// An HTTP/1.0 server on the host's 127.0.0.1 that answers `body` to each client and counts
/// them; its thread ends with the test process.
struct LoopbackServer {
    port: u16,
    clients: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LoopbackServer {
    fn start(body: &'static str) -> LoopbackServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let clients = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = clients.clone();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                let reply = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = c.write_all(reply.as_bytes());
            }
        });
        LoopbackServer { port, clients }
    }

    fn clients(&self) -> usize {
        self.clients.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn rootless_host_gateway_reaches_the_hosts_loopback_only_when_asked() {
    let tun = TunAccess::grant();
    let user = TestUser::create();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let r = pulled(&user, &dirs, &reg, "rootless-hostgw", &busybox_image());
    let gw = host_gateway();
    let server = LoopbackServer::start("hello-from-the-hosts-loopback\n");
    let port = server.port;

    // Asked for: `h` is the namespace's gateway, and h:PORT is the host's 127.0.0.1:PORT.
    // (An HTTP exchange, not `nc </dev/null`: this pasta (2023-03) drops the answer to a
    // connection the container half-closed before it came. `timeout`, not `wget -T`, which
    // crashes Debian's busybox-static.)
    let script = format!("grep -w h /etc/hosts; timeout 5 wget -qO- http://h:{port}/");
    let out = ok(
        &user,
        &dirs,
        &[
            "run",
            "--rm",
            "--add-host",
            "h:host-gateway",
            &r,
            "sh",
            "-c",
            &script,
        ],
    );
    assert_eq!(out, format!("{gw}\th\nhello-from-the-hosts-loopback\n"));
    assert_eq!(server.clients(), 1);

    // explain names the mapping while the container runs.
    ok(
        &user,
        &dirs,
        &[
            "run",
            "-d",
            "--name",
            "gw",
            "--add-host",
            "h:host-gateway",
            &r,
            "sleep",
            "1000",
        ],
    );
    let explain = ok(&user, &dirs, &["explain", "gw"]);
    assert!(
        explain.contains(&format!(
            "host-gateway {gw}: pasta maps it to the host's loopback"
        )),
        "{explain}"
    );
    ok(&user, &dirs, &["rm", "-f", "gw"]);

    // Not asked for: the same gateway address is only the host's own gateway, a remote address;
    // the host's loopback stays out of reach.
    let script = format!(
        "gw=$(ip -4 route | awk '/^default/ {{print $3}}'); echo $gw; timeout 3 wget -qO- http://$gw:{port}/ 2>&1; echo rc=$?"
    );
    let out = ok(&user, &dirs, &["run", "--rm", &r, "sh", "-c", &script]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(gw.as_str()), "{out}");
    assert!(!out.contains("hello-from-the-hosts-loopback"), "{out}");
    // wget failed to connect (refused) or was ended by `timeout` (143: no answer at all).
    assert!(
        out.contains("can't connect") || out.ends_with("rc=143\n"),
        "{out}"
    );
    assert_eq!(
        server.clients(),
        1,
        "a container without host-gateway reached the host's loopback"
    );
    assert_eq!(ok(&user, &dirs, &["ps", "-aq"]), "");
    assert_nothing_left(&user, &dirs, "at the end");
    drop(tun);
}

#[test]
fn rootless_udp_publish_delivers_a_datagram_from_the_host() {
    let tun = TunAccess::grant();
    let user = TestUser::create();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let r = pulled(&user, &dirs, &reg, "rootless-udp", &busybox_image());
    let host_port = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("{host_port}:9999/udp");
    let id = ok(
        &user,
        &dirs,
        &["run", "-d", "-p", &publish, &r, "sleep", "1000"],
    );
    let id = id.trim().to_string();
    let pid = ok(&user, &dirs, &["inspect", "-f", "{{.State.Pid}}", &id]);
    let ns = std::fs::File::open(format!("/proc/{}/ns/net", pid.trim())).unwrap();

    // The image's busybox has no UDP listener: a thread of the test binds one in the
    // container's namespace (setns moves only that thread), and ends with its socket.
    let (ready, bound) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let s = std::net::UdpSocket::bind("0.0.0.0:9999")?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let _ = ready.send(());
        let mut buf = [0u8; 512];
        let (n, _) = s.recv_from(&mut buf)?;
        Ok(buf[..n].to_vec())
    });
    let _ = bound.recv_timeout(Duration::from_secs(10));
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // A datagram is not retried: send until one arrives (or the listener gives up).
    wait_until(Duration::from_secs(10), || {
        let _ = sender.send_to(b"datagram-from-the-host", ("127.0.0.1", host_port));
        listener.is_finished()
    });
    let got = listener.join().expect("the listener thread");
    assert_eq!(
        got.map_err(|e| e.to_string()),
        Ok(b"datagram-from-the-host".to_vec()),
        "127.0.0.1:{host_port}/udp -> 9999/udp in the container"
    );

    ok(&user, &dirs, &["rm", "-f", &id]);
    assert!(
        std::net::UdpSocket::bind(("0.0.0.0", host_port)).is_ok(),
        "{publish} is still held after rm -f"
    );
    assert_nothing_left(&user, &dirs, "after rm -f");
    drop(tun);
}
