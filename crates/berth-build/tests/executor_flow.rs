//! How an executor drives the crate, end to end without containers: parse, plan, then per stage
//! chain the cache keys step by step, digesting what COPY reads from the context. A touched file
//! keeps every key; a one-byte change moves the COPY's key and the keys after it, not those before.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use berth_build::context::Context;
use berth_build::plan::{
    chain_key, plan, Action, BuildOptions, CacheKey, ImageConfig, ImageResolver, Platform,
    ResolvedImage, Source,
};

struct Store;

impl ImageResolver for Store {
    fn resolve(&mut self, reference: &str, _: &Platform) -> Result<ResolvedImage, String> {
        let config = ImageConfig {
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        };
        Ok(ResolvedImage {
            id: format!("sha256:id-of-{reference}"),
            config,
        })
    }
}

const DOCKERFILE: &str = "FROM busybox AS build\nRUN mkdir /out\nCOPY src/ /src/\nRUN cc /src -o /out/app\n\
FROM busybox\nLABEL stage=final\nCOPY --from=build /out/app /app\nCOPY README /README\nCMD [\"/app\"]\n";

/// Every step's key, by (stage, step), as an executor would compute them.
fn keys(dir: &Path) -> Vec<Option<CacheKey>> {
    let df = berth_build::parse(DOCKERFILE.as_bytes()).unwrap();
    let opts = BuildOptions {
        build_platform: Platform::parse("linux/amd64").unwrap(),
        ..Default::default()
    };
    let p = plan(&df, &opts, &mut Store).unwrap();
    let ctx = Context::open(dir, None).unwrap();
    let mut finals: BTreeMap<usize, CacheKey> = BTreeMap::new();
    let mut out = Vec::new();
    for stage in &p.stages {
        let base_stage = match stage.base {
            berth_build::plan::Base::Stage(i) => finals.get(&i),
            _ => None,
        };
        let mut key = stage.base_key(base_stage).unwrap();
        for step in &stage.steps {
            let Some(component) = &step.key_component else {
                out.push(None);
                continue;
            };
            let content = match &step.action {
                Action::Copy(c) if c.from == Source::Context => {
                    Some(ctx.content_digest(c).unwrap())
                }
                Action::Copy(c) => match c.from {
                    Source::Stage(i) => Some(finals[&i]),
                    _ => None,
                },
                _ => None,
            };
            key = chain_key(&key, component, content.as_ref());
            out.push(Some(key));
        }
        finals.insert(stage.index, key);
    }
    out
}

#[test]
fn touch_keeps_keys_and_a_change_moves_only_later_steps() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::create_dir_all(d.join("src")).unwrap();
    fs::write(d.join("src/main.c"), "int main(){}").unwrap();
    fs::write(d.join("README"), "hello").unwrap();
    let first = keys(d);
    // Steps: build[RUN, COPY, RUN], final[LABEL (no key), COPY --from, COPY, CMD (no key)].
    assert_eq!(first.iter().filter(|k| k.is_some()).count(), 5);

    let f = fs::File::options()
        .append(true)
        .open(d.join("src/main.c"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    drop(f);
    assert_eq!(keys(d), first, "touching a file keeps every key");

    fs::write(d.join("README"), "hellO").unwrap();
    let readme = keys(d);
    assert_eq!(
        readme[..5],
        first[..5],
        "steps before the changed COPY keep their keys"
    );
    assert_ne!(readme[5], first[5], "the COPY that reads README moves");

    fs::write(d.join("README"), "hello").unwrap();
    fs::write(d.join("src/main.c"), "int main(){ }").unwrap();
    let src = keys(d);
    assert_eq!(src[0], first[0], "RUN before the COPY keeps its key");
    assert_ne!(src[1], first[1]);
    assert_ne!(src[2], first[2], "RUN after the COPY moves");
    assert_ne!(src[4], first[4], "COPY --from the rebuilt stage moves");
    assert_ne!(src[5], first[5], "and so does every step after it");
}
