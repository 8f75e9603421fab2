//! The Dockerfile corpus (`tests/dockerfiles/cases`): every file is parsed and planned with the
//! build args, target and platform its `# build-arg:`, `# target:` and `# platform:` comments give,
//! and checked against its `# expect:` lines, or must fail with its `# error:` text.

use std::path::Path;

use berth_build::plan::{
    plan, Action, Base, BuildOptions, BuildPlan, ImageConfig, ImageResolver, Platform,
    ResolvedImage,
};
use serde_json::Value;

struct NoImages;

impl ImageResolver for NoImages {
    fn resolve(&mut self, reference: &str, _: &Platform) -> Result<ResolvedImage, String> {
        Ok(ResolvedImage {
            id: format!("sha256:{reference}"),
            config: ImageConfig::default(),
        })
    }
}

fn directives(src: &str, key: &str) -> Vec<String> {
    let prefix = format!("# {key}: ");
    src.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

fn run_and_plan(src: &str) -> Result<BuildPlan, String> {
    let mut o = BuildOptions {
        build_platform: Platform::parse("linux/amd64").unwrap(),
        ..Default::default()
    };
    for a in directives(src, "build-arg") {
        let (k, v) = a.split_once('=').unwrap();
        o.build_args.insert(k.into(), v.into());
    }
    o.target = directives(src, "target").pop();
    o.target_platform = directives(src, "platform")
        .pop()
        .map(|p| Platform::parse(&p).unwrap());
    let df = berth_build::parse(src.as_bytes()).map_err(|e| e.to_string())?;
    plan(&df, &o, &mut NoImages).map_err(|e| e.to_string())
}

fn check(name: &str, p: &BuildPlan, expect: &str) {
    let (key, want) = expect
        .split_once('=')
        .unwrap_or_else(|| panic!("{name}: bad expectation {expect}"));
    let target = p.stages.last().unwrap();
    let json =
        |v: &str| serde_json::from_str::<Value>(v).unwrap_or_else(|e| panic!("{name}: {v}: {e}"));
    if let Some(field) = key.strip_prefix("config.") {
        let config = serde_json::to_value(&target.config).unwrap();
        assert_eq!(
            config.get(field).cloned().unwrap_or(Value::Null),
            json(want),
            "{name}: {key}"
        );
        return;
    }
    let runs: Vec<&Vec<String>> = target
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Run(r) => Some(&r.args),
            _ => None,
        })
        .collect();
    let copies: Vec<_> = target
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Copy(c) => Some(c),
            _ => None,
        })
        .collect();
    if let Some(i) = key.strip_prefix("run[").and_then(|k| k.strip_suffix(']')) {
        let i: usize = i.parse().unwrap();
        assert_eq!(
            serde_json::to_value(runs[i]).unwrap(),
            json(want),
            "{name}: {key}"
        );
    } else if let Some(i) = key
        .strip_prefix("copy[")
        .and_then(|k| k.strip_suffix("].inline"))
    {
        let i: usize = i.parse().unwrap();
        let inline: Vec<(String, String)> = copies[i]
            .inline
            .iter()
            .map(|f| (f.name.clone(), f.data.clone()))
            .collect();
        assert_eq!(
            serde_json::to_value(inline).unwrap(),
            json(want),
            "{name}: {key}"
        );
    } else if key == "stages" {
        let got: Vec<String> = p.stages.iter().map(|s| s.index.to_string()).collect();
        assert_eq!(got.join(","), want, "{name}: stages");
    } else if key == "levels" {
        assert_eq!(
            serde_json::to_value(&p.levels).unwrap(),
            json(want),
            "{name}: levels"
        );
    } else if key == "images" {
        assert_eq!(p.images.join(","), want, "{name}: images");
    } else if key == "warning" {
        assert!(
            p.warnings.iter().any(|w| w.message.contains(want)),
            "{name}: no warning {want:?} in {:?}",
            p.warnings
        );
    } else if key == "base" {
        assert_eq!(target.base, Base::Image(want.to_string()), "{name}: base");
    } else {
        panic!("{name}: unknown expectation {key}");
    }
}

#[test]
fn corpus_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dockerfiles/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut checked = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let src = std::fs::read_to_string(f).unwrap();
        let errors = directives(&src, "error");
        match (run_and_plan(&src), errors.first()) {
            (Ok(p), None) => {
                for e in directives(&src, "expect") {
                    check(&name, &p, &e);
                    checked += 1;
                }
            }
            (Err(e), Some(want)) => {
                assert!(
                    e.contains(want.as_str()),
                    "{name}: error {e:?} lacks {want:?}"
                );
                checked += 1;
            }
            (Ok(_), Some(want)) => panic!("{name}: planned, expected error {want:?}"),
            (Err(e), None) => panic!("{name}: {e}"),
        }
    }
    assert!(
        files.len() >= 20 && checked >= 50,
        "{} files, {checked} checks",
        files.len()
    );
}
