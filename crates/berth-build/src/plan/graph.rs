//! The stage graph: global ARGs resolved, every FROM expanded, the dependencies of each stage (its
//! base stage, `COPY --from`, `RUN --mount=from=`), the target, the stages it needs (others are
//! pruned), a build order, and the groups of stages that can build in parallel.

use std::collections::{BTreeMap, BTreeSet};

use super::options::{BuildOptions, Platform};
use crate::error::{BuildError, BuildErrorKind};
use crate::instructions::{units::suggest, ArgDecl, Command, Dockerfile};
use crate::shell::Lexer;

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (as expanded from the Dockerfile).
    Image(String),
}

/// Where a dependency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepKind {
    From,
    CopyFrom,
    MountFrom,
}

/// One stage's use of another stage or of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub kind: DepKind,
    pub line: usize,
    pub target: DepTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepTarget {
    Stage(usize),
    Image(String),
}

/// One stage after FROM expansion.
#[derive(Debug, Clone)]
pub struct StageNode {
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    /// `FROM --platform=`, expanded.
    pub platform: Option<Platform>,
    pub deps: Vec<Dep>,
}

impl StageNode {
    /// The name BuildKit shows: the stage's name or `stage-N`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// The stages of a build and their order.
#[derive(Debug, Clone)]
pub struct StageGraph {
    pub stages: Vec<StageNode>,
    pub target: usize,
    /// Stages the target needs, in a valid build order (the target last).
    pub order: Vec<usize>,
    /// `order` grouped: every stage of a group depends only on earlier groups.
    pub levels: Vec<Vec<usize>>,
    /// The global scope after the meta ARGs (platform args included).
    pub global_args: Vec<(String, String)>,
    /// Every ARG name declared before the first FROM.
    pub meta_arg_names: BTreeSet<String>,
}

fn lookup_name(stages: &[StageNode], name: &str) -> Option<usize> {
    let lower = name.to_lowercase();
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
}

/// Resolves the meta ARGs: a build arg wins, else the default expanded in the scope so far.
fn meta_args(
    df: &Dockerfile,
    lex: &Lexer,
    args: &mut Vec<(String, String)>,
    opts: &BuildOptions,
) -> Result<BTreeSet<String>, BuildError> {
    let mut names = BTreeSet::new();
    for ins in &df.meta_args {
        let Command::Arg(decls) = &ins.command else {
            continue;
        };
        for ArgDecl { key, default } in decls {
            names.insert(key.clone());
            let value = match (opts.build_args.get(key), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => {
                    let e = lex
                        .process_word(d, args)
                        .map_err(|e| BuildError::at(ins.lines.start, e.into()))?;
                    Some(e.result)
                }
                (None, None) => None,
            };
            if let Some(v) = value {
                args.retain(|(k, _)| k != key);
                args.push((key.clone(), v));
            }
        }
    }
    Ok(names)
}

impl StageGraph {
    pub fn new(df: &Dockerfile, opts: &BuildOptions) -> Result<StageGraph, BuildError> {
        if df.stages.is_empty() {
            return Err(BuildError::global(BuildErrorKind::NoStages));
        }
        let mut lex = Lexer::new(df.directives.escape);
        lex.max_word = opts.limits.max_word_bytes;
        lex.max_work = opts.limits.max_pattern_work;
        let target_name = opts
            .target
            .clone()
            .or_else(|| df.stages.last().and_then(|s| s.from.name.clone()))
            .unwrap_or_default();
        let mut global = opts.default_args(&target_name);
        let meta_arg_names = meta_args(df, &lex, &mut global, opts)?;

        let mut stages: Vec<StageNode> = Vec::with_capacity(df.stages.len());
        for st in &df.stages {
            let at = |k: BuildErrorKind| BuildError::at(st.lines.start, k);
            let base_name = lex
                .process_word(&st.from.base, &global)
                .map_err(|e| at(e.into()))?
                .result;
            if base_name.is_empty() {
                return Err(at(BuildErrorKind::BlankBaseName(st.from.base.clone())));
            }
            let platform = match &st.from.platform {
                None => None,
                Some(p) => {
                    let v = lex
                        .process_word(p, &global)
                        .map_err(|e| at(e.into()))?
                        .result;
                    if v.is_empty() {
                        return Err(at(BuildErrorKind::Invalid(format!(
                            "empty platform value from expression {p}"
                        ))));
                    }
                    Some(Platform::parse(&v).map_err(|_| at(BuildErrorKind::Platform(v.clone())))?)
                }
            };
            // Only stages defined earlier can be a base, matched by their exact (lowercase) name.
            let base = match stages
                .iter()
                .find(|s| s.name.as_deref() == Some(base_name.as_str()))
            {
                Some(s) => Base::Stage(s.index),
                None if base_name == "scratch" => Base::Scratch,
                None => Base::Image(base_name),
            };
            let mut deps = Vec::new();
            if let Base::Stage(i) = base {
                deps.push(Dep {
                    kind: DepKind::From,
                    line: st.lines.start,
                    target: DepTarget::Stage(i),
                });
            }
            stages.push(StageNode {
                index: st.index,
                name: st.from.name.clone(),
                base,
                platform,
                deps,
            });
        }
        for (st, ds) in df.stages.iter().zip(0..) {
            for ins in &st.instructions {
                for (kind, from) in instruction_froms(&ins.command, &lex)
                    .map_err(|k| BuildError::at(ins.lines.start, k))?
                {
                    let target = stage_ref(&stages, &from, kind)
                        .map_err(|k| BuildError::at(ins.lines.start, k))?;
                    stages[ds].deps.push(Dep {
                        kind,
                        line: ins.lines.start,
                        target,
                    });
                }
            }
        }
        let target = match &opts.target {
            None => stages.len() - 1,
            Some(t) => lookup_name(&stages, t).ok_or_else(|| {
                let names: Vec<String> = stages.iter().filter_map(|s| s.name.clone()).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                BuildError::global(BuildErrorKind::UnknownTarget {
                    name: t.clone(),
                    suggestion: suggest(t, &refs, true),
                })
            })?,
        };
        detect_cycle(&stages)?;
        let (order, levels) = order_and_levels(&stages, target)?;
        Ok(StageGraph {
            stages,
            target,
            order,
            levels,
            global_args: global,
            meta_arg_names,
        })
    }

    /// Images the needed stages use: bases, `COPY --from` and mount sources.
    pub fn images(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        for &i in &self.order {
            let s = &self.stages[i];
            if let Base::Image(r) = &s.base {
                out.insert(r.clone());
            }
            for d in &s.deps {
                if let DepTarget::Image(r) = &d.target {
                    out.insert(r.clone());
                }
            }
        }
        out.into_iter().collect()
    }
}

/// The `--from` references of one instruction (not expanded: variables are refused).
pub(crate) fn instruction_froms(
    cmd: &Command,
    lex: &Lexer,
) -> Result<Vec<(DepKind, String)>, BuildErrorKind> {
    let mut out = Vec::new();
    match cmd {
        Command::Copy(c) => {
            if let Some(from) = &c.from {
                let plain = lex
                    .process_word(from, &crate::shell::NoEnv)
                    .map_err(BuildErrorKind::Shell)?
                    .result;
                if &plain != from {
                    return Err(BuildErrorKind::FromExpansion);
                }
                out.push((DepKind::CopyFrom, from.clone()));
            }
        }
        Command::Run(r) => {
            for f in r.mount_froms.iter().flatten() {
                out.push((DepKind::MountFrom, f.clone()));
            }
        }
        _ => {}
    }
    Ok(out)
}

/// A `--from` value: a stage index (COPY only), a stage name, or an image.
pub(crate) fn stage_ref(
    stages: &[StageNode],
    from: &str,
    kind: DepKind,
) -> Result<DepTarget, BuildErrorKind> {
    if kind == DepKind::CopyFrom {
        if let Ok(i) = from.parse::<i64>() {
            return match usize::try_from(i).ok().filter(|i| *i < stages.len()) {
                Some(i) => Ok(DepTarget::Stage(i)),
                None => Err(BuildErrorKind::InvalidStageIndex(i.max(0) as usize)),
            };
        }
    }
    Ok(match lookup_name(stages, from) {
        Some(i) => DepTarget::Stage(i),
        None => DepTarget::Image(from.to_string()),
    })
}

fn detect_cycle(stages: &[StageNode]) -> Result<(), BuildError> {
    // 0 unvisited, 1 on the path, 2 done.
    let mut state = vec![0u8; stages.len()];
    for start in 0..stages.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (s, ref mut next)) = stack.last_mut() {
            let deps: Vec<&Dep> = stages[s].deps.iter().collect();
            if *next < deps.len() {
                let d = deps[*next];
                *next += 1;
                if let DepTarget::Stage(t) = d.target {
                    match state[t] {
                        1 => {
                            return Err(BuildError::at(
                                d.line,
                                BuildErrorKind::Cycle(stages[t].display_name()),
                            ));
                        }
                        0 => {
                            state[t] = 1;
                            stack.push((t, 0));
                        }
                        _ => {}
                    }
                }
            } else {
                state[s] = 2;
                stack.pop();
            }
        }
    }
    Ok(())
}

/// The stages reachable from the target in file order (every dependency is on an earlier stage
/// or was refused), and the parallel levels.
fn order_and_levels(
    stages: &[StageNode],
    target: usize,
) -> Result<(Vec<usize>, Vec<Vec<usize>>), BuildError> {
    let mut needed = vec![false; stages.len()];
    let mut todo = vec![target];
    while let Some(s) = todo.pop() {
        if std::mem::replace(&mut needed[s], true) {
            continue;
        }
        for d in &stages[s].deps {
            if let DepTarget::Stage(t) = d.target {
                if t >= s {
                    return Err(BuildError::at(
                        d.line,
                        BuildErrorKind::StageUsedBeforeDefined {
                            from: stages[t].display_name(),
                            current: stages[s].display_name(),
                        },
                    ));
                }
                todo.push(t);
            }
        }
    }
    let order: Vec<usize> = (0..stages.len()).filter(|&i| needed[i]).collect();
    let mut level: BTreeMap<usize, usize> = BTreeMap::new();
    for &s in &order {
        let l = stages[s]
            .deps
            .iter()
            .filter_map(|d| match d.target {
                DepTarget::Stage(t) => level.get(&t).map(|l| l + 1),
                DepTarget::Image(_) => None,
            })
            .max()
            .unwrap_or(0);
        level.insert(s, l);
    }
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for &s in &order {
        let l = level[&s];
        if levels.len() <= l {
            levels.resize(l + 1, Vec::new());
        }
        levels[l].push(s);
    }
    Ok((order, levels))
}
