//! Progress on a terminal: a bar on stderr, hidden with `--quiet`, in CI, or when stderr is not a
//! terminal. `INPROC_PROGRESS_LINES=1` prints one plain line per finished run on stderr instead (for
//! logs and scripts that wait for a run to finish), also with `--quiet`, and one line per status
//! (`loading …`, `starting vllm serve …`) so that they can also tell when a load or a start begins.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The environment variable that asks for one line per finished run.
pub const LINES_ENV: &str = "INPROC_PROGRESS_LINES";

/// Plain-line progress: the current step's message and the count of finished steps.
#[derive(Debug, Default)]
struct Lines {
    done: AtomicU64,
    len: AtomicU64,
    message: Mutex<String>,
}

/// A progress bar, plain lines, or nothing.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Option<Arc<Lines>>,
}

impl Progress {
    /// A bar when `enabled`, stderr is a terminal and the `CI` variable is unset; plain lines when
    /// `INPROC_PROGRESS_LINES=1`; else nothing.
    pub fn new(enabled: bool) -> Self {
        let lines = std::env::var(LINES_ENV).is_ok_and(|v| v == "1");
        if lines {
            return Self {
                bar: None,
                lines: Some(Arc::default()),
            };
        }
        let show = enabled && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {prefix} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar, lines: None }
    }

    /// No output at all.
    pub fn hidden() -> Self {
        Self {
            bar: None,
            lines: None,
        }
    }

    /// A spinner message for work of unknown length (loading a model).
    pub fn status(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
        if self.lines.is_some() {
            eprintln!("{msg}");
        }
    }

    pub(crate) fn set_length(&self, len: u64) {
        if let Some(b) = &self.bar {
            b.set_length(len);
        }
        if let Some(l) = &self.lines {
            l.len.store(len, Ordering::Relaxed);
            l.done.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
        if let Some(l) = &self.lines {
            if let Ok(mut m) = l.message.lock() {
                msg.clone_into(&mut m);
            }
        }
    }

    pub(crate) fn last_rate(&self, tps: Option<f64>) {
        if let (Some(b), Some(t)) = (&self.bar, tps) {
            b.set_prefix(format!("{t:.1} tok/s"));
        }
    }

    /// One step (a warmup or measured run) finished.
    pub(crate) fn inc(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        if let Some(l) = &self.lines {
            let done = l.done.fetch_add(1, Ordering::Relaxed) + 1;
            let len = l.len.load(Ordering::Relaxed);
            let msg = l.message.lock().map(|m| m.clone()).unwrap_or_default();
            eprintln!("done {done}/{len}: {msg}");
        }
    }

    /// Prints a line on stderr (above the bar when there is one): warnings before the runs.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
