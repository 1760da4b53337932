//! Markdown as llama-bench prints it: one row per engine (or sweep combination) and prompt, the
//! model and the settings that matter first, then the measured figures as mean ± std.

use crate::measure::Summary;
use crate::results::ResultsFile;

use super::rows::{self, Entry};

/// `mean ± std` with `digits` decimals; `-` when not measured.
fn mean_std(s: Option<&Summary>, digits: usize) -> String {
    s.map_or_else(
        || "-".into(),
        |s| format!("{:.*} ± {:.*}", digits, s.mean, digits, s.std),
    )
}

/// A mean that is usually a whole number (token counts), shown without decimals when it is one.
fn count(s: Option<&Summary>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s.mean.fract() == 0.0 => format!("{:.0}", s.mean),
        Some(s) => format!("{:.1}", s.mean),
    }
}

/// A table column: heading, and whether it is right-aligned (numbers).
fn col(head: &str, right: bool) -> (String, bool) {
    (head.to_string(), right)
}

/// Lays out rows as a Markdown table with padded columns.
pub fn table(cols: &[(String, bool)], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain(std::iter::once(cols[i].0.chars().count()))
            .max()
            .unwrap_or(3)
            .max(3)
    };
    let widths: Vec<usize> = (0..cols.len()).map(width).collect();
    let cell = |text: &str, i: usize| {
        if cols[i].1 {
            format!(" {text:>w$} ", w = widths[i])
        } else {
            format!(" {text:<w$} ", w = widths[i])
        }
    };
    let mut out = String::new();
    let line = |cells: Vec<String>| format!("|{}|\n", cells.join("|"));
    out.push_str(&line(
        cols.iter()
            .enumerate()
            .map(|(i, c)| cell(&c.0, i))
            .collect(),
    ));
    out.push_str(&line(
        cols.iter()
            .enumerate()
            .map(|(i, c)| {
                if c.1 {
                    format!(" {}: ", "-".repeat(widths[i] - 1))
                } else {
                    format!(" {} ", "-".repeat(widths[i]))
                }
            })
            .collect(),
    ));
    for r in rows {
        out.push_str(&line(
            r.iter().enumerate().map(|(i, t)| cell(t, i)).collect(),
        ));
    }
    out
}

/// The Markdown report of `entries`.
pub fn render_entries(entries: &[Entry<'_>]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let several_files = entries
        .iter()
        .any(|e| !std::ptr::eq(e.file, entries[0].file));
    let settings = rows::setting_columns(entries);
    let mut cols: Vec<(String, bool)> = Vec::new();
    if several_files {
        cols.push(col("run", false));
    }
    for (h, r) in [
        ("model", false),
        ("size", true),
        ("params", true),
        ("backend", false),
    ] {
        cols.push(col(h, r));
    }
    cols.extend(settings.iter().map(|(_, c)| col(c, true)));
    for (h, r) in [
        ("prompt", false),
        ("runs", true),
        ("pp", true),
        ("tg", true),
        ("TTFT ms", true),
        ("pp t/s", true),
        ("tg t/s", true),
        ("ITL ms", true),
        ("E2E ms", true),
    ] {
        cols.push(col(h, r));
    }
    let reasoning = super::reasoning::any(entries);
    if reasoning {
        cols.push(col("TTFO ms", true));
        cols.push(col("think / answer tok", true));
    }
    let roofline = super::roofline::any(entries);
    if roofline {
        cols.push(col("mem GB/s", true));
        cols.push(col("% peak", true));
    }
    let mut body = Vec::new();
    for e in entries {
        let r = e.result;
        for (prompt, p) in &r.prompts {
            let mut row = Vec::new();
            if several_files {
                row.push(
                    e.file
                        .timestamp
                        .chars()
                        .take(19)
                        .collect::<String>()
                        .replace('T', " "),
                );
            }
            row.push(rows::model_name(r));
            row.push(rows::size_text(rows::model_size_bytes(r)));
            row.push(rows::params_text(rows::model_params(r)));
            row.push(rows::backend(e));
            row.extend(settings.iter().map(|(k, _)| rows::setting_text(r, k)));
            row.push(prompt.clone());
            row.push(format!("{}/{}", p.successful_runs, p.total_runs));
            row.push(count(p.prompt_tokens.as_ref()));
            row.push(count(p.tokens_generated.as_ref()));
            row.push(mean_std(p.ttft_ms.as_ref(), 2));
            row.push(mean_std(p.prefill_tps.as_ref(), 1));
            row.push(mean_std(p.tps.as_ref(), 2));
            row.push(mean_std(p.itl_mean_ms.as_ref(), 3));
            row.push(mean_std(p.e2e_latency_ms.as_ref(), 1));
            if reasoning {
                row.extend(super::reasoning::cells(p));
            }
            if roofline {
                row.extend(super::roofline::cells(r, prompt));
            }
            body.push(row);
        }
    }
    let mut out = table(&cols, &body);
    out.push_str(&phase_lines(entries));
    out
}

/// Where each token's time went, one line per engine and prompt (pooled over the runs).
fn phase_lines(entries: &[Entry<'_>]) -> String {
    let lines: Vec<String> = entries
        .iter()
        .flat_map(|e| {
            e.result.prompts.iter().filter_map(move |(prompt, p)| {
                p.phases
                    .as_ref()
                    .map(|ph| format!("- {} · {prompt}: {}\n", e.key, ph.line()))
            })
        })
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\nPer-token phases (ms per token after the first, share of the measured time):\n\n{}",
        lines.concat()
    )
}

/// The Markdown report of one file.
pub fn render(file: &ResultsFile) -> String {
    render_entries(&rows::entries(std::slice::from_ref(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_numeric_ones_right_aligned() {
        let cols = vec![("model".to_string(), false), ("t/s".to_string(), true)];
        let t = table(&cols, &[vec!["a".into(), "1.5 ± 0.1".into()]]);
        assert_eq!(
            t,
            "| model |       t/s |\n| ----- | --------: |\n| a     | 1.5 ± 0.1 |\n"
        );
    }
}
