//! Several results files at once: printed in one format, and drawn with labelled series.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::plot::{self, Series};
use super::{csv, markdown, rows, table, Format};
use crate::results::ResultsFile;

/// Renders `files` in `format`: a table per file, or one Markdown/CSV table of every entry, or
/// the JSON (one object for one file, an array for several).
pub fn render_files(files: &[ResultsFile], format: Format) -> serde_json::Result<String> {
    Ok(match format {
        Format::Table => files
            .iter()
            .map(table::render)
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Md => markdown::render_entries(&rows::entries(files)),
        Format::Csv => csv::render_entries(&rows::entries(files)),
        Format::Json if files.len() == 1 => serde_json::to_string_pretty(&files[0])?,
        Format::Json => serde_json::to_string_pretty(files)?,
    })
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
