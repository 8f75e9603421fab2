//! Rootless bundles as runc runs them: the runtime started by a real unprivileged user the test
//! creates (useradd, /etc/subuid and /etc/subgid lines, all removed after, also on failure),
//! container root mapped to that user, wider maps through newuidmap/newgidmap, no cgroup without
//! delegation, and a limit that cannot be had is an error that says why.

use berth_runtime_tests::user::{TestUser, SUBID_COUNT};
use berth_runtime_tests::{leaks, Fixture};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;

/// The spec's uid and gid maps: container root is the user, 1.. their subordinate ids.
fn wide_maps(user: &TestUser) -> (Value, Value) {
    let map = |own: u32| {
        json!([
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": user.subid_start, "size": SUBID_COUNT},
        ])
    };
    (map(user.uid), map(user.gid))
}

fn set_wide_maps(fx: &mut Fixture, user: &TestUser) {
    let (uid, gid) = wide_maps(user);
    fx.bundle.spec["linux"]["uidMappings"] = uid;
    fx.bundle.spec["linux"]["gidMappings"] = gid;
}

/// No cgroup of the container's exists in any hierarchy (the user was delegated none).
fn assert_no_cgroup(id: &str) {
    assert!(
        leaks::cgroups_named(id).is_empty(),
        "a rootless container without delegation got a cgroup: {:?}",
        leaks::cgroups_named(id)
    );
}

#[test]
fn rootless_spec_maps_root_to_the_caller_without_network_or_resources() {
    let user = TestUser::create();
    let fx = Fixture::rootless("rl-spec", &["true"], &user);
    let dir = fx.scratch("spec");
    user.give(&dir);
    let mut cmd = fx.rt.command(&["spec", "--rootless"]);
    cmd.current_dir(&dir);
    let out = fx
        .rt
        .spawn_command(cmd, &["spec", "--rootless"])
        .wait(berth_runtime_tests::runtime::DEFAULT_TIMEOUT);
    assert!(out.success(), "spec --rootless: {out}");
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let linux = &spec["linux"];
    assert_eq!(
        linux["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}])
    );
    assert_eq!(
        linux["gidMappings"],
        json!([{"containerID": 0, "hostID": user.gid, "size": 1}])
    );
    let kinds: Vec<&str> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"user") && !kinds.contains(&"network"),
        "{kinds:?}"
    );
    assert!(linux.get("resources").is_none(), "{linux}");
}

#[test]
fn rootless_run_maps_container_root_to_the_user_and_makes_no_cgroup() {
    let user = TestUser::create();
    let fx = Fixture::rootless(
        "rl-run",
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map /proc/self/gid_map",
        ],
        &user,
    );
    let out = fx.run().ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    let (u, g) = (user.uid.to_string(), user.gid.to_string());
    assert_eq!(words, ["0", "0", &u, "1", "0", &g, "1"], "{out}");
    assert_no_cgroup(&fx.id);
}

#[test]
fn rootless_wide_map_goes_through_newuidmap_and_files_land_on_subordinate_ids() {
    let user = TestUser::create();
    let mut fx = Fixture::rootless(
        "rl-wide",
        &[
            "sh",
            "-c",
            "touch /tmp/f && chown 1000:1000 /tmp/f && cat /proc/self/uid_map",
        ],
        &user,
    );
    set_wide_maps(&mut fx, &user);
    let caps = ["CAP_CHOWN", "CAP_KILL"];
    fx.bundle.set_capabilities(&caps, &[]);
    let out = fx.run().ok();
    assert!(
        out.stdout.contains(&user.subid_start.to_string()),
        "no subordinate range in the map: {out}"
    );
    let meta = std::fs::metadata(fx.bundle.rootfs().join("tmp/f")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (user.subid_start + 999, user.subid_start + 999),
        "container uid 1000 is not the user's subordinate id on the host"
    );
}

#[test]
fn rootless_map_beyond_the_users_subordinate_ids_is_refused() {
    let user = TestUser::create();
    let mut fx = Fixture::rootless("rl-beyond", &["true"], &user);
    fx.bundle.spec["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": user.subid_start + SUBID_COUNT, "size": 10},
    ]);
    let out = fx.run().failed();
    assert!(out.stderr.contains("newuidmap"), "{out}");
    assert!(
        !fx.rt.root.join(&fx.id).exists(),
        "state left after a refused map"
    );
}

#[test]
fn rootless_limit_without_delegation_fails_and_says_why() {
    let user = TestUser::create();
    let mut fx = Fixture::rootless("rl-limit", &["true"], &user);
    fx.bundle
        .set_resource("memory", json!({"limit": 64 * 1024 * 1024}));
    let out = fx.run().failed();
    assert!(
        out.stderr
            .contains("cannot set memory limit: container could not join or create cgroup"),
        "{out}"
    );
    assert!(out.stderr.contains("delegated"), "no way out named: {out}");
    assert_no_cgroup(&fx.id);
}

#[test]
fn rootless_detached_container_execs_in_its_user_namespace_and_deletes() {
    let user = TestUser::create();
    let mut fx = Fixture::rootless("rl-life", &["sleep", "1000"], &user);
    set_wide_maps(&mut fx, &user);
    fx.run_detached();
    let out = fx.exec_in(&[], &["cat", "/proc/self/uid_map"]).ok();
    assert!(
        out.stdout.contains(&user.subid_start.to_string()),
        "exec is not in the container's user namespace: {out}"
    );
    let inside = fx.exec_in(&[], &["id", "-u"]).ok();
    assert_eq!(inside.stdout.trim(), "0");
    assert_eq!(fx.rt.status(&fx.id), "running");
    let pid = fx.rt.pid(&fx.id);
    let owner = std::fs::metadata(format!("/proc/{pid}")).unwrap().uid();
    assert_eq!(owner, user.uid, "the init is not the user's on the host");
    fx.rt.exec(&["kill", &fx.id, "KILL"]).ok();
    fx.rt.wait_status(&fx.id, "stopped");
    fx.rt.exec(&["delete", &fx.id]).ok();
    assert!(!fx.rt.root.join(&fx.id).exists());
    assert_no_cgroup(&fx.id);
}

#[test]
fn rootless_container_cannot_read_a_root_only_host_file_bound_in() {
    let user = TestUser::create();
    let mut fx = Fixture::rootless("rl-secret", &["sh", "-c", "cat /secret; echo rc=$?"], &user);
    let secret = fx.scratch("secret-dir").join("secret");
    std::fs::write(&secret, "host-root-only\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    fx.bundle.add_mount(json!({
        "destination": "/secret", "type": "bind",
        "source": secret.display().to_string(), "options": ["rbind", "ro"],
    }));
    let target = fx.bundle.rootfs().join("secret");
    std::fs::write(&target, "").unwrap();
    user.give(&target);
    let out = fx.run();
    assert!(
        !out.stdout.contains("host-root-only"),
        "a root-only host file was readable in a rootless container: {out}"
    );
    if out.success() {
        assert!(out.stdout.contains("rc=1"), "{out}");
    }
}

#[test]
fn rootless_exec_into_a_created_container_and_ptmx_stays_the_devpts_link() {
    let user = TestUser::create();
    let mut fx = Fixture::rootless("rl-created", &["sleep", "1000"], &user);
    // A redundant /dev/ptmx node (runc's dev.bats asks for one) leaves the link in place.
    fx.bundle.spec["linux"]["devices"] =
        json!([{"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2}]);
    fx.create().ok();
    assert_eq!(fx.rt.status(&fx.id), "created");
    // runc's create.bats: an ordinary user's exec reaches the created container's namespaces.
    let out = fx.exec_in(&[], &["readlink", "/dev/ptmx"]).ok();
    assert_eq!(out.stdout.trim(), "pts/ptmx", "{out}");
    assert_eq!(fx.rt.status(&fx.id), "created");
    fx.rt.exec(&["start", &fx.id]).ok();
    fx.rt.wait_status(&fx.id, "running");
    fx.rt.exec(&["delete", "--force", &fx.id]).ok();
    assert!(!fx.rt.root.join(&fx.id).exists());
}

#[test]
fn rootless_cgroups_path_the_user_may_not_make_fails_with_runcs_sentence() {
    let user = TestUser::create();
    let mut fx = Fixture::rootless("rl-cgpath", &["true"], &user);
    fx.bundle.spec["linux"]["cgroupsPath"] = json!("/berth-test-not-delegated/rl-cgpath");
    let out = fx.run().failed();
    assert!(
        out.stderr.contains("unable to apply cgroup configuration")
            && out.stderr.contains("permission denied"),
        "{out}"
    );
    assert!(leaks::cgroups_named("berth-test-not-delegated").is_empty());
}
