//! Progress bars on stderr, only when stderr is a terminal.
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mediagit_repo::progress::Progress;

pub struct TermProgress {
    bar: Mutex<Option<ProgressBar>>,
    files: AtomicU64,
    total_files: AtomicU64,
    enabled: bool,
}

impl TermProgress {
    pub fn new(quiet: bool) -> TermProgress {
        TermProgress {
            bar: Mutex::new(None),
            files: AtomicU64::new(0),
            total_files: AtomicU64::new(0),
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }
    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            f(b)
        }
    }
}

impl Progress for TermProgress {
    fn start(&self, phase: &str, total_bytes: u64, total_files: u64) {
        if !self.enabled || total_files == 0 {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(phase.to_string());
        self.files.store(0, Ordering::Relaxed);
        self.total_files.store(total_files, Ordering::Relaxed);
        bar.set_message(format!("files 0/{total_files}"));
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }
    fn bytes(&self, n: u64) {
        self.with_bar(|b| b.inc(n));
    }
    fn file_done(&self) {
        let done = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total_files.load(Ordering::Relaxed);
        self.with_bar(|b| b.set_message(format!("files {done}/{total}")));
    }
    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}
