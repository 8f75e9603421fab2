//! `--platform` on the image commands, as Docker 28's: `import` declares the platform, `load`
//! takes only that platform's images from an archive, and `save`, `history`, `rmi` and `push`
//! act only on an image of that platform (berth keeps one platform per image) and otherwise fail
//! with Docker's "was found but does not match the specified platform" and nothing done.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::Berth;
use fixture::Sandbox;

const MISMATCH: &str = "was found but does not match the specified platform";

/// The store's images as `REPOSITORY:TAG` lines, sorted.
fn names(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = b
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// A one-line failure with exit 1 whose message contains `want`.
fn fails(sb: &Sandbox, args: &[&str], want: &str) {
    let (code, out, err) = sb.code(args);
    assert_eq!(code, 1, "{args:?}: {out} {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.contains(want), "{args:?}: {err}");
}

#[test]
fn import_declares_the_platform_and_the_other_commands_act_only_on_a_matching_image() {
    let sb = Sandbox::new();
    let rootfs = sb.b.path("bb-rootfs.tar");
    let rootfs = rootfs.to_str().unwrap();
    sb.ok(&["import", "--platform", "linux/arm64/v8", rootfs, "arm:1"]);
    let platform = |name: &str| {
        sb.ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}/{{.Variant}}",
            name,
        ])
        .trim()
        .to_string()
    };
    assert_eq!(platform("arm:1"), "linux/arm64/v8");
    fails(
        &sb,
        &["import", "--platform", "linux", rootfs],
        "invalid platform",
    );

    // save: a mismatch writes no file; a match (variant implied) saves.
    let out = sb.b.path("arm.tar");
    let out = out.to_str().unwrap();
    let wanted = "wanted linux/amd64, actual: linux/arm64/v8";
    fails(
        &sb,
        &["save", "--platform", "linux/amd64", "-o", out, "arm:1"],
        wanted,
    );
    assert!(
        !std::path::Path::new(out).exists(),
        "no archive on a mismatch"
    );
    sb.ok(&["save", "--platform", "linux/arm64", "-o", out, "arm:1"]);

    // history and rmi: refused on a mismatch, done on a match.
    fails(
        &sb,
        &["history", "--platform", "linux/s390x", "arm:1"],
        MISMATCH,
    );
    let (code, _, err) = sb.code(&["rmi", "--platform", "linux/amd64", "arm:1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(MISMATCH), "{err}");
    assert!(names(&sb.b).contains(&"arm:1".to_string()), "not removed");
    let history = sb.ok(&["history", "--platform", "linux/arm64/v8", "-q", "arm:1"]);
    assert_eq!(history.lines().count(), 1, "one step: {history}");

    // push: refused before anything reaches a registry (none runs at this address).
    fails(
        &sb,
        &["push", "--platform", "linux/amd64", "127.0.0.1:9/arm:1"],
        "No such image",
    );
    sb.ok(&["tag", "arm:1", "127.0.0.1:9/arm:1"]);
    fails(
        &sb,
        &["push", "--platform", "linux/amd64", "127.0.0.1:9/arm:1"],
        MISMATCH,
    );

    sb.ok(&[
        "rmi",
        "--platform",
        "linux/arm64/v8",
        "arm:1",
        "127.0.0.1:9/arm:1",
    ]);
    assert!(!names(&sb.b).contains(&"arm:1".to_string()));
    sb.remove_all_and_assert_clean();
}

#[test]
fn load_with_a_platform_takes_only_that_platforms_images_and_loads_nothing_without_one() {
    let sb = Sandbox::new();
    let rootfs = sb.b.path("bb-rootfs.tar");
    let rootfs = rootfs.to_str().unwrap();
    sb.ok(&["import", "--platform", "linux/arm64/v8", rootfs, "arm:1"]);
    sb.ok(&["import", "--platform", "linux/ppc64le", rootfs, "ppc:1"]);
    let both = sb.b.path("both.tar");
    let both = both.to_str().unwrap();
    sb.ok(&["save", "-o", both, "arm:1", "ppc:1"]);

    let other = Sandbox::new();
    let out = other.ok(&["load", "--platform", "linux/arm64", "-i", both]);
    assert_eq!(out.trim(), "Loaded image: arm:1");
    assert_eq!(names(&other.b), ["arm:1", "bb:imported", "bb:latest"]);

    let third = Sandbox::new();
    let (code, _, err) = third.code(&["load", "--platform", "linux/s390x", "-i", both]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no image for linux/s390x")
            && err.contains("linux/arm64/v8")
            && err.contains("linux/ppc64le"),
        "names what the archive has: {err}"
    );
    assert_eq!(
        names(&third.b),
        ["bb:imported", "bb:latest"],
        "nothing loaded"
    );
    for s in [sb, other, third] {
        s.remove_all_and_assert_clean();
    }
}
