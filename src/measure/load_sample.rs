//! The load measurement's serde types: the goodput limits (`--slo`), one request's raw figures and
//! a level's figures (distributions in the stats shape of single-stream results). The recorder
//! and the definitions are in [`super::load`].

use serde::{Deserialize, Serialize};

use super::Summary;

/// Latency limits a request must meet to count toward goodput (`--slo ttft=…,itl=…,e2e=…`, ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// TTFT from the scheduled arrival, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// The request's mean inter-token gap (TPOT), at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<f64>,
    /// E2E from the scheduled arrival, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
}

impl std::str::FromStr for Slo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut slo = Self::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!("'{part}' is not METRIC=MS: write e.g. --slo ttft=500,itl=50,e2e=10000")
            })?;
            let ms: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x > 0.0)
                .ok_or_else(|| format!("'{v}' is not a positive number of milliseconds ({k})"))?;
            match k.trim() {
                "ttft" => slo.ttft_ms = Some(ms),
                "itl" | "tpot" => slo.itl_ms = Some(ms),
                "e2e" | "e2el" => slo.e2e_ms = Some(ms),
                other => {
                    return Err(format!(
                        "unknown metric '{other}': use ttft, itl (or tpot) and e2e, in ms, e.g. --slo ttft=500,itl=50"
                    ))
                }
            }
        }
        if slo == Self::default() {
            return Err("names no metric: write e.g. --slo ttft=500,itl=50,e2e=10000".into());
        }
        Ok(slo)
    }
}

impl Slo {
    /// Whether `r` finished and met every limit.
    pub fn met(&self, r: &RequestSample) -> bool {
        let within = |limit: Option<f64>, value: Option<f64>| match (limit, value) {
            (None, _) => true,
            (Some(l), Some(v)) => v <= l,
            (Some(_), None) => false,
        };
        r.error.is_none()
            && within(self.ttft_ms, r.ttft_ms)
            && within(self.e2e_ms, r.e2e_ms)
            // A single-token request has no gap, so it meets any gap limit.
            && (self.itl_ms.is_none() || r.tpot_ms.is_none_or(|t| t <= self.itl_ms.unwrap_or(f64::MAX)))
    }
}

/// One request's raw figures (ms offsets from the level start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSample {
    /// Arrival order.
    pub index: usize,
    /// Scheduled arrival.
    pub scheduled_ms: f64,
    /// Handed to the engine.
    pub admitted_ms: Option<f64>,
    /// Finished (or failed).
    pub end_ms: Option<f64>,
    /// Admission − scheduled arrival.
    pub queue_wait_ms: Option<f64>,
    /// First token − scheduled arrival.
    pub ttft_ms: Option<f64>,
    /// First token − admission.
    pub ttft_from_admission_ms: Option<f64>,
    /// Mean gap after the first token.
    pub tpot_ms: Option<f64>,
    /// Last token − scheduled arrival.
    pub e2e_ms: Option<f64>,
    /// Prompt tokens evaluated.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Every inter-token gap.
    pub itl_ms: Vec<f64>,
    /// `length` or `eos`; absent for a failed request.
    pub finish: Option<String>,
    /// Why the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Digest of the generated token ids ([`token_digest`]): under greedy decoding (or the same
    /// seed) two runs of the same request generated the same tokens when these are equal. Absent
    /// when the engine does not report token ids, or the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_digest: Option<String>,
    /// The same digest over the first [`PREFIX_TOKENS`] generated tokens only: batched kernels
    /// may sum in another order, so long outputs may part late while their starts agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_prefix_digest: Option<String>,
}

/// Tokens that [`RequestSample::output_prefix_digest`] covers.
pub const PREFIX_TOKENS: usize = 16;

/// `fnv1a64:` and 16 hex digits: 64-bit FNV-1a over the token ids, each as 8 little-endian bytes
/// (so the digest is the same on every machine and in every version).
pub fn token_digest(ids: &[i64]) -> String {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    for id in ids {
        h.write(&id.to_le_bytes());
    }
    format!("fnv1a64:{:016x}", h.finish())
}

/// Goodput of a level against `--slo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// The limits.
    pub slo: Slo,
    /// Requests that met every limit.
    pub requests_met: u64,
    /// Those per second of the level.
    pub request_rate: f64,
    /// Their share of the issued requests.
    pub fraction: f64,
}

/// A level's figures; distributions in the stats shape of single-stream results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    /// Requests issued.
    pub requests: u64,
    /// Requests that finished.
    pub completed: u64,
    /// Requests that failed (or were cut off by Ctrl-C).
    pub failed: u64,
    /// Level start to the last request's end.
    pub duration_ms: f64,
    /// Completed requests per second.
    pub request_throughput: f64,
    /// Generated tokens (completed requests) per second.
    pub output_throughput_tps: f64,
    /// Prompt and generated tokens (completed requests) per second.
    pub total_token_throughput_tps: f64,
    /// Time-weighted requests in flight.
    pub achieved_concurrency: f64,
    /// The open loop's rate.
    pub requested_rate: Option<f64>,
    /// Completion rate over the level (open loop; see the module's definition).
    pub achieved_rate: Option<f64>,
    /// Requests completed more slowly than they arrived.
    pub saturated: bool,
    /// Against `--slo`.
    pub goodput: Option<Goodput>,
    /// TTFT from the scheduled arrival.
    pub ttft_ms: Option<Summary>,
    /// TTFT from admission.
    pub ttft_from_admission_ms: Option<Summary>,
    /// Queue wait.
    pub queue_wait_ms: Option<Summary>,
    /// TPOT per request.
    pub tpot_ms: Option<Summary>,
    /// Every inter-token gap of the level.
    pub itl_ms: Option<Summary>,
    /// E2E.
    pub e2e_ms: Option<Summary>,
    /// Generated tokens per request.
    pub output_tokens: Option<Summary>,
    /// Prompt tokens per request.
    pub prompt_tokens: Option<Summary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_parsing_names_the_fix() {
        let slo: Slo = "ttft=500, itl=50,e2e=1e4".parse().unwrap();
        assert_eq!(
            (slo.ttft_ms, slo.itl_ms, slo.e2e_ms),
            (Some(500.0), Some(50.0), Some(10000.0))
        );
        assert_eq!("tpot=5".parse::<Slo>().unwrap().itl_ms, Some(5.0));
        assert!("latency=5"
            .parse::<Slo>()
            .unwrap_err()
            .contains("unknown metric 'latency'"));
        assert!("ttft=-1".parse::<Slo>().unwrap_err().contains("positive"));
        assert!("ttft".parse::<Slo>().unwrap_err().contains("METRIC=MS"));
        assert!("".parse::<Slo>().unwrap_err().contains("names no metric"));
    }

    #[test]
    fn the_token_digest_is_fnv1a_over_little_endian_ids() {
        // FNV-1a 64 of no bytes is its offset basis.
        assert_eq!(token_digest(&[]), "fnv1a64:cbf29ce484222325");
        assert_eq!(token_digest(&[1, 2, 3]), token_digest(&[1, 2, 3]));
        assert_ne!(token_digest(&[1, 2, 3]), token_digest(&[1, 3, 2]));
        assert_ne!(token_digest(&[1]), token_digest(&[1, 0]));
    }
}
