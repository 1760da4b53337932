//! The comparison as a terminal table, Markdown, CSV or JSON.

use std::fmt::Write;

use super::select::Side;
use super::{Comparison, Row};
use crate::report::csv::field;
use crate::report::markdown::table;
use crate::report::rows::num;
use crate::report::Format;

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// The figures of one row as text: runs, mean ± std, p50, p95, p99, ratio [CI], p, verdict.
fn cells(row: &Row, digits: usize) -> Vec<String> {
    let f = |x: f64| format!("{x:.digits$}");
    let mut out = vec![row.runs.to_string()];
    match &row.summary {
        Some(s) => out.extend([
            format!("{} ± {}", f(s.mean), f(s.std)),
            f(s.p50),
            f(s.p95),
            f(s.p99),
        ]),
        None => out.extend(["-", "-", "-", "-"].map(String::from)),
    }
    out.push(match (row.ratio, &row.test) {
        (Some(r), Some(t)) => format!("{r:.3} [{:.3}, {:.3}]", t.ratio_ci_low, t.ratio_ci_high),
        (Some(r), None) => format!("{r:.3}"),
        _ => String::new(),
    });
    out.push(row.test.map(|t| p_text(t.p_value)).unwrap_or_default());
    out.push(row.verdict.clone());
    out
}

/// Columns laid out with spaces, first column left-aligned, numbers right-aligned.
pub(super) fn aligned(head: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < left || i + 1 == cells.len() {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        format!("  {}\n", parts.join("  ").trim_end())
    };
    let mut out = line(head.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn legend(sides: &[Side<'_>]) -> Vec<String> {
    sides
        .iter()
        .map(|s| {
            let seed = if s.file.schema_version == 0 {
                " (original benchmark)"
            } else {
                ""
            };
            format!(
                "{} {} · {} · {}{seed}",
                s.tag(),
                s.key,
                crate::report::rows::model_name(s.result),
                s.file_name()
            )
        })
        .collect()
}

const HEAD: [&str; 10] = [
    "metric",
    "entry",
    "runs",
    "mean ± std",
    "p50",
    "p95",
    "p99",
    "ratio [CI]",
    "p",
    "verdict",
];

fn render_table(c: &Comparison, sides: &[Side<'_>]) -> String {
    let mut out = String::new();
    let pct = c.confidence * 100.0;
    let _ = writeln!(
        out,
        "COMPARISON · ratio = entry mean / [1] mean, {pct}% confidence interval · Welch's t-test p"
    );
    for l in legend(sides) {
        let _ = writeln!(out, "  {l}");
    }
    for n in &c.notes {
        let _ = writeln!(out, "note: {n}");
    }
    for w in &c.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for p in &c.prompts {
        let _ = writeln!(out, "\nprompt {}", p.prompt);
        let mut rows = Vec::new();
        for m in &p.metrics {
            let digits = m.digits;
            for (i, r) in m.rows.iter().enumerate() {
                let mut row = vec![
                    if i == 0 {
                        m.label.to_string()
                    } else {
                        String::new()
                    },
                    format!("[{}]", r.entry),
                ];
                row.extend(cells(r, digits));
                rows.push(row);
            }
        }
        out.push_str(&aligned(&HEAD, &rows, 2));
    }
    out
}

fn render_md(c: &Comparison, sides: &[Side<'_>]) -> String {
    let mut out = String::new();
    for l in legend(sides) {
        let _ = writeln!(out, "- {l}");
    }
    for n in &c.notes {
        let _ = writeln!(out, "- note: {n}");
    }
    for w in &c.warnings {
        let _ = writeln!(out, "- **warning**: {w}");
    }
    out.push('\n');
    let mut cols: Vec<(String, bool)> = vec![("prompt".into(), false)];
    cols.extend(HEAD.iter().enumerate().map(|(i, h)| {
        let h = if *h == "ratio [CI]" {
            format!("ratio [{}% CI]", c.confidence * 100.0)
        } else {
            h.to_string()
        };
        (h, i >= 2 && i + 1 < HEAD.len())
    }));
    let mut rows = Vec::new();
    for p in &c.prompts {
        for m in &p.metrics {
            for r in &m.rows {
                let mut row = vec![
                    p.prompt.clone(),
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

fn render_csv(c: &Comparison) -> String {
    let mut out = String::from(
        "prompt,metric,entry,key,file,runs,source,mean,std,p50,p95,p99,ratio,ratio_ci_low,ratio_ci_high,difference,difference_ci_low,difference_ci_high,t,df,p_value,within_noise,verdict\n",
    );
    for p in &c.prompts {
        for m in &p.metrics {
            for r in &m.rows {
                let e = &c.entries[r.entry - 1];
                let o = |x: Option<f64>| x.map(num).unwrap_or_default();
                let s = r.summary.as_ref();
                let t = r.test.as_ref();
                let fields = [
                    p.prompt.clone(),
                    m.metric.to_string(),
                    r.entry.to_string(),
                    e.key.clone(),
                    e.file.clone(),
                    r.runs.to_string(),
                    r.source
                        .map(|s| format!("{s:?}").to_lowercase())
                        .unwrap_or_default(),
                    o(s.map(|s| s.mean)),
                    o(s.map(|s| s.std)),
                    o(s.map(|s| s.p50)),
                    o(s.map(|s| s.p95)),
                    o(s.map(|s| s.p99)),
                    o(r.ratio),
                    o(t.map(|t| t.ratio_ci_low)),
                    o(t.map(|t| t.ratio_ci_high)),
                    o(t.map(|t| t.difference)),
                    o(t.map(|t| t.difference_ci_low)),
                    o(t.map(|t| t.difference_ci_high)),
                    o(t.map(|t| t.t)),
                    o(t.map(|t| t.df)),
                    o(t.map(|t| t.p_value)),
                    t.map(|t| t.within_noise.to_string()).unwrap_or_default(),
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
pub fn render(
    c: &Comparison,
    sides: &[Side<'_>],
    format: Format,
) -> Result<String, serde_json::Error> {
    Ok(match format {
        Format::Table => render_table(c, sides),
        Format::Md => render_md(c, sides),
        Format::Csv => render_csv(c),
        Format::Json => serde_json::to_string_pretty(c)?,
    })
}
