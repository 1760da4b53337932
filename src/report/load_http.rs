//! The `--compare-http` table of a load run: per level, each metric in-process and over HTTP, and
//! the difference with its confidence interval (`~` when the interval holds 0).

use crate::compare_http::CONFIDENCE;
use crate::results::load_http::LevelComparison;

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
    out
}
