//! The build plan: for every stage the target needs, in order, its base and one step per
//! instruction (ONBUILD triggers of the base first), each with its expanded action, its image-config
//! change, its history entry and its cache-key component. It asks the executor for base image
//! configs through `ImageResolver` and never touches a file or runs a command.

pub mod config;
mod dispatch;
pub mod graph;
pub mod key;
pub mod options;
pub mod values;

use std::collections::{BTreeMap, BTreeSet};

pub use config::{ConfigChange, HealthConfig, ImageConfig};
pub use graph::{Base, StageGraph};
pub use key::{chain_key, image_key, scratch_key, CacheKey, Digest};
pub use options::{BuildOptions, Platform};

use crate::error::{BuildError, BuildErrorKind};
use crate::instructions::{Command, Dockerfile, Lines, Mount, Network, Security};
use dispatch::{StageState, Stepper};

/// A base image, as the executor found it.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The image ID (config digest); it starts the stage's cache chain.
    pub id: String,
    pub config: ImageConfig,
}

/// How the planner learns base images' configs (the executor pulls or reads its store).
pub trait ImageResolver {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String>;
}

/// Where a COPY or a RUN mount reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Context,
    Stage(usize),
    Image(String),
}

/// A file the step makes from Dockerfile text (heredocs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub mount: Mount,
    /// Bind and cache mounts: where `source` is read from (`None`: a fresh directory).
    pub from: Option<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    /// The full argv (shell form already wrapped in the image's SHELL).
    pub args: Vec<String>,
    /// The environment: image Env, ENVs and ARGs in scope.
    pub env: Vec<(String, String)>,
    /// Proxy build args, added to the environment but kept out of the cache key.
    pub proxy_env: Vec<(String, String)>,
    pub workdir: String,
    pub user: String,
    pub mounts: Vec<RunMount>,
    pub network: Network,
    pub security: Security,
    pub devices: Vec<String>,
    /// Heredoc scripts with a `#!` line, to mount read-only at `/dev/pipes/<name>`.
    pub inline_files: Vec<InlineFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStep {
    pub add: bool,
    pub from: Source,
    /// Source paths as expanded (wildcards unexpanded); context paths are resolved inside the
    /// context root, so `..` and absolute paths stay in it.
    pub sources: Vec<String>,
    /// ADD's URLs and git references.
    pub remote: Vec<String>,
    pub inline: Vec<InlineFile>,
    /// Absolute; a trailing `/` means "into this directory".
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    /// ADD: extract local tar archives.
    pub unpack: bool,
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
}

/// What the executor does for a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Only the image config changes: no layer, no container.
    Metadata,
    Run(Box<RunStep>),
    Copy(Box<CopyStep>),
    /// WORKDIR to a directory other than `/`: made (with parents) as `user`.
    Mkdir {
        path: String,
        user: String,
    },
}

/// One instruction of a stage, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub lines: Lines,
    /// An ONBUILD trigger of the base (its lines are the stage's FROM).
    pub onbuild: bool,
    /// The instruction as BuildKit shows it in progress output (`RUN make`).
    pub display: String,
    pub action: Action,
    pub config_change: Option<ConfigChange>,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// No layer for this step.
    pub empty_layer: bool,
    /// The text this step contributes to its cache key (`None`: metadata only, not in the chain).
    pub key_component: Option<String>,
}

/// One stage of the plan.
#[derive(Debug, Clone)]
pub struct StagePlan {
    pub index: usize,
    pub name: String,
    pub base: Base,
    /// The resolved base image's ID (image bases).
    pub base_image_id: Option<String>,
    pub platform: Platform,
    pub steps: Vec<Step>,
    /// The image config after the last step.
    pub config: ImageConfig,
    pub author: Option<String>,
    /// Stages this one reads (base, COPY --from, mounts), by index.
    pub depends_on: Vec<usize>,
}

impl StagePlan {
    /// The key this stage's chain starts from, given its base stage's final key when it has one.
    pub fn base_key(&self, base_stage_key: Option<&CacheKey>) -> Option<CacheKey> {
        match &self.base {
            Base::Scratch => Some(scratch_key()),
            Base::Image(_) => self
                .base_image_id
                .as_ref()
                .map(|id| image_key(id, &self.platform.to_string())),
            Base::Stage(_) => base_stage_key.copied(),
        }
    }
}

/// A warning for the user, as BuildKit prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanWarning {
    pub line: Option<usize>,
    pub message: String,
}

/// The whole build.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// Stages to build, in a valid order (dependencies first, the target last).
    pub stages: Vec<StagePlan>,
    pub target: usize,
    /// Stage indexes grouped into levels that can build in parallel.
    pub levels: Vec<Vec<usize>>,
    /// Images read by COPY --from or mounts (bases are resolved already).
    pub images: Vec<String>,
    pub warnings: Vec<PlanWarning>,
}

impl BuildPlan {
    pub fn stage(&self, index: usize) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.index == index)
    }
}

/// Plans a parsed Dockerfile.
pub fn plan(
    df: &Dockerfile,
    opts: &BuildOptions,
    resolver: &mut dyn ImageResolver,
) -> Result<BuildPlan, BuildError> {
    let graph = StageGraph::new(df, opts)?;
    let mut p = Planner {
        df,
        opts,
        graph: &graph,
        resolver,
        done: BTreeMap::new(),
        order: Vec::new(),
        used_args: BTreeSet::new(),
        budget: opts.limits.max_total_expansion_bytes,
    };
    p.used_args.extend(graph.meta_arg_names.iter().cloned());
    for &s in &graph.order {
        p.plan_stage(s)?;
    }
    let mut warnings: Vec<PlanWarning> = df
        .warnings
        .iter()
        .map(|w| PlanWarning {
            line: Some(w.line),
            message: w.message.clone(),
        })
        .collect();
    let unused: Vec<&str> = opts
        .build_args
        .keys()
        .map(String::as_str)
        .filter(|k| {
            !p.used_args.contains(*k)
                && !options::PROXY_ARGS.contains(k)
                && !options::PLATFORM_ARGS.contains(k)
        })
        .collect();
    if !unused.is_empty() {
        warnings.push(PlanWarning {
            line: None,
            message: format!(
                "One or more build-args [{}] were not consumed",
                unused.join(" ")
            ),
        });
    }
    let order = std::mem::take(&mut p.order);
    let mut done = std::mem::take(&mut p.done);
    let stages: Vec<StagePlan> = order
        .iter()
        .filter_map(|i| done.remove(i).map(|(plan, _)| plan))
        .collect();
    let levels = levels_of(&stages);
    let mut images = BTreeSet::new();
    for s in &stages {
        for step in &s.steps {
            match &step.action {
                Action::Copy(c) => {
                    if let Source::Image(r) = &c.from {
                        images.insert(r.clone());
                    }
                }
                Action::Run(r) => r.mounts.iter().for_each(|m| {
                    if let Some(Source::Image(i)) = &m.from {
                        images.insert(i.clone());
                    }
                }),
                _ => {}
            }
        }
    }
    Ok(BuildPlan {
        stages,
        target: graph.target,
        levels,
        images: images.into_iter().collect(),
        warnings,
    })
}

fn levels_of(stages: &[StagePlan]) -> Vec<Vec<usize>> {
    let mut level: BTreeMap<usize, usize> = BTreeMap::new();
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for s in stages {
        let l = s
            .depends_on
            .iter()
            .filter_map(|d| level.get(d).map(|l| l + 1))
            .max()
            .unwrap_or(0);
        level.insert(s.index, l);
        if levels.len() <= l {
            levels.resize(l + 1, Vec::new());
        }
        levels[l].push(s.index);
    }
    levels
}

struct Planner<'a> {
    df: &'a Dockerfile,
    opts: &'a BuildOptions,
    graph: &'a StageGraph,
    resolver: &'a mut dyn ImageResolver,
    done: BTreeMap<usize, (StagePlan, StageState)>,
    order: Vec<usize>,
    used_args: BTreeSet<String>,
    budget: usize,
}

impl Planner<'_> {
    fn plan_stage(&mut self, s: usize) -> Result<(), BuildError> {
        if self.done.contains_key(&s) {
            return Ok(());
        }
        let node = &self.graph.stages[s];
        let stage = &self.df.stages[s];
        let from_line = stage.lines.start;
        let platform = node
            .platform
            .clone()
            .unwrap_or_else(|| self.opts.target_platform());
        let (mut state, triggers, base_image_id) = match &node.base {
            Base::Scratch => (
                StageState::from_config(ImageConfig::default(), &platform),
                Vec::new(),
                None,
            ),
            Base::Image(r) => {
                let img = self.resolver.resolve(r, &platform).map_err(|message| {
                    BuildError::at(
                        from_line,
                        BuildErrorKind::Image {
                            reference: r.clone(),
                            message,
                        },
                    )
                })?;
                let triggers = img.config.on_build.clone();
                let mut config = img.config;
                config.on_build.clear();
                (
                    StageState::from_config(config, &platform),
                    triggers,
                    Some(img.id),
                )
            }
            Base::Stage(b) => {
                self.plan_stage(*b)?;
                let (_, parent) = &self.done[b];
                let mut st = parent.inherit();
                st.config.on_build.clear();
                let triggers = self.df.stages[*b]
                    .instructions
                    .iter()
                    .filter_map(|i| match &i.command {
                        Command::OnBuild(o) => Some(o.expression.clone()),
                        _ => None,
                    })
                    .collect();
                (st, triggers, None)
            }
        };
        let mut depends_on: BTreeSet<usize> = BTreeSet::new();
        if let Base::Stage(b) = node.base {
            depends_on.insert(b);
        }
        let mut commands = Vec::new();
        for t in &triggers {
            let (_, cmd) = crate::instructions::parse::parse_single(t).map_err(|e| {
                BuildError::at(
                    from_line,
                    BuildErrorKind::OnBuild {
                        trigger: t.clone(),
                        message: e.kind.to_string(),
                    },
                )
            })?;
            commands.push((
                Lines {
                    start: from_line,
                    end: stage.lines.end,
                },
                t.clone(),
                cmd,
                true,
            ));
        }
        for ins in &stage.instructions {
            commands.push((ins.lines, ins.original.clone(), ins.command.clone(), false));
        }
        // Stages an ONBUILD trigger reads must be planned first.
        let lex = crate::shell::Lexer::new('\\');
        for (lines, _, cmd, _) in &commands {
            for (kind, from) in
                graph::instruction_froms(cmd, &lex).map_err(|k| BuildError::at(lines.start, k))?
            {
                if let graph::DepTarget::Stage(t) =
                    graph::stage_ref(&self.graph.stages, &from, kind)
                        .map_err(|k| BuildError::at(lines.start, k))?
                {
                    if t >= s {
                        return Err(BuildError::at(
                            lines.start,
                            BuildErrorKind::StageUsedBeforeDefined {
                                from: from.clone(),
                                current: node.display_name(),
                            },
                        ));
                    }
                    self.plan_stage(t)?;
                    depends_on.insert(t);
                }
            }
        }
        let mut stepper = Stepper::new(
            self.df.directives.escape,
            self.opts,
            &self.graph.stages,
            &self.graph.global_args,
            &mut state,
            &mut self.budget,
        );
        let mut steps = Vec::with_capacity(commands.len());
        for (lines, original, cmd, onbuild) in &commands {
            let step = stepper
                .step(*lines, original, cmd, *onbuild)
                .map_err(|k| BuildError::at(lines.start, k))?;
            steps.push(step);
        }
        self.used_args.extend(stepper.declared_args());
        let plan = StagePlan {
            index: s,
            name: node.display_name(),
            base: node.base.clone(),
            base_image_id,
            platform,
            steps,
            config: state.config.clone(),
            author: state.author.clone(),
            depends_on: depends_on.into_iter().collect(),
        };
        self.done.insert(s, (plan, state));
        self.order.push(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
