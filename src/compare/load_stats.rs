//! The intervals of the load comparison: a seeded bootstrap over requests for percentiles, and
//! Welch's test (`measure::significance`) for means; see [`super::load`].

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::measure::load::RequestSample;
use crate::measure::significance::{welch, Moments};
use crate::measure::stats::percentile_sorted;
use crate::results::load::LevelResult;

/// Resamples of the bootstrap.
pub const RESAMPLES: usize = 2000;
/// Seed of the bootstrap, so that the same files always print the same intervals.
const BOOTSTRAP_SEED: u64 = 0x6c6f_6164; // "load"

/// A confidence interval on a difference and on a ratio.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Interval {
    /// `welch` or `bootstrap`.
    pub method: &'static str,
    /// Bounds on the difference.
    pub difference_low: f64,
    /// Upper bound on the difference.
    pub difference_high: f64,
    /// Bounds on the ratio.
    pub ratio_low: f64,
    /// Upper bound on the ratio.
    pub ratio_high: f64,
    /// Welch's two-sided p-value (the bootstrap gives none).
    pub p_value: Option<f64>,
}

impl Interval {
    pub fn within_noise(&self) -> bool {
        self.difference_low <= 0.0 && 0.0 <= self.difference_high
    }
}

/// Per-request values of completed requests.
pub fn per_request(l: &LevelResult, f: fn(&RequestSample) -> Option<f64>) -> Vec<Vec<f64>> {
    l.requests
        .iter()
        .filter(|r| r.error.is_none())
        .filter_map(|r| f(r).map(|v| vec![v]))
        .collect()
}

pub fn itl_groups(l: &LevelResult) -> Vec<Vec<f64>> {
    l.requests
        .iter()
        .filter(|r| r.error.is_none() && !r.itl_ms.is_empty())
        .map(|r| r.itl_ms.clone())
        .collect()
}

/// The `q` quantile of the pooled values of `groups`.
fn pooled_quantile(groups: &[&Vec<f64>], q: f64, buf: &mut Vec<f64>) -> Option<f64> {
    buf.clear();
    for g in groups {
        buf.extend(g.iter().copied().filter(|x| x.is_finite()));
    }
    if buf.is_empty() {
        return None;
    }
    buf.sort_by(f64::total_cmp);
    Some(percentile_sorted(buf, q))
}

/// Bootstrap intervals for the `q` quantile of B against A, resampling whole groups (requests).
pub fn bootstrap(a: &[Vec<f64>], b: &[Vec<f64>], q: f64, confidence: f64) -> Option<Interval> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(BOOTSTRAP_SEED);
    let mut buf = Vec::new();
    let draw = |side: &[Vec<f64>], rng: &mut StdRng, buf: &mut Vec<f64>| {
        let pick: Vec<&Vec<f64>> = (0..side.len())
            .map(|_| &side[rng.random_range(0..side.len())])
            .collect();
        pooled_quantile(&pick, q, buf)
    };
    let (mut diffs, mut ratios) = (Vec::with_capacity(RESAMPLES), Vec::new());
    for _ in 0..RESAMPLES {
        let (Some(x), Some(y)) = (draw(a, &mut rng, &mut buf), draw(b, &mut rng, &mut buf)) else {
            continue;
        };
        diffs.push(y - x);
        if x != 0.0 {
            ratios.push(y / x);
        }
    }
    if diffs.is_empty() || ratios.is_empty() {
        return None;
    }
    diffs.sort_by(f64::total_cmp);
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some(Interval {
        method: "bootstrap",
        difference_low: percentile_sorted(&diffs, tail),
        difference_high: percentile_sorted(&diffs, 1.0 - tail),
        ratio_low: percentile_sorted(&ratios, tail),
        ratio_high: percentile_sorted(&ratios, 1.0 - tail),
        p_value: None,
    })
}

pub fn welch_interval(a: &[Vec<f64>], b: &[Vec<f64>], confidence: f64) -> Option<Interval> {
    let flat = |s: &[Vec<f64>]| s.iter().flatten().copied().collect::<Vec<_>>();
    let w = welch(Moments::of(&flat(a))?, Moments::of(&flat(b))?, confidence)?;
    Some(Interval {
        method: "welch",
        difference_low: w.difference_ci_low,
        difference_high: w.difference_ci_high,
        ratio_low: w.ratio_ci_low,
        ratio_high: w.ratio_ci_high,
        p_value: Some(w.p_value),
    })
}
