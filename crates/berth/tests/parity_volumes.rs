//! Docker parity for volumes and binds, proven from inside the container: `-v ./dir:/x` and
//! `-v .:/x` bind the relative path (Docker CLI ≥ 23, opts.go), `-v` makes a missing host
//! directory while `--mount type=bind` refuses it (Docker's message), and a new volume mounted
//! over a directory of the image is first filled with its files, owners and modes (Docker's
//! copy-up, daemon/volumes_unix.go) — unless `nocopy` / `volume-nocopy`, and never into a volume
//! that already has files, nor through a symlink out of the image.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{busybox_rootfs, Sandbox};
use std::process::Command;

/// The fixture's root filesystem plus `/data` (1000:1000, 0750) with a file (1000:50, 0640), a
/// subdirectory with a setgid mode and a symlink, and `/link`, a symlink that climbs out (`../..`)
/// towards the host's `/etc`.
fn image_with_data() -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let rootfs = busybox_rootfs();
    let mut base = tar::Archive::new(&rootfs[..]);
    for e in base.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.append(&h, &data[..]).unwrap();
    }
    let mut add = |kind: tar::EntryType,
                   path: &str,
                   mode: u32,
                   owner: (u64, u64),
                   data: &[u8],
                   link: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_path(path).unwrap();
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        out.append(&h, data).unwrap();
    };
    use tar::EntryType::{Directory, Regular, Symlink};
    add(Directory, "data", 0o750, (1000, 1000), b"", "");
    add(
        Regular,
        "data/conf",
        0o640,
        (1000, 50),
        b"from the image\n",
        "",
    );
    add(Directory, "data/sub", 0o2775, (0, 50), b"", "");
    add(Symlink, "data/sub/to-conf", 0o777, (0, 0), b"", "../conf");
    add(Symlink, "link", 0o777, (0, 0), b"", "../../../../etc");
    out.into_inner().unwrap()
}

/// A sandbox with `withdata` (the image above) next to `bb`.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    let tarball = sb.b.path("withdata.tar");
    std::fs::write(&tarball, image_with_data()).unwrap();
    sb.ok(&["import", tarball.to_str().unwrap(), "withdata"]);
    sb
}

/// `berth run --rm FLAGS withdata sh -c SCRIPT`, asserting success; returns stdout.
fn run_with_data(sb: &Sandbox, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["withdata", "sh", "-c", script]);
    let (code, out, err) = sb.code(&args);
    assert_eq!(code, 0, "{args:?}:\n{out}{err}");
    out
}

const LISTING: &str =
    "stat -c '%u:%g %a %n' /data /data/conf /data/sub; readlink /data/sub/to-conf; cat /data/conf";

#[test]
fn a_new_volume_over_an_image_directory_gets_its_files_owners_and_modes() {
    let sb = sandbox();
    let want = "1000:1000 750 /data\n1000:50 640 /data/conf\n0:50 2775 /data/sub\n../conf\nfrom the image\n";
    // A named volume, an anonymous one and --mount's volume all get the image's files.
    assert_eq!(run_with_data(&sb, &["-v", "named:/data"], LISTING), want);
    assert_eq!(run_with_data(&sb, &["-v", "/data"], LISTING), want);
    assert_eq!(
        run_with_data(&sb, &["--mount", "type=volume,src=mv,dst=/data"], LISTING),
        want
    );
    // They are the volume's own files now: a second container sees what the first wrote.
    run_with_data(&sb, &["-v", "named:/data"], "echo changed > /data/conf");
    assert_eq!(
        run_with_data(&sb, &["-v", "named:/data"], "cat /data/conf"),
        "changed\n",
        "a volume with files is never filled again"
    );
    let data = sb.b.root.join("volumes/named/_data/conf");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&data).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1000, 50, 0o640)
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn nocopy_leaves_a_new_volume_empty() {
    let sb = sandbox();
    let empty = "ls -A /data | wc -l";
    assert_eq!(
        run_with_data(&sb, &["-v", "nc1:/data:nocopy"], empty).trim(),
        "0"
    );
    assert_eq!(
        run_with_data(
            &sb,
            &["--mount", "type=volume,src=nc2,dst=/data,volume-nocopy"],
            empty
        )
        .trim(),
        "0"
    );
    assert_eq!(
        run_with_data(
            &sb,
            &[
                "--mount",
                "type=volume,src=nc3,dst=/data,volume-nocopy=false"
            ],
            empty
        )
        .trim(),
        "2"
    );
    let (code, _, err) = sb.code(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=nc4,dst=/data,volume-nocopy=maybe",
        "withdata",
        "true",
    ]);
    assert_eq!(
        (code, err.as_str()),
        (125, "berth: invalid value for volume-nocopy: maybe\n")
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn copy_up_follows_the_images_symlinks_inside_the_image_only() {
    let sb = sandbox();
    // /link climbs out with ../..: resolved in the image, it is the image's /etc, not the host's.
    let out = run_with_data(&sb, &["-v", "esc:/link"], "ls /link");
    assert_eq!(out, "group\npasswd\n");
    let passwd = std::fs::read_to_string(sb.b.root.join("volumes/esc/_data/passwd")).unwrap();
    assert!(passwd.contains("alice:x:1000"), "{passwd}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn relative_bind_sources_are_the_working_directorys() {
    let sb = sandbox();
    let work = sb.dir().join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    std::fs::write(work.join("top"), "top\n").unwrap();
    std::fs::write(work.join("sub/inner"), "inner\n").unwrap();
    let in_work = |args: &[&str]| {
        let mut cmd: Command = sb.b.command(args);
        cmd.current_dir(&work);
        let out = common::run(cmd, None).success(&format!("{args:?}"));
        out.stdout
    };
    assert_eq!(
        in_work(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            ".:/x",
            "bb",
            "cat",
            "/x/top"
        ]),
        "top\n"
    );
    assert_eq!(
        in_work(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "./sub:/x:ro",
            "bb",
            "cat",
            "/x/inner"
        ]),
        "inner\n"
    );
    assert_eq!(
        in_work(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--mount",
            "type=bind,source=./sub,target=/x",
            "bb",
            "cat",
            "/x/inner"
        ]),
        "inner\n"
    );
    // The record keeps the absolute path, as Docker's daemon receives it.
    in_work(&["create", "--name", "rel", "-v", "./sub:/x", "bb", "true"]);
    sb.id_of("rel");
    let doc = sb.inspect("rel");
    let mounts = &doc["Mounts"];
    assert_eq!(
        mounts[0]["Source"],
        work.join("sub").display().to_string(),
        "{mounts}"
    );
    assert_eq!(
        doc["HostConfig"]["Binds"][0],
        format!("{}:/x", work.join("sub").display()),
        "HostConfig.Binds holds what Docker's CLI sends"
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn v_makes_a_missing_host_directory_and_mount_refuses_one() {
    let sb = sandbox();
    let made = sb.dir().join("made/by/v");
    let spec = format!("{}:/x", made.display());
    assert_eq!(
        sb.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &spec,
            "bb",
            "sh",
            "-c",
            "echo hi > /x/f"
        ]),
        ""
    );
    assert_eq!(std::fs::read_to_string(made.join("f")).unwrap(), "hi\n");
    let missing = sb.dir().join("missing");
    let m = format!("type=bind,source={},target=/x", missing.display());
    let (code, _, err) = sb.code(&["run", "--rm", "--mount", &m, "bb", "true"]);
    assert_eq!(code, 125);
    assert_eq!(
        err,
        format!(
            "berth: invalid mount config for type \"bind\": bind source path does not exist: {}\n",
            missing.display()
        )
    );
    assert!(!missing.exists());
    sb.remove_all_and_assert_clean();
}

#[test]
fn volume_and_network_prune_take_dockers_filters() {
    let sb = Sandbox::new();
    sb.ok(&["volume", "create", "--label", "tier=db", "labelled"]);
    sb.ok(&["volume", "create", "plain"]);
    let out = sb.ok(&["volume", "prune", "-a", "-f", "--filter", "label=tier=db"]);
    assert!(out.starts_with("Deleted Volumes:\nlabelled\n"), "{out}");
    assert_eq!(sb.ok(&["volume", "ls", "-q"]), "plain\n");
    // label! keeps what carries the label; all=true is -a.
    sb.ok(&["volume", "create", "--label", "keep", "kept"]);
    sb.ok(&[
        "volume",
        "prune",
        "-f",
        "--filter",
        "all=true",
        "--filter",
        "label!=keep",
    ]);
    assert_eq!(sb.ok(&["volume", "ls", "-q"]), "kept\n");
    for args in [
        &["volume", "prune", "-f", "--filter", "until=1h"][..],
        &["network", "prune", "-f", "--filter", "bogus=1"][..],
    ] {
        let (code, _, err) = sb.code(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.starts_with("berth: Invalid filter '"), "{err}");
    }
    assert_eq!(
        sb.ok(&["network", "prune", "-f", "--filter", "label=none-has-it"]),
        ""
    );
    sb.ok(&["volume", "rm", "kept"]);
    sb.remove_all_and_assert_clean();
}
