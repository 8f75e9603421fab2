//! The store and the runroot are root's alone: a container's environment (often secrets), its
//! logs and records cannot be read by another local user, and a store made with a wider mode is
//! tightened by the next command.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{Sandbox, IMAGE};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Whether the unprivileged user `nobody` can read `path` (a file or a directory listing).
fn nobody_reads(path: &std::path::Path) -> bool {
    let cmd = if path.is_dir() { "ls" } else { "cat" };
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", cmd])
        .arg(path)
        .output()
        .map(|o| o.status.success())
        .unwrap_or_else(|e| panic!("setpriv: {e}"))
}

#[test]
fn another_user_cannot_read_the_store_or_the_runroot() {
    let sb = Sandbox::new();
    let id = sb.run_d(&[
        "-e",
        "SECRET=hunter2",
        IMAGE,
        "sh",
        "-c",
        "echo hunter2; sleep 30",
    ]);
    let dir = sb.b.root.join("containers").join(&id);
    fixture::wait_until(
        "the log is written",
        std::time::Duration::from_secs(10),
        || std::fs::read_to_string(sb.log_file(&id)).is_ok_and(|l| l.contains("hunter2")),
    );
    // The test's own temporary directory must not be what stops nobody: open it up.
    let tmp = sb.dir();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    for p in [
        sb.b.root.clone(),
        sb.b.runroot.clone(),
        dir.join("meta.json"),
        dir.join("config.json"),
        sb.log_file(&id),
    ] {
        assert!(!nobody_reads(&p), "nobody can read {}", p.display());
    }
    for d in [&sb.b.root, &sb.b.runroot] {
        let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    // A store opened up by hand (or made by an older berth) is tightened by the next command.
    std::fs::set_permissions(&sb.b.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        nobody_reads(&sb.b.root),
        "the control: an open store is readable"
    );
    sb.ok(&["ps", "-q"]);
    assert!(!nobody_reads(&dir.join("meta.json")));
    assert_eq!(
        std::fs::metadata(&sb.b.root).unwrap().permissions().mode() & 0o777,
        0o700
    );
    sb.remove_all_and_assert_clean();
}
