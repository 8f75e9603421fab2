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

/// Every entry below `dir` with its mode, for a before/after comparison.
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = vec![(
        dir.to_path_buf(),
        std::fs::metadata(dir).unwrap().permissions().mode(),
    )];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push((e.path(), e.metadata().unwrap().permissions().mode()));
    }
    out.sort();
    out
}

#[test]
fn a_root_or_runroot_that_holds_other_files_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    // Someone's directory (as /etc or a home would be): files and a mode berth would tighten.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("passwd"), "x\n").unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = tree(&theirs);
    let fresh = |n: &str| tmp.path().join(n).display().to_string();
    let theirs_s = theirs.display().to_string();
    for (root, runroot, flag) in [
        (theirs_s.clone(), fresh("run1"), "--root"),
        (fresh("store2"), theirs_s.clone(), "--runroot"),
    ] {
        let out = common::run(
            {
                let mut c = Command::new(common::BERTH);
                c.args(["--root", &root, "--runroot", &runroot, "ps"]);
                c
            },
            None,
        );
        assert_eq!(out.status.code(), Some(125), "{}", out.stderr);
        assert_eq!(
            out.stderr.trim(),
            format!("berth: {flag} {theirs_s}: the directory holds files berth did not make: give berth a new or empty directory of its own")
        );
        assert_eq!(tree(&theirs), before, "{flag}: nothing changed there");
    }
    // The other directory of a refused pair is not made either.
    assert!(!tmp.path().join("run1").exists() && !tmp.path().join("store2").exists());

    // A store an older berth made (no marker yet) is still berth's: opened and marked.
    let older = tmp.path().join("older");
    for d in ["blobs", "layers"] {
        std::fs::create_dir_all(older.join(d)).unwrap();
    }
    std::fs::write(older.join("gc.lock"), "").unwrap();
    let out = common::run(
        {
            let mut c = Command::new(common::BERTH);
            c.args([
                "--root",
                &older.display().to_string(),
                "--runroot",
                &fresh("run3"),
                "ps",
                "-q",
            ]);
            c
        },
        None,
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(older.join(".berth").exists());
}
