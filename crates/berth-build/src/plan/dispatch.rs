//! One instruction to one step, as BuildKit dispatches it: which values are expanded and in which
//! scope (the stage's environment: image Env, ENVs, and ARGs with values), how ARGs take build
//! args, globals or defaults, the shell wrapping of RUN/CMD/ENTRYPOINT, and each config change.

use super::config::{ConfigChange, HealthConfig, ImageConfig};
use super::graph::{stage_ref, DepKind, DepTarget, StageNode};
use super::options::BuildOptions;
use super::values;
use super::{Action, CopyStep, InlineFile, Platform, RunMount, RunStep, Source, Step};
use crate::error::BuildErrorKind;
use crate::instructions::{mount, Add, Command, CommandLine, Copy, Lines, Run};
use crate::parser::{chomp_heredoc, go_quote, parse_heredoc};
use crate::shell::Lexer;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage's state between instructions.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    /// The build-time environment (image Env, ENV and ARG values), later entries win.
    env: Vec<(String, String)>,
    /// ARGs declared in this stage (and its base stages), with their values.
    args: Vec<(String, Option<String>)>,
    pub(crate) config: ImageConfig,
    pub(crate) author: Option<String>,
    cmd_set: bool,
    os: String,
}

impl StageState {
    pub(crate) fn from_config(mut config: ImageConfig, platform: &Platform) -> StageState {
        if config.env_get("PATH").is_none() && platform.os != "windows" {
            config.env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let env = config
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect();
        StageState {
            env,
            args: Vec::new(),
            config,
            author: None,
            cmd_set: false,
            os: platform.os.clone(),
        }
    }

    /// A stage built on this one starts from its state (ARGs in scope stay in scope).
    pub(crate) fn inherit(&self) -> StageState {
        StageState {
            cmd_set: false,
            ..self.clone()
        }
    }

    fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_string(), v.to_string()));
    }

    fn shell(&self) -> Vec<String> {
        if !self.config.shell.is_empty() {
            return self.config.shell.clone();
        }
        if self.os == "windows" {
            vec!["cmd".into(), "/S".into(), "/C".into()]
        } else {
            vec!["/bin/sh".into(), "-c".into()]
        }
    }

    fn with_shell(&self, args: &[String]) -> Vec<String> {
        let mut out = self.shell();
        out.push(args.join(" "));
        out
    }
}

pub(crate) struct Stepper<'a> {
    lex: Lexer,
    opts: &'a BuildOptions,
    stages: &'a [StageNode],
    global: &'a [(String, String)],
    st: &'a mut StageState,
    budget: &'a mut usize,
    declared: Vec<String>,
}

type R<T> = Result<T, BuildErrorKind>;

impl<'a> Stepper<'a> {
    pub(crate) fn new(
        escape: char,
        opts: &'a BuildOptions,
        stages: &'a [StageNode],
        global: &'a [(String, String)],
        st: &'a mut StageState,
        budget: &'a mut usize,
    ) -> Stepper<'a> {
        let mut lex = Lexer::new(escape);
        lex.max_word = opts.limits.max_word_bytes;
        lex.max_work = opts.limits.max_pattern_work;
        Stepper {
            lex,
            opts,
            stages,
            global,
            st,
            budget,
            declared: Vec::new(),
        }
    }

    pub(crate) fn declared_args(&self) -> Vec<String> {
        self.declared.clone()
    }

    fn charge(&mut self, n: usize) -> R<()> {
        match self.budget.checked_sub(n) {
            Some(left) => {
                *self.budget = left;
                Ok(())
            }
            None => Err(BuildErrorKind::ExpansionBudget(
                self.opts.limits.max_total_expansion_bytes,
            )),
        }
    }

    fn expand(&mut self, word: &str) -> R<String> {
        let r = self.lex.process_word(word, &self.st.env)?.result;
        self.charge(r.len())?;
        Ok(r)
    }

    fn expand_opt(&mut self, word: &Option<String>) -> R<Option<String>> {
        word.as_ref().map(|w| self.expand(w)).transpose()
    }

    pub(crate) fn step(
        &mut self,
        lines: Lines,
        original: &str,
        cmd: &Command,
        onbuild: bool,
    ) -> R<Step> {
        let mut step = Step {
            lines,
            onbuild,
            display: original.to_string(),
            action: Action::Metadata,
            config_change: None,
            created_by: String::new(),
            empty_layer: true,
            key_component: None,
        };
        let change = match cmd {
            Command::Env(kvs) => {
                let mut out = Vec::new();
                for kv in kvs {
                    let (k, v) = (self.expand(&kv.key)?, self.expand(&kv.value)?);
                    self.st.set_env(&k, &v);
                    out.push((k, v));
                }
                step.created_by = format!("ENV {}", pairs(&out));
                ConfigChange::Env(out)
            }
            Command::Label(kvs) => {
                let mut out = Vec::new();
                for kv in kvs {
                    out.push((self.expand(&kv.key)?, self.expand(&kv.value)?));
                }
                step.created_by = format!("LABEL {}", pairs(&out));
                ConfigChange::Labels(out)
            }
            Command::Arg(decls) => {
                let mut shown = Vec::new();
                for d in decls {
                    let value = match (self.opts.build_args.get(&d.key), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => Some(self.expand(def)?),
                        (None, None) => self
                            .global
                            .iter()
                            .rev()
                            .find(|(k, _)| *k == d.key)
                            .map(|(_, v)| v.clone()),
                    };
                    if let Some(v) = &value {
                        self.st.set_env(&d.key, v);
                    }
                    shown.push(format!(
                        "{}{}",
                        d.key,
                        value.as_ref().map(|v| format!("={v}")).unwrap_or_default()
                    ));
                    self.st.args.retain(|(k, _)| *k != d.key);
                    self.st.args.push((d.key.clone(), value));
                    self.declared.push(d.key.clone());
                }
                step.created_by = format!("ARG {}", shown.join(" "));
                return Ok(step);
            }
            Command::Workdir(p) => {
                let p = self.expand(p)?;
                let wd = values::normalize_workdir(&self.st.config.working_dir, &p);
                step.created_by = format!("WORKDIR {wd}");
                if wd != "/" {
                    step.empty_layer = false;
                    step.key_component = Some(component(&["WORKDIR", &wd, &self.st.config.user]));
                    step.action = Action::Mkdir {
                        path: wd.clone(),
                        user: self.st.config.user.clone(),
                    };
                }
                ConfigChange::WorkingDir(wd)
            }
            Command::User(u) => {
                let u = self.expand(u)?;
                step.created_by = format!("USER {u}");
                ConfigChange::User(u)
            }
            Command::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    for w in self.lex.process_words(p, &self.st.env)? {
                        out.extend(values::parse_ports(&w).map_err(BuildErrorKind::Invalid)?);
                    }
                }
                step.created_by = format!("EXPOSE [{}]", out.join(" "));
                ConfigChange::ExposedPorts(out)
            }
            Command::Volume(vols) => {
                let mut out = Vec::new();
                for v in vols {
                    let v = self.expand(v)?;
                    if v.is_empty() {
                        return Err(BuildErrorKind::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    out.push(v);
                }
                step.created_by = format!("VOLUME [{}]", out.join(" "));
                ConfigChange::Volumes(out)
            }
            Command::StopSignal(s) => {
                let s = self.expand(s)?;
                values::check_signal(&s).map_err(BuildErrorKind::Invalid)?;
                step.created_by = format!("STOPSIGNAL {s}");
                ConfigChange::StopSignal(s)
            }
            Command::Cmd(c) => {
                let args = self.command_args(c);
                self.st.cmd_set = true;
                step.created_by = format!("CMD {}", go_list(&args));
                ConfigChange::Cmd(args)
            }
            Command::Entrypoint(c) => {
                let args = self.command_args(c);
                step.created_by = format!("ENTRYPOINT {}", go_list(&args));
                ConfigChange::Entrypoint {
                    entrypoint: args,
                    reset_cmd: !self.st.cmd_set,
                }
            }
            Command::Shell(s) => {
                step.created_by = format!("SHELL [{}]", s.join(" "));
                ConfigChange::Shell(s.clone())
            }
            Command::Healthcheck(h) => {
                step.created_by = format!("HEALTHCHECK {}", go_list(&h.test));
                ConfigChange::Healthcheck(HealthConfig::from(h))
            }
            Command::OnBuild(o) => ConfigChange::OnBuild(o.expression.clone()),
            Command::Maintainer(m) => {
                step.created_by = format!("MAINTAINER {m}");
                ConfigChange::Author(m.clone())
            }
            Command::Run(r) => {
                self.run(r, &mut step)?;
                return Ok(step);
            }
            Command::Copy(c) => {
                self.copy(c, &mut step)?;
                return Ok(step);
            }
            Command::Add(a) => {
                self.add(a, &mut step)?;
                return Ok(step);
            }
        };
        change.apply(&mut self.st.config, &mut self.st.author);
        step.config_change = Some(change);
        Ok(step)
    }

    fn command_args(&self, c: &CommandLine) -> Vec<String> {
        if c.prepend_shell {
            self.st.with_shell(&c.args)
        } else {
            c.args.clone()
        }
    }

    fn source_of(&self, from: &str, kind: DepKind) -> R<Source> {
        Ok(match stage_ref(self.stages, from, kind)? {
            DepTarget::Stage(i) => Source::Stage(i),
            DepTarget::Image(r) => Source::Image(r),
        })
    }

    fn run(&mut self, r: &Run, step: &mut Step) -> R<()> {
        let mut args = r.command.args.clone();
        let mut inline_files = Vec::new();
        let files = &r.command.files;
        if let Some(first) = files.first() {
            if args.len() != 1 || !r.command.prepend_shell {
                return Err(BuildErrorKind::Invalid(format!(
                    "parsing produced an invalid run command: {args:?}"
                )));
            }
            if parse_heredoc(&args[0]).is_some() {
                let data = if first.chomp {
                    chomp_heredoc(&first.content)
                } else {
                    first.content.clone()
                };
                if self.st.os != "windows" && data.starts_with("#!") {
                    inline_files.push(InlineFile {
                        name: first.name.clone(),
                        data,
                        mode: 0o755,
                    });
                    args = vec![format!("/dev/pipes/{}", first.name)];
                } else {
                    args = vec![data];
                }
            } else {
                let mut b = args[0].clone();
                for f in files {
                    b.push('\n');
                    b.push_str(&f.content);
                    b.push_str(&f.name);
                }
                args = vec![b];
            }
        }
        if r.command.prepend_shell {
            args = self.st.with_shell(&args);
        }
        let mut mounts = Vec::new();
        for raw in &r.mounts {
            let mut err = None;
            let m = {
                let lex = &self.lex;
                let env = &self.st.env;
                mount::parse_mount(raw, &mut |v| {
                    lex.process_word(v, env).map(|e| e.result).map_err(|e| {
                        err = Some(e.clone());
                        e.message
                    })
                })
            };
            let m = match (m, err) {
                (Ok(m), _) => m,
                (Err(_), Some(e)) => return Err(e.into()),
                (Err(m), None) => return Err(BuildErrorKind::Invalid(m)),
            };
            let from = match (&m.from, m.kind) {
                (Some(f), _) => Some(self.source_of(f, DepKind::MountFrom)?),
                (None, mount::MountType::Bind) => Some(Source::Context),
                _ => None,
            };
            mounts.push(RunMount { mount: m, from });
        }
        let run = RunStep {
            args,
            env: self.st.env.clone(),
            proxy_env: self.opts.proxy_env(),
            workdir: if self.st.config.working_dir.is_empty() {
                "/".into()
            } else {
                self.st.config.working_dir.clone()
            },
            user: self.st.config.user.clone(),
            mounts,
            network: r.network,
            security: r.security,
            devices: r.devices.clone(),
            inline_files,
        };
        let build_args: Vec<String> = self
            .st
            .args
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    self.st
                        .env
                        .iter()
                        .rev()
                        .find(|(ek, _)| ek == k)
                        .map(|(_, v)| v.as_str())
                        .or(v.as_deref())
                        .unwrap_or("")
                )
            })
            .collect();
        let prefix = if build_args.is_empty() {
            String::new()
        } else {
            format!("|{} {} ", build_args.len(), build_args.join(" "))
        };
        step.created_by = format!("RUN {prefix}{} # buildkit", run.args.join(" "));
        step.display = original_display(&self.lex, &step.display, &self.st.env);
        step.empty_layer = false;
        step.key_component = Some(run_component(&run));
        step.action = Action::Run(Box::new(run));
        Ok(())
    }

    fn inline(&mut self, srcs: &[crate::instructions::InlineSource]) -> R<Vec<InlineFile>> {
        let mut out = Vec::new();
        for s in srcs {
            let data = if s.expand {
                let mut lex = Lexer::new('\\');
                lex.skip_process_quotes = true;
                lex.max_word = self.opts.limits.max_word_bytes;
                let d = lex.process_word(&s.data, &self.st.env)?.result;
                self.charge(d.len())?;
                d
            } else {
                s.data.clone()
            };
            out.push(InlineFile {
                name: s.path.clone(),
                data,
                mode: 0o644,
            });
        }
        Ok(out)
    }

    fn copy(&mut self, c: &Copy, step: &mut Step) -> R<()> {
        let from = match &c.from {
            Some(f) => self.source_of(f, DepKind::CopyFrom)?,
            None => Source::Context,
        };
        let mut cs = self.copy_common(
            false,
            from,
            &c.paths,
            &c.chown,
            &c.chmod,
            c.link,
            &c.excludes,
        )?;
        cs.parents = c.parents;
        for s in &cs.sources {
            if is_url(s) {
                return Err(BuildErrorKind::Invalid(
                    "source can't be a URL for COPY".into(),
                ));
            }
            if is_git(s) {
                return Err(BuildErrorKind::Invalid(
                    "source can't be a git ref for COPY".into(),
                ));
            }
        }
        self.finish_copy(cs, step)
    }

    fn add(&mut self, a: &Add, step: &mut Step) -> R<()> {
        let mut cs = self.copy_common(
            true,
            Source::Context,
            &a.paths,
            &a.chown,
            &a.chmod,
            a.link,
            &a.excludes,
        )?;
        cs.checksum = self.expand_opt(&a.checksum)?;
        if cs.checksum.is_some() {
            if cs.sources.len() != 1 {
                return Err(BuildErrorKind::Invalid(
                    "checksum can't be specified for multiple sources".into(),
                ));
            }
            if !is_url(&cs.sources[0]) && !is_git(&cs.sources[0]) {
                return Err(BuildErrorKind::Invalid(
                    "checksum requires HTTP(S) or Git sources".into(),
                ));
            }
        }
        let (remote, local): (Vec<String>, Vec<String>) =
            cs.sources.drain(..).partition(|s| is_url(s) || is_git(s));
        cs.remote = remote;
        cs.sources = local;
        cs.unpack = a.unpack.unwrap_or(true);
        cs.keep_git_dir = a.keep_git_dir;
        self.finish_copy(cs, step)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_common(
        &mut self,
        add: bool,
        from: Source,
        paths: &crate::instructions::SourcesAndDest,
        chown: &Option<String>,
        chmod: &Option<String>,
        link: bool,
        excludes: &[String],
    ) -> R<CopyStep> {
        let chown = self.expand_opt(chown)?.filter(|s| !s.is_empty());
        let chmod = self.expand_opt(chmod)?.filter(|s| !s.is_empty());
        if let Some(m) = &chmod {
            values::check_chmod(m).map_err(BuildErrorKind::Invalid)?;
        }
        let mut sources = Vec::new();
        for s in &paths.sources {
            sources.push(self.expand(s)?);
        }
        let dest_raw = self.expand(&paths.dest)?;
        let dest = values::normalize_dest(&self.st.config.working_dir, &dest_raw);
        Ok(CopyStep {
            add,
            from,
            sources,
            remote: Vec::new(),
            inline: self.inline(&paths.inline)?,
            dest,
            chown,
            chmod,
            link,
            parents: false,
            excludes: excludes.to_vec(),
            unpack: false,
            keep_git_dir: None,
            checksum: None,
        })
    }

    fn finish_copy(&mut self, cs: CopyStep, step: &mut Step) -> R<()> {
        let name = if cs.add { "ADD" } else { "COPY" };
        let mut by = name.to_string();
        if cs.parents {
            by.push_str(" --parents");
        }
        if let Some(c) = &cs.chown {
            by.push_str(&format!(" --chown={c}"));
        }
        if let Some(c) = &cs.chmod {
            by.push_str(&format!(" --chmod={c}"));
        }
        for s in cs.remote.iter().chain(&cs.sources) {
            by.push_str(&format!(" {s}"));
        }
        for f in &cs.inline {
            by.push_str(&format!(" <<{}", f.name));
        }
        step.created_by = format!("{by} {} # buildkit", cs.dest);
        step.display = original_display(&self.lex, &step.display, &self.st.env);
        step.empty_layer = false;
        step.key_component = Some(copy_component(&cs));
        step.action = Action::Copy(Box::new(cs));
        Ok(())
    }
}

fn pairs(kvs: &[(String, String)]) -> String {
    kvs.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" ")
    )
}

/// BuildKit shows RUN and COPY with the variables it knows expanded, the others as written.
fn original_display(lex: &Lexer, original: &str, env: &dyn crate::shell::Env) -> String {
    let mut l = lex.clone();
    l.raw_quotes = true;
    l.skip_unset_env = true;
    l.process_word(original, env)
        .map(|e| e.result)
        .unwrap_or_else(|_| original.to_string())
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn is_git(s: &str) -> bool {
    s.starts_with("git@")
        || s.starts_with("git://")
        || (is_url(s) && (s.ends_with(".git") || s.contains(".git#")))
}

/// A canonical, unambiguous rendering of a step's inputs.
fn component(parts: &[&str]) -> String {
    serde_json::to_string(parts).unwrap_or_default()
}

fn source_str(s: &Source) -> String {
    match s {
        Source::Context => "context".into(),
        Source::Stage(i) => format!("stage:{i}"),
        Source::Image(r) => format!("image:{r}"),
    }
}

fn run_component(r: &RunStep) -> String {
    let mounts: Vec<String> = r
        .mounts
        .iter()
        .map(|m| {
            format!(
                "{:?}|{}",
                m.mount,
                m.from.as_ref().map(source_str).unwrap_or_default()
            )
        })
        .collect();
    let v = serde_json::json!({
        "op": "RUN",
        "args": r.args,
        "env": r.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "workdir": r.workdir,
        "user": r.user,
        "mounts": mounts,
        "network": format!("{:?}", r.network),
        "security": format!("{:?}", r.security),
        "devices": r.devices,
        "files": r.inline_files.iter().map(|f| (f.name.clone(), f.data.clone())).collect::<Vec<_>>(),
    });
    v.to_string()
}

fn copy_component(c: &CopyStep) -> String {
    let v = serde_json::json!({
        "op": if c.add { "ADD" } else { "COPY" },
        "from": source_str(&c.from),
        "sources": c.sources,
        "remote": c.remote,
        "inline": c.inline.iter().map(|f| (f.name.clone(), f.data.clone())).collect::<Vec<_>>(),
        "dest": c.dest,
        "chown": c.chown,
        "chmod": c.chmod,
        "link": c.link,
        "parents": c.parents,
        "excludes": c.excludes,
        "unpack": c.unpack,
        "keep_git_dir": c.keep_git_dir,
        "checksum": c.checksum,
    });
    v.to_string()
}
