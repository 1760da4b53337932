//! A panel's frame: title, y axis (linear, or logarithmic for a long tail), grid and label.

use super::svg::{tick_label, ticks, Anchor, Svg};
use super::{LEFT, PLOT_H, RIGHT, W};

/// A panel's plot area: x from LEFT to W − RIGHT, y from `top` to `top + PLOT_H`, values from
/// 0 (linear) or `log_lo` (logarithmic) to `ymax`.
pub(super) struct Area {
    /// Top of the plot area, px.
    pub(super) top: f64,
    /// Value at the top.
    ymax: f64,
    /// Value at the bottom of a logarithmic axis; `None` for a linear one from 0.
    log_lo: Option<f64>,
}

impl Area {
    /// The y pixel of value `v`.
    pub(super) fn y(&self, v: f64) -> f64 {
        let frac = match self.log_lo {
            Some(lo) => (v.max(lo).log10() - lo.log10()) / (self.ymax.log10() - lo.log10()),
            None => v / self.ymax,
        };
        self.top + PLOT_H - frac.clamp(0.0, 1.05) * PLOT_H
    }
    /// The y pixel of the axis line.
    pub(super) fn bottom(&self) -> f64 {
        self.top + PLOT_H
    }
    /// Width of the plot area, px.
    pub(super) fn width() -> f64 {
        W - LEFT - RIGHT
    }
}

/// 1-2-5 ticks from a power of ten at or below `lo` to one at or above `hi`.
pub(super) fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, f64, f64) {
    let mut decade = 10f64.powf(lo.log10().floor());
    let mut v = Vec::new();
    let first = [1.0, 2.0, 5.0]
        .iter()
        .map(|m| m * decade)
        .filter(|t| *t <= lo)
        .fold(decade, f64::max);
    loop {
        for m in [1.0, 2.0, 5.0] {
            let t = m * decade;
            if t >= first {
                v.push(t);
            }
            if t >= hi {
                let top = t;
                return (v, first, top);
            }
        }
        decade *= 10.0;
    }
}

/// Title, y grid and y label of a panel; returns its area. Values spanning more than a factor of
/// 20 get a logarithmic axis when `log_ok`, so that a slow tail does not flatten the rest.
pub(super) fn frame(
    svg: &mut Svg,
    top: f64,
    title: &str,
    y_label: &str,
    lo: f64,
    hi: f64,
    log_ok: bool,
) -> Area {
    let hi = if hi > 0.0 { hi } else { 1.0 };
    let log = log_ok && lo > 0.0 && hi / lo > 20.0;
    let (tv, area) = if log {
        let (tv, first, ymax) = log_ticks(lo, hi);
        let area = Area {
            top: top + 30.0,
            ymax,
            log_lo: Some(first),
        };
        (tv, area)
    } else {
        let (tv, ymax) = ticks(0.0, hi, 5);
        let area = Area {
            top: top + 30.0,
            ymax,
            log_lo: None,
        };
        (tv, area)
    };
    let title = if log {
        format!("{title} (log scale)")
    } else {
        title.to_string()
    };
    svg.text(
        LEFT,
        top + 16.0,
        &title,
        15.0,
        Anchor::Start,
        "font-weight=\"bold\"",
    );
    for t in tv {
        let y = area.y(t);
        svg.line(LEFT, y, W - RIGHT, y, "#e0e0e0", 1.0);
        svg.text(
            LEFT - 6.0,
            y + 4.0,
            &tick_label(t),
            11.0,
            Anchor::End,
            "fill=\"#444\"",
        );
    }
    svg.line(LEFT, area.bottom(), W - RIGHT, area.bottom(), "#444", 1.0);
    let (cx, cy) = (LEFT - 52.0, area.top + PLOT_H / 2.0);
    svg.text(
        cx,
        cy,
        y_label,
        12.0,
        Anchor::Middle,
        &format!("transform=\"rotate(-90 {cx} {cy})\""),
    );
    area
}
