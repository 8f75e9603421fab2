//! Pull and push progress: one bar per layer on a terminal (indicatif), plain Docker-style lines
//! (`a1b2c3d4e5f6: Pull complete`) when stderr is not one. The bars live only while layers move:
//! `settle` (called before any summary line, and on drop) replaces them with their final lines,
//! so nothing printed afterwards can be drawn over.

use berth_image::digest::Digest;
use berth_image::pull::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

/// The live bars, in the order their layers started.
#[derive(Default)]
pub struct Bars {
    bars: Vec<(Digest, ProgressBar, String)>,
}

impl Bars {
    fn get(&mut self, id: &Digest) -> Option<&mut (Digest, ProgressBar, String)> {
        self.bars.iter_mut().find(|(d, _, _)| d == id)
    }
}

pub enum Reporter {
    Bars {
        multi: MultiProgress,
        live: Mutex<Bars>,
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
                live: Mutex::new(Bars::default()),
            }
        } else {
            Reporter::Lines(stderr)
        }
    }

    /// The bar of a layer, made on first sight.
    fn bar(&self, id: &Digest, total: u64) -> Option<ProgressBar> {
        let Reporter::Bars { multi, live } = self else {
            return None;
        };
        let mut live = live.lock().expect("bars lock");
        if let Some((_, b, _)) = live.get(id) {
            return Some(b.clone());
        }
        let b = multi.add(ProgressBar::new(total));
        b.set_style(
            ProgressStyle::with_template("{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b.set_prefix(id.short().to_string());
        b.set_message("Downloading");
        live.bars
            .push((id.clone(), b.clone(), "Downloading".to_string()));
        Some(b)
    }

    /// Replaces the bars with their last states as plain lines, in order. Later notes and
    /// layers start below them.
    pub fn settle(&self) {
        let Reporter::Bars { multi, live } = self else {
            return;
        };
        let mut live = live.lock().expect("bars lock");
        if live.bars.is_empty() {
            return;
        }
        let _ = multi.clear();
        for (id, bar, status) in live.bars.drain(..) {
            bar.finish_and_clear();
            multi.remove(&bar);
            eprintln!("{}: {status}", id.short());
        }
    }

    /// The transfer is over: settle the bars before the summary.
    pub fn finish(&self) {
        self.settle();
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.settle();
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
        if let Reporter::Bars { live, .. } = self {
            if let Some((_, b, _)) = live.lock().expect("bars lock").get(id) {
                b.inc(bytes);
            }
        }
    }
    fn finish(&self, id: &Digest, status: &str) {
        match self {
            Reporter::Bars { live, .. } => {
                let Some(b) = self.bar(id, 0) else { return };
                if let Some(entry) = live.lock().expect("bars lock").get(id) {
                    entry.2 = status.to_string();
                }
                b.set_style(
                    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template"),
                );
                b.finish_with_message(status.to_string());
            }
            Reporter::Lines(false) => println!("{}: {status}", id.short()),
            Reporter::Lines(true) => eprintln!("{}: {status}", id.short()),
            Reporter::Quiet => {}
        }
    }
    fn status(&self, id: &Digest, status: &str) {
        match self {
            Reporter::Lines(false) => println!("{}: {status}", id.short()),
            Reporter::Lines(true) => eprintln!("{}: {status}", id.short()),
            // A bar appears when its layer starts moving.
            Reporter::Bars { .. } | Reporter::Quiet => {}
        }
    }
    fn note(&self, message: &str) {
        match self {
            Reporter::Bars { multi, live } => {
                if live.lock().expect("bars lock").bars.is_empty() {
                    eprintln!("{message}");
                } else {
                    let _ = multi.println(message);
                }
            }
            Reporter::Lines(false) => println!("{message}"),
            Reporter::Lines(true) => eprintln!("{message}"),
            Reporter::Quiet => {}
        }
    }
}
