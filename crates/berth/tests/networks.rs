//! Networks on a real kernel: the default bridge with NAT, published ports (TCP and UDP, from the
//! host's loopback and its own address, from other containers), user networks whose containers
//! find each other by name and alias, isolation between networks, `--internal`, `container:`
//! sharing, connect/disconnect, the files Docker writes, and crash safety: parallel runs get
//! distinct addresses, a berth killed at any point leaves nothing the next command does not
//! reclaim, and a reboot leaves networks that come back on next use. "Outside" is a network
//! namespace each test makes, routed through the host. Every test ends with the kernel checked:
//! no veth, lease, port claim, resolver or (for removed networks) bridge is left.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::{run, Output, Reaped};
use fixture::{processes_of, wait_until, Sandbox, IMAGE};
use std::collections::BTreeSet;
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP port free on the host right now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("bind :0")
        .port()
}

/// The host's own (non-loopback, non-bridge) IPv4 address: the source of its route out.
fn host_address() -> String {
    let route = sh("ip -4 -o route get 1.1.1.1 2>/dev/null || ip -4 -o route show default");
    let mut words = route.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next().expect("address after src").to_string();
        }
    }
    // No default route: the first global address.
    let addrs = sh("ip -4 -o addr show scope global");
    addrs
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
        .next()
        .expect("the host has an IPv4 address")
}

/// A host "outside": a network namespace joined to the host by a veth pair on a /30, whose
/// server answers each TCP connection with the address it sees. Removed when dropped.
struct Outside {
    ns: String,
    pub addr: String,
    pub host_side: String,
    server: Option<Reaped>,
}

impl Outside {
    fn new(sb: &Sandbox, port: u16) -> Outside {
        let prefix = &sb.b.net_prefix;
        let n: u32 = prefix.bytes().map(u32::from).sum::<u32>() % 200 + 20;
        let ns = format!("{prefix}-out");
        let (host_side, addr) = (format!("100.66.{n}.1"), format!("100.66.{n}.2"));
        let link = format!("{prefix}x");
        sh(&format!(
            "ip netns add {ns} && ip link add {link} type veth peer name o0 netns {ns} && \
             ip addr add {host_side}/30 dev {link} && ip link set {link} up && \
             ip -n {ns} addr add {addr}/30 dev o0 && ip -n {ns} link set o0 up && \
             ip -n {ns} link set lo up && ip -n {ns} route add default via {host_side}"
        ));
        let script = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('0.0.0.0',{port}))\ns.listen(16)\nwhile True:\n  c,a=s.accept()\n  \
             c.sendall((a[0]+'\\n').encode())\n  c.close()\n"
        );
        let server = Command::new("ip")
            .args(["netns", "exec", &ns, "python3", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("outside server");
        let o = Outside {
            ns,
            addr,
            host_side,
            server: Some(Reaped(server)),
        };
        wait_until(
            "the outside server listens",
            Duration::from_secs(10),
            || sh(&format!("ip netns exec {} ss -Hltn", o.ns)).contains(&format!(":{port}")),
        );
        o
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.server.take();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// `run --rm bb sh -c SCRIPT` with flags; (exit code, stdout, stderr). The script never ends
/// by exec-ing its last command: `timeout` would then be the namespace's pid 1, which its own
/// watcher's SIGTERM cannot kill.
fn sh_in(sb: &Sandbox, flags: &[&str], script: &str) -> (i32, String, String) {
    let script = format!("{script}\nexit $?");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
    let t0 = Instant::now();
    let r = sb.code(&args);
    eprintln!("{:?} berth {args:?}\n{}", t0.elapsed(), r.2);
    r
}

fn httpd(sb: &Sandbox, name: &str, flags: &[&str], body: &str) -> String {
    let www = sb.dir().join(format!("www-{name}"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), format!("{body}\n")).unwrap();
    let vol = format!("{}:/www:ro", www.display());
    let mut args = vec!["--name", name, "-v", &vol];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    sb.run_d(&args)
}

/// Fetches http://URL with curl from the host (None if it fails within 3 s).
fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "3", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Removes every container, then checks the kernel and the run dir kept nothing of them.
fn finish(sb: &Sandbox) {
    sb.remove_all_and_assert_clean();
    let leaks = sb.network_leaks();
    assert!(leaks.is_empty(), "left behind: {leaks:#?}");
}

#[test]
fn default_bridge_has_an_address_a_route_out_and_docker_files() {
    let sb = Sandbox::new();
    let port = free_port();
    let outside = Outside::new(&sb, port);
    let (code, out, err) = sh_in(
        &sb,
        &[
            "--hostname",
            "box",
            "--add-host",
            "db.test:10.9.8.7",
            "--add-host",
            "gw.test:host-gateway",
            "--dns-search",
            "corp.test",
        ],
        &format!(
            "ip -4 -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf; \
             echo | nc -w 3 {} {port}",
            outside.addr
        ),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let addr_line = out.lines().find(|l| l.contains("eth0")).expect("eth0");
    let ip = addr_line.split_whitespace().nth(3).expect("addr");
    let ip = ip.split('/').next().unwrap();
    assert!(out.contains("default via "), "{out}");
    let gateway = out
        .lines()
        .find_map(|l| l.strip_prefix("default via "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    assert!(out.contains(&format!("{ip}\tbox\n")), "own entry: {out}");
    assert!(out.contains("10.9.8.7\tdb.test\n"), "{out}");
    assert!(out.contains(&format!("{gateway}\tgw.test\n")), "{out}");
    assert!(out.contains("search corp.test\n"), "{out}");
    // Masquerade: the outside server saw the host's address on its link, not the container's.
    let seen = out.lines().last().unwrap_or_default();
    assert_eq!(seen, outside.host_side, "{out}");
    drop(outside);
    finish(&sb);
}

#[test]
fn published_ports_answer_on_loopback_the_host_address_and_from_containers() {
    let sb = Sandbox::new();
    let port = free_port();
    let spec = format!("{port}:80");
    let web = httpd(&sb, "web", &["-p", &spec, "--expose", "443"], "hello");
    let host = host_address();
    wait_until(
        "the published port answers",
        Duration::from_secs(10),
        || curl(&format!("http://127.0.0.1:{port}/")).is_some(),
    );
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("hello")
    );
    assert_eq!(
        curl(&format!("http://{host}:{port}/")).as_deref(),
        Some("hello")
    );
    // Another container, through the host's address (hairpin through the bridge).
    let (code, out, _) = sh_in(
        &sb,
        &[],
        &format!("timeout 3 wget -qO- http://{host}:{port}/"),
    );
    assert_eq!((code, out.trim()), (0, "hello"));
    // `port`, `ps` and inspect tell the same.
    assert_eq!(
        sb.ok(&["port", "web"]).trim(),
        format!("80/tcp -> 0.0.0.0:{port}")
    );
    assert_eq!(
        sb.ok(&["port", "web", "80"]).trim(),
        format!("0.0.0.0:{port}")
    );
    let ps = sb.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps.trim(), format!("0.0.0.0:{port}->80/tcp, 443/tcp"));
    let v = sb.inspect(&web);
    let ns = &v["NetworkSettings"];
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostPort"], port.to_string());
    assert!(ns["Ports"]["443/tcp"].is_null(), "{ns}");
    assert!(ns["IPAddress"].as_str().unwrap().contains('.'), "{ns}");
    assert_eq!(
        ns["Networks"]["bridge"]["IPAddress"], ns["IPAddress"],
        "{ns}"
    );
    assert_eq!(
        v["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert_eq!(
        v["Config"]["ExposedPorts"]["443/tcp"],
        serde_json::json!({})
    );

    // The same host port again: refused before the container starts, nothing of it left.
    let before: BTreeSet<String> = sb.container_dirs().into_iter().collect();
    let (code, _, err) = sh_in(&sb, &["-p", &spec], "echo started");
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(&format!("{port}")) && err.contains("already"),
        "{err}"
    );
    assert_eq!(
        sb.container_dirs().into_iter().collect::<BTreeSet<_>>(),
        before
    );
    // A port some host program holds: refused too.
    let holder = TcpListener::bind("0.0.0.0:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let (code, _, err) = sh_in(&sb, &["-p", &format!("{held}:80")], "echo started");
    assert_eq!(code, 125);
    assert!(err.contains("already in use"), "{err}");
    drop(holder);
    // The port is free again once its container is gone.
    sb.ok(&["rm", "-f", "web"]);
    let (code, out, err) = sh_in(&sb, &["-p", &spec], "echo started");
    assert_eq!((code, out.trim()), (0, "started"), "{err}");
    finish(&sb);
}

#[test]
fn udp_publish_and_publish_all_pick_random_ports() {
    let sb = Sandbox::new();
    let port = {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.local_addr().unwrap().port()
    };
    // The host's python, run inside the container from the host's read-only /usr.
    let echo = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                s.bind(('0.0.0.0',9999))\nwhile True:\n  d,a=s.recvfrom(512)\n  s.sendto(b'echo:'+d,a)\n";
    let mut args = vec![
        "--name".to_string(),
        "udp".into(),
        "-p".into(),
        format!("{port}:9999/udp"),
        "-v".into(),
        "/usr:/usr:ro".into(),
        "-v".into(),
        "/usr/lib:/lib:ro".into(),
    ];
    if std::path::Path::new("/usr/lib64").exists() {
        args.extend(["-v".into(), "/usr/lib64:/lib64:ro".into()]);
    }
    args.extend([
        IMAGE.into(),
        "/usr/bin/python3".into(),
        "-c".into(),
        echo.into(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    sb.run_d(&argv);
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut answer = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while answer.is_none() && Instant::now() < deadline {
        s.send_to(b"ping", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 64];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            answer = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert_eq!(answer.as_deref(), Some("echo:ping"));
    sb.ok(&["rm", "-f", "udp"]);

    // -P: every exposed port to a random host port, as `port` shows.
    sb.run_d(&[
        "--name",
        "all",
        "-P",
        "--expose",
        "80",
        "--expose",
        "7000-7001/udp",
        IMAGE,
        "sleep",
        "60",
    ]);
    let out = sb.ok(&["port", "all"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (l, key) in lines.iter().zip(["80/tcp", "7000/udp", "7001/udp"]) {
        assert!(l.starts_with(&format!("{key} -> 0.0.0.0:")), "{out}");
        let p: u16 = l.rsplit(':').next().unwrap().parse().unwrap();
        assert!(p >= 1024, "{out}");
    }
    finish(&sb);
}

#[test]
fn user_networks_resolve_names_and_aliases_and_are_isolated() {
    let sb = Sandbox::new();
    let port = free_port();
    let outside = Outside::new(&sb, port);
    sb.ok(&["network", "create", "front"]);
    sb.ok(&["network", "create", "back", "--subnet", "10.231.0.0/24"]);
    sb.ok(&["network", "create", "--internal", "sealed"]);
    httpd(
        &sb,
        "a1",
        &["--network", "front", "--network-alias", "alpha"],
        "a1",
    );
    let (code, out, err) = sh_in(
        &sb,
        &["--network", "front"],
        "timeout 3 wget -qO- http://a1/ && timeout 3 wget -qO- http://alpha/ && cat /etc/resolv.conf",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("a1\na1\nnameserver "), "{out}");
    // A container started later is found by the first one.
    httpd(&sb, "a2", &["--network", "front"], "a2");
    assert_eq!(
        sb.ok(&["exec", "a1", "timeout", "3", "wget", "-qO-", "http://a2/"])
            .trim(),
        "a2"
    );
    // Names of other hosts go to the host's resolvers (and only names of this network are
    // answered from its table): an unknown name fails cleanly.
    let (code, _, _) = sh_in(
        &sb,
        &["--network", "front"],
        "nslookup no-such-host.invalid",
    );
    assert_ne!(code, 0);
    let known = "deb.debian.org";
    if Command::new("getent")
        .args(["hosts", known])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let (code, out, err) = sh_in(&sb, &["--network", "front"], &format!("nslookup {known}"));
        assert_eq!(
            code, 0,
            "the host resolves {known}, a container must too: {out}{err}"
        );
    }
    // A removed container no longer resolves.
    sb.ok(&["rm", "-f", "a2"]);
    let (code, out, _) = sh_in(&sb, &["--network", "front"], "nslookup a2");
    assert_ne!(code, 0, "a2 still resolves: {out}");
    // Isolation: from another network, a1's address answers nothing (and its name is unknown).
    let a1_ip = sb.inspect("a1")["NetworkSettings"]["Networks"]["front"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = sh_in(
        &sb,
        &["--network", "back", "--ip", "10.231.0.77"],
        &format!("ip -4 -o addr show eth0; timeout 2 wget -qO- http://{a1_ip}/"),
    );
    assert!(out.contains("10.231.0.77/24"), "{out}");
    assert_ne!(code, 0, "reached a1 from another network: {out}{err}");
    let (code, _, _) = sh_in(
        &sb,
        &["--network", "back"],
        "timeout 2 wget -qO- http://a1/",
    );
    assert_ne!(code, 0);
    // Both user networks reach outside; the internal one does not.
    let probe = format!("echo | nc -w 2 {} {port}", outside.addr);
    let (code, out, err) = sh_in(&sb, &["--network", "back"], &probe);
    assert_eq!((code, out.trim()), (0, outside.host_side.as_str()), "{err}");
    let (code, out, _) = sh_in(&sb, &["--network", "sealed"], &probe);
    assert_ne!(code, 0, "internal network reached outside: {out}");
    // rm refuses a network in use; prune keeps it and removes the unused ones.
    let err = sb.berth(&["network", "rm", "front"]);
    assert!(!err.status.success());
    assert!(err.stderr.contains("in use"), "{}", err.stderr);
    let pruned = sb.ok(&["network", "prune", "-f"]);
    assert!(
        pruned.contains("back") && pruned.contains("sealed"),
        "{pruned}"
    );
    assert!(!pruned.contains("front"), "{pruned}");
    drop(outside);
    sb.ok(&["rm", "-f", "a1"]);
    sb.ok(&["network", "rm", "front"]);
    let ls = sb.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(ls, "bridge bridge\nhost host\nnone null\n");
    finish(&sb);
    // Only the default network's bridge is left of this store.
    let links = common::links_with_prefix(&sb.b.net_prefix);
    assert_eq!(links, [format!("{}0", sb.b.net_prefix)], "{links:?}");
}

#[test]
fn connect_disconnect_and_container_mode() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "extra"]);
    httpd(&sb, "web", &[], "web");
    sb.ok(&["network", "connect", "--alias", "www", "extra", "web"]);
    let v = sb.inspect("web");
    let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.keys().collect::<Vec<_>>(), ["bridge", "extra"]);
    assert_eq!(
        v["NetworkSettings"]["Networks"]["extra"]["Aliases"],
        serde_json::json!(["www"])
    );
    // Docker's shape: what was not asked for is null, not missing (docker-py reads the keys).
    let bridge = &v["NetworkSettings"]["Networks"]["bridge"];
    for key in ["Aliases", "IPAMConfig", "Links", "DriverOpts"] {
        assert!(
            bridge.get(key).is_some_and(|x| x.is_null()),
            "{key}: {bridge}"
        );
    }
    sb.ok(&["network", "create", "--subnet", "10.88.0.0/24", "pinned"]);
    sb.ok(&["network", "connect", "--ip", "10.88.0.9", "pinned", "web"]);
    assert_eq!(
        sb.inspect("web")["NetworkSettings"]["Networks"]["pinned"]["IPAMConfig"],
        serde_json::json!({"IPv4Address": "10.88.0.9"})
    );
    sb.ok(&["network", "disconnect", "pinned", "web"]);
    sb.ok(&["network", "rm", "pinned"]);
    let (code, out, _) = sh_in(
        &sb,
        &["--network", "extra"],
        "timeout 3 wget -qO- http://www/",
    );
    assert_eq!((code, out.trim()), (0, "web"));
    let inside = sb.ok(&["exec", "web", "ip", "-o", "link"]);
    assert!(inside.contains("eth1"), "{inside}");
    // Sharing web's namespace: its loopback is ours.
    let (code, out, _) = sh_in(
        &sb,
        &["--network", "container:web"],
        "timeout 3 wget -qO- http://127.0.0.1/; hostname",
    );
    let web_host = sb.inspect("web")["Config"]["Hostname"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!((code, out), (0, format!("web\n{web_host}\n")));
    let (code, _, err) = sh_in(&sb, &["--network", "container:web", "-p", "81:80"], "true");
    assert_eq!(code, 125);
    assert!(err.contains("conflicting options"), "{err}");
    sb.ok(&["network", "disconnect", "extra", "web"]);
    let (code, _, _) = sh_in(
        &sb,
        &["--network", "extra"],
        "timeout 2 wget -qO- http://www/",
    );
    assert_ne!(code, 0, "disconnected alias still answers");
    assert!(!sb.ok(&["exec", "web", "ip", "-o", "link"]).contains("eth1"));
    // explain shows the network section.
    let explain = sb.ok(&["explain", "web"]);
    assert!(explain.contains("Network (bridge):"), "{explain}");
    assert!(explain.contains("route default via"), "{explain}");
    assert!(
        explain.contains(&format!("bridge {}0", sb.b.net_prefix)),
        "{explain}"
    );
    sb.ok(&["rm", "-f", "web"]);
    sb.ok(&["network", "rm", "extra"]);
    // Bad flags: one line, no container.
    for (flags, want) in [
        (vec!["--network", "nope"], "not found"),
        (vec!["--network-alias", "x"], "user-defined"),
        (vec!["--ip", "10.0.0.5"], "user defined"),
        (vec!["-p", "99999:80"], "invalid publish"),
        (vec!["--add-host", "justaname"], "add-host"),
    ] {
        let (code, _, err) = sh_in(&sb, &flags, "true");
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    finish(&sb);
}

#[test]
fn ten_parallel_runs_get_ten_distinct_addresses() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "par"]);
    let children: Vec<Reaped> = (0..10)
        .map(|i| {
            let mut cmd = sb.b.command(&[
                "run",
                "--rm",
                "--network",
                if i % 2 == 0 { "par" } else { "bridge" },
                IMAGE,
                "sh",
                "-c",
                "ip -4 -o addr show eth0; sleep 1",
            ]);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            Reaped(cmd.spawn().expect("spawn run"))
        })
        .collect();
    let mut addrs = BTreeSet::new();
    for mut c in children {
        use std::io::Read;
        let (mut text, mut err) = (String::new(), String::new());
        c.0.stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        c.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = c.0.wait().unwrap();
        assert!(status.success(), "{text}{err}");
        let addr = text.split_whitespace().nth(3).expect("address").to_string();
        addrs.insert(addr);
    }
    assert_eq!(addrs.len(), 10, "{addrs:?}");
    sb.ok(&["network", "rm", "par"]);
    finish(&sb);
}

/// `berth ARGS` killed with SIGKILL after `after`; returns once it is reaped.
fn killed_after(sb: &Sandbox, args: &[&str], after: Duration) {
    let mut cmd = sb.b.command(args);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = Reaped(cmd.spawn().expect("spawn"));
    std::thread::sleep(after);
    let _ = child.0.kill();
    let _ = child.0.wait();
}

#[test]
fn berth_killed_at_any_point_leaves_nothing_the_next_command_does_not_reclaim() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "crash"]);
    let port = free_port();
    let publish = format!("{port}:80");
    for (i, ms) in [0u64, 3, 8, 15, 25, 40, 70, 120, 250]
        .into_iter()
        .enumerate()
    {
        let net = if i % 2 == 0 { "crash" } else { "bridge" };
        let name = format!("k{i}");
        // A foreground `run --rm` with a published port, killed midway.
        killed_after(
            &sb,
            &[
                "run",
                "--rm",
                "--name",
                &name,
                "--network",
                net,
                "-p",
                &publish,
                IMAGE,
                "sleep",
                "30",
            ],
            Duration::from_millis(ms),
        );
        // The next command reclaims; once no container of it runs, nothing is held.
        let _ = sb.berth(&["ps", "-a"]);
        for id in sb.container_dirs() {
            sb.track(&id);
        }
        wait_until(
            "the killed run's container ends",
            Duration::from_secs(15),
            || {
                sb.container_dirs()
                    .iter()
                    .all(|id| processes_of(id).is_empty())
            },
        );
        let _ = sb.berth(&["ps", "-a"]);
        let leaks = sb.network_leaks();
        assert!(leaks.is_empty(), "after a kill at {ms} ms: {leaks:#?}");
        // The port is free for the next container.
        let (code, out, err) = sh_in(&sb, &["--network", net, "-p", &publish], "echo ok");
        assert_eq!(
            (code, out.trim()),
            (0, "ok"),
            "after a kill at {ms} ms: {err}"
        );
        sb.remove_all_and_assert_clean();
    }
    // `rm -f` killed midway, then run again.
    for ms in [0u64, 5, 20, 60] {
        let id = sb.run_d(&["--network", "crash", "-p", &publish, IMAGE, "sleep", "60"]);
        killed_after(&sb, &["rm", "-f", &id], Duration::from_millis(ms));
        let _ = sb.berth(&["ps", "-a"]);
        sb.remove_all_and_assert_clean();
        assert!(sb.network_leaks().is_empty(), "rm -f killed at {ms} ms");
    }
    sb.ok(&["network", "rm", "crash"]);
    finish(&sb);
}

#[test]
fn after_a_reboot_networks_come_back_on_next_use() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "persist", "--subnet", "10.232.0.0/24"]);
    let id = httpd(&sb, "p1", &["--network", "persist"], "p1");
    // The reboot: processes, mounts, links, berth's table and the runroot gone.
    for (pid, _) in processes_of(&id) {
        // SAFETY: SIGKILL to a process of this test's own container (found by its ID).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    wait_until(
        "the container's processes are gone",
        Duration::from_secs(10),
        || processes_of(&id).is_empty(),
    );
    for p in common::resolvers_of(&sb.b.runroot) {
        // SAFETY: SIGKILL to this store's own resolver (found by its runroot).
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    for m in fixture::mounts_under(&sb.dir()).into_iter().rev() {
        let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: detaching a mount this test's berth made under its own temp dir.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    for l in common::links_with_prefix(&sb.b.net_prefix) {
        let _ = Command::new("ip").args(["link", "del", &l]).output();
    }
    let _ = sh(&format!(
        "nft delete table inet {} || true",
        sb.b.net_prefix
    ));
    std::fs::remove_dir_all(&sb.b.runroot).unwrap();
    std::fs::create_dir_all(&sb.b.runroot).unwrap();
    // The network and its name service come back with the next container.
    sb.ok(&["start", "p1"]);
    let (code, out, err) = sh_in(
        &sb,
        &["--network", "persist"],
        "timeout 3 wget -qO- http://p1/ && ip -4 -o addr show eth0",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("p1\n") && out.contains("10.232.0."),
        "{out}"
    );
    sb.ok(&["rm", "-f", "p1"]);
    sb.ok(&["network", "rm", "persist"]);
    finish(&sb);
}

#[test]
fn host_and_none_modes_keep_their_files() {
    let sb = Sandbox::new();
    let (code, out, _) = sh_in(
        &sb,
        &["--network", "none"],
        "ip -o link | wc -l; cat /etc/resolv.conf",
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("1\n"), "{out}");
    let (code, out, _) = sh_in(
        &sb,
        &["--network", "host", "--add-host", "x.test:1.2.3.4"],
        "cat /etc/hosts",
    );
    assert_eq!(code, 0);
    assert!(out.ends_with("1.2.3.4\tx.test\n"), "{out}");
    let out: Output = run(
        sb.b.command(&[
            "run",
            "--rm",
            "--network",
            "host",
            "-p",
            "80:80",
            IMAGE,
            "true",
        ]),
        None,
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("WARNING: published ports are discarded"),
        "{}",
        out.stderr
    );
    finish(&sb);
}
