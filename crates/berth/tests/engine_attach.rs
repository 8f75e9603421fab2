//! Terminals and attaching, through the monitor's attach socket: `run -it` in a real pty (made by
//! util-linux `script`) with the container's exit status, Docker's detach keys leaving the
//! container running, re-attaching, and `attach` to a `-i` container without a terminal (stdin
//! in, stdout and stderr apart, stdin's end passed on, the status out).

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{Sandbox, IMAGE};

#[test]
fn run_it_gives_a_terminal_and_the_containers_exit_status() {
    let sb = Sandbox::new();
    let (code, out) = sb.in_pty(
        &[
            "run",
            "-it",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "tty; echo hi; exit 5",
        ],
        "",
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("/dev/pts/0") && out.contains("hi"), "{out}");
    sb.assert_clean();
}

#[test]
fn detach_keys_leave_the_container_running_and_attach_rejoins_it() {
    let sb = Sandbox::new();
    // ctrl-p ctrl-q straight away: the client leaves, the container stays.
    let (code, out) = sb.in_pty(
        &[
            "run",
            "-it",
            "--name",
            "t",
            IMAGE,
            "sh",
            "-c",
            "read x; echo got $x; exit 7",
        ],
        "\\020\\021",
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(sb.status("t"), "running");
    // Re-attach, type a line: the container reads it, answers and exits with its status.
    let (code, out) = sb.in_pty(&["attach", "t"], "again\\r");
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("got again"), "{out}");
    assert_eq!(sb.exit_state("t").1, 7);
    sb.remove_all_and_assert_clean();
}

#[test]
fn attach_to_an_interactive_container_without_a_terminal_passes_stdin_and_keeps_streams_apart() {
    let sb = Sandbox::new();
    sb.run_d(&[
        "-i",
        "--name",
        "i",
        IMAGE,
        "sh",
        "-c",
        "while read l; do echo out-$l; echo err-$l >&2; done; echo bye; exit 3",
    ]);
    let out = common::run(sb.b.command(&["attach", "i"]), Some(b"a\nb\n"));
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "out-a\nout-b\nbye\n");
    assert_eq!(out.stderr, "err-a\nerr-b\n");
    let logs = sb.ok(&["logs", "i"]);
    assert!(logs.contains("out-a") && logs.contains("bye"), "{logs}");
    sb.remove_all_and_assert_clean();
}
