//! The process as configured: user, additional gids, umask, cwd, env, rlimits, and the
//! mounts it sees (tmpfs, a read-only bind of a host directory).

use berth_runtime_tests::Fixture;
use serde_json::json;

#[test]
fn user_groups_umask_cwd_and_env_are_applied() {
    let mut fx = Fixture::new("user", &["sh", "-c", "id; umask; pwd; echo FOO=$FOO"]);
    fx.bundle.spec["process"]["user"] =
        json!({"uid": 65534, "gid": 65534, "additionalGids": [5, 6], "umask": 23});
    fx.bundle.spec["process"]["cwd"] = json!("/tmp");
    fx.bundle.push_env("FOO=bar baz");
    let out = fx.run().ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{out}"
    );
    assert!(
        lines[0].contains("5(tty)") && lines[0].contains("6(disk)"),
        "{out}"
    );
    assert_eq!(lines[1], "0027");
    assert_eq!(lines[2], "/tmp");
    assert_eq!(lines[3], "FOO=bar baz");
}

#[test]
fn rlimit_nofile_is_applied() {
    let mut fx = Fixture::new("rlimit", &["sh", "-c", "ulimit -n; ulimit -Hn"]);
    fx.bundle.spec["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "hard": 999, "soft": 777}]);
    let out = fx.run().ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words, ["777", "999"]);
}

#[test]
fn tmpfs_mount_is_writable_and_is_tmpfs() {
    let mut fx = Fixture::new(
        "tmpfs",
        &[
            "sh",
            "-c",
            "grep ' /scratch ' /proc/mounts; echo hi > /scratch/f && cat /scratch/f",
        ],
    );
    fx.bundle.add_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}));
    let out = fx.run().ok();
    assert!(out.stdout.starts_with("tmpfs /scratch tmpfs"), "{out}");
    assert!(out.stdout.contains("hi"), "{out}");
    assert!(
        !fx.bundle.rootfs().join("scratch/f").exists(),
        "write went to the rootfs"
    );
}

#[test]
fn readonly_bind_mount_shows_host_content_and_refuses_writes() {
    let mut fx = Fixture::new("bindro", &["sh", "-c", "cat /data/hello; touch /data/new"]);
    let host = fx.scratch("hostdata");
    std::fs::write(host.join("hello"), "from the host\n").unwrap();
    fx.bundle.add_mount(json!({
        "destination": "/data", "type": "bind", "source": host.display().to_string(),
        "options": ["rbind", "ro"],
    }));
    let out = fx.run().failed();
    assert_eq!(out.stdout, "from the host\n");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!host.join("new").exists());
}

#[test]
fn oom_score_adj_is_applied() {
    let mut fx = Fixture::new("oomadj", &["cat", "/proc/self/oom_score_adj"]);
    fx.bundle.spec["process"]["oomScoreAdj"] = json!(345);
    assert_eq!(fx.run().ok().stdout.trim(), "345");
}

#[test]
fn sysctl_is_applied_in_the_container_namespace() {
    let mut fx = Fixture::new("sysctl", &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    fx.bundle.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    assert_eq!(fx.run().ok().stdout.trim(), "1");
}

/// A pod's `workingDir` need not exist in its image: it is made (0755, as runc does) in the
/// container's root, also when that root is then made read-only.
#[test]
fn a_missing_cwd_is_created_inside_the_rootfs() {
    let mut fx = Fixture::new("mkcwd", &["sh", "-c", "pwd; stat -c %a ."]);
    fx.bundle.spec["process"]["cwd"] = json!("/work/dir");
    fx.bundle.spec["root"]["readonly"] = json!(true);
    let out = fx.run().ok();
    assert_eq!(out.stdout, "/work/dir\n755\n", "{out}");
    assert!(fx.bundle.rootfs().join("work/dir").is_dir());
}

/// A cwd reached through an absolute symlink in the image is made where the symlink points in the
/// container's root, never on the host (the same path there does not exist).
#[test]
fn a_missing_cwd_under_an_absolute_symlink_stays_in_the_rootfs() {
    let mut fx = Fixture::new("mkcwdlink", &["pwd"]);
    let host_dir = fx.base.join("outside");
    let inside = fx.bundle.rootfs().join(host_dir.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    std::os::unix::fs::symlink(&host_dir, fx.bundle.rootfs().join("escape")).unwrap();
    fx.bundle.spec["process"]["cwd"] = json!("/escape/dir");
    let out = fx.run().ok();
    // The kernel's cwd, the symlink resolved in the container's root.
    assert_eq!(out.stdout, format!("{}/dir\n", host_dir.display()), "{out}");
    assert!(
        !host_dir.exists(),
        "cwd created on the host at {}",
        host_dir.display()
    );
    assert!(
        inside.join("dir").is_dir(),
        "cwd not made inside the rootfs"
    );
}
