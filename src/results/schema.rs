//! The results file schema (version 1): the seed's keys plus what they lacked.
//!
//! The original Python benchmark wrote `timestamp`, `scenario`, `config.{warmup_runs,measurement_runs}`
//! and `results.<backend>.{model, prompts.<name>.{ttft_ms,tps,itl_mean_ms,e2e_latency_ms,
//! tokens_generated}.{mean,std,min,max,p50,p95,p99}, successful_runs, total_runs}`. Those keys keep
//! their names and meaning here (with exact token counts and the corrected TPS, see `measure`), so
//! tools that read the old files read these. Everything else is an addition, and every addition is
//! optional on reading, so the old files deserialize into these types too.
//!
//! Units are in the field names: `_ms` milliseconds, `_bytes` bytes, `tps` tokens per second.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::gpu::{GpuDevices, GpuTelemetry};
use super::http_comparison::HttpComparison;
use super::roofline::{Roofline, RunRoofline};
use crate::measure::Summary;

/// The schema version this build writes; readers refuse newer ones.
pub const SCHEMA_VERSION: u32 = 1;

/// One results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultsFile {
    /// Version of this schema; absent in the original benchmark's files (read as 0).
    #[serde(default)]
    pub schema_version: u32,
    /// Local time the run started, ISO 8601 with microseconds (as the original benchmark wrote it).
    pub timestamp: String,
    /// Scenario name given with `--scenario`.
    pub scenario: String,
    /// Plan settings shared by every engine in the file.
    pub config: RunConfig,
    /// One entry per engine (and per combination of a sweep), keyed `llamacpp`, `vllm`, `http`,
    /// or `<engine>@<setting>=<value>,…` for sweep combinations.
    pub results: IndexMap<String, EngineResult>,
    /// False when the run was interrupted or stopped by an error: the file holds what finished.
    #[serde(default = "yes")]
    pub complete: bool,
    /// Why the run is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// Local time the file was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The program that made the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolInfo>,
    /// The machine it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemInfo>,
    /// In-process against HTTP figures, when the run compared the two (`--compare-http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_comparison: Option<HttpComparison>,
}

fn yes() -> bool {
    true
}

/// Plan settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunConfig {
    /// Unmeasured runs per prompt before the measured ones.
    pub warmup_runs: u32,
    /// Measured runs per prompt.
    pub measurement_runs: u32,
    /// Prompt selection as given (`all`, a name, or a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The user's prompt file, when not the built-in set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_file: Option<String>,
    /// `chat` (one user message through a chat template) or `raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_mode: Option<String>,
    /// Chat template name given with `--chat-template`; null is the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
    /// `--max-tokens`, overriding the prompt set's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Whether end-of-generation tokens were suppressed so every run generates max tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    /// Sampling temperature (0 is greedy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u32>,
    /// `--prefix-cache`: whether runs could reuse the KV cache of an earlier run of the same
    /// prompt (`false`: every run evaluated its whole prompt; absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache: Option<bool>,
    /// The command line, as typed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_line: Vec<String>,
}

/// The program that wrote the file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolInfo {
    /// `inproc-bench`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// Git commit the binary was built from (`unknown` outside a checkout).
    pub git_commit: String,
    /// Whether the checkout had uncommitted changes at build time.
    pub git_dirty: bool,
    /// llama.cpp build number linked in-process (`b11434`).
    pub llama_cpp_build: String,
    /// Cargo features compiled in.
    pub features: Vec<String>,
    /// CPU target the binary (and llama.cpp) were compiled for.
    pub target_cpu: String,
    /// Cargo profile.
    pub profile: String,
}

/// The machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SystemInfo {
    /// Operating system name and version.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Physical cores.
    pub cpu_physical_cores: Option<usize>,
    /// Logical CPUs.
    pub cpu_logical_cores: usize,
    /// Installed memory.
    pub memory_total_bytes: u64,
    /// What llama.cpp reports of the CPU features and backends it uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama_cpp_system_info: Option<String>,
    /// GPUs, when the binary can see them (`available: false` with a reason otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuDevices>,
}

/// One engine (or one sweep combination of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineResult {
    /// The model as given.
    pub model: String,
    /// Per-prompt results, in the order run.
    pub prompts: IndexMap<String, PromptResult>,
    /// Engine name (`llama.cpp`, `vLLM`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Engine version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// Every engine setting, as used.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub settings: Map<String, Value>,
    /// The settings that vary in a sweep, for this combination.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub sweep: Map<String, Value>,
    /// Model load time (file to ready engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_time_ms: Option<f64>,
    /// What the engine knows of the model and its devices.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
    /// GPU memory and power figures (null on builds or machines without a GPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuTelemetry>,
    /// Bytes per token, achieved bandwidth and the machine's peak (see `results::roofline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roofline: Option<Roofline>,
}

/// One prompt on one engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptResult {
    /// Time to first token (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<Summary>,
    /// Decode rate (N − 1)/(t_last − t_first), tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tps: Option<Summary>,
    /// Per-run mean inter-token latency (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_mean_ms: Option<Summary>,
    /// Request start to last token (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_latency_ms: Option<Summary>,
    /// Generated tokens per run (exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_generated: Option<Summary>,
    /// Measured runs that finished.
    pub successful_runs: u32,
    /// Measured runs attempted.
    pub total_runs: u32,
    /// The original benchmark's N/(E2E − TTFT), tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_tps: Option<Summary>,
    /// Prompt tokens / TTFT, tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_tps: Option<Summary>,
    /// Request start to the engine returning (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<Summary>,
    /// Prompt tokens per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<Summary>,
    /// Inter-token latency pooled over every gap of every measured run (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<Summary>,
    /// Tokens asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Warmup runs done before the measured ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_runs: Option<u32>,
    /// The text the engine evaluated (after the chat template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
    /// Generated text of the first successful measured run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_output: Option<String>,
    /// The runs' phase breakdowns pooled (see `results::phases`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<super::phases::PhasesRecord>,
    /// Every measured run, in order, with its raw samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunRecord>,
    /// Reasoning models only: request start to the first answer token (ms), over the runs whose
    /// reasoning ended (see `ttfo_missing_runs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfo_ms: Option<Summary>,
    /// Reasoning models only: tokens before the first answer token, per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<Summary>,
    /// Reasoning models only: tokens from the first answer token on, per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_tokens: Option<Summary>,
    /// Reasoning models only: successful runs whose reasoning did not end within their tokens
    /// (null TTFO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfo_missing_runs: Option<u32>,
}

/// One measured run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// 1-based run number among the measured runs.
    pub run: u32,
    /// Why the run failed; absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Time to first token (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Decode rate (tokens per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tps: Option<f64>,
    /// The original benchmark's rate (tokens per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_tps: Option<f64>,
    /// Prompt tokens / TTFT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_tps: Option<f64>,
    /// Mean inter-token latency (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_mean_ms: Option<f64>,
    /// Request start to last token (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_latency_ms: Option<f64>,
    /// Request start to the engine returning (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    /// Generated tokens.
    #[serde(default)]
    pub tokens_generated: u64,
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// `length` (max tokens reached) or `eos` (the model ended early; only without ignore-eos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Deliveries that carried several tokens at once.
    #[serde(default)]
    pub multi_token_deliveries: u64,
    /// Every inter-token latency sample of this run (ms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itl_ms: Vec<f64>,
    /// What the server said it spent (HTTP engines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerRecord>,
    /// Bytes per token and achieved bandwidth of this run (see `results::roofline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roofline: Option<RunRoofline>,
    /// The engine's own counters for this run (in-process llama.cpp: `llama_perf_context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_counters: Option<EngineCountersRecord>,
    /// Where each token's time went (see `results::phases`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<super::phases::PhasesRecord>,
    /// With engines interleaved: this run's position in its round (0 = it ran first). Rounds
    /// alternate the order (ABBA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_in_round: Option<u32>,
    /// Reasoning models only: request start to the first answer token (ms); absent with
    /// `ttfo_note` when the reasoning did not end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfo_ms: Option<f64>,
    /// Reasoning models only: why `ttfo_ms` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfo_note: Option<String>,
    /// Reasoning models only: tokens before the first answer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Reasoning models only: tokens from the first answer token on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_tokens: Option<u64>,
}

/// llama.cpp's own counters for one run (`llama_perf_context`), beside the recorder's stamps.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct EngineCountersRecord {
    /// Time in prompt evaluation (batches of more than one token), ms.
    pub prompt_eval_ms: f64,
    /// Tokens evaluated in those batches.
    pub prompt_eval_tokens: u64,
    /// Time in one-token decodes, ms: graph compute up to the logits, without sampling or
    /// detokenization.
    pub eval_ms: f64,
    /// One-token decodes (generated tokens − 1 when every token but the last was decoded).
    pub eval_tokens: u64,
}

/// Server-side figures of one HTTP run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerRecord {
    /// Prompt evaluation time the server reported (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_ms: Option<f64>,
    /// Generation time the server reported (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_ms: Option<f64>,
    /// Prompt tokens the server evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_n: Option<u64>,
    /// Tokens the server generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_n: Option<u64>,
    /// Request start to response headers (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_ms: Option<f64>,
    /// Request start to the first body byte (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<f64>,
    /// Generated tokens as the server's `usage` reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_tokens: Option<u64>,
    /// Tokens the stream's chunks accounted for, present only when that differed from the
    /// server's count (the run's deliveries were corrected to the server's count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_tokens: Option<u64>,
    /// How tokens per chunk were counted: `timings` (llama-server's per-token `predicted_n`),
    /// `token_ids`, `logprobs`, or `chunks` (one per non-empty text delta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_source: Option<String>,
}
