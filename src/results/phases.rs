//! The `phases` object of a run and of a prompt summary: where each generated token's time went.
//! In-process engines report the phases they marked on the recorder (decode, sample, detok, own);
//! HTTP engines split the client's per-token time into the server's own generation time and the
//! rest (server overhead outside its timings plus transport and client parsing).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::measure::{Phase, PhaseTimes};

/// Where the phase figures come from: marks on the recorder.
pub const SOURCE_MARKS: &str = "recorder marks";
/// Where the phase figures come from: the server's `timings` against the client's stamps.
pub const SOURCE_SERVER: &str = "server timings vs client stamps";

/// One phase's time over the decode window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct PhaseStat {
    /// Time in the phase over the window (ms).
    pub sum_ms: f64,
    /// Time in the phase per token after the first (ms).
    pub per_token_ms: f64,
    /// Share of the measured per-token time (%).
    pub share_pct: f64,
}

/// The phase breakdown of one run, or pooled over a prompt's runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PhasesRecord {
    /// [`SOURCE_MARKS`] or [`SOURCE_SERVER`].
    pub source: String,
    /// Tokens after the first delivery: the per-token divisor.
    pub tokens: u64,
    /// The measured decode window: last delivery − first delivery (ms); per token it is the ITL
    /// mean.
    pub measured_ms: f64,
    /// Measured time per token (ms).
    pub measured_per_token_ms: f64,
    /// Each phase over the window, in report order.
    pub phases: IndexMap<String, PhaseStat>,
    /// Sum of the phases over the measured window (%): 100 when every microsecond is accounted.
    pub accounted_pct: f64,
    /// Time in prompt evaluation (ms), when marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_ms: Option<f64>,
    /// Decode time over the whole request (ms), to set against llama.cpp's `t_eval_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_total_ms: Option<f64>,
    /// Sampling time over the whole request (ms), one sample per generated token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_total_ms: Option<f64>,
    /// llama.cpp's own one-token decode time (`t_eval_ms`) for the cross-check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_eval_ms: Option<f64>,
}

impl PhasesRecord {
    fn build(source: &str, tokens: u64, measured_ms: f64, sums: &[(&str, f64)]) -> Self {
        let per = |x: f64| if tokens > 0 { x / tokens as f64 } else { 0.0 };
        let share = |x: f64| {
            if measured_ms > 0.0 {
                100.0 * x / measured_ms
            } else {
                0.0
            }
        };
        let phases: IndexMap<String, PhaseStat> = sums
            .iter()
            .map(|&(name, sum)| {
                let sum = sum.max(0.0);
                (
                    name.to_string(),
                    PhaseStat {
                        sum_ms: sum,
                        per_token_ms: per(sum),
                        share_pct: share(sum),
                    },
                )
            })
            .collect();
        let total: f64 = phases.values().map(|p| p.sum_ms).sum();
        PhasesRecord {
            source: source.into(),
            tokens,
            measured_ms,
            measured_per_token_ms: per(measured_ms),
            accounted_pct: share(total),
            phases,
            ..PhasesRecord::default()
        }
    }

    /// A run's breakdown from its recorder marks; `engine_eval_ms` is llama.cpp's `t_eval_ms`
    /// where the engine reports it. Prompt time inside the window (none on llama.cpp) is left out
    /// of the per-token phases.
    pub fn from_marks(p: &PhaseTimes, engine_eval_ms: Option<f64>) -> Self {
        let sums: Vec<(&str, f64)> = Phase::ALL
            .iter()
            .filter(|&&ph| ph != Phase::Prompt)
            .map(|&ph| (ph.name(), p.window(ph)))
            .collect();
        let mut r = Self::build(SOURCE_MARKS, p.window_tokens, p.window_len_ms, &sums);
        r.prompt_ms = Some(p.total(Phase::Prompt));
        r.decode_total_ms = Some(p.total(Phase::Decode));
        r.sample_total_ms = Some(p.total(Phase::Sample));
        r.engine_eval_ms = engine_eval_ms;
        r
    }

    /// An HTTP run's breakdown: the server's generation time per token (`predicted_ms` over
    /// `predicted_n`) times the window's tokens is the server's compute; the rest of the window
    /// is server overhead outside its timings, transport and client parsing.
    pub fn from_server(
        predicted_ms: f64,
        predicted_n: u64,
        window_tokens: u64,
        window_ms: f64,
    ) -> Option<Self> {
        if predicted_n == 0 || window_tokens == 0 {
            return None;
        }
        let server = (predicted_ms / predicted_n as f64 * window_tokens as f64).min(window_ms);
        Some(Self::build(
            SOURCE_SERVER,
            window_tokens,
            window_ms,
            &[("server", server), ("outside", window_ms - server)],
        ))
    }

    /// Pools runs: sums of each phase and of the windows over all runs, then the same shares.
    pub fn pooled(runs: &[&PhasesRecord]) -> Option<Self> {
        let first = runs.first()?;
        let tokens: u64 = runs.iter().map(|r| r.tokens).sum();
        let measured: f64 = runs.iter().map(|r| r.measured_ms).sum();
        let sums: Vec<(&str, f64)> = first
            .phases
            .keys()
            .map(|k| {
                let s = runs
                    .iter()
                    .filter_map(|r| r.phases.get(k))
                    .map(|p| p.sum_ms)
                    .sum();
                (k.as_str(), s)
            })
            .collect();
        let mut out = Self::build(&first.source, tokens, measured, &sums);
        let sum_opt = |f: fn(&PhasesRecord) -> Option<f64>| -> Option<f64> {
            runs.iter().map(|r| f(r)).sum::<Option<f64>>()
        };
        out.prompt_ms = sum_opt(|r| r.prompt_ms);
        out.decode_total_ms = sum_opt(|r| r.decode_total_ms);
        out.sample_total_ms = sum_opt(|r| r.sample_total_ms);
        out.engine_eval_ms = sum_opt(|r| r.engine_eval_ms);
        Some(out)
    }

    /// Our decode total over llama.cpp's `t_eval_ms` (1.0 = agreement), when both exist.
    pub fn decode_agreement(&self) -> Option<f64> {
        match (self.decode_total_ms, self.engine_eval_ms) {
            (Some(ours), Some(theirs)) if theirs > 0.0 => Some(ours / theirs),
            _ => None,
        }
    }

    /// One report line: `decode 4.10 ms/tok 93.1% · sample …`.
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .phases
            .iter()
            .map(|(k, p)| format!("{k} {:.3} ms/tok {:.1}%", p.per_token_ms, p.share_pct))
            .collect();
        let mut s = format!(
            "{} (of {:.3} ms/tok measured, {:.1}% accounted)",
            parts.join(" · "),
            self.measured_per_token_ms,
            self.accounted_pct
        );
        if let (Some(a), Some(ours), Some(theirs)) = (
            self.decode_agreement(),
            self.decode_total_ms,
            self.engine_eval_ms,
        ) {
            s.push_str(&format!(
                "; decode {ours:.2} ms vs llama.cpp t_eval {theirs:.2} ms ({:+.2}%)",
                (a - 1.0) * 100.0
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn marks_become_per_token_shares_and_pool() {
        let d = Duration::from_millis;
        let marks = [
            (Phase::Prompt, d(0)),
            (Phase::Own, d(10)),
            (Phase::Decode, d(11)),
            (Phase::Sample, d(19)),
            (Phase::Own, d(21)),
        ];
        let t = PhaseTimes::from_marks(&marks, d(22), (d(10), d(21)), 1);
        let r = PhasesRecord::from_marks(&t, Some(8.0));
        assert_eq!(r.tokens, 1);
        assert!((r.accounted_pct - 100.0).abs() < 1e-9);
        assert!((r.phases["decode"].per_token_ms - 8.0).abs() < 1e-9);
        assert_eq!(r.decode_agreement(), Some(1.0));
        let pooled = PhasesRecord::pooled(&[&r, &r]).unwrap();
        assert_eq!(pooled.tokens, 2);
        assert!((pooled.phases["decode"].sum_ms - 16.0).abs() < 1e-9);
        assert!((pooled.phases["decode"].share_pct - r.phases["decode"].share_pct).abs() < 1e-9);
        assert!(r.line().contains("decode 8.000 ms/tok"));
    }

    #[test]
    fn server_time_splits_the_client_window() {
        let r = PhasesRecord::from_server(40.0, 10, 9, 45.0).unwrap();
        assert!((r.phases["server"].sum_ms - 36.0).abs() < 1e-9);
        assert!((r.phases["outside"].sum_ms - 9.0).abs() < 1e-9);
        assert!(PhasesRecord::from_server(40.0, 0, 9, 45.0).is_none());
    }
}
