//! `events`: JSON lines about a container: `stats` every interval (or once with --stats), and `oom`
//! the moment the kernel OOM-kills one of its processes. Ends when the container stops.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::error::{Context, Error, Result};
use berth_runtime::state::{ContainerState, Status};

pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len()));
    let n: f64 = num.parse().map_err(|_| Error::msg(format!("invalid duration {s:?}")))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(Error::msg(format!("invalid duration {s:?}"))),
    };
    if secs <= 0.0 {
        return Err(Error::msg(format!("duration {s:?} must be positive")));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn emit(kind: &str, id: &str, data: serde_json::Value) {
    println!("{}", serde_json::json!({"type": kind, "id": id, "data": data}));
}

pub fn run(root: &Path, id: &str, once: bool, interval: &str) -> Result<()> {
    let every = parse_duration(interval)?;
    let st = ContainerState::load(root, id)?;
    let cg = st.cgroup.clone().ok_or_else(|| Error::msg(format!("container {id:?} has no cgroup")))?;
    if st.status(root) == Status::Stopped {
        berth_runtime::bail!("container {id:?} is stopped");
    }
    let stats = || -> Result<serde_json::Value> { serde_json::to_value(cg.stats()?).ctx("stats") };
    if once {
        emit("stats", id, stats()?);
        return Ok(());
    }
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let mut next = Instant::now() + every;
    while st.status(root) != Status::Stopped {
        let now = cg.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            emit("oom", id, serde_json::Value::Null);
            ooms = now;
        }
        if Instant::now() >= next {
            emit("stats", id, stats()?);
            next += every;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
