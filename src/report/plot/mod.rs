//! The plot: time to first token by prompt, decode rate against the swept setting (by prompt when
//! nothing is swept), and the inter-token latency distribution, one colour per entry, as one SVG
//! (or an HTML page holding it). Drawn by hand: see `svg` for the primitives.

mod axes;
mod bars;
mod boxes;
mod lines;
pub mod svg;

use std::path::Path;

use crate::measure::Summary;
use crate::results::write::{write_text_atomic, WriteError};
use crate::results::{EngineResult, PromptResult};
use svg::{esc, Anchor, Svg};

/// One entry to draw.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// The result.
    pub result: &'a EngineResult,
    /// Draw the original benchmark's decode rate, N/(E2E − TTFT) (`seed_tps`), because an
    /// original-benchmark file is drawn alongside.
    pub seed_tps: bool,
}

impl Series<'_> {
    fn tps(&self, p: &PromptResult) -> Option<Summary> {
        if self.seed_tps {
            p.seed_tps.or(p.tps)
        } else {
            p.tps
        }
    }
}

const W: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const PANEL_H: f64 = 300.0;
const PLOT_H: f64 = 210.0;
/// Entry colours (Tableau 10).
const COLORS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
/// Prompt colours for the line chart (Dark2), distinct from the entry colours.
const LINE_COLORS: [&str; 6] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d",
];
const DASHES: [Option<&str>; 4] = [None, Some("6,4"), Some("2,3"), Some("10,3,2,3")];
/// Settings a decode-rate line is drawn against, in order of preference: the llama.cpp settings
/// table's report columns.
fn sweep_axes() -> impl Iterator<Item = &'static str> {
    crate::settings::report_columns(crate::settings::llamacpp::TABLE)
}

fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

fn prompts(series: &[Series<'_>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in series {
        for p in s.result.prompts.keys() {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    out
}

/// Legend of the entries, wrapped; returns the height used.
fn legend(svg: &mut Svg, top: f64, series: &[Series<'_>]) -> f64 {
    let (mut x, mut y) = (LEFT, top);
    for (i, s) in series.iter().enumerate() {
        let w = 36.0 + 7.4 * s.label.chars().count() as f64;
        if x + w > W - RIGHT && x > LEFT {
            x = LEFT;
            y += 20.0;
        }
        svg.rect(x, y - 10.0, 14.0, 12.0, color(i), None);
        svg.text(x + 19.0, y, &s.label, 12.0, Anchor::Start, "");
        x += w;
    }
    y - top + 20.0
}

/// The whole picture as SVG.
pub fn svg(series: &[Series<'_>], title: &str) -> String {
    let mut svg = Svg::default();
    svg.text(
        LEFT,
        30.0,
        title,
        18.0,
        Anchor::Start,
        "font-weight=\"bold\"",
    );
    let mut top = 56.0;
    top += legend(&mut svg, top, series) + 10.0;
    bars::bars(
        &mut svg,
        top,
        "Time to first token by prompt (mean ± std)",
        "TTFT ms",
        series,
        |_, p| p.ttft_ms,
    );
    top += PANEL_H;
    match series.first().and_then(|_| lines::sweep_axis(series)) {
        Some(axis) => lines::lines(&mut svg, top, axis, series),
        None => {
            let title = if series.iter().any(|s| s.seed_tps) {
                "Decode rate by prompt, N/(E2E − TTFT) as the original benchmark (mean ± std)"
            } else {
                "Decode rate by prompt (mean ± std)"
            };
            bars::bars(&mut svg, top, title, "decode tok/s", series, |s, p| {
                s.tps(p)
            })
        }
    }
    top += PANEL_H + 14.0;
    let summary_only = boxes::boxes(&mut svg, top, series);
    top += PANEL_H - 30.0;
    let note = "box: p25–p75 · line: median · whiskers: p5–p95 · dot: p99, of every gap between tokens of every measured run";
    svg.text(LEFT, top + 14.0, note, 11.0, Anchor::Start, "fill=\"#444\"");
    if summary_only {
        top += 16.0;
        let note = "hollow box: the file holds per-run means only (box mean ± std, line median, whiskers min–max)";
        svg.text(LEFT, top + 14.0, note, 11.0, Anchor::Start, "fill=\"#444\"");
    }
    svg.finish(W, top + 30.0)
}

/// Writes the plot to `path` atomically, never overwriting: SVG, or an HTML page holding it when
/// the name ends in `.html`/`.htm`.
pub fn write(path: &Path, series: &[Series<'_>], title: &str) -> Result<(), WriteError> {
    let picture = svg(series, title);
    let html = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let text = if html {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{picture}</body>\n</html>\n",
            esc(title)
        )
    } else {
        picture
    };
    write_text_atomic(path, &text)
}
