//! RUN, COPY and ADD: the steps that make layers. Heredocs become shell text or mounted scripts,
//! mounts are expanded and tied to their sources, COPY paths are expanded and normalized.

use super::keys::{copy_component, is_git, is_url, original_display, run_component};
use super::Stepper;
use crate::error::BuildErrorKind;
use crate::instructions::{mount, Add, Copy, Run};
use crate::parser::{chomp_heredoc, parse_heredoc};
use crate::plan::graph::DepKind;
use crate::plan::values;
use crate::plan::{Action, CopyStep, InlineFile, RunMount, RunStep, Source, Step};
use crate::shell::Lexer;

type R<T> = Result<T, BuildErrorKind>;

impl Stepper<'_> {
    pub(super) fn run(&mut self, r: &Run, step: &mut Step) -> R<()> {
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

    pub(super) fn copy(&mut self, c: &Copy, step: &mut Step) -> R<()> {
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

    pub(super) fn add(&mut self, a: &Add, step: &mut Step) -> R<()> {
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
