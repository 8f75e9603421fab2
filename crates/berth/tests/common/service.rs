//! `berth serve` for a test: the service over a `Sandbox`'s store on a socket in the test's
//! directory, the real docker CLI (`/usr/local/bin/docker`, its config in the test's directory)
//! pointed at it, raw HTTP over the socket for requests no client would send, and the service
//! killed and reaped when dropped. Test files include it with
//! `#[path = "common/service.rs"] mod service;` beside the container fixture.
#![allow(dead_code)]

use crate::common::{run, Output, Reaped};
use crate::fixture::Sandbox;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The docker CLI the tests drive (the real one, never a stand-in of the apt package).
pub const DOCKER: &str = "/usr/local/bin/docker";

pub struct Service {
    child: Option<Reaped>,
    pub socket: PathBuf,
    pub host: String,
    pub docker_config: PathBuf,
    args: Vec<String>,
    command: Command,
}

impl Service {
    /// Starts the service over `sb`'s store and waits until it answers.
    pub fn start(sb: &Sandbox) -> Service {
        Service::start_with(sb, &[])
    }

    /// With more `serve` flags.
    pub fn start_with(sb: &Sandbox, extra: &[&str]) -> Service {
        let socket = sb.dir().join("docker.sock");
        let host = format!("unix://{}", socket.display());
        let mut args: Vec<String> = vec!["serve".into(), "-H".into(), host.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let docker_config = sb.dir().join("docker-cli");
        std::fs::create_dir_all(&docker_config).expect("docker CLI config dir");
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        let command = sb.b.command(&words);
        let mut s = Service {
            child: None,
            socket,
            host,
            docker_config,
            args,
            command,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(self.command.get_program());
        cmd.args(self.command.get_args());
        for (k, v) in self.command.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        // Its log (every request traced) is kept beside the store, for tests that read it.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.socket.with_file_name("serve.log"))
            .expect("the service's log");
        cmd.env("BERTH_API_TRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(Reaped(cmd.spawn().expect("spawning berth serve")));
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "berth serve did not listen on {}",
                self.socket.display()
            );
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.0.try_wait() {
                    panic!("berth serve {:?} exited: {st}", self.args);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.0.id() as i32)
    }

    /// SIGKILL to the service (nothing of it may run on), then reaped.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.0.kill();
            let _ = c.0.wait();
        }
    }

    /// Starts the service again over the same store and socket.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The docker CLI with this service as its host.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.args(args)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        cmd
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        let out = run(self.docker_command(args), None);
        eprintln!(
            "docker {args:?} -> {}\nstdout:\n{}stderr:\n{}",
            out.status, out.stdout, out.stderr
        );
        out
    }

    pub fn docker_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        run(self.docker_command(args), Some(input))
    }

    /// Runs docker, asserts success, returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        self.docker(args)
            .success(&format!("docker {}", args.join(" ")))
            .stdout
    }

    /// One raw HTTP/1.1 exchange (the connection closed after it): status and body.
    pub fn http(&self, request: &[u8]) -> (u16, String) {
        let mut s = UnixStream::connect(&self.socket).expect("connect to the service");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        // A service that refuses a request mid-body closes the connection: what it answered
        // before is still there to read.
        let _ = s.write_all(request);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        parse_response(&raw)
    }

    /// A request with `Connection: close` and an optional JSON body.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut r = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
        if let Some(b) = body {
            r.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            r.push_str("\r\n");
        }
        self.http(r.as_bytes())
    }

    /// Open file descriptors and threads of the service process.
    pub fn footprint(&self) -> (usize, usize) {
        let pid = self.pid();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
        (fds, threads)
    }
}

/// Status and body of a raw response (a chunked body is de-chunked).
pub fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    (status, out)
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_file(&self.socket);
    }
}
