//! `berth run`'s flags, each proven from inside the container (cgroup files, /proc/self/status,
//! /proc/mounts, what a write or a fork does) with the exact exit code, Docker's defaults (caps,
//! seccomp, no_new_privs, masked paths, /dev/shm, generated /etc files), Docker's exit codes, and an
//! image from a real registry whose config, whiteout and `--pull` policy are honoured.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use common::sha256;
use fixture::{busybox_rootfs, status_field, Sandbox, IMAGE};
use serde_json::json;

/// A capability mask from capability numbers, as /proc/PID/status prints it.
fn caps(bits: &[u32]) -> String {
    format!("{:016x}", bits.iter().fold(0u64, |m, b| m | 1 << b))
}

/// Docker's 14 default capabilities, by number.
const DEFAULT_CAPS: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

const MEMORY: &str = "/sys/fs/cgroup/memory/memory";

#[test]
fn memory_limit_is_visible_inside_and_an_allocation_past_it_is_oom_killed() {
    let sb = Sandbox::new();
    let out = sb.sh_ok(
        "-m 64m",
        &format!("cat {MEMORY}.limit_in_bytes {MEMORY}.memsw.limit_in_bytes"),
    );
    assert_eq!(
        out, "67108864\n134217728\n",
        "the limit, and swap at twice it"
    );
    let (code, _, err) = sb.cli("run --name hog -m 64m bb tail /dev/zero");
    assert_eq!(code, 137, "tail past the limit is SIGKILLed: {err}");
    let v = sb.inspect("hog");
    assert_eq!(v["State"]["OOMKilled"], true, "{v}");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["HostConfig"]["Memory"], 67108864);
    let (code, _, _) = sb.cli("run --rm -m 64m bb dd if=/dev/zero of=/dev/null bs=200M count=1");
    assert_eq!(code, 137, "a 200 MiB dd buffer is OOM-killed too");
    sb.remove_all_and_assert_clean();
}

#[test]
fn cpu_memory_swap_and_blkio_flags_reach_the_cgroup_files() {
    let sb = Sandbox::new();
    let script =
        "cd /sys/fs/cgroup; cat cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares \
        cpuset/cpuset.cpus memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes; \
        cat blkio/blkio.weight 2>/dev/null || cat blkio/blkio.bfq.weight";
    let flags = "--cpus 0.5 -c 512 --cpuset-cpus 0 -m 32m --memory-swap 48m --blkio-weight 300";
    let out = sb.sh_ok(flags, script);
    assert_eq!(out, "50000\n100000\n512\n0\n33554432\n50331648\n300\n");
    sb.cli_ok(&format!("create --name limits {flags} bb true"));
    sb.id_of("limits");
    let hc = &sb.inspect("limits")["HostConfig"];
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["CpuShares"], 512);
    assert_eq!(hc["CpusetCpus"], "0");
    assert_eq!(hc["MemorySwap"], 50331648);
    assert_eq!(hc["BlkioWeight"], 300);
    let (code, _, err) = sb.cli("run --rm -m 32m --memory-swap 16m bb true");
    assert_eq!(code, 125, "swap below memory is refused: {err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn pids_limit_makes_fork_fail() {
    let sb = Sandbox::new();
    let script =
        "cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 20); do sleep 5 & done; echo all";
    let (code, out, err) = sb.code(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code, 2, "sh gives up when fork fails:\n{out}{err}");
    assert_eq!(out, "10\n");
    assert!(err.contains("can't fork"), "{err}");
    let out = sb.sh_ok("", "for i in $(seq 20); do true & done; wait; echo all");
    assert_eq!(out, "all\n", "without the flag 20 forks succeed");
    sb.assert_clean();
}

#[test]
fn read_only_root_refuses_writes_outside_tmpfs() {
    let sb = Sandbox::new();
    let script = "touch /f 2>&1; touch /tmp/t && echo tmp-ok; touch /dev/shm/s && echo shm-ok";
    let out = sb.sh_ok("--read-only --tmpfs /tmp", script);
    assert_eq!(out, "touch: /f: Read-only file system\ntmp-ok\nshm-ok\n");
    assert_eq!(sb.sh_ok("", "touch /f && echo root-ok"), "root-ok\n");
    sb.assert_clean();
}

#[test]
fn user_is_resolved_through_the_images_passwd_and_group() {
    let sb = Sandbox::new();
    assert_eq!(
        sb.sh_ok("-u alice", "id; echo $HOME"),
        "uid=1000(alice) gid=1000(alice) groups=50(staff)\n/home/alice\n"
    );
    assert_eq!(sb.sh_ok("-u alice:staff", "id -u; id -g"), "1000\n50\n");
    assert_eq!(sb.sh_ok("-u 1234:50", "id -u; id -g"), "1234\n50\n");
    assert_eq!(sb.sh_ok("", "id -u"), "0\n");
    let (code, _, err) = sb.cli("run --rm -u ghost bb true");
    assert_eq!(code, 125);
    assert!(err.contains("ghost"), "the error names the user: {err}");
    sb.assert_clean();
}

#[test]
fn cap_drop_and_cap_add_change_the_effective_set() {
    let sb = Sandbox::new();
    let eff = |flags: &str| {
        let out = sb.sh_ok(flags, "cat /proc/self/status");
        status_field(&out, "CapEff").to_string()
    };
    assert_eq!(eff(""), caps(&DEFAULT_CAPS), "Docker's 14");
    let mut changed: Vec<u32> = DEFAULT_CAPS.iter().copied().filter(|&c| c != 0).collect();
    changed.push(21);
    assert_eq!(eff("--cap-drop chown --cap-add SYS_ADMIN"), caps(&changed));
    assert_eq!(eff("--cap-drop ALL"), caps(&[]));
    // The same changes seen in what the process may do.
    let (code, out) = sb.sh("--cap-drop chown", "touch /f; chown 1000 /f 2>&1");
    assert_eq!(
        (code, out.as_str()),
        (1, "chown: /f: Operation not permitted\n")
    );
    assert_eq!(
        sb.sh_ok("", "touch /f; chown 1000 /f && stat -c %u /f"),
        "1000\n"
    );
    let (code, _) = sb.sh("", "hostname renamed 2>/dev/null");
    assert_eq!(code, 1, "sethostname needs CAP_SYS_ADMIN");
    let out = sb.sh_ok("--cap-add sys_admin", "hostname renamed && hostname");
    assert_eq!(out, "renamed\n");
    let (code, _, err) = sb.cli("run --rm --cap-add CAP_BOGUS bb true");
    assert_eq!(code, 125, "{err}");
    sb.assert_clean();
}

#[test]
fn default_seccomp_and_no_new_privs_are_on_and_security_opt_turns_them_off() {
    let sb = Sandbox::new();
    let status = sb.sh_ok("", "cat /proc/self/status");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    // unshare(2) is refused by the profile (a user namespace needs no capability, so only
    // seccomp stops it); as in Docker's profile, CAP_SYS_ADMIN brings it back.
    let (code, out) = sb.sh("", "unshare -U true 2>&1");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    sb.sh_ok("--cap-add SYS_ADMIN", "unshare -u true");

    let flags = "--cap-add SYS_ADMIN --security-opt seccomp=unconfined";
    let status = sb.sh_ok(flags, "unshare -u true && cat /proc/self/status");
    assert_eq!(status_field(&status, "Seccomp"), "0");
    let flags = "--security-opt no-new-privileges=false";
    let status = sb.sh_ok(flags, "cat /proc/self/status");
    assert_eq!(status_field(&status, "NoNewPrivs"), "0");
    // A profile from a file: mkdir fails with EPERM, everything else runs.
    let profile = sb.dir().join("deny-mkdir.json");
    let deny = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
    std::fs::write(&profile, deny.to_string()).unwrap();
    let flags = format!("--security-opt seccomp={}", profile.display());
    let (code, out) = sb.sh(&flags, "grep Seccomp: /proc/self/status; mkdir /d 2>&1");
    assert_eq!(code, 1);
    let want = "Seccomp:\t2\nmkdir: can't create directory '/d': Operation not permitted\n";
    assert_eq!(out, want);
    sb.assert_clean();
}

#[test]
fn privileged_gets_every_capability_and_no_seccomp_or_masks() {
    let sb = Sandbox::new();
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let script = "cat /proc/self/status; grep ' /sys ' /proc/mounts; wc -c < /proc/keys";
    let out = sb.sh_ok("--privileged", script);
    assert_eq!(status_field(&out, "CapEff"), status_field(&host, "CapBnd"));
    assert_eq!(status_field(&out, "Seccomp"), "0");
    assert!(out.contains("sysfs /sys sysfs rw"), "{out}");
    sb.assert_clean();
}

#[test]
fn env_and_env_file_set_the_environment() {
    let sb = Sandbox::new();
    let file = sb.dir().join("env.list");
    std::fs::write(&file, "# a comment\nFILE=1\n\nSPACED=two words\nPASSED\n").unwrap();
    let script = "echo \"$FILE|$SPACED|$PASSED|$FLAG|$PATH\"";
    let file = file.to_str().unwrap();
    let args = [
        "run",
        "--rm",
        "--env-file",
        file,
        "-e",
        "FLAG=x=y",
        "-e",
        "SPACED=flag wins",
    ];
    let mut cmd =
        sb.b.command(&[&args[..], &[IMAGE, "sh", "-c", script]].concat());
    cmd.env("PASSED", "from the caller");
    let out = common::run(cmd, None).success("run with env");
    let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(
        out.stdout,
        format!("1|flag wins|from the caller|x=y|{path}\n")
    );
    let (code, _, err) = sb.cli("run --rm --env-file /no/such/env.list bb true");
    assert_eq!(code, 125, "{err}");
    sb.assert_clean();
}

#[test]
fn workdir_hostname_and_entrypoint_flags() {
    let sb = Sandbox::new();
    assert_eq!(sb.sh_ok("-w /home/alice", "pwd"), "/home/alice\n");
    assert_eq!(sb.sh_ok("", "pwd"), "/\n");
    let script = "hostname; cat /etc/hostname; grep -c myhost /etc/hosts";
    assert_eq!(sb.sh_ok("-h myhost", script), "myhost\nmyhost\n1\n");
    assert_eq!(sb.sh_ok("--hostname other", "hostname"), "other\n");
    // Generated /etc/hosts and /etc/resolv.conf: localhost, and the host's non-loopback resolvers.
    let hosts = sb.sh_ok("", "cat /etc/hosts");
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    let host_ns: Vec<String> = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("nameserver") && !l.contains(" 127.") && !l.contains(" ::1"))
        .map(str::to_string)
        .collect();
    let inside = sb.sh_ok("", "grep ^nameserver /etc/resolv.conf");
    let inside: Vec<&str> = inside.lines().collect();
    if host_ns.is_empty() {
        assert_eq!(inside, ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]);
    } else {
        assert_eq!(inside, host_ns);
    }
    let out = sb.cli_ok("run --name named bb hostname");
    let id = sb.id_of("named");
    assert_eq!(
        out,
        format!("{}\n", &id[..12]),
        "the default hostname is the short ID"
    );
    let out = sb.cli_ok("run --rm --entrypoint echo bb hello world");
    assert_eq!(out, "hello world\n");
    assert_eq!(sb.cli_ok("run --rm --entrypoint /bin/pwd bb"), "/\n");
    sb.remove_all_and_assert_clean();
}

#[test]
fn arguments_after_the_image_are_the_containers_even_with_a_dash() {
    let sb = Sandbox::new();
    let args = [
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        IMAGE,
        "-c",
        "echo $0",
    ];
    assert_eq!(sb.ok(&args), "/bin/sh\n");
    assert_eq!(sb.cli_ok("run --rm --entrypoint echo bb -n x"), "x");
    sb.assert_clean();
}

#[test]
fn workdir_is_created_when_missing() {
    let sb = Sandbox::new();
    assert_eq!(sb.sh_ok("-w /srv/new", "pwd"), "/srv/new\n");
    sb.assert_clean();
}

#[test]
fn bind_mounts_read_only_and_read_write() {
    let sb = Sandbox::new();
    let host = sb.dir().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let ro = format!("-v {}:/mnt:ro", host.display());
    let (code, out) = sb.sh(&ro, "cat /mnt/in; echo x > /mnt/out");
    assert_eq!(
        (code, out.as_str()),
        (1, "from host\n"),
        "a read-only bind refuses writes"
    );
    assert!(!host.join("out").exists());
    let rw = format!("-v {}:/mnt", host.display());
    sb.sh_ok(&rw, "echo from container > /mnt/out");
    let written = std::fs::read_to_string(host.join("out")).unwrap();
    assert_eq!(written, "from container\n");
    // A missing host path: `-v` makes it (Docker), `--mount` refuses it.
    let missing = sb.dir().join("missing");
    let (code, _, err) = sb.cli(&format!(
        "run --rm --mount type=bind,src={},dst=/mnt bb true",
        missing.display()
    ));
    assert_eq!(code, 125, "{err}");
    assert!(!missing.exists());
    sb.sh_ok(&format!("-v {}:/mnt", missing.display()), "true");
    assert!(missing.is_dir(), "-v makes a missing host directory");
    sb.assert_clean();
}

#[test]
fn named_volume_outlives_its_container_and_anonymous_ones_go_with_rm_v() {
    let sb = Sandbox::new();
    let write = |name: &str, volume: &str, file: &str| {
        let script = format!("echo kept > {file}");
        sb.ok(&[
            "run", "--name", name, "-v", volume, IMAGE, "sh", "-c", &script,
        ]);
        sb.id_of(name);
    };
    write("writer", "keep:/data", "/data/k");
    sb.cli_ok("rm -v writer");
    assert_eq!(sb.sh_ok("-v keep:/data", "cat /data/k"), "kept\n");
    let data = sb.b.root.join("volumes/keep/_data/k");
    assert!(data.exists(), "rm -v keeps named volumes");

    let source = |name: &str| {
        let v = sb.inspect(name);
        let m = &v["Mounts"][0];
        assert_eq!(
            (m["Type"].as_str(), m["Destination"].as_str()),
            (Some("volume"), Some("/anon"))
        );
        std::path::PathBuf::from(m["Source"].as_str().unwrap())
    };
    write("a1", "/anon", "/anon/a");
    write("a2", "/anon", "/anon/a");
    let (s1, s2) = (source("a1"), source("a2"));
    assert!(s1.join("a").exists() && s2.join("a").exists() && s1 != s2);
    sb.cli_ok("rm a1");
    assert!(
        s1.join("a").exists(),
        "rm without -v keeps the anonymous volume"
    );
    sb.cli_ok("rm -v a2");
    assert!(
        !s2.parent().unwrap().exists(),
        "rm -v removes {}",
        s2.display()
    );
    sb.assert_clean();
}

#[test]
fn tmpfs_and_mount_flags_mount_what_they_say() {
    let sb = Sandbox::new();
    let host = sb.dir().join("bindsrc");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "bound\n").unwrap();
    let flags = format!(
        "--tmpfs /scratch --mount type=tmpfs,target=/t,tmpfs-size=1m \
         --mount type=bind,source={},target=/m,readonly --mount type=volume,source=mv,target=/v",
        host.display()
    );
    let script =
        "cat /m/f; for d in /scratch /t /m; do grep \" $d \" /proc/mounts | cut -d' ' -f4; \
        done; echo v > /v/f; touch /m/x 2>/dev/null || echo m-ro";
    let out = sb.sh_ok(&flags, script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!((lines[0], lines[4]), ("bound", "m-ro"), "{out}");
    assert!(lines[1].starts_with("rw,nosuid,nodev,noexec"), "{out}");
    assert!(
        lines[2].starts_with("rw,nosuid,nodev") && lines[2].contains("size=1024k"),
        "{out}"
    );
    assert!(lines[3].starts_with("ro,"), "{out}");
    let v = std::fs::read_to_string(sb.b.root.join("volumes/mv/_data/f")).unwrap();
    assert_eq!(v, "v\n");
    sb.assert_clean();
}

#[test]
fn tmpfs_with_options_keeps_nosuid_nodev_noexec() {
    let sb = Sandbox::new();
    let out = sb.sh_ok("--tmpfs /s:size=2m", "grep ' /s ' /proc/mounts");
    for o in ["nosuid", "nodev", "noexec", "size=2048k"] {
        assert!(out.contains(o), "{o} missing: {out}");
    }
    sb.assert_clean();
}

#[test]
fn device_ulimit_shm_and_masked_paths() {
    let sb = Sandbox::new();
    let script = "stat -c '%F %t %T' /dev/mynull; echo x > /dev/mynull && echo wrote";
    let out = sb.sh_ok("--device /dev/null:/dev/mynull", script);
    assert_eq!(out, "character special file 1 3\nwrote\n");
    assert_eq!(sb.sh("", "test -e /dev/mynull").0, 1);
    let limits = "ulimit -n; ulimit -Hn";
    assert_eq!(sb.sh_ok("--ulimit nofile=100:200", limits), "100\n200\n");
    assert_eq!(sb.sh_ok("", limits), "1024\n1024\n");
    let shm = "grep ' /dev/shm ' /proc/mounts | cut -d' ' -f4";
    assert_eq!(
        sb.sh_ok("", shm),
        "rw,nosuid,nodev,noexec,relatime,size=65536k\n"
    );
    assert!(sb.sh_ok("--shm-size 16m", shm).contains("size=16384k"));
    let script = "wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
        echo x > /proc/sys/kernel/domainname 2>/dev/null || echo proc-sys-ro; \
        touch /sys/x 2>/dev/null || echo sys-ro";
    let out = sb.sh_ok("", script);
    assert_eq!(
        out, "0\n0\n0\nproc-sys-ro\nsys-ro\n",
        "masked and read-only paths"
    );
    sb.assert_clean();
}

#[test]
fn network_none_has_only_loopback_and_host_shares_the_hosts() {
    let sb = Sandbox::new();
    assert_eq!(sb.sh_ok("--network none", "ls /sys/class/net"), "lo\n");
    let devs = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
    assert_eq!(sb.sh_ok("--network none", devs), "lo\n");
    // The host's links, read around the container's look: parallel tests make and remove their
    // own bridges and veths meanwhile, so the container sees every link present both times and
    // none that was present neither time.
    let host = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = host();
    let inside = sb.sh_ok("--network host", "ls /sys/class/net");
    let after = host();
    let inside: std::collections::BTreeSet<String> = inside.lines().map(str::to_string).collect();
    let always: std::collections::BTreeSet<String> = before.intersection(&after).cloned().collect();
    assert!(
        inside.is_superset(&always),
        "{inside:?} lacks some of {always:?}"
    );
    assert!(
        inside
            .iter()
            .all(|l| before.contains(l) || after.contains(l)),
        "{inside:?} has links the host never had: {before:?} {after:?}"
    );
    let (code, _, err) = sb.cli("run --rm --network nosuchnet bb true");
    assert_eq!(code, 125, "{err}");
    sb.assert_clean();
}

#[test]
fn interactive_passes_stdin_and_tty_gives_a_terminal() {
    let sb = Sandbox::new();
    let out =
        sb.b.run_with_stdin(&["run", "--rm", "-i", IMAGE, "cat"], b"piped\n");
    assert_eq!(out.success("run -i").stdout, "piped\n");
    let out =
        sb.b.run_with_stdin(&["run", "--rm", IMAGE, "cat"], b"piped\n");
    assert_eq!(
        out.success("run without -i").stdout,
        "",
        "no stdin without -i"
    );
    let script = "test -t 0 && test -t 1 && echo tty; stty size";
    let out = sb.ok(&["run", "--rm", "-t", IMAGE, "sh", "-c", script]);
    assert_eq!(out.replace("\r\n", "\n"), "tty\n24 80\n");
    sb.assert_clean();
}

#[test]
fn exit_codes_follow_docker() {
    let sb = Sandbox::new();
    assert_eq!(sb.cli("run --rm bb true").0, 0);
    assert_eq!(sb.code(&["run", "--rm", IMAGE, "sh", "-c", "exit 3"]).0, 3);
    let (code, _, err) = sb.cli("run --rm --bogus-flag bb true");
    assert_eq!(code, 125, "{err}");
    let (code, _, err) = sb.cli("run --rm --pull never nosuch:image true");
    assert_eq!(code, 125);
    assert!(err.contains("No such image: nosuch:image"), "{err}");
    let (code, _, err) = sb.cli("run --rm bb nosuchcmd");
    assert_eq!(code, 127);
    assert!(err.contains("executable file not found"), "{err}");
    assert_eq!(sb.cli("run --rm bb /no/such/program").0, 127);
    assert!(
        sb.container_dirs().is_empty(),
        "--rm removes failed containers too"
    );
    sb.assert_clean();
}

#[test]
fn non_executable_command_exits_126() {
    let sb = Sandbox::new();
    let (code, _, err) = sb.cli("run --rm bb /etc/passwd");
    assert_eq!(code, 126, "{err}");
    sb.assert_clean();
}

/// What a container of the registry's image reports about itself.
const PROBE: &[u8] = b"#!/bin/sh\ntest -e /etc/secret && echo whiteout-ignored\n\
    echo $GREETING; pwd; id -un; grep -c ' /data ' /proc/mounts; cat /etc/version\n";

/// The registry's image: `etc/secret` in layer one, busybox in layer two, a whiteout of the secret,
/// `etc/version` and the probe in layer three; a config with Entrypoint, Cmd, Env, WorkingDir, User
/// and Volumes.
fn registry_image(version: &str) -> Image {
    let secret = LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/secret", b"s\n", 0o600)
        .finish();
    let top = LayerTar::new()
        .dir("etc", 0o755)
        .whiteout("etc", "secret")
        .file("etc/version", format!("{version}\n").as_bytes(), 0o644)
        .dir("bin", 0o755)
        .file("bin/probe", PROBE, 0o755)
        .finish();
    let layers = [secret, busybox_rootfs(), top].map(|t| Layer::new(&t, Compression::Gzip));
    let mut img = Image::new(layers.to_vec());
    let mut cfg: serde_json::Value = serde_json::from_slice(&img.config).unwrap();
    cfg["config"] = json!({
        "Entrypoint": ["/bin/echo", "ep"], "Cmd": ["default-cmd"],
        "Env": ["PATH=/bin", "GREETING=hi"], "WorkingDir": "/home/alice", "User": "alice",
        "Volumes": {"/data": {}},
    });
    img.config = serde_json::to_vec(&cfg).unwrap();
    img.config_digest = sha256(&img.config);
    img.set_manifest(None);
    img
}

#[test]
fn registry_image_runs_with_its_config_and_pull_always_fetches_it_again() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    reg.push_image("test/cfg", "latest", &registry_image("1"));
    let r = reg.reference("test/cfg", "latest");
    let out = sb.cli_ok(&format!("run --rm --pull always {r}"));
    assert_eq!(out, "ep default-cmd\n", "Entrypoint + Cmd");
    assert_eq!(
        sb.cli_ok(&format!("run --rm {r} given")),
        "ep given\n",
        "arguments replace Cmd"
    );
    let out = sb.cli_ok(&format!("run --rm --entrypoint /bin/probe {r}"));
    assert_eq!(
        out, "hi\n/home/alice\nalice\n1\n1\n",
        "Env, WorkingDir, User, Volumes, whiteout"
    );

    reg.push_image("test/cfg", "latest", &registry_image("2"));
    let version = |pull: &str| {
        sb.cli_ok(&format!(
            "run --rm --pull {pull} --entrypoint cat {r} /etc/version"
        ))
    };
    assert_eq!(
        version("never"),
        "1\n",
        "--pull never uses the stored image"
    );
    assert_eq!(version("missing"), "1\n");
    assert_eq!(
        version("always"),
        "2\n",
        "--pull always fetches the new tag"
    );
    let (code, _, err) = sb.cli(&format!("run --rm --pull sometimes {r}"));
    assert_eq!(code, 125, "{err}");
    sb.assert_clean();
}
