//! Rootless berth: a real unprivileged user the test creates (useradd, /etc/subuid and
//! /etc/subgid lines; removed after, also on failure, with every process of theirs) pulls,
//! runs with `--network none`, execs, reads logs and removes, with the store and runroot under
//! their XDG directories. Afterwards nothing of theirs is mounted and no process is left.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/rootless_user.rs"]
mod rootless_user;

use berth_runtime_tests::user::TestUser;
use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use rootless_user::{alive, berth, busybox_image, ok, pulled, user_mounts, wait_until, UserDirs};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// Busybox over a layer with a root-only file, and a top layer that whites out a file of the
/// first and makes a directory of it opaque (`.wh..wh..opq`).
fn image() -> Image {
    let secret = LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/secret", b"s\n", 0o600)
        .file("etc/gone", b"g\n", 0o644)
        .dir("etc/old", 0o755)
        .file("etc/old/hidden", b"h\n", 0o644)
        .finish();
    let top = LayerTar::new()
        .dir("etc", 0o755)
        .whiteout("etc", "gone")
        .dir("etc/old", 0o755)
        .whiteout("etc/old", ".wh..opq")
        .file("etc/old/new", b"n\n", 0o644)
        .finish();
    let layers =
        [secret, fixture::busybox_rootfs(), top].map(|t| Layer::new(&t, Compression::Gzip));
    Image::new(layers.into())
}

#[test]
fn an_ordinary_user_pulls_runs_execs_reads_logs_and_removes() {
    let user = TestUser::create();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let r = pulled(&user, &dirs, &reg, "rootless", &image());
    let store = dirs.base.join("data/berth");
    assert!(
        store.join("layers").is_dir(),
        "the store is under XDG_DATA_HOME"
    );
    assert_eq!(std::fs::metadata(&store).unwrap().uid(), user.uid);
    // Relative paths mean the user's working directory, though berth joined its namespaces.
    ok(&user, &dirs, &["save", "-o", "saved.tar", &r]);
    assert!(
        dirs.base.join("saved.tar").is_file(),
        "saved where the user is"
    );
    ok(&user, &dirs, &["load", "-q", "-i", "saved.tar"]);

    // Root in the container is the user; the image's files are unpacked with their owners
    // mapped, and a whiteout holds.
    let out = ok(
        &user,
        &dirs,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &r,
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; stat -c %u /etc/secret; test -e /etc/gone || echo gone; ls /etc/old",
        ],
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    let (uid, sub) = (user.uid.to_string(), user.subid_start.to_string());
    assert_eq!(
        words,
        ["0", "0", &uid, "1", "1", &sub, "65536", "0", "gone", "new"],
        "{out}"
    );

    // Detached: exec, logs, files on the host owned by the user and their subordinate ids.
    let id = ok(
        &user,
        &dirs,
        &[
            "run", "-d", "--name", "d", "--network", "none", &r, "sh", "-c",
            "echo started; echo x > /by-root; echo y > /by-1000; chown 1000:1000 /by-1000; sleep 1000",
        ],
    );
    let id = id.trim();
    assert!(
        wait_until(Duration::from_secs(10), || {
            ok(&user, &dirs, &["logs", "d"]).contains("started")
        }),
        "no logs"
    );
    assert_eq!(ok(&user, &dirs, &["exec", "d", "id", "-u"]), "0\n");
    let upper = store.join("snapshots").join(id).join("upper");
    let owner = |f: &str| std::fs::metadata(upper.join(f)).map(|m| m.uid());
    assert!(
        wait_until(Duration::from_secs(10), || owner("by-1000")
            .is_ok_and(|u| u == user.subid_start + 999)),
        "container uid 1000 is not subordinate id {} on the host: {:?}",
        user.subid_start + 999,
        owner("by-1000")
    );
    assert_eq!(owner("by-root").unwrap(), user.uid);
    let explain = ok(&user, &dirs, &["explain", "d"]);
    assert!(
        explain.contains(&format!("root in the container is uid {}", user.uid)),
        "{explain}"
    );
    assert!(explain.contains("rootless:"), "{explain}");

    // A root-only host file bound in stays unreadable: the container's root is the user.
    let secret = dirs.base.join("secret");
    std::fs::write(&secret, "host-root-only\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let volume = format!("{}:/secret:ro", secret.display());
    let read = berth(
        &user,
        &dirs,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &volume,
            &r,
            "cat",
            "/secret",
        ],
    );
    assert!(
        !read.stdout.contains("host-root-only"),
        "a rootless container read a root-only file: {}",
        read.stdout
    );

    // Its containers share the user's namespace: no --userns=auto of their own.
    let auto = berth(
        &user,
        &dirs,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--userns=auto",
            &r,
            "true",
        ],
    );
    assert!(auto.stderr.contains("rootless"), "{}", auto.stderr);

    // A limit without a delegated cgroup is refused, saying why.
    let limited = berth(
        &user,
        &dirs,
        &["run", "--rm", "--network", "none", "-m", "64m", &r, "true"],
    );
    assert!(!limited.status.success());
    assert!(
        limited.stderr.contains("cannot set memory limit"),
        "{}",
        limited.stderr
    );

    // cp both ways, commit, stop: the ids are the namespace's own.
    let host_file = dirs.base.join("to-copy");
    std::fs::write(&host_file, "c\n").unwrap();
    user.give(&host_file);
    ok(
        &user,
        &dirs,
        &["cp", host_file.to_str().unwrap(), "d:/copied"],
    );
    assert_eq!(
        ok(
            &user,
            &dirs,
            &["exec", "d", "stat", "-c", "%u", "/copied", "/by-1000"]
        ),
        "0\n1000\n"
    );
    let out = dirs.base.join("out");
    ok(&user, &dirs, &["cp", "d:/by-1000", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "y\n");
    // No cgroup to freeze it with (nothing delegated): commit without pausing; pausing says why.
    let paused = berth(&user, &dirs, &["commit", "d", "rootless-commit:0"]);
    assert!(
        paused.stderr.contains("no cgroup to freeze"),
        "{}",
        paused.stderr
    );
    ok(
        &user,
        &dirs,
        &["commit", "--pause=false", "d", "rootless-commit:1"],
    );
    let seen = ok(
        &user,
        &dirs,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "rootless-commit:1",
            "stat",
            "-c",
            "%u",
            "/by-root",
            "/by-1000",
            "/copied",
        ],
    );
    assert_eq!(
        seen, "0\n1000\n0\n",
        "the committed layer has the container's ids"
    );
    ok(&user, &dirs, &["stop", "-t", "1", "d"]);
    assert!(ok(&user, &dirs, &["ps", "-a"]).contains("Exited"));

    ok(&user, &dirs, &["rm", "-f", "d"]);
    assert_eq!(ok(&user, &dirs, &["ps", "-aq"]), "");
    assert!(user_mounts(&dirs).is_empty(), "{:?}", user_mounts(&dirs));
    assert!(
        std::fs::read_dir(dirs.base.join("run/berth/runtime"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "runtime state left in the runroot"
    );
}

/// A user with no line in /etc/subuid or /etc/subgid: one id (theirs, as root), a note saying
/// what that limits, images whose files are all root's run, and an image with a file of another
/// owner fails to unpack naming the file and why (podman's default; no squashing).
#[test]
fn a_user_without_subordinate_ids_gets_a_single_id_map_and_a_note() {
    let user = TestUser::create_without_subids();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let plain = busybox_image();
    reg.push_image("test/single", "latest", &plain);
    let r = reg.reference("test/single", "latest");
    let pulled = berth(&user, &dirs, &["pull", &r]);
    assert!(pulled.status.success(), "{}", pulled.stderr);
    let note: Vec<&str> = pulled
        .stderr
        .lines()
        .filter(|l| l.contains("no subordinate ids"))
        .collect();
    assert_eq!(note.len(), 1, "{}", pulled.stderr);
    assert!(note[0].contains("/etc/subuid"), "{}", note[0]);
    let out = ok(
        &user,
        &dirs,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &r,
            "cat",
            "/proc/self/uid_map",
        ],
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", &user.uid.to_string(), "1"], "{out}");

    let owned = LayerTar::new()
        .dir("srv", 0o755)
        .owned_file("srv/by-1000", b"x\n", 1000, 1000)
        .finish();
    let mixed = Image::new(
        [fixture::busybox_rootfs(), owned]
            .map(|t| Layer::new(&t, Compression::Gzip))
            .into(),
    );
    reg.push_image("test/mixed", "latest", &mixed);
    let m = reg.reference("test/mixed", "latest");
    let failed = berth(&user, &dirs, &["pull", &m]);
    assert!(!failed.status.success(), "{}", failed.stdout);
    let err = failed.stderr.trim();
    assert!(
        err.contains("srv/by-1000") && err.contains("1000") && err.contains("subordinate"),
        "{err}"
    );
    assert!(user_mounts(&dirs).is_empty(), "{:?}", user_mounts(&dirs));
}

/// `system migrate` ends the user's pause process when no container runs (the next command
/// makes the namespaces anew), and refuses, naming them, while one does.
#[test]
fn system_migrate_ends_the_pause_process_unless_a_container_runs() {
    let user = TestUser::create();
    let dirs = UserDirs::new(&user);
    let reg = Registry::start();
    let plain = busybox_image();
    let r = pulled(&user, &dirs, &reg, "migrate", &plain);
    ok(
        &user,
        &dirs,
        &[
            "run",
            "-d",
            "--name",
            "busy",
            "--network",
            "none",
            &r,
            "sleep",
            "1000",
        ],
    );
    let pause = dirs.pause_pid().expect("a pause process");
    let refused = berth(&user, &dirs, &["system", "migrate"]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("still run") && refused.stderr.contains("busy"),
        "{}",
        refused.stderr
    );
    assert!(alive(pause));

    ok(&user, &dirs, &["rm", "-f", "busy"]);
    ok(&user, &dirs, &["system", "migrate"]);
    assert!(
        wait_until(Duration::from_secs(5), || { !alive(pause) }),
        "the pause process {pause} outlived system migrate"
    );
    assert_eq!(dirs.pause_pid(), None, "pause.pid is left");
    // The next command makes a new one; the store is as it was.
    assert!(ok(&user, &dirs, &["images", "-q"]).trim().len() >= 12);
    let again = dirs.pause_pid().expect("a new pause process");
    assert_ne!(again, pause);
}
