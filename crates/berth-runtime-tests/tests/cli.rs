//! Commands that describe rather than run: `spec` writes a runc-compatible config and
//! refuses to overwrite it, `features` prints the runtime-spec features document, help and
//! `--version` in runc's layout, and the `--debug` log of a create and an exec.

use berth_runtime_tests::Fixture;

#[test]
fn spec_writes_a_runc_compatible_config_and_refuses_to_overwrite() {
    let fx = Fixture::new("spec", &["true"]);
    let dir = fx.scratch("specdir");
    let dir_arg = dir.display().to_string();
    fx.rt.exec(&["spec", "-b", &dir_arg]).ok();
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        spec["ociVersion"].as_str().unwrap().starts_with("1."),
        "{spec}"
    );
    assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(spec["process"]["terminal"], true);
    assert_eq!(spec["root"]["path"], "rootfs");
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for kind in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(
            ns.contains(&kind),
            "spec lacks the {kind} namespace: {ns:?}"
        );
    }
    let mounts: Vec<&str> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    for m in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
    ] {
        assert!(mounts.contains(&m), "spec lacks the {m} mount");
    }
    fx.rt.exec(&["spec", "-b", &dir_arg]).failed();
    assert_eq!(
        std::fs::read_to_string(dir.join("config.json")).unwrap(),
        text,
        "spec overwrote config.json"
    );
}

#[test]
fn features_prints_the_features_document() {
    let fx = Fixture::new("features", &["true"]);
    let out = fx.rt.exec(&["features"]).ok();
    let f = out.json();
    assert!(f["ociVersionMin"].as_str().is_some(), "{out}");
    assert!(f["ociVersionMax"].as_str().is_some(), "{out}");
    let hooks: Vec<&str> = f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert!(
        hooks.contains(&"prestart") && hooks.contains(&"poststop"),
        "{out}"
    );
    let ns: Vec<&str> = f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    for kind in ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"] {
        assert!(ns.contains(&kind), "features lacks namespace {kind}: {out}");
    }
    assert!(
        f["linux"]["seccomp"]["enabled"].as_bool().unwrap_or(false),
        "{out}"
    );
}

#[test]
fn checkpoint_is_refused_with_a_clear_error_and_checks_parent_path() {
    if berth_runtime_tests::runtime::is_runc() {
        eprintln!("skipped: runc implements checkpoint through CRIU");
        return;
    }
    let fx = Fixture::new("ckpt", &["true"]);
    let out = fx
        .rt
        .exec(&[
            "checkpoint",
            "--parent-path",
            "/abs",
            "--image-path",
            "./img",
            "x",
        ])
        .failed();
    assert!(out.stderr.contains("--parent-path"), "{}", out.stderr);
    let out = fx
        .rt
        .exec(&["checkpoint", "--image-path", "./img", "x"])
        .failed();
    assert!(out.stderr.contains("not supported"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

/// Runs the runtime under another file name (a symlink), as a drop-in install names it.
fn run_as(fx: &Fixture, name: &str, args: &[&str]) -> std::process::Output {
    let dir = fx.scratch("names");
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(&fx.rt.bin, &link).unwrap();
    }
    std::process::Command::new(&link)
        .args(args)
        .output()
        .expect("run the runtime through a symlink")
}

#[test]
fn help_and_version_use_runc_layout_and_the_name_the_runtime_was_started_as() {
    if berth_runtime_tests::runtime::is_runc() {
        return; // berth's own naming rule
    }
    let fx = Fixture::new("help", &["true"]);
    for (name, flag) in [("runc", "-h"), ("runc", "--help"), ("berth-runtime", "-h")] {
        let out = run_as(&fx, name, &[flag]);
        assert!(out.status.success(), "{name} {flag}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME:", "{text}");
        assert!(
            lines[1].contains(&format!("{name} - Open Container Initiative runtime")),
            "{text}"
        );
    }
    for cmd in [
        "create",
        "delete",
        "exec",
        "list",
        "checkpoint",
        "restore",
        "update",
    ] {
        let out = run_as(&fx, "runc", &[cmd, "-h"]);
        assert!(out.status.success(), "runc {cmd} -h: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines()
                .nth(1)
                .unwrap_or_default()
                .contains(&format!("runc {cmd} - ")),
            "{text}"
        );
    }
    let out = run_as(&fx, "runc", &["foo", "-h"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No help topic for 'foo'"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = run_as(&fx, "runc", &["-v"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("runc version "), "{text}");
    assert!(lines[1].starts_with("commit: "), "{text}");
    assert_eq!(lines[2], "spec: 1.1.0", "{text}");
}

#[test]
fn debug_log_covers_the_container_set_up_on_stderr_or_in_the_log_file() {
    let fx = Fixture::new("debuglog", &["sleep", "100"]);
    fx.bundle.write();
    // --debug alone: text lines on stderr.
    let out = fx
        .rt
        .exec(&["--debug", "run", "-d", "--bundle", &fx.bundle_dir(), &fx.id])
        .ok();
    for phrase in [
        "level=debug",
        "nsexec container setup",
        "child process in init()",
        "init: closing the pipe to signal completion",
    ] {
        assert!(
            out.stderr.contains(phrase),
            "no {phrase:?} in {}",
            out.stderr
        );
    }
    // --debug --log FILE --log-format json: nothing on stderr, JSON lines in FILE.
    let log = fx.scratch("log").join("debug.json");
    let log_arg = log.display().to_string();
    let out = fx
        .rt
        .exec(&[
            "--debug",
            "--log",
            &log_arg,
            "--log-format",
            "json",
            "exec",
            &fx.id,
            "true",
        ])
        .ok();
    assert!(!out.stderr.contains("debug"), "{}", out.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    for phrase in [
        "\"level\":\"debug\"",
        "nsexec container setup",
        "child process in init()",
        "setns_init: about to exec",
    ] {
        assert!(text.contains(phrase), "no {phrase:?} in {text}");
    }
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    fx.rt.exec(&["delete", "-f", &fx.id]).ok();
}
