//! The real docker CLI (28.2) against `berth serve`: version and info, images, run (with the
//! container's output and exit status), run -d with logs -f, exec -it in a pty, attach, ps
//! --format, inspect, stats, top, cp both ways, diff, commit, tag/push/pull with a real
//! registry, save | load, volumes, system df, events while another client starts a container,
//! build (the legacy builder's /build), rm -f; each compared with what berth's own CLI says, and nothing left behind.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/service.rs"]
mod service;

use fixture::{Sandbox, IMAGE};
use service::Service;
use std::process::Command;

/// `docker ARGS…` run inside a pty by `script`, `input` typed a second later.
fn docker_in_pty(svc: &Service, args: &[&str], input: &str) -> (i32, String) {
    let cmd = svc.docker_command(args);
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line = quote(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(&a.to_string_lossy()));
    }
    let script = format!(
        "(sleep 3; printf {}) | script -qec {} /dev/null",
        quote(input),
        quote(&line)
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", &script]);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    let out = common::run(sh, None);
    (out.status.code().unwrap_or(-1), out.stdout)
}

#[test]
fn version_info_images_and_ps_match_berths_own_view() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let v = svc.docker_ok(&[
        "version",
        "--format",
        "{{.Server.Platform.Name}} {{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "berth 1.45 linux");
    let id = sb.run_d(&[IMAGE, "sleep", "60"]);
    let info = svc.docker_ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.Images}} {{.Driver}}",
    ]);
    assert_eq!(info.trim(), "1 1 1 overlay2");
    let images = svc.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == "bb:latest"), "{images}");
    let format = "{{.ID}} {{.Names}} {{.Image}} {{.State}}";
    let theirs = svc.docker_ok(&["ps", "--format", format]);
    let ours = sb.ok(&["ps", "--format", format]);
    assert_eq!(theirs, ours);
    assert!(theirs.starts_with(&id[..12]), "{theirs}");
    let state = svc.docker_ok(&[
        "inspect",
        "-f",
        "{{.Id}} {{.State.Status}} {{.State.Pid}} {{.Config.Image}}",
        &id,
    ]);
    let ours = sb.ok(&[
        "inspect",
        "-f",
        "{{.Id}} {{.State.Status}} {{.State.Pid}} {{.Config.Image}}",
        &id,
    ]);
    assert_eq!(state, ours);
    svc.docker_ok(&["rm", "-f", &id]);
    assert!(
        sb.ok(&["ps", "-aq"]).trim().is_empty(),
        "docker rm -f removed it for berth too"
    );
    sb.assert_clean();
}

#[test]
fn run_gives_the_containers_output_and_status_and_logs_follow_to_its_end() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let out = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, "to-out\n");
    assert_eq!(out.stderr, "to-err\n");
    let piped = svc.docker_with_stdin(
        &["run", "--rm", "-i", "--network", "none", IMAGE, "cat"],
        b"through stdin\n",
    );
    assert_eq!(piped.stdout, "through stdin\n");
    // A start that fails: Docker's status for a command not found, and a `--rm` container is
    // removed (the CLI waits for that removal before it exits).
    let missing = svc.docker(&["run", "--rm", "--network", "none", IMAGE, "no-such-command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("executable file not found"),
        "{}",
        missing.stderr
    );
    assert_eq!(
        svc.docker_ok(&["ps", "-aq"]),
        "",
        "the --rm container is gone"
    );
    let id = svc.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick $i; sleep 0.3; done",
    ]);
    sb.track(id.trim());
    let logs = svc.docker_ok(&["logs", "-f", "ticker"]);
    assert_eq!(
        logs, "tick 1\ntick 2\ntick 3\n",
        "logs -f follows until the container ends"
    );
    assert_eq!(
        svc.docker_ok(&["logs", "--tail", "1", "ticker"]),
        "tick 3\n"
    );
    assert_eq!(svc.docker_ok(&["wait", "ticker"]).trim(), "0");
    assert_eq!(sb.exit_state("ticker"), ("exited".to_string(), 0));
    svc.docker_ok(&["rm", "ticker"]);
    sb.assert_clean();
}

#[test]
fn exec_it_in_a_pty_attach_and_top() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let id = svc.docker_ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "box",
        IMAGE,
        "sh",
        "-c",
        "read x; echo got $x; sleep 60",
    ]);
    sb.track(id.trim());
    let (code, out) = docker_in_pty(
        &svc,
        &["exec", "-it", "box", "sh"],
        "tty; echo in-$((6*7))\\nexit 5\\n",
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("/dev/pts/") && out.contains("in-42"), "{out}");
    let plain = svc.docker(&[
        "exec",
        "box",
        "sh",
        "-c",
        "echo e-out; echo e-err >&2; exit 2",
    ]);
    assert_eq!(
        (
            plain.status.code(),
            plain.stdout.as_str(),
            plain.stderr.as_str()
        ),
        (Some(2), "e-out\n", "e-err\n")
    );
    let top = svc.docker_ok(&["top", "box"]);
    assert!(
        top.contains("sleep 60") || top.contains("read x") || top.contains("sh -c"),
        "{top}"
    );
    // attach: our line reaches the container's stdin, its answer comes back.
    let mut attach = svc.docker_command(&["attach", "box"]);
    attach
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = common::Reaped(attach.spawn().expect("docker attach"));
    std::thread::sleep(std::time::Duration::from_millis(800));
    use std::io::{BufRead, Write};
    child
        .0
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello\n")
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "got hello\n");
    drop(child);
    svc.docker_ok(&["rm", "-f", "box"]);
    sb.assert_clean();
}

#[test]
fn cp_both_ways_diff_commit_and_stats() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let id = svc
        .docker_ok(&["run", "-d", "--name", "files", IMAGE, "sleep", "60"])
        .trim()
        .to_string();
    sb.track(&id);
    let host = sb.dir().join("in.txt");
    std::fs::write(&host, "from the host\n").unwrap();
    svc.docker_ok(&["cp", host.to_str().unwrap(), "files:/tmp/in.txt"]);
    assert_eq!(
        sb.ok(&["exec", "files", "cat", "/tmp/in.txt"]),
        "from the host\n"
    );
    let back = sb.dir().join("back.txt");
    svc.docker_ok(&["cp", "files:/tmp/in.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from the host\n");
    let missing = svc.docker(&["cp", "files:/nope", back.to_str().unwrap()]);
    assert!(
        !missing.status.success() && missing.stderr.contains("Could not find the file /nope"),
        "{}",
        missing.stderr
    );
    let diff = svc.docker_ok(&["diff", "files"]);
    assert_eq!(diff, sb.ok(&["diff", "files"]));
    assert!(diff.contains("A /tmp/in.txt"), "{diff}");
    let img = svc.docker_ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/tmp/in.txt\"]",
        "files",
        "snap:1",
    ]);
    assert!(img.trim().starts_with("sha256:"), "{img}");
    assert_eq!(svc.docker_ok(&["run", "--rm", "snap:1"]), "from the host\n");
    let stats = svc.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "files",
    ]);
    assert_eq!(stats.trim(), "files 1");
    svc.docker_ok(&["rm", "-f", "files"]);
    svc.docker_ok(&["rmi", "snap:1"]);
    sb.assert_clean();
}

#[test]
fn tag_push_pull_save_and_load_through_a_real_registry() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let reg = common::registry::Registry::start();
    let name = format!("{}/bb:v1", reg.addr);
    svc.docker_ok(&["tag", IMAGE, &name]);
    let pushed = svc.docker_ok(&["push", &name]);
    assert!(
        pushed.contains("Pushed") && pushed.contains("v1: digest: sha256:"),
        "{pushed}"
    );
    svc.docker_ok(&["rmi", &name]);
    svc.docker_ok(&["rmi", "bb:latest", "bb:imported"]);
    let pulled = svc.docker_ok(&["pull", &name]);
    assert!(
        pulled.contains("Pulling from bb") && pulled.contains("Status: Downloaded newer image"),
        "{pulled}"
    );
    assert_eq!(
        svc.docker_ok(&["run", "--rm", &name, "echo", "pulled"]),
        "pulled\n"
    );
    let tar = sb.dir().join("saved.tar");
    svc.docker_ok(&["save", "-o", tar.to_str().unwrap(), &name]);
    svc.docker_ok(&["rmi", &name]);
    let loaded = svc.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );
    assert!(sb
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains(&name));
    sb.assert_clean();
}

/// `DOCKER_BUILDKIT=0 docker build ARGS…` (without buildx the CLI's BuildKit path refuses).
fn docker_build(svc: &Service, args: &[&str]) -> common::Output {
    let mut cmd = svc.docker_command(&[&["build"], args].concat());
    cmd.env("DOCKER_BUILDKIT", "0");
    let out = common::run(cmd, None);
    eprintln!(
        "docker build {args:?} -> {}\nstdout:\n{}stderr:\n{}",
        out.status, out.stdout, out.stderr
    );
    out
}

#[test]
fn build_sends_the_context_and_streams_the_steps_and_the_cache() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let ctx = sb.dir().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("f"), "hello\n").unwrap();
    std::fs::write(
        ctx.join("sub/Dockerfile.app"),
        format!("FROM {IMAGE}\nARG WHO\nRUN echo built by $WHO > /built\nCOPY f /f\nCMD [\"cat\", \"/built\", \"/f\"]\n"),
    )
    .unwrap();
    let dockerfile = ctx.join("sub/Dockerfile.app");
    let dockerfile = dockerfile.to_str().unwrap();
    let ctx = ctx.to_str().unwrap();
    let args = [
        "--network",
        "none",
        "-f",
        dockerfile,
        "--build-arg",
        "WHO=api",
        "-t",
        "app:1",
        ctx,
    ];
    let first = docker_build(&svc, &args).success("docker build");
    assert!(
        first.stdout.contains("RUN echo built by api"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("Successfully tagged app:1"),
        "{}",
        first.stdout
    );
    assert_eq!(
        svc.docker_ok(&["run", "--rm", "app:1"]),
        "built by api\nhello\n"
    );
    let again = docker_build(&svc, &args).success("docker build again");
    assert!(again.stdout.contains("Using cache"), "{}", again.stdout);
    let quiet = docker_build(&svc, &[&["-q"], &args[..]].concat()).success("docker build -q");
    let id = svc.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "app:1"]);
    assert_eq!(quiet.stdout.trim(), id.trim(), "-q prints the image's ID");
    assert!(
        sb.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .contains("app:1"),
        "berth's own CLI sees the built image"
    );
    let failing = sb.dir().join("failing");
    std::fs::create_dir_all(&failing).unwrap();
    std::fs::write(
        failing.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN exit 3\n"),
    )
    .unwrap();
    let bad = docker_build(&svc, &["--network", "none", failing.to_str().unwrap()]);
    assert!(
        !bad.status.success() && bad.stderr.contains("exit 3"),
        "a failing step fails the build with its error: {}",
        bad.stderr
    );
    svc.docker_ok(&["rmi", "app:1"]);
    sb.assert_clean();
}

#[test]
fn volumes_system_df_and_prune() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    // The CLI parses every network's Created: host and none once had an empty one.
    let nets = svc.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.CreatedAt}}"]);
    for name in ["bridge", "host", "none"] {
        assert!(
            nets.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{nets}"
        );
    }
    svc.docker_ok(&["volume", "create", "--label", "k=v", "data"]);
    assert_eq!(svc.docker_ok(&["volume", "ls", "-q"]).trim(), "data");
    assert_eq!(
        svc.docker_ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Labels.k}}",
            "data"
        ])
        .trim(),
        "data local v"
    );
    let out = svc.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f; cat /data/f",
    ]);
    assert_eq!(out, "kept\n");
    let df = svc.docker_ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(
        df.contains("Images 1") && df.contains("Local Volumes 1"),
        "{df}"
    );
    let missing = svc.docker(&["volume", "inspect", "nope"]);
    assert!(
        !missing.status.success() && missing.stderr.contains("no such volume"),
        "{}",
        missing.stderr
    );
    svc.docker_ok(&["volume", "rm", "data"]);
    assert!(svc.docker_ok(&["volume", "ls", "-q"]).trim().is_empty());
    sb.assert_clean();
}

#[test]
fn events_stream_what_another_client_does() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let mut events = svc.docker_command(&[
        "events",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        "--filter",
        "type=container",
    ]);
    events.stdout(std::process::Stdio::piped());
    let mut child = common::Reaped(events.spawn().expect("docker events"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Another client: berth's own CLI.
    sb.ok(&["run", "--rm", "--name", "other", IMAGE, "true"]);
    let stdout = child.0.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take(4)
            .collect::<Vec<_>>()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !lines.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(child);
    let got = lines.join().unwrap();
    assert_eq!(
        got,
        [
            "container create other",
            "container start other",
            "container die other",
            "container destroy other"
        ]
    );
    let history = svc.docker_ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(history.trim(), "0");
    sb.assert_clean();
}

#[test]
fn login_checks_credentials_and_push_and_pull_carry_the_clients_own() {
    let sb = Sandbox::new();
    let svc = Service::start(&sb);
    let reg = common::registry::Registry::start_with_auth("alice", "s3cret-pass");
    let wrong = svc.docker_with_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"nope\n",
    );
    assert!(
        !wrong.status.success(),
        "a wrong password logs in: {}",
        wrong.stdout
    );
    let right = svc.docker_with_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"s3cret-pass\n",
    );
    assert!(
        right.status.success() && right.stdout.contains("Login Succeeded"),
        "{}",
        right.stderr
    );
    // The service's own Docker config has no credentials: the client's travel with each call.
    let name = format!("{}/private/bb:v1", reg.addr);
    svc.docker_ok(&["tag", IMAGE, &name]);
    let pushed = svc.docker_ok(&["push", &name]);
    assert!(pushed.contains("v1: digest: sha256:"), "{pushed}");
    svc.docker_ok(&["rmi", &name]);
    svc.docker_ok(&["pull", &name]);
    svc.docker_ok(&["logout", &reg.addr]);
    svc.docker_ok(&["rmi", &name]);
    let denied = svc.docker(&["pull", &name]);
    assert!(!denied.status.success(), "pulled without credentials");
    let log = std::fs::read_to_string(sb.dir().join("serve.log")).unwrap_or_default();
    assert!(
        !log.contains("s3cret-pass"),
        "a credential reached the service's log"
    );
    sb.assert_clean();
}
