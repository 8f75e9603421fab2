//! Questions on the terminal, worded and placed as Docker's CLI puts them: the prune commands'
//! `[y/N]` confirmation, and `login`'s username and password (the password read with echo off,
//! the terminal restored whatever happens).

use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::AsFd;

/// Docker's `[y/N]` question on stdout; true only for `y` (any case), as Docker reads it.
pub fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = io::stdout().flush();
    let mut line = String::new();
    let _ = io::stdin().lock().read_line(&mut line);
    line.trim().eq_ignore_ascii_case("y")
}

/// Whether questions can be asked (stdin is a terminal).
pub fn interactive() -> bool {
    io::stdin().is_terminal()
}

/// Prints `label` on stdout and reads one line, without its line ending.
pub fn read_line(label: &str) -> io::Result<String> {
    print!("{label}");
    io::stdout().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Echo turned off on stdin's terminal until dropped.
struct NoEcho {
    saved: nix::sys::termios::Termios,
}

impl NoEcho {
    fn new() -> io::Result<NoEcho> {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = io::stdin();
        let saved = tcgetattr(stdin.as_fd()).map_err(io::Error::from)?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet).map_err(io::Error::from)?;
        Ok(NoEcho { saved })
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        if tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved).is_err() {
            eprintln!("Error: failed to restore terminal state to echo input (run `stty echo`)");
        }
    }
}

/// Prints `label` and reads a line with echo off, then ends the line the user could not see.
pub fn read_password(label: &str) -> io::Result<String> {
    let answer = {
        let _quiet = NoEcho::new()?;
        read_line(label)
    };
    println!();
    answer
}
