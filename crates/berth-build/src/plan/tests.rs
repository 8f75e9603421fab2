use std::collections::HashMap;

use super::*;
use crate::instructions::parse;

#[derive(Default)]
struct Images(HashMap<String, ImageConfig>, Vec<(String, String)>);

impl ImageResolver for Images {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        self.1.push((reference.to_string(), platform.to_string()));
        match self.0.get(reference) {
            Some(c) => Ok(ResolvedImage {
                id: format!("sha256:{reference}"),
                config: c.clone(),
            }),
            None => Ok(ResolvedImage {
                id: format!("sha256:{reference}"),
                config: ImageConfig::default(),
            }),
        }
    }
}

fn opts(args: &[(&str, &str)]) -> BuildOptions {
    BuildOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        ..Default::default()
    }
}

fn plan_of(src: &str, o: &BuildOptions) -> Result<BuildPlan, BuildError> {
    plan(&parse(src.as_bytes()).unwrap(), o, &mut Images::default())
}

fn ok(src: &str, o: &BuildOptions) -> BuildPlan {
    plan_of(src, o).unwrap_or_else(|e| panic!("{e}"))
}

fn run_args(step: &Step) -> Vec<String> {
    match &step.action {
        Action::Run(r) => r.args.clone(),
        a => panic!("not a RUN: {a:?}"),
    }
}

fn copy(step: &Step) -> &CopyStep {
    match &step.action {
        Action::Copy(c) => c,
        a => panic!("not a COPY: {a:?}"),
    }
}

#[test]
fn global_args_reach_from_but_not_the_stage_unless_redeclared() {
    let src = "ARG TAG=3.19 V\nFROM alpine:$TAG\nRUN echo $TAG\nARG TAG\nRUN echo $TAG";
    let mut images = Images::default();
    let p = plan(&parse(src.as_bytes()).unwrap(), &opts(&[]), &mut images).unwrap();
    assert_eq!(images.1[0].0, "alpine:3.19");
    let st = &p.stages[0];
    let env = |i: usize| match &st.steps[i].action {
        Action::Run(r) => r.env.clone(),
        _ => panic!(),
    };
    assert!(!env(0).iter().any(|(k, _)| k == "TAG"));
    assert!(env(2).contains(&("TAG".to_string(), "3.19".to_string())));
    let p = ok(src, &opts(&[("TAG", "edge")]));
    assert!(matches!(&p.stages[0].base, Base::Image(r) if r == "alpine:edge"));
}

#[test]
fn build_args_override_defaults_and_env_overrides_arg_in_expansion() {
    let src = "FROM scratch\nARG A=def\nENV A=fromenv\nWORKDIR /$A\nARG B=x\nWORKDIR $B";
    let p = ok(src, &opts(&[("B", "y")]));
    assert_eq!(p.stages[0].config.working_dir, "/fromenv/y");
}

#[test]
fn predefined_platform_args_need_a_declaration() {
    let src = "FROM --platform=$BUILDPLATFORM scratch AS b\nARG TARGETARCH\nWORKDIR /$TARGETARCH$BUILDARCH";
    let mut o = opts(&[]);
    o.target_platform = Some(Platform::parse("linux/arm64").unwrap());
    let p = ok(src, &o);
    assert_eq!(p.stages[0].config.working_dir, "/arm64");
    assert_eq!(p.stages[0].platform.to_string(), "linux/amd64");
}

#[test]
fn unused_build_args_are_reported_but_proxies_are_not() {
    let p = ok(
        "FROM scratch\nARG USED\n",
        &opts(&[("USED", "1"), ("NOPE", "2"), ("HTTP_PROXY", "p")]),
    );
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(
        p.warnings[0].message,
        "One or more build-args [NOPE] were not consumed"
    );
}

const MULTI: &str = "FROM scratch AS base\nCOPY a /a\n\
FROM base AS build\nRUN make\n\
FROM scratch AS docs\nRUN doc\n\
FROM scratch AS test\nCOPY --from=build /out /out\n\
FROM scratch\nCOPY --from=build /out /app\nCOPY --from=1 /x /y\nCOPY --from=busybox:1 /bin/sh /sh\n";

#[test]
fn target_prunes_unneeded_stages_and_orders_the_rest() {
    let p = ok(MULTI, &opts(&[]));
    let order: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
    assert_eq!(order, vec![0, 1, 4]);
    assert_eq!(p.levels, vec![vec![0], vec![1], vec![4]]);
    assert_eq!(p.images, vec!["busybox:1"]);
    assert_eq!(copy(&p.stages[2].steps[1]).from, Source::Stage(1));
    assert_eq!(
        copy(&p.stages[2].steps[2]).from,
        Source::Image("busybox:1".into())
    );
    let mut o = opts(&[]);
    o.target = Some("DOCS".into());
    let p = ok(MULTI, &o);
    assert_eq!(
        p.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        vec![2]
    );
}

#[test]
fn independent_stages_share_a_level() {
    let src = "FROM scratch AS a\nRUN a\nFROM scratch AS b\nRUN b\nFROM scratch\nCOPY --from=a /x /x\nCOPY --from=b /y /y";
    assert_eq!(ok(src, &opts(&[])).levels, vec![vec![0, 1], vec![2]]);
}

#[test]
fn stage_errors_name_their_line() {
    let mut o = opts(&[]);
    o.target = Some("buld".into());
    assert_eq!(
        plan_of(MULTI, &o).unwrap_err().to_string(),
        "target stage \"buld\" could not be found (did you mean build?)"
    );
    let e = plan_of(
        "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y",
        &opts(&[]),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Dockerfile:4: circular dependency detected on stage: a"),
        "{e}"
    );
    let e = plan_of(
        "FROM scratch AS x\nCOPY --from=later /x /x\nFROM scratch AS later\nFROM x",
        &opts(&[]),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: cannot copy from stage \"later\", it needs to be defined before current stage \"x\""
    );
    let e = plan_of("FROM scratch\nCOPY --from=7 /x /x", &opts(&[])).unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:2: invalid stage index 7");
    let e = plan_of("FROM scratch\nCOPY --from=$X /x /x", &opts(&[])).unwrap_err();
    assert!(e
        .to_string()
        .contains("variable expansion is not supported for --from"));
    let e = plan_of("ARG X\nFROM $X\n", &opts(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: base name ($X) should not be blank"
    );
}

#[test]
fn run_forms_and_heredocs() {
    let src = "FROM scratch\nRUN echo a\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nRUN echo b\nRUN [\"ls\", \"-l\"]\n\
RUN <<EOF\necho c\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<A > /f\nbody\nA\n";
    let p = ok(src, &opts(&[]));
    let s = &p.stages[0].steps;
    assert_eq!(run_args(&s[0]), vec!["/bin/sh", "-c", "echo a"]);
    assert_eq!(run_args(&s[2]), vec!["/bin/bash", "-eu", "-c", "echo b"]);
    assert_eq!(run_args(&s[3]), vec!["ls", "-l"]);
    assert_eq!(run_args(&s[4]), vec!["/bin/bash", "-eu", "-c", "echo c\n"]);
    assert_eq!(
        run_args(&s[5]),
        vec!["/bin/bash", "-eu", "-c", "/dev/pipes/EOF"]
    );
    let Action::Run(r) = &s[5].action else {
        panic!()
    };
    assert_eq!(r.inline_files[0].data, "#!/usr/bin/env python3\nprint(1)\n");
    assert_eq!(
        run_args(&s[6]),
        vec!["/bin/bash", "-eu", "-c", "cat <<A > /f\nbody\nA"]
    );
}

#[test]
fn run_mounts_are_expanded_and_linked_to_stages() {
    let src = "FROM scratch AS deps\nFROM scratch\nARG CACHE=/root/.cache\n\
RUN --mount=type=cache,target=$CACHE --mount=from=deps,target=/d --mount=type=secret,id=tok make";
    let p = ok(src, &opts(&[]));
    let st = p.stage(1).unwrap();
    assert_eq!(st.depends_on, vec![0]);
    let Action::Run(r) = &st.steps[1].action else {
        panic!()
    };
    assert_eq!(r.mounts[0].mount.target.as_deref(), Some("/root/.cache"));
    assert_eq!(r.mounts[1].from, Some(Source::Stage(0)));
    assert_eq!(
        r.mounts[2].mount.kind,
        crate::instructions::MountType::Secret
    );
}

#[test]
fn copy_paths_and_flags_are_expanded_and_normalized() {
    let src = "FROM scratch\nWORKDIR /app\nARG U=1000 M=0644 D=conf\nCOPY --chown=$U:$U --chmod=$M ../../$D/ ./$D/\n\
COPY <<EOF <<'RAW' /etc/\nx=$U\nEOF\ny=$U\nRAW\nADD https://example.com/a.tgz local.tar /opt/";
    let p = ok(src, &opts(&[]));
    let s = &p.stages[0].steps;
    let c = copy(&s[2]);
    assert_eq!(
        (c.chown.as_deref(), c.chmod.as_deref()),
        (Some("1000:1000"), Some("0644"))
    );
    assert_eq!(
        (c.sources.clone(), c.dest.as_str()),
        (vec!["../../conf/".to_string()], "/app/conf/")
    );
    let c = copy(&s[3]);
    assert_eq!(
        (c.inline[0].data.as_str(), c.inline[1].data.as_str()),
        ("x=1000\n", "y=$U\n")
    );
    let c = copy(&s[4]);
    assert_eq!(
        (c.remote.clone(), c.sources.clone(), c.unpack),
        (
            vec!["https://example.com/a.tgz".to_string()],
            vec!["local.tar".to_string()],
            true
        )
    );
    assert!(plan_of("FROM scratch\nCOPY --chmod=999 a b", &opts(&[])).is_err());
    assert!(plan_of("FROM scratch\nCOPY https://x/y /z", &opts(&[]))
        .unwrap_err()
        .to_string()
        .contains("source can't be a URL for COPY"));
    assert!(plan_of("FROM scratch\nADD --checksum=sha256:00 a b /", &opts(&[])).is_err());
}

#[test]
fn config_changes_build_the_image_config() {
    let src = "FROM scratch\nENV A=1 B=\"two words\"\nLABEL org.x=\"$A\"\nEXPOSE 80 53/udp\nVOLUME /data\nUSER app\n\
WORKDIR /srv\nSTOPSIGNAL SIGINT\nHEALTHCHECK --interval=5s CMD true\nCMD [\"serve\"]\nENTRYPOINT [\"/init\"]\n\
ONBUILD RUN echo child\nMAINTAINER me";
    let p = ok(src, &opts(&[]));
    let c = &p.stages[0].config;
    assert_eq!(
        c.env,
        vec![
            format!(
                "PATH={}",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ),
            "A=1".into(),
            "B=two words".into()
        ]
    );
    assert_eq!(c.labels["org.x"], "1");
    assert_eq!(
        c.exposed_ports.keys().cloned().collect::<Vec<_>>(),
        vec!["53/udp", "80/tcp"]
    );
    assert!(c.volumes.contains_key("/data"));
    assert_eq!(
        (
            c.user.as_str(),
            c.working_dir.as_str(),
            c.stop_signal.as_str()
        ),
        ("app", "/srv", "SIGINT")
    );
    assert_eq!(
        c.healthcheck.as_ref().unwrap().test,
        vec!["CMD-SHELL", "true"]
    );
    assert_eq!(
        c.cmd,
        Some(vec!["serve".to_string()]),
        "CMD set in this stage survives ENTRYPOINT"
    );
    assert_eq!(c.entrypoint, Some(vec!["/init".to_string()]));
    assert_eq!(c.on_build, vec!["RUN echo child"]);
    assert_eq!(p.stages[0].author.as_deref(), Some("me"));
    let s = &p.stages[0].steps;
    assert!(s[0].key_component.is_none() && s[0].empty_layer);
    assert!(
        matches!(s[5].action, Action::Mkdir { ref path, ref user } if path == "/srv" && user == "app")
    );
    assert!(plan_of("FROM scratch\nSTOPSIGNAL SIGNOPE", &opts(&[])).is_err());
}

#[test]
fn entrypoint_clears_the_base_cmd() {
    let mut images = Images::default();
    images.0.insert(
        "base".into(),
        ImageConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        },
    );
    let p = plan(
        &parse(b"FROM base\nENTRYPOINT [\"/x\"]").unwrap(),
        &opts(&[]),
        &mut images,
    )
    .unwrap();
    assert_eq!(p.stages[0].config.cmd, None);
}

#[test]
fn onbuild_triggers_of_a_base_image_run_first() {
    let mut images = Images::default();
    let base = ImageConfig {
        on_build: vec!["COPY --from=assets /a /a".into(), "RUN echo $X".into()],
        ..Default::default()
    };
    images.0.insert("base".into(), base);
    let src = "FROM scratch AS assets\nFROM base\nENV X=1\nRUN real";
    let p = plan(&parse(src.as_bytes()).unwrap(), &opts(&[]), &mut images).unwrap();
    let st = p.stage(1).unwrap();
    assert_eq!(st.depends_on, vec![0]);
    assert!(st.steps[0].onbuild && st.steps[1].onbuild && !st.steps[3].onbuild);
    assert_eq!(st.steps[0].lines.start, 2);
    assert_eq!(copy(&st.steps[0]).from, Source::Stage(0));
    assert!(st.config.on_build.is_empty(), "triggers do not carry over");
    let mut images = Images::default();
    images.0.insert(
        "bad".into(),
        ImageConfig {
            on_build: vec!["BOGUS x".into()],
            ..Default::default()
        },
    );
    let e = plan(&parse(b"FROM bad").unwrap(), &opts(&[]), &mut images).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Dockerfile:1: ONBUILD trigger \"BOGUS x\""),
        "{e}"
    );
}

#[test]
fn onbuild_of_a_base_stage_applies_to_its_children() {
    let p = ok(
        "FROM scratch AS parent\nONBUILD WORKDIR /child\nFROM parent\nRUN pwd",
        &opts(&[]),
    );
    let st = p.stage(1).unwrap();
    assert!(st.steps[0].onbuild);
    assert_eq!(st.config.working_dir, "/child");
    assert!(st.config.on_build.is_empty());
}

#[test]
fn cache_components_follow_inputs_not_labels() {
    let a = ok("FROM scratch\nARG V=1\nLABEL l=a\nRUN make", &opts(&[]));
    let b = ok("FROM scratch\nARG V=1\nLABEL l=b\nRUN make", &opts(&[]));
    let c = ok(
        "FROM scratch\nARG V=1\nLABEL l=a\nRUN make",
        &opts(&[("V", "2")]),
    );
    let key = |p: &BuildPlan| p.stages[0].steps[2].key_component.clone().unwrap();
    assert_eq!(key(&a), key(&b));
    assert_ne!(key(&a), key(&c));
    let base = a.stages[0].base_key(None).unwrap();
    assert_eq!(
        chain_key(&base, &key(&a), None),
        chain_key(&base, &key(&b), None)
    );
}

#[test]
fn exponential_env_growth_is_bounded() {
    let mut src = String::from("FROM scratch\nENV A=xxxxxxxxxxxxxxxx\n");
    for _ in 0..40 {
        src.push_str("ENV A=$A$A\n");
    }
    let e = plan_of(&src, &opts(&[])).unwrap_err();
    assert!(
        e.to_string().contains("larger than") || e.to_string().contains("expansions of this build"),
        "{e}"
    );
}
