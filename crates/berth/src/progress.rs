//! Pull and push progress: one bar per layer on a terminal (indicatif), plain Docker-style lines
//! (`a1b2c3d4e5f6: Pull complete`) when stderr is not one.

use berth_image::digest::Digest;
use berth_image::pull::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

pub enum Reporter {
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<Digest, ProgressBar>>,
    },
    /// Plain lines, on stderr when `true` (`run` keeps stdout for the container).
    Lines(bool),
    Quiet,
}

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        Reporter::with_stream(quiet, false)
    }

    pub fn with_stream(quiet: bool, stderr: bool) -> Reporter {
        if quiet {
            Reporter::Quiet
        } else if std::io::stderr().is_terminal() {
            Reporter::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Reporter::Lines(stderr)
        }
    }

    fn bar(&self, id: &Digest, total: u64) -> Option<ProgressBar> {
        let Reporter::Bars { multi, bars } = self else {
            return None;
        };
        let mut bars = bars.lock().expect("bars lock");
        Some(
            bars.entry(id.clone())
                .or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(total));
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    b.set_prefix(id.short().to_string());
                    b.set_message("Downloading");
                    b
                })
                .clone(),
        )
    }
}

impl Progress for Reporter {
    fn start(&self, id: &Digest, total: u64) {
        if let Some(b) = self.bar(id, total) {
            b.set_position(0);
            b.set_length(total);
        }
    }
    fn advance(&self, id: &Digest, bytes: u64) {
        if let Reporter::Bars { bars, .. } = self {
            if let Some(b) = bars.lock().expect("bars lock").get(id) {
                b.inc(bytes);
            }
        }
    }
    fn finish(&self, id: &Digest, status: &str) {
        match self {
            Reporter::Bars { .. } => {
                if let Some(b) = self.bar(id, 0) {
                    b.set_style(
                        ProgressStyle::with_template("{prefix}: {msg}").expect("valid template"),
                    );
                    b.finish_with_message(status.to_string());
                }
            }
            Reporter::Lines(false) => println!("{}: {status}", id.short()),
            Reporter::Lines(true) => eprintln!("{}: {status}", id.short()),
            Reporter::Quiet => {}
        }
    }
    fn note(&self, message: &str) {
        match self {
            Reporter::Bars { multi, .. } => {
                let _ = multi.println(message);
            }
            Reporter::Lines(false) => println!("{message}"),
            Reporter::Lines(true) => eprintln!("{message}"),
            Reporter::Quiet => {}
        }
    }
}
