//! The engine's error type: a sentence for people that names the object and the cause, over a
//! variant code can decide on — which kind of failure it is (Docker's exit codes 125, 126, 127
//! come from `Failure`, never from the text) and the source it came from (a runtime error with
//! its errno, a store error, an io::Error). Context is added where it is known.

use crate::record::RecordError;
use crate::user::UserError;
use berth_image::archive::ArchiveError;
use berth_image::pull::PullError;
use berth_image::snapshot::SnapshotError;
use berth_image::store::StoreError;

/// Why a container could not run, as Docker's exit codes tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// berth itself failed (125).
    Engine,
    /// The command exists but cannot be invoked (126).
    CannotInvoke,
    /// The command was not found (127).
    NotFound,
}

impl Failure {
    pub fn exit_code(self) -> u8 {
        match self {
            Failure::Engine => 125,
            Failure::CannotInvoke => 126,
            Failure::NotFound => 127,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    User(#[from] UserError),
    /// An ordinary user's namespaces (rootless berth).
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
    /// `--userns`, `--uidmap/--gidmap` and berth's range of subordinate ids.
    #[error(transparent)]
    Userns(#[from] crate::userns::UsernsError),
    #[error(transparent)]
    Network(#[from] berth_net::NetworkError),
    #[error(transparent)]
    Endpoint(#[from] berth_net::EndpointError),
    /// Rootless networking (pasta).
    #[error(transparent)]
    UserMode(#[from] crate::network::UserModeError),
    /// A `build` that failed (its Dockerfile, context or a step).
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    /// A flag the OCI spec cannot be made from (Docker's 125).
    #[error(transparent)]
    Spec(#[from] crate::ocispec::SpecError),
    /// A file or system call failed while doing `context`.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// What was being done when `source` failed (`pull busybox: …`).
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<EngineError>,
    },
    /// A failure reported by another berth process (the monitor), with its kind.
    #[error("{message}")]
    Reported { kind: Failure, message: String },
    /// The container is not running (or paused) for an operation that needs it to.
    #[error("{0}")]
    NotRunning(String),
    /// A sentence: an invalid option, a state that forbids the operation.
    #[error("{0}")]
    Msg(String),
}

/// A bad `--filter` is the user's sentence (Docker's "Invalid filter 'x'").
impl From<crate::filters::FilterError> for EngineError {
    fn from(e: crate::filters::FilterError) -> EngineError {
        EngineError::Msg(e.to_string())
    }
}

impl EngineError {
    pub fn msg(m: impl Into<String>) -> EngineError {
        EngineError::Msg(m.into())
    }

    /// A failure from below that has no variant of its own, kept as its sentence.
    pub fn other(e: impl std::fmt::Display) -> EngineError {
        EngineError::Msg(e.to_string())
    }

    /// `context` failed with `source`.
    pub fn io(context: impl std::fmt::Display, source: std::io::Error) -> EngineError {
        EngineError::Io {
            context: context.to_string(),
            source,
        }
    }

    /// This error, as the failure of `context`.
    pub fn context(self, context: impl std::fmt::Display) -> EngineError {
        EngineError::Context {
            context: context.to_string(),
            source: Box::new(self),
        }
    }

    /// Which kind of failure this is, for exit codes.
    pub fn failure(&self) -> Failure {
        use berth_runtime::error::ErrorKind;
        match self {
            EngineError::Runtime(e) => match e.kind() {
                ErrorKind::CommandNotFound => Failure::NotFound,
                ErrorKind::CannotInvoke => Failure::CannotInvoke,
                ErrorKind::Other => Failure::Engine,
            },
            EngineError::Reported { kind, .. } => *kind,
            EngineError::Context { source, .. } => source.failure(),
            _ => Failure::Engine,
        }
    }

    /// Docker's exit code for a command that failed this way (125, 126, 127).
    pub fn exit_code(&self) -> u8 {
        self.failure().exit_code()
    }

    /// Whether the container or image named does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            EngineError::Record(RecordError::NoSuch(_)) => true,
            EngineError::Store(StoreError::NoSuchImage(_)) => true,
            EngineError::Network(berth_net::NetworkError::NotFound(_)) => true,
            EngineError::Endpoint(berth_net::EndpointError::Network(
                berth_net::NetworkError::NotFound(_),
            )) => true,
            EngineError::Context { source, .. } => source.is_not_found(),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl From<berth_image::content::ContentError> for EngineError {
    fn from(e: berth_image::content::ContentError) -> EngineError {
        EngineError::Store(e.into())
    }
}

/// Adds what was being done to a failure from below.
pub trait Context<T> {
    fn ctx(self, what: impl std::fmt::Display) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| EngineError::io(what, e))
    }
}
