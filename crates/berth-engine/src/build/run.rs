//! A RUN step, this process's side: the step's snapshot and mounts prepared, the job written
//! for the helper (`helper.rs`), the helper started with the container's output on two pipes
//! (each line told to the progress, at most 2 MiB a step, as BuildKit clips) and its report read
//! on a third; a cancelled build asks the helper to kill the container. The snapshot's writable
//! layer becomes the step's layer.

use super::layer::{commit_upper, LayerRef};
use super::mounts::{JobBind, JobOverlay};
use super::stage::Builder;
use super::work::Work;
use super::{BuildError, BuildEvent, BuildNetwork, LogStream};
use crate::error::{EngineError, Failure, Result};
use crate::options::RunOptions;
use berth_build::plan::RunStep;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// A step's output beyond this is not shown (the step still runs to its end).
const LOG_LIMIT: usize = 2 << 20;

/// What the helper needs to run one step.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StepJob {
    /// The runtime container's ID, the snapshot's key.
    pub id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: BuildNetwork,
    pub options: RunOptions,
    pub binds: Vec<JobBind>,
    pub overlays: Vec<JobOverlay>,
    pub tmpfs: Vec<(String, String)>,
}

/// How the step ended, as the helper tells it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub(crate) enum StepReport {
    Exited { code: i32 },
    Failed { kind: Failure, message: String },
    Interrupted,
}

/// Runs `run` on `layers` and commits what it changed; None when it changed nothing.
pub(crate) fn run(
    b: &Builder<'_>,
    layers: &[LayerRef],
    run: &RunStep,
    vertex: usize,
    line: usize,
) -> std::result::Result<Option<LayerRef>, BuildError> {
    let step = |e: EngineError| BuildError::Step {
        line,
        instruction: "RUN".into(),
        source: Box::new(e),
    };
    let mut work = Work::new(b.engine).map_err(step)?;
    work.snapshot("", &super::layer::chain(layers))
        .map_err(step)?;
    let prepared = super::mounts::prepare(b, &mut work, &run.mounts, line)?;
    let mut binds = prepared.binds.clone();
    for f in &run.inline_files {
        let path = work.dir.join(format!("pipe-{}", binds.len()));
        write_script(&path, &f.data).map_err(step)?;
        binds.push(JobBind {
            source: path,
            in_root: None,
            destination: format!("/dev/pipes/{}", f.name),
            rw: false,
        });
    }
    let mut env: Vec<String> = run
        .env
        .iter()
        .chain(&run.proxy_env)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.extend(prepared.env.iter().cloned());
    let network = match run.network {
        berth_build::instructions::Network::Default => b.req.network,
        berth_build::instructions::Network::None => BuildNetwork::None,
        berth_build::instructions::Network::Host => BuildNetwork::Host,
    };
    let job = StepJob {
        id: work.key.clone(),
        args: run.args.clone(),
        env,
        cwd: run.workdir.clone(),
        user: run.user.clone(),
        network,
        options: run_options(b, network, run),
        binds,
        overlays: prepared.overlays.clone(),
        tmpfs: prepared.tmpfs.clone(),
    };
    let path = work.dir.join("job.json");
    crate::record::write_atomic(&path, &serde_json::to_vec(&job).expect("a job serializes"))
        .map_err(|x| step(EngineError::io(path.display(), x)))?;
    let report = spawn_helper(b, &work, vertex).map_err(step)?;
    drop(prepared);
    match report {
        StepReport::Exited { code: 0 } => {}
        StepReport::Exited { code } => {
            return Err(BuildError::StepExit {
                line,
                command: run.args.join(" "),
                code,
            })
        }
        StepReport::Failed { kind, message } => {
            return Err(step(EngineError::Reported { kind, message }))
        }
        StepReport::Interrupted => return Err(BuildError::Cancelled),
    }
    commit_upper(b.engine, &work.upper(), layers.last()).map_err(step)
}

/// `--security=insecure` and the build's limits, as `run` options.
fn run_options(b: &Builder<'_>, network: BuildNetwork, run: &RunStep) -> RunOptions {
    let r = &b.req.resources;
    RunOptions {
        network: match network {
            BuildNetwork::Default => "bridge".into(),
            BuildNetwork::None => "none".into(),
            BuildNetwork::Host => "host".into(),
        },
        memory: r.memory,
        memory_swap: r.memory_swap,
        cpu_shares: r.cpu_shares,
        cpus: r.cpus,
        cpuset_cpus: r.cpuset_cpus.clone(),
        shm_size: r.shm_size,
        ulimits: r.ulimits.clone(),
        privileged: run.security == berth_build::instructions::Security::Insecure,
        ..RunOptions::default()
    }
}

fn write_script(path: &std::path::Path, data: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, data).map_err(|x| EngineError::io(path.display(), x))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|x| EngineError::io(path.display(), x))
}

/// Starts the helper on the step's directory and waits for its report, streaming the output.
fn spawn_helper(b: &Builder<'_>, work: &Work<'_>, vertex: usize) -> Result<StepReport> {
    let e = b.engine;
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|x| EngineError::io("pipe", x.into()))?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("berth")
        .arg("--root")
        .arg(&e.root)
        .arg("--runroot")
        .arg(&e.runroot)
        .arg(super::helper::COMMAND)
        .arg(&work.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let w = report_w.as_raw_fd();
    // SAFETY: between fork and exec the child only calls dup2, fcntl and prctl, which are
    // async-signal-safe, on a descriptor this process keeps open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if w == super::helper::REPORT_FD {
                libc::fcntl(w, libc::F_SETFD, 0);
            } else if libc::dup2(w, super::helper::REPORT_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // If this build dies, the helper kills the step's container and removes it.
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|x| EngineError::io("starting the build step helper", x))?;
    drop(report_w);
    let clip = std::sync::atomic::AtomicUsize::new(0);
    let (out, err) = (child.stdout.take(), child.stderr.take());
    std::thread::scope(|s| {
        let progress = b.progress;
        let clip = &clip;
        if let Some(out) = out {
            s.spawn(move || stream(out, LogStream::Stdout, vertex, progress, clip));
        }
        if let Some(err) = err {
            s.spawn(move || stream(err, LogStream::Stderr, vertex, progress, clip));
        }
        wait_cancellable(&mut child, &|| b.stopping())
    })?;
    let mut report = Vec::new();
    std::fs::File::from(report_r)
        .take(1 << 20)
        .read_to_end(&mut report)
        .map_err(|x| EngineError::io("reading the step helper's report", x))?;
    serde_json::from_slice(&report).map_err(|_| {
        if b.stopping() {
            return EngineError::Build(BuildError::Cancelled);
        }
        EngineError::msg("the build step helper died before it reported")
    })
}

/// Copies one stream of the step's output to the progress, up to the step's log limit.
fn stream(
    mut r: impl Read,
    which: LogStream,
    vertex: usize,
    progress: &dyn super::BuildProgress,
    clip: &std::sync::atomic::AtomicUsize,
) {
    use std::sync::atomic::Ordering;
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let before = clip.fetch_add(n, Ordering::Relaxed);
        if before < LOG_LIMIT {
            let take = n.min(LOG_LIMIT - before);
            progress.event(BuildEvent::Log {
                id: vertex,
                stream: which,
                data: &buf[..take],
            });
            if before + n >= LOG_LIMIT {
                progress.event(BuildEvent::Log {
                    id: vertex,
                    stream: LogStream::Stderr,
                    data: b"\n[output clipped, log limit 2MiB reached]\n",
                });
            }
        }
    }
}

/// Waits for the helper; when the build stops (cancelled, or another stage failed) it is told
/// to kill the container.
fn wait_cancellable(child: &mut std::process::Child, stopping: &dyn Fn() -> bool) -> Result<()> {
    let pid = child.id() as libc::pid_t;
    // SAFETY: pidfd_open on our own child, which is not reaped before `child.wait` below.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a new fd we own when the call succeeded.
    let pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as i32) });
    let mut told = false;
    loop {
        if stopping() && !told {
            // SAFETY: signalling our own, not yet reaped, child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            told = true;
        }
        match &pidfd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, 100) };
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
        if child
            .try_wait()
            .map_err(|x| EngineError::io("waiting for the build step helper", x))?
            .is_some()
        {
            return Ok(());
        }
    }
}
