//! The run journal: one JSON line per finished measured run, written and flushed as each run
//! ends, for runs that an engine can end without returning. llama.cpp ends the process when an
//! RPC worker is lost mid-run; the journal keeps what finished before. The results file replaces
//! it at the end of a normal run.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

use crate::measure::RunMetrics;

static JOURNAL: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);

/// The journal next to the results file `output`: `<output>.partial.jsonl`.
pub fn path_for(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".partial.jsonl");
    output.with_file_name(name)
}

/// Starts a journal at `path` (truncated), with a first line that says what it is.
pub fn open(path: &Path, output: &Path) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    let head = json!({
        "journal": "inproc-bench finished runs, one per line; the results file replaces this one when the command ends normally",
        "results_file": output.display().to_string(),
        "started": chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
    });
    writeln!(f, "{head}")?;
    f.sync_data()?;
    if let Ok(mut j) = JOURNAL.lock() {
        *j = Some((path.to_path_buf(), f));
    }
    Ok(())
}

/// The open journal's path; never waits (it is asked from an abort hook, which may run while a
/// run is being recorded), so `None` also when the journal is busy.
pub fn path() -> Option<PathBuf> {
    JOURNAL
        .try_lock()
        .ok()
        .and_then(|j| j.as_ref().map(|(p, _)| p.clone()))
}

/// Appends one finished run (after it ended, outside the timed path); does nothing without a
/// journal. A write error closes the journal and is reported on stderr once.
pub fn record(engine: &str, prompt: &str, run: u32, m: &RunMetrics, text: &str) {
    let Ok(mut j) = JOURNAL.lock() else {
        return;
    };
    let Some((path, f)) = j.as_mut() else {
        return;
    };
    let line = json!({
        "engine": engine,
        "prompt": prompt,
        "run": run + 1,
        "prompt_tokens": m.prompt_tokens,
        "tokens_generated": m.tokens_generated,
        "ttft_ms": m.ttft_ms,
        "e2e_latency_ms": m.e2e_latency_ms,
        "tokens_per_second": m.tps,
        "itl_mean_ms": m.itl_mean_ms,
        "text": text,
    });
    if let Err(e) = writeln!(f, "{line}").and_then(|()| f.sync_data()) {
        eprintln!("warning: the run journal {} stopped: {e}", path.display());
        *j = None;
    }
}

/// Closes the journal and removes its file (the results file now holds every run).
pub fn finish() {
    if let Ok(mut j) = JOURNAL.lock() {
        if let Some((path, f)) = j.take() {
            drop(f);
            let _ = std::fs::remove_file(path);
        }
    }
}
