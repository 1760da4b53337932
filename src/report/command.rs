//! `inproc-bench report`: results files printed again in any format, and plotted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::plot::{self, Series};
use super::{csv, markdown, rows, table};
use crate::cli::{Format, ReportArgs};
use crate::results::{read, write, ResultsFile};

/// Runs `inproc-bench report`.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = super::load::run_report(args)? {
        return Ok(code);
    }
    if let Some(plot) = &args.plot {
        write::check_writable(plot)?;
    }
    let files: Vec<ResultsFile> = args
        .files
        .iter()
        .map(|p| read::read(p))
        .collect::<Result<_, _>>()?;
    let text = match args.format {
        Format::Table => files
            .iter()
            .map(table::render)
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Md => markdown::render_entries(&rows::entries(&files)),
        Format::Csv => csv::render_entries(&rows::entries(&files)),
        Format::Json if files.len() == 1 => serde_json::to_string_pretty(&files[0])?,
        Format::Json => serde_json::to_string_pretty(&files)?,
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    if let Some(path) = &args.plot {
        write_plot(path, &args.files, &files)?;
        eprintln!("plot: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Draws every entry of `files`; keys are labelled with their file when there are several.
pub fn write_plot(path: &Path, paths: &[PathBuf], files: &[ResultsFile]) -> anyhow::Result<()> {
    // With an original-benchmark file among ours, every decode rate is drawn by its definition.
    let mixed =
        files.iter().any(|f| f.schema_version == 0) && files.iter().any(|f| f.schema_version > 0);
    let series: Vec<Series<'_>> = rows::entries(files)
        .into_iter()
        .map(|e| {
            let file_index = files
                .iter()
                .position(|f| std::ptr::eq(f, e.file))
                .unwrap_or(0);
            let label = match paths.get(file_index) {
                Some(p) if files.len() > 1 => {
                    format!(
                        "{} ({})",
                        e.key,
                        p.file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                    )
                }
                _ => e.key.to_string(),
            };
            Series {
                label,
                result: e.result,
                seed_tps: mixed,
            }
        })
        .collect();
    let title = match files {
        [one] => format!(
            "inproc-bench · {} · {}",
            one.scenario,
            one.timestamp.chars().take(19).collect::<String>()
        ),
        _ => "inproc-bench report".into(),
    };
    plot::write(path, &series, &title)
        .with_context(|| format!("writing the plot {}", path.display()))
}
