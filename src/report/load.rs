//! Reports of a load run: one row per engine and level (Markdown for the terminal and `md`, raw
//! numbers for `csv`), throughput beside TTFT and ITL percentiles, goodput and saturation.

use crate::measure::Summary;
use crate::report::Format;
use crate::results::load::{LevelResult, LoadFile};

const COLUMNS: [&str; 16] = [
    "entry",
    "requests",
    "completed",
    "failed",
    "req_per_s",
    "output_tps",
    "concurrency",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "tpot_p50_ms",
    "e2e_p50_ms",
    "queue_wait_p50_ms",
    "goodput_req_per_s",
    "saturated",
];

fn p(s: &Option<Summary>, q: fn(&Summary) -> f64, digits: usize) -> String {
    s.as_ref()
        .map_or_else(|| "-".to_string(), |s| format!("{:.digits$}", q(s)))
}

fn row(key: &str, l: &LevelResult, digits: usize) -> Vec<String> {
    let s = &l.summary;
    vec![
        key.to_string(),
        s.requests.to_string(),
        s.completed.to_string(),
        s.failed.to_string(),
        format!("{:.digits$}", s.request_throughput),
        format!("{:.digits$}", s.output_throughput_tps),
        format!("{:.digits$}", s.achieved_concurrency),
        p(&s.ttft_ms, |x| x.p50, digits),
        p(&s.ttft_ms, |x| x.p99, digits),
        p(&s.itl_ms, |x| x.p50, digits),
        p(&s.itl_ms, |x| x.p99, digits),
        p(&s.tpot_ms, |x| x.p50, digits),
        p(&s.e2e_ms, |x| x.p50, digits),
        p(&s.queue_wait_ms, |x| x.p50, digits),
        s.goodput
            .as_ref()
            .map_or_else(|| "-".into(), |g| format!("{:.digits$}", g.request_rate)),
        if s.saturated { "yes" } else { "no" }.into(),
    ]
}

/// Renders a load file in `format`.
pub fn render(file: &LoadFile, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(file).unwrap_or_default(),
        Format::Csv => {
            let mut out = COLUMNS.join(",");
            out.push('\n');
            for (k, l) in &file.load.levels {
                let cells: Vec<String> = row(k, l, 4)
                    .into_iter()
                    .map(|c| {
                        if c.contains(',') || c.contains('"') {
                            format!("\"{}\"", c.replace('"', "\"\""))
                        } else if c == "-" {
                            String::new()
                        } else {
                            c
                        }
                    })
                    .collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            out
        }
        Format::Table | Format::Md => {
            let mut out = format!(
                "Load: {} (seed {}, burstiness {})\n\n",
                file.load.workload, file.load.seed, file.load.burstiness
            );
            out.push_str(&format!("| {} |\n", COLUMNS.join(" | ")));
            out.push_str(&format!("|{}\n", "---|".repeat(COLUMNS.len())));
            for (k, l) in &file.load.levels {
                out.push_str(&format!("| {} |\n", row(k, l, 2).join(" | ")));
            }
            let notes: Vec<String> = file
                .load
                .levels
                .iter()
                .filter_map(|(k, l)| Some(format!("{k}: {}", l.incomplete_reason.as_ref()?)))
                .collect();
            if !notes.is_empty() {
                out.push_str(&format!("\nincomplete: {}\n", notes.join("; ")));
            }
            out
        }
    }
}
