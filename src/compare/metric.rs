//! The compared metrics: where each one's summary and per-run samples are in a file, under our
//! definitions or, when an original-benchmark file takes part, under the seed's.

use serde::Serialize;

use crate::measure::significance::Moments;
use crate::measure::Summary;
use crate::results::{PromptResult, RunRecord};

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Times: less is better.
    Lower,
    /// Rates: more is better.
    Higher,
    /// Counts: neither.
    Neither,
}

/// A compared metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Time to first token.
    Ttft,
    /// Time to the first answer token (reasoning models only).
    Ttfo,
    /// Decode rate.
    Tps,
    /// Per-run mean inter-token latency.
    Itl,
    /// Every inter-token gap of every run, pooled (percentiles of single tokens; not tested).
    ItlGaps,
    /// Request start to the last token (to the end of the stream under the seed's definitions).
    E2e,
    /// Generated tokens per run.
    Tokens,
}

/// Every metric, in report order.
pub const ALL: [Metric; 7] = [
    Metric::Ttft,
    Metric::Ttfo,
    Metric::Tps,
    Metric::Itl,
    Metric::ItlGaps,
    Metric::E2e,
    Metric::Tokens,
];

/// Where the samples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Per-run values in `runs[*]`.
    Runs,
    /// Mean, std and `successful_runs` only (the original benchmark's files).
    Summary,
}

impl Metric {
    /// Key in the results schema (and in JSON/CSV output).
    pub fn key(self, seed_defs: bool) -> &'static str {
        match (self, seed_defs) {
            (Self::Ttft, _) => "ttft_ms",
            (Self::Ttfo, _) => "ttfo_ms",
            (Self::Tps, false) => "tps",
            (Self::Tps, true) => "seed_tps",
            (Self::Itl, _) => "itl_mean_ms",
            (Self::ItlGaps, _) => "itl_ms",
            (Self::E2e, false) => "e2e_latency_ms",
            (Self::E2e, true) => "total_ms",
            (Self::Tokens, _) => "tokens_generated",
        }
    }

    /// Heading in tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ttft => "TTFT ms",
            Self::Ttfo => "TTFO ms",
            Self::Tps => "TPS tok/s",
            Self::Itl => "ITL ms",
            Self::ItlGaps => "ITL gaps ms",
            Self::E2e => "E2E ms",
            Self::Tokens => "tokens",
        }
    }

    /// Decimals shown.
    pub fn digits(self) -> usize {
        match self {
            Self::Ttft | Self::Ttfo | Self::Tps => 2,
            Self::Itl | Self::ItlGaps => 3,
            Self::E2e | Self::Tokens => 1,
        }
    }

    /// Which way is better.
    pub fn better(self) -> Better {
        match self {
            Self::Tps => Better::Higher,
            Self::Tokens => Better::Neither,
            _ => Better::Lower,
        }
    }

    /// Whether Welch's test applies: pooled gaps within a run are not independent samples.
    pub fn tested(self) -> bool {
        self != Self::ItlGaps
    }

    /// The summary stored for this metric. `seed_defs`: an original-benchmark file takes part, so
    /// TPS is N/(E2E − TTFT) and E2E runs to the end of the stream, as the seed measured them;
    /// `own_seed`: this file is one of the seed's, whose `tps` and `e2e_latency_ms` already are that.
    pub fn summary(self, p: &PromptResult, seed_defs: bool, own_seed: bool) -> Option<Summary> {
        match self.key(seed_defs && !own_seed) {
            "ttft_ms" => p.ttft_ms,
            "ttfo_ms" => p.ttfo_ms,
            "tps" => p.tps,
            "seed_tps" => p.seed_tps,
            "itl_mean_ms" => p.itl_mean_ms,
            "itl_ms" => p.itl_ms,
            "e2e_latency_ms" => p.e2e_latency_ms,
            "total_ms" => p.total_ms,
            _ => p.tokens_generated,
        }
    }

    fn run_value(self, r: &RunRecord, seed_defs: bool) -> Option<f64> {
        match self.key(seed_defs) {
            "ttft_ms" => r.ttft_ms,
            "ttfo_ms" => r.ttfo_ms,
            "tps" => r.tps,
            "seed_tps" => r.seed_tps,
            "itl_mean_ms" => r.itl_mean_ms,
            "e2e_latency_ms" => r.e2e_latency_ms,
            "total_ms" => r.total_ms,
            "tokens_generated" => Some(r.tokens_generated as f64),
            _ => None,
        }
    }

    /// Mean, std and n for the test: from the per-run samples when the file has them, else from
    /// the stored summary and `successful_runs`.
    pub fn moments(
        self,
        p: &PromptResult,
        seed_defs: bool,
        own_seed: bool,
    ) -> Option<(Moments, Source)> {
        let ok: Vec<&RunRecord> = p.runs.iter().filter(|r| r.error.is_none()).collect();
        if !ok.is_empty() && !own_seed {
            let samples: Vec<f64> = ok
                .iter()
                .filter_map(|r| self.run_value(r, seed_defs))
                .collect();
            if let Some(m) = Moments::of(&samples) {
                return Some((m, Source::Runs));
            }
        }
        let s = self.summary(p, seed_defs, own_seed)?;
        Some((
            Moments {
                mean: s.mean,
                std: s.std,
                n: p.successful_runs as usize,
            },
            Source::Summary,
        ))
    }
}
