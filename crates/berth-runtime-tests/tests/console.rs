//! The console socket receives a pty master (runc's SCM_RIGHTS protocol); the container
//! sees a terminal of the configured size.

use berth_runtime_tests::console::{read_until_closed, ConsoleSocket};
use berth_runtime_tests::runtime::Outcome;
use berth_runtime_tests::Fixture;
use serde_json::json;
use std::time::Duration;

/// `[GLOBAL…] create --console-socket S`, then `start`: create's outcome and everything the
/// container printed on the pty it received.
fn create_on_console(fx: &Fixture, global: &[&str]) -> (Outcome, String) {
    let sock = ConsoleSocket::bind(&fx.base.join("console.sock"));
    fx.bundle.write();
    let sock_arg = sock.path.display().to_string();
    let bundle = fx.bundle_dir();
    let mut args = global.to_vec();
    args.extend([
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        &sock_arg,
        &fx.id,
    ]);
    let create = fx.rt.spawn(&args);
    let master = sock.receive_master(Duration::from_secs(20));
    let created = create.wait(Duration::from_secs(20)).ok();
    fx.start().ok();
    (created, read_until_closed(master, Duration::from_secs(10)))
}

#[test]
fn console_socket_receives_a_pty_of_the_configured_size() {
    let mut fx = Fixture::new("console", &["sh", "-c", "tty; stty size"]);
    fx.bundle.spec["process"]["terminal"] = json!(true);
    fx.bundle.spec["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    let (_, text) = create_on_console(&fx, &[]);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| *l == "/dev/console" || l.starts_with("/dev/pts/")),
        "tty is not a terminal: {text:?}"
    );
    assert!(
        lines.contains(&"33 111"),
        "stty size does not match consoleSize: {text:?}"
    );
    fx.rt.wait_status(&fx.id, "stopped");
}

#[test]
fn debug_lines_of_the_init_stay_out_of_the_containers_terminal() {
    let mut fx = Fixture::new("consoledebug", &["echo", "only-this"]);
    fx.bundle.spec["process"]["terminal"] = json!(true);
    let (created, text) = create_on_console(&fx, &["--debug"]);
    fx.rt.wait_status(&fx.id, "stopped");
    // The init logs after it has put the terminal on its stdio: that line goes to the runtime's
    // stderr, not into what the container prints.
    assert!(
        created
            .stderr
            .contains("init: closing the pipe to signal completion"),
        "{}",
        created.stderr
    );
    assert!(
        !text.contains("level=debug"),
        "debug line in the terminal: {text:?}"
    );
    assert!(text.contains("only-this"), "{text:?}");
}
