//! A `--rm` container's writable layer is thrown away with it, so its overlay is mounted
//! `volatile` (no sync of the upper directory, at unmount either); a container that is kept is
//! mounted as before.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{Sandbox, IMAGE};

/// The mount options of the container's root, as it sees them.
fn root_options(mountinfo: &str) -> String {
    mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no root in {mountinfo}"))
        .to_string()
}

#[test]
fn only_a_removed_containers_overlay_is_volatile() {
    let sb = Sandbox::new();
    let removed = sb.sh_ok("", "cat /proc/self/mountinfo");
    assert!(
        root_options(&removed).contains("volatile"),
        "{}",
        root_options(&removed)
    );
    let kept = sb.ok(&["run", IMAGE, "cat", "/proc/self/mountinfo"]);
    assert!(
        !root_options(&kept).contains("volatile"),
        "{}",
        root_options(&kept)
    );
    sb.remove_all_and_assert_clean();
}
