//! Programs built on Docker's API against `berth serve`: a docker-py script covering what
//! programs call (run, exec, archives, logs, stats, pause, rename, wait, volumes, networks,
//! events), and docker-compose (Debian's 1.29, docker-py based) bringing a two-service project up,
//! listing it, showing its logs and taking it down.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/service.rs"]
mod service;

use fixture::{Sandbox, IMAGE};
use service::Service;
use std::path::Path;
use std::process::Command;

fn client(svc: &Service, program: &str, args: &[&str], dir: &Path) -> common::Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", &svc.host)
        .env("DOCKER_CONFIG", &svc.docker_config)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    let out = common::run(cmd, None);
    eprintln!(
        "{program} {args:?} -> {}\nstdout:\n{}stderr:\n{}",
        out.status, out.stdout, out.stderr
    );
    out
}

#[test]
fn docker_py_drives_containers_exec_archives_volumes_networks_and_events() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/dockerpy.py");
    let out = client(
        &svc,
        "python3",
        &[script.to_str().unwrap(), IMAGE],
        &sb.dir(),
    );
    assert!(
        out.status.success(),
        "docker-py script failed:\n{}",
        out.stderr
    );
    assert!(out.stdout.contains("passed, 0 failed"), "{}", out.stdout);
    sb.remove_all_and_assert_clean();
}

#[test]
fn docker_compose_brings_a_two_service_project_up_and_down() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/compose");
    let project = ["-p", "berthtest", "-f", "docker-compose.yml"];
    fn with<'a>(project: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
        project.iter().chain(more).copied().collect()
    }
    let up = client(&svc, "docker-compose", &with(&project, &["up", "-d"]), &dir);
    assert!(up.status.success(), "{}", up.stderr);
    let names = sb.ok(&["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["berthtest_web_1", "berthtest_worker_1"]);
    let ps = client(&svc, "docker-compose", &with(&project, &["ps"]), &dir);
    assert_eq!(ps.stdout.matches("Up").count(), 2, "{}", ps.stdout);
    fixture::wait_until(
        "both services logged",
        std::time::Duration::from_secs(10),
        || {
            let logs = client(
                &svc,
                "docker-compose",
                &with(&project, &["logs", "--no-color"]),
                &dir,
            )
            .stdout;
            logs.contains("web up") && logs.contains("worker up")
        },
    );
    let env = sb.ok(&["exec", "berthtest_web_1", "sh", "-c", "echo $ROLE"]);
    assert_eq!(env, "web\n");
    let down = client(&svc, "docker-compose", &with(&project, &["down"]), &dir);
    assert!(down.status.success(), "{}", down.stderr);
    assert!(sb.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(!sb
        .ok(&["network", "ls", "--format", "{{.Name}}"])
        .contains("berthtest_default"));
    sb.assert_clean();
}

#[test]
fn attach_over_a_websocket_carries_input_and_output() {
    use tungstenite::Message;
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let id = svc
        .docker_ok(&[
            "run",
            "-d",
            "-i",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "read x; echo got $x; read y",
        ])
        .trim()
        .to_string();
    sb.track(&id);
    let stream = std::os::unix::net::UnixStream::connect(&svc.socket).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let url = format!(
        "ws://localhost/v1.45/containers/{id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1"
    );
    let (mut ws, resp) =
        tungstenite::client::client(url.as_str(), stream).expect("websocket handshake");
    assert_eq!(resp.status().as_u16(), 101);
    ws.send(Message::Binary(b"hello\n".to_vec().into()))
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("got hello") {
        match ws.read().expect("a message") {
            Message::Binary(b) => got.extend_from_slice(&b),
            Message::Text(t) => got.extend_from_slice(t.as_bytes()),
            other => panic!("unexpected {other:?}"),
        }
    }
    ws.send(Message::Binary(b"bye\n".to_vec().into())).unwrap();
    // The container ends on its second line: the service closes the websocket.
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert_eq!(svc.docker_ok(&["wait", &id]).trim(), "0");
    svc.docker_ok(&["rm", &id]);
    sb.assert_clean();
}
