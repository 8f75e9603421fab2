//! What a container changed and moving it around: `diff` (A/C/D from the writable layer),
//! `commit` (that layer as a new image a new container sees), `cp` both ways (files, directories,
//! `/.`, `-` tar streams) on stopped and running containers — and never through a container's
//! symlink to the host — the `volume` commands, `container prune` and `rename`. Every test ends
//! with no container, mount, cgroup or process of its store left.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::image::LayerTar;
use fixture::{mounts_under, Sandbox, IMAGE};
use std::path::Path;

/// Runs `script` in a new container `name` of `image` and waits for it to exit 0.
fn run_named(sb: &Sandbox, name: &str, image: &str, script: &str) {
    run_with(sb, name, &[], image, script);
}

/// Like `run_named`, with more `run` flags.
fn run_with(sb: &Sandbox, name: &str, flags: &[&str], image: &str, script: &str) {
    let mut args = vec!["run", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[image, "sh", "-c", script]);
    let (code, out, err) = sb.code(&args);
    assert_eq!(code, 0, "{script}: {out}{err}");
    sb.id_of(name);
}

/// The entries of a tar stream: (path, type byte, data).
fn tar_entries(data: &[u8]) -> Vec<(String, char, Vec<u8>)> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .expect("a tar stream")
        .map(|e| {
            let mut e = e.expect("an entry");
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            let p = e.path().unwrap().display().to_string();
            (p, e.header().entry_type().as_byte() as char, body)
        })
        .collect()
}

fn no_mounts_left(sb: &Sandbox) {
    let m = mounts_under(&sb.dir());
    assert!(m.is_empty(), "mounts left: {m:?}");
}

#[test]
fn diff_shows_added_changed_and_deleted_paths_parents_first() {
    let sb = Sandbox::new();
    run_named(&sb, "fresh", IMAGE, "true");
    assert_eq!(
        sb.ok(&["diff", "fresh"]),
        "",
        "mount targets the runtime made are not changes"
    );
    let script = "echo new > /tmp/new; echo more >> /etc/group; rm /etc/passwd; \
                  mkdir -p /a/b; rm -rf /home; mkdir /home; touch /home/x";
    run_named(&sb, "w", IMAGE, script);
    let want = "A /a\nA /a/b\nC /etc\nC /etc/group\nD /etc/passwd\nC /home\nA /home/x\nC /tmp\nA /tmp/new\n";
    assert_eq!(sb.ok(&["diff", "w"]), want);
    assert_eq!(sb.ok(&["container", "diff", "w"]), want);
    let err = sb.b.fails(&["diff", "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn commit_makes_an_image_whose_new_container_sees_the_change() {
    let sb = Sandbox::new();
    let script = "echo committed > /tmp/new; rm /etc/passwd; rm -rf /home; mkdir /home; \
                  touch /home/x; busybox ln -s /etc/shadow /tmp/hostlink";
    run_named(&sb, "w", IMAGE, script);
    let id = sb.ok(&[
        "commit",
        "-m",
        "my change",
        "-a",
        "Ann <ann@example.com>",
        "-c",
        r#"CMD ["cat", "/tmp/new"]"#,
        "-c",
        "ENV STAGE=two",
        "w",
        "snap:v1",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id:?}");
    let img = sb.b.inspect("snap:v1");
    assert_eq!(img["Id"], id);
    assert_eq!(img["Author"], "Ann <ann@example.com>");
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["cat", "/tmp/new"]));
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    let base = sb.b.inspect(IMAGE);
    assert_eq!(img["RootFS"]["Layers"][0], base["RootFS"]["Layers"][0]);
    assert!(sb.ok(&["history", "snap:v1"]).contains("my change"));
    let layer = &sb.b.diff_dirs("snap:v1")[1];
    assert_eq!(
        std::fs::read_link(layer.join("tmp/hostlink")).unwrap(),
        Path::new("/etc/shadow"),
        "a symlink in the writable layer is committed as a symlink, never as the host's file"
    );
    assert!(common::xattr(&layer.join("home"), "trusted.overlay.opaque").is_some());
    // The new container sees the file, the deletion and the opaque directory.
    let (code, out, err) = sb.code(&["run", "--rm", "snap:v1"]);
    assert_eq!((code, out.as_str()), (0, "committed\n"), "{err}");
    let (code, out, _) = sb.code(&[
        "run",
        "--rm",
        "snap:v1",
        "sh",
        "-c",
        "test -e /etc/passwd && echo passwd; ls /home; echo $STAGE",
    ]);
    assert_eq!((code, out.as_str()), (0, "x\ntwo\n"));
    // Nothing changed: a new image, no new layer.
    run_named(&sb, "idle", IMAGE, "true");
    sb.ok(&["commit", "idle", "idle:v1"]);
    assert_eq!(
        sb.b.inspect("idle:v1")["RootFS"]["Layers"],
        base["RootFS"]["Layers"]
    );
    let err = sb.b.fails(&["commit", "-c", "RUN true", "w"]);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn commit_of_a_running_container_pauses_it_and_it_keeps_running() {
    let sb = Sandbox::new();
    let id = sb.run_d(&[
        "--name",
        "live",
        IMAGE,
        "sh",
        "-c",
        "echo hot > /tmp/h; sleep 60",
    ]);
    fixture::wait_until(
        "the file is written",
        std::time::Duration::from_secs(10),
        || sb.ok(&["diff", "live"]).contains("A /tmp/h"),
    );
    sb.ok(&["commit", "live", "hot:v1"]);
    assert_eq!(sb.status(&id), "running");
    let (code, out, _) = sb.code(&["run", "--rm", "hot:v1", "cat", "/tmp/h"]);
    assert_eq!((code, out.as_str()), (0, "hot\n"));
    sb.remove_all_and_assert_clean();
}

/// The `cp` cases Docker documents, against container `c` (stopped or running).
fn cp_both_ways(sb: &Sandbox, c: &str) {
    let host = sb.dir().join(format!("host-{c}"));
    std::fs::create_dir_all(&host).unwrap();
    let h = |n: &str| host.join(n).display().to_string();
    // Out: a file to a new name, into a directory, a directory, its contents, a tar stream.
    sb.ok(&["cp", &format!("{c}:/src/f"), &h("f2")]);
    assert_eq!(std::fs::read(host.join("f2")).unwrap(), b"file\n");
    sb.ok(&["cp", &format!("{c}:/src/f"), &h("")]);
    assert_eq!(std::fs::read(host.join("f")).unwrap(), b"file\n");
    sb.ok(&["cp", &format!("{c}:/src"), &h("tree")]);
    assert_eq!(std::fs::read(host.join("tree/sub/g")).unwrap(), b"deep\n");
    assert_eq!(
        std::fs::read_link(host.join("tree/link")).unwrap(),
        Path::new("f")
    );
    sb.ok(&["cp", &format!("{c}:/src"), &h("tree")]);
    assert!(
        host.join("tree/src/sub/g").exists(),
        "an existing dir gets the dir inside"
    );
    std::fs::create_dir(host.join("flat")).unwrap();
    sb.ok(&["cp", &format!("{c}:/src/."), &h("flat")]);
    assert!(host.join("flat/sub/g").exists() && host.join("flat/f").exists());
    let out =
        sb.b.run(&["cp", &format!("{c}:/src"), "-"])
            .success("cp to -");
    let entries = tar_entries(out.stdout.as_bytes());
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["src", "src/f", "src/link", "src/sub", "src/sub/g"]);
    assert_eq!(entries[1].2, b"file\n");
    assert_eq!(entries[2].1, '2', "a symlink stays a symlink");
    // In: a file, a file under a new name, a directory, a tar stream from stdin.
    std::fs::write(host.join("in.txt"), b"into\n").unwrap();
    sb.ok(&["cp", &h("in.txt"), &format!("{c}:/tmp/")]);
    sb.ok(&["cp", &h("in.txt"), &format!("{c}:/tmp/renamed")]);
    sb.ok(&["cp", &h("tree"), &format!("{c}:/tmp/t")]);
    let tarball = LayerTar::new()
        .dir("st", 0o755)
        .file("st/one", b"1\n", 0o600)
        .finish();
    let out =
        sb.b.run_with_stdin(&["cp", "-", &format!("{c}:/tmp")], &tarball);
    out.success("cp - into the container");
    let back =
        sb.b.run(&["cp", &format!("{c}:/tmp"), "-"])
            .success("cp /tmp out");
    let got: Vec<(String, Vec<u8>)> = tar_entries(back.stdout.as_bytes())
        .into_iter()
        .filter(|e| e.1 == '0')
        .map(|e| (e.0, e.2))
        .collect();
    for (path, data) in [
        ("tmp/in.txt", &b"into\n"[..]),
        ("tmp/renamed", b"into\n"),
        ("tmp/t/sub/g", b"deep\n"),
        ("tmp/st/one", b"1\n"),
    ] {
        assert!(
            got.iter().any(|(p, d)| p == path && d == data),
            "{path} in {got:?}"
        );
    }
    // Docker's refusals.
    let err = sb.b.fails(&["cp", &format!("{c}:/nope"), &h("x")]);
    assert!(
        err.contains(&format!("Could not find the file /nope in container {c}")),
        "{err}"
    );
    let err = sb.b.fails(&["cp", &format!("{c}:/src"), &h("f")]);
    assert!(err.contains("cannot copy directory"), "{err}");
    let err =
        sb.b.fails(&["cp", &h("in.txt"), &format!("{c}:/no/such/dir")]);
    assert!(err.contains("Could not find the file /no/such"), "{err}");
}

const SRC_TREE: &str = "mkdir -p /src/sub; echo file > /src/f; echo deep > /src/sub/g; \
                        busybox ln -s f /src/link";

#[test]
fn cp_copies_files_directories_and_tar_streams_out_of_and_into_a_stopped_container() {
    let sb = Sandbox::new();
    run_named(&sb, "stopped", IMAGE, SRC_TREE);
    cp_both_ways(&sb, "stopped");
    no_mounts_left(&sb);
    assert_eq!(sb.status("stopped"), "exited");
    sb.remove_all_and_assert_clean();
}

#[test]
fn cp_copies_in_and_out_of_a_running_container_and_sees_its_volumes() {
    let sb = Sandbox::new();
    let script = format!("{SRC_TREE}; echo vol > /data/v; sleep 60");
    sb.run_d(&[
        "--name",
        "running",
        "-v",
        "cpvol:/data",
        IMAGE,
        "sh",
        "-c",
        &script,
    ]);
    fixture::wait_until(
        "the tree is written",
        std::time::Duration::from_secs(10),
        || sb.ok(&["diff", "running"]).contains("A /src/link"),
    );
    cp_both_ways(&sb, "running");
    let out =
        sb.b.run(&["cp", "running:/data/v", "-"])
            .success("cp from a volume");
    assert_eq!(tar_entries(out.stdout.as_bytes())[0].2, b"vol\n");
    let f = sb.dir().join("host-running/in.txt").display().to_string();
    sb.ok(&["cp", &f, "running:/data/"]);
    let on_disk = sb.b.root.join("volumes/cpvol/_data/in.txt");
    assert_eq!(
        std::fs::read(on_disk).unwrap(),
        b"into\n",
        "written into the volume"
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn cp_of_a_stopped_container_reaches_its_volumes_and_binds_and_stays_inside_them() {
    let sb = Sandbox::new();
    let bound = sb.dir().join("bound");
    std::fs::create_dir_all(&bound).unwrap();
    std::fs::write(bound.join("h"), b"from the host\n").unwrap();
    let bind = format!("{}:/ro:ro", bound.display());
    // A symlink in the volume that climbs and one that points at the host's root.
    let script = "echo vol > /data/v; busybox ln -s ../../../../etc /data/up; \
                  busybox ln -s / /data/root";
    run_with(
        &sb,
        "stopped",
        &["-v", "cpvol2:/data", "-v", &bind],
        IMAGE,
        script,
    );
    assert_eq!(sb.status("stopped"), "exited");
    let out =
        sb.b.run(&["cp", "stopped:/data/v", "-"])
            .success("cp from a volume");
    assert_eq!(tar_entries(out.stdout.as_bytes())[0].2, b"vol\n");
    let out =
        sb.b.run(&["cp", "stopped:/ro/h", "-"])
            .success("cp from a bind");
    assert_eq!(tar_entries(out.stdout.as_bytes())[0].2, b"from the host\n");
    let f = sb.dir().join("in.txt");
    std::fs::write(&f, b"into\n").unwrap();
    sb.ok(&["cp", f.to_str().unwrap(), "stopped:/data/"]);
    let on_disk = sb.b.root.join("volumes/cpvol2/_data/in.txt");
    assert_eq!(
        std::fs::read(on_disk).unwrap(),
        b"into\n",
        "written into the volume"
    );
    let err = sb.b.fails(&["cp", f.to_str().unwrap(), "stopped:/ro/"]);
    assert!(err.contains("read-only"), "{err}");
    assert!(!bound.join("in.txt").exists());
    // The volume's symlinks resolve inside the volume, never on the host.
    for src in ["/data/up/hostname", "/data/root/etc/hostname"] {
        let out = sb.b.run(&["cp", &format!("stopped:{src}"), "-"]);
        assert!(
            !out.status.success(),
            "{src} reached the host: {}",
            out.stdout
        );
    }
    no_mounts_left(&sb);
    sb.remove_all_and_assert_clean();
}

/// Symlinks a container can plant to aim `cp` at the host: absolute, relative climbing, to a file.
const EVIL: &str = "echo container-secret > /etc/shadow; busybox ln -s / /evil; \
                    busybox ln -s ../../../../../.. /up; busybox ln -s /etc/shadow /tmp/lnk";

fn cp_stays_inside(sb: &Sandbox, c: &str) {
    let out = sb.dir().join(format!("out-{c}"));
    std::fs::create_dir_all(&out).unwrap();
    for (i, src) in [
        "/evil/etc/shadow",
        "/up/etc/shadow",
        "/up/up/evil/etc/shadow",
    ]
    .iter()
    .enumerate()
    {
        let dest = out.join(format!("s{i}"));
        sb.ok(&["cp", &format!("{c}:{src}"), dest.to_str().unwrap()]);
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            b"container-secret\n",
            "{src} is the container's own file"
        );
    }
    let followed = out.join("followed");
    sb.ok(&[
        "cp",
        "-L",
        &format!("{c}:/tmp/lnk"),
        followed.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&followed).unwrap(), b"container-secret\n");
    let link = out.join("link");
    sb.ok(&["cp", &format!("{c}:/tmp/lnk"), link.to_str().unwrap()]);
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc/shadow"));
    let err = sb.b.fails(&[
        "cp",
        &format!("{c}:/proc/1/root/etc/hostname"),
        out.to_str().unwrap(),
    ]);
    assert!(!err.is_empty(), "a magic link is not followed");
    // Writes through the same symlinks land inside the container.
    let marker = format!("berth-pwned-{}-{c}", std::process::id());
    let payload = out.join("payload");
    std::fs::write(&payload, b"payload\n").unwrap();
    for via in ["/evil/tmp", "/up/tmp"] {
        let dest = format!("{c}:{via}/{marker}");
        sb.ok(&["cp", payload.to_str().unwrap(), &dest]);
        assert!(
            !Path::new("/tmp").join(&marker).exists(),
            "written on the host via {via}"
        );
    }
    let hostile = LayerTar::new()
        .symlink("s", "/")
        .file(&format!("s/tmp/{marker}-tar"), b"t\n", 0o644)
        .finish();
    sb.b.run_with_stdin(&["cp", "-", &format!("{c}:/tmp")], &hostile)
        .success("cp - with a symlink to /");
    assert!(!Path::new("/tmp").join(format!("{marker}-tar")).exists());
    let climbing = LayerTar::new()
        .raw(
            tar::EntryType::Regular,
            &format!("../../{marker}-up"),
            "",
            b"x",
        )
        .finish();
    let out =
        sb.b.run_with_stdin(&["cp", "-", &format!("{c}:/tmp")], &climbing);
    assert!(!out.status.success(), "a climbing name is refused");
    let back =
        sb.b.run(&["cp", &format!("{c}:/tmp"), "-"])
            .success("cp /tmp out");
    let names: Vec<String> = tar_entries(back.stdout.as_bytes())
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(names.contains(&format!("tmp/{marker}")), "{names:?}");
    assert!(names.contains(&format!("tmp/{marker}-tar")), "{names:?}");
}

#[test]
fn cp_never_follows_a_container_symlink_to_the_host() {
    let sb = Sandbox::new();
    run_named(&sb, "evil", IMAGE, EVIL);
    cp_stays_inside(&sb, "evil");
    no_mounts_left(&sb);
    sb.run_d(&[
        "--name",
        "evil-live",
        IMAGE,
        "sh",
        "-c",
        &format!("{EVIL}; sleep 60"),
    ]);
    fixture::wait_until(
        "the links exist",
        std::time::Duration::from_secs(10),
        || sb.ok(&["diff", "evil-live"]).contains("A /tmp/lnk"),
    );
    cp_stays_inside(&sb, "evil-live");
    sb.remove_all_and_assert_clean();
}

#[test]
fn volume_lifecycle_create_ls_inspect_use_rm_and_prune() {
    let sb = Sandbox::new();
    assert_eq!(
        sb.ok(&["volume", "create", "--label", "team=a", "data"]),
        "data\n"
    );
    assert_eq!(
        sb.ok(&["volume", "create", "data"]),
        "data\n",
        "create is idempotent"
    );
    let generated = sb.ok(&["volume", "create"]);
    assert_eq!(generated.trim().len(), 64);
    let ls = sb.ok(&["volume", "ls"]);
    let rows: Vec<Vec<&str>> = ls.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["DRIVER", "VOLUME", "NAME"], "{ls}");
    assert!(rows.contains(&vec!["local", "data"]), "{ls}");
    assert_eq!(
        sb.ok(&["volume", "ls", "-q", "--filter", "label=team=a"]),
        "data\n"
    );
    assert_eq!(
        sb.ok(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Labels}}",
            "-f",
            "name=dat"
        ]),
        "data team=a\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&sb.ok(&["volume", "inspect", "data"])).unwrap();
    let v = &v[0];
    assert_eq!(
        (
            v["Name"].as_str(),
            v["Driver"].as_str(),
            v["Scope"].as_str()
        ),
        (Some("data"), Some("local"), Some("local"))
    );
    assert_eq!(v["Labels"], serde_json::json!({"team": "a"}));
    let mp = v["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!(Path::new(&mp), sb.b.root.join("volumes/data/_data"));
    assert!(v["CreatedAt"].as_str().unwrap().starts_with("20"), "{v}");
    // Used by a container, kept after it, refused while any container names it.
    run_with(
        &sb,
        "writer",
        &["-v", "data:/data"],
        IMAGE,
        "echo kept > /data/f",
    );
    let err = sb.b.fails(&["volume", "rm", "data"]);
    assert!(err.contains("remove data: volume is in use"), "{err}");
    let err = sb.b.fails(&["volume", "rm", "-f", "data"]);
    assert!(err.contains("volume is in use"), "{err}");
    sb.ok(&["rm", "writer"]);
    let (code, out, _) = sb.code(&["run", "--rm", "-v", "data:/d", IMAGE, "cat", "/d/f"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "kept\n"),
        "the data outlived its container"
    );
    // An anonymous volume left by `rm` without -v, and one `run -v NAME` made without `create`.
    run_with(&sb, "anon", &["-v", "/anon"], IMAGE, "echo a > /anon/f");
    let (code, _, _) = sb.code(&["run", "--rm", "-v", "implicit:/i", IMAGE, "true"]);
    assert_eq!(code, 0);
    sb.ok(&["rm", "anon"]);
    let before = sb.ok(&["volume", "ls", "-q"]);
    assert_eq!(
        before.lines().count(),
        4,
        "data, generated, implicit and the anonymous one: {before}"
    );
    // The anonymous one and the one created without a name (anonymous too, as in Docker).
    let pruned = sb.ok(&["volume", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Volumes:\n"), "{pruned}");
    assert!(pruned.contains(generated.trim()), "{pruned}");
    assert_eq!(
        pruned.lines().filter(|l| l.len() == 64).count(),
        2,
        "{pruned}"
    );
    assert!(pruned.ends_with("Total reclaimed space: 2B\n"), "{pruned}");
    assert_eq!(sb.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    sb.ok(&["volume", "rm", "implicit"]);
    let all = sb.ok(&["volume", "prune", "-f", "-a"]);
    assert!(all.contains("data\n"), "{all}");
    assert_eq!(sb.ok(&["volume", "ls", "-q"]), "");
    let err = sb.b.fails(&["volume", "inspect", "data"]);
    assert!(err.contains("no such volume"), "{err}");
    assert_eq!(
        sb.b.run(&["volume", "rm", "-f", "data"]).status.code(),
        Some(0)
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn container_prune_removes_stopped_containers_and_keeps_running_ones() {
    let sb = Sandbox::new();
    run_named(&sb, "done1", IMAGE, "echo 12345 > /tmp/f");
    run_named(&sb, "done2", IMAGE, "true");
    let live = sb.run_d(&["--name", "live", IMAGE, "sleep", "60"]);
    let ids = [sb.id_of("done1"), sb.id_of("done2")];
    let out = sb.ok(&["container", "prune", "-f"]);
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.remove(0), "Deleted Containers:", "{out}");
    assert_eq!(lines.pop(), Some("Total reclaimed space: 6B"), "{out}");
    assert_eq!(lines.pop(), Some(""), "{out}");
    lines.sort();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(lines, want);
    assert_eq!(sb.ok(&["ps", "-aq", "--no-trunc"]).trim(), live);
    assert_eq!(
        sb.ok(&["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    no_mounts_left_but_the_live_one(&sb, &live);
    sb.remove_all_and_assert_clean();
}

fn no_mounts_left_but_the_live_one(sb: &Sandbox, live: &str) {
    let m: Vec<_> = mounts_under(&sb.dir())
        .into_iter()
        .filter(|p| !p.starts_with(sb.b.root.join("containers").join(live)))
        .collect();
    assert!(m.is_empty(), "{m:?}");
}

#[test]
fn rename_changes_the_name_refuses_a_taken_one_and_survives_the_exit() {
    let sb = Sandbox::new();
    run_named(&sb, "old", IMAGE, "true");
    let id = sb.id_of("old");
    sb.ok(&["rename", "old", "new"]);
    assert_eq!(sb.inspect("new")["Id"], id.as_str());
    assert!(sb
        .b
        .fails(&["diff", "old"])
        .contains("No such container: old"));
    run_named(&sb, "other", IMAGE, "true");
    let err = sb.b.fails(&["rename", "new", "other"]);
    assert!(
        err.contains(r#"Conflict. The container name "/other" is already in use by container"#),
        "{err}"
    );
    let err = sb.b.fails(&["rename", "new", "bad name"]);
    assert!(err.contains("invalid container name"), "{err}");
    sb.run_d(&["--name", "runner", IMAGE, "sleep", "60"]);
    sb.ok(&["container", "rename", "runner", "sprinter"]);
    sb.ok(&["stop", "-t", "0", "sprinter"]);
    assert_eq!(
        sb.status("sprinter"),
        "exited",
        "the name outlives the monitor's last write"
    );
    sb.remove_all_and_assert_clean();
}
