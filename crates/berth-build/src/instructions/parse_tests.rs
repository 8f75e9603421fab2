use super::*;

fn df(s: &str) -> Dockerfile {
    parse(s.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(s: &str) -> String {
    parse(s.as_bytes()).unwrap_err().to_string()
}

fn first(s: &str) -> Command {
    df(&format!("FROM scratch\n{s}")).stages[0].instructions[0]
        .command
        .clone()
}

#[test]
fn unknown_instruction_names_the_line() {
    assert_eq!(
        err("FROM a\n\n\n\n\n\nRUNN x"),
        "Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)"
    );
    assert_eq!(
        err("FROM a\nFOOBAR x"),
        "Dockerfile:2: unknown instruction: FOOBAR"
    );
}

#[test]
fn meta_args_and_stages() {
    let d = df("ARG A=1 B\nFROM x:$A AS Build\nRUN a\nFROM --platform=$BUILDPLATFORM build\nCOPY --from=build /a /b");
    assert_eq!(d.meta_args.len(), 1);
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].from.name.as_deref(), Some("build"));
    assert_eq!(d.stages[1].from.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(
        d.stages[1].instructions[0].lines,
        Lines { start: 5, end: 5 }
    );
    assert!(err("RUN x\nFROM a").contains("Dockerfile:1: no build stage in current context"));
    assert!(err("FROM a AS 1x").contains("invalid name for build stage"));
    assert!(err("FROM a b").contains("FROM requires either one or three arguments"));
}

#[test]
fn run_forms_and_flags() {
    let Command::Run(r) =
        first("RUN --mount=type=cache,target=/c --network=none --security=insecure make all")
    else {
        panic!()
    };
    assert_eq!(r.command.args, vec!["make all"]);
    assert!(r.command.prepend_shell);
    assert_eq!(
        (r.network, r.security, r.mounts.len()),
        (Network::None, Security::Insecure, 1)
    );
    let Command::Run(r) = first("RUN [\"echo\", \"hi\"]") else {
        panic!()
    };
    assert_eq!(
        (r.command.args.clone(), r.command.prepend_shell),
        (vec!["echo".into(), "hi".into()], false)
    );
    let Command::Run(r) = first("RUN ['echo']") else {
        panic!()
    };
    assert_eq!(r.command.args, vec!["['echo']"]);
    assert!(err("FROM a\nRUN --network=bridge x").contains("invalid network mode \"bridge\""));
    assert!(err("FROM a\nRUN --mount=from=$X,target=/x x")
        .contains("doesn't support variable expansion"));
    assert!(err("FROM a\nRUN --bogus x").contains("unknown flag: --bogus"));
}

#[test]
fn copy_and_add_flags() {
    let Command::Copy(c) =
        first("COPY --from=build --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=x a b /dst/")
    else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(
        (c.chown.as_deref(), c.chmod.as_deref(), c.link, c.parents),
        (Some("1:2"), Some("755"), true, true)
    );
    assert_eq!(c.excludes, vec!["*.md", "x"]);
    assert_eq!(c.paths.sources, vec!["a", "b"]);
    assert_eq!(c.paths.dest, "/dst/");
    let Command::Add(a) =
        first("ADD --keep-git-dir=false --checksum=sha256:ab --unpack https://x/y.tgz /")
    else {
        panic!()
    };
    assert_eq!(
        (a.keep_git_dir, a.unpack, a.checksum.as_deref()),
        (Some(false), Some(true), Some("sha256:ab"))
    );
    assert!(err("FROM a\nCOPY onlyone").contains("COPY requires at least two arguments"));
    assert!(err("FROM a\nCOPY --checksum=x a b").contains("unknown flag: --checksum"));
    let Command::Copy(c) = first("COPY [\"a b\", \"/c d/\"]") else {
        panic!()
    };
    assert_eq!(
        (c.paths.sources.clone(), c.json),
        (vec!["a b".to_string()], true)
    );
}

#[test]
fn copy_heredoc_sources() {
    let Command::Copy(c) = first("COPY <<A <<-\"B\" /dst/\nhello $X\nA\n\t\tbye\n\tB") else {
        panic!()
    };
    assert_eq!(c.paths.inline.len(), 2);
    assert_eq!(
        c.paths.inline[0],
        InlineSource {
            path: "A".into(),
            data: "hello $X\n".into(),
            expand: true
        }
    );
    assert_eq!(
        c.paths.inline[1],
        InlineSource {
            path: "B".into(),
            data: "bye\n".into(),
            expand: false
        }
    );
    assert!(
        err("FROM a\nCOPY x <<EOF\nEOF").contains("COPY cannot accept a heredoc as a destination")
    );
}

#[test]
fn env_label_arg() {
    let Command::Env(e) = first("ENV a=1 b=\"x y\" c=z\\ w") else {
        panic!()
    };
    let got: Vec<_> = e
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str(), kv.legacy))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", "1", false),
            ("b", "\"x y\"", false),
            ("c", "z\\ w", false)
        ]
    );
    let Command::Env(e) = first("ENV key value with spaces") else {
        panic!()
    };
    assert_eq!(
        (e[0].value.as_str(), e[0].legacy),
        ("value with spaces", true)
    );
    let Command::Label(l) = first("LABEL \"com.x\"=y") else {
        panic!()
    };
    assert_eq!(l[0].key, "\"com.x\"");
    let Command::Arg(a) = first("ARG A B=2 C=") else {
        panic!()
    };
    assert_eq!(
        a[0],
        ArgDecl {
            key: "A".into(),
            default: None
        }
    );
    assert_eq!(
        a[2],
        ArgDecl {
            key: "C".into(),
            default: Some(String::new())
        }
    );
    assert!(err("FROM a\nENV x").contains("ENV must have two arguments"));
    assert!(err("FROM a\nENV a=1 b").contains("can't find = in \"b\""));
    assert!(err("FROM a\nARG =x").contains("ARG names can not be blank"));
}

#[test]
fn healthcheck_forms() {
    let Command::Healthcheck(h) =
        first("HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=2s --retries=3 CMD curl -f x")
    else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD-SHELL", "curl -f x"]);
    assert_eq!(
        (
            h.interval,
            h.timeout,
            h.start_period,
            h.start_interval,
            h.retries
        ),
        (
            5_000_000_000,
            3_000_000_000,
            60_000_000_000,
            2_000_000_000,
            3
        )
    );
    let Command::Healthcheck(h) = first("HEALTHCHECK CMD [\"/bin/check\", \"-q\"]") else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD", "/bin/check", "-q"]);
    let Command::Healthcheck(h) = first("HEALTHCHECK none") else {
        panic!()
    };
    assert_eq!(h.test, vec!["NONE"]);
    assert!(err("FROM a\nHEALTHCHECK CONNECT x")
        .contains("Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"));
    assert!(err("FROM a\nHEALTHCHECK CMD").contains("Missing command after HEALTHCHECK CMD"));
    assert!(err("FROM a\nHEALTHCHECK --interval=1ns CMD x").contains("cannot be less than 1ms"));
    assert!(err("FROM a\nHEALTHCHECK --retries=-1 CMD x").contains("--retries cannot be negative"));
    assert!(err("FROM a\nHEALTHCHECK NONE x").contains("HEALTHCHECK NONE takes no arguments"));
}

#[test]
fn onbuild_keeps_its_expression() {
    let Command::OnBuild(o) = first("onbuild RUN echo $HOME") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN echo $HOME");
    let Command::OnBuild(o) = first("ONBUILD COPY <<EOF /x\nhi\nEOF") else {
        panic!()
    };
    assert_eq!(o.expression, "COPY <<EOF /x\nhi\nEOF");
    assert!(err("FROM a\nONBUILD ONBUILD RUN x").contains("Chaining ONBUILD"));
    assert!(err("FROM a\nONBUILD FROM x").contains("FROM isn't allowed as an ONBUILD trigger"));
    assert!(err("FROM a\nONBUILD MAINTAINER x").contains("MAINTAINER isn't allowed"));
}

#[test]
fn simple_instructions() {
    assert_eq!(first("WORKDIR /a b"), Command::Workdir("/a b".into()));
    assert_eq!(first("USER app:app"), Command::User("app:app".into()));
    assert_eq!(
        first("EXPOSE 80/tcp 443 53/udp"),
        Command::Expose(vec!["443".into(), "53/udp".into(), "80/tcp".into()])
    );
    assert_eq!(
        first("VOLUME [\"/a\", \"/b\"]"),
        Command::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        first("VOLUME /a /b"),
        Command::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        first("STOPSIGNAL SIGTERM"),
        Command::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        first("MAINTAINER me <me@x>"),
        Command::Maintainer("me <me@x>".into())
    );
    assert_eq!(
        first("SHELL [\"/bin/bash\", \"-c\"]"),
        Command::Shell(vec!["/bin/bash".into(), "-c".into()])
    );
    assert!(err("FROM a\nSHELL /bin/bash -c")
        .contains("SHELL requires the arguments to be in JSON form"));
    assert!(err("FROM a\nWORKDIR").contains("WORKDIR requires exactly one argument"));
    assert!(err("FROM a\nUSER --x=1 a").contains("unknown flag: --x"));
    assert!(err("FROM a\nVOLUME [\"\"]").contains("VOLUME specified can not be an empty string"));
}
