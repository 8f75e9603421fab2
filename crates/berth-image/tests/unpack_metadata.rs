//! What an image may say about its files besides their contents, unpacked for real as root:
//! only `security.capability` and plain `user.*` xattrs are applied (an overlayfs instruction in a
//! layer cannot redirect a directory to another layer's content), empty numeric header fields as
//! real tools write them read as zero, and names longer than PATH_MAX are refused.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use common::{is_root, lstat, xattr, Layer, Sandbox};
use tar::EntryType;

/// A v2 `security.capability` value granting CAP_NET_BIND_SERVICE (bit 10), permitted.
const CAP_NET_BIND_SERVICE: [u8; 20] = [0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Every xattr an image might try, with whether it may be applied.
fn attempted() -> Vec<(&'static str, &'static [u8], bool)> {
    vec![
        ("trusted.overlay.redirect", b"/secret", false),
        ("trusted.overlay.opaque", b"y", false),
        ("trusted.overlay.metacopy", b"", false),
        ("trusted.overlay.origin", b"\0\xfb\x21\x00", false),
        ("trusted.berth", b"x", false),
        ("security.selinux", b"system_u:object_r:shadow_t:s0", false),
        ("security.ima", b"\x03", false),
        ("user.overlay.redirect", b"/secret", false),
        ("user.overlay.opaque", b"y", false),
        ("system.posix_acl_access", b"\x02\0\0\0", false),
        ("user.mime_type", b"text/plain", true),
        ("security.capability", &CAP_NET_BIND_SERVICE, true),
    ]
}

fn pax_xattrs(layer: &mut Layer) {
    let records: Vec<(String, &[u8])> = attempted()
        .into_iter()
        .map(|(k, v, _)| (format!("SCHILY.xattr.{k}"), v))
        .collect();
    layer
        .0
        .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
        .unwrap();
}

#[test]
fn only_capability_and_plain_user_xattrs_are_applied() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let mut layer = Layer::new();
    pax_xattrs(&mut layer);
    layer.dir("d/", 0o755);
    pax_xattrs(&mut layer);
    layer.file("f", "data");
    sb.unpack(&layer.finish()).unwrap();
    for p in ["d", "f"] {
        for (name, value, allowed) in attempted() {
            let got = xattr(&sb.at(p), name);
            if allowed {
                assert_eq!(got.as_deref(), Some(value), "{p}: {name} lost");
            } else {
                assert_eq!(got, None, "{p}: {name} applied from a layer");
            }
        }
    }
    sb.assert_outside_untouched();
}

/// Mounts an overlay of `lowers` (top first) on `target` with redirects and metacopy honoured, as
/// a kernel configured to follow them would; unmounted on drop.
struct Overlay(std::path::PathBuf);

impl Overlay {
    fn mount(lowers: &[&Path], upper: &Path, work: &Path, target: &Path) -> Overlay {
        let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=on,metacopy=on",
            lower.join(":"),
            upper.display(),
            work.display()
        );
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(target)
            .status()
            .unwrap();
        assert!(st.success(), "mount overlay {opts}");
        Overlay(target.to_path_buf())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn an_overlay_redirect_in_a_layer_cannot_expose_another_layers_directory() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| {
        let p = tmp.path().join(n);
        fs::create_dir(&p).unwrap();
        p
    };
    let (lower, top, upper, work, merged) = (
        dir("lower"),
        dir("top"),
        dir("upper"),
        dir("work"),
        dir("merged"),
    );
    // The lower layer holds a secret the top layer's `public/` must never show.
    let bottom = Layer::new()
        .dir("secret/", 0o700)
        .file("secret/key", "lower secret")
        .finish();
    berth_image::unpack::unpack(&bottom[..], &lower, &Default::default()).unwrap();
    let mut hostile = Layer::new();
    hostile
        .0
        .append_pax_extensions([
            ("SCHILY.xattr.trusted.overlay.redirect", &b"/secret"[..]),
            ("SCHILY.xattr.user.overlay.redirect", &b"/secret"[..]),
        ])
        .unwrap();
    hostile.dir("public/", 0o755);
    berth_image::unpack::unpack(&hostile.finish()[..], &top, &Default::default()).unwrap();
    assert_eq!(xattr(&top.join("public"), "trusted.overlay.redirect"), None);

    {
        let _m = Overlay::mount(&[&top, &lower], &upper, &work, &merged);
        assert!(
            !merged.join("public/key").exists(),
            "the layer's redirect exposed the lower layer's secret"
        );
    }
    // The control: had the xattr been applied, this very mount would have exposed the secret.
    let name = std::ffi::CString::new("trusted.overlay.redirect").unwrap();
    let path = std::ffi::CString::new(top.join("public").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: both strings are NUL-terminated and the value is valid for its length.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            b"/secret".as_ptr().cast(),
            7,
            0,
        )
    };
    assert_eq!(r, 0);
    fs::remove_dir_all(&work).unwrap();
    fs::create_dir(&work).unwrap();
    let _m = Overlay::mount(&[&top, &lower], &upper, &work, &merged);
    assert_eq!(
        fs::read_to_string(merged.join("public/key")).unwrap(),
        "lower secret",
        "the control did not redirect: this test proves nothing on this kernel"
    );
}

#[test]
fn empty_numeric_fields_read_as_zero_as_python_tarfile_writes_them() {
    if !is_root() {
        return;
    }
    // Python's tarfile writes empty (all-NUL) device numbers for a FIFO and a file; a header
    // built here blanks mode, uid, gid and mtime with spaces as well.
    let src = tempfile::tempdir().unwrap();
    let fifo = src.path().join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    fs::write(src.path().join("file"), "py").unwrap();
    let tar = src.path().join("py.tar");
    let made = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, tarfile\n\
             with tarfile.open(sys.argv[1], 'w', format=tarfile.USTAR_FORMAT) as t:\n\
             \x20   t.add(sys.argv[2], 'pipe')\n\
             \x20   t.add(sys.argv[3], 'file')\n",
        )
        .arg(&tar)
        .arg(&fifo)
        .arg(src.path().join("file"))
        .status();
    let mut bytes = match made {
        Ok(st) if st.success() => fs::read(&tar).unwrap(),
        other => panic!("python3 could not write the archive: {other:?}"),
    };
    assert!(
        bytes[329..345].iter().all(|&b| b == 0),
        "python wrote device numbers for a FIFO: the test needs its empty fields"
    );
    // Drop the end marker and the record padding, to append one more entry.
    while bytes.len() >= 512 && bytes[bytes.len() - 512..].iter().all(|&b| b == 0) {
        bytes.truncate(bytes.len() - 512);
    }
    let mut blank = Layer::header(b"spaces", EntryType::Regular, 0, 0o600);
    blank.set_cksum();
    let mut block = blank.as_bytes().to_vec();
    for (a, b) in [(100, 108), (108, 116), (116, 124), (136, 148)] {
        block[a..b].fill(b' ');
    }
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    bytes.extend_from_slice(&block);
    bytes.extend_from_slice(&[0; 1024]);

    let sb = Sandbox::new();
    let stats = sb.unpack(&bytes).unwrap();
    assert_eq!(stats.entries, 3);
    let pipe = lstat(sb.at("pipe"));
    assert!(pipe.file_type().is_fifo());
    assert_eq!(pipe.mode() & 0o777, 0o640);
    assert_eq!(fs::read_to_string(sb.at("file")).unwrap(), "py");
    let spaces = lstat(sb.at("spaces"));
    assert_eq!(
        (
            spaces.mode() & 0o7777,
            spaces.uid(),
            spaces.gid(),
            spaces.mtime()
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn names_and_link_targets_over_path_max_are_refused() {
    if !is_root() {
        return;
    }
    let long = format!("{}/f", "d".repeat(5000));
    for (what, tar) in [
        ("the name", {
            let mut l = Layer::new();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_size(1);
            h.set_mode(0o644);
            l.0.append_data(&mut h, &long, &b"x"[..]).unwrap();
            l.finish()
        }),
        ("the symlink target", {
            let mut l = Layer::new();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_mode(0o777);
            l.0.append_link(&mut h, "lnk", &long).unwrap();
            l.finish()
        }),
    ] {
        let sb = Sandbox::new();
        let err = sb.unpack(&tar).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{what} is {} bytes long, over the bound of 4096 (PATH_MAX)",
                long.len()
            )),
            "{err}"
        );
        sb.assert_outside_untouched();
    }
}
