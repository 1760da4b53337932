//! Summary statistics over the measured runs: the seed's seven figures, with documented methods.

use serde::{Deserialize, Serialize};

/// Mean, spread and percentiles of one metric over a set of samples.
///
/// - `mean`: arithmetic mean.
/// - `std`: sample standard deviation (divisor `n − 1`, numpy's `std(ddof=1)`); `0` for one sample.
/// - `min`, `max`: extremes.
/// - `p50`, `p95`, `p99`: linear interpolation between closest ranks (numpy's default `linear`
///   method): for sorted samples `x_0 … x_{n−1}` and fraction `q`, the position is `h = (n − 1)·q`
///   and the value `x_⌊h⌋ + (h − ⌊h⌋)·(x_⌊h⌋+1 − x_⌊h⌋)`. The original Python benchmark used nearest
///   ranks (`x_{⌊n·q⌋}`), which makes p95 = p99 = max with 20 runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Arithmetic mean.
    #[serde(with = "crate::measure::json_float")]
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single sample.
    #[serde(with = "crate::measure::json_float")]
    pub std: f64,
    /// Smallest sample.
    #[serde(with = "crate::measure::json_float")]
    pub min: f64,
    /// Largest sample.
    #[serde(with = "crate::measure::json_float")]
    pub max: f64,
    /// Median (linear interpolation).
    #[serde(with = "crate::measure::json_float")]
    pub p50: f64,
    /// 95th percentile (linear interpolation).
    #[serde(with = "crate::measure::json_float")]
    pub p95: f64,
    /// 99th percentile (linear interpolation).
    #[serde(with = "crate::measure::json_float")]
    pub p99: f64,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none. Non-finite samples are ignored.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Self {
            mean,
            std,
            min: sorted[0],
            max: sorted[n - 1],
            p50: percentile_sorted(&sorted, 0.50),
            p95: percentile_sorted(&sorted, 0.95),
            p99: percentile_sorted(&sorted, 0.99),
        })
    }

    /// Summarises integer samples (token counts).
    pub fn of_counts(samples: &[u64]) -> Option<Self> {
        Self::of(&samples.iter().map(|&x| x as f64).collect::<Vec<_>>())
    }
}

/// The `q` quantile (0 ≤ q ≤ 1) of already sorted, non-empty samples, by linear interpolation.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn hand_computed_ten_samples() {
        // numpy: np.percentile([1..10], [50, 95, 99]) = 5.5, 9.55, 9.91; std(ddof=1) = 3.0276503540974917
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Summary::of(&xs).unwrap();
        assert!(close(s.mean, 5.5));
        assert!(close(s.std, 3.0276503540974917));
        assert!(close(s.min, 1.0));
        assert!(close(s.max, 10.0));
        assert!(close(s.p50, 5.5));
        assert!(close(s.p95, 9.55));
        assert!(close(s.p99, 9.91));
    }

    #[test]
    fn unsorted_input_and_uneven_spacing() {
        // sorted: 1, 2, 4, 8, 100; h(0.95) = 3.8 -> 8 + 0.8 * 92 = 81.6; h(0.99) = 3.96 -> 96.32
        let s = Summary::of(&[8.0, 1.0, 100.0, 2.0, 4.0]).unwrap();
        assert!(close(s.p50, 4.0));
        assert!(close(s.p95, 81.6));
        assert!(close(s.p99, 96.32));
        assert!(close(s.mean, 23.0));
        // variance = (22² + 21² + 19² + 15² + 77²) / 4 = 7440 / 4 = 1860
        assert!(close(s.std, 1860f64.sqrt()));
    }

    #[test]
    fn one_sample_and_none() {
        let s = Summary::of(&[7.0]).unwrap();
        assert_eq!((s.mean, s.std, s.p50, s.p99), (7.0, 0.0, 7.0, 7.0));
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[f64::NAN]), None);
    }

    #[test]
    fn counts() {
        let s = Summary::of_counts(&[100, 100, 100]).unwrap();
        assert_eq!((s.mean, s.std, s.min, s.max), (100.0, 0.0, 100.0, 100.0));
    }
}
