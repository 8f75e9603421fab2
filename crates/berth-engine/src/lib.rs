//! berth's engine: containers as users see them. An image and Docker's flags become a record, a
//! snapshot, an OCI spec and a runtime container; a foreground `run` or a detached monitor watches
//! it, logs its output, records its exit and cleans up. It parses no command line and prints nothing.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod attach;
pub mod attach_client;
pub mod build;
pub mod changes;
pub mod commit;
pub mod container;
pub mod copy;
mod copyup;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod exec_spawn;
pub mod export;
pub mod filters;
pub mod health;
pub mod holds;
pub mod hostconfig;
pub mod images;
pub mod inspect;
pub mod launch;
pub mod lifecycle;
pub mod listing;
pub mod logs;
pub mod logstream;
pub mod monitor;
pub mod mountspec;
pub mod names;
pub mod network;
pub mod observe;
pub mod ocispec;
pub mod options;
pub mod path_stat;
pub mod prune;
pub mod reconcile;
pub mod record;
pub mod rename;
pub mod rootless;
pub mod start;
pub mod stats;
pub(crate) mod storedir;
pub mod system;
pub mod top;
pub mod update;
pub mod usage;
pub mod user;
pub mod userns;
pub mod volume;
pub mod volume_opts;

pub use container::Engine;
pub use error::{EngineError, Failure};
