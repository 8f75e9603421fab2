//! Docker parity for the image commands, each scenario checked against Docker's exact output:
//! the shapes and messages come from a live Docker run on this machine (CLI 28.2, Debian's
//! dockerd 20.10) and Docker's CLI source (v28.2.2). `images --filter` (dangling, label, before,
//! since, until, reference) and `images REPO[:TAG]` patterns, `rmi` of one tag of several (even
//! with -f) and Docker's conflicts, `image prune`'s question and filters, `image ls|rm` forms.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use common::Berth;
use fixture::Sandbox;
use serde_json::json;

/// An image with its own creation time and labels, one small layer.
fn dated_image(created: &str, labels: serde_json::Value, file: &str) -> Image {
    let tar = LayerTar::new().file(file, file.as_bytes(), 0o644).finish();
    let layer = Layer::new(&tar, Compression::Gzip);
    let config = json!({
        "created": created, "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.clone()]},
        "history": [{"created": created, "created_by": "test"}],
    });
    Image::with_config(vec![layer], serde_json::to_vec(&config).unwrap())
}

/// `images` with the filters, as `REPOSITORY:TAG` lines.
fn names(b: &Berth, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
    args.extend_from_slice(extra);
    let mut v: Vec<String> = b.ok(&args).lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn images_filters_pick_images_as_dockers_daemon_does() {
    let reg = Registry::start();
    let b = Berth::new();
    let old = dated_image("2020-01-01T00:00:00Z", json!({"tier": "db"}), "old");
    let mid = dated_image("2022-01-01T00:00:00Z", json!({"tier": "web"}), "mid");
    let new = dated_image("2024-01-01T00:00:00Z", json!({}), "new");
    reg.push_image("test/old", "1", &old);
    reg.push_image("test/mid", "1", &mid);
    reg.push_image("test/new", "1", &new);
    reg.push_image("test/new", "latest", &new);
    let a = &reg.addr;
    for (repo, tag) in [
        ("test/old", "1"),
        ("test/mid", "1"),
        ("test/new", "1"),
        ("test/new", "latest"),
    ] {
        b.ok(&["pull", "-q", &reg.reference(repo, tag)]);
    }
    let n = |s: &str| format!("{a}/{s}");

    assert_eq!(
        names(&b, &["--filter", "label=tier"]),
        [n("test/mid:1"), n("test/old:1")]
    );
    assert_eq!(names(&b, &["-f", "label=tier=web"]), [n("test/mid:1")]);
    let before = n("test/new:1");
    assert_eq!(
        names(&b, &["--filter", &format!("before={before}")]),
        [n("test/mid:1"), n("test/old:1")]
    );
    let since = n("test/old:1");
    assert_eq!(
        names(&b, &["--filter", &format!("since={since}")]),
        [n("test/mid:1"), n("test/new:1"), n("test/new:latest")]
    );
    assert_eq!(
        names(&b, &["--filter", "until=2023-01-01T00:00:00Z"]),
        [n("test/mid:1"), n("test/old:1")]
    );
    // reference: Go's path.Match against the familiar name with its tag, then without.
    assert_eq!(
        names(&b, &["--filter", &format!("reference={a}/test/n*")]),
        [n("test/new:1"), n("test/new:latest")]
    );
    assert_eq!(
        names(&b, &["--filter", &format!("reference={a}/test/*:1")]),
        [n("test/mid:1"), n("test/new:1"), n("test/old:1")]
    );
    // `images REPOSITORY[:TAG]` is the same reference filter.
    assert_eq!(
        names(&b, &[&n("test/new")]),
        [n("test/new:1"), n("test/new:latest")]
    );
    assert_eq!(names(&b, &[&n("test/new:1")]), [n("test/new:1")]);
    assert_eq!(names(&b, &[&n("test/*")]).len(), 4);

    // Docker's messages and status 1 for what it refuses.
    let bad = |args: &[&str]| {
        let out = b.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        common::expect_failure(out, &format!("{args:?}"))
    };
    assert_eq!(
        bad(&["images", "--filter", "bogus=1"]),
        "berth: Invalid filter 'bogus'"
    );
    assert_eq!(
        bad(&["images", "--filter", "dangling=maybe"]),
        "berth: Invalid filter 'dangling=[maybe]'"
    );
    assert_eq!(
        bad(&["images", "-f", "before=nosuch"]),
        "berth: No such image: nosuch:latest"
    );
}

#[test]
fn dangling_images_are_the_untagged_ones() {
    let b = Berth::new();
    let rootfs = b.path("rootfs.tar");
    std::fs::write(&rootfs, LayerTar::new().file("a", b"1", 0o644).finish()).unwrap();
    let first = b.ok(&["import", rootfs.to_str().unwrap(), "app:1"]);
    std::fs::write(&rootfs, LayerTar::new().file("a", b"2", 0o644).finish()).unwrap();
    b.ok(&["import", rootfs.to_str().unwrap(), "app:1"]);
    // The second import took the tag: the first image is dangling, `<none>:<none>`.
    assert_eq!(names(&b, &["--filter", "dangling=true"]), ["<none>:<none>"]);
    assert_eq!(names(&b, &["--filter", "dangling=false"]), ["app:1"]);
    let ids = b.ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(ids.trim(), first.trim());
}

#[test]
fn rmi_of_one_tag_of_several_removes_only_that_tag_even_with_force() {
    let sb = Sandbox::new();
    sb.ok(&["tag", "bb", "bb:two"]);
    sb.ok(&["tag", "bb", "other/bb:x"]);
    let id = sb.ok(&["image", "inspect", "--format", "{{.Id}}", "bb"]);
    let id = id.trim();
    let short = &id[7..19];

    // Docker 28: `rmi -f TAG` untags that name only while others are left.
    assert_eq!(
        sb.ok(&["rmi", "-f", "--no-prune", "bb:two"]),
        "Untagged: bb:two\n"
    );
    assert_eq!(
        names(&sb.b, &[]),
        ["bb:imported", "bb:latest", "other/bb:x"]
    );
    assert_eq!(
        sb.ok(&["image", "rm", "bb:imported"]),
        "Untagged: bb:imported\n"
    );

    // By ID, several repositories' names need force; with it every name goes, then the image.
    let (code, out, err) = sb.code(&["rmi", short]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!("Error: conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories\n")
    );

    // A stopped container's image: its last name is not removed without force.
    sb.ok(&["tag", "bb", "solo:1"]);
    sb.ok(&["rmi", "bb", "other/bb:x"]);
    sb.ok(&["create", "--name", "user", "solo:1", "true"]);
    let cid = sb.id_of("user");
    let (code, _, err) = sb.code(&["rmi", "solo:1"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("Error: conflict: unable to remove repository reference \"solo:1\" (must force) - container {} is using its referenced image {short}\n", &cid[..12])
    );
    let (code, _, err) = sb.code(&["rmi", short]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("Error: conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}\n", &cid[..12])
    );

    // A running container's image cannot be removed even with force.
    sb.ok(&["rm", "-f", "user"]);
    let live = sb.run_d(&["solo:1", "sleep", "60"]);
    let (code, _, err) = sb.code(&["rmi", "-f", short]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("Error: conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}\n", &live[..12])
    );
    sb.ok(&["rm", "-f", &live]);
    assert_eq!(
        sb.ok(&["rmi", "-f", short]),
        format!("Untagged: solo:1\nDeleted: {id}\n")
    );

    // A missing name: Docker's line on stderr, the others still removed, status 1.
    let (code, _, err) = sb.code(&["rmi", "nosuch"]);
    assert_eq!(code, 1);
    assert_eq!(err, "Error: No such image: nosuch:latest\n");
    sb.remove_all_and_assert_clean();
}

#[test]
fn image_prune_asks_first_and_honours_its_filters() {
    let b = Berth::new();
    let rootfs = b.path("rootfs.tar");
    std::fs::write(&rootfs, LayerTar::new().file("a", b"1", 0o644).finish()).unwrap();
    let dangling = b.ok(&["import", rootfs.to_str().unwrap(), "app:1"]);
    std::fs::write(&rootfs, LayerTar::new().file("a", b"2", 0o644).finish()).unwrap();
    b.ok(&["import", rootfs.to_str().unwrap(), "app:1"]);

    // Docker's question on stdout; anything but `y` keeps everything.
    let out = b.run_with_stdin(&["image", "prune"], b"n\n");
    assert_eq!(
        out.success("image prune, answered no").stdout,
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(names(&b, &["-a"]).len(), 2);
    let out = b.run_with_stdin(&["image", "prune", "-a"], b"\n");
    assert_eq!(
        out.success("image prune -a, answered nothing").stdout,
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
    );

    // until=1h: nothing that young goes.
    assert_eq!(
        b.ok(&["image", "prune", "-f", "--filter", "until=1h"]),
        "Total reclaimed space: 0B\n"
    );
    let out = b.run_with_stdin(&["image", "prune"], b"y\n");
    let text = out.success("image prune, answered yes").stdout;
    let after_question = text.split("[y/N] ").nth(1).unwrap_or_default();
    assert!(
        after_question.starts_with(&format!(
            "Deleted Images:\ndeleted: {}\n\nTotal reclaimed space: ",
            dangling.trim()
        )),
        "{text}"
    );
    assert_eq!(names(&b, &["-a"]), ["app:1"]);
    // dangling=false is -a; an unknown key is Docker's error.
    let out = b.ok(&["image", "prune", "-f", "--filter", "dangling=false"]);
    assert!(
        out.starts_with("Deleted Images:\nuntagged: app:1\n"),
        "{out}"
    );
    assert_eq!(names(&b, &["-a"]), Vec::<String>::new());
    let err = b.fails(&["image", "prune", "-f", "--filter", "bogus=1"]);
    assert_eq!(err, "berth: Invalid filter 'bogus'");
}

#[test]
fn history_human_false_prints_dates_and_bytes() {
    let reg = Registry::start();
    let b = Berth::new();
    let img = dated_image("2020-01-01T00:00:00.123Z", json!({}), "hist");
    reg.push_image("test/hist", "1", &img);
    let name = reg.reference("test/hist", "1");
    b.ok(&["pull", "-q", &name]);
    let raw = b.ok(&["history", "--human=false", &name]);
    let lines: Vec<&str> = raw.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED AT"),
        "{raw}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[1], "2020-01-01T00:00:00Z", "{raw}");
    let size = b.ok(&["history", "-H=false", "--format", "{{.Size}}", &name]);
    assert!(
        size.trim().parse::<u64>().is_ok(),
        "bytes, not a human size: {size}"
    );
    let human = b.ok(&[
        "history",
        "--format",
        "{{.CreatedSince}}|{{.CreatedAt}}",
        &name,
    ]);
    assert!(human.ends_with(" ago|2020-01-01T00:00:00Z\n"), "{human}");
}

#[test]
fn import_applies_dockerfile_changes_to_the_config() {
    let b = Berth::new();
    let rootfs = b.path("rootfs.tar");
    std::fs::write(&rootfs, LayerTar::new().file("a", b"1", 0o644).finish()).unwrap();
    let path = rootfs.to_str().unwrap();
    b.ok(&[
        "import",
        "-c",
        "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]",
        "--change",
        "ENV A=1",
        "-c",
        "WORKDIR /w",
        "-c",
        "LABEL tier=db",
        path,
        "changed:1",
    ]);
    let config = &b.inspect("changed:1")["Config"];
    assert_eq!(
        config["Cmd"],
        json!(["/bin/sh", "-c", "echo hi"]),
        "{config}"
    );
    assert_eq!(
        config["Env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1"
        ]),
        "{config}"
    );
    assert_eq!(config["WorkingDir"], "/w", "{config}");
    assert_eq!(config["Labels"], json!({"tier": "db"}), "{config}");
    let out = b.run(&["import", "-c", "BOGUS x", path, "bad:1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(b.run(&["image", "inspect", "bad:1"]).status.code() != Some(0));
}
