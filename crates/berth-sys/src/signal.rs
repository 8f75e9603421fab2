//! Signals by name or number, as `kill -s`, `--stop-signal` and runc's `kill` take them: `TERM`,
//! `SIGTERM`, `sigterm`, `15`, `RTMIN+3`.

use nix::sys::signal::Signal;
use std::str::FromStr;

/// The signal `s` names (numbers 0 to 64 pass through), or None.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (0..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Ok(sig) = Signal::from_str(&format!("SIG{name}")) {
        return Some(sig as i32);
    }
    match name {
        "IOT" => Some(libc::SIGABRT),
        "CLD" => Some(libc::SIGCHLD),
        "POLL" => Some(libc::SIGIO),
        _ => {
            let rt = name.strip_prefix("RTMIN+")?.parse::<i32>().ok()?;
            let n = libc::SIGRTMIN().checked_add(rt)?;
            (rt >= 0 && n <= libc::SIGRTMAX()).then_some(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("SIGKILL"), Some(9));
        assert_eq!(parse_signal("sighup"), Some(1));
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("RTMIN+2147483647"), None, "no overflow");
        assert_eq!(parse_signal("RTMIN+-5"), None);
        assert_eq!(parse_signal("IOT"), Some(libc::SIGABRT));
        assert_eq!(parse_signal("WINCH"), Some(libc::SIGWINCH));
        assert_eq!(parse_signal("RTMIN+2"), Some(libc::SIGRTMIN() + 2));
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("BOGUS"), None);
    }
}
