//! Box plots of the inter-token latency, by prompt, one box per entry.

use super::axes::{frame, Area};
use super::svg::{Anchor, Svg};
use super::{color, prompts, Series, LEFT};
use crate::measure::stats::percentile_sorted;
use crate::measure::Summary;
use crate::results::PromptResult;

/// Quantiles of one entry's inter-token gaps for one prompt.
pub(super) enum Spread {
    /// From every gap of every measured run: p5, p25, p50, p75, p95, p99.
    Samples([f64; 6]),
    /// From a stored summary only (per-run means for the original benchmark's files).
    Summary(Summary),
}

pub(super) fn spread(p: &PromptResult) -> Option<Spread> {
    let mut gaps: Vec<f64> = p
        .runs
        .iter()
        .filter(|r| r.error.is_none())
        .flat_map(|r| r.itl_ms.iter().copied())
        .filter(|x| x.is_finite())
        .collect();
    if gaps.is_empty() {
        return p.itl_ms.or(p.itl_mean_ms).map(Spread::Summary);
    }
    gaps.sort_by(f64::total_cmp);
    let q = |f| percentile_sorted(&gaps, f);
    Some(Spread::Samples([
        q(0.05),
        q(0.25),
        q(0.5),
        q(0.75),
        q(0.95),
        q(0.99),
    ]))
}

/// Box plots of the inter-token latency: groups by prompt, one box per entry.
pub(super) fn boxes(svg: &mut Svg, top: f64, series: &[Series<'_>]) -> bool {
    let prompts = prompts(series);
    let spreads: Vec<Vec<Option<Spread>>> = series
        .iter()
        .map(|s| {
            prompts
                .iter()
                .map(|p| s.result.prompts.get(p).and_then(spread))
                .collect()
        })
        .collect();
    let hi = spreads
        .iter()
        .flatten()
        .flatten()
        .map(|s| match s {
            Spread::Samples(q) => q[5],
            Spread::Summary(m) => m.max,
        })
        .fold(0.0, f64::max);
    let lo = spreads
        .iter()
        .flatten()
        .flatten()
        .map(|s| match s {
            Spread::Samples(q) => q[0],
            Spread::Summary(m) => m.min,
        })
        .fold(f64::INFINITY, f64::min);
    let area = frame(
        svg,
        top,
        "Inter-token latency distribution",
        "ms per token",
        lo,
        hi,
        true,
    );
    let group_w = Area::width() / prompts.len().max(1) as f64;
    let box_w = group_w * 0.8 / series.len().max(1) as f64;
    let mut summary_only = false;
    for (g, prompt) in prompts.iter().enumerate() {
        let x0 = LEFT + g as f64 * group_w + group_w * 0.1;
        svg.text(
            x0 + group_w * 0.4,
            area.bottom() + 18.0,
            prompt,
            12.0,
            Anchor::Middle,
            "",
        );
        for (i, per_prompt) in spreads.iter().enumerate() {
            let Some(sp) = &per_prompt[g] else { continue };
            let c = color(i);
            let cx = x0 + (i as f64 + 0.5) * box_w;
            let half = (box_w * 0.35).min(22.0);
            match sp {
                Spread::Samples([p5, p25, p50, p75, p95, p99]) => {
                    svg.line(cx, area.y(*p5), cx, area.y(*p95), "#333", 1.0);
                    svg.line(
                        cx - half / 2.0,
                        area.y(*p5),
                        cx + half / 2.0,
                        area.y(*p5),
                        "#333",
                        1.0,
                    );
                    svg.line(
                        cx - half / 2.0,
                        area.y(*p95),
                        cx + half / 2.0,
                        area.y(*p95),
                        "#333",
                        1.0,
                    );
                    let (top_y, bottom_y) = (area.y(*p75), area.y(*p25));
                    svg.rect(
                        cx - half,
                        top_y,
                        2.0 * half,
                        (bottom_y - top_y).max(1.5),
                        c,
                        Some("#333"),
                    );
                    svg.line(
                        cx - half,
                        area.y(*p50),
                        cx + half,
                        area.y(*p50),
                        "#111",
                        2.0,
                    );
                    svg.circle(cx, area.y(*p99), 3.0, "#111");
                }
                Spread::Summary(m) => {
                    summary_only = true;
                    svg.line(cx, area.y(m.min), cx, area.y(m.max), c, 1.5);
                    let (lo, hi) = ((m.mean - m.std).max(m.min), (m.mean + m.std).min(m.max));
                    svg.rect(
                        cx - half,
                        area.y(hi),
                        2.0 * half,
                        (area.y(lo) - area.y(hi)).max(1.5),
                        "white",
                        Some(c),
                    );
                    svg.line(cx - half, area.y(m.p50), cx + half, area.y(m.p50), c, 2.0);
                }
            }
        }
    }
    summary_only
}
