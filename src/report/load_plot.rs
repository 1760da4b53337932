//! The throughput-vs-latency curve of a load run as SVG: TTFT and ITL (p50 solid, p99 dashed)
//! against output tokens/s, one line per engine, each point labelled with its level; with
//! `--compare-http`, a line that says where the served side parts from the in-process one.

use indexmap::IndexMap;

use super::plot::svg::{Anchor, Svg};
use crate::measure::Summary;
use crate::results::load::{LevelResult, LoadFile};

const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
const W: f64 = 440.0;
const H: f64 = 320.0;
const PAD: f64 = 56.0;

type Pick = fn(&LevelResult) -> Option<Summary>;
/// One engine's points: (output tok/s, ms, level).
type Line = (String, Vec<(f64, f64, String)>);

fn panel(
    svg: &mut Svg,
    x0: f64,
    title: &str,
    pick: Pick,
    engines: &IndexMap<String, Vec<&LevelResult>>,
) {
    let points = |q: fn(&Summary) -> f64| -> Vec<Line> {
        engines
            .iter()
            .map(|(e, levels)| {
                let pts = levels
                    .iter()
                    .filter_map(|l| {
                        Some((
                            l.summary.output_throughput_tps,
                            q(&pick(l)?),
                            l.level.clone(),
                        ))
                    })
                    .collect();
                (e.clone(), pts)
            })
            .collect()
    };
    let p50 = points(|s| s.p50);
    let p99 = points(|s| s.p99);
    let all = p50.iter().chain(&p99).flat_map(|(_, p)| p.iter());
    let (xmax, ymax) = all.fold((0.0f64, 0.0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let (xmax, ymax) = ((xmax * 1.1).max(1e-9), (ymax * 1.1).max(1e-9));
    let (left, right, top, bottom) = (x0 + PAD, x0 + W - 16.0, 40.0, H - 44.0);
    let sx = |x: f64| left + x / xmax * (right - left);
    let sy = |y: f64| bottom - y / ymax * (bottom - top);
    svg.text((left + right) / 2.0, 24.0, title, 14.0, Anchor::Middle, "");
    svg.line(left, bottom, right, bottom, "#333", 1.0);
    svg.line(left, top, left, bottom, "#333", 1.0);
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        svg.text(
            sx(xmax * f),
            bottom + 16.0,
            &format!("{:.0}", xmax * f),
            10.0,
            Anchor::Middle,
            "",
        );
        svg.text(
            left - 6.0,
            sy(ymax * f) + 4.0,
            &format!("{:.1}", ymax * f),
            10.0,
            Anchor::End,
            "",
        );
    }
    svg.text(
        (left + right) / 2.0,
        H - 10.0,
        "output tokens/s",
        11.0,
        Anchor::Middle,
        "",
    );
    svg.text(
        x0 + 14.0,
        (top + bottom) / 2.0,
        "ms",
        11.0,
        Anchor::Middle,
        "",
    );
    for (k, ((_, a), (_, b))) in p50.iter().zip(&p99).enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        let line =
            |p: &Vec<(f64, f64, String)>| p.iter().map(|q| (sx(q.0), sy(q.1))).collect::<Vec<_>>();
        svg.polyline(&line(a), c, None);
        svg.polyline(&line(b), c, Some("6 4"));
        for q in a {
            svg.circle(sx(q.0), sy(q.1), 3.0, c);
            let label = q.2.rsplit('=').next().unwrap_or_default();
            svg.text(sx(q.0) + 5.0, sy(q.1) - 5.0, label, 9.0, Anchor::Start, "");
        }
    }
}

/// The curve of every engine in `file`.
pub fn svg(file: &LoadFile) -> String {
    let mut engines: IndexMap<String, Vec<&LevelResult>> = IndexMap::new();
    for l in file.load.levels.values() {
        engines.entry(l.engine.clone()).or_default().push(l);
    }
    let mut svg = Svg::default();
    panel(
        &mut svg,
        0.0,
        "TTFT (p50 solid, p99 dashed)",
        |l| l.summary.ttft_ms,
        &engines,
    );
    panel(
        &mut svg,
        W,
        "ITL (p50 solid, p99 dashed)",
        |l| l.summary.itl_ms,
        &engines,
    );
    for (k, e) in engines.keys().enumerate() {
        let x = 20.0 + k as f64 * 140.0;
        svg.line(
            x,
            H + 14.0,
            x + 24.0,
            H + 14.0,
            COLOURS[k % COLOURS.len()],
            2.0,
        );
        svg.text(x + 30.0, H + 18.0, e, 11.0, Anchor::Start, "");
    }
    let comparison = &file.load.http_comparison;
    if comparison.is_empty() {
        return svg.finish(2.0 * W, H + 30.0);
    }
    let line = format!(
        "HTTP parts from in-process ({:.0} % CI leaves 0): {}",
        crate::compare_http::CONFIDENCE * 100.0,
        super::load_http::parting_text(comparison)
    );
    svg.text(20.0, H + 40.0, &line, 10.0, Anchor::Start, "");
    svg.finish(2.0 * W, H + 50.0)
}
