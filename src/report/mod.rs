//! Reports of a results file: the terminal table, Markdown, CSV, the JSON itself, and plots.

pub mod csv;
pub mod files;
pub mod http_comparison;
pub mod load;
pub mod load_http;
pub mod load_plot;
pub mod markdown;
pub mod plot;
pub mod reasoning;
pub mod roofline;
pub mod rows;
pub mod table;

use crate::results::ResultsFile;

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table like the original benchmark's.
    Table,
    /// Markdown, one row per combination and prompt.
    Md,
    /// CSV, one row per combination and prompt.
    Csv,
    /// The results JSON.
    Json,
}

/// Renders `file` in `format`.
pub fn render(file: &ResultsFile, format: Format) -> String {
    match format {
        Format::Table => table::render(file),
        Format::Md => markdown::render(file),
        Format::Csv => csv::render(file),
        Format::Json => serde_json::to_string_pretty(file).unwrap_or_default(),
    }
}
