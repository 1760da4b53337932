//! The `--compare-http` table of a load run: per level, each metric in-process and over HTTP, and
//! the difference with its confidence interval (`~` when the interval holds 0); then, per metric,
//! the first level where the two sides part (the interval leaves 0).

use crate::compare_http::CONFIDENCE;
use crate::results::load_http::{LevelComparison, MetricDiff};

/// The comparison as text, one block per level.
pub fn render(levels: &[LevelComparison]) -> String {
    let mut out = format!(
        "IN-PROCESS vs HTTP under load · difference = HTTP − in-process [{:.0}% bootstrap CI over the level's requests]; the same arrivals and token ids on both sides\n",
        CONFIDENCE * 100.0
    );
    for l in levels {
        let slots = l
            .server_streams
            .map_or(String::new(), |n| format!(", server streams {n}"));
        out.push_str(&format!(
            "{} ({} vs {}; {} first{slots})\n  {:<14} {:>12} {:>12} {:>30}\n",
            l.level,
            l.inprocess,
            l.http,
            l.order,
            "metric",
            "in-process",
            "HTTP",
            "difference [CI]"
        ));
        for m in &l.metrics {
            let noise = if m.ci_low <= 0.0 && m.ci_high >= 0.0 {
                " ~"
            } else {
                ""
            };
            out.push_str(&format!(
                "  {:<14} {:>12.2} {:>12.2} {:>30}\n",
                m.metric,
                m.inprocess,
                m.http,
                format!(
                    "{:+.2} [{:+.2}, {:+.2}]{noise}",
                    m.difference, m.ci_low, m.ci_high
                )
            ));
        }
    }
    if !levels.is_empty() {
        out.push_str(&format!(
            "  where they part: {}
",
            parting_text(levels)
        ));
    }
    out
}

/// Per metric, the first level (in load order) whose difference interval leaves 0: where the
/// served side parts from the in-process one. `None`: the sides never part within the levels run.
pub fn parting(levels: &[LevelComparison]) -> Vec<(String, Option<(String, MetricDiff)>)> {
    let Some(first) = levels.first() else {
        return Vec::new();
    };
    first
        .metrics
        .iter()
        .map(|m| {
            let at = levels.iter().find_map(|l| {
                l.metrics
                    .iter()
                    .find(|d| d.metric == m.metric && (d.ci_low > 0.0 || d.ci_high < 0.0))
                    .map(|d| (l.level.clone(), d.clone()))
            });
            (m.metric.clone(), at)
        })
        .collect()
}

/// [`parting`] in one line: `ttft_p50_ms at concurrency=4 (+3.10), itl_p50_ms never, …`.
pub fn parting_text(levels: &[LevelComparison]) -> String {
    parting(levels)
        .into_iter()
        .map(|(metric, at)| match at {
            Some((level, d)) => format!("{metric} at {level} ({:+.2})", d.difference),
            None => format!("{metric} never"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(name: &str, ttft: (f64, f64), tps: (f64, f64)) -> LevelComparison {
        let diff = |metric: &str, (lo, hi): (f64, f64)| MetricDiff {
            metric: metric.into(),
            inprocess: 10.0,
            http: 10.0 + (lo + hi) / 2.0,
            difference: (lo + hi) / 2.0,
            ci_low: lo,
            ci_high: hi,
        };
        LevelComparison {
            level: name.into(),
            inprocess: format!("llamacpp@{name}"),
            http: format!("llamacpp-http@{name}"),
            order: "in-process".into(),
            server_streams: None,
            metrics: vec![diff("ttft_p50_ms", ttft), diff("output_tps", tps)],
        }
    }

    #[test]
    fn the_sides_part_at_the_first_level_whose_interval_leaves_zero() {
        let levels = [
            level("concurrency=1", (-1.0, 2.0), (-3.0, 1.0)),
            level("concurrency=2", (0.5, 3.5), (-2.0, 2.0)),
            level("concurrency=4", (1.0, 9.0), (-2.0, 2.0)),
        ];
        let p = parting(&levels);
        assert_eq!(
            p[0].1.as_ref().map(|(l, _)| l.as_str()),
            Some("concurrency=2")
        );
        assert!(p[1].1.is_none());
        assert_eq!(
            parting_text(&levels),
            "ttft_p50_ms at concurrency=2 (+2.00), output_tps never"
        );
        assert!(render(&levels).ends_with(
            "  where they part: ttft_p50_ms at concurrency=2 (+2.00), output_tps never\n"
        ));
    }
}
