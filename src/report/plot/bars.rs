//! Grouped bars: one group per prompt, one bar per entry.

use super::axes::{frame, Area};
use super::svg::{Anchor, Svg};
use super::{color, prompts, Series, LEFT};
use crate::measure::Summary;
use crate::results::PromptResult;

/// Grouped bars: one group per prompt, one bar per entry, mean with a ± std whisker.
pub(super) fn bars(
    svg: &mut Svg,
    top: f64,
    title: &str,
    y_label: &str,
    series: &[Series<'_>],
    get: impl Fn(&Series<'_>, &PromptResult) -> Option<Summary>,
) {
    let prompts = prompts(series);
    let hi = series
        .iter()
        .flat_map(|s| s.result.prompts.values().filter_map(|p| get(s, p)))
        .map(|m| m.mean + m.std)
        .fold(0.0, f64::max);
    let area = frame(svg, top, title, y_label, 0.0, hi, false);
    let group_w = Area::width() / prompts.len().max(1) as f64;
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
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
        for (i, s) in series.iter().enumerate() {
            let Some(m) = s.result.prompts.get(prompt).and_then(|p| get(s, p)) else {
                continue;
            };
            let x = x0 + i as f64 * bar_w;
            let y = area.y(m.mean);
            svg.rect(x + 1.0, y, bar_w - 2.0, area.bottom() - y, color(i), None);
            let cx = x + bar_w / 2.0;
            svg.line(
                cx,
                area.y(m.mean - m.std),
                cx,
                area.y(m.mean + m.std),
                "#222",
                1.2,
            );
            svg.line(
                cx - 4.0,
                area.y(m.mean + m.std),
                cx + 4.0,
                area.y(m.mean + m.std),
                "#222",
                1.2,
            );
            if bar_w >= 34.0 {
                let label = if m.mean >= 100.0 {
                    format!("{:.0}", m.mean)
                } else {
                    format!("{:.1}", m.mean)
                };
                svg.text(
                    cx,
                    area.y(m.mean + m.std) - 4.0,
                    &label,
                    10.0,
                    Anchor::Middle,
                    "fill=\"#333\"",
                );
            }
        }
    }
}
