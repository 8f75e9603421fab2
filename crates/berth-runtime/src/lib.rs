//! berth's OCI runtime library: a bundle's `config.json` becomes an isolated, limited process.
//! It owns namespaces, the root filesystem, cgroups (through `berth-cgroups`), capabilities,
//! seccomp (through `berth-seccomp`), hooks, the console and one container's state. It knows
//! nothing of images, registries or networks.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

// The binary's command line (Cargo has no binary-only dependencies).
use clap as _;

pub mod cgjoin;
pub mod console;
pub mod create;
pub mod defaults;
pub mod devices;
pub mod error;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod id;
pub mod idmap;
pub mod init;
pub mod mountopts;
pub mod namespaces;
pub mod notify;
pub mod ops;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod signals;
pub mod spec;
pub mod state;
pub mod sync;
pub mod ttyproxy;

pub use error::{Error, Result};

/// Writes one line to stderr, ignoring failures (a closed stderr must never abort the runtime
/// halfway through a container's life, as `eprintln!` would).
pub fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Where `trace` lines go: set once by the binary (`--debug`, `--log`, `--log-format`).
pub type DebugSink = Box<dyn Fn(&str) + Send + Sync>;

static DEBUG_SINK: std::sync::OnceLock<DebugSink> = std::sync::OnceLock::new();

/// Sends the phase trace to `sink` (the binary's `--debug` log) from now on.
pub fn set_debug_sink(sink: DebugSink) {
    let _ = DEBUG_SINK.set(sink);
}

/// A `--debug` log line only (no trace timing). The create and exec paths log the phrases runc's
/// debug log has at the same steps (`nsexec container setup`, `child process in init()`, …):
/// tools and runc's own tests look for them to tell that a debug log covers the container's set-up.
pub fn debug(what: &str) {
    if let Some(sink) = DEBUG_SINK.get() {
        sink(&format!("pid {}: {what}", std::process::id()));
    }
}

/// A phase boundary of the create path. With `--debug` it is a debug log line; with
/// `BERTH_RUNTIME_TRACE` set it goes to stderr with microseconds since the first trace point
/// (a developer's tool for the start-up budget). Otherwise it costs one check.
pub fn trace(what: &str) {
    use std::sync::OnceLock;
    static ON: OnceLock<Option<std::time::Instant>> = OnceLock::new();
    if let Some(t0) = ON
        .get_or_init(|| std::env::var_os("BERTH_RUNTIME_TRACE").map(|_| std::time::Instant::now()))
    {
        warn(&format!(
            "[{:>6} us] {} {what}",
            t0.elapsed().as_micros(),
            std::process::id()
        ));
    }
    debug(what);
}
