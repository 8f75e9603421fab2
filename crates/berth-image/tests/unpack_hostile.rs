//! Layers unpacked for real, as root: ordinary trees (modes, owners, times, xattrs, links, devices,
//! whiteouts, sparse files) and hostile ones (`..`, absolute names, symlinks then files through them,
//! hardlinks and whiteouts aimed outside, bounds). Each test builds its tar stream with the tar crate
//! (raw header bytes for names the Builder refuses), unpacks into a fresh temporary directory and
//! checks that nothing appeared or changed outside the layer. The directories go away on drop.

mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::unpack::{UnpackOptions, UnpackStats};
use common::{is_root, lstat, xattr, Layer, Sandbox, MTIME};
use tar::EntryType;

#[test]
fn tree_keeps_modes_owners_mtimes_xattrs_and_setuid() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let mut layer = Layer::new();
    let mut h = Layer::header(b"usr/", EntryType::Directory, 0, 0o750);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_mtime(1_500_000_000);
    layer.add(h, &[]);
    let mut h = Layer::header(b"usr/bin/su", EntryType::Regular, 5, 0o6755);
    h.set_uid(1234);
    h.set_gid(42);
    layer.add(h, b"su-su");
    layer.dir("tmp/", 0o1777);
    layer
        .0
        .append_pax_extensions([
            ("SCHILY.xattr.user.berth", &b"hello"[..]),
            ("mtime", &b"1600000000.25"[..]),
        ])
        .unwrap();
    layer.file("usr/tagged", "x");
    let stats = sb.unpack(&layer.finish()).unwrap();
    assert_eq!(
        stats,
        UnpackStats {
            entries: 4,
            bytes: 6
        }
    );

    let usr = lstat(sb.at("usr"));
    assert_eq!(usr.mode() & 0o7777, 0o750);
    assert_eq!((usr.uid(), usr.gid()), (1000, 1000));
    assert_eq!(usr.mtime(), 1_500_000_000, "children changed the dir mtime");
    let bin = lstat(sb.at("usr/bin"));
    assert_eq!(bin.mode() & 0o7777, 0o755, "implicit parent");
    let su = lstat(sb.at("usr/bin/su"));
    assert_eq!(su.mode() & 0o7777, 0o6755, "chown dropped setuid/setgid");
    assert_eq!((su.uid(), su.gid()), (1234, 42));
    assert_eq!(su.mtime(), MTIME as i64);
    assert_eq!(fs::read(sb.at("usr/bin/su")).unwrap(), b"su-su");
    assert_eq!(lstat(sb.at("tmp")).mode() & 0o7777, 0o1777);
    let tagged = sb.at("usr/tagged");
    assert_eq!(xattr(&tagged, "user.berth").as_deref(), Some(&b"hello"[..]));
    let tagged = lstat(&tagged);
    assert_eq!(
        (tagged.mtime(), tagged.mtime_nsec()),
        (1_600_000_000, 250_000_000)
    );
    sb.assert_outside_untouched();
}

#[test]
fn root_entry_sets_the_layer_directory_metadata() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new().dir("./", 0o700).file("./a", "a").finish();
    sb.unpack(&tar).unwrap();
    let root = lstat(&sb.dest);
    assert_eq!(root.mode() & 0o7777, 0o700);
    assert_eq!(root.mtime(), MTIME as i64);
}

#[test]
fn symlinks_and_hardlinks_keep_targets_owners_and_mtimes() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let mut layer = Layer::new();
    layer.file("usr/file", "data");
    let mut h = Layer::header(b"lnk", EntryType::Symlink, 0, 0o777);
    h.set_link_name_literal("usr/file").unwrap();
    h.set_uid(7);
    h.set_gid(8);
    h.set_mtime(1_234_567_890);
    layer.add(h, &[]);
    layer.hardlink("hard", "usr/file");
    layer.hardlink("usr/hard-abs", "/usr/file");
    layer.symlink("dangling", "/nowhere");
    layer.hardlink("hard-to-symlink", "lnk");
    let stats = sb.unpack(&layer.finish()).unwrap();
    assert_eq!(stats.bytes, 4, "hardlinks add no bytes");

    let lnk = lstat(sb.at("lnk"));
    assert!(lnk.file_type().is_symlink());
    assert_eq!(fs::read_link(sb.at("lnk")).unwrap(), Path::new("usr/file"));
    assert_eq!((lnk.uid(), lnk.gid()), (7, 8));
    assert_eq!(lnk.mtime(), 1_234_567_890);
    let file = lstat(sb.at("usr/file"));
    assert_eq!(file.nlink(), 3);
    assert_eq!(lstat(sb.at("hard")).ino(), file.ino());
    assert_eq!(lstat(sb.at("usr/hard-abs")).ino(), file.ino());
    assert_eq!(
        fs::read_link(sb.at("dangling")).unwrap(),
        Path::new("/nowhere")
    );
    assert_eq!(
        lstat(sb.at("hard-to-symlink")).ino(),
        lnk.ino(),
        "linked the symlink itself"
    );
    sb.assert_outside_untouched();
}

#[test]
fn device_nodes_and_fifos_are_made_as_root() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .node("dev/null", EntryType::Char, 1, 3, 0o666)
        .node("dev/loop0", EntryType::Block, 7, 0, 0o660)
        .node("run/fifo", EntryType::Fifo, 0, 0, 0o600)
        .finish();
    sb.unpack(&tar).unwrap();
    let null = lstat(sb.at("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let lp = lstat(sb.at("dev/loop0"));
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), nix::sys::stat::makedev(7, 0));
    assert!(lstat(sb.at("run/fifo")).file_type().is_fifo());
    assert_eq!(lstat(sb.at("run/fifo")).mtime(), MTIME as i64);
}

#[test]
fn without_same_owner_devices_are_skipped_and_owners_not_applied() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let mut layer = Layer::new();
    let mut h = Layer::header(b"owned", EntryType::Regular, 1, 0o4755);
    h.set_uid(1234);
    layer.add(h, b"x");
    layer.node("dev/null", EntryType::Char, 1, 3, 0o666);
    layer.node("fifo", EntryType::Fifo, 0, 0, 0o644);
    let opts = UnpackOptions {
        same_owner: false,
        ..UnpackOptions::default()
    };
    let stats = sb.unpack_with(&layer.finish(), &opts).unwrap();
    assert_eq!(stats.entries, 3);
    let owned = lstat(sb.at("owned"));
    assert_eq!(owned.uid(), 0, "owner applied without same_owner");
    assert_eq!(owned.mode() & 0o7777, 0o4755);
    assert!(
        !sb.at("dev/null").exists(),
        "device made without same_owner"
    );
    assert!(lstat(sb.at("fifo")).file_type().is_fifo());
}

#[test]
fn whiteouts_become_overlay_char_devices_and_opaque_xattrs() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .file(".wh.gone", "")
        .dir("etc/", 0o755)
        .file("etc/.wh.passwd", "")
        .file("var/lib/.wh..wh..opq", "")
        .file(".wh..wh.plnk/123.456", "aufs")
        .finish();
    let stats = sb.unpack(&tar).unwrap();
    assert_eq!(stats.entries, 5);
    for p in ["gone", "etc/passwd"] {
        let m = lstat(sb.at(p));
        assert!(m.file_type().is_char_device(), "{p} is no whiteout");
        assert_eq!(m.rdev(), 0);
    }
    assert!(!sb.at(".wh.gone").exists());
    assert_eq!(
        xattr(&sb.at("var/lib"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!sb.at("var/lib/.wh..wh..opq").exists());
    assert!(!sb.at(".wh..wh.plnk").exists(), "aufs metadata kept");
}

#[test]
fn dotdot_entries_are_rejected_naming_the_entry() {
    if !is_root() {
        return;
    }
    for name in ["../escape", "a/../../escape", "./../outside/secret"] {
        let sb = Sandbox::new();
        let tar = Layer::new().file("ok", "ok").file(name, "pwned").finish();
        let err = sb.unpack(&tar).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("layer entry {name:?}: path escapes the layer")
        );
        sb.assert_outside_untouched();
    }
}

#[test]
fn absolute_entries_land_inside_the_layer() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let name = format!("{}/pwned", sb.outside.display());
    let tar = Layer::new()
        .file(&name, "inside")
        .file("/etc/hostname", "h")
        .finish();
    sb.unpack(&tar).unwrap();
    assert_eq!(
        fs::read_to_string(sb.outside_in_layer().join("pwned")).unwrap(),
        "inside"
    );
    assert_eq!(fs::read_to_string(sb.at("etc/hostname")).unwrap(), "h");
    sb.assert_outside_untouched();
}

#[test]
fn files_through_symlinks_to_root_or_parent_stay_inside() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .symlink("up", "/")
        .file("up/pwned1", "1")
        .symlink("back", "..")
        .file("back/pwned2", "2")
        .symlink("deep", "../../../../../../../..")
        .file("deep/pwned3", "3")
        .dir("etc/", 0o755)
        .symlink("abs", "/etc")
        .file("abs/passwd", "4")
        .finish();
    sb.unpack(&tar).unwrap();
    for (p, want) in [
        ("pwned1", "1"),
        ("pwned2", "2"),
        ("pwned3", "3"),
        ("etc/passwd", "4"),
    ] {
        assert_eq!(fs::read_to_string(sb.at(p)).unwrap(), want, "{p}");
    }
    assert!(lstat(sb.at("up")).file_type().is_symlink());
    sb.assert_outside_untouched();
}

#[test]
fn file_through_symlink_to_an_outside_directory_is_an_error() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .symlink("out", &sb.outside.display().to_string())
        .file("out/pwned", "pwned")
        .finish();
    let err = sb.unpack(&tar).unwrap_err().to_string();
    assert!(err.starts_with("layer entry \"out/pwned\": "), "{err}");
    sb.assert_outside_untouched();
}

#[test]
fn hardlinks_to_outside_paths_are_rejected() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new().hardlink("evil", "../outside/secret").finish();
    let err = sb.unpack(&tar).unwrap_err().to_string();
    assert_eq!(
        err,
        "layer entry \"evil\": hardlink target \"../outside/secret\" escapes the layer"
    );
    sb.assert_outside_untouched();

    // An absolute target names the layer's own path, which this layer lacks; through a symlink
    // to `/` it is the same.
    let secret = sb.outside.join("secret").display().to_string();
    for tar in [
        Layer::new().hardlink("evil", &secret).finish(),
        Layer::new()
            .symlink("up", "/")
            .hardlink("evil", &format!("up{secret}"))
            .finish(),
    ] {
        let err = sb.unpack(&tar).unwrap_err().to_string();
        assert!(
            err.starts_with("layer entry \"evil\": hardlink target ")
                && err.ends_with("is not in this layer"),
            "{err}"
        );
        assert!(!sb.at("evil").exists());
        sb.assert_outside_untouched();
    }
    // A hardlink to a symlink that points outside links the symlink; a later file replaces it.
    let tar = Layer::new()
        .symlink("s", &secret)
        .hardlink("evil", "s")
        .file("evil", "overwrite")
        .finish();
    sb.unpack(&tar).unwrap();
    assert_eq!(fs::read_to_string(sb.at("evil")).unwrap(), "overwrite");
    sb.assert_outside_untouched();
}

#[test]
fn whiteouts_aimed_outside_are_rejected_or_kept_inside() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new().file("../outside/.wh.secret", "").finish();
    let err = sb.unpack(&tar).unwrap_err().to_string();
    assert_eq!(
        err,
        "layer entry \"../outside/.wh.secret\": path escapes the layer"
    );
    let tar = Layer::new().file("etc/.wh...", "").finish();
    let err = sb.unpack(&tar).unwrap_err().to_string();
    assert_eq!(
        err,
        "layer entry \"etc/.wh...\": whiteout aims outside its directory"
    );
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let name = format!("up{}/.wh.secret", sb.outside.display());
    let tar = Layer::new().symlink("up", "/").file(&name, "").finish();
    sb.unpack(&tar).unwrap();
    let inside = lstat(sb.outside_in_layer().join("secret"));
    assert!(inside.file_type().is_char_device());
    sb.assert_outside_untouched();
}

#[test]
fn huge_sparse_file_stays_sparse() {
    if !is_root() {
        return;
    }
    const SIZE: u64 = 10 << 30;
    let sb = Sandbox::new();
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("big");
    let mut f = fs::File::create(&src).unwrap();
    f.write_all(b"head").unwrap();
    f.seek(SeekFrom::Start(SIZE / 2)).unwrap();
    f.write_all(b"middle").unwrap();
    f.set_len(SIZE).unwrap();
    drop(f);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_path_with_name(&src, "big").unwrap();
    // A plain (not GNU sparse) entry that is all zeros but one byte.
    let mut zeros = vec![0u8; 16 << 20];
    *zeros.last_mut().unwrap() = b'z';
    let mut h = Layer::header(b"zeros", EntryType::Regular, zeros.len() as u64, 0o644);
    h.set_cksum();
    builder.append(&h, &zeros[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    assert!(tar.len() < (17 << 20), "the builder wrote the holes");

    let stats = sb.unpack(&tar).unwrap();
    assert_eq!(stats.bytes, SIZE + zeros.len() as u64);
    let big = lstat(sb.at("big"));
    assert_eq!(big.len(), SIZE);
    assert!(
        big.blocks() * 512 < 1 << 20,
        "{} blocks on disk",
        big.blocks()
    );
    let mut f = fs::File::open(sb.at("big")).unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut f, &mut buf[..4]).unwrap();
    assert_eq!(&buf[..4], b"head");
    f.seek(SeekFrom::Start(SIZE / 2)).unwrap();
    std::io::Read::read_exact(&mut f, &mut buf).unwrap();
    assert_eq!(&buf, b"middle");
    let z = lstat(sb.at("zeros"));
    assert_eq!(z.len(), zeros.len() as u64);
    assert!(z.blocks() * 512 < 1 << 20, "{} blocks on disk", z.blocks());
    assert_eq!(fs::read(sb.at("zeros")).unwrap(), zeros);
}

#[test]
fn max_bytes_bound_is_enforced() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let data = "x".repeat(600);
    let tar = Layer::new().file("a", &data).file("b", &data).finish();
    let opts = UnpackOptions {
        max_bytes: 1000,
        ..UnpackOptions::default()
    };
    let err = sb.unpack_with(&tar, &opts).unwrap_err().to_string();
    assert_eq!(
        err,
        "layer entry \"b\": regular files exceed the bound of 1000 bytes"
    );
    assert!(!sb.at("b").exists());
}

#[test]
fn max_entries_bound_is_enforced() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .file("a", "")
        .file("b", "")
        .file("c", "")
        .finish();
    let opts = UnpackOptions {
        max_entries: 2,
        ..UnpackOptions::default()
    };
    let err = sb.unpack_with(&tar, &opts).unwrap_err().to_string();
    assert_eq!(err, "layer entry \"c\": more entries than the bound of 2");
    assert!(!sb.at("c").exists());
}

#[test]
fn oversized_entry_headers_are_rejected() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let mut layer = Layer::new();
    layer.file("first", "1");
    let huge = vec![b'x'; 20 << 20];
    layer
        .0
        .append_pax_extensions([("SCHILY.xattr.user.big", &huge[..])])
        .unwrap();
    layer.file("second", "2");
    let err = sb.unpack(&layer.finish()).unwrap_err().to_string();
    assert_eq!(
        err,
        "layer: reading the tar stream after entry \"first\": entry headers (PAX records, long names) exceed 1 MiB"
    );
}

#[test]
fn later_file_replaces_symlink_without_writing_through_it() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let secret = sb.outside.join("secret").display().to_string();
    let tar = Layer::new()
        .symlink("f", &secret)
        .file("f", "mine")
        .symlink("dir-link", &sb.outside.display().to_string())
        .dir("dir-link/", 0o755)
        .file("dir-link/x", "x")
        .finish();
    sb.unpack(&tar).unwrap();
    let f = lstat(sb.at("f"));
    assert!(f.file_type().is_file());
    assert_eq!(fs::read_to_string(sb.at("f")).unwrap(), "mine");
    assert!(lstat(sb.at("dir-link")).file_type().is_dir());
    assert_eq!(fs::read_to_string(sb.at("dir-link/x")).unwrap(), "x");
    sb.assert_outside_untouched();
}

#[test]
fn later_file_replaces_a_directory_tree_without_following_its_symlinks() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .dir("d/", 0o755)
        .file("d/sub/deep/x", "x")
        .symlink("d/out", &sb.outside.display().to_string())
        .symlink(
            "d/sub/secret",
            &sb.outside.join("secret").display().to_string(),
        )
        .file("d", "now a file")
        .file("e", "file")
        .dir("e/", 0o700)
        .file("e/y", "y")
        .finish();
    sb.unpack(&tar).unwrap();
    assert_eq!(fs::read_to_string(sb.at("d")).unwrap(), "now a file");
    assert_eq!(lstat(sb.at("e")).mode() & 0o7777, 0o700);
    assert_eq!(fs::read_to_string(sb.at("e/y")).unwrap(), "y");
    sb.assert_outside_untouched();
}

#[test]
fn entries_under_a_replaced_directory_resolve_afresh() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .dir("a/", 0o755)
        .dir("b/", 0o755)
        .symlink("a", "b")
        .file("a/y", "y")
        .finish();
    sb.unpack(&tar).unwrap();
    assert_eq!(fs::read_to_string(sb.at("b/y")).unwrap(), "y");

    let sb = Sandbox::new();
    let tar = Layer::new()
        .dir("c/", 0o755)
        .file("c", "file")
        .file("c/z", "z")
        .finish();
    let err = sb.unpack(&tar).unwrap_err().to_string();
    assert!(
        err.starts_with("layer entry \"c/z\": opening the parent: "),
        "{err}"
    );
    assert_eq!(fs::read_to_string(sb.at("c")).unwrap(), "file");
}

#[test]
fn truncated_stream_is_an_error_naming_the_last_entry() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .file("a", "a")
        .file("b", &"b".repeat(2000))
        .finish();
    let err = sb.unpack(&tar[..1024 + 512 + 700]).unwrap_err().to_string();
    assert!(
        err.starts_with("layer entry \"b\": writing the data: "),
        "{err}"
    );
    let err = sb.unpack(&tar[..1024 + 100]).unwrap_err().to_string();
    assert!(
        err.starts_with("layer: reading the tar stream after entry \"a\": "),
        "{err}"
    );
}
