//! Rootless `build` and `serve`, as a real unprivileged user the test creates: a Dockerfile
//! (FROM the test image, RUN, COPY) builds into the user's store and its image runs; `berth
//! serve` on a socket in the user's runtime directory answers `/_ping` and the real docker CLI's
//! `run --rm` through it. Nothing of the user's runs afterwards but their pause process.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/rootless_user.rs"]
mod rootless_user;

use berth_runtime_tests::user::TestUser;
use common::registry::Registry;
use common::Reaped;
use rootless_user::{
    as_user, busybox_image, ok, pulled, user_processes, wait_until, TunAccess, UserDirs,
};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

/// The docker CLI the tests drive (the real one).
const DOCKER: &str = "/usr/local/bin/docker";

#[test]
fn rootless_build_runs_its_steps_and_the_image_runs() {
    let tun = TunAccess::grant();
    let user = TestUser::create();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let r = pulled(&user, &dirs, &reg, "rootless-build", &busybox_image());
    let ctx = dirs.base.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "copied\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {r}\nRUN echo built > /built && id -u >> /built && grep nameserver /etc/resolv.conf >> /built\nCOPY hello.txt /hello.txt\n"
        ),
    )
    .unwrap();
    user.give(&ctx);
    ok(
        &user,
        &dirs,
        &["build", "-q", "-t", "rl-built:1", ctx.to_str().unwrap()],
    );
    let out = ok(
        &user,
        &dirs,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "rl-built:1",
            "cat",
            "/built",
            "/hello.txt",
        ],
    );
    // The RUN step was on the default network: pasta's, its resolver pasta's forwarder.
    assert_eq!(out, "built\n0\nnameserver 169.254.1.1\ncopied\n");
    assert!(
        wait_until(Duration::from_secs(5), || user_processes(&user, &dirs)
            .is_empty()),
        "{:?}",
        user_processes(&user, &dirs)
    );
    drop(tun);
}

/// One HTTP/1.0 GET over the unix socket `path`: the whole answer.
fn get_over(path: &std::path::Path, uri: &str) -> String {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {uri} HTTP/1.0\r\nHost: berth\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn rootless_serve_answers_ping_and_the_docker_cli_runs_through_it() {
    let tun = TunAccess::grant();
    let user = TestUser::create();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let r = pulled(&user, &dirs, &reg, "rootless-serve", &busybox_image());
    let socket = dirs.base.join("run/berth-api.sock");
    let host = format!("unix://{}", socket.display());
    let log = std::fs::File::create(dirs.base.join("serve.log")).unwrap();
    let serve = as_user(&user, &dirs, common::BERTH)
        .args(["serve", "--host", &host])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut serve = Reaped(serve);
    let up = wait_until(Duration::from_secs(20), || {
        UnixStream::connect(&socket).is_ok()
    });
    let log_text = || std::fs::read_to_string(dirs.base.join("serve.log")).unwrap_or_default();
    assert!(up, "berth serve did not listen: {}", log_text());
    let ping = get_over(&socket, "/_ping");
    assert!(
        ping.starts_with("HTTP/1.") && ping.contains(" 200 ") && ping.ends_with("OK"),
        "{ping}"
    );

    let docker_config = dirs.base.join("docker-cli");
    std::fs::create_dir_all(&docker_config).unwrap();
    user.give(&docker_config);
    let mut docker = as_user(&user, &dirs, DOCKER);
    docker
        .args([
            "run",
            "--rm",
            &r,
            "sh",
            "-c",
            "echo hi; id -u; grep nameserver /etc/resolv.conf",
        ])
        .env("DOCKER_HOST", &host)
        .env("DOCKER_CONFIG", &docker_config);
    let out = common::run(docker, None);
    assert!(
        out.status.success(),
        "docker run: {}\nserve log: {}",
        out.stderr,
        log_text()
    );
    assert_eq!(out.stdout, "hi\n0\nnameserver 169.254.1.1\n");

    let _ = serve.0.kill();
    let _ = serve.0.wait();
    assert_eq!(ok(&user, &dirs, &["ps", "-aq"]), "");
    assert!(
        wait_until(Duration::from_secs(5), || user_processes(&user, &dirs)
            .is_empty()),
        "{:?}",
        user_processes(&user, &dirs)
    );
    drop(tun);
}
