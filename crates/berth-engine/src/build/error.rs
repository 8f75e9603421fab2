//! The failures of a build, each one sentence naming the Dockerfile line or the object and the
//! cause, over a variant that keeps its source: the frontend's parse and plan errors, the
//! context's, a step that exited non-zero (with its code), a step whose work failed (with the
//! engine's error), a cancelled build.

use crate::error::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile could not be parsed (`Dockerfile:7: unknown instruction: RUNN`).
    #[error(transparent)]
    Parse(#[from] berth_build::ParseError),
    /// The build could not be planned (stages, args, base images).
    #[error(transparent)]
    Plan(#[from] berth_build::BuildError),
    /// The build context could not be read.
    #[error(transparent)]
    Context(#[from] berth_build::context::ContextError),
    /// A file of the request (the Dockerfile, a secret, an output) could not be used.
    #[error("{what}: {source}")]
    Input {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A request that cannot be built as asked.
    #[error("{0}")]
    Invalid(String),
    /// A RUN step's process exited non-zero (BuildKit's words).
    #[error(
        "Dockerfile:{line}: process {command:?} did not complete successfully: exit code: {code}"
    )]
    StepExit {
        line: usize,
        command: String,
        code: i32,
    },
    /// A step's work failed.
    #[error("Dockerfile:{line}: {instruction}: {source}")]
    Step {
        line: usize,
        instruction: String,
        #[source]
        source: Box<EngineError>,
    },
    /// Something the Dockerfile asks for that berth does not do.
    #[error("Dockerfile:{line}: {what} is not supported by berth build")]
    Unsupported { line: usize, what: String },
    /// The caller cancelled the build (ctrl-c): everything it made was undone.
    #[error("build cancelled")]
    Cancelled,
}

impl BuildError {
    pub(crate) fn invalid(m: impl Into<String>) -> BuildError {
        BuildError::Invalid(m.into())
    }

    pub(crate) fn input(what: impl std::fmt::Display, source: std::io::Error) -> BuildError {
        BuildError::Input {
            what: what.to_string(),
            source,
        }
    }

    /// Whether this is a cancellation (the CLI exits 130 for it).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, BuildError::Cancelled)
    }
}

impl EngineError {
    /// Whether this is a build the caller cancelled.
    pub fn is_cancelled(&self) -> bool {
        match self {
            EngineError::Build(b) => b.is_cancelled(),
            EngineError::Context { source, .. } => source.is_cancelled(),
            _ => false,
        }
    }
}
