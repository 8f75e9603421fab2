//! `berth build` against the real kernel: Dockerfiles from `tests/build/` and written inline, on
//! the fixture's busybox image. Multi-stage builds and `--target`, the cache (a touch is a hit, a
//! one-byte change misses from the step that reads it on), every metadata instruction in the
//! config, RUN mounts and confinement, secrets that leave no trace, outputs, stdin contexts,
//! hostile contexts, archives and Dockerfiles that aim at host files (each proves the file is
//! untouched and the error names the cause), interrupted builds; an image run by podman. Every
//! test ends with no container, mount, snapshot, runtime state, cgroup or staging of a build left.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::image::LayerTar;
use common::Output;
use fixture::{mounts_under, Sandbox};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A build context in the test's directory.
struct Ctx {
    dir: PathBuf,
}

impl Ctx {
    fn new(sb: &Sandbox, name: &str, dockerfile: &str) -> Ctx {
        let dir = sb.dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        Ctx { dir }
    }

    fn file(&self, name: &str, data: &str) -> &Ctx {
        let p = self.dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
        self
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }
}

/// `berth build --progress plain ARGS… CONTEXT`.
fn build(sb: &Sandbox, ctx: &Ctx, args: &[&str]) -> Output {
    let mut all = vec!["build", "--progress", "plain", "--network", "none"];
    all.extend_from_slice(args);
    all.push(ctx.path());
    let out = sb.berth(&all);
    eprintln!(
        "berth {all:?}: {}\n{}{}",
        out.status, out.stdout, out.stderr
    );
    out
}

fn build_ok(sb: &Sandbox, ctx: &Ctx, args: &[&str]) -> String {
    let out = build(sb, ctx, args);
    assert!(out.status.success(), "build failed:\n{}", out.stderr);
    out.stderr
}

/// The image ID `-q` prints.
fn build_id(sb: &Sandbox, ctx: &Ctx, args: &[&str]) -> String {
    let mut a = vec!["-q"];
    a.extend_from_slice(args);
    let out = build(sb, ctx, &a);
    assert!(out.status.success(), "build failed:\n{}", out.stderr);
    out.stdout.trim().to_string()
}

/// The step lines (`[stage n/m] …`) reported CACHED in a plain progress log.
fn cached_steps(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_suffix(" CACHED") {
            let number = rest.trim();
            if let Some(name) = lines[..i]
                .iter()
                .rev()
                .find(|p| p.starts_with(&format!("{number} [")))
            {
                out.push(name.split_once(' ').unwrap().1.to_string());
            }
        }
    }
    out
}

/// `berth run --rm IMAGE sh -c SCRIPT`: its stdout.
fn run_in(sb: &Sandbox, image: &str, script: &str) -> String {
    sb.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        script,
    ])
}

/// The image's config object.
fn config(sb: &Sandbox, image: &str) -> serde_json::Value {
    let out = sb.ok(&["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["Config"].clone()
}

/// What builds may leave: their runtime directories, snapshots, runtime state, cgroups and
/// staging, and mounts under the test's directory.
fn build_leaks(sb: &Sandbox) -> Vec<String> {
    let mut out: Vec<String> = mounts_under(&sb.dir())
        .into_iter()
        .map(|m| format!("mount {}", m.display()))
        .collect();
    let list = |p: PathBuf| -> Vec<String> {
        std::fs::read_dir(&p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("build-"))
                    .map(|n| format!("{} {n}", p.display()))
                    .collect()
            })
            .unwrap_or_default()
    };
    out.extend(list(sb.b.runroot.join("build")));
    out.extend(list(sb.b.runroot.join("runtime")));
    out.extend(list(sb.b.root.join("snapshots")));
    out.extend(list(sb.b.root.join("layers/tmp")));
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        out.extend(
            std::fs::read_dir(h.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.starts_with("berth-build-") && n.contains(&format!("{}.", std::process::id()))
                })
                .map(|n| format!("cgroup {n}")),
        );
    }
    out.extend(sb.network_leaks());
    out
}

fn assert_no_build_leaks(sb: &Sandbox) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leaks = build_leaks(sb);
        if leaks.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {leaks:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    sb.assert_clean();
}

const MULTI_STAGE: &str = "\
FROM bb AS build
ARG FLAVOUR=plain
RUN mkdir /out && echo \"made $FLAVOUR\" > /out/artifact
COPY src/ /src/
RUN cat /src/a.txt >> /out/artifact

FROM bb AS unused
RUN echo this stage must not run && exit 1

FROM bb
LABEL stage=final
COPY --from=build /out/artifact /app/artifact
COPY README /app/
CMD [\"cat\", \"/app/artifact\"]
";

#[test]
fn multi_stage_build_runs_and_a_rebuild_is_fully_cached_and_the_same_image() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(&sb, "ctx", MULTI_STAGE);
    ctx.file("src/a.txt", "from a\n").file("README", "readme\n");
    let log = build_ok(&sb, &ctx, &["-t", "app:1", "--build-arg", "FLAVOUR=spicy"]);
    assert!(!log.contains("this stage must not run"), "{log}");
    assert!(log.contains("[build 2/4] RUN mkdir /out"), "{log}");
    assert_eq!(sb.ok(&["run", "--rm", "app:1"]), "made spicy\nfrom a\n");
    assert_eq!(run_in(&sb, "app:1", "cat /app/README"), "readme\n");
    let first = sb.ok(&["images", "-q", "--no-trunc", "app:1"]);
    let again = build_ok(&sb, &ctx, &["-t", "app:1", "--build-arg", "FLAVOUR=spicy"]);
    assert_eq!(cached_steps(&again).len(), 5, "every step cached:\n{again}");
    assert!(
        !again.contains("DONE") || !again.contains("RUN mkdir /out\n#"),
        "{again}"
    );
    assert_eq!(
        sb.ok(&["images", "-q", "--no-trunc", "app:1"]),
        first,
        "same image ID"
    );
    let history = sb.ok(&["history", "--no-trunc", "app:1"]);
    for step in [
        "COPY README /app/ # buildkit",
        "LABEL stage=final",
        "CMD [\"cat\" \"/app/artifact\"]",
    ] {
        assert!(history.contains(step), "history lacks {step}:\n{history}");
    }
    assert_no_build_leaks(&sb);
}

#[test]
fn a_touch_is_a_hit_and_a_one_byte_change_misses_only_the_steps_from_the_copy_on() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\nRUN echo before > /before\nCOPY a.txt /a.txt\nRUN cat /a.txt > /after\nCOPY b.txt /b.txt\n",
    );
    ctx.file("a.txt", "hello\n").file("b.txt", "b\n");
    build_ok(&sb, &ctx, &["-t", "c:1"]);
    let f = std::fs::File::options()
        .append(true)
        .open(ctx.dir.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    drop(f);
    let touched = build_ok(&sb, &ctx, &["-t", "c:1"]);
    assert_eq!(
        cached_steps(&touched).len(),
        4,
        "a touch keeps every key:\n{touched}"
    );
    ctx.file("a.txt", "hellO\n");
    let changed = build_ok(&sb, &ctx, &["-t", "c:1"]);
    assert_eq!(
        cached_steps(&changed),
        vec!["[stage-0 2/5] RUN echo before > /before"],
        "only the step before the changed COPY is cached:\n{changed}"
    );
    assert_eq!(run_in(&sb, "c:1", "cat /after"), "hellO\n");
    let nocache = build_ok(&sb, &ctx, &["--no-cache", "-t", "c:1"]);
    assert!(cached_steps(&nocache).is_empty(), "{nocache}");
    assert_no_build_leaks(&sb);
}

#[test]
fn target_builds_only_the_stages_it_needs() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb AS base\nRUN echo base > /base\nFROM base AS tools\nRUN echo tools > /tools\nFROM bb AS broken\nRUN exit 7\nFROM base AS final\nRUN exit 9\n",
    );
    let log = build_ok(&sb, &ctx, &["--target", "tools", "-t", "t:tools"]);
    assert!(!log.contains("exit 7") && !log.contains("exit 9"), "{log}");
    assert_eq!(run_in(&sb, "t:tools", "cat /base /tools"), "base\ntools\n");
    let out = build(&sb, &ctx, &["--target", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr
            .contains("target stage \"nope\" could not be found"),
        "{}",
        out.stderr
    );
    assert_no_build_leaks(&sb);
}

#[test]
fn independent_stages_build_in_parallel() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb AS a\nRUN sleep 1 && echo a > /a\nFROM bb AS b\nRUN sleep 1 && echo b > /b\nFROM bb\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    );
    let start = Instant::now();
    build_ok(&sb, &ctx, &["-t", "par:1"]);
    assert!(
        start.elapsed() < Duration::from_millis(1900),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(run_in(&sb, "par:1", "cat /a /b"), "a\nb\n");
    assert_no_build_leaks(&sb);
}

#[test]
fn metadata_instructions_land_in_the_image_config() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        r#"FROM bb
ARG VERSION=1.2
ENV APP_VERSION=$VERSION HOME_DIR=/srv PLAIN=${UNSET:-fallback} ALT=${VERSION:+set}
LABEL org.example.version="${VERSION}" maintainer="me"
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD true
WORKDIR $HOME_DIR/app
USER alice
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
ENTRYPOINT ["/bin/echo"]
CMD ["hi"]
"#,
    );
    build_ok(&sb, &ctx, &["-t", "meta:1", "--label", "extra=yes"]);
    let c = config(&sb, "meta:1");
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap();
    for e in [
        "APP_VERSION=1.2",
        "HOME_DIR=/srv",
        "PLAIN=fallback",
        "ALT=set",
    ] {
        assert!(env.contains(&e.to_string()), "{e} not in {env:?}");
    }
    assert_eq!(c["Labels"]["org.example.version"], "1.2");
    assert_eq!(c["Labels"]["extra"], "yes");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object() && c["ExposedPorts"]["53/udp"].is_object());
    assert!(c["Volumes"]["/data"].is_object());
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["User"], "alice");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/echo"]));
    assert_eq!(c["Cmd"], serde_json::json!(["hi"]));
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo child"]));
    assert_eq!(sb.ok(&["run", "--rm", "meta:1"]), "hi\n");
    // WORKDIR made the directory, owned by the user of the moment (root then).
    assert_eq!(
        sb.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "stat",
            "meta:1",
            "-c",
            "%u %n",
            "/srv/app"
        ]),
        "0 /srv/app\n"
    );
    // The ONBUILD trigger runs in a child image.
    let child = Ctx::new(&sb, "child", "FROM meta:1\n");
    let log = build_ok(&sb, &child, &["-t", "child:1"]);
    assert!(log.contains("child"), "{log}");
    assert_no_build_leaks(&sb);
}

#[test]
fn dockerignore_excludes_with_exceptions() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sort\n",
    );
    ctx.file(".dockerignore", "*.log\n!keep.log\nsecret/**\n")
        .file("a.log", "x")
        .file("keep.log", "x")
        .file("secret/key", "x")
        .file("src/main.c", "x");
    let log = build_ok(&sb, &ctx, &["-t", "ign:1"]);
    let files = run_in(&sb, "ign:1", "cd /ctx && find . -type f | sort");
    assert_eq!(
        files, "./.dockerignore\n./Dockerfile\n./keep.log\n./src/main.c\n",
        "{log}"
    );
    assert_no_build_leaks(&sb);
}

#[test]
fn copy_and_add_flags_chown_chmod_wildcards_tars_and_heredocs() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\nCOPY --chown=alice:staff --chmod=750 bin/ /opt/bin/\nCOPY *.txt /texts/\nADD bundle.tar.gz /unpacked/\nADD plain.dat /plain\nCOPY <<EOF /etc/motd\nhello ${HOSTNAME:-there}\nEOF\nCOPY --from=bb /etc/passwd /copied-passwd\n",
    );
    ctx.file("bin/tool", "#!/bin/sh\necho tool\n")
        .file("one.txt", "1")
        .file("two.txt", "2")
        .file("plain.dat", "plain");
    let bundle = LayerTar::new()
        .dir("pkg", 0o755)
        .file("pkg/data", b"packed", 0o640)
        .finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &bundle).unwrap();
    std::fs::write(ctx.dir.join("bundle.tar.gz"), gz.finish().unwrap()).unwrap();
    build_ok(&sb, &ctx, &["-t", "cp:1"]);
    let got = run_in(
        &sb,
        "cp:1",
        "stat -c '%U %G %a %n' /opt/bin/tool; ls /texts; cat /unpacked/pkg/data; echo; cat /plain; echo; cat /etc/motd; head -1 /copied-passwd",
    );
    assert_eq!(
        got,
        "alice staff 750 /opt/bin/tool\none.txt\ntwo.txt\npacked\nplain\nhello there\nroot:x:0:0:root:/root:/bin/sh\n"
    );
    assert_no_build_leaks(&sb);
}

#[test]
fn run_steps_have_runs_confinement_mounts_and_networks() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\n\
RUN grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status > /confinement\n\
RUN --mount=type=cache,target=/cache echo run >> /cache/n && wc -l < /cache/n > /count\n\
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x\n\
RUN --mount=type=bind,source=data,target=/mnt,rw cat /mnt/f > /bound && echo write > /mnt/f\n\
RUN --network=none cat /proc/net/dev | grep -c : > /ifaces\n",
    );
    ctx.file("data/f", "bound\n");
    build_ok(&sb, &ctx, &["-t", "conf:1"]);
    let got = run_in(
        &sb,
        "conf:1",
        "cat /confinement /count /bound /ifaces; ls -d /cache /scratch /mnt 2>&1 | wc -l",
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[0], "CapEff:\t00000000a80425fb",
        "Docker's 14 capabilities: {got}"
    );
    assert_eq!(lines[1], "NoNewPrivs:\t1");
    assert_eq!(lines[2], "Seccomp:\t2");
    assert_eq!(&lines[3..], ["1", "bound", "1", "3"], "{got}");
    assert_eq!(
        std::fs::read_to_string(ctx.dir.join("data/f")).unwrap(),
        "bound\n",
        "a rw bind's writes are thrown away"
    );
    // The cache mount keeps its contents for the next build.
    build_ok(&sb, &ctx, &["--no-cache", "-t", "conf:2"]);
    assert_eq!(run_in(&sb, "conf:2", "cat /count"), "2\n");
    assert_no_build_leaks(&sb);
}

#[test]
fn secrets_are_mounted_and_never_left_in_a_layer_or_the_history() {
    let sb = Sandbox::new();
    let secret = sb.dir().join("token");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len && echo ok > /checked\nRUN --mount=type=secret,id=tok,env=TOKEN test \"${#TOKEN}\" = 12\n",
    );
    let src = format!("id=tok,src={}", secret.display());
    build_ok(&sb, &ctx, &["--secret", &src, "-t", "sec:1"]);
    assert_eq!(
        run_in(&sb, "sec:1", "cat /checked /len; ls /run 2>&1 || true"),
        "ok\n12\nls: /run: No such file or directory\n"
    );
    let saved = sb.dir().join("sec.tar");
    sb.ok(&["save", "-o", saved.to_str().unwrap(), "sec:1"]);
    let bytes = std::fs::read(&saved).unwrap();
    assert!(
        !bytes.windows(12).any(|w| w == b"s3cr3t-value"),
        "the secret is in the saved image"
    );
    let history = sb.ok(&["history", "--no-trunc", "sec:1"]);
    assert!(!history.contains("s3cr3t"), "{history}");
    // A required secret that was not given fails the step, by name.
    let out = build(&sb, &ctx, &["--no-cache"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_no_build_leaks(&sb);
}

#[test]
fn failing_run_names_the_line_and_code_and_leaves_nothing() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\nRUN echo fine\nRUN echo failing && exit 3\n",
    );
    let out = build(&sb, &ctx, &["-t", "bad:1"]);
    assert_eq!(out.status.code(), Some(1));
    let last = out.stderr.lines().last().unwrap();
    assert_eq!(
        last,
        "berth: Dockerfile:3: process \"/bin/sh -c echo failing && exit 3\" did not complete successfully: exit code: 3"
    );
    assert!(sb.berth(&["image", "inspect", "bad:1"]).status.code() != Some(0));
    for (df, want) in [
        (
            "FROM bb\nRUNN x\n",
            "Dockerfile:2: unknown instruction: RUNN",
        ),
        ("FROM bb\nCOPY missing.txt /\n", "missing.txt"),
        ("FROM nosuchimage-here:1\n", "nosuchimage-here"),
        ("FROM bb\nADD https://example.com/x /x\n", "not supported"),
    ] {
        std::fs::write(ctx.dir.join("Dockerfile"), df).unwrap();
        let out = build(&sb, &ctx, &[]);
        assert_eq!(out.status.code(), Some(1), "{df}");
        assert!(
            out.stderr.lines().last().unwrap().contains(want),
            "{df}: {}",
            out.stderr
        );
    }
    assert_no_build_leaks(&sb);
}

#[test]
fn hostile_context_symlinks_and_dot_dots_never_reach_host_files() {
    let sb = Sandbox::new();
    let host = sb.dir().join("host-secret");
    std::fs::write(&host, "HOST-ONLY").unwrap();
    let ctx = Ctx::new(&sb, "ctx", "FROM bb\nCOPY link /got\n");
    std::os::unix::fs::symlink(&host, ctx.dir.join("link")).unwrap();
    std::os::unix::fs::symlink("../host-secret", ctx.dir.join("rel")).unwrap();
    let out = build(&sb, &ctx, &["-t", "h:1"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
    for df in [
        "FROM bb\nCOPY rel /got\n",
        "FROM bb\nCOPY ../host-secret /got\n",
    ] {
        std::fs::write(ctx.dir.join("Dockerfile"), df).unwrap();
        let out = build(&sb, &ctx, &["-t", "h:1"]);
        assert_eq!(out.status.code(), Some(1), "{df}: {}", out.stderr);
    }
    // A directory copy carries the symlink itself, never what it points at.
    std::fs::create_dir(ctx.dir.join("d")).unwrap();
    std::os::unix::fs::symlink(&host, ctx.dir.join("d/inner")).unwrap();
    std::fs::write(ctx.dir.join("Dockerfile"), "FROM bb\nCOPY d/ /d/\n").unwrap();
    build_ok(&sb, &ctx, &["-t", "h:2"]);
    assert_eq!(
        run_in(
            &sb,
            "h:2",
            "readlink /d/inner; cat /d/inner 2>&1 | grep -c HOST-ONLY || true"
        ),
        format!("{}\n0\n", host.display())
    );
    // A bind mount of a symlink resolves inside the context.
    std::fs::write(
        ctx.dir.join("Dockerfile"),
        "FROM bb\nRUN --mount=type=bind,source=link,target=/m cat /m\n",
    )
    .unwrap();
    let out = build(&sb, &ctx, &[]);
    assert!(!out.stderr.contains("HOST-ONLY"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "HOST-ONLY");
    // The Dockerfile and .dockerignore are read in the context's root too: symlinks to a host
    // file read nothing of it (the host's path means that path inside the context).
    std::fs::write(&host, "FROM bb\nRUN echo HOST-ONLY-DOCKERFILE\n").unwrap();
    std::fs::remove_file(ctx.dir.join("Dockerfile")).unwrap();
    std::os::unix::fs::symlink(&host, ctx.dir.join("Dockerfile")).unwrap();
    let out = build(&sb, &ctx, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("failed to read dockerfile"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("HOST-ONLY") && !out.stderr.contains("HOST-ONLY"));
    std::fs::remove_file(ctx.dir.join("Dockerfile")).unwrap();
    std::fs::write(ctx.dir.join("Dockerfile"), "FROM bb\nCOPY . /c/\n").unwrap();
    std::os::unix::fs::symlink(&host, ctx.dir.join(".dockerignore")).unwrap();
    build_ok(&sb, &ctx, &["-t", "h:3"]);
    assert_no_build_leaks(&sb);
}

#[test]
fn hostile_image_symlinks_keep_copy_and_add_inside_the_root() {
    let sb = Sandbox::new();
    let host_dir = sb.dir().join("host-dir");
    std::fs::create_dir(&host_dir).unwrap();
    let evil = LayerTar::new()
        .dir("pkg", 0o755)
        .file("../../escaped", b"x", 0o644)
        .finish();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        &format!(
            "FROM bb AS evil\nRUN ln -s {0} /target && ln -s / /rootlink\nFROM evil\nCOPY f /target/f\nCOPY f /rootlink{0}/g\nRUN ls {0}\n",
            host_dir.display()
        ),
    );
    ctx.file("f", "data");
    let log = build_ok(&sb, &ctx, &["-t", "evil:1"]);
    assert!(
        log.contains(" f\n") && log.contains(" g\n"),
        "landed inside the root: {log}"
    );
    assert_eq!(
        std::fs::read_dir(&host_dir).unwrap().count(),
        0,
        "the host directory is untouched"
    );
    std::fs::write(ctx.dir.join("evil.tar"), evil).unwrap();
    std::fs::write(ctx.dir.join("Dockerfile"), "FROM bb\nADD evil.tar /x/\n").unwrap();
    let out = build(&sb, &ctx, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("escapes the destination"),
        "{}",
        out.stderr
    );
    assert!(!sb.dir().join("escaped").exists() && !Path::new("/escaped").exists());
    assert_no_build_leaks(&sb);
}

#[test]
fn stdin_contexts_tar_and_bare_dockerfile() {
    let sb = Sandbox::new();
    let tar = LayerTar::new()
        .file("Dockerfile", b"FROM bb\nCOPY hello /hello\n", 0o644)
        .file("hello", b"from tar\n", 0o644)
        .finish();
    let out = sb.b.run_with_stdin(
        &["build", "-q", "--network", "none", "-t", "st:1", "-"],
        &tar,
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(run_in(&sb, "st:1", "cat /hello"), "from tar\n");
    let out = sb.b.run_with_stdin(
        &["build", "-q", "--network", "none", "-t", "st:2", "-"],
        b"FROM bb\nRUN echo bare > /bare\n",
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(run_in(&sb, "st:2", "cat /bare"), "bare\n");
    let ctx = Ctx::new(&sb, "ctx", "unused");
    ctx.file("x", "xx\n");
    let out = sb.b.run_with_stdin(
        &[
            "build",
            "-q",
            "--network",
            "none",
            "-f",
            "-",
            "-t",
            "st:3",
            ctx.path(),
        ],
        b"FROM bb\nCOPY x /x\n",
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(run_in(&sb, "st:3", "cat /x"), "xx\n");
    let escape = LayerTar::new().file("../../escape", b"x", 0o644).finish();
    let out =
        sb.b.run_with_stdin(&["build", "--network", "none", "-"], &escape);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("points outside the context"),
        "{}",
        out.stderr
    );
    assert_no_build_leaks(&sb);
}

#[test]
fn outputs_iidfile_and_quiet() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(&sb, "ctx", "FROM scratch\nCOPY a /a\nCOPY sub/ /sub/\n");
    ctx.file("a", "A").file("sub/b", "B");
    let dest = sb.dir().join("out");
    let tar = sb.dir().join("out.tar");
    let iid = sb.dir().join("iid");
    let local = format!("type=local,dest={}", dest.display());
    build_ok(
        &sb,
        &ctx,
        &["-o", &local, "--iidfile", iid.to_str().unwrap()],
    );
    assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "A");
    assert_eq!(std::fs::read_to_string(dest.join("sub/b")).unwrap(), "B");
    assert!(std::fs::read_to_string(&iid)
        .unwrap()
        .starts_with("sha256:"));
    let tar_out = format!("type=tar,dest={}", tar.display());
    build_ok(&sb, &ctx, &["--output", &tar_out]);
    let mut names: Vec<String> = tar::Archive::new(std::fs::File::open(&tar).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "sub", "sub/b"]);
    let id = build_id(&sb, &ctx, &["-t", "q:1"]);
    assert_eq!(sb.ok(&["images", "-q", "--no-trunc", "q:1"]).trim(), id);
    assert_no_build_leaks(&sb);
}

/// Starts `berth build` on `ctx`, waits until its RUN printed `marker`, then signals it.
fn interrupt(sb: &Sandbox, ctx: &Ctx, signal: i32) -> std::process::ExitStatus {
    let mut cmd = sb.b.command(&[
        "build",
        "--progress",
        "plain",
        "--network",
        "none",
        ctx.path(),
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = common::Reaped(cmd.spawn().unwrap());
    let mut err = child.0.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("started-long-step") {
        let n = std::io::Read::read(&mut err, &mut buf).unwrap();
        assert!(
            n > 0,
            "build ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    // SAFETY: signalling the build this test started (still a child of ours, not reaped).
    unsafe { libc::kill(child.0.id() as i32, signal) };
    let status = child.0.wait().unwrap();
    std::mem::forget(child);
    status
}

#[test]
fn interrupted_builds_leave_nothing_and_the_cache_survives() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\nRUN echo kept > /kept\nRUN echo started-long-step && sleep 60\n",
    );
    let status = interrupt(&sb, &ctx, libc::SIGINT);
    assert_eq!(status.code(), Some(130));
    assert_no_build_leaks(&sb);
    let status = interrupt(&sb, &ctx, libc::SIGKILL);
    assert_eq!(status.code(), None, "killed");
    // The helper kills the step's container when its build dies; the next build removes the
    // rest (its snapshot and directory) and still has the good cache.
    std::fs::write(
        ctx.dir.join("Dockerfile"),
        "FROM bb\nRUN echo kept > /kept\nRUN echo done\n",
    )
    .unwrap();
    let log = build_ok(&sb, &ctx, &[]);
    assert_eq!(
        cached_steps(&log),
        vec!["[stage-0 2/3] RUN echo kept > /kept"],
        "{log}"
    );
    assert_no_build_leaks(&sb);
}

#[test]
fn default_network_reaches_the_bridge_and_host_network_is_the_hosts() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\nRUN cat /proc/net/dev | grep -c eth0 > /eth0\n",
    );
    let out = sb.berth(&["build", "--progress", "plain", "-t", "net:1", ctx.path()]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(run_in(&sb, "net:1", "cat /eth0"), "1\n");
    let ctx = Ctx::new(&sb, "ctx2", "FROM bb\nRUN hostname > /h\n");
    let out = sb.berth(&[
        "build",
        "--progress",
        "plain",
        "--network",
        "host",
        "-t",
        "net:2",
        ctx.path(),
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_no_build_leaks(&sb);
}

#[test]
fn a_built_image_runs_under_podman_after_save() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(
        &sb,
        "ctx",
        "FROM bb\nRUN echo from-berth-build > /msg\nCMD [\"cat\", \"/msg\"]\n",
    );
    build_ok(&sb, &ctx, &["-t", "localhost/berth-built:1"]);
    let saved = sb.dir().join("img.tar");
    sb.ok(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "localhost/berth-built:1",
    ]);
    let store = sb.dir().join("podman");
    let podman = |args: &[&str]| {
        let mut cmd = std::process::Command::new("podman");
        cmd.arg("--root")
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(store.join("run"))
            .arg("--storage-driver")
            .arg("vfs")
            .args(args);
        common::run(cmd, None)
    };
    let out = podman(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.status.success(), "podman load: {}", out.stderr);
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/berth-built:1",
    ]);
    let _ = podman(&["rmi", "-a", "-f"]);
    assert!(out.status.success(), "podman run: {}", out.stderr);
    assert_eq!(out.stdout, "from-berth-build\n");
    assert_no_build_leaks(&sb);
}

#[test]
fn builder_prune_empties_the_cache() {
    let sb = Sandbox::new();
    let ctx = Ctx::new(&sb, "ctx", "FROM bb\nRUN echo x > /x\n");
    build_ok(&sb, &ctx, &[]);
    let again = build_ok(&sb, &ctx, &[]);
    assert_eq!(cached_steps(&again).len(), 1);
    sb.ok(&["image", "prune", "-f"]);
    assert!(
        !sb.ok(&["images"]).contains("<none>"),
        "the untagged build is gone"
    );
    let kept = build_ok(&sb, &ctx, &[]);
    assert_eq!(
        cached_steps(&kept).len(),
        1,
        "image prune keeps the build cache"
    );
    let df = sb.ok(&["system", "df", "-v"]);
    let rows = |df: &str| df.lines().filter(|l| l.contains(" regular ")).count();
    assert_eq!(rows(&df), 1, "the RUN step is listed: {df}");
    sb.ok(&["builder", "prune", "-f"]);
    assert_eq!(rows(&sb.ok(&["system", "df", "-v"])), 0, "pruned");
    let after = build_ok(&sb, &ctx, &[]);
    assert!(cached_steps(&after).is_empty(), "{after}");
    assert_no_build_leaks(&sb);
}

#[test]
fn builder_prune_filter_until_and_keep_storage_remove_the_least_recently_used_first() {
    let sb = Sandbox::new();
    // Untagged builds: their layers are held by the cache alone, so they count as its size.
    let big = Ctx::new(
        &sb,
        "big",
        "FROM bb\nRUN head -c 2097152 /dev/zero > /big\n",
    );
    let small = Ctx::new(&sb, "small", "FROM bb\nRUN echo s > /small\n");
    build_ok(&sb, &big, &[]);
    std::thread::sleep(Duration::from_millis(2100));
    build_ok(&sb, &small, &[]);
    sb.ok(&["image", "prune", "-f"]);
    let (code, _, err) = sb.code(&["builder", "prune", "-f", "--filter", "foo=1"]);
    assert_eq!((code, err.trim()), (1, "berth: Invalid filter 'foo'"));
    let (code, _, err) = sb.code(&["builder", "prune", "-f", "--keep-storage", "lots"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--keep-storage") && err.contains("lots"),
        "{err}"
    );

    // Both fit in 1 GiB, and neither was used before 1 h ago: nothing goes.
    sb.ok(&[
        "builder",
        "prune",
        "-f",
        "--keep-storage",
        "1g",
        "--filter",
        "until=1h",
    ]);
    assert_eq!(cached_steps(&build_ok(&sb, &big, &[])).len(), 1);
    assert_eq!(cached_steps(&build_ok(&sb, &small, &[])).len(), 1);
    sb.ok(&["image", "prune", "-f"]);

    // The big step is the least recently used: keeping 1 MiB drops it, and then the small
    // one fits.
    sb.ok(&["builder", "prune", "-f", "--keep-storage", "1m"]);
    assert_eq!(cached_steps(&build_ok(&sb, &small, &[])).len(), 1, "kept");
    assert!(cached_steps(&build_ok(&sb, &big, &[])).is_empty(), "pruned");
    sb.ok(&["image", "prune", "-f"]);
    // Keeping nothing drops the rest.
    sb.ok(&["builder", "prune", "-f", "--keep-storage", "0"]);
    assert!(cached_steps(&build_ok(&sb, &small, &[])).is_empty());
    sb.ok(&["image", "prune", "-f"]);

    // until: only what was last used before then (`until` has whole seconds: the big step is
    // used well over a second before the cut).
    build_ok(&sb, &big, &[]);
    std::thread::sleep(Duration::from_millis(3600));
    build_ok(&sb, &small, &[]);
    sb.ok(&["image", "prune", "-f"]);
    sb.ok(&["builder", "prune", "-f", "--filter", "until=2s"]);
    assert_eq!(
        cached_steps(&build_ok(&sb, &small, &[])).len(),
        1,
        "used just now: kept"
    );
    assert!(
        cached_steps(&build_ok(&sb, &big, &[])).is_empty(),
        "last used over 2 s ago: pruned"
    );
    assert_no_build_leaks(&sb);
}
