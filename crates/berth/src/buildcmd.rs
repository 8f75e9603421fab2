//! `build` (also `image build` and `buildx build`) and `builder prune`: docker build's flags
//! parsed into the engine's `BuildRequest`, ctrl-c turned into a cancellation, the progress
//! printed (`buildprogress`), the image ID written where asked.

use crate::buildprogress::{Mode, Printer};
use crate::{CliError, CliResult, Ctx};
use berth_engine::build::{
    BuildContext, BuildNetwork, BuildOutput, BuildRequest, BuildResources, DockerfileSource,
    Secret, SecretSource,
};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (format: "name:tag"); repeatable
    #[arg(short, long = "tag", value_name = "NAME:TAG")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; "-" reads it from stdin)
    #[arg(short, long)]
    file: Option<PathBuf>,
    /// Set build-time variables (KEY=VALUE, or KEY to pass the environment's value)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull newer versions of base images
    #[arg(long)]
    pull: bool,
    /// Set metadata for an image (KEY=VALUE); repeatable
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Set the networking mode for the RUN instructions: default, none or host
    #[arg(long, default_value = "default")]
    network: String,
    /// Write the image ID to the file
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Set type of progress output: auto, plain, tty or quiet
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Secret to expose to the build (id=ID,src=FILE or id=ID,env=VAR); repeatable
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    secrets: Vec<String>,
    /// Output destination (type=local,dest=DIR or type=tar,dest=FILE; a bare path is local)
    #[arg(short, long = "output", value_name = "type=local,dest=DIR")]
    outputs: Vec<String>,
    /// Set the target platform (only this machine's architecture can RUN)
    #[arg(long)]
    platform: Option<String>,
    /// Memory limit of RUN steps
    #[arg(short, long)]
    memory: Option<String>,
    /// Swap limit of RUN steps (memory plus swap; -1: unlimited)
    #[arg(long)]
    memory_swap: Option<String>,
    /// CPU shares (relative weight) of RUN steps
    #[arg(short = 'c', long)]
    cpu_shares: Option<u64>,
    /// Limit the CPU CFS period of RUN steps (microseconds)
    #[arg(long)]
    cpu_period: Option<u64>,
    /// Limit the CPU CFS quota of RUN steps (microseconds)
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// CPUs in which RUN steps may run (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Size of /dev/shm of RUN steps
    #[arg(long)]
    shm_size: Option<String>,
    /// Ulimit options of RUN steps (NAME=SOFT[:HARD]); repeatable
    #[arg(long = "ulimit")]
    ulimits: Vec<String>,
    /// Remove intermediate containers (always: berth keeps none)
    #[arg(long, hide = true, default_value_t = true)]
    rm: bool,
    /// Always remove intermediate containers (always: berth keeps none)
    #[arg(long, hide = true)]
    force_rm: bool,
    /// Load the result into the image store (what berth does without --output)
    #[arg(long, hide = true)]
    load: bool,
    /// Build context: a directory, or "-" for a tar (or a Dockerfile) on stdin
    context: String,
}

#[derive(Subcommand)]
pub enum BuildxCommand {
    /// Start a build
    Build(Box<BuildArgs>),
}

#[derive(Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all build cache (berth keeps no other kind)
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation (berth never prompts)
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=24h": only cache last used before then)
    #[arg(long)]
    filter: Vec<String>,
    /// Amount of disk space to keep for cache (the least recently used goes first)
    #[arg(long = "keep-storage", value_name = "bytes")]
    keep_storage: Option<String>,
}

/// `builder prune`.
pub fn prune(ctx: &Ctx, a: PruneArgs) -> Result<(), CliError> {
    let e = ctx.engine()?;
    let freed = if a.filter.is_empty() && a.keep_storage.is_none() {
        e.prune_build_cache()
    } else {
        berth_engine::build::CachePrune::parse(&a.filter, a.keep_storage.as_deref())
            .and_then(|policy| e.prune_build_cache_by(&policy))
    }
    .map_err(CliError::status1)?;
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(freed)
    );
    Ok(())
}

/// `build`: 0 on success, 1 when the build failed, 130 when it was interrupted.
pub fn build(ctx: &Ctx, a: BuildArgs) -> CliResult {
    let mode = Mode::parse(&a.progress, a.quiet).map_err(CliError::usage)?;
    let (req, context) = request(&a)?;
    let cancel = req.cancel.clone();
    watch_signals(move || cancel.cancel());
    let e = ctx.engine()?;
    let printer = Printer::new(mode);
    let stop = Arc::new(AtomicBool::new(false));
    printer.spawn_ticker(stop.clone());
    let result = e.build(&req, context, printer.as_ref());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    printer.finish();
    let out = match result {
        Ok(o) => o,
        Err(err) if err.is_cancelled() => return Err(CliError::new(err.to_string(), 130)),
        Err(err) => return Err(CliError::new(err.to_string(), 1)),
    };
    if let Some(f) = &a.iidfile {
        std::fs::write(f, out.image_id.to_string())
            .map_err(|x| CliError::new(format!("--iidfile {}: {x}", f.display()), 1))?;
    }
    if a.quiet {
        println!("{}", out.image_id);
    }
    Ok(0)
}

/// The flags as a request, and the context they name.
fn request(a: &BuildArgs) -> Result<(BuildRequest, BuildContext), CliError> {
    let stdin_dockerfile = a.file.as_deref() == Some(std::path::Path::new("-"));
    if stdin_dockerfile && a.context == "-" {
        return Err(CliError::usage(
            "invalid argument: can't use stdin for both build context and dockerfile",
        ));
    }
    let dockerfile = match &a.file {
        Some(_) if stdin_dockerfile => {
            let mut text = Vec::new();
            std::io::stdin()
                .take((8 << 20) + 1)
                .read_to_end(&mut text)
                .map_err(|x| CliError::new(format!("reading the Dockerfile from stdin: {x}"), 1))?;
            DockerfileSource::Text(text)
        }
        Some(p) => DockerfileSource::Path(p.clone()),
        None => DockerfileSource::InContext,
    };
    let context = if a.context == "-" {
        BuildContext::Stream(Box::new(std::io::stdin()))
    } else {
        BuildContext::Dir(PathBuf::from(&a.context))
    };
    let req = BuildRequest {
        dockerfile,
        tags: a.tags.clone(),
        build_args: build_args(&a.build_args)?,
        target: a.target.clone(),
        platform: a.platform.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        labels: pairs(&a.labels, "--label")?,
        network: a
            .network
            .parse::<BuildNetwork>()
            .map_err(|e| CliError::usage(e.to_string()))?,
        secrets: a
            .secrets
            .iter()
            .map(|s| secret(s))
            .collect::<Result<_, _>>()?,
        outputs: a
            .outputs
            .iter()
            .map(|o| output(o))
            .collect::<Result<_, _>>()?,
        resources: resources(a)?,
        cancel: Default::default(),
    };
    Ok((req, context))
}

/// `--build-arg K=V`, or `K` alone: the environment's value, if set (as Docker).
fn build_args(args: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

fn pairs(list: &[String], flag: &str) -> Result<BTreeMap<String, String>, CliError> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Ok((kv.clone(), String::new())),
        })
        .collect::<Result<BTreeMap<_, _>, CliError>>()
        .map_err(|e: CliError| CliError::usage(format!("{flag}: {}", e.message)))
}

/// `id=ID,src=FILE`, `id=ID,env=VAR`, `type=file|env`; `id=ID` alone reads the variable ID.
fn secret(s: &str) -> Result<Secret, CliError> {
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for field in s.split(',') {
        let (k, v) = field.split_once('=').ok_or_else(|| {
            CliError::usage(format!("invalid secret {s:?}: expected key=value fields"))
        })?;
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" => kind = Some(v.to_string()),
            _ => {
                return Err(CliError::usage(format!(
                    "invalid secret {s:?}: unexpected key {k:?}"
                )))
            }
        }
    }
    let id = id
        .or_else(|| {
            src.as_ref()
                .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        })
        .ok_or_else(|| CliError::usage(format!("invalid secret {s:?}: no id")))?;
    let source = match (kind.as_deref(), src, env) {
        (Some("env"), Some(v), _) | (_, None, Some(v)) => SecretSource::Env(v),
        (_, Some(p), _) => SecretSource::File(PathBuf::from(p)),
        (Some("file"), None, None) => {
            return Err(CliError::usage(format!("invalid secret {s:?}: no src")))
        }
        (_, None, None) => SecretSource::Env(id.clone()),
    };
    Ok(Secret { id, source })
}

/// `type=local,dest=DIR`, `type=tar,dest=FILE` (`-`: stdout), or a bare path (local).
fn output(s: &str) -> Result<BuildOutput, CliError> {
    if !s.contains('=') {
        return Ok(BuildOutput::Local(PathBuf::from(s)));
    }
    let (mut kind, mut dest) = (None, None);
    for field in s.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(v.to_string()),
            _ => {
                return Err(CliError::usage(format!(
                    "invalid output {s:?}: berth build knows type= and dest="
                )))
            }
        }
    }
    let dest = dest.ok_or_else(|| CliError::usage(format!("invalid output {s:?}: no dest")))?;
    let path = if dest == "-" {
        PathBuf::from("/dev/stdout")
    } else {
        PathBuf::from(&dest)
    };
    match kind.as_deref() {
        Some("local") => Ok(BuildOutput::Local(path)),
        Some("tar") => Ok(BuildOutput::Tar(path)),
        Some(other) => Err(CliError::usage(format!(
            "invalid output {s:?}: type {other:?} is not supported (local, tar)"
        ))),
        None => Err(CliError::usage(format!("invalid output {s:?}: no type"))),
    }
}

fn size(flag: &str, v: &Option<String>) -> Result<Option<i64>, CliError> {
    v.as_deref()
        .map(|s| {
            if s == "-1" {
                return Ok(-1);
            }
            berth_engine::options::parse_bytes(s)
                .map_err(|e| CliError::usage(format!("invalid {flag} {s:?}: {e}")))
        })
        .transpose()
}

fn resources(a: &BuildArgs) -> Result<BuildResources, CliError> {
    let cpus = match (a.cpu_quota, a.cpu_period) {
        (Some(q), p) if q > 0 => Some(q as f64 / p.unwrap_or(100_000) as f64),
        _ => None,
    };
    Ok(BuildResources {
        memory: size("--memory", &a.memory)?,
        memory_swap: size("--memory-swap", &a.memory_swap)?,
        cpu_shares: a.cpu_shares,
        cpus,
        cpuset_cpus: a.cpuset_cpus.clone(),
        shm_size: size("--shm-size", &a.shm_size)?,
        ulimits: a.ulimits.clone(),
    })
}

/// ctrl-c, SIGTERM and SIGHUP cancel the build (it then undoes what it made) instead of killing
/// berth. They are blocked here, before any thread exists, and taken by one thread.
fn watch_signals(on_signal: impl Fn() + Send + 'static) {
    // SAFETY: plain signal-mask manipulation on zeroed sets, before any other thread exists.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || loop {
        let mut sig = 0;
        // SAFETY: waits on the set blocked above; `sig` receives the signal number.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            on_signal();
        }
    });
}
