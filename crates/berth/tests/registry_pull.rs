//! Pull and push against a real registry (Debian's docker-registry): a busybox round trip through
//! `berth push`, multi-layer images with whiteouts and shared layers, platform selection from an
//! index, zstd and uncompressed layers, and an image pushed by skopeo.

mod common;

use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use common::{busybox_rootfs, listing, run, sha256, xattr, Berth};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::Command;

/// The value of the last `KEY: value` line (`Digest: sha256:…`).
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{out}"))
        .trim()
}

#[test]
fn busybox_round_trip_through_push_rmi_and_pull() {
    let reg = Registry::start();
    let b = Berth::new();
    let rootfs = busybox_rootfs();
    let tarball = b.path("busybox.tar");
    std::fs::write(&tarball, &rootfs).unwrap();
    let tarball = tarball.to_str().unwrap();

    let id = b.ok(&[
        "import",
        "-m",
        "from busybox-static",
        tarball,
        "busybox:imported",
    ]);
    let id = id.trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import prints the image ID: {id:?}"
    );
    let short = &id[7..19];

    let remote = reg.reference("test/busybox", "latest");
    let repo = format!("{}/test/busybox", reg.addr);
    assert_eq!(b.ok(&["tag", "busybox:imported", &remote]), "");
    let pushed = b.ok(&["push", &remote]);
    let push_line = pushed.lines().last().unwrap();
    let digest = push_line
        .strip_prefix("latest: digest: ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("push ends with 'latest: digest: … size: …':\n{pushed}"))
        .to_string();
    assert_eq!(reg.manifest_digest("test/busybox", "latest"), digest);
    // Docker's push without a tag says which one it uses; `-q` prints the full reference only.
    let again = b.ok(&["push", &repo]);
    assert!(again.starts_with("Using default tag: latest\n"), "{again}");
    assert_eq!(b.ok(&["push", "-q", &remote]), format!("{remote}\n"));
    // push -a: every local tag of the repository, one digest line each.
    let v2 = reg.reference("test/busybox", "v2");
    b.ok(&["tag", &remote, &v2]);
    let all = b.ok(&["push", "-a", &repo]);
    assert!(
        all.starts_with(&format!("The push refers to repository [{repo}]\n"))
            && all.contains(&format!("latest: digest: {digest} "))
            && all.contains(&format!("v2: digest: {digest} ")),
        "{all}"
    );
    assert_eq!(reg.manifest_digest("test/busybox", "v2"), digest);
    assert_eq!(
        b.fails(&["push", "-a", &remote]),
        "berth: tag can't be used with --all-tags/-a"
    );
    b.ok(&["rmi", &v2]);

    // rmi: one tag of two is untagged; the last tag takes the image and its layer with it.
    assert_eq!(
        b.ok(&["rmi", "busybox:imported"]),
        "Untagged: busybox:imported\n"
    );
    assert_eq!(
        b.ok(&["rmi", &remote]),
        format!("Untagged: {remote}\nUntagged: {repo}@{digest}\nDeleted: {id}\n")
    );
    assert_eq!(b.ok(&["images", "-q"]), "");
    assert!(
        b.layer_dirs().is_empty(),
        "rmi left layers: {:?}",
        b.layer_dirs()
    );

    let pulled = b.ok(&["pull", &remote]);
    assert!(
        pulled.contains("latest: Pulling from test/busybox\n"),
        "{pulled}"
    );
    assert_eq!(field(&pulled, "Digest:"), digest);
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {remote}\n")),
        "{pulled}"
    );
    assert_eq!(pulled.lines().last(), Some(remote.as_str()));

    // The layer is unpacked where its chain ID says, with busybox executable and its applets.
    let diffs = b.diff_dirs(&remote);
    assert_eq!(diffs.len(), 1);
    assert_eq!(b.layer_dirs().len(), 1);
    let bin = diffs[0].join("bin/busybox");
    let meta = std::fs::metadata(&bin).unwrap();
    assert_eq!(meta.len(), std::fs::metadata("/bin/busybox").unwrap().len());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::read_link(diffs[0].join("bin/sh"))
            .unwrap()
            .to_str(),
        Some("busybox")
    );
    assert_eq!(
        std::fs::read(diffs[0].join("etc/hostname")).unwrap(),
        b"berth\n"
    );
    let tmp_mode = std::fs::metadata(diffs[0].join("tmp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(tmp_mode & 0o7777, 0o1777);

    // images, -q, --digests, --format
    let table = b.ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let head: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(head, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], [repo.as_str(), "latest", short]);
    assert_eq!(b.ok(&["images", "-q"]), format!("{short}\n"));
    let with_digests = b.ok(&["images", "--digests"]);
    let row: Vec<&str> = with_digests
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], [repo.as_str(), "latest", digest.as_str(), short]);
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        format!("{remote}\n")
    );

    // image inspect: Docker's shape.
    let v = b.inspect(&remote);
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["RepoTags"], serde_json::json!([remote]));
    assert_eq!(
        v["RepoDigests"],
        serde_json::json!([format!("{repo}@{digest}")])
    );
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!([sha256(&rootfs)]));
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Architecture"], "amd64");
    let env = v["Config"]["Env"].as_array().expect("Config.Env");
    assert!(
        env.iter().any(|e| e.as_str().unwrap().starts_with("PATH=")),
        "{v}"
    );
    assert_eq!(
        b.ok(&["inspect", "--format", "{{.Id}}", short]),
        format!("{id}\n")
    );

    // history: one row, the import.
    let hist = b.ok(&["history", &remote]);
    let lines: Vec<&str> = hist.lines().collect();
    assert_eq!(lines.len(), 2, "{hist}");
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"),
        "{hist}"
    );
    assert!(lines[1].starts_with(short), "{hist}");
    assert!(
        lines[1].contains("berth import") && lines[1].ends_with("from busybox-static"),
        "{hist}"
    );

    // tag adds a name; rmi of one of two names only untags.
    let v1 = reg.reference("test/busybox", "v1");
    b.ok(&["tag", &remote, &v1]);
    let mut names: Vec<String> = b
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, [remote.clone(), v1.clone()]);
    assert_eq!(b.ok(&["rmi", &v1]), format!("Untagged: {v1}\n"));

    // A warm pull changes nothing.
    let warm = b.ok(&["pull", &remote]);
    assert!(
        warm.contains(&format!("Status: Image is up to date for {remote}\n")),
        "{warm}"
    );
    assert_eq!(field(&warm, "Digest:"), digest);
    assert_eq!(b.layer_dirs().len(), 1);

    // `create -q` pulls a missing image without a word: stdout is the container's ID alone.
    b.ok(&["rmi", &remote]);
    let out = b
        .run(&["create", "-q", "--name", "quiet", &remote, "true"])
        .success("create -q");
    assert_eq!(out.stdout.trim().len(), 64, "{}", out.stdout);
    assert!(
        !out.stderr.contains("Unable to find image") && !out.stderr.contains("Pull"),
        "{}",
        out.stderr
    );
    b.ok(&["rm", "quiet"]);
}

/// The base layer of the whiteout images: 250,000 bytes of regular files.
fn base_layer() -> Layer {
    let blob: Vec<u8> = (0..249_989u32).map(|i| (i * 7 % 251) as u8).collect();
    let tar = LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/keep", b"keep", 0o644)
        .file("etc/gone", b"gone", 0o644)
        .dir("opq", 0o755)
        .file("opq/old", b"old", 0o644)
        .file("blob", &blob, 0o644)
        .finish();
    Layer::new(&tar, Compression::Gzip)
}

#[test]
fn whiteouts_and_opaque_dirs_become_overlay_markers() {
    let reg = Registry::start();
    let b = Berth::new();
    let upper = LayerTar::new()
        .dir("etc", 0o755)
        .whiteout("etc", "gone")
        .dir("opq", 0o755)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/new", b"new", 0o644)
        .finish();
    let img = Image::new(vec![base_layer(), Layer::new(&upper, Compression::Gzip)]);
    reg.push_image("test/layered", "1", &img);
    let name = reg.reference("test/layered", "1");
    b.ok(&["pull", &name]);

    let diffs = b.diff_dirs(&name);
    assert_eq!(diffs.len(), 2);
    assert_eq!(std::fs::read(diffs[0].join("etc/gone")).unwrap(), b"gone");
    assert_eq!(listing(&diffs[0].join("opq")), ["old"]);
    // `.wh.gone` is a 0/0 character device named `gone`; the marker files themselves are gone.
    let wh = std::fs::symlink_metadata(diffs[1].join("etc/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device(),
        "whiteout is {:?}",
        wh.file_type()
    );
    assert_eq!(wh.rdev(), 0);
    assert_eq!(listing(&diffs[1].join("etc")), ["gone"]);
    assert_eq!(
        xattr(&diffs[1].join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(listing(&diffs[1].join("opq")), ["new"]);
    assert_eq!(xattr(&diffs[0].join("opq"), "trusted.overlay.opaque"), None);
}

#[test]
fn identical_base_layers_are_stored_once_and_df_counts_the_saving() {
    let reg = Registry::start();
    let b = Berth::new();
    let base = base_layer();
    let a_top = LayerTar::new().file("a", b"a", 0o644).finish();
    let b_top = LayerTar::new().file("b", b"b", 0o644).finish();
    let img_a = Image::new(vec![base.clone(), Layer::new(&a_top, Compression::Gzip)]);
    let img_b = Image::new(vec![base.clone(), Layer::new(&b_top, Compression::Gzip)]);
    reg.push_image("test/a", "1", &img_a);
    reg.push_image("test/b", "1", &img_b);
    let (a, bb) = (reg.reference("test/a", "1"), reg.reference("test/b", "1"));
    b.ok(&["pull", &a]);
    let second = b.ok(&["pull", &bb]);
    assert!(
        second.contains(&format!("{}: Already exists\n", base.short())),
        "{second}"
    );

    assert_eq!(
        b.layer_dirs().len(),
        3,
        "base once, two tops: {:?}",
        b.layer_dirs()
    );
    let (da, db) = (b.diff_dirs(&a), b.diff_dirs(&bb));
    assert_eq!(da[0], db[0], "both images stand on the same base directory");
    assert_ne!(da[1], db[1]);
    let lower = |n: &str| {
        b.inspect(n)["GraphDriver"]["Data"]["LowerDir"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        lower(&a).ends_with(da[0].to_str().unwrap()),
        "{}",
        lower(&a)
    );
    assert!(
        lower(&bb).ends_with(da[0].to_str().unwrap()),
        "{}",
        lower(&bb)
    );

    // 250,000 bytes of base are shared: Docker's summary counts the layers once, its verbose
    // table shows the base as each image's SHARED SIZE.
    let df = b.ok(&["system", "df"]);
    let images = df.lines().find(|l| l.starts_with("Images")).unwrap();
    let cols: Vec<&str> = images.split_whitespace().collect();
    assert_eq!(&cols[..3], ["Images", "2", "0"], "{df}");
    let verbose = b.ok(&["system", "df", "-v"]);
    for repo in ["test/a", "test/b"] {
        let row = verbose
            .lines()
            .find(|l| l.starts_with(&format!("{}/{repo}", reg.addr)))
            .unwrap_or_else(|| panic!("no row for {repo}:\n{verbose}"));
        // ... SIZE  SHARED SIZE  UNIQUE SIZE  CONTAINERS (CREATED has spaces: count from the end).
        let cols: Vec<&str> = row.split_whitespace().rev().collect();
        assert_eq!(cols[2], "250kB", "SHARED SIZE of {repo}: {row}");
        assert_eq!(cols[0], "0", "CONTAINERS of {repo}: {row}");
    }

    // Removing one image keeps the shared base for the other.
    b.ok(&["rmi", &a]);
    assert_eq!(b.layer_dirs().len(), 2);
    assert!(db[0].join("blob").exists());
}

fn arch_image(arch: &str) -> Image {
    let tar = LayerTar::new()
        .file("arch", arch.as_bytes(), 0o644)
        .finish();
    Image::for_platform(vec![Layer::new(&tar, Compression::Gzip)], "linux", arch)
}

#[test]
fn index_pull_picks_the_host_platform_or_the_one_asked_for() {
    let reg = Registry::start();
    let (amd, arm) = (arch_image("amd64"), arch_image("arm64"));
    let index_digest = reg.push_index("test/multi", "1", &[&amd, &arm]);
    let name = reg.reference("test/multi", "1");

    let host = Berth::new();
    let out = host.ok(&["pull", &name]);
    assert_eq!(
        field(&out, "Digest:"),
        index_digest,
        "the digest shown is the index's"
    );
    let v = host.inspect(&name);
    assert_eq!(
        (v["Id"].as_str(), v["Architecture"].as_str()),
        (Some(amd.id()), Some("amd64"))
    );
    assert_eq!(
        std::fs::read(host.diff_dirs(&name)[0].join("arch")).unwrap(),
        b"amd64"
    );

    let other = Berth::new();
    other.ok(&["pull", "--platform", "linux/arm64", &name]);
    let v = other.inspect(&name);
    assert_eq!(
        (v["Id"].as_str(), v["Architecture"].as_str()),
        (Some(arm.id()), Some("arm64"))
    );
    assert_eq!(
        std::fs::read(other.diff_dirs(&name)[0].join("arch")).unwrap(),
        b"arm64"
    );

    let none = Berth::new();
    let err = none.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no matching manifest for linux/s390x")
            && err.contains("linux/amd64, linux/arm64"),
        "{err}"
    );
    assert!(none.layer_dirs().is_empty());
}

#[test]

fn platform_flag_is_honoured_when_another_platform_of_the_index_is_present() {
    let reg = Registry::start();
    let (amd, arm) = (arch_image("amd64"), arch_image("arm64"));
    reg.push_index("test/multi", "1", &[&amd, &arm]);
    let name = reg.reference("test/multi", "1");
    let b = Berth::new();
    b.ok(&["pull", &name]);
    b.ok(&["pull", "--platform", "linux/arm64", &name]);
    let v = b.inspect(&name);
    assert_eq!(
        (v["Id"].as_str(), v["Architecture"].as_str()),
        (Some(arm.id()), Some("arm64"))
    );
    let err = b.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
}

#[test]
fn zstd_and_uncompressed_layers_pull_and_unpack() {
    let reg = Registry::start();
    let b = Berth::new();
    let gz = LayerTar::new()
        .dir("g", 0o755)
        .file("g/file", b"gzip layer", 0o644)
        .finish();
    let zs = LayerTar::new()
        .dir("z", 0o755)
        .file("z/file", &vec![b'z'; 100_000], 0o600)
        .finish();
    let plain = LayerTar::new()
        .dir("p", 0o755)
        .file("p/file", b"plain layer", 0o644)
        .symlink("p/link", "file")
        .hardlink("p/hard", "p/file")
        .finish();
    let layers = vec![
        Layer::new(&gz, Compression::Gzip),
        Layer::new(&zs, Compression::Zstd),
        Layer::new(&plain, Compression::None),
    ];
    assert_eq!(layers[2].digest, layers[2].diff_id);
    let img = Image::new(layers);
    reg.push_image("test/mixed", "1", &img);
    let name = reg.reference("test/mixed", "1");
    b.ok(&["pull", &name]);

    assert_eq!(
        b.inspect(&name)["RootFS"]["Layers"],
        serde_json::json!(img.diff_ids())
    );
    let d = b.diff_dirs(&name);
    assert_eq!(std::fs::read(d[0].join("g/file")).unwrap(), b"gzip layer");
    let z = d[1].join("z/file");
    assert_eq!(std::fs::read(&z).unwrap(), vec![b'z'; 100_000]);
    assert_eq!(
        std::fs::metadata(&z).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read(d[2].join("p/hard")).unwrap(), b"plain layer");
    let (f, h) = (
        std::fs::metadata(d[2].join("p/file")).unwrap(),
        std::fs::metadata(d[2].join("p/hard")).unwrap(),
    );
    assert_eq!(
        (f.ino(), f.nlink()),
        (h.ino(), 2),
        "p/hard is a hardlink of p/file"
    );
    assert_eq!(
        std::fs::read_link(d[2].join("p/link")).unwrap().to_str(),
        Some("file")
    );
}

#[test]
fn image_pushed_by_skopeo_from_an_oci_layout_pulls() {
    let reg = Registry::start();
    let b = Berth::new();
    let tar = LayerTar::new()
        .dir("s", 0o755)
        .file("s/kopeo", b"copied", 0o644)
        .finish();
    let zs = LayerTar::new()
        .file("zstd", b"zstd by skopeo", 0o644)
        .finish();
    let img = Image::new(vec![
        Layer::new(&tar, Compression::Gzip),
        Layer::new(&zs, Compression::Zstd),
    ]);
    let layout = b.path("layout");
    common::image::write_oci_layout(&layout, &img, "v1");
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{}", reg.reference("test/skopeo", "v1")));
    run(cmd, None).success("skopeo copy oci: → docker://");

    let name = reg.reference("test/skopeo", "v1");
    b.ok(&["pull", &name]);
    let v = b.inspect(&name);
    assert_eq!(v["Id"], img.id());
    let d = b.diff_dirs(&name);
    assert_eq!(std::fs::read(d[0].join("s/kopeo")).unwrap(), b"copied");
    assert_eq!(std::fs::read(d[1].join("zstd")).unwrap(), b"zstd by skopeo");
}
