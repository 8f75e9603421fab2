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
    svc.kill9();
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
