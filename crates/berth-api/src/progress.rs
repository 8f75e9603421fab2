//! Pull and push progress as Docker's JSON message stream (`{"status": "Downloading",
//! "progressDetail": {"current": …, "total": …}, "progress": "[==>  ] …", "id": "a1b2c3d4e5f6"}`),
//! one object per line, written from the engine's progress callbacks (on its worker threads).
//! A client that went away stops nothing but the writing.

use berth_image::digest::Digest;
use berth_image::pull::Progress;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often a layer's download progress is sent.
const EVERY: Duration = Duration::from_millis(100);

pub struct JsonProgress {
    tx: mpsc::Sender<Bytes>,
    /// Per layer: total, done, when last sent.
    layers: Mutex<HashMap<Digest, (u64, u64, Instant)>>,
    /// `Downloading` for pulls, `Pushing` for pushes.
    verb: &'static str,
}

pub fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).expect("a message serializes");
    b.push(b'\n');
    Bytes::from(b)
}

/// Docker's error message in a stream.
pub fn error_line(m: &str) -> Bytes {
    line(&json!({"errorDetail": {"message": m}, "error": m}))
}

/// Docker's progress bar: `[=====>      ]  1.2MB/3.4MB`.
fn bar(current: u64, total: u64) -> String {
    let width = 50;
    let filled = (current.min(total) * width).checked_div(total).unwrap_or(0) as usize;
    let mut s = "=".repeat(filled.saturating_sub(1));
    if filled > 0 {
        s.push('>');
    }
    format!(
        "[{s:<w$}] {:>7}/{}",
        berth_sys::units::human_size(current),
        berth_sys::units::human_size(total),
        w = width as usize
    )
}

impl JsonProgress {
    pub fn new(tx: mpsc::Sender<Bytes>, verb: &'static str) -> JsonProgress {
        JsonProgress {
            tx,
            layers: Mutex::new(HashMap::new()),
            verb,
        }
    }

    pub fn send(&self, v: Value) {
        let _ = self.tx.blocking_send(line(&v));
    }

    pub fn status(&self, s: &str) {
        self.send(json!({ "status": s }));
    }
}

impl Progress for JsonProgress {
    fn start(&self, id: &Digest, total: u64) {
        if let Ok(mut l) = self.layers.lock() {
            l.insert(id.clone(), (total, 0, Instant::now() - EVERY));
        }
        let first = if self.verb == "Pushing" {
            "Preparing"
        } else {
            "Pulling fs layer"
        };
        self.send(json!({"status": first, "progressDetail": {}, "id": id.short()}));
    }

    fn advance(&self, id: &Digest, bytes: u64) {
        let due = self.layers.lock().ok().and_then(|mut l| {
            let e = l.get_mut(id)?;
            e.1 += bytes;
            let now = Instant::now();
            (now.duration_since(e.2) >= EVERY || e.1 >= e.0).then(|| {
                e.2 = now;
                (e.0, e.1)
            })
        });
        if let Some((total, current)) = due {
            self.send(json!({
                "status": self.verb,
                "progressDetail": {"current": current, "total": total},
                "progress": bar(current, total),
                "id": id.short(),
            }));
        }
    }

    fn finish(&self, id: &Digest, status: &str) {
        self.send(json!({"status": status, "progressDetail": {}, "id": id.short()}));
    }

    fn note(&self, message: &str) {
        self.status(message);
    }
}
