//! `run --userns=auto|host` and `--uidmap/--gidmap` for root, proven from the kernel's side: the
//! init's /proc uid_map, the owner on the host of a file the container's root wrote, disjoint
//! ranges for two containers, a range released by `rm`, and `explain`'s words. berth's own line
//! in /etc/subuid and /etc/subgid is removed afterwards when the tests added it.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{Sandbox, IMAGE};
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

/// How many tests use berth's subordinate range now, and whether it was there before them.
static SUBIDS: Mutex<(usize, Option<bool>)> = Mutex::new((0, None));

/// Holds berth's line in /etc/subuid and /etc/subgid for one test; the last guard removes it
/// if no `berth:` line was there before the first.
struct SubidGuard;

fn has_berth_line(file: &str) -> bool {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("berth:"))
}

impl SubidGuard {
    fn new() -> SubidGuard {
        let mut g = SUBIDS.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        if g.1.is_none() {
            g.1 = Some(has_berth_line("/etc/subuid") || has_berth_line("/etc/subgid"));
        }
        SubidGuard
    }
}

impl Drop for SubidGuard {
    fn drop(&mut self) {
        let mut g = SUBIDS.lock().unwrap_or_else(|p| p.into_inner());
        g.0 -= 1;
        if g.0 == 0 && g.1 == Some(false) {
            for file in ["/etc/subuid", "/etc/subgid"] {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with("berth:"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(file, kept).unwrap();
            }
            g.1 = None;
        }
    }
}

/// `(inside, outside, count)` of the first line of the init's uid_map.
fn uid_map(sb: &Sandbox, c: &str) -> (u64, u64, u64) {
    let pid = sb.inspect(c)["State"]["Pid"].as_i64().expect("a pid");
    let text = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let n: Vec<u64> = text
        .split_whitespace()
        .take(3)
        .map(|f| f.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

fn upper_dir(sb: &Sandbox, c: &str) -> std::path::PathBuf {
    let v = sb.inspect(c);
    let dir = v["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap_or_else(|| panic!("no UpperDir: {v}"));
    dir.into()
}

#[test]
fn userns_host_is_the_default_and_root_is_the_hosts_root() {
    let sb = Sandbox::new();
    let out = sb.sh_ok("--network none", "cat /proc/self/uid_map");
    let n: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(n, ["0", "0", "4294967295"]);
    let out = sb.sh_ok("--network none --userns=host", "cat /proc/self/uid_map");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), n);
}

#[test]
fn userns_auto_gives_two_containers_disjoint_ranges_and_rm_releases_them() {
    let _subids = SubidGuard::new();
    let sb = Sandbox::new();
    let a = sb.run_d(&[
        "--network",
        "none",
        "--userns=auto",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /written-by-root; sleep 1000",
    ]);
    let b = sb.run_d(&["--network", "none", "--userns=auto", IMAGE, "sleep", "1000"]);
    let (ia, oa, ca) = uid_map(&sb, &a);
    let (ib, ob, cb) = uid_map(&sb, &b);
    assert_eq!((ia, ib, ca, cb), (0, 0, 65536, 65536));
    assert!(
        oa > 0 && ob > 0,
        "root is mapped to an unprivileged id: {oa} {ob}"
    );
    assert!(
        oa + ca <= ob || ob + cb <= oa,
        "ranges overlap: {oa}+{ca} {ob}+{cb}"
    );
    // The container's root sees its image's files as its own, and what it writes is the
    // mapped id's on the host.
    let ls = sb.ok(&[
        "exec",
        &a,
        "stat",
        "-c",
        "%u %g",
        "/bin/busybox",
        "/written-by-root",
    ]);
    assert_eq!(
        ls, "0 0\n0 0\n",
        "inside, root owns the image and its own file"
    );
    let host = std::fs::metadata(upper_dir(&sb, &a).join("written-by-root")).unwrap();
    assert_eq!((host.uid() as u64, host.gid() as u64), (oa, oa));
    // Its /etc files are its root's: it may edit /etc/hosts, as with Docker.
    sb.ok(&["exec", &a, "sh", "-c", "echo 10.9.9.9 extra >> /etc/hosts"]);
    assert_eq!(
        sb.ok(&[
            "exec",
            &a,
            "stat",
            "-c",
            "%u",
            "/etc/hosts",
            "/etc/resolv.conf"
        ]),
        "0\n0\n"
    );
    let explain = sb.ok(&["explain", &a]);
    assert!(
        explain.contains(&format!("root in the container is uid {oa}")),
        "{explain}"
    );
    // A container without a namespace of its own gets no share of the range.
    sb.ok(&["rm", "-f", &a]);
    let c = sb.run_d(&["--network", "none", "--userns=auto", IMAGE, "sleep", "1000"]);
    let (_, oc, _) = uid_map(&sb, &c);
    assert_eq!(oc, oa, "rm released {oa}: the next container gets it");
    sb.ok(&["rm", "-f", &b, &c]);
}

#[test]
fn uidmap_maps_root_as_given_and_a_bad_map_is_refused() {
    let sb = Sandbox::new();
    let c = sb.run_d(&[
        "--network",
        "none",
        "--uidmap",
        "0:3000000000:65536",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert_eq!(uid_map(&sb, &c), (0, 3_000_000_000, 65536));
    let gid_map = sb.ok(&["exec", &c, "cat", "/proc/self/gid_map"]);
    assert_eq!(
        gid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "3000000000", "65536"],
        "--gidmap defaults to --uidmap"
    );
    sb.ok(&["rm", "-f", &c]);
    let (code, _, err) = sb.cli("run --rm --network none --uidmap 0:1 bb true");
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("CONTAINER_ID:HOST_ID:SIZE"), "{err}");
    let (code, _, err) = sb.cli("run --rm --network none --userns=auto --uidmap 0:1:1 bb true");
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("conflicting options"), "{err}");
}

#[test]
fn cp_and_commit_of_a_userns_container_use_the_containers_own_ids() {
    let _subids = SubidGuard::new();
    let sb = Sandbox::new();
    let c = sb.run_d(&[
        "--network",
        "none",
        "--userns=auto",
        IMAGE,
        "sh",
        "-c",
        "echo r > /by-root; echo a > /by-alice; chown 1000:1000 /by-alice; sleep 1000",
    ]);
    let (_, host_root, _) = uid_map(&sb, &c);
    // Into the container: a copied file is its root's (the mapped id on the host), not the
    // host's root (which it could not even own).
    let src = sb.dir().join("copied");
    std::fs::write(&src, "c\n").unwrap();
    sb.ok(&["cp", src.to_str().unwrap(), &format!("{c}:/copied")]);
    assert_eq!(
        sb.ok(&["exec", &c, "stat", "-c", "%u:%g", "/copied", "/by-alice"]),
        "0:0\n1000:1000\n"
    );
    let host = std::fs::metadata(upper_dir(&sb, &c).join("copied")).unwrap();
    assert_eq!(host.uid() as u64, host_root);
    // Out of it and committed: owners as the container sees them.
    let out = sb.dir().join("out");
    sb.ok(&["cp", &format!("{c}:/by-alice"), out.to_str().unwrap()]);
    sb.ok(&["commit", &c, "userns-commit:1"]);
    let seen = sb.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "userns-commit:1",
        "stat",
        "-c",
        "%u:%g",
        "/by-root",
        "/by-alice",
        "/copied",
    ]);
    assert_eq!(
        seen, "0:0\n1000:1000\n0:0\n",
        "the committed layer has the container's ids"
    );
    sb.ok(&["rm", "-f", &c]);
}

#[test]
fn userns_auto_root_cannot_read_a_root_only_host_file_bound_in() {
    let _subids = SubidGuard::new();
    let sb = Sandbox::new();
    let secret = sb.dir().join("secret");
    std::fs::write(&secret, "host-root-only\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let volume = format!("{}:/secret:ro", secret.display());
    let (code, out) = sb.sh(
        &format!("--network none --userns=auto -v {volume}"),
        "cat /secret; echo rc=$?",
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("host-root-only"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    // Without a user namespace the container's root is the host's and reads it.
    let out = sb.sh_ok(&format!("--network none -v {volume}"), "cat /secret");
    assert_eq!(out, "host-root-only\n");
}

/// Restores a directory's mode when dropped, also when the test fails.
struct ModeGuard(std::path::PathBuf, u32);

impl Drop for ModeGuard {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(self.1));
    }
}

#[test]
fn userns_auto_under_a_directory_others_cannot_search_is_refused_by_name_and_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let _subids = SubidGuard::new();
    let sb = Sandbox::new();
    let dir = sb.dir();
    let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
    let _restore = ModeGuard(dir.clone(), mode);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, _, err) = sb.cli("run --rm --network none --userns=auto bb true");
    assert_eq!(code, 125, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("{} is mode 0700", dir.display())) && err.contains("o+x"),
        "names the directory and the fix: {err}"
    );
    assert_eq!(sb.ok(&["ps", "-aq"]), "", "--rm removed the container");
    drop(_restore);
    // Parents berth makes itself for a new runroot stay searchable: only the runroot is 0700.
    let runroot = dir.join("made/by/berth/run");
    let mut cmd = std::process::Command::new(common::BERTH);
    cmd.arg("--root")
        .arg(&sb.b.root)
        .arg("--runroot")
        .arg(&runroot);
    cmd.args([
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=auto",
        "bb",
        "true",
    ]);
    let out = common::run(cmd, None);
    assert!(out.status.success(), "{}", out.stderr);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&dir.join("made/by")), 0o755);
    assert_eq!(mode(&runroot), 0o700);
    sb.remove_all_and_assert_clean();
}

#[test]
fn userns_auto_gets_a_fresh_volume_as_its_own_and_copy_up_keeps_the_images_owners_mapped() {
    let _subids = SubidGuard::new();
    let sb = Sandbox::new();
    // A new named volume: the container's root writes to it, and the file is the mapped root's.
    let c = sb.run_d(&[
        "--network",
        "none",
        "--userns=auto",
        "-v",
        "fresh:/data",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let (_, root, _) = uid_map(&sb, &c);
    sb.ok(&["exec", &c, "touch", "/data/x"]);
    let data = sb.b.root.join("volumes/fresh/_data");
    assert_eq!(
        std::fs::metadata(data.join("x")).unwrap().uid() as u64,
        root
    );
    assert_eq!(std::fs::metadata(&data).unwrap().uid() as u64, root);
    // Copy-up over the image's /etc: its files arrive as the container's (uid 0 inside).
    let d = sb.run_d(&[
        "--network",
        "none",
        "--userns=auto",
        "-v",
        "etc:/etc",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let (_, droot, _) = uid_map(&sb, &d);
    let owner = sb.ok(&["exec", &d, "stat", "-c", "%u", "/etc/passwd"]);
    assert_eq!(owner.trim(), "0");
    let etc = sb.b.root.join("volumes/etc/_data/passwd");
    assert_eq!(std::fs::metadata(etc).unwrap().uid() as u64, droot);
    sb.ok(&["exec", &d, "touch", "/etc/written"]);
    // A used volume keeps its owners: a host-ids container does not take it back.
    sb.ok(&["rm", "-f", &c, &d]);
    sb.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "fresh:/data",
        IMAGE,
        "touch",
        "/data/y",
    ]);
    assert_eq!(std::fs::metadata(&data).unwrap().uid() as u64, root);
    sb.ok(&["volume", "rm", "fresh", "etc"]);
    sb.remove_all_and_assert_clean();
}
