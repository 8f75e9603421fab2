//! The service is no daemon containers depend on: killed with SIGKILL while containers run,
//! they keep running (berth's own CLI sees them); a service started again over the same store
//! sees them too, and stops them; `--timeout` ends an idle service.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/service.rs"]
mod service;

use fixture::{Sandbox, IMAGE};
use service::Service;
use std::time::{Duration, Instant};

#[test]
fn containers_outlive_a_killed_service_and_a_new_one_sees_them() {
    let sb = Sandbox::new();
    let mut svc = Service::start(&sb);
    let id = svc
        .docker_ok(&["run", "-d", "--name", "survivor", IMAGE, "sleep", "120"])
        .trim()
        .to_string();
    sb.track(&id);
    let pid_before = sb.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    assert_eq!(spawners_of(&sb).len(), 1, "the service's keeper spawner");
    svc.kill9();
    fixture::wait_until(
        "the spawner ends with its service",
        Duration::from_secs(5),
        || spawners_of(&sb).is_empty(),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sb.status(&id),
        "running",
        "the container runs on without the service"
    );
    assert!(fixture::pid_alive(pid_before));
    svc.restart();
    let ps = svc.docker_ok(&["ps", "--format", "{{.ID}} {{.Status}}"]);
    assert!(ps.starts_with(&id[..12]) && ps.contains("Up"), "{ps}");
    assert_eq!(
        svc.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "survivor"])
            .trim(),
        pid_before.to_string()
    );
    svc.docker_ok(&["stop", "-t", "1", "survivor"]);
    assert_eq!(sb.exit_state(&id).0, "exited");
    svc.docker_ok(&["rm", "survivor"]);
    sb.assert_clean();
}

/// The keeper spawners serving this sandbox's store (`berth … __spawner FD`, named
/// berth-spawner): the service's child, and the parent of the keepers it starts.
fn spawners_of(sb: &Sandbox) -> Vec<i32> {
    let store = sb.b.root.display().to_string();
    fixture::processes_named("berth-spawner")
        .into_iter()
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&store)
        })
        .collect()
}

#[test]
fn a_killed_spawner_is_replaced_and_starts_go_on() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let first = spawners_of(&sb);
    assert_eq!(first.len(), 1, "{first:?}");
    // SAFETY: a signal to a process of this test's service.
    unsafe { libc::kill(first[0], libc::SIGKILL) };
    let out = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", out.stderr);
    let now = spawners_of(&sb);
    assert_eq!(now.len(), 1, "one new spawner: {now:?}");
    assert_ne!(now, first);
    assert!(
        !fixture::pid_alive(first[0] as i64),
        "the dead one is reaped"
    );
    let id = svc
        .docker_ok(&["run", "-d", IMAGE, "sleep", "60"])
        .trim()
        .to_string();
    sb.track(&id);
    svc.docker_ok(&["rm", "-f", &id]);
    sb.assert_clean();
}

#[test]
fn an_idle_service_exits_after_its_timeout() {
    let sb = Sandbox::new();
    let sock = sb.dir().join("idle.sock");
    let started = Instant::now();
    let out = sb.b.run(&[
        "serve",
        "-H",
        &format!("unix://{}", sock.display()),
        "--timeout",
        "1",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
    sb.assert_clean();
}

#[test]
fn systemd_socket_activation_hands_the_service_its_socket() {
    let sb = Sandbox::new();
    let sock = sb.dir().join("activated.sock");
    let serve = sb.b.command(&["serve", "--timeout", "3"]);
    let mut cmd = std::process::Command::new("systemd-socket-activate");
    cmd.arg("-l")
        .arg(&sock)
        .arg(serve.get_program())
        .args(serve.get_args());
    for (k, v) in serve.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = common::Reaped(cmd.spawn().expect("systemd-socket-activate (systemd)"));
    fixture::wait_until("the socket exists", Duration::from_secs(10), || {
        sock.exists()
    });
    let mut docker = std::process::Command::new(service::DOCKER);
    docker
        .args(["version", "--format", "{{.Server.Platform.Name}}"])
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", sb.dir());
    let out = common::run(docker, None).success("docker version through the activated socket");
    assert_eq!(out.stdout.trim(), "berth");
    // Idle past --timeout, the service exits; the socket was systemd's to make.
    let started = Instant::now();
    while child.0.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut err = String::new();
    use std::io::Read;
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("listening on fd://3"), "{err}");
    sb.assert_clean();
}

#[test]
fn a_service_started_first_on_a_new_store_serves_it_and_a_foreign_root_is_refused_before_its_socket(
) {
    // No command ran before: the service is the store's first user.
    let b = common::Berth::new();
    let sock = b.path("first.sock");
    let host = format!("unix://{}", sock.display());
    let mut serve = b.command(&["serve", "-H", &host, "--timeout", "20"]);
    serve
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _service = common::Reaped(serve.spawn().expect("berth serve"));
    fixture::wait_until("the socket answers", Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    let ps = common::run(
        {
            let mut c = std::process::Command::new(service::DOCKER);
            c.args(["ps", "-a"])
                .env("DOCKER_HOST", &host)
                .env("DOCKER_CONFIG", b.path("docker-cli"));
            c
        },
        None,
    );
    assert!(
        ps.status.success() && ps.stdout.starts_with("CONTAINER ID"),
        "{} {}",
        ps.stdout,
        ps.stderr
    );
    assert!(
        b.root.join(".berth").exists(),
        "the store is marked berth's"
    );

    // A root that holds someone else's files is refused, naming it, before any socket exists.
    let foreign = b.path("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("theirs"), b"x").unwrap();
    let refused_sock = b.path("refused.sock");
    let out = common::run(
        {
            let mut c = std::process::Command::new(common::BERTH);
            c.arg("--root")
                .arg(&foreign)
                .arg("--runroot")
                .arg(b.path("run2"))
                .args(["serve", "-H"])
                .arg(format!("unix://{}", refused_sock.display()));
            c
        },
        None,
    );
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("holds files berth did not make")
            && out.stderr.contains(foreign.to_str().unwrap()),
        "{}",
        out.stderr
    );
    assert!(!refused_sock.exists(), "no socket is left behind");
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing was added to the foreign directory"
    );
}
