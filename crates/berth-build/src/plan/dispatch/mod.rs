//! One instruction to one step, as BuildKit dispatches it: which values are expanded and in which
//! scope (the stage's environment: image Env, ENVs, and ARGs with values), how ARGs take build
//! args, globals or defaults, the shell wrapping of RUN/CMD/ENTRYPOINT, and each config change.

use super::config::{ConfigChange, HealthConfig, ImageConfig};
use super::graph::{stage_ref, DepKind, DepTarget, StageNode};
use super::options::BuildOptions;
use super::values;
use super::{Action, Platform, Source, Step};
use crate::error::BuildErrorKind;
use crate::instructions::{Command, CommandLine, Lines};
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
}

mod fs;
mod keys;

use keys::{component, go_list, pairs};
