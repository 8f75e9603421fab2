//! Rootless networking, as a real unprivileged user the test creates: a container on the default
//! network is connected by pasta, reaches a server in an "outside" network namespace the test
//! makes (joined to the host by a veth), resolves names through pasta's DNS forwarder, and
//! publishes ports that answer from the host. A taken host port fails before the start; pasta
//! ends with its container (rm -f, kill -9, a failed start) and nothing is left: no pasta, no
//! process, no namespace mount. `--network host` is the user's own namespace; user-defined
//! networks are refused.

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
