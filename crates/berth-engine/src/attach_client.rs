//! A program's side of a container's attach socket (`attach.rs` is the watcher's side and the
//! terminal client): typed output frames to read and input, window sizes and the end of stdin to
//! send, over two halves that can live on two threads. The API service's attach and `run` use
//! it; it speaks only the watcher's frame protocol and never touches a terminal.

use crate::attach::{read_frame, socket_path, CLOSE_STDIN, DATA, EXIT, STDERR, WINSIZE};
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the watcher sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The container exited with this status (the last frame).
    Exit(i32),
}

/// The reading half.
pub struct OutputReader(UnixStream);

/// The writing half (cloneable handles to one socket: shut it to end the reader too).
pub struct InputWriter(UnixStream);

/// Connects to the attach socket of the running container `id`, waiting up to `patience` for
/// the watcher to bind it.
pub fn connect(
    runroot: &Path,
    id: &str,
    patience: Duration,
) -> io::Result<(OutputReader, InputWriter)> {
    let path = socket_path(runroot, id);
    let deadline = Instant::now() + patience;
    let s = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    let w = s.try_clone()?;
    Ok((OutputReader(s), InputWriter(w)))
}

impl OutputReader {
    /// The next frame; None when the watcher closed the socket (or it was shut down).
    pub fn next_output(&mut self) -> Option<Output> {
        loop {
            match read_frame(&mut self.0).ok()? {
                (DATA, p) => return Some(Output::Stdout(p)),
                (STDERR, p) => return Some(Output::Stderr(p)),
                (EXIT, p) if p.len() == 4 => {
                    return Some(Output::Exit(i32::from_le_bytes([p[0], p[1], p[2], p[3]])))
                }
                _ => {}
            }
        }
    }
}

impl InputWriter {
    pub fn input(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(&crate::attach::frame(DATA, data))
    }

    /// The container's terminal size (rows, columns).
    pub fn resize(&mut self, rows: u16, cols: u16) -> io::Result<()> {
        let mut p = Vec::with_capacity(8);
        p.extend_from_slice(&rows.to_le_bytes());
        p.extend_from_slice(&cols.to_le_bytes());
        p.extend_from_slice(&[0; 4]);
        self.0.write_all(&crate::attach::frame(WINSIZE, &p))
    }

    /// The client's stdin ended: the container's is closed (without a terminal).
    pub fn close_stdin(&mut self) -> io::Result<()> {
        self.0.write_all(&crate::attach::frame(CLOSE_STDIN, &[]))
    }

    /// Another handle to the same connection.
    pub fn try_clone(&self) -> io::Result<InputWriter> {
        self.0.try_clone().map(InputWriter)
    }

    /// Ends the session both ways: a reader blocked on the socket returns.
    pub fn hang_up(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}
