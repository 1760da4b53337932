//! The `http_comparison` section of a results file: the same llama.cpp build measured in-process and
//! through llama-server (`--compare-http`), with the serving layer's cost and where it goes.
//!
//! Both sides keep their full per-run results under `results` (`llamacpp` in-process,
//! `llamacpp-http` over HTTP); this section holds the figures that compare them. Differences are
//! always HTTP minus in-process, ratios HTTP over in-process.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::measure::significance::Welch;

/// In-process against HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpComparison {
    /// Results key of the in-process side.
    pub inprocess_key: String,
    /// Results key of the HTTP side.
    pub http_key: String,
    /// How the two sides were made comparable.
    pub method: String,
    /// The server that was started.
    pub server: ComparedServer,
    /// Confidence level of the intervals.
    #[serde(with = "crate::measure::json_float")]
    pub confidence: f64,
    /// How the two sides were ordered (files without it interleaved in-process first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing: Option<PairingRecord>,
    /// Per prompt, in the order run.
    pub prompts: IndexMap<String, PromptComparison>,
}

/// How the two sides of the comparison were ordered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairingRecord {
    /// `interleaved` (run by run, ABBA) or `blocks` (every in-process run, unload, every HTTP run).
    pub mode: String,
    /// What `--pairing` asked for (`auto`, `interleaved`, `blocks`).
    pub requested: String,
    /// Why this mode (memory needed against memory available, or the user's choice).
    pub reason: String,
}

/// Whether the order within a round moves the difference: the difference HTTP − in-process of
/// the rounds where HTTP ran first against the rounds where in-process ran first (Welch). Within
/// noise means the order did not matter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEffect {
    /// Rounds where the in-process run came first.
    pub inprocess_first_rounds: u32,
    /// Rounds where the HTTP run came first.
    pub http_first_rounds: u32,
    /// On the TTFT difference (ms); absent with fewer than two rounds of each order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<Welch>,
    /// On the ITL-mean difference (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_mean_ms: Option<Welch>,
}

/// The llama-server of the comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComparedServer {
    /// Which server (`llama-server`, `vllm serve`); files without it are llama-server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The binary.
    pub binary: String,
    /// The build it reports (`--version`); the in-process build is in `tool.llama_cpp_build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<u32>,
    /// Base URL it listened on.
    pub url: String,
    /// The endpoint streamed (`/v1/completions`).
    pub endpoint: String,
    /// Its command-line flags.
    pub args: Vec<String>,
    /// Start to `/health` answering 200 (model load included), ms.
    #[serde(with = "crate::measure::json_float")]
    pub ready_ms: f64,
}

/// Mean, sample standard deviation and number of runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean.
    #[serde(with = "crate::measure::json_float")]
    pub mean: f64,
    /// Sample standard deviation (n − 1).
    #[serde(with = "crate::measure::json_float")]
    pub std: f64,
    /// Runs.
    pub n: usize,
}

/// One metric on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// In-process runs.
    pub inprocess: Spread,
    /// HTTP runs.
    pub http: Spread,
    /// Welch's test of HTTP against in-process (absent with fewer than two runs a side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welch: Option<Welch>,
}

/// A time seen three ways: in-process, by the server, by the HTTP client (means, ms).
///
/// `http_ms − inprocess_ms = server_minus_inprocess_ms + client_overhead_ms`: what the server's own
/// computation costs beyond the in-process engine, plus what the client sees on top of what the
/// server says it spent (HTTP, JSON, tokenization and scheduling in the server, SSE, the loopback).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// In-process mean.
    #[serde(with = "crate::measure::json_float")]
    pub inprocess_ms: f64,
    /// What the server reported (mean).
    #[serde(with = "crate::measure::json_float")]
    pub server_ms: f64,
    /// What the HTTP client measured (mean).
    #[serde(with = "crate::measure::json_float")]
    pub http_ms: f64,
    /// `server_ms − inprocess_ms`.
    #[serde(with = "crate::measure::json_float")]
    pub server_minus_inprocess_ms: f64,
    /// `http_ms − server_ms`.
    #[serde(with = "crate::measure::json_float")]
    pub client_overhead_ms: f64,
    /// The in-process engine's own counter for the same span (llama.cpp's prompt evaluation time;
    /// per token its one-token decode time), beside our stamps, as the server's own timing is
    /// beside the client's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inprocess_engine_ms: Option<f64>,
}

/// The HTTP side taken apart with the server's own timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpSplit {
    /// Time to first token: in-process TTFT, the server's `timings.prompt_ms` (prompt evaluation
    /// up to the first sampled token), the client's TTFT.
    pub ttft: Split,
    /// Time per token after the first: in-process ITL mean, the server's
    /// `predicted_ms / (predicted_n − 1)`, the client's ITL mean.
    pub per_token: Split,
    /// Request start to response headers (client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_ms: Option<Spread>,
    /// Request start to the first body byte (client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<Spread>,
    /// Last token to the end of the stream (the final chunk, usage and `[DONE]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_tail_ms: Option<Spread>,
    /// The server's `timings.prompt_ms` over the runs.
    pub server_prompt_ms: Spread,
    /// The server's `timings.predicted_ms` over the runs.
    pub server_predicted_ms: Spread,
}

/// Where the first differing generated text parts from the in-process text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextDifference {
    /// Which side and run (`http run 3`, `inprocess run 2`).
    pub run: String,
    /// Character offset of the first difference.
    pub at_char: usize,
    /// The in-process text from a little before that offset.
    pub inprocess: String,
    /// The other text from the same place.
    pub other: String,
}

/// One prompt on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptComparison {
    /// Whether every successful run on both sides generated the same text.
    pub same_text: bool,
    /// Successful HTTP runs whose text equals the first in-process run's.
    pub http_runs_matching: u32,
    /// Successful in-process runs whose text equals the first in-process run's.
    pub inprocess_runs_matching: u32,
    /// Successful runs compared (in-process, HTTP).
    pub runs_compared: [u32; 2],
    /// The first difference, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_difference: Option<TextDifference>,
    /// Prompt tokens in-process (our tokenizer) and as the server evaluated them.
    pub prompt_tokens: [Option<u64>; 2],
    /// Per metric: `ttft_ms`, `itl_mean_ms`, `tps`, `e2e_latency_ms`, `total_ms`, `tokens_generated`.
    pub metrics: IndexMap<String, MetricComparison>,
    /// The HTTP side split with the server's timings (absent when it reported none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_split: Option<HttpSplit>,
    /// Whether the order within a round moved the difference (interleaved runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_effect: Option<OrderEffect>,
    /// `--api chat`: the server's rendering of the messages against the in-process prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_prompt: Option<ChatPromptCheck>,
}

/// `--compare-http --api chat`: what the server renders from the same messages (asked before the
/// runs) against the in-process prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatPromptCheck {
    /// What was compared and how the server was asked (`text: llama-server /apply-template`,
    /// `token ids: vllm serve /tokenize`).
    pub compared: String,
    /// Whether the two are equal (byte for byte, or id for id).
    pub equal: bool,
    /// The in-process prompt's size in bytes.
    pub inprocess_bytes: usize,
    /// The server's rendering in bytes (when it returns the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_bytes: Option<usize>,
    /// Prompt tokens in-process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inprocess_prompt_tokens: Option<u64>,
    /// Prompt tokens of the server's rendering, by the server's tokenizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_prompt_tokens: Option<u64>,
}
