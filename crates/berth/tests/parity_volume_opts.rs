//! `volume create --opt` with the local driver's options, as Docker's, proven from inside the
//! container: a tmpfs volume (`type=tmpfs,device=tmpfs,o=size=64m`) is a tmpfs of that size
//! where it is mounted; a bind volume (`type=none,o=bind,device=/path`) is the host directory,
//! which removing the volume never deletes; bad options are refused at create.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::Sandbox;

#[test]
fn tmpfs_and_bind_volumes_are_mounted_as_their_options_say() {
    let sb = Sandbox::new();
    sb.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs,device=tmpfs,o=size=64m",
        "tv",
    ]);
    let out = sb.sh_ok("-v tv:/data", "grep ' /data ' /proc/mounts");
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields[2], "tmpfs", "{out}");
    assert!(fields[3].contains("size=65536k"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&sb.ok(&["volume", "inspect", "tv"])).unwrap();
    assert_eq!(
        v[0]["Options"],
        serde_json::json!({"device": "tmpfs", "o": "size=64m", "type": "tmpfs"})
    );
    // A bind volume: the host's directory, seen and written through the volume.
    let host = sb.dir().join("bound");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("marker"), "from the host\n").unwrap();
    let device = format!("device={}", host.display());
    sb.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &device,
        "bv",
    ]);
    let out = sb.sh_ok("-v bv:/data", "cat /data/marker; echo inside > /data/new");
    assert_eq!(out, "from the host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("new")).unwrap(),
        "inside\n"
    );
    sb.ok(&["volume", "rm", "tv", "bv"]);
    assert_eq!(
        std::fs::read_to_string(host.join("marker")).unwrap(),
        "from the host\n",
        "removing the volume leaves the host's directory alone"
    );
    assert!(host.join("new").exists());
    for (opts, want) in [
        (vec!["--opt", "type=nfs,device=:/export"], "\"nfs\""),
        (vec!["--opt", "color=blue"], "\"color\""),
        (
            vec!["--opt", "type=none,o=bind,device=/nonexistent-berth"],
            "/nonexistent-berth",
        ),
        (
            vec!["--opt", "type=tmpfs,device=tmpfs,o=bogus"],
            "o=\"bogus\"",
        ),
        (vec!["--opt", "type=tmpfs"], "device="),
    ] {
        let mut args = vec!["volume", "create"];
        args.extend(opts.iter().copied());
        args.push("refused");
        let (code, _, err) = sb.code(&args);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let ls = sb.ok(&["volume", "ls", "-q"]);
    assert!(!ls.contains("refused"), "{ls}");
    sb.remove_all_and_assert_clean();
}
