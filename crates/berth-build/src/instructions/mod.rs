//! Typed Dockerfile instructions: each node checked against its instruction's arguments and flags,
//! split into stages at every FROM, with the ARGs before the first FROM kept apart (the global
//! scope). Nothing is expanded here: values stay as written, quotes included, for the planner.

mod flags;
pub mod mount;
pub(crate) mod parse;
pub mod units;

pub use mount::{Mount, MountType, Sharing};
pub use parse::{parse, parse_with_limits};

use crate::parser::{Directives, Heredoc, Warning};

/// First and last Dockerfile line of an instruction (1-based, heredocs included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lines {
    pub start: usize,
    pub end: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub directives: Directives,
    /// ARG instructions before the first FROM.
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    pub warnings: Vec<Warning>,
}

/// One FROM and the instructions up to the next.
#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    pub from: From,
    pub lines: Lines,
    pub original: String,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base as written (may hold `$ARG`s of the global scope).
    pub base: String,
    pub platform: Option<String>,
    /// `AS name`, lowercased.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub lines: Lines,
    /// The instruction's source, continuations joined and trimmed.
    pub original: String,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell(Vec<String>),
    Copy(Copy),
    Add(Add),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    OnBuild(OnBuild),
    Maintainer(String),
}

impl Command {
    /// The instruction's name, upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Shell(_) => "SHELL",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Env(_) => "ENV",
            Command::Label(_) => "LABEL",
            Command::Arg(_) => "ARG",
            Command::Workdir(_) => "WORKDIR",
            Command::User(_) => "USER",
            Command::Expose(_) => "EXPOSE",
            Command::Volume(_) => "VOLUME",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::OnBuild(_) => "ONBUILD",
            Command::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// RUN, CMD and ENTRYPOINT's command: the exec form's words, or the shell form's one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub args: Vec<String>,
    /// Shell form: the image's SHELL runs `args[0]`.
    pub prepend_shell: bool,
    /// Heredoc bodies of a RUN (shell form only).
    pub files: Vec<Heredoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    /// `--mount` values as written; expanded and parsed by the planner.
    pub mounts: Vec<String>,
    /// Each mount's `from=` (read before expansion, for the stage graph).
    pub mount_froms: Vec<Option<String>>,
    pub network: Network,
    pub security: Security,
    /// `--device` values (CDI names), as written.
    pub devices: Vec<String>,
}

/// A heredoc used as a COPY/ADD source (`COPY <<EOF /file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    /// The delimiter, used as the file's name.
    pub path: String,
    pub data: String,
    /// Expand variables in `data` (the delimiter was not quoted).
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesAndDest {
    pub sources: Vec<String>,
    pub inline: Vec<InlineSource>,
    pub dest: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub paths: SourcesAndDest,
    /// `--from=`: a stage name, a stage index or an image.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    /// The sources and destination were a JSON array.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub paths: SourcesAndDest,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
    pub excludes: Vec<String>,
    pub json: bool,
}

/// One `key=value` of ENV or LABEL, value as written (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// The legacy `ENV key value` form.
    pub legacy: bool,
}

/// One name of an ARG, with its default as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub key: String,
    pub default: Option<String>,
}

/// HEALTHCHECK, as the image config holds it (durations in nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBuild {
    /// The trigger's source (`RUN make`), heredoc bodies appended, as the image config records it.
    pub expression: String,
}
