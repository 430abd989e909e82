//! The download progress bar on stderr (indicatif hides it when stderr is not a terminal), and
//! the clock of the last data received, which the stall watchdog reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// When data last arrived, as milliseconds since a start instant; shared between the download
/// thread (which touches it) and the watchdog (which reads it).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Heartbeat {
    pub fn new() -> Heartbeat {
        Heartbeat {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records that data arrived now.
    pub fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since data last arrived (or since creation).
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

impl Default for Heartbeat {
    fn default() -> Heartbeat {
        Heartbeat::new()
    }
}

/// A byte progress bar labelled with the file (and its place in a set), fed by `hf-hub`.
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
    label: String,
    heartbeat: Heartbeat,
}

impl Bar {
    /// A hidden-until-started bar for `label` (e.g. `[2/3] model-00002-of-00003.gguf`) that
    /// touches `heartbeat` whenever data arrives.
    pub fn new(label: String, heartbeat: Heartbeat) -> Bar {
        Bar {
            bar: bytes_bar(0),
            label,
            heartbeat,
        }
    }
}

/// A bar of `len` bytes with the module's style.
pub fn bytes_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

impl hf_hub::api::Progress for Bar {
    /// Called before each attempt, so the position restarts; a resumed download then reports
    /// the bytes already on disk through `update`.
    fn init(&mut self, size: usize, _filename: &str) {
        self.heartbeat.touch();
        self.bar.set_length(size as u64);
        self.bar.set_position(0);
        self.bar.set_message(self.label.clone());
    }

    fn update(&mut self, size: usize) {
        self.heartbeat.touch();
        self.bar.inc(size as u64);
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
