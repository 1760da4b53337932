//! Where a run's results file goes and how it is saved, shared by the single-stream run and the
//! load run: the path from `--output` (or the results directory and the start time), checked
//! writable before anything loads, and the atomic write that never loses finished work.

use std::path::{Path, PathBuf};

use anyhow::bail;
use chrono::{DateTime, Local};
use serde::Serialize;

use crate::cli::RunArgs;
use crate::results::write;

/// The results path `args` ask for (`--output`, else a name in `--results-dir` from the start
/// time), checked writable together with `--plot` before anything runs.
pub fn results_path(args: &RunArgs, started: &DateTime<Local>) -> anyhow::Result<PathBuf> {
    let output = match &args.output {
        Some(p) => p.clone(),
        None => write::default_path(
            &args.results_dir,
            &args.scenario,
            &started.format("%Y%m%d_%H%M%S").to_string(),
        ),
    };
    write::check_writable(&output)?;
    if let Some(plot) = &args.plot {
        write::check_writable(plot)?;
    }
    Ok(output)
}

/// Where the results were saved, and why not where they were meant to go.
pub struct Saved {
    /// The file written.
    pub path: PathBuf,
    /// Set when `path` is not the intended file: the command must fail with this message after
    /// its report (the results are safe).
    pub problem: Option<String>,
}

/// Writes `file` to `output` atomically. A file that appeared at `output` during the run is
/// never overwritten: the results go next to it. A results directory that went away or turned
/// unwritable does not lose them either: they go to a fallback file. Fails only when even the
/// fallback cannot be written.
pub fn save(output: &Path, file: &impl Serialize) -> anyhow::Result<Saved> {
    let mut text = serde_json::to_string_pretty(file)?;
    text.push('\n');
    match write::write_text_atomic(output, &text) {
        Ok(()) => Ok(Saved {
            path: output.to_path_buf(),
            problem: None,
        }),
        Err(write::WriteError::Exists(_)) => {
            let next = write::unused_sibling(output);
            write::write_text_atomic(&next, &text)?;
            let problem = format!(
                "{} appeared during the run and was not overwritten; the results are in {}",
                output.display(),
                next.display()
            );
            Ok(Saved {
                path: next,
                problem: Some(problem),
            })
        }
        Err(e) => {
            let fallback = write::fallback_path(output);
            match write::write_text_atomic(&fallback, &text) {
                Ok(()) => {
                    let problem =
                        format!("{e}; the runs were saved to {} instead", fallback.display());
                    Ok(Saved {
                        path: fallback,
                        problem: Some(problem),
                    })
                }
                Err(e2) => bail!(
                    "{e}; the fallback file {} could not be written either ({e2})",
                    fallback.display()
                ),
            }
        }
    }
}
