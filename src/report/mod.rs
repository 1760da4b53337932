//! Reports of a results file: the terminal table, Markdown, CSV, and the JSON itself.

pub mod table;

use crate::cli::Format;
use crate::results::ResultsFile;

/// Renders `file` in `format`.
pub fn render(file: &ResultsFile, format: Format) -> String {
    match format {
        Format::Table | Format::Md | Format::Csv => table::render(file),
        Format::Json => serde_json::to_string_pretty(file).unwrap_or_default(),
    }
}
