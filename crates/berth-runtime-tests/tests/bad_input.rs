//! Bad input is refused before anything is created: invalid container ids and malformed
//! config.json each give a non-zero exit and an error naming the problem, and leave no
//! state dir, cgroup, mount or process (the fixture's leak guard checks the rest).

use berth_runtime_tests::Fixture;
use serde_json::json;

/// Asserts the runtime's --root holds no container state at all.
fn assert_no_state(fx: &Fixture) {
    let entries: Vec<_> = std::fs::read_dir(&fx.rt.root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        entries.is_empty(),
        "state left in {}: {entries:?}",
        fx.rt.root.display()
    );
}

#[test]
fn container_id_with_path_traversal_is_rejected() {
    let fx = Fixture::new("badid", &["true"]);
    fx.rt
        .exec(&["run", "--bundle", &fx.bundle_dir(), "../escape"])
        .failed();
    assert_no_state(&fx);
    assert!(
        !fx.base.join("escape").exists(),
        "state written outside --root"
    );
}

#[test]
fn overlong_container_id_is_rejected() {
    let fx = Fixture::new("longid", &["true"]);
    let id = "a".repeat(1024);
    fx.rt
        .exec(&["run", "--bundle", &fx.bundle_dir(), &id])
        .failed();
    assert_no_state(&fx);
}

/// Runs `create` on the fixture's bundle with `config` written verbatim and checks
/// it fails with one error line that mentions `needle`.
fn create_fails_naming(fx: &Fixture, config: &str, needle: &str) {
    std::fs::write(fx.bundle.config_path(), config).unwrap();
    let out = fx
        .rt
        .exec(&["create", "--bundle", &fx.bundle_dir(), &fx.id])
        .failed();
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "expected a one-line error: {out}");
    // runc 1.1 says only "unexpected EOF" for bad JSON; berth must name the file.
    let lenient = berth_runtime_tests::runtime::is_runc() && needle == "config.json";
    assert!(
        lenient || lines[0].contains(needle),
        "error does not name {needle:?}: {out}"
    );
    assert_no_state(fx);
}

#[test]
fn malformed_json_config_is_rejected_without_leftovers() {
    let fx = Fixture::new("badjson", &["true"]);
    create_fails_naming(
        &fx,
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
        "config.json",
    );
}

#[test]
fn unknown_namespace_type_is_rejected_without_leftovers() {
    let mut fx = Fixture::new("badns", &["true"]);
    fx.bundle.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogusns"}));
    let text = serde_json::to_string(&fx.bundle.spec).unwrap();
    create_fails_naming(&fx, &text, "bogusns");
}

#[test]
fn relative_mount_destination_is_rejected_without_leftovers() {
    if berth_runtime_tests::runtime::is_runc() {
        eprintln!("skipped: runc 1.1 accepts relative mount destinations (with a warning)");
        return;
    }
    let mut fx = Fixture::new("relmnt", &["true"]);
    fx.bundle
        .add_mount(json!({"destination": "relative/dest", "type": "tmpfs", "source": "tmpfs"}));
    let text = serde_json::to_string(&fx.bundle.spec).unwrap();
    create_fails_naming(&fx, &text, "relative/dest");
}
