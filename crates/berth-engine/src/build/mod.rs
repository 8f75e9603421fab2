//! `build`: images from a Dockerfile. berth-build plans the build (parse, ARG scoping, the stage
//! graph, each step's cache-key text); this module carries the plan out: every RUN in a berth
//! container on a snapshot of the step before (created by a single-threaded helper process, so
//! the clone never copies a lock another thread holds), COPY/ADD and WORKDIR through fds on the
//! step's overlay in a thread-private mount namespace, each step's writable layer committed to
//! the layer store, a cache keyed by the plan's key chain, and the image registered or exported.
//! It prints nothing: what happens is told to a `BuildProgress`.

mod cache;
mod context;
mod copy;
mod error;
mod fsops;
pub mod helper;
mod image;
mod layer;
mod mounts;
mod resolve;
mod run;
mod sources;
mod stage;
mod work;

pub(crate) use cache::gc_roots;
pub use cache::{CacheItem, CachePrune, CacheUsage};
/// A thread with private mounts and a snapshot mounted there (volume copy-up uses them too).
pub(crate) use copy::{with_private_mounts, Mounted};
pub use error::BuildError;

use crate::container::Engine;
use crate::error::Result;
use berth_image::images::ImageRecord;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The network of RUN steps (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildNetwork {
    /// The default bridge (a RUN reaches the outside as a `berth run` container does).
    #[default]
    Default,
    /// Loopback only.
    None,
    /// The host's own stack.
    Host,
}

impl std::str::FromStr for BuildNetwork {
    type Err = BuildError;
    fn from_str(s: &str) -> std::result::Result<BuildNetwork, BuildError> {
        match s {
            "" | "default" | "bridge" => Ok(BuildNetwork::Default),
            "none" => Ok(BuildNetwork::None),
            "host" => Ok(BuildNetwork::Host),
            _ => Err(BuildError::invalid(format!(
                "network mode {s:?} not supported by berth build (default, none, host)"
            ))),
        }
    }
}

/// Where a `--secret` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// `--secret id=ID,src=FILE` (or `env=VAR`): mounted by `RUN --mount=type=secret,id=ID`, never
/// written to a layer, the history or a cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    pub source: SecretSource,
}

/// `--output`: instead of an image in the store, the final root filesystem as files or a tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutput {
    /// `type=local,dest=DIR`.
    Local(PathBuf),
    /// `type=tar,dest=FILE`.
    Tar(PathBuf),
}

/// Limits of RUN containers (docker build's legacy flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildResources {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// CPUs (from `--cpu-quota` / `--cpu-period`).
    pub cpus: Option<f64>,
    pub cpuset_cpus: Option<String>,
    pub shm_size: Option<i64>,
    pub ulimits: Vec<String>,
}

/// Where the Dockerfile is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DockerfileSource {
    /// `Dockerfile` in the context (or the stdin Dockerfile of a bare-Dockerfile context).
    #[default]
    InContext,
    /// `-f PATH` (relative paths are the caller's to resolve).
    Path(PathBuf),
    /// The Dockerfile's text (`-f -`).
    Text(Vec<u8>),
}

/// A cancellation flag the caller sets (on ctrl-c); the build stops its running step, undoes
/// what it made and returns `BuildError::Cancelled`.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What `berth build` (or the API's `/build`) asks for, besides the context.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub dockerfile: DockerfileSource,
    /// `-t NAME:TAG`, normalized when the image is registered.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `--platform` (only the host's architecture can run RUN steps).
    pub platform: Option<String>,
    pub no_cache: bool,
    /// Pull base images even when the store has them.
    pub pull: bool,
    /// `--label`: set on the final image.
    pub labels: BTreeMap<String, String>,
    pub network: BuildNetwork,
    pub secrets: Vec<Secret>,
    pub outputs: Vec<BuildOutput>,
    pub resources: BuildResources,
    pub cancel: Cancel,
}

/// The build context: a directory, or a stream holding a tar (plain or gzip) or a bare Dockerfile.
pub enum BuildContext {
    Dir(PathBuf),
    Stream(Box<dyn Read + Send>),
}

/// Which stream a RUN line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// What a build tells its progress, as BuildKit's vertexes: a step (`id`) starts and ends, or
/// is cached; a RUN step logs output.
#[derive(Debug)]
pub enum BuildEvent<'a> {
    /// `name` is BuildKit's: `[build 2/5] RUN make`, `[internal] load build context`.
    Started {
        id: usize,
        name: &'a str,
    },
    /// The step was not run: its cache key matched.
    Cached {
        id: usize,
        name: &'a str,
    },
    Log {
        id: usize,
        stream: LogStream,
        data: &'a [u8],
    },
    /// A line about a step in progress (`writing image sha256:… done`).
    Status {
        id: usize,
        text: &'a str,
    },
    Done {
        id: usize,
    },
    Failed {
        id: usize,
        error: &'a str,
    },
    /// A warning for the user (unused build args, deprecated forms).
    Warning(&'a str),
}

/// Where a build reports. Implemented by the CLI (plain lines, a live view, nothing) and the API.
pub trait BuildProgress: Sync {
    fn event(&self, e: BuildEvent<'_>);
}

/// Progress that reports nothing.
pub struct NoProgress;

impl BuildProgress for NoProgress {
    fn event(&self, _: BuildEvent<'_>) {}
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The image registered in the store (none when the build was exported with `--output`).
    pub image: Option<ImageRecord>,
    /// The image's ID (config digest), also for an exported build.
    pub image_id: berth_image::digest::Digest,
    /// Tags given to it, normalized.
    pub tags: Vec<String>,
    /// Steps with a cache key, and how many of them were cached.
    pub steps: usize,
    pub cached: usize,
    pub warnings: Vec<String>,
}

impl Engine {
    /// Builds an image from `context` as `req` asks. RUN steps start a helper process (this
    /// binary, see `helper::entry`): the caller's executable must dispatch it before anything
    /// else, as `berth`'s `main` does.
    pub fn build(
        &self,
        req: &BuildRequest,
        context: BuildContext,
        progress: &dyn BuildProgress,
    ) -> Result<BuildOutcome> {
        work::reclaim_dead(self);
        let _adding = self.store.adding()?;
        let input = context::open(self, req, context)?;
        stage::execute(self, req, &input, progress)
    }

    /// `builder prune`: empties the build cache (records and cache mounts), then removes the
    /// layers and blobs only it kept. Returns the bytes freed.
    pub fn prune_build_cache(&self) -> Result<u64> {
        work::reclaim_dead(self);
        let dropped = cache::Cache::open(self)?.clear()?;
        Ok(dropped + self.collect_garbage()?)
    }

    /// `builder prune --filter until=… --keep-storage SIZE`: what was last used before `until`,
    /// then the least recently used until the cache fits in `keep`; the layers and blobs only
    /// those kept are removed. Returns the bytes freed.
    pub fn prune_build_cache_by(&self, policy: &CachePrune) -> Result<u64> {
        work::reclaim_dead(self);
        let dropped = cache::Cache::open(self)?.prune(self, policy)?;
        Ok(dropped + self.collect_garbage()?)
    }

    /// The build cache's steps, least recently used first (`system df -v`, the API's df).
    pub fn build_cache_items(&self) -> Result<Vec<CacheItem>> {
        cache::Cache::open(self)?.items(self)
    }

    /// What the build cache holds (`system df`).
    pub fn build_cache_usage(&self) -> Result<CacheUsage> {
        cache::Cache::open(self)?.usage(self)
    }
}
