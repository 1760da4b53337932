//! Is a difference real? Welch's t-test on two sets of per-run samples, with a confidence interval
//! on the difference of means and on their ratio.
//!
//! - Difference: `d = mean_b − mean_a`, standard error `se = √(s_a²/n_a + s_b²/n_b)`, degrees of
//!   freedom by Welch–Satterthwaite, interval `d ± t(1 − α/2, df)·se`, two-sided p-value from
//!   Student's t distribution.
//! - Ratio `mean_b / mean_a`: the interval is computed on the log scale by the delta method,
//!   `exp(ln(mean_b/mean_a) ± t·√(s_a²/(n_a·mean_a²) + s_b²/(n_b·mean_b²)))`.
//!
//! A difference is "within noise" when the interval on the difference contains zero.
//!
//! The t distribution (its survival function and quantile) comes from the `statrs` crate, built
//! without its default features (no `nalgebra`, no `rand`: it adds `statrs` and `approx` to the
//! build, about 15 s of a cold release build) instead of the Lanczos log-gamma, continued-fraction
//! incomplete beta and bisection quantile this file used to carry: a well-kept crate with its own
//! tests beats 80 lines of numerics kept here. The hand-computed cases below (tables of `t`,
//! Welch on five-and-five samples) stay as the check that the crate is wired right.
//!
//! In results files a statistic that is not a finite number is written as the string `"Infinity"`,
//! `"-Infinity"` or `"NaN"` (`measure::json_float`); the reader also takes `null` there, as NaN.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean, sample standard deviation and count of one sample set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1).
    pub std: f64,
    /// Number of samples.
    pub n: usize,
}

impl Moments {
    /// Moments of `samples` (non-finite values ignored); `None` when empty.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let s = super::Summary::of(samples)?;
        Some(Self {
            mean: s.mean,
            std: s.std,
            n: samples.iter().filter(|x| x.is_finite()).count(),
        })
    }
}

/// The comparison of sample set B against sample set A.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    /// `mean_b − mean_a`.
    #[serde(with = "crate::measure::json_float")]
    pub difference: f64,
    /// Lower bound of the confidence interval on the difference.
    #[serde(with = "crate::measure::json_float")]
    pub difference_ci_low: f64,
    /// Upper bound of the confidence interval on the difference.
    #[serde(with = "crate::measure::json_float")]
    pub difference_ci_high: f64,
    /// `mean_b / mean_a`.
    #[serde(with = "crate::measure::json_float")]
    pub ratio: f64,
    /// Lower bound of the confidence interval on the ratio.
    #[serde(with = "crate::measure::json_float")]
    pub ratio_ci_low: f64,
    /// Upper bound of the confidence interval on the ratio.
    #[serde(with = "crate::measure::json_float")]
    pub ratio_ci_high: f64,
    /// Welch's t statistic; ±Infinity (written `"Infinity"` / `"-Infinity"`, see
    /// `measure::json_float`) when neither side has any spread and the means differ: the
    /// difference is then certain (`p_value` 0, the intervals collapse onto the difference).
    #[serde(with = "crate::measure::json_float")]
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    #[serde(with = "crate::measure::json_float")]
    pub df: f64,
    /// Two-sided p-value.
    #[serde(with = "crate::measure::json_float")]
    pub p_value: f64,
    /// Confidence level of the intervals (e.g. 0.95).
    #[serde(with = "crate::measure::json_float")]
    pub confidence: f64,
    /// Whether the interval on the difference contains zero.
    pub within_noise: bool,
}

/// Welch's test of B against A at `confidence` (e.g. 0.95). `None` when either side has fewer
/// than two samples or a zero mean.
pub fn welch(a: Moments, b: Moments, confidence: f64) -> Option<Welch> {
    if a.n < 2 || b.n < 2 || a.mean == 0.0 || b.mean == 0.0 {
        return None;
    }
    let (va, vb) = (a.std.powi(2) / a.n as f64, b.std.powi(2) / b.n as f64);
    let se = (va + vb).sqrt();
    let difference = b.mean - a.mean;
    let ratio = b.mean / a.mean;
    let alpha = 1.0 - confidence;
    if se == 0.0 {
        let same = difference == 0.0;
        return Some(Welch {
            difference,
            difference_ci_low: difference,
            difference_ci_high: difference,
            ratio,
            ratio_ci_low: ratio,
            ratio_ci_high: ratio,
            t: if same {
                0.0
            } else {
                f64::INFINITY.copysign(difference)
            },
            df: (a.n + b.n - 2) as f64,
            p_value: if same { 1.0 } else { 0.0 },
            confidence,
            within_noise: same,
        });
    }
    let df = (va + vb).powi(2) / (va.powi(2) / (a.n - 1) as f64 + vb.powi(2) / (b.n - 1) as f64);
    let t = difference / se;
    let q = t_quantile(1.0 - alpha / 2.0, df);
    let log_se = (va / a.mean.powi(2) + vb / b.mean.powi(2)).sqrt();
    let (lo, hi) = (difference - q * se, difference + q * se);
    Some(Welch {
        difference,
        difference_ci_low: lo,
        difference_ci_high: hi,
        ratio,
        ratio_ci_low: ratio * (-q * log_se).exp(),
        ratio_ci_high: ratio * (q * log_se).exp(),
        t,
        df,
        p_value: two_sided_p(t, df),
        confidence,
        within_noise: lo <= 0.0 && 0.0 <= hi,
    })
}

/// Student's t with `df` degrees of freedom; `None` when `df` is not a positive number.
fn students_t(df: f64) -> Option<StudentsT> {
    StudentsT::new(0.0, 1.0, df).ok()
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom (NaN when `df` is not positive).
pub fn two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    match students_t(df) {
        // The survival function keeps its precision far in the tail, where 1 − cdf would not.
        Some(dist) => (2.0 * dist.sf(t.abs())).clamp(0.0, 1.0),
        None => f64::NAN,
    }
}

/// The `p` quantile (0.5 < p < 1) of Student's t with `df` degrees of freedom (NaN when `df` is
/// not positive).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    students_t(df).map_or(f64::NAN, |dist| dist.inverse_cdf(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn t_distribution_matches_tables() {
        // scipy.stats.t.ppf(0.975, df): 12.706204736 (1), 2.228138852 (10), 2.042272456 (30)
        assert!(close(t_quantile(0.975, 1.0), 12.706204736, 1e-6));
        assert!(close(t_quantile(0.975, 10.0), 2.228138852, 1e-8));
        assert!(close(t_quantile(0.975, 30.0), 2.042272456, 1e-8));
        // 2 * t.sf(2.0, 5) = 0.1019394788 (numerical integration of the t density)
        assert!(close(two_sided_p(2.0, 5.0), 0.1019394788, 1e-9));
    }

    #[test]
    fn welch_on_a_hand_computed_case() {
        // A = [10, 11, 12, 13, 14]: mean 12, s² 2.5; B = [12, 14, 16, 18, 20]: mean 16, s² 10.
        // se = √(0.5 + 2) = 1.5811388; t = 4 / se = 2.5298221;
        // df = 2.5² / (0.5²/4 + 2²/4) = 6.25 / 1.0625 = 5.8823529.
        // Two-sided p = 0.0454646 and t(0.975, 5.88235) = 2.4588237, by numerical integration of the
        // t density.
        let a = Moments::of(&[10.0, 11.0, 12.0, 13.0, 14.0]).unwrap();
        let b = Moments::of(&[12.0, 14.0, 16.0, 18.0, 20.0]).unwrap();
        let w = welch(a, b, 0.95).unwrap();
        assert!(close(w.t, 2.5298221, 1e-6));
        assert!(close(w.df, 5.8823529, 1e-6));
        assert!(close(w.p_value, 0.0454646, 1e-6), "{}", w.p_value);
        assert!(close(
            w.difference_ci_low,
            4.0 - 2.4588237 * 1.5811388,
            1e-6
        ));
        assert!(close(
            w.difference_ci_high,
            4.0 + 2.4588237 * 1.5811388,
            1e-6
        ));
        assert!(!w.within_noise);
        assert!(close(w.ratio, 16.0 / 12.0, 1e-12));
        assert!(w.ratio_ci_low < w.ratio && w.ratio < w.ratio_ci_high);
    }

    #[test]
    fn overlapping_samples_are_within_noise_and_tiny_samples_untested() {
        let a = Moments::of(&[10.0, 12.0, 11.0, 9.0]).unwrap();
        let b = Moments::of(&[10.5, 11.5, 9.5, 10.0]).unwrap();
        assert!(welch(a, b, 0.95).unwrap().within_noise);
        let one = Moments::of(&[10.0]).unwrap();
        assert_eq!(welch(one, b, 0.95), None);
        let c = Moments::of(&[5.0, 5.0]).unwrap();
        let w = welch(c, c, 0.95).unwrap();
        assert!(w.within_noise && w.p_value == 1.0);
    }
}
