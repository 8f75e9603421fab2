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
