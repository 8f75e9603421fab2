//! Health checks, as Docker runs them: the check (the image's `HEALTHCHECK` under the
//! `--health-*` flags) is fixed at create; whoever watches the container (a detached container's
//! watcher, a foreground `run`) probes it on a thread — each probe a `berth __probe` child that
//! execs the test in the container — and records `State.Health` (status, failing streak, the last
//! five results). A probe that outlives its timeout is killed and counts as a failure.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::options::HealthOptions;
use berth_image::manifest::HealthConfig;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Docker's defaults for a check that does not say.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;
/// The results kept, and the output kept of each (Docker's numbers).
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// The check a container runs, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    /// Docker's form: `["CMD", arg…]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

impl HealthCheck {
    /// The command the probe runs in the container.
    fn command(&self) -> Vec<String> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
            }
            Some((_, rest)) => rest.to_vec(),
            None => Vec::new(),
        }
    }

    /// Docker's `Config.Healthcheck` (durations in nanoseconds).
    pub fn config(&self) -> HealthConfig {
        let ns = |d: Duration| d.as_nanos() as i64;
        HealthConfig {
            test: self.test.clone(),
            interval: ns(self.interval),
            timeout: ns(self.timeout),
            start_period: ns(self.start_period),
            start_interval: ns(self.start_interval),
            retries: i64::from(self.retries),
        }
    }
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

/// One probe's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

fn duration(flag: &str, v: &Option<String>) -> Result<Option<Duration>> {
    v.as_deref()
        .map(|s| match berth_sys::go::parse_duration(s) {
            Ok(ns) if ns >= 0 => Ok(Duration::from_nanos(ns as u64)),
            Ok(_) => Err(EngineError::msg(format!("{flag}: {s:?} is negative"))),
            Err(e) => Err(EngineError::msg(format!("{flag}: {e}"))),
        })
        .transpose()
}

/// The container's check from the image's and the flags (`--no-healthcheck` and a `NONE` test
/// mean none). Durations under 1 ms are refused as Docker refuses them.
pub fn resolve(image: Option<&HealthConfig>, o: &HealthOptions) -> Result<Option<HealthCheck>> {
    if o.disable {
        if o.cmd.is_some() {
            return Err(EngineError::msg(
                "--no-healthcheck conflicts with --health-* options",
            ));
        }
        return Ok(None);
    }
    let test = match (&o.cmd, image) {
        (Some(cmd), _) => vec!["CMD-SHELL".to_string(), cmd.clone()],
        (None, Some(h)) => h.test.clone(),
        (None, None) => return Ok(None),
    };
    if test.first().is_none_or(|t| t == "NONE") {
        return Ok(None);
    }
    if !matches!(test[0].as_str(), "CMD" | "CMD-SHELL") || test.len() < 2 {
        return Err(EngineError::msg(format!(
            "invalid healthcheck test {test:?}: expected [\"CMD\", …] or [\"CMD-SHELL\", command]"
        )));
    }
    let from_image = |ns: Option<i64>| {
        ns.filter(|n| *n > 0)
            .map(|n| Duration::from_nanos(n as u64))
    };
    let pick =
        |flag: &str, v: &Option<String>, img: Option<i64>, default: Duration| -> Result<Duration> {
            let d = duration(flag, v)?.or(from_image(img)).unwrap_or(default);
            if !d.is_zero() && d < Duration::from_millis(1) {
                return Err(EngineError::msg(format!("{flag} cannot be less than 1ms")));
            }
            Ok(d)
        };
    let check = HealthCheck {
        test,
        interval: pick(
            "--health-interval",
            &o.interval,
            image.map(|h| h.interval),
            DEFAULT_INTERVAL,
        )?,
        timeout: pick(
            "--health-timeout",
            &o.timeout,
            image.map(|h| h.timeout),
            DEFAULT_TIMEOUT,
        )?,
        start_period: pick(
            "--health-start-period",
            &o.start_period,
            image.map(|h| h.start_period),
            Duration::ZERO,
        )?,
        start_interval: pick(
            "--health-start-interval",
            &o.start_interval,
            image.map(|h| h.start_interval),
            DEFAULT_START_INTERVAL,
        )?,
        retries: o
            .retries
            .or(image
                .and_then(|h| u32::try_from(h.retries).ok())
                .filter(|r| *r > 0))
            .unwrap_or(DEFAULT_RETRIES),
    };
    if check.interval.is_zero() || check.timeout.is_zero() {
        return Err(EngineError::msg(
            "--health-interval and --health-timeout must be positive",
        ));
    }
    Ok(Some(check))
}

/// Probing, stopped when dropped.
pub struct Prober {
    stop: Arc<AtomicBool>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// Starts probing the container whose init is `pid`, if it has a check.
    pub(crate) fn start_probing(
        &self,
        id: &str,
        pid: i32,
        check: Option<&HealthCheck>,
    ) -> Option<Prober> {
        let check = check?.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let probe = Probe {
            root: self.root.clone(),
            runroot: self.runroot.clone(),
            id: id.to_string(),
            pid,
            check,
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name("health".into())
            .spawn(move || probe.run())
            .ok()?;
        Some(Prober { stop })
    }
}

struct Probe {
    root: PathBuf,
    runroot: PathBuf,
    id: String,
    pid: i32,
    check: HealthCheck,
    stop: Arc<AtomicBool>,
}

impl Probe {
    fn run(self) {
        let Ok(engine) = Engine::open(&self.root, &self.runroot) else {
            return;
        };
        let started = Instant::now();
        let mut health = Health {
            status: "starting".into(),
            ..Health::default()
        };
        self.record(&engine, &health);
        loop {
            let in_start = started.elapsed() < self.check.start_period;
            let wait = if in_start && health.status == "starting" {
                self.check.start_interval.min(self.check.interval)
            } else {
                self.check.interval
            };
            if !self.sleep(wait) {
                return;
            }
            let result = self.probe(&engine);
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let in_start = started.elapsed() < self.check.start_period;
            apply(&mut health, result, &self.check, in_start);
            self.record(&engine, &health);
        }
    }

    /// Sleeps `d` in short steps; false once told to stop.
    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
        }
        !self.stop.load(Ordering::Relaxed)
    }

    /// One probe: `berth __probe ID CMD…` with its output captured, killed past the timeout.
    fn probe(&self, engine: &Engine) -> HealthResult {
        let start = berth_sys::time::now_rfc3339_nanos();
        let (code, output) = match probe_child(engine, &self.id, &self.check) {
            Ok(r) => r,
            Err(e) => (-1, e),
        };
        HealthResult {
            start,
            end: berth_sys::time::now_rfc3339_nanos(),
            exit_code: code,
            output,
        }
    }

    /// Writes the state into the record while this run of the container is the recorded one.
    fn record(&self, engine: &Engine, health: &Health) {
        let Ok(_lock) = engine.records.lock(&self.id) else {
            return;
        };
        let Ok(mut rec) = engine.records.load(&self.id) else {
            return;
        };
        if rec.state.pid != self.pid || rec.state.status != "running" {
            return;
        }
        rec.state.health = Some(health.clone());
        let _ = engine.records.save(&rec);
    }
}

/// Folds one result into the state: a success is healthy; failures count once the start period
/// is over, and `retries` of them in a row are unhealthy.
fn apply(health: &mut Health, r: HealthResult, check: &HealthCheck, in_start: bool) {
    if r.exit_code == 0 {
        health.status = "healthy".into();
        health.failing_streak = 0;
    } else if !in_start || health.status != "starting" {
        health.failing_streak += 1;
        if health.failing_streak >= check.retries {
            health.status = "unhealthy".into();
        }
    }
    health.log.push(r);
    let excess = health.log.len().saturating_sub(MAX_LOG);
    health.log.drain(..excess);
}

/// What `berth __probe` writes after the command's own output: its exit status. The probe's
/// status travels in its output because the process that waits for the container reaps every
/// child, the probe included.
pub(crate) const TRAILER: &str = "\u{0}berth-probe-exit=";

/// Runs the probe child and returns its exit code and (bounded) output. On timeout the probe is
/// killed through a pidfd (never a recycled pid) and the result is a failure.
fn probe_child(
    engine: &Engine,
    id: &str,
    check: &HealthCheck,
) -> std::result::Result<(i32, String), String> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::{Command, Stdio};
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds were just returned by pipe2 and are owned here alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let w2 = w.try_clone().map_err(|e| format!("pipe: {e}"))?;
    let child = {
        let mut cmd = Command::new(Path::new("/proc/self/exe"));
        cmd.arg("--root")
            .arg(&engine.root)
            .arg("--runroot")
            .arg(&engine.runroot)
            .arg(crate::monitor::PROBE_COMMAND)
            .arg(id)
            .args(check.command())
            .stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .stderr(Stdio::from(w2));
        cmd.spawn()
            .map_err(|e| format!("starting the probe: {e}"))?
        // The Command (and our copies of the pipe's write end) is dropped here.
    };
    // SAFETY: pidfd_open on our own child's pid; it fails (ESRCH) if it is already gone.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::c_int, 0) };
    // SAFETY: a successful pidfd_open returned an fd we own.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd as i32) });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut file = std::fs::File::from(r);
        let (mut head, mut tail) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 4096];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = MAX_OUTPUT.saturating_sub(head.len());
            head.extend_from_slice(&buf[..n.min(room)]);
            tail.extend_from_slice(&buf[..n]);
            let excess = tail.len().saturating_sub(64);
            tail.drain(..excess);
        }
        let _ = tx.send((head, tail));
    });
    let Ok((head, tail)) = rx.recv_timeout(check.timeout) else {
        if let Some(fd) = &pidfd {
            use std::os::fd::AsRawFd;
            // SAFETY: pidfd_send_signal on a pidfd we own; it names exactly our probe.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    0,
                    0,
                )
            };
        }
        return Ok((
            -1,
            format!("Health check exceeded timeout ({:?})", check.timeout),
        ));
    };
    drop(child);
    let tail = String::from_utf8_lossy(&tail).into_owned();
    let code = tail
        .rsplit_once(TRAILER)
        .and_then(|(_, c)| c.trim().parse::<i32>().ok())
        .unwrap_or(-1);
    let mut output = String::from_utf8_lossy(&head).into_owned();
    if let Some(i) = output.find(TRAILER) {
        output.truncate(i);
    }
    Ok((code, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(f: impl FnOnce(&mut HealthOptions)) -> HealthOptions {
        let mut o = HealthOptions::default();
        f(&mut o);
        o
    }

    #[test]
    fn flags_override_the_image_and_defaults_are_dockers() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 5_000_000_000,
            ..HealthConfig::default()
        };
        let c = resolve(Some(&image), &HealthOptions::default())
            .unwrap()
            .unwrap();
        assert_eq!(c.test, ["CMD", "true"]);
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!((c.timeout, c.retries), (DEFAULT_TIMEOUT, 3));
        let c = resolve(
            Some(&image),
            &opts(|o| {
                o.cmd = Some("test -f /ok".into());
                o.interval = Some("1s".into());
                o.retries = Some(2);
            }),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.test, ["CMD-SHELL", "test -f /ok"]);
        assert_eq!(c.command(), ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!((c.interval, c.retries), (Duration::from_secs(1), 2));
        assert!(resolve(Some(&image), &opts(|o| o.disable = true))
            .unwrap()
            .is_none());
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        };
        assert!(resolve(Some(&none), &HealthOptions::default())
            .unwrap()
            .is_none());
        assert!(resolve(
            None,
            &opts(|o| {
                o.cmd = Some("x".into());
                o.interval = Some("10us".into());
            })
        )
        .is_err());
        assert!(resolve(
            None,
            &opts(|o| {
                o.cmd = Some("x".into());
                o.timeout = Some("soon".into());
            })
        )
        .is_err());
    }

    #[test]
    fn results_fold_into_dockers_states() {
        let check = HealthCheck {
            test: vec!["CMD".into(), "x".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            start_period: Duration::ZERO,
            start_interval: DEFAULT_START_INTERVAL,
            retries: 2,
        };
        let r = |code| HealthResult {
            exit_code: code,
            ..HealthResult::default()
        };
        let mut h = Health {
            status: "starting".into(),
            ..Health::default()
        };
        apply(&mut h, r(1), &check, true);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        apply(&mut h, r(1), &check, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 1));
        apply(&mut h, r(0), &check, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        apply(&mut h, r(1), &check, false);
        apply(&mut h, r(1), &check, false);
        assert_eq!(h.status, "unhealthy");
        for _ in 0..10 {
            apply(&mut h, r(1), &check, false);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }
}
