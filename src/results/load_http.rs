//! What a load level over HTTP records besides the in-process figures: the client's own lag
//! (scheduled against actual send time) and, per request, the server's own timings.

use serde::{Deserialize, Serialize};

use crate::measure::Summary;

/// The HTTP side of one load level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpLevel {
    /// The endpoint streamed (`/v1/completions`, the prompt as token ids).
    pub endpoint: String,
    /// The client's lag: a request's send time minus its scheduled arrival, over the requests
    /// that had a free stream when they arrived (the rest waited in the queue by design).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag_ms: Option<Summary>,
    /// The lag's p99 above which the level is flagged.
    pub send_lag_threshold_ms: f64,
    /// Set when the lag's p99 passed the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_warning: Option<String>,
    /// Per request, in arrival order.
    pub requests: Vec<HttpRequest>,
}

/// One request's HTTP figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Arrival order (as in `requests` of the level).
    pub index: usize,
    /// Send time minus scheduled arrival, when the request had a free stream on arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag_ms: Option<f64>,
    /// Prompt evaluation time as the server measured it (llama-server's `timings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_prompt_ms: Option<f64>,
    /// Generation time as the server measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_predicted_ms: Option<f64>,
    /// Prompt tokens the server evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_prompt_n: Option<u64>,
    /// Tokens the server generated (its `timings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_predicted_n: Option<u64>,
    /// Generated tokens per the server's `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_tokens: Option<u64>,
    /// The stream's own count, when it differed from `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_tokens: Option<u64>,
    /// How tokens per chunk were counted (`timings`, `token_ids`, `logprobs`, `chunks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_source: Option<String>,
}

/// One load level measured in-process and over HTTP with the same arrivals and requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelComparison {
    /// The level (`concurrency=4`).
    pub level: String,
    /// The in-process entry's key in `levels`.
    pub inprocess: String,
    /// The HTTP entry's key in `levels`.
    pub http: String,
    /// Which side ran first.
    pub order: String,
    /// The server's parallel slots (llama-server `--parallel`) or `max_num_seqs` (vLLM).
    pub server_streams: Option<u32>,
    /// Difference HTTP − in-process per metric.
    pub metrics: Vec<MetricDiff>,
}

/// One metric of a level on both sides, with the difference's confidence interval (bootstrap over
/// the level's requests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDiff {
    /// `ttft_p50_ms`, `itl_p99_ms`, `output_tps`, …
    pub metric: String,
    /// In-process value.
    pub inprocess: f64,
    /// HTTP value.
    pub http: f64,
    /// HTTP − in-process.
    pub difference: f64,
    /// The interval's lower bound.
    pub ci_low: f64,
    /// The interval's upper bound.
    pub ci_high: f64,
}
