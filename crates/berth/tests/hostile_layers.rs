//! Hostile layers pushed to a real registry and pulled: `..` and absolute paths, symlinks and
//! hardlinks aimed outside, whiteouts aimed outside, a huge sparse file. Each is refused with a
//! clear error or, where the design says so, unpacked safely inside the layer; nothing appears in a
//! sentinel directory outside the store, and the next pull succeeds.

mod common;

use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use common::{listing, Berth};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A registry, a store and a sentinel directory outside the store holding one file, `canary`.
struct Scene {
    reg: Registry,
    b: Berth,
    sentinel: tempfile::TempDir,
    pushed: usize,
}

/// Enough `..` to climb from any layer directory to `/`.
const UP: &str = "../../../../../../../../../../../../../../../../../..";

impl Scene {
    fn new() -> Scene {
        let sentinel = tempfile::Builder::new()
            .prefix("berth-sentinel-")
            .tempdir()
            .unwrap();
        std::fs::write(sentinel.path().join("canary"), b"canary").unwrap();
        Scene {
            reg: Registry::start(),
            b: Berth::new(),
            sentinel,
            pushed: 0,
        }
    }

    /// The sentinel's absolute path, without the leading `/`.
    fn sentinel(&self) -> String {
        self.sentinel
            .path()
            .to_str()
            .unwrap()
            .trim_start_matches('/')
            .to_string()
    }

    fn canary(&self) -> PathBuf {
        self.sentinel.path().join("canary")
    }

    /// Pushes a one-layer image of `tar` and returns its reference.
    fn push(&mut self, tar: &[u8]) -> String {
        self.pushed += 1;
        let tag = format!("t{}", self.pushed);
        self.reg.push_image(
            "test/hostile",
            &tag,
            &Image::new(vec![Layer::new(tar, Compression::Gzip)]),
        );
        self.reg.reference("test/hostile", &tag)
    }

    /// Pushes `tar`, expects the pull to fail leaving nothing; returns the error line.
    fn refused(&mut self, tar: &[u8]) -> String {
        let before = self.b.layer_dirs();
        let name = self.push(tar);
        let err = self.b.fails(&["pull", &name]);
        self.b.assert_nothing_left(&before);
        self.assert_sentinel_untouched();
        err
    }

    fn assert_sentinel_untouched(&self) {
        assert_eq!(listing(self.sentinel.path()), ["canary"]);
        let meta = std::fs::metadata(self.canary()).unwrap();
        assert_eq!(meta.nlink(), 1, "the canary gained a hardlink");
        assert_eq!(std::fs::read(self.canary()).unwrap(), b"canary");
    }

    /// A good image pulls after whatever came before.
    fn next_pull_succeeds(&mut self) {
        let tar = LayerTar::new()
            .file("ok", format!("good {}", self.pushed).as_bytes(), 0o644)
            .finish();
        let name = self.push(&tar);
        self.b.ok(&["pull", &name]);
        assert!(self.b.diff_dirs(&name)[0].join("ok").is_file());
        self.assert_sentinel_untouched();
    }
}

fn file(name: &str) -> Vec<u8> {
    LayerTar::new().file(name, b"pwned", 0o644).finish()
}

#[test]
fn dotdot_paths_are_refused() {
    let mut s = Scene::new();
    let err = s.refused(&file("../escaped"));
    assert!(
        err.contains(r#"layer entry "../escaped": path escapes the layer"#),
        "{err}"
    );
    assert!(!s.b.root.join("layers/escaped").exists() && !s.b.root.join("escaped").exists());
    let deep = format!("{UP}/{}/dotdot", s.sentinel());
    let err = s.refused(&file(&deep));
    assert!(err.contains("path escapes the layer"), "{err}");
    let err = s.refused(&file("a/b/../../../escaped"));
    assert!(err.contains("path escapes the layer"), "{err}");
    s.next_pull_succeeds();
}

#[test]
fn absolute_paths_land_inside_the_layer() {
    // Docker's choice, and berth's: a leading `/` is dropped, the path is the layer's own.
    let mut s = Scene::new();
    let abs = format!("/{}/absolute", s.sentinel());
    let name = s.push(&file(&abs));
    s.b.ok(&["pull", &name]);
    let inside = s.b.diff_dirs(&name)[0].join(s.sentinel()).join("absolute");
    assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
    s.assert_sentinel_untouched();
    s.next_pull_succeeds();
}

#[test]
fn file_through_a_symlink_aimed_outside_is_refused() {
    let mut s = Scene::new();
    let sentinel_abs = format!("/{}", s.sentinel());
    let tar = LayerTar::new()
        .symlink("escape", &sentinel_abs)
        .file("escape/through", b"pwned", 0o644)
        .finish();
    let err = s.refused(&tar);
    assert!(err.contains(r#"layer entry "escape/through""#), "{err}");

    let relative = format!("{UP}/{}", s.sentinel());
    let tar = LayerTar::new()
        .symlink("up", &relative)
        .file("up/through", b"pwned", 0o644)
        .finish();
    let err = s.refused(&tar);
    assert!(err.contains(r#"layer entry "up/through""#), "{err}");

    let tar = LayerTar::new()
        .dir("d", 0o755)
        .symlink("d/link", &sentinel_abs)
        .dir("d/link/sub", 0o755)
        .finish();
    let err = s.refused(&tar);
    assert!(err.contains(r#"layer entry "d/link/sub""#), "{err}");
    s.next_pull_succeeds();
}

#[test]
fn symlink_inside_the_layer_is_followed_inside() {
    let mut s = Scene::new();
    let tar = LayerTar::new()
        .dir("real", 0o755)
        .symlink("alias", "real")
        .symlink("root", "/")
        .file("alias/file", b"via alias", 0o644)
        .file("root/top", b"via root", 0o644)
        .finish();
    let name = s.push(&tar);
    s.b.ok(&["pull", &name]);
    let diff = &s.b.diff_dirs(&name)[0];
    assert_eq!(std::fs::read(diff.join("real/file")).unwrap(), b"via alias");
    assert_eq!(
        std::fs::read(diff.join("top")).unwrap(),
        b"via root",
        "`/` is the layer root"
    );
    assert_eq!(
        std::fs::read_link(diff.join("alias")).unwrap(),
        Path::new("real")
    );
    assert!(!Path::new("/top").exists());
    s.assert_sentinel_untouched();
}

#[test]
fn hardlinks_to_outside_are_refused() {
    let mut s = Scene::new();
    let relative = format!("{UP}/{}/canary", s.sentinel());
    let tar = LayerTar::new().hardlink("hl", &relative).finish();
    let err = s.refused(&tar);
    assert!(
        err.contains(r#"layer entry "hl": hardlink target"#) && err.contains("escapes the layer"),
        "{err}"
    );

    // An absolute target is the layer's own path, which does not exist in it.
    let absolute = format!("/{}/canary", s.sentinel());
    let tar = LayerTar::new().hardlink("hl", &absolute).finish();
    let err = s.refused(&tar);
    assert!(
        err.contains(r#"layer entry "hl": hardlink target"#) && err.contains("not in this layer"),
        "{err}"
    );

    // Nor through a symlink inside the layer.
    let tar = LayerTar::new()
        .symlink("out", &format!("/{}", s.sentinel()))
        .hardlink("hl", "out/canary")
        .finish();
    let err = s.refused(&tar);
    assert!(err.contains(r#"layer entry "hl""#), "{err}");
    s.next_pull_succeeds();
}

#[test]
fn whiteouts_aimed_outside_are_refused() {
    let mut s = Scene::new();
    let err = s.refused(&LayerTar::new().whiteout("..", "canary").finish());
    assert!(
        err.contains(r#"layer entry "../.wh.canary": path escapes the layer"#),
        "{err}"
    );

    let err = s.refused(
        &LayerTar::new()
            .dir("sub", 0o755)
            .whiteout("sub", "..")
            .finish(),
    );
    assert!(
        err.contains(r#"layer entry "sub/.wh...": whiteout aims outside its directory"#),
        "{err}"
    );

    let tar = LayerTar::new()
        .symlink("out", &format!("/{}", s.sentinel()))
        .whiteout("out", "canary")
        .finish();
    let err = s.refused(&tar);
    assert!(err.contains(r#"layer entry "out/.wh.canary""#), "{err}");

    let tar = LayerTar::new()
        .symlink("out", &format!("/{}", s.sentinel()))
        .file("out/.wh..wh..opq", b"", 0o644)
        .finish();
    let err = s.refused(&tar);
    assert!(err.contains(r#"layer entry "out/.wh..wh..opq""#), "{err}");
    assert_eq!(
        common::xattr(s.sentinel.path(), "trusted.overlay.opaque"),
        None
    );
    s.next_pull_succeeds();
}

/// Bytes a file occupies on disk.
fn allocated(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).unwrap().blocks() * 512
}

/// Bytes allocated under `dir`, recursively.
fn du(dir: &Path) -> u64 {
    let mut total = allocated(dir);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let t = e.file_type().unwrap();
        total += if t.is_dir() {
            du(&e.path())
        } else {
            allocated(&e.path())
        };
    }
    total
}

#[test]
fn huge_sparse_and_zero_files_stay_small_on_disk() {
    const GIB: u64 = 1 << 30;
    const ZEROS: usize = 16 << 20;
    let mut s = Scene::new();
    let tar = LayerTar::new()
        .sparse("huge", GIB)
        .file("zeros", &vec![0u8; ZEROS], 0o644)
        .finish();
    assert!(tar.len() < 17 << 20);
    let name = s.push(&tar);
    s.b.ok(&["pull", &name]);
    let diff = &s.b.diff_dirs(&name)[0];

    let huge = diff.join("huge");
    assert_eq!(std::fs::metadata(&huge).unwrap().len(), GIB);
    assert!(
        allocated(&huge) <= 64 << 10,
        "sparse file allocates {}",
        allocated(&huge)
    );
    let mut tail = [0u8; 3];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(&huge).unwrap(),
        &mut tail,
        GIB - 3,
    )
    .unwrap();
    assert_eq!(&tail, b"END");
    let zeros = diff.join("zeros");
    assert_eq!(std::fs::metadata(&zeros).unwrap().len(), ZEROS as u64);
    assert!(
        allocated(&zeros) <= 64 << 10,
        "zeros allocate {}",
        allocated(&zeros)
    );

    // The whole store (blobs included) is a tiny fraction of the apparent size.
    assert!(
        du(&s.b.root) < 4 << 20,
        "the store takes {} bytes",
        du(&s.b.root)
    );
    let size = s.b.inspect(&name)["Size"].as_u64().unwrap();
    assert_eq!(size, GIB + ZEROS as u64, "Size counts apparent bytes");
    s.assert_sentinel_untouched();
    s.next_pull_succeeds();
}
