//! `start -i` as Docker's: the container's stdin is attached (with its output, as `-a -i`)
//! when it was made with `-i`; `start -a` alone leaves its stdin closed.

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
