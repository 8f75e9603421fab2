//! Foreground `run` and `exec -t` with a terminal but no `--console-socket`: the runtime
//! proxies the pty itself. Each test drives the runtime under util-linux `script`, so the
//! runtime's own stdin/stdout is a terminal, and feeds the terminal from a pipe.

use berth_runtime_tests::runtime::Running;
use berth_runtime_tests::Fixture;
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Quotes `s` for `sh -c` (what `script -c` runs).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Starts `<runtime> --root R <args…>` under `script -qec … /dev/null`, stdin a pipe.
fn spawn_under_script(fx: &Fixture, args: &[&str]) -> Running {
    let mut words = vec![
        fx.rt.bin.display().to_string(),
        "--root".to_string(),
        fx.rt.root.display().to_string(),
    ];
    words.extend(args.iter().map(|a| a.to_string()));
    let line = words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]).stdin(Stdio::piped());
    fx.rt.spawn_command(cmd, args)
}

/// Runs `args` under `script`, writes `input` to the terminal and keeps the pipe open
/// until the command ends (an early EOF would reach the container as a keystroke).
/// Returns the exit status and everything printed on the terminal.
fn under_script(fx: &Fixture, args: &[&str], input: &[u8]) -> (i32, String) {
    let mut running = spawn_under_script(fx, args);
    let mut stdin = running.child.stdin.take().expect("script stdin");
    stdin.write_all(input).unwrap();
    stdin.flush().unwrap();
    let out = running.wait(Duration::from_secs(30));
    drop(stdin);
    (out.code(), format!("{}{}", out.stdout, out.stderr))
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            l.trim_matches(|c: char| c == '\r' || c.is_whitespace())
                .to_string()
        })
        .collect()
}

fn is_tty_name(line: &str) -> bool {
    line.starts_with("/dev/pts/") || line == "/dev/console"
}

#[test]
fn foreground_run_with_terminal_and_no_console_socket_proxies_the_pty_and_exit_status() {
    let mut fx = Fixture::new("ttyrun", &["sh", "-c", "tty; echo hi; exit 7"]);
    fx.bundle.spec["process"]["terminal"] = json!(true);
    fx.bundle.write();
    let bundle = fx.bundle_dir();
    let (code, text) = under_script(&fx, &["run", "--bundle", &bundle, &fx.id], b"");
    let ls = lines(&text);
    assert!(
        ls.iter()
            .any(|l| l.ends_with("/dev/pts/0") || l.ends_with("/dev/console")),
        "container's stdin is not a terminal: {text:?}"
    );
    assert!(ls.iter().any(|l| l == "hi"), "no `hi` in {text:?}");
    assert_eq!(code, 7, "exit status not propagated: {text:?}");
}

#[test]
fn foreground_run_with_terminal_proxies_interactive_input_to_the_container() {
    let mut fx = Fixture::new("ttyinteractive", &["sh"]);
    fx.bundle.spec["process"]["terminal"] = json!(true);
    fx.bundle.write();
    let bundle = fx.bundle_dir();
    let (code, text) = under_script(
        &fx,
        &["run", "--bundle", &bundle, &fx.id],
        b"echo $((6*7))\nexit 3\n",
    );
    assert!(
        lines(&text).iter().any(|l| l == "42"),
        "the shell never evaluated the piped input: {text:?}"
    );
    assert_eq!(code, 3, "exit status not propagated: {text:?}");
}

#[test]
fn exec_t_without_console_socket_proxies_the_pty_and_exit_status() {
    let fx = Fixture::new("ttyexec", &["sleep", "100"]);
    fx.run_detached();
    let (code, text) = under_script(&fx, &["exec", "-t", &fx.id, "sh", "-c", "tty; exit 5"], b"");
    assert!(
        lines(&text)
            .iter()
            .any(|l| is_tty_name(l) || l.ends_with("/dev/pts/0")),
        "exec'd process has no terminal: {text:?}"
    );
    assert!(text.contains("/dev/pts"), "no /dev/pts in {text:?}");
    assert_eq!(code, 5, "exit status not propagated: {text:?}");
    assert_eq!(fx.rt.status(&fx.id), "running", "exec -t disturbed init");
}
