//! The executor: the plan's stages level by level (the stages of one level on threads of their
//! own), each stage's steps in order. A step with a cache key whose record is in the cache is
//! not run (`CACHED`); any other runs (RUN in a container, COPY/ADD/WORKDIR on an overlay) and
//! its layer and record are written. Metadata-only steps add history entries.

use super::cache::{Cache, CacheEntry};
use super::context::Input;
use super::copy::{self, with_private_mounts, Mounted};
use super::layer::{commit_upper, LayerRef};
use super::resolve::Resolver;
use super::work::Work;
use super::{BuildError, BuildEvent, BuildOutcome, BuildProgress, BuildRequest};
use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_build::context::Context;
use berth_build::plan::{
    chain_key, Action, Base, BuildOptions, BuildPlan, CacheKey, CopyStep, Digest as KeyDigest,
    Platform, Source, StagePlan, Step,
};
use berth_image::manifest::History;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a built stage left.
#[derive(Debug, Clone)]
pub(crate) struct StageResult {
    pub layers: Vec<LayerRef>,
    pub history: Vec<History>,
    pub key: CacheKey,
    pub created: Option<String>,
}

pub(crate) struct Builder<'a> {
    pub engine: &'a Engine,
    pub req: &'a BuildRequest,
    pub progress: &'a dyn BuildProgress,
    pub cache: Cache,
    pub plan: BuildPlan,
    pub platform: Platform,
    input: &'a Input,
    resolver: &'a Resolver<'a>,
    ids: &'a AtomicUsize,
    context: Mutex<Option<Arc<Context>>>,
    results: Mutex<BTreeMap<usize, StageResult>>,
    /// A stage failed: the others stop at their next step.
    failed: AtomicBool,
    pub steps: AtomicUsize,
    pub cached: AtomicUsize,
}

pub(crate) fn execute(
    e: &Engine,
    req: &BuildRequest,
    input: &Input,
    progress: &dyn BuildProgress,
) -> Result<BuildOutcome> {
    let tags = super::image::check_tags(&req.tags)?;
    let ids = AtomicUsize::new(1);
    let df = load_definition(input, progress, &ids)?;
    let mut opts = BuildOptions {
        build_args: req.build_args.clone(),
        target: req.target.clone(),
        ..BuildOptions::default()
    };
    if let Some(p) = &req.platform {
        opts.target_platform = Some(Platform::parse(p).map_err(BuildError::invalid)?);
    }
    let resolver = Resolver {
        engine: e,
        pull: req.pull,
        progress,
        ids: &ids,
        images: Mutex::new(BTreeMap::new()),
    };
    let plan = berth_build::plan(&df, &opts, &mut &resolver).map_err(BuildError::from)?;
    let mut warnings = Vec::new();
    for w in &plan.warnings {
        let text = match w.line {
            Some(l) => format!("Dockerfile:{l}: {}", w.message),
            None => w.message.clone(),
        };
        progress.event(BuildEvent::Warning(&text));
        warnings.push(text);
    }
    let b = Builder {
        engine: e,
        req,
        progress,
        cache: Cache::open(e)?,
        platform: opts.target_platform(),
        plan,
        input,
        resolver: &resolver,
        ids: &ids,
        context: Mutex::new(None),
        results: Mutex::new(BTreeMap::new()),
        failed: AtomicBool::new(false),
        steps: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
    };
    for level in &b.plan.levels {
        b.level(level)?;
    }
    let target = b
        .plan
        .stage(b.plan.target)
        .ok_or_else(|| BuildError::invalid("the target stage was not planned"))?;
    let result = b.result(target.index)?;
    let mut out = super::image::finish(&b, target, &result, &tags)?;
    out.warnings = warnings;
    Ok(out)
}

/// Parses the Dockerfile, shown as BuildKit's first step.
fn load_definition(
    input: &Input,
    progress: &dyn BuildProgress,
    ids: &AtomicUsize,
) -> Result<berth_build::Dockerfile> {
    let id = ids.fetch_add(1, Ordering::Relaxed);
    let name = "[internal] load build definition from Dockerfile";
    progress.event(BuildEvent::Started { id, name });
    let text = format!("transferring dockerfile: {}B done", input.dockerfile.len());
    progress.event(BuildEvent::Status { id, text: &text });
    match berth_build::parse(&input.dockerfile) {
        Ok(df) => {
            progress.event(BuildEvent::Done { id });
            Ok(df)
        }
        Err(e) => {
            progress.event(BuildEvent::Failed {
                id,
                error: &e.to_string(),
            });
            Err(BuildError::from(e).into())
        }
    }
}

impl<'a> Builder<'a> {
    pub fn next_id(&self) -> usize {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// The build was cancelled, or another stage failed.
    pub fn stopping(&self) -> bool {
        self.req.cancel.is_cancelled() || self.failed.load(Ordering::SeqCst)
    }

    pub fn context_dir(&self) -> &std::path::Path {
        &self.input.dir
    }

    /// The context, walked on first use (a build that reads nothing of it never walks it).
    pub fn context(&self) -> std::result::Result<Arc<Context>, BuildError> {
        let mut slot = self.context.lock().expect("context lock");
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let id = self.next_id();
        self.progress.event(BuildEvent::Started {
            id,
            name: "[internal] load build context",
        });
        match Context::open(&self.input.dir, self.input.dockerfile_path.as_deref()) {
            Ok(c) => {
                let text = format!("transferring context: {} entries done", c.entries().len());
                self.progress.event(BuildEvent::Status { id, text: &text });
                self.progress.event(BuildEvent::Done { id });
                let c = Arc::new(c);
                *slot = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                self.progress.event(BuildEvent::Failed {
                    id,
                    error: &e.to_string(),
                });
                Err(e.into())
            }
        }
    }

    fn result(&self, stage: usize) -> std::result::Result<StageResult, BuildError> {
        self.results
            .lock()
            .expect("results lock")
            .get(&stage)
            .cloned()
            .ok_or_else(|| BuildError::invalid(format!("stage {stage} was not built")))
    }

    pub fn stage_layers(&self, stage: usize) -> Result<Vec<LayerRef>> {
        Ok(self.result(stage)?.layers)
    }

    pub fn image_layers(&self, reference: &str) -> Result<Vec<LayerRef>> {
        Ok(self.resolver.image(reference, &self.platform)?.layers)
    }

    /// One level of the stage graph: its stages at once.
    fn level(&self, level: &[usize]) -> Result<()> {
        let stages: Vec<&StagePlan> = level.iter().filter_map(|i| self.plan.stage(*i)).collect();
        if stages.len() == 1 {
            return self.stage(stages[0]).map_err(Into::into);
        }
        let results: Vec<std::result::Result<(), BuildError>> = std::thread::scope(|s| {
            let handles: Vec<_> = stages
                .iter()
                .map(|st| {
                    s.spawn(move || {
                        let r = self.stage(st);
                        if r.is_err() {
                            self.failed.store(true, Ordering::SeqCst);
                        }
                        r
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(BuildError::invalid("a stage's thread panicked")))
                })
                .collect()
        });
        // The first real failure, not a stage stopped because of it.
        let mut first = None;
        for r in results {
            if let Err(e) = r {
                if first.as_ref().is_none_or(BuildError::is_cancelled) {
                    first = Some(e);
                }
            }
        }
        match first {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn stage(&self, s: &StagePlan) -> std::result::Result<(), BuildError> {
        let (mut layers, mut history, mut created, base_key) = match &s.base {
            Base::Scratch => (Vec::new(), Vec::new(), None, None),
            Base::Image(r) => {
                let img = self
                    .resolver
                    .image(r, &s.platform)
                    .map_err(|e| BuildError::Step {
                        line: s.steps.first().map_or(1, |st| st.lines.start),
                        instruction: "FROM".into(),
                        source: Box::new(e),
                    })?;
                (img.layers, img.history, img.created, None)
            }
            Base::Stage(i) => {
                let r = self.result(*i)?;
                (r.layers, r.history, r.created, Some(r.key))
            }
        };
        let mut key = s
            .base_key(base_key.as_ref())
            .ok_or_else(|| BuildError::invalid(format!("stage {}: no base key", s.name)))?;
        // BuildKit numbers the FROM and the steps that touch files; metadata steps are no
        // vertexes of their own.
        let total = s
            .steps
            .iter()
            .filter(|st| st.key_component.is_some())
            .count()
            + 1;
        let mut n = 0;
        for step in &s.steps {
            if self.stopping() {
                return Err(BuildError::Cancelled);
            }
            let Some(component) = &step.key_component else {
                history.push(entry(step, created.clone(), true));
                continue;
            };
            key = chain_key(&key, component, self.content_digest(step)?.as_ref());
            n += 1;
            let name = format!("[{} {}/{}] {}", s.name, n + 1, total, step.display);
            let id = self.next_id();
            self.steps.fetch_add(1, Ordering::Relaxed);
            if let Some(hit) = (!self.req.no_cache)
                .then(|| self.cache.get(self.engine, &key))
                .flatten()
            {
                self.progress.event(BuildEvent::Cached { id, name: &name });
                self.cached.fetch_add(1, Ordering::Relaxed);
                layers = hit.layers;
                created = Some(hit.created);
                history.push(entry(step, created.clone(), hit.empty));
                continue;
            }
            self.progress.event(BuildEvent::Started { id, name: &name });
            let at = self.now();
            let made = self.run_step(step, &layers, id).and_then(|new| {
                let empty = new.is_none();
                layers.extend(new);
                let record = CacheEntry {
                    layers: layers.clone(),
                    empty,
                    created: at.clone(),
                };
                self.cache
                    .put(&key, &record)
                    .map_err(|e| BuildError::Step {
                        line: step.lines.start,
                        instruction: "cache".into(),
                        source: Box::new(e),
                    })?;
                Ok(empty)
            });
            match made {
                Ok(empty) => {
                    self.progress.event(BuildEvent::Done { id });
                    created = Some(at);
                    history.push(entry(step, created.clone(), empty));
                }
                Err(e) => {
                    self.progress.event(BuildEvent::Failed {
                        id,
                        error: &e.to_string(),
                    });
                    return Err(e);
                }
            }
        }
        self.results.lock().expect("results lock").insert(
            s.index,
            StageResult {
                layers,
                history,
                key,
                created,
            },
        );
        Ok(())
    }

    /// The time a step runs at (`SOURCE_DATE_EPOCH` when the build sets it, as BuildKit).
    pub fn now(&self) -> String {
        match self
            .req
            .build_args
            .get("SOURCE_DATE_EPOCH")
            .and_then(|s| s.parse::<i64>().ok())
        {
            Some(epoch) => berth_sys::time::rfc3339(epoch),
            None => berth_sys::time::now_rfc3339(),
        }
    }

    /// What a step reads besides its key text: the context files a COPY names, the key of a
    /// stage it copies or mounts from, an image's ID.
    fn content_digest(&self, step: &Step) -> std::result::Result<Option<KeyDigest>, BuildError> {
        Ok(match &step.action {
            Action::Copy(c) => Some(self.source_digest(&c.from, c)?),
            Action::Run(r) => {
                let mut parts = Vec::new();
                for m in &r.mounts {
                    let Some(from) = &m.from else { continue };
                    let source = m.mount.source.clone().unwrap_or_else(|| "/".into());
                    let probe = copy_probe(from.clone(), source);
                    parts.push(self.source_digest(from, &probe)?);
                }
                (!parts.is_empty()).then(|| {
                    let joined: Vec<u8> = parts.iter().flat_map(|d| d.0).collect();
                    KeyDigest::of(&joined)
                })
            }
            _ => None,
        })
    }

    fn source_digest(
        &self,
        from: &Source,
        c: &CopyStep,
    ) -> std::result::Result<KeyDigest, BuildError> {
        Ok(match from {
            Source::Context => self.context()?.content_digest(c)?,
            Source::Stage(i) => self.result(*i)?.key,
            Source::Image(r) => {
                let img = self
                    .resolver
                    .image(r, &self.platform)
                    .map_err(|e| BuildError::Step {
                        line: 0,
                        instruction: format!("--from={r}"),
                        source: Box::new(e),
                    })?;
                KeyDigest::of(img.record.id.to_string().as_bytes())
            }
        })
    }

    /// Runs one step on `layers`; its new layer, if it made one.
    fn run_step(
        &self,
        step: &Step,
        layers: &[LayerRef],
        id: usize,
    ) -> std::result::Result<Option<LayerRef>, BuildError> {
        let line = step.lines.start;
        let fail = |instruction: &str, e: EngineError| BuildError::Step {
            line,
            instruction: instruction.into(),
            source: Box::new(e),
        };
        match &step.action {
            Action::Run(r) => super::run::run(self, layers, r, id, line),
            Action::Copy(c) => {
                let what = if c.add { "ADD" } else { "COPY" };
                if !c.remote.is_empty() {
                    return Err(BuildError::Unsupported {
                        line,
                        what: format!("ADD from a URL or git repository ({})", c.remote[0]),
                    });
                }
                let ctx = match c.from {
                    Source::Context => Some(self.context()?),
                    _ => None,
                };
                let source = match &c.from {
                    Source::Context => None,
                    Source::Stage(i) => Some(super::layer::chain(&self.result(*i)?.layers)),
                    Source::Image(r) => Some(super::layer::chain(
                        &self.image_layers(r).map_err(|e| fail(what, e))?,
                    )),
                };
                self.on_overlay(layers, source.as_deref(), line, what, |dst, src| {
                    let from = match (&ctx, src) {
                        (Some(ctx), _) => copy::From::Context(ctx),
                        (None, Some(src)) => copy::From::Root(src),
                        (None, None) => return Err(BuildError::invalid("COPY without a source")),
                    };
                    copy::copy(c, &from, dst, line)
                })
            }
            Action::Mkdir { path, user } => {
                self.on_overlay(layers, None, line, "WORKDIR", |dst, _| {
                    copy::mkdir(dst, path, user)
                        .map_err(|e| fail("WORKDIR", EngineError::io(path, e)))
                })
            }
            Action::Metadata => Ok(None),
        }
    }

    /// Runs `f` on the step's root mounted (and a source root, when given) in a private mount
    /// namespace, then commits what it changed.
    fn on_overlay(
        &self,
        layers: &[LayerRef],
        source: Option<&[berth_image::digest::Digest]>,
        line: usize,
        what: &str,
        f: impl FnOnce(&Mounted, Option<&Mounted>) -> std::result::Result<(), BuildError> + Send,
    ) -> std::result::Result<Option<LayerRef>, BuildError> {
        let fail = |e: EngineError| BuildError::Step {
            line,
            instruction: what.into(),
            source: Box::new(e),
        };
        let mut work = Work::new(self.engine).map_err(fail)?;
        let (_, root) = work
            .snapshot("", &super::layer::chain(layers))
            .map_err(fail)?;
        let src = match source {
            Some(chain) => Some(work.snapshot("src", chain).map_err(fail)?.1),
            None => None,
        };
        let dir = work.dir.clone();
        with_private_mounts(|| {
            let dst = Mounted::new(&root, &dir.join("rootfs"))?;
            let src = match &src {
                Some(m) => Some(Mounted::new(m, &dir.join("src"))?),
                None => None,
            };
            Ok(f(&dst, src.as_ref()))
        })
        .map_err(fail)??;
        commit_upper(self.engine, &work.upper(), layers.last()).map_err(fail)
    }
}

/// A COPY of `source` from `from`: how a RUN mount's content is digested.
fn copy_probe(from: Source, source: String) -> CopyStep {
    CopyStep {
        add: false,
        from,
        sources: vec![source],
        remote: Vec::new(),
        inline: Vec::new(),
        dest: "/".into(),
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        excludes: Vec::new(),
        unpack: false,
        keep_git_dir: None,
        checksum: None,
    }
}

/// A step's history entry, as BuildKit writes it.
fn entry(step: &Step, created: Option<String>, empty: bool) -> History {
    let created_by = if step.created_by.is_empty() {
        step.display.clone()
    } else {
        step.created_by.clone()
    };
    History {
        created,
        created_by: Some(created_by),
        comment: Some("buildkit.dockerfile.v0".into()),
        empty_layer: empty,
    }
}
