//! Image metadata that tries to get more than it should, end to end through the CLI: numeric
//! users matched against names, ambiguous manifests (CVE-2021-41190) in pull and load, configs
//! written the way Go reads them (duplicate keys, other spellings), 100,000 environment entries,
//! NUL bytes, and registries that stall or drop a blob mid-transfer. Each test builds its own
//! hostile input and checks the error names the cause and nothing was left behind.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::image::{Compression, Image, Layer, LayerTar, OCI_INDEX, OCI_MANIFEST};
use common::proxy::{Cut, CutProxy, Doc, FakeRegistry};
use common::registry::Registry;
use common::{sha256, Berth};
use fixture::{busybox_rootfs, Sandbox};
use serde_json::json;
use std::collections::BTreeSet;

/// The busybox layer every image here runs.
fn busybox_layer() -> Layer {
    Layer::new(&busybox_rootfs(), Compression::Gzip)
}

/// A config over `layers` with `config` as its `config` object, written as given.
fn config_text(layers: &[Layer], config: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{config},"rootfs":{{"type":"layers","diff_ids":{}}}}}"#,
        serde_json::to_string(&diff_ids).unwrap()
    )
    .into_bytes()
}

/// Pushes `img` to a fresh registry and pulls it into the sandbox as `name`.
fn pull_into(sb: &Sandbox, reg: &Registry, repo: &str, img: &Image, name: &str) {
    reg.push_image(repo, "1", img);
    sb.ok(&["pull", "-q", &reg.reference(repo, "1")]);
    sb.ok(&["tag", &reg.reference(repo, "1"), name]);
}

fn stdout_of(sb: &Sandbox, args: &[&str]) -> String {
    let (code, out, err) = sb.code(args);
    assert_eq!(code, 0, "berth {args:?}: {err}");
    out
}

#[test]
fn numeric_users_are_uids_whatever_names_the_images_passwd_holds() {
    let sb = Sandbox::new();
    // A passwd whose user named "1000" is root and whose user named "0" is uid 5000.
    let passwd = LayerTar::new()
        .dir("etc", 0o755)
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\n1000:x:0:0:evil:/root:/bin/sh\n0:x:5000:5000:zero:/:/bin/sh\n",
            0o644,
        )
        .file("etc/group", b"root:x:0:\n1000:x:0:\n", 0o644)
        .finish();
    let layers = vec![busybox_layer(), Layer::new(&passwd, Compression::Gzip)];
    let config = config_text(&layers, r#"{"User":"1000","Cmd":["id"]}"#);
    let reg = Registry::start();
    pull_into(
        &sb,
        &reg,
        "test/users",
        &Image::with_config(layers, config),
        "users",
    );

    let ids = |flags: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["users", "sh", "-c", "echo $(id -u):$(id -g)"]);
        stdout_of(&sb, &args).trim().to_string()
    };
    assert_eq!(
        ids(&[]),
        "1000:0",
        "the image's USER 1000 ran as the user named 1000"
    );
    assert_eq!(ids(&["--user", "1000"]), "1000:0");
    assert_eq!(
        ids(&["--user", "0"]),
        "0:0",
        "--user 0 picked the user named 0"
    );
    assert_eq!(ids(&["--user", "1000:1000"]), "1000:1000");
    assert_eq!(ids(&["--user", "root"]), "0:0");

    let id = sb.run_d(&["users", "sleep", "30"]);
    let out = stdout_of(&sb, &["exec", "-u", "1000", &id, "id", "-u"]);
    assert_eq!(
        out.trim(),
        "1000",
        "exec -u 1000 ran as the user named 1000"
    );

    for (user, msg) in [
        (
            "4294967296",
            "uid 4294967296 is out of range (0-2147483647)",
        ),
        (
            "0:99999999999",
            "gid 99999999999 is out of range (0-2147483647)",
        ),
        (
            "ghost",
            "unable to find user ghost: no matching entries in passwd file",
        ),
    ] {
        let (code, _, err) = sb.code(&["run", "--rm", "--user", user, "users", "true"]);
        assert_eq!(code, 125, "--user {user}: {err}");
        assert!(err.contains(msg), "--user {user}: {err}");
    }
    sb.remove_all_and_assert_clean();
}

/// A fake registry serving `repo:1` as `top` (with `content_type`) and the given blobs.
fn fake(repo: &str, content_type: &str, top: &[u8], blobs: &[(String, Vec<u8>)]) -> FakeRegistry {
    let mut docs = vec![Doc {
        path: format!("/v2/{repo}/manifests/1"),
        content_type: content_type.into(),
        body: top.to_vec(),
    }];
    for (digest, body) in blobs {
        docs.push(Doc {
            path: format!("/v2/{repo}/manifests/{digest}"),
            content_type: "application/octet-stream".into(),
            body: body.clone(),
        });
        docs.push(Doc {
            path: format!("/v2/{repo}/blobs/{digest}"),
            content_type: "application/octet-stream".into(),
            body: body.clone(),
        });
    }
    FakeRegistry::start(docs)
}

#[test]
fn ambiguous_manifests_are_refused_by_pull_naming_the_conflict() {
    let img = Image::new(vec![busybox_layer()]);
    let manifest: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    let mut blobs = vec![(img.config_digest.clone(), img.config.clone())];
    blobs.push((img.layers[0].digest.clone(), img.layers[0].blob.clone()));

    let mut with_manifests = manifest.clone();
    with_manifests["manifests"] = json!([img.descriptor()]);
    let mut index_with_layers: serde_json::Value =
        serde_json::from_slice(&common::image::index(&[&img])).unwrap();
    index_with_layers["layers"] = manifest["layers"].clone();
    let mut typed_index = manifest.clone();
    typed_index["mediaType"] = json!(OCI_INDEX);

    // An index whose descriptor calls a manifest a Docker one while it says it is OCI.
    let mut desc = img.descriptor();
    desc["mediaType"] = json!("application/vnd.docker.distribution.manifest.v2+json");
    let lying_index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]
    }))
    .unwrap();
    let mut nested_blobs = blobs.clone();
    nested_blobs.push((img.manifest_digest.clone(), img.manifest.clone()));

    // (Content-Type, the served document, the blobs beside it, the conflict named)
    type Case<'a> = (&'a str, Vec<u8>, Vec<(String, Vec<u8>)>, String);
    let cases: Vec<Case> = vec![
        (
            OCI_MANIFEST,
            serde_json::to_vec(&with_manifests).unwrap(),
            blobs.clone(),
            "a manifest with a manifests field".into(),
        ),
        (
            OCI_INDEX,
            serde_json::to_vec(&index_with_layers).unwrap(),
            blobs.clone(),
            "an index with layers or config fields".into(),
        ),
        (
            OCI_MANIFEST,
            serde_json::to_vec(&typed_index).unwrap(),
            blobs.clone(),
            format!("the Content-Type says {OCI_MANIFEST} but the mediaType field says {OCI_INDEX}"),
        ),
        (
            OCI_INDEX,
            lying_index,
            nested_blobs,
            format!(
                "the descriptor says application/vnd.docker.distribution.manifest.v2+json but the mediaType field says {OCI_MANIFEST}"
            ),
        ),
    ];
    for (ct, top, blobs, why) in cases {
        let reg = fake("test/amb", ct, &top, &blobs);
        let b = Berth::new();
        let err = b.fails(&["pull", &format!("{}/test/amb:1", reg.addr)]);
        assert!(
            err.contains("ambiguous document") && err.contains(&why),
            "{err}"
        );
        assert_eq!(b.ok(&["images", "-q"]), "", "an image was recorded");
        b.assert_nothing_left(&BTreeSet::new());
    }
}

#[test]
fn ambiguous_or_too_deep_oci_layouts_are_refused_by_load() {
    let b = Berth::new();
    let img = Image::new(vec![busybox_layer()]);
    let load_layout = |index_top: Option<serde_json::Value>, extra: &[(String, Vec<u8>)]| {
        let dir = b.path("layout");
        let _ = std::fs::remove_dir_all(&dir);
        common::image::write_oci_layout(&dir, &img, "x");
        for (d, body) in extra {
            std::fs::write(dir.join("blobs/sha256").join(&d[7..]), body).unwrap();
        }
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": index_top.into_iter().collect::<Vec<_>>()})).unwrap(),
        )
        .unwrap();
        let tar = b.path("layout.tar");
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        b.run(&["load", "-i", tar.to_str().unwrap()])
    };
    // index.json calls the manifest an index.
    let mut desc = img.descriptor();
    desc["mediaType"] = json!(OCI_INDEX);
    let out = load_layout(Some(desc), &[]);
    let err = common::expect_failure(out, "load");
    assert!(err.contains("ambiguous document"), "{err}");

    // Five indexes, each pointing at the next, over the manifest.
    let mut extra = Vec::new();
    let mut top = img.descriptor();
    for _ in 0..5 {
        let body = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]}),
        )
        .unwrap();
        let d = sha256(&body);
        top = json!({"mediaType": OCI_INDEX, "digest": d, "size": body.len(),
            "platform": {"os": "linux", "architecture": "amd64"}});
        extra.push((d, body));
    }
    let err = common::expect_failure(load_layout(Some(top), &extra), "load");
    assert!(err.contains("indexes nested deeper than 4 levels"), "{err}");

    // An index that lists nothing loads nothing: an error, not a silent success.
    let err = common::expect_failure(load_layout(None, &[]), "load");
    assert!(err.contains("index.json lists no image"), "{err}");
    assert_eq!(b.ok(&["images", "-q"]), "");
}

#[test]
fn a_config_written_as_go_reads_it_pulls_and_runs() {
    let sb = Sandbox::new();
    let layers = vec![busybox_layer()];
    // Duplicate keys (the last wins), Go's case-insensitive field names, a null and an
    // unknown field: every Go engine runs this.
    let config = config_text(
        &layers,
        r#"{"Env":["A=first"],"env":["A=last","PATH=/bin"],"cmd":["sh","-c","echo $A"],"WorkingDir":null,"Unknown":{"x":1}}"#,
    );
    let reg = Registry::start();
    pull_into(
        &sb,
        &reg,
        "test/go",
        &Image::with_config(layers, config),
        "go",
    );
    assert_eq!(stdout_of(&sb, &["run", "--rm", "go"]), "last\n");
}

#[test]
fn a_config_with_100000_env_entries_runs() {
    let sb = Sandbox::new();
    let layers = vec![busybox_layer()];
    let env: Vec<String> = (0..100_000).map(|i| format!("E{i}=x")).collect();
    let config = config_text(
        &layers,
        &format!(
            r#"{{"Env":{},"Cmd":["sh","-c","env | wc -l"]}}"#,
            serde_json::to_string(&env).unwrap()
        ),
    );
    let reg = Registry::start();
    pull_into(
        &sb,
        &reg,
        "test/env",
        &Image::with_config(layers, config),
        "env",
    );
    let out = stdout_of(&sb, &["run", "--rm", "-e", "E5=y", "env"]);
    let n: usize = out.trim().parse().unwrap();
    assert!(n >= 100_000, "{out}");
    // The bound on time is checked by bench/env.sh, not here.
}

#[test]
fn a_nul_byte_in_the_environment_is_refused_by_name() {
    let sb = Sandbox::new();
    let layers = vec![busybox_layer()];
    let config = config_text(&layers, r#"{"Env":["OK=1","BAD=a\u0000b"],"Cmd":["true"]}"#);
    let reg = Registry::start();
    pull_into(
        &sb,
        &reg,
        "test/nul",
        &Image::with_config(layers, config),
        "nul",
    );
    let (code, _, err) = sb.code(&["run", "--rm", "nul"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("holds a NUL byte") && err.contains("BAD=a"),
        "{err}"
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn a_registry_that_stalls_mid_blob_fails_the_pull_naming_the_blob() {
    let reg = Registry::start();
    let img = Image::new(vec![busybox_layer()]);
    reg.push_image("test/stall", "1", &img);
    let layer = img.layers[0].digest.clone();
    let proxy = CutProxy::start(&reg.addr, &format!("/blobs/{layer}"), 4096, Cut::Stall, 1);
    let b = Berth::new();
    let start = std::time::Instant::now();
    let mut cmd = b.command(&["pull", &format!("{}/test/stall:1", proxy.addr)]);
    cmd.env("BERTH_PULL_IDLE_TIMEOUT", "1");
    let out = common::run(cmd, None);
    let err = common::expect_failure(out, "pull from a stalling registry");
    assert!(
        err.contains(&format!("blob {layer}")) && err.contains("no data for 1s"),
        "{err}"
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    b.assert_nothing_left(&BTreeSet::new());
}

#[test]
fn a_dropped_blob_transfer_resumes_where_it_stopped() {
    let reg = Registry::start();
    let img = Image::new(vec![busybox_layer()]);
    reg.push_image("test/drop", "1", &img);
    let layer = img.layers[0].digest.clone();
    let proxy = CutProxy::start(&reg.addr, &format!("/blobs/{layer}"), 65536, Cut::Drop, 2);
    let b = Berth::new();
    b.ok(&["pull", "-q", &format!("{}/test/drop:1", proxy.addr)]);
    let ranges: Vec<String> = proxy
        .heads()
        .iter()
        .filter(|h| h.contains(&format!("/blobs/{layer}")))
        .filter_map(|h| {
            h.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("range:"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        ranges,
        ["Range: bytes=65536-", "Range: bytes=131072-"],
        "the blob was fetched again from the start"
    );
    b.ok(&["image", "inspect", &format!("{}/test/drop:1", proxy.addr)]);
}

#[test]
fn a_container_whose_log_or_attach_socket_cannot_be_made_does_not_start() {
    let sb = Sandbox::new();
    let id = sb.ok(&["create", "--name", "nolog", fixture::IMAGE, "sleep", "30"]);
    let id = id.trim().to_string();
    sb.track(&id);
    let log = sb.log_file(&id);
    std::fs::create_dir_all(&log).unwrap();
    let (code, _, err) = sb.code(&["start", "nolog"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("the container's log") && err.contains("-json.log"),
        "{err}"
    );
    assert_eq!(sb.status("nolog"), "created");
    assert!(sb.inspect("nolog")["State"]["Error"]
        .as_str()
        .unwrap()
        .contains("the container's log"));
    std::fs::remove_dir(&log).unwrap();

    let attach = sb.b.runroot.join("attach");
    let _ = std::fs::remove_dir_all(&attach);
    std::fs::create_dir_all(&sb.b.runroot).unwrap();
    std::fs::write(&attach, "not a directory").unwrap();
    let (code, _, err) = sb.code(&["start", "nolog"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("the attach socket"), "{err}");
    assert_eq!(sb.status("nolog"), "created");
    std::fs::remove_file(&attach).unwrap();
    sb.ok(&["start", "nolog"]);
    assert_eq!(sb.status("nolog"), "running");
    sb.remove_all_and_assert_clean();
}

/// Runs `berth exec` with memfd_create refused (ENOSYS) by a seccomp filter, as on a kernel
/// without it.
#[cfg(target_arch = "x86_64")]
fn exec_without_memfd(sb: &Sandbox, id: &str, opt_out: bool) -> common::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = sb.b.command(&["exec", id, "echo", "inside"]);
    if opt_out {
        cmd.env("BERTH_EXEC_UNSEALED", "1");
    }
    // SAFETY: pre_exec runs in the forked child before exec; it only calls prctl with a filter
    // that lives on this stack for the duration of the call.
    unsafe {
        cmd.pre_exec(|| {
            const MEMFD_CREATE: u32 = 319;
            let filter = [
                // A = syscall number; if memfd_create then ERRNO(ENOSYS) else ALLOW.
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 0,
                },
                libc::sock_filter {
                    code: 0x15,
                    jt: 0,
                    jf: 1,
                    k: MEMFD_CREATE,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x0005_0000 | libc::ENOSYS as u32,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000,
                },
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut _,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, 2, &prog as *const _ as libc::c_ulong) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    common::run(cmd, None)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn exec_refuses_to_join_a_container_without_the_sealed_binary_copy() {
    let sb = Sandbox::new();
    let id = sb.run_d(&[fixture::IMAGE, "sleep", "30"]);
    let out = exec_without_memfd(&sb, &id, false);
    assert_eq!(out.status.code(), Some(125), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("refusing to exec into a container without the sealed copy")
            && out.stderr.contains("memfd_create"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "", "the process ran");
    let out = exec_without_memfd(&sb, &id, true);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "inside\n");
    assert!(
        out.stderr.contains("going on unprotected"),
        "{}",
        out.stderr
    );
    // The normal path re-executes from the sealed copy and runs.
    assert_eq!(stdout_of(&sb, &["exec", &id, "echo", "sealed"]), "sealed\n");
    sb.remove_all_and_assert_clean();
}

/// Sets an xattr on `path` (not following a final symlink).
fn set_xattr(path: &std::path::Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated and the value is valid for its length.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {name}: {}", std::io::Error::last_os_error());
}

#[test]
fn commit_and_cp_carry_only_allowed_xattrs_into_the_store() {
    let sb = Sandbox::new();
    let id = sb.run_d(&[
        "--name",
        "x",
        fixture::IMAGE,
        "sh",
        "-c",
        "mkdir /d; echo f > /d/f; sleep 30",
    ]);
    fixture::wait_until(
        "the files exist",
        std::time::Duration::from_secs(10),
        || sb.code(&["exec", "x", "test", "-f", "/d/f"]).0 == 0,
    );
    // What overlayfs or a process with the host's privileges could leave in the upper layer.
    let upper = sb.b.root.join("snapshots").join(&id).join("upper");
    for (name, value) in [
        ("trusted.overlay.redirect", &b"/etc"[..]),
        ("trusted.berth", b"x"),
        ("security.selinux", b"system_u:object_r:etc_t:s0"),
        ("user.overlay.opaque", b"y"),
        ("user.keep", b"kept"),
    ] {
        set_xattr(&upper.join("d/f"), name, value);
    }
    sb.ok(&["commit", "x", "committed:1"]);
    let dirs = sb.b.diff_dirs("committed:1");
    let top = dirs.last().unwrap().join("d/f");
    assert_eq!(
        common::xattr(&top, "user.keep").as_deref(),
        Some(&b"kept"[..])
    );
    for name in [
        "trusted.overlay.redirect",
        "trusted.berth",
        "security.selinux",
        "user.overlay.opaque",
    ] {
        assert_eq!(common::xattr(&top, name), None, "{name} reached the layer");
    }
    // The committed blob itself never carries them either (push and save send those bytes).
    let layers = sb.b.inspect("committed:1")["RootFS"]["Layers"].clone();
    let diff_id = layers
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let saved = sb.b.path("committed.tar");
    sb.ok(&["save", "-o", saved.to_str().unwrap(), "committed:1"]);
    let blob = std::fs::read(&saved).unwrap();
    for needle in [
        &b"trusted.overlay"[..],
        b"security.selinux",
        b"user.overlay",
    ] {
        assert!(
            !blob.windows(needle.len()).any(|w| w == needle),
            "{} in the saved layer {diff_id}",
            String::from_utf8_lossy(needle)
        );
    }

    // cp of a tar into the container applies none of them.
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.security.selinux", &b"x"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    tar.append_data(&mut h, "copied", &[][..]).unwrap();
    let bytes = tar.into_inner().unwrap();
    let out = sb.b.run_with_stdin(&["cp", "-", "x:/"], &bytes);
    assert!(out.status.success(), "{}", out.stderr);
    let copied = upper.join("copied");
    assert!(copied.is_dir());
    assert_eq!(common::xattr(&copied, "trusted.overlay.opaque"), None);
    assert_eq!(common::xattr(&copied, "security.selinux"), None);
    sb.remove_all_and_assert_clean();
}
