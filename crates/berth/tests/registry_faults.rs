//! A registry that misbehaves: corrupt and truncated blobs (edited in its storage), server errors
//! through a fault proxy, an oversized manifest, an unknown layer media type and a missing tag.
//! Each failure is one clear line, leaves no layer, unpack directory or ingest file behind, and the
//! next good pull succeeds.

mod common;

use common::image::{Compression, Image, Layer, LayerTar};
use common::proxy::{Doc, FakeRegistry, FaultProxy};
use common::registry::Registry;
use common::Berth;
use std::collections::BTreeSet;

fn one_layer_image(c: Compression) -> Image {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let tar = LayerTar::new()
        .dir("data", 0o755)
        .file("data/payload", &data, 0o644)
        .finish();
    Image::new(vec![Layer::new(&tar, c)])
}

/// Pulls `name` and checks the image's one file arrived.
fn pull_ok(b: &Berth, name: &str) {
    b.ok(&["pull", name]);
    let diff = &b.diff_dirs(name)[0];
    assert_eq!(
        std::fs::metadata(diff.join("data/payload")).unwrap().len(),
        200_000
    );
}

/// Flips bytes in the middle of a blob in the registry's storage (its size stays); returns the
/// original bytes.
fn corrupt(reg: &Registry, digest: &str) -> Vec<u8> {
    let path = reg.blob_data(digest);
    let original = std::fs::read(&path).unwrap();
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 16] {
        *b ^= 0xa5;
    }
    std::fs::write(&path, &bad).unwrap();
    original
}

#[test]
fn uncompressed_blob_with_flipped_bytes_fails_with_a_digest_mismatch() {
    let reg = Registry::start();
    let img = one_layer_image(Compression::None);
    reg.push_image("test/corrupt", "1", &img);
    let name = reg.reference("test/corrupt", "1");
    let layer = &img.layers[0];
    let original = corrupt(&reg, &layer.digest);

    let b = Berth::new();
    let err = b.fails(&["pull", &name]);
    assert!(
        err.contains(&layer.diff_id) && err.contains("mismatch"),
        "{err}"
    );
    b.assert_nothing_left(&BTreeSet::new());

    std::fs::write(reg.blob_data(&layer.digest), original).unwrap();
    pull_ok(&b, &name);
}

#[test]
fn gzip_blob_with_flipped_bytes_fails_naming_the_corruption() {
    let reg = Registry::start();
    let img = one_layer_image(Compression::Gzip);
    reg.push_image("test/corrupt", "1", &img);
    let name = reg.reference("test/corrupt", "1");
    let layer = &img.layers[0];
    let original = corrupt(&reg, &layer.digest);

    let b = Berth::new();
    let err = b.fails(&["pull", &name]);
    // The gzip checksum trips before the blob digest can be checked: the error names the layer
    // (by diff_id) and the corruption.
    assert!(
        err.contains(&layer.diff_id) && err.contains("corrupt"),
        "{err}"
    );
    b.assert_nothing_left(&BTreeSet::new());

    std::fs::write(reg.blob_data(&layer.digest), original).unwrap();
    pull_ok(&b, &name);
}

#[test]
fn truncated_blob_fails_and_leaves_nothing() {
    let reg = Registry::start();
    let img = one_layer_image(Compression::Gzip);
    reg.push_image("test/short", "1", &img);
    let name = reg.reference("test/short", "1");
    let layer = &img.layers[0];
    let path = reg.blob_data(&layer.digest);
    std::fs::write(&path, &layer.blob[..layer.blob.len() / 2]).unwrap();

    let b = Berth::new();
    let err = b.fails(&["pull", &name]);
    assert!(
        err.contains(&layer.digest) || err.contains(&layer.diff_id),
        "{err}"
    );
    b.assert_nothing_left(&BTreeSet::new());

    std::fs::write(&path, &layer.blob).unwrap();
    pull_ok(&b, &name);
}

#[test]
fn server_errors_are_retried_until_the_pull_succeeds() {
    let reg = Registry::start();
    let img = one_layer_image(Compression::Gzip);
    reg.push_image("test/flaky", "1", &img);
    let proxy = FaultProxy::start(
        &reg.addr,
        vec![
            ("/manifests/".into(), 1),
            (format!("/blobs/{}", img.layers[0].digest), 2),
            (format!("/blobs/{}", img.config_digest), 1),
        ],
    );
    let b = Berth::new();
    pull_ok(&b, &format!("{}/test/flaky:1", proxy.addr));
    assert_eq!(proxy.failed(), 4, "every injected 500 was met and retried");
}

#[test]
fn persistent_server_errors_fail_naming_the_status() {
    let reg = Registry::start();
    let img = one_layer_image(Compression::Gzip);
    reg.push_image("test/down", "1", &img);
    let proxy = FaultProxy::start(&reg.addr, vec![("/blobs/".into(), usize::MAX)]);
    let b = Berth::new();
    let err = b.fails(&["pull", &format!("{}/test/down:1", proxy.addr)]);
    assert!(
        err.contains("500") && err.contains("injected fault"),
        "{err}"
    );
    b.assert_nothing_left(&BTreeSet::new());
    drop(proxy);
    pull_ok(&b, &reg.reference("test/down", "1"));
}

#[test]
fn manifest_over_4_mib_is_refused() {
    let reg = Registry::start();
    let mut img = one_layer_image(Compression::Gzip);
    reg.push_blobs("test/huge", &img);
    img.set_manifest(Some(
        serde_json::json!({"org.berth.padding": "x".repeat(4_500_000)}),
    ));
    // distribution 2.8 may refuse to store it; then a fake registry serves it.
    let fake;
    let name = match reg.push_manifest("test/huge", "1", common::image::OCI_MANIFEST, &img.manifest)
    {
        Ok(()) => reg.reference("test/huge", "1"),
        Err(refusal) => {
            eprintln!("the registry refused the big manifest ({refusal}); serving it from a fake");
            fake = FakeRegistry::start(vec![Doc {
                path: "/v2/test/huge/manifests/1".into(),
                content_type: common::image::OCI_MANIFEST.into(),
                body: img.manifest.clone(),
            }]);
            format!("{}/test/huge:1", fake.addr)
        }
    };
    let b = Berth::new();
    let err = b.fails(&["pull", &name]);
    assert!(
        err.contains("larger than 4194304 bytes") && err.contains("manifest"),
        "{err}"
    );
    b.assert_nothing_left(&BTreeSet::new());

    let good = one_layer_image(Compression::Gzip);
    reg.push_image("test/huge", "good", &good);
    pull_ok(&b, &reg.reference("test/huge", "good"));
}

#[test]
fn unknown_layer_media_type_is_refused_by_name() {
    let reg = Registry::start();
    let mut img = one_layer_image(Compression::Gzip);
    img.layers[0] = img.layers[0]
        .clone()
        .with_media_type("application/vnd.example.mystery.v1");
    img.set_manifest(None);
    reg.push_image("test/odd", "1", &img);
    let b = Berth::new();
    let err = b.fails(&["pull", &reg.reference("test/odd", "1")]);
    assert!(
        err.contains("unsupported media type")
            && err.contains("application/vnd.example.mystery.v1"),
        "{err}"
    );
    assert!(
        err.contains(&img.layers[0].digest),
        "the error names the layer: {err}"
    );
    b.assert_nothing_left(&BTreeSet::new());

    reg.push_image("test/odd", "2", &one_layer_image(Compression::Gzip));
    pull_ok(&b, &reg.reference("test/odd", "2"));
}

#[test]
fn missing_tag_is_not_found() {
    let reg = Registry::start();
    reg.push_image("test/here", "1", &one_layer_image(Compression::Gzip));
    let b = Berth::new();
    let err = b.fails(&["pull", &reg.reference("test/here", "nope")]);
    assert!(
        err.contains("not found") && err.contains("test/here:nope"),
        "{err}"
    );
    let err = b.fails(&["pull", &reg.reference("test/nowhere", "1")]);
    assert!(
        err.contains("not found") && err.contains("test/nowhere:1"),
        "{err}"
    );
    b.assert_nothing_left(&BTreeSet::new());
    pull_ok(&b, &reg.reference("test/here", "1"));
}
