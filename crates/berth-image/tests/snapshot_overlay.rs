//! Snapshots over the layer store, mounted for real: upper layers shadow lower ones, whiteouts
//! hide files, writes land in the snapshot's upper directory, and an image of 130 layers mounts
//! (past the one-page limit of the classic `lowerdir=` option). Runs as root.

use berth_image::digest::Digest;
use berth_image::layers::chain_ids;
use berth_image::manifest::Compression;
use berth_image::snapshot::{self, Snapshots};
use berth_image::store::Store;
use std::path::Path;

fn layer_tar(files: &[(&str, &[u8])], whiteouts: &[&str]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    for w in whiteouts {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, w, &[][..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn install(store: &Store, tars: &[Vec<u8>]) -> Vec<Digest> {
    let diffs: Vec<Digest> = tars.iter().map(|t| Digest::of_bytes(t)).collect();
    let chains = chain_ids(&diffs);
    for (i, t) in tars.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| &chains[p]);
        store
            .layers
            .unpack_stream(&t[..], Compression::None, &diffs[i], &chains[i], parent)
            .unwrap()
            .install()
            .unwrap();
    }
    chains
}

struct Unmount<'a>(&'a Path);
impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: unmounting a path we mounted in this test.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn snapshot_merges_layers_hides_whiteouts_and_writes_to_its_upper_dir() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let chain = install(
        &store,
        &[
            layer_tar(&[("a", b"lower"), ("gone", b"x"), ("keep", b"k")], &[]),
            layer_tar(&[("a", b"upper")], &[".wh.gone"]),
        ],
    );
    let snaps = Snapshots::open(store.root(), store.layers.clone()).unwrap();
    let m = snaps.prepare("c1", &chain).unwrap();
    let target = dir.path().join("merged");
    std::fs::create_dir(&target).unwrap();
    snapshot::mount(&m, &target).unwrap();
    let _u = Unmount(&target);
    assert_eq!(std::fs::read(target.join("a")).unwrap(), b"upper");
    assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"k");
    assert!(
        !target.join("gone").exists(),
        "the whiteout hides the lower file"
    );
    std::fs::write(target.join("new"), b"n").unwrap();
    assert_eq!(
        std::fs::read(snaps.upper_dir("c1").join("new")).unwrap(),
        b"n"
    );
    assert!(snaps
        .prepare("c1", &chain)
        .unwrap_err()
        .to_string()
        .contains("already exists"));
}

#[test]
fn an_image_of_130_layers_mounts() {
    mount_130_layers();
}

#[test]
fn an_image_of_130_layers_mounts_with_the_classic_option_string() {
    // Kernels before 6.8 have no `lowerdir+`: the short relative links must fit one page.
    std::env::set_var("BERTH_OVERLAY_CLASSIC", "1");
    mount_130_layers();
    std::env::remove_var("BERTH_OVERLAY_CLASSIC");
}

fn mount_130_layers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let tars: Vec<Vec<u8>> = (0..130)
        .map(|i| {
            layer_tar(
                &[(&format!("f{i}"), b"x"), ("top", format!("{i}").as_bytes())],
                &[],
            )
        })
        .collect();
    let chain = install(&store, &tars);
    let snaps = Snapshots::open(store.root(), store.layers.clone()).unwrap();
    let m = snaps.prepare("many", &chain).unwrap();
    let target = dir.path().join("merged");
    std::fs::create_dir(&target).unwrap();
    snapshot::mount(&m, &target).unwrap();
    let _u = Unmount(&target);
    assert!(target.join("f0").exists() && target.join("f129").exists());
    assert_eq!(std::fs::read(target.join("top")).unwrap(), b"129");
}

#[test]
fn removing_a_snapshot_frees_its_layers_for_gc() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let chain = install(&store, &[layer_tar(&[("a", b"1")], &[])]);
    let snaps = Snapshots::open(store.root(), store.layers.clone()).unwrap();
    snaps.prepare("s", &chain).unwrap();
    let live: std::collections::HashSet<Digest> = snaps.live_layers().into_iter().collect();
    store.gc(&live).unwrap();
    assert!(store.layers.has(&chain[0]), "a snapshot keeps its layers");
    snaps.remove("s").unwrap();
    store
        .gc(&snaps.live_layers().into_iter().collect())
        .unwrap();
    assert!(
        !store.layers.has(&chain[0]),
        "no image or snapshot uses it any more"
    );
}
