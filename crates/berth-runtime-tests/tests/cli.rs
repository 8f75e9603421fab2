//! Commands that describe rather than run: `spec` writes a runc-compatible config and
//! refuses to overwrite it, `features` prints the runtime-spec features document.

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
