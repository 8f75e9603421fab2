//! The errors of parsing and planning a build. Every error about the Dockerfile names its line
//! (`Dockerfile:7: unknown instruction: RUNN`); the messages follow BuildKit's wording.

use crate::shell::ShellError;

/// A Dockerfile that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile:{line}: {kind}")]
pub struct ParseError {
    /// First line of the instruction (1-based).
    pub line: usize,
    /// Last line of the instruction (its heredocs included).
    pub end_line: usize,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, end_line: usize, kind: ParseErrorKind) -> ParseError {
        ParseError {
            line,
            end_line: end_line.max(line),
            kind,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("unknown instruction: {name}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownInstruction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown flag: --{flag}")]
    UnknownFlag { flag: String },
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("file with no instructions")]
    NoInstructions,
    #[error("the Dockerfile is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("dockerfile line greater than max allowed size of {limit}")]
    LineTooLong { limit: usize },
    #[error("heredoc larger than {limit} bytes")]
    HeredocTooLarge { limit: usize },
    #[error("more than {limit} instructions")]
    TooManyInstructions { limit: usize },
    #[error("the Dockerfile is not valid UTF-8")]
    InvalidUtf8,
    #[error(transparent)]
    Shell(#[from] ShellError),
    /// An instruction's own rule, in BuildKit's words (`COPY requires at least two arguments…`).
    #[error("{0}")]
    Invalid(String),
}

/// A build that cannot be planned: bad arguments, stages, expansions or ONBUILD triggers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", line.map(|l| format!("Dockerfile:{l}: ")).unwrap_or_default())]
pub struct BuildError {
    /// The Dockerfile line the error is about, when there is one.
    pub line: Option<usize>,
    pub kind: BuildErrorKind,
}

#[allow(dead_code)] // used by the planner
impl BuildError {
    pub(crate) fn at(line: usize, kind: BuildErrorKind) -> BuildError {
        BuildError {
            line: Some(line),
            kind,
        }
    }

    pub(crate) fn global(kind: BuildErrorKind) -> BuildError {
        BuildError { line: None, kind }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildErrorKind {
    #[error("the Dockerfile contains no stages to build")]
    NoStages,
    #[error("target stage {name:?} could not be found{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownTarget {
        name: String,
        suggestion: Option<String>,
    },
    #[error("base name ({0}) should not be blank")]
    BlankBaseName(String),
    #[error("invalid stage index {0}")]
    InvalidStageIndex(usize),
    #[error("circular dependency detected on stage: {0}")]
    Cycle(String),
    #[error(
        "cannot copy from stage {from:?}, it needs to be defined before current stage {current:?}"
    )]
    StageUsedBeforeDefined { from: String, current: String },
    #[error("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")]
    FromExpansion,
    #[error("invalid platform {0:?}")]
    Platform(String),
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error("ONBUILD trigger {trigger:?}: {message}")]
    OnBuild { trigger: String, message: String },
    #[error("expansions of this build produce more than {0} bytes")]
    ExpansionBudget(usize),
    #[error("image {reference:?}: {message}")]
    Image { reference: String, message: String },
    #[error("{0}")]
    Invalid(String),
}
