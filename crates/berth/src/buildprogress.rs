//! `build`'s progress, as BuildKit prints it: `plain` lines (`#5 [build 2/4] RUN make`, its
//! output with the seconds since the step started, `#5 DONE 1.2s`, `#6 CACHED`), a live `tty`
//! view (the steps with their times, the last lines of the running ones' output, redrawn ten
//! times a second and cut to the terminal's width), or nothing (`quiet`). Everything goes to
//! stderr; stdout is left for `-q`'s image ID and `--output type=tar,dest=-`.

use berth_engine::build::{BuildEvent, BuildProgress};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `--progress` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    Quiet,
}

impl Mode {
    pub fn parse(s: &str, quiet: bool) -> Result<Mode, String> {
        use std::io::IsTerminal;
        if quiet {
            return Ok(Mode::Quiet);
        }
        match s {
            "auto" if std::io::stderr().is_terminal() => Ok(Mode::Tty),
            "auto" | "plain" => Ok(Mode::Plain),
            "tty" => Ok(Mode::Tty),
            "quiet" => Ok(Mode::Quiet),
            _ => Err(format!(
                "invalid progress mode {s:?}: expected auto, plain, tty or quiet"
            )),
        }
    }
}

/// One vertex as the printers keep it.
struct Vertex {
    /// BuildKit's `#N` (in order of first appearance).
    number: usize,
    name: String,
    started: Instant,
    ended: Option<Instant>,
    cached: bool,
    error: Option<String>,
    /// The last lines of output (tty mode), and a partial line.
    tail: Vec<String>,
    partial: Vec<u8>,
}

#[derive(Default)]
struct State {
    vertices: BTreeMap<usize, Vertex>,
    warnings: Vec<String>,
    drawn_lines: usize,
}

/// The printer given to the engine.
pub struct Printer {
    mode: Mode,
    start: Instant,
    state: Mutex<State>,
}

const TAIL_LINES: usize = 6;

impl Printer {
    pub fn new(mode: Mode) -> Arc<Printer> {
        Arc::new(Printer {
            mode,
            start: Instant::now(),
            state: Mutex::new(State::default()),
        })
    }

    /// In tty mode, a thread that redraws the view until `stop` says so.
    pub fn spawn_ticker(self: &Arc<Self>, stop: Arc<std::sync::atomic::AtomicBool>) {
        if self.mode != Mode::Tty {
            return;
        }
        let me = self.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                me.draw(false);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }

    /// The last draw (tty) and the warnings.
    pub fn finish(&self) {
        if self.mode == Mode::Tty {
            self.draw(true);
        }
        let st = self.state.lock().expect("progress lock");
        if self.mode != Mode::Quiet && !st.warnings.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "\n {} warning(s) found:", st.warnings.len());
            for w in &st.warnings {
                let _ = writeln!(err, " - {w}");
            }
        }
    }

    fn plain(&self, st: &mut State, e: &BuildEvent<'_>) {
        let mut err = std::io::stderr().lock();
        match e {
            BuildEvent::Started { id, name } => {
                let v = vertex(st, *id, name);
                let _ = writeln!(err, "\n#{} {}", v.number, v.name);
            }
            BuildEvent::Cached { id, name } => {
                let v = vertex(st, *id, name);
                let _ = writeln!(err, "\n#{} {}\n#{} CACHED", v.number, v.name, v.number);
            }
            BuildEvent::Log { id, data, .. } => {
                if let Some(v) = st.vertices.get_mut(id) {
                    v.partial.extend_from_slice(data);
                    let secs = v.started.elapsed().as_secs_f64();
                    while let Some(i) = v.partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = v.partial.drain(..=i).collect();
                        let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                        let _ = writeln!(err, "#{} {secs:.3} {text}", v.number);
                    }
                }
            }
            BuildEvent::Status { id, text } => {
                if let Some(v) = st.vertices.get(id) {
                    let _ = writeln!(err, "#{} {text}", v.number);
                }
            }
            BuildEvent::Done { id } => {
                if let Some(v) = st.vertices.get_mut(id) {
                    flush_partial(v, &mut err);
                    let _ = writeln!(
                        err,
                        "#{} DONE {:.1}s",
                        v.number,
                        v.started.elapsed().as_secs_f64()
                    );
                }
            }
            BuildEvent::Failed { id, error } => {
                if let Some(v) = st.vertices.get_mut(id) {
                    flush_partial(v, &mut err);
                    let _ = writeln!(err, "#{} ERROR: {error}", v.number);
                }
            }
            BuildEvent::Warning(w) => st.warnings.push(w.to_string()),
        }
    }

    fn record(&self, st: &mut State, e: &BuildEvent<'_>) {
        match e {
            BuildEvent::Started { id, name } => {
                vertex(st, *id, name);
            }
            BuildEvent::Cached { id, name } => {
                let v = vertex(st, *id, name);
                v.cached = true;
                v.ended = Some(Instant::now());
            }
            BuildEvent::Log { id, data, .. } => {
                if let Some(v) = st.vertices.get_mut(id) {
                    v.partial.extend_from_slice(data);
                    while let Some(i) = v.partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = v.partial.drain(..=i).collect();
                        v.tail
                            .push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
                        if v.tail.len() > TAIL_LINES {
                            v.tail.remove(0);
                        }
                    }
                }
            }
            BuildEvent::Status { .. } => {}
            BuildEvent::Done { id } => {
                if let Some(v) = st.vertices.get_mut(id) {
                    v.ended = Some(Instant::now());
                }
            }
            BuildEvent::Failed { id, error } => {
                if let Some(v) = st.vertices.get_mut(id) {
                    v.ended = Some(Instant::now());
                    v.error = Some(error.to_string());
                }
            }
            BuildEvent::Warning(w) => st.warnings.push(w.to_string()),
        }
    }

    /// Redraws the live view over the previous one.
    fn draw(&self, last: bool) {
        let mut st = self.state.lock().expect("progress lock");
        let width = terminal_width();
        let done = st.vertices.values().filter(|v| v.ended.is_some()).count();
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{}){}",
            self.start.elapsed().as_secs_f64(),
            st.vertices.len(),
            if last { " FINISHED" } else { "" }
        )];
        for v in st.vertices.values() {
            let secs = v.ended.unwrap_or_else(Instant::now) - v.started;
            let head = if v.cached { "CACHED " } else { "" };
            let status = match (&v.error, v.ended) {
                (Some(_), _) => " ERROR".to_string(),
                (None, _) if v.cached => String::new(),
                _ => format!(" {:.1}s", secs.as_secs_f64()),
            };
            lines.push(fit(&format!(" => {head}{}", v.name), &status, width));
            if v.ended.is_none() || v.error.is_some() {
                for t in &v.tail {
                    lines.push(fit(&format!(" => => # {t}"), "", width));
                }
            }
            if let Some(e) = &v.error {
                lines.push(fit(&format!(" => ERROR: {e}"), "", width));
            }
        }
        let mut err = std::io::stderr().lock();
        let mut out = String::new();
        if st.drawn_lines > 0 {
            out.push_str(&format!("\x1b[{}A", st.drawn_lines));
        }
        for l in &lines {
            out.push_str("\x1b[2K");
            out.push_str(l);
            out.push('\n');
        }
        // Lines of a longer earlier view are cleared.
        for _ in lines.len()..st.drawn_lines {
            out.push_str("\x1b[2K\n");
        }
        let drawn = lines.len().max(st.drawn_lines);
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
        st.drawn_lines = drawn;
    }
}

fn flush_partial(v: &mut Vertex, err: &mut impl Write) {
    if !v.partial.is_empty() {
        let text = String::from_utf8_lossy(&v.partial).into_owned();
        let _ = writeln!(
            err,
            "#{} {:.3} {text}",
            v.number,
            v.started.elapsed().as_secs_f64()
        );
        v.partial.clear();
    }
}

fn vertex<'a>(st: &'a mut State, id: usize, name: &str) -> &'a mut Vertex {
    let number = st.vertices.len() + 1;
    st.vertices.entry(id).or_insert_with(|| Vertex {
        number,
        name: name.to_string(),
        started: Instant::now(),
        ended: None,
        cached: false,
        error: None,
        tail: Vec::new(),
        partial: Vec::new(),
    })
}

/// `left` cut to leave room for `right` on a line of `width` columns.
fn fit(left: &str, right: &str, width: usize) -> String {
    let room = width.saturating_sub(right.chars().count() + 1).max(10);
    let shown: String = left
        .chars()
        .filter(|c| !c.is_control())
        .take(room)
        .collect();
    let pad = room.saturating_sub(shown.chars().count());
    format!("{shown}{}{right}", " ".repeat(pad))
}

fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize we own; stderr may not be a terminal (then it fails).
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    let r = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

impl BuildProgress for Printer {
    fn event(&self, e: BuildEvent<'_>) {
        let mut st = self.state.lock().expect("progress lock");
        match self.mode {
            Mode::Plain => self.plain(&mut st, &e),
            Mode::Tty => self.record(&mut st, &e),
            Mode::Quiet => {
                if let BuildEvent::Warning(w) = e {
                    st.warnings.push(w.to_string());
                }
            }
        }
    }
}
