//! Images in and out of tar archives: `berth save` loaded by podman and by berth itself, skopeo's
//! docker-archive and oci-archive loaded by berth, and `berth import` of a tarball from stdin.

mod common;

use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use common::{busybox_rootfs, run, sha256, Berth};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A busybox image imported into `b` as `name`; returns its ID.
fn import_busybox(b: &Berth, name: &str) -> String {
    let tarball = b.path("busybox-rootfs.tar");
    std::fs::write(&tarball, busybox_rootfs()).unwrap();
    b.ok(&["import", tarball.to_str().unwrap(), name])
        .trim()
        .to_string()
}

fn assert_busybox_unpacked(b: &Berth, name: &str) {
    let diff = &b.diff_dirs(name)[0];
    let want = std::fs::metadata("/bin/busybox").unwrap().len();
    assert_eq!(
        std::fs::metadata(diff.join("bin/busybox")).unwrap().len(),
        want
    );
    assert_eq!(
        std::fs::read_link(diff.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
}

/// A podman of its own (`--root`, `--runroot`, `--tmpdir`, no events), emptied, unmounted and
/// removed on drop: nothing of it outlives the test.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::Builder::new()
                .prefix("berth-podman-")
                .tempdir()
                .unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .arg("--tmpdir")
            .arg(self.dir.path().join("tmp"))
            .args(["--events-backend", "none"])
            .args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        run(self.command(args), None)
            .success(&format!("podman {}", args.join(" ")))
            .stdout
    }

    /// Mount points at or under our directory, deepest first.
    fn mounts(&self) -> Vec<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut v: Vec<PathBuf> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(PathBuf::from)
            .filter(|p| p.starts_with(self.dir.path()))
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        v
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = run(self.command(&["rmi", "-a", "-f"]), None);
        for m in self.mounts() {
            let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a NUL-terminated path; MNT_DETACH on a mount this test's podman made.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

#[test]
fn saved_archive_loads_in_podman() {
    let b = Berth::new();
    let id = import_busybox(&b, "busybox:saved");
    let archive = b.path("saved.tar");
    assert_eq!(
        b.ok(&["save", "-o", archive.to_str().unwrap(), "busybox:saved"]),
        ""
    );

    let podman = Podman::new();
    let loaded = podman.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("busybox:saved"), "podman load: {loaded}");
    let images = podman.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    assert_eq!(images, format!("docker.io/library/busybox:saved {id}\n"));
    let layers = podman.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "busybox:saved",
    ]);
    assert_eq!(
        layers.trim(),
        format!("[\"{}\"]", sha256(&busybox_rootfs()))
    );
    podman.ok(&["rmi", "-a", "-f"]);
    assert_eq!(podman.ok(&["images", "-q"]), "");
}

#[test]
fn berth_loads_its_own_save_output() {
    let src = Berth::new();
    let id = import_busybox(&src, "busybox:saved");
    src.ok(&["tag", "busybox:saved", "example.com/team/busybox:2"]);
    let archive = src.path("saved.tar");
    src.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox:saved",
        "example.com/team/busybox:2",
    ]);

    let dst = Berth::new();
    let out = dst.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:saved\n"), "{out}");
    assert!(
        out.contains("Loaded image: example.com/team/busybox:2\n"),
        "{out}"
    );
    assert_eq!(dst.inspect("busybox:saved")["Id"], id.as_str());
    assert_eq!(dst.inspect("example.com/team/busybox:2")["Id"], id.as_str());
    assert_busybox_unpacked(&dst, "busybox:saved");

    // The same archive from stdin, into a third store.
    let third = Berth::new();
    let out = third.run_with_stdin(&["load"], &std::fs::read(&archive).unwrap());
    assert!(out
        .success("berth load < archive")
        .stdout
        .contains("Loaded image: busybox:saved\n"));
    assert_eq!(third.inspect("busybox:saved")["Id"], id.as_str());
}

#[test]
fn berth_loads_skopeo_docker_and_oci_archives() {
    let reg = Registry::start();
    let base = LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/os", b"skopeo\n", 0o644)
        .finish();
    let top = LayerTar::new().file("top", b"top layer", 0o755).finish();
    let img = Image::new(vec![
        Layer::new(&base, Compression::Gzip),
        Layer::new(&top, Compression::Gzip),
    ]);
    reg.push_image("test/arch", "1", &img);
    let src = format!("docker://{}", reg.reference("test/arch", "1"));

    for transport in ["docker-archive", "oci-archive"] {
        let b = Berth::new();
        let archive = b.path(&format!("{transport}.tar"));
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--src-tls-verify=false", &src])
            .arg(format!("{transport}:{}:test/arch:1", archive.display()));
        run(cmd, None).success(&format!("skopeo copy to {transport}"));

        let out = b.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(out, "Loaded image: test/arch:1\n", "{transport}");
        let v = b.inspect("test/arch:1");
        assert_eq!(
            v["RootFS"]["Layers"],
            serde_json::json!(img.diff_ids()),
            "{transport}"
        );
        assert_eq!(
            v["RepoTags"],
            serde_json::json!(["test/arch:1"]),
            "{transport}"
        );
        let d = b.diff_dirs("test/arch:1");
        assert_eq!(std::fs::read(d[0].join("etc/os")).unwrap(), b"skopeo\n");
        assert_eq!(std::fs::read(d[1].join("top")).unwrap(), b"top layer");
    }
}

#[test]
fn import_reads_a_gzip_tarball_from_stdin() {
    let b = Berth::new();
    let rootfs = busybox_rootfs();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&rootfs).unwrap();
    let out = b.run_with_stdin(&["import", "-", "busybox:stdin"], &gz.finish().unwrap());
    let id = out
        .success("berth import - < rootfs.tar.gz")
        .stdout
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:stdin\n"
    );
    let v = b.inspect("busybox:stdin");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!([sha256(&rootfs)]));
    assert_eq!(v["Comment"], "Imported from tarball");
    assert_busybox_unpacked(&b, "busybox:stdin");
}

#[test]
fn load_of_an_archive_that_holds_no_image_fails_clearly() {
    let b = Berth::new();
    let archive = b.path("empty.tar");
    std::fs::write(
        &archive,
        LayerTar::new().file("readme", b"hello", 0o644).finish(),
    )
    .unwrap();
    let err = b.fails(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        err.contains("manifest.json") && err.contains("index.json"),
        "{err}"
    );
    b.assert_nothing_left(&Default::default());
}
