//! The download progress bar on stderr (indicatif hides it when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A byte progress bar labelled with the file (and its place in a set), fed by `hf-hub`.
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
    label: String,
}

impl Bar {
    /// A hidden-until-started bar for `label` (e.g. `[2/3] model-00002-of-00003.gguf`).
    pub fn new(label: String) -> Bar {
        Bar {
            bar: bytes_bar(0),
            label,
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
        self.bar.set_length(size as u64);
        self.bar.set_position(0);
        self.bar.set_message(self.label.clone());
    }

    fn update(&mut self, size: usize) {
        self.bar.inc(size as u64);
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
