//! `start -i` as Docker's: the container's stdin is attached (with its output, as `-a -i`)
//! when it was made with `-i`; `start -a` alone leaves its stdin closed. `exec -it` with Docker's
//! detach keys (ctrl-p ctrl-q, or `--detach-keys`): the client leaves, the process runs on.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::Sandbox;

#[test]
fn start_i_feeds_the_containers_stdin_and_start_a_does_not() {
    let sb = Sandbox::new();
    let script = "read line; echo \"got [$line]\"; exit 3";
    sb.ok(&["create", "-i", "--name", "reader", "bb", "sh", "-c", script]);
    let out = sb.b.run_with_stdin(&["start", "-i", "reader"], b"hello\n");
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "got [hello]\n");
    // -a without -i: output and status, but the input stays with this client.
    let out =
        sb.b.run_with_stdin(&["start", "-a", "reader"], b"not for it\n");
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "got []\n");
    // -a -i together is the same as -i.
    let out =
        sb.b.run_with_stdin(&["start", "-a", "-i", "reader"], b"again\n");
    assert_eq!(out.stdout, "got [again]\n");
    // A container made without -i has no stdin to attach: it reads end-of-file.
    sb.ok(&["create", "--name", "closed", "bb", "sh", "-c", script]);
    let out = sb.b.run_with_stdin(&["start", "-i", "closed"], b"lost\n");
    assert_eq!(
        (out.status.code(), out.stdout.as_str()),
        (Some(3), "got []\n")
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn exec_detach_keys_leave_the_process_running() {
    let sb = Sandbox::new();
    sb.run_d(&["--name", "e", "bb", "sleep", "60"]);
    let alive = |file: &str| {
        sb.b.run(&[
            "exec",
            "e",
            "sh",
            "-c",
            &format!("kill -0 $(cat {file}) && echo alive"),
        ])
        .stdout
    };
    // Docker's default, ctrl-p ctrl-q: the client leaves with 0, the process runs on.
    let script = "echo $$ > /tmp/one; read x; echo never";
    let (code, out) = sb.in_pty(&["exec", "-it", "e", "sh", "-c", script], "\\020\\021");
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("never"), "{out}");
    assert_eq!(alive("/tmp/one"), "alive\n");
    // Keys of one's own: those detach, and input without them reaches the process.
    let keyed = ["exec", "-it", "--detach-keys", "ctrl-a,x", "e", "sh", "-c"];
    let mut args = keyed.to_vec();
    args.push("echo $$ > /tmp/two; read x; echo never");
    let (code, out) = sb.in_pty(&args, "\\001x");
    assert_eq!(code, 0, "{out}");
    assert_eq!(alive("/tmp/two"), "alive\n");
    let mut args = keyed.to_vec();
    args.push("read x; echo got $x; exit 4");
    let (code, out) = sb.in_pty(&args, "ok\\r");
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("got ok"), "{out}");
    let (code, _, err) = sb.cli("exec -it --detach-keys ctrl-1 e true");
    assert_ne!(code, 0);
    assert!(err.contains("invalid detach keys"), "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn start_detach_keys_leave_the_container_running() {
    let sb = Sandbox::new();
    sb.ok(&[
        "create",
        "-it",
        "--name",
        "s",
        "bb",
        "sh",
        "-c",
        "read x; echo never",
    ]);
    let (code, out) = sb.in_pty(
        &["start", "-ai", "--detach-keys", "ctrl-a,x", "s"],
        "\\001x",
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("never"), "{out}");
    assert_eq!(sb.status("s"), "running", "detached, not stopped");
    let (code, _, err) = sb.cli("start -ai --detach-keys ctrl-1 s");
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("invalid detach keys"), "{err}");
    sb.remove_all_and_assert_clean();
}
