//! The comparison of load files as a terminal table, Markdown, CSV or JSON.

use std::fmt::Write;

use super::load::{Agreement, LoadComparison, LoadRow};
use super::render::aligned;
use crate::report::csv::field;
use crate::report::markdown::table;
use crate::report::rows::num;
use crate::report::Format;

/// Value, difference [CI], ratio [CI], p, verdict.
fn cells(row: &LoadRow, digits: usize) -> Vec<String> {
    let f = |x: f64| format!("{x:.digits$}");
    let i = row.interval.as_ref();
    vec![
        row.value.map(f).unwrap_or_else(|| "-".into()),
        match (row.difference, i) {
            (Some(d), Some(i)) => format!(
                "{:+.digits$} [{:+.digits$}, {:+.digits$}]",
                d, i.difference_low, i.difference_high
            ),
            (Some(d), None) => format!("{d:+.digits$}"),
            _ => String::new(),
        },
        match (row.ratio, i) {
            (Some(r), Some(i)) => format!("{r:.3} [{:.3}, {:.3}]", i.ratio_low, i.ratio_high),
            (Some(r), None) => format!("{r:.3}"),
            _ => String::new(),
        },
        i.map(|i| i.method.to_string()).unwrap_or_default(),
        row.verdict.clone(),
    ]
}

fn agreement_line(a: &Agreement) -> String {
    format!(
        "[{}] generated the same tokens as [1] in {} of {} requests (the first 16 tokens: {} of {})",
        a.entry, a.same_output, a.compared, a.same_prefix, a.compared
    )
}

const HEAD: [&str; 7] = [
    "metric",
    "entry",
    "value",
    "difference [CI]",
    "ratio [CI]",
    "interval",
    "verdict",
];

fn render_table(c: &LoadComparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "LOAD COMPARISON · difference = entry − [1], {}% interval: Welch's test for means, a bootstrap over requests ({} resamples) for p50/p99",
        c.confidence * 100.0,
        c.resamples
    );
    for (i, f) in c.files.iter().enumerate() {
        let _ = writeln!(out, "  [{}] {f}", i + 1);
    }
    for w in &c.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for l in &c.levels {
        let entries: Vec<String> = l
            .entries
            .iter()
            .map(|e| {
                format!(
                    "[{}] {} ({}/{} requests)",
                    e.entry, e.key, e.completed, e.requests
                )
            })
            .collect();
        let _ = writeln!(out, "\nlevel {} · {}", l.level, entries.join(" · "));
        let mut rows = Vec::new();
        for m in &l.metrics {
            for (i, r) in m.rows.iter().enumerate() {
                let mut row = vec![
                    if i == 0 {
                        m.label.to_string()
                    } else {
                        String::new()
                    },
                    format!("[{}]", r.entry),
                ];
                row.extend(cells(r, m.digits));
                rows.push(row);
            }
        }
        out.push_str(&aligned(&HEAD, &rows, 2));
        for a in &l.agreement {
            let _ = writeln!(out, "  outputs: {}", agreement_line(a));
        }
    }
    out
}

fn render_md(c: &LoadComparison) -> String {
    let mut out = String::new();
    for (i, f) in c.files.iter().enumerate() {
        let _ = writeln!(out, "- [{}] {f}", i + 1);
    }
    for w in &c.warnings {
        let _ = writeln!(out, "- **warning**: {w}");
    }
    for l in &c.levels {
        for a in &l.agreement {
            let _ = writeln!(out, "- {}: {}", l.level, agreement_line(a));
        }
    }
    out.push('\n');
    let mut cols: Vec<(String, bool)> = vec![("level".into(), false)];
    cols.extend(HEAD.iter().enumerate().map(|(i, h)| {
        let h = h.replace("[CI]", &format!("[{}% CI]", c.confidence * 100.0));
        (h, i == 2)
    }));
    let mut rows = Vec::new();
    for l in &c.levels {
        for m in &l.metrics {
            for r in &m.rows {
                let mut row = vec![
                    l.level.clone(),
                    m.label.to_string(),
                    format!("[{}]", r.entry),
                ];
                row.extend(cells(r, m.digits));
                rows.push(row);
            }
        }
    }
    out.push_str(&table(&cols, &rows));
    out
}

fn render_csv(c: &LoadComparison) -> String {
    let mut out = String::from(
        "level,metric,entry,key,file,value,difference,ratio,method,difference_ci_low,difference_ci_high,ratio_ci_low,ratio_ci_high,p_value,verdict\n",
    );
    for l in &c.levels {
        for m in &l.metrics {
            for r in &m.rows {
                let key = l
                    .entries
                    .iter()
                    .find(|e| e.entry == r.entry)
                    .map(|e| e.key.clone())
                    .unwrap_or_default();
                let o = |x: Option<f64>| x.map(num).unwrap_or_default();
                let i = r.interval.as_ref();
                let fields = [
                    l.level.clone(),
                    m.metric.to_string(),
                    r.entry.to_string(),
                    key,
                    c.files[r.entry - 1].clone(),
                    o(r.value),
                    o(r.difference),
                    o(r.ratio),
                    i.map(|i| i.method.to_string()).unwrap_or_default(),
                    o(i.map(|i| i.difference_low)),
                    o(i.map(|i| i.difference_high)),
                    o(i.map(|i| i.ratio_low)),
                    o(i.map(|i| i.ratio_high)),
                    o(i.and_then(|i| i.p_value)),
                    r.verdict.clone(),
                ];
                let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
        }
    }
    out
}

/// Renders `c` in `format`.
pub fn render(c: &LoadComparison, format: Format) -> Result<String, serde_json::Error> {
    Ok(match format {
        Format::Table => render_table(c),
        Format::Md => render_md(c),
        Format::Csv => render_csv(c),
        Format::Json => serde_json::to_string_pretty(c)?,
    })
}
