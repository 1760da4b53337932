//! The decode rate against the swept setting, one line per prompt.

use serde_json::Value;

use super::axes::{frame, Area};
use super::svg::{Anchor, Svg};
use super::{prompts, sweep_axes, Series, DASHES, LEFT, LINE_COLORS, RIGHT, W};
use crate::measure::Summary;
use crate::results::EngineResult;

pub(super) fn setting(r: &EngineResult, key: &str) -> Option<Value> {
    r.settings.get(key).cloned()
}

/// The setting whose values differ between entries, to draw the decode rate against.
pub(super) fn sweep_axis(series: &[Series<'_>]) -> Option<&'static str> {
    sweep_axes().find(|k| {
        let first = setting(series[0].result, k);
        first.is_some() && series.iter().any(|s| setting(s.result, k) != first)
    })
}

/// A setting's value as the settings table prints it (`all (-1)` for every GPU layer).
pub(super) fn value_text(v: &Value, key: &str) -> String {
    crate::settings::display(key, v)
}

/// Decode rate against `axis`: one line per prompt (and per value of the other varying settings).
pub(super) fn lines(svg: &mut Svg, top: f64, axis: &str, series: &[Series<'_>]) {
    // x categories in order: numbers ascending (-1, "all layers", last), then the rest as met.
    let mut xs: Vec<Value> = Vec::new();
    for s in series {
        if let Some(v) = setting(s.result, axis) {
            if !xs.contains(&v) {
                xs.push(v);
            }
        }
    }
    let rank = |v: &Value| match v.as_f64() {
        Some(x) if x < 0.0 => f64::MAX,
        Some(x) => x,
        None => f64::MAX,
    };
    xs.sort_by(|a, b| rank(a).total_cmp(&rank(b)));
    // Lines: entries that differ only in `axis` share a line.
    let others = |r: &EngineResult| -> String {
        r.settings
            .iter()
            .filter(|(k, v)| {
                k.as_str() != axis && series.iter().any(|s| s.result.settings.get(*k) != Some(*v))
            })
            .map(|(k, v)| {
                if k == crate::settings::llamacpp::MODEL.key {
                    crate::report::rows::model_name(r)
                } else {
                    format!("{k}={}", value_text(v, k))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut groups: Vec<String> = Vec::new();
    for s in series {
        let g = others(s.result);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let prompts = prompts(series);
    let hi = series
        .iter()
        .flat_map(|s| s.result.prompts.values().filter_map(|p| s.tps(p)))
        .map(|m| m.mean + m.std)
        .fold(0.0, f64::max);
    let title = format!("Decode rate against {axis} (mean ± std)");
    let area = frame(svg, top, &title, "decode tok/s", 0.0, hi, false);
    let step = Area::width() / xs.len().max(1) as f64;
    let x_of = |v: &Value| {
        xs.iter()
            .position(|x| x == v)
            .map(|i| LEFT + step * (i as f64 + 0.5))
    };
    for v in &xs {
        if let Some(x) = x_of(v) {
            svg.text(
                x,
                area.bottom() + 18.0,
                &value_text(v, axis),
                12.0,
                Anchor::Middle,
                "",
            );
        }
    }
    svg.text(
        LEFT + Area::width() / 2.0,
        area.bottom() + 36.0,
        axis,
        12.0,
        Anchor::Middle,
        "fill=\"#444\"",
    );
    let mut legend: Vec<(String, &str, Option<&str>)> = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (pi, prompt) in prompts.iter().enumerate() {
            let c = LINE_COLORS[pi % LINE_COLORS.len()];
            let dash = DASHES[gi % DASHES.len()];
            let mut pts: Vec<(f64, f64, Summary)> = series
                .iter()
                .filter(|s| others(s.result) == *g)
                .filter_map(|s| {
                    let x = x_of(&setting(s.result, axis)?)?;
                    let m = s.tps(s.result.prompts.get(prompt)?)?;
                    Some((x, area.y(m.mean), m))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            svg.polyline(&pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(), c, dash);
            for (x, y, m) in &pts {
                svg.line(
                    *x,
                    area.y(m.mean - m.std),
                    *x,
                    area.y(m.mean + m.std),
                    c,
                    1.2,
                );
                svg.circle(*x, *y, 3.5, c);
            }
            let name = if g.is_empty() {
                prompt.clone()
            } else {
                format!("{prompt} · {g}")
            };
            legend.push((name, c, dash));
        }
    }
    // Legend inside the panel, top right.
    let lx = W - RIGHT - 230.0;
    for (i, (name, c, dash)) in legend.iter().enumerate() {
        let y = area.top + 8.0 + i as f64 * 16.0;
        svg.polyline(&[(lx, y), (lx + 24.0, y)], c, *dash);
        svg.text(lx + 30.0, y + 4.0, name, 11.0, Anchor::Start, "");
    }
}
