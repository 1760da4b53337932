//! Reports of a results file: the terminal table, Markdown, CSV, the JSON itself, and plots.

pub mod command;
pub mod csv;
pub mod markdown;
pub mod plot;
pub mod reasoning;
pub mod roofline;
pub mod rows;
pub mod table;

use crate::cli::Format;
use crate::results::ResultsFile;

/// Renders `file` in `format`.
pub fn render(file: &ResultsFile, format: Format) -> String {
    match format {
        Format::Table => table::render(file),
        Format::Md => markdown::render(file),
        Format::Csv => csv::render(file),
        Format::Json => serde_json::to_string_pretty(file).unwrap_or_default(),
    }
}
