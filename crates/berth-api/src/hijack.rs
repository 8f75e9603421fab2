//! Docker's hijacked streams (attach, exec start): the connection is upgraded (101, `Upgrade:
//! tcp`) through hyper's upgrade support and becomes raw bytes both ways — output in Docker's
//! multiplexed frames (`[stream, 0, 0, 0, size BE32]`, stdout 1, stderr 2) or raw with a
//! terminal, input as the client sends it until it half-closes. The detach keys (ctrl-p ctrl-q by
//! default) end a session. A client without `Upgrade` gets the output as a plain body.

use crate::error::{ApiError, ApiResult};
use crate::http::{self, Resp};
use crate::router::Req;
use bytes::{BufMut, Bytes, BytesMut};
use hyper::{header, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// How often a hijacked session checks that its client is still connected while no output
/// flows.
const GONE_PROBE: std::time::Duration = std::time::Duration::from_secs(1);

/// Output of the process, by stream.
#[derive(Debug)]
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// Input from the client.
#[derive(Debug)]
pub enum Input {
    Data(Vec<u8>),
    /// The client half-closed its side (its stdin ended).
    End,
}

/// Docker's frame header before each output chunk of a stream without a terminal.
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + data.len());
    b.put_u8(stream);
    b.put_slice(&[0, 0, 0]);
    b.put_u32(data.len() as u32);
    b.put_slice(data);
    b.freeze()
}

fn encode(c: Chunk, tty: bool) -> Bytes {
    match (c, tty) {
        (Chunk::Stdout(d) | Chunk::Stderr(d), true) => Bytes::from(d),
        (Chunk::Stdout(d), false) => frame(1, &d),
        (Chunk::Stderr(d), false) => frame(2, &d),
    }
}

/// Docker's `detachKeys` (`ctrl-p,ctrl-q`, `a`, `ctrl-@`…) as bytes.
pub fn detach_keys(spec: Option<&str>) -> ApiResult<Vec<u8>> {
    let spec = spec.filter(|s| !s.is_empty()).unwrap_or("ctrl-p,ctrl-q");
    spec.split(',')
        .map(|k| match k.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let b = c.as_bytes()[0].to_ascii_lowercase();
                match b {
                    b'a'..=b'z' => Ok(b - b'a' + 1),
                    b'@' => Ok(0),
                    b'[' => Ok(27),
                    b'\\' => Ok(28),
                    b']' => Ok(29),
                    b'^' => Ok(30),
                    b'_' => Ok(31),
                    _ => Err(ApiError::bad(format!("invalid detach keys {spec:?}"))),
                }
            }
            None if k.len() == 1 => Ok(k.as_bytes()[0]),
            _ => Err(ApiError::bad(format!("invalid detach keys {spec:?}"))),
        })
        .collect()
}

/// Passes input through until the detach sequence is typed (then true); a partial sequence is
/// held back until it is told apart.
pub struct Detacher {
    keys: Vec<u8>,
    matched: usize,
}

impl Detacher {
    pub fn new(keys: Vec<u8>) -> Detacher {
        Detacher { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the sequence was completed.
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if !self.keys.is_empty() && b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if !self.keys.is_empty() && b == self.keys[0] {
                self.matched = 1;
                continue;
            }
            out.push(b);
        }
        (out, false)
    }
}

/// The connection's upgrade, when the client asked for one (`Upgrade: tcp`).
pub fn take_upgrade<B>(req: &mut hyper::Request<B>) -> Option<hyper::upgrade::OnUpgrade> {
    let wants = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    wants.then(|| hyper::upgrade::on(req))
}

fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Starts a session: the response to return (101, or 200 with the output as its body) and the
/// task that pumps `output` to the client and the client's input into `input`.
pub fn session(
    upgrade: Option<hyper::upgrade::OnUpgrade>,
    tty: bool,
    output: mpsc::Receiver<Chunk>,
    input: Option<mpsc::Sender<Input>>,
    keys: Vec<u8>,
    busy: crate::state::Busy,
) -> Resp {
    let Some(on_upgrade) = upgrade else {
        let (tx, resp) = http::stream(StatusCode::OK, content_type(tty));
        tokio::spawn(async move {
            let _busy = busy;
            let mut output = output;
            loop {
                tokio::select! {
                    c = output.recv() => {
                        let Some(c) = c else { return };
                        if tx.send(encode(c, tty)).await.is_err() {
                            return;
                        }
                    }
                    // The client left (hyper dropped the body) while nothing came, e.g. while
                    // it waited for a start that never comes: the session ends with it.
                    _ = tx.closed() => return,
                }
            }
        });
        return resp;
    };
    tokio::spawn(async move {
        let _busy = busy;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        let mut output = output;
        let reader = async move {
            let Some(input) = input else {
                // Input is not attached: what the client sends is read and dropped. The docker
                // CLI half-closes at once when it has no stdin to send, so the end of its input
                // is not its leaving: the output goes on until the process ends or a write fails.
                let mut sink = [0u8; 4096];
                while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
                return std::future::pending::<()>().await;
            };
            let mut detacher = Detacher::new(keys);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        // The process may have ended (its input closed): nothing to tell it.
                        let _ = input.send(Input::End).await;
                        return std::future::pending::<()>().await;
                    }
                    Ok(n) => {
                        let (pass, detach) = detacher.feed(&buf[..n]);
                        if !pass.is_empty() && input.send(Input::Data(pass)).await.is_err() {
                            return std::future::pending::<()>().await;
                        }
                        if detach {
                            return;
                        }
                    }
                }
            }
        };
        let writer = async move {
            let mut probe = tokio::time::interval(GONE_PROBE);
            probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    c = output.recv() => {
                        let Some(c) = c else { break };
                        if wr.write_all(&encode(c, tty)).await.is_err() {
                            return;
                        }
                        // A failed flush shows at the next write, which ends the session.
                        let _ = wr.flush().await;
                    }
                    // A client that closed its whole connection (not only its input) while no
                    // output comes, e.g. while it waits for a start that never comes: a write
                    // of nothing fails (EPIPE on a unix socket), and the session ends.
                    _ = probe.tick() => {
                        if wr.write(&[]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            // The client may be gone already; the session is over either way.
            let _ = wr.shutdown().await;
        };
        // The session ends when the output ends (the process exited), the client detached, or
        // the client went away (the writer fails).
        tokio::select! {
            _ = reader => {},
            _ = writer => {},
        }
    });
    let r = http::empty(StatusCode::SWITCHING_PROTOCOLS);
    let r = http::with_header(r, "Connection", "Upgrade");
    let r = http::with_header(r, "Upgrade", "tcp");
    http::with_header(r, "Content-Type", content_type(tty))
}

/// The `Sec-WebSocket-Key` of a websocket upgrade request (None when it is not one).
pub fn websocket_key<B>(req: &hyper::Request<B>) -> Option<String> {
    let upgrade = req.headers().get(header::UPGRADE)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    Some(
        req.headers()
            .get("Sec-WebSocket-Key")?
            .to_str()
            .ok()?
            .to_string(),
    )
}

/// A websocket session (Docker's `attach/ws`): each output chunk one binary message (no
/// multiplexing, as Docker's), each message from the client input; its close ends the input.
pub fn websocket(
    mut req: Req,
    key: &str,
    output: mpsc::Receiver<Chunk>,
    input: Option<mpsc::Sender<Input>>,
    busy: crate::state::Busy,
) -> Resp {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::{Message, Role};
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let _busy = busy;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        let (mut tx, mut rx) = ws.split();
        let mut output = output;
        let reader = async move {
            while let Some(Ok(m)) = rx.next().await {
                let data = match m {
                    Message::Binary(b) => b.to_vec(),
                    Message::Text(t) => t.as_bytes().to_vec(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                if let Some(i) = &input {
                    if i.send(Input::Data(data)).await.is_err() {
                        break;
                    }
                }
            }
            if let Some(i) = &input {
                // The process may have ended (its input closed): nothing to tell it.
                let _ = i.send(Input::End).await;
            }
            // A websocket has no half-close: its close (or a broken connection) is the
            // client's leaving, and the session ends.
        };
        let writer = async move {
            while let Some(c) = output.recv().await {
                let (Chunk::Stdout(d) | Chunk::Stderr(d)) = c;
                if tx.send(Message::Binary(d.into())).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(Message::Close(None)).await;
            let _ = tx.close().await;
        };
        tokio::select! {
            _ = reader => {},
            _ = writer => {},
        }
    });
    let r = http::empty(StatusCode::SWITCHING_PROTOCOLS);
    let r = http::with_header(r, "Connection", "Upgrade");
    let r = http::with_header(r, "Upgrade", "websocket");
    http::with_header(r, "Sec-WebSocket-Accept", &accept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_detach_keys_are_dockers() {
        assert_eq!(&frame(2, b"hi")[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(detach_keys(None).unwrap(), [16, 17]);
        assert_eq!(detach_keys(Some("ctrl-a,x")).unwrap(), [1, b'x']);
        assert!(detach_keys(Some("ctrl-ab")).is_err());
        let mut d = Detacher::new(vec![16, 17]);
        assert_eq!(d.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(d.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(d.feed(b"\x10\x11rest"), (Vec::new(), true));
    }
}
