//! The engine interface: engines load a model, prepare prompts, and report generated tokens to the
//! recorder. They never read the clock and never compute metrics.

pub mod http;
pub mod llamacpp;
pub mod mock;
pub mod mock_batch;
pub mod proc_env;
pub mod streams;
pub mod vllm;

pub use vllm::VllmEngine;

use serde_json::{Map, Value};

use crate::measure::Recorder;
use crate::prompts::PromptSpec;

/// How the user's prompt becomes the text an engine evaluates.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptMode {
    /// One user message through the model's chat template, or the named template.
    Chat {
        /// A template name llama.cpp knows (`chatml`, `llama3`, …) instead of the model's own.
        template: Option<String>,
        /// A template file and the template arguments (`--chat-template-kwargs`, `--thinking`).
        options: crate::template::ChatOptions,
    },
    /// The prompt text as is, no template.
    Raw,
}

/// Sampling and stopping settings shared by every engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 is greedy.
    pub temperature: f32,
    /// Seed for sampling at temperature > 0.
    pub seed: u32,
    /// Keep generating past end-of-generation tokens, so every run produces exactly `max_tokens`.
    pub ignore_eos: bool,
    /// `--prefix-cache on`: runs may reuse the KV cache an earlier run of the same prompt left.
    pub prefix_cache: bool,
}

/// A prompt made ready for one engine: templated text and its token count.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedPrompt {
    /// The prompt's name.
    pub name: String,
    /// The text the engine evaluates (after the chat template, when one applies).
    pub text: String,
    /// Tokens to generate.
    pub max_tokens: u32,
    /// Prompt tokens when the engine can count them before running.
    pub prompt_tokens: Option<u64>,
}

/// One request handed to an engine.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// What to evaluate.
    pub prompt: &'a PreparedPrompt,
    /// How to sample.
    pub sampling: &'a Sampling,
    /// Whether the engine may reuse the prompt's KV cache from an earlier request (`--prefix-cache
    /// on`); off, every request evaluates its whole prompt.
    pub prefix_cache: bool,
}

/// How a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// `max_tokens` were generated.
    Length,
    /// The model produced an end-of-generation token (only with `ignore_eos` off).
    Eos,
}

/// What the server says it spent on a request (HTTP engines that report it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerTimings {
    /// Prompt evaluation time as the server measured it.
    pub prompt_ms: Option<f64>,
    /// Generation time as the server measured it.
    pub predicted_ms: Option<f64>,
    /// Prompt tokens the server evaluated (after its cache).
    pub prompt_n: Option<u64>,
    /// Tokens the server generated.
    pub predicted_n: Option<u64>,
    /// Request start to response headers.
    pub headers_ms: Option<f64>,
    /// Request start to the first byte of the body.
    pub first_byte_ms: Option<f64>,
    /// Generated tokens as the server's `usage` reports them.
    pub usage_tokens: Option<u64>,
    /// Tokens the stream's chunks accounted for, when that differed from the server's count (the
    /// recorded deliveries were then corrected to the server's count).
    pub counted_tokens: Option<u64>,
    /// How tokens per chunk were counted: `timings`, `token_ids`, `logprobs` or `chunks`.
    pub count_source: Option<String>,
}

/// The engine's own counters for one request (llama.cpp's `llama_perf_context`), recorded beside
/// the recorder's stamps as the HTTP side records the server's timings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineCounters {
    /// Time in prompt evaluation (batches of more than one token), ms.
    pub prompt_eval_ms: f64,
    /// Tokens evaluated in those batches.
    pub prompt_eval_tokens: u64,
    /// Time in one-token decodes (generation), ms.
    pub eval_ms: f64,
    /// One-token decodes.
    pub eval_tokens: u64,
}

/// What an engine returns for one request besides the token timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Prompt tokens as the engine tokenized them.
    pub prompt_tokens: u64,
    /// Generated token ids, where the engine exposes them.
    pub token_ids: Vec<i64>,
    /// Generated text.
    pub text: String,
    /// Why generation stopped.
    pub finish: Finish,
    /// Server-side figures (HTTP only).
    pub server: Option<ServerTimings>,
    /// The engine's own counters (in-process llama.cpp).
    pub counters: Option<EngineCounters>,
}

/// Who an engine is and how it was set up; recorded with every result.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineInfo {
    /// Results key: `llamacpp`, `vllm`, or the HTTP backend's.
    pub key: String,
    /// Human name of the engine (`llama.cpp`, `vLLM`, `llama-server (HTTP)`).
    pub name: String,
    /// Engine version string.
    pub version: String,
    /// The model as the user named it.
    pub model: String,
    /// Every engine setting, as used.
    pub settings: Map<String, Value>,
    /// Model load time (constructor), milliseconds.
    pub load_ms: f64,
    /// Anything else the engine knows about itself (model metadata, backend devices).
    pub details: Map<String, Value>,
}

/// Errors an engine reports. Messages name the fix where there is one.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine was not compiled into this binary.
    #[error("the {engine} engine is not compiled into this binary: rebuild with `cargo build --release --features {feature}`")]
    NotCompiled {
        /// Engine name.
        engine: &'static str,
        /// The cargo feature that brings it.
        feature: &'static str,
    },
    /// The model could not be loaded.
    #[error("{0}")]
    Load(String),
    /// The prompt cannot be run as asked (template, context size).
    #[error("{0}")]
    Prompt(String),
    /// Generation failed.
    #[error("{0}")]
    Generate(String),
    /// The user interrupted the run.
    #[error("interrupted")]
    Interrupted,
    /// The engine cannot go on (a server it started has died); the suite stops like on Ctrl-C and
    /// the caller reports why.
    #[error("{0}")]
    Stopped(String),
}

/// An inference engine under test.
pub trait Engine {
    /// Who the engine is, its version, model and settings.
    fn info(&self) -> EngineInfo;

    /// Applies the prompt mode (chat template) and checks the prompt fits; not timed.
    fn prepare(
        &mut self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<PreparedPrompt, EngineError>;

    /// Runs one request, calling `rec.tokens(n)` as generated tokens become available. The caller
    /// has already called `rec.start()`; no state from earlier requests (KV cache) may be reused,
    /// unless `req.prefix_cache` allows the prompt's cached prefix.
    fn generate(&mut self, req: &Request<'_>, rec: &mut Recorder) -> Result<Outcome, EngineError>;
}
