//! Test harness for driving an OCI runtime binary through runc's command line.
//! It owns temporary bundles, a per-test `--root`, and the leak checks that run after
//! every test; it must never link against the runtime under test (only run its binary).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod bundle;
pub mod cgroup;
pub mod console;
pub mod fixture;
pub mod leaks;
pub mod runtime;
pub mod user;

pub use bundle::Bundle;
pub use fixture::Fixture;
pub use runtime::{Outcome, Runtime};

use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The target of a `/proc/self/ns/<kind>` link as the test process sees it.
pub fn host_namespace(kind: &str) -> String {
    let link = Path::new("/proc/self/ns").join(kind);
    std::fs::read_link(&link)
        .unwrap_or_else(|e| panic!("readlink {}: {e}", link.display()))
        .to_string_lossy()
        .into_owned()
}

/// True when the test process runs as root (every runtime test needs it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
