//! The values some flags take, and how each maps onto the domain type it stands for.

use clap::ValueEnum;

use crate::engine::http::Api;
use crate::plan::{Backend, EngineKind};
use crate::report::Format;
use crate::suite::Pairing;

/// Output of `inproc-bench probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeFormat {
    /// A short table.
    Table,
    /// One JSON object.
    Json,
}

/// A switch given as `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl OnOff {
    /// Whether it is `on`.
    pub fn is_on(self) -> bool {
        self == Self::On
    }
}

/// Which engine runs the prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// llama.cpp in this process (GGUF models).
    Llamacpp,
    /// vLLM in this process through embedded Python (Hugging Face models; feature `vllm`).
    Vllm,
    /// An OpenAI-compatible server over HTTP (llama-server, vllm serve).
    Http,
    /// A scripted engine with fixed delays, for testing the tool itself.
    #[value(hide = true)]
    Mock,
}

/// Output format of the report printed at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A table like the original benchmark's.
    Table,
    /// Markdown, one row per combination and prompt.
    Md,
    /// CSV, one row per combination and prompt.
    Csv,
    /// The results JSON.
    Json,
}

/// `--pairing` of `--compare-http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PairingArg {
    /// Interleaved when both copies of the model fit, else blocks.
    Auto,
    /// In-process and HTTP runs alternate, in ABBA order.
    Interleaved,
    /// All in-process runs, unload, then all HTTP runs.
    Blocks,
}

/// The streaming API used over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// POST /v1/chat/completions with one user message.
    Chat,
    /// POST /v1/completions with the prompt text.
    Completions,
}

/// The original benchmark's `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// vLLM at --vllm-url.
    Vllm,
    /// llama-server at --llamacpp-url.
    Llamacpp,
    /// Both, one after the other.
    Both,
}

impl From<EngineArg> for EngineKind {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Llamacpp => Self::Llamacpp,
            EngineArg::Vllm => Self::Vllm,
            EngineArg::Http => Self::Http,
            EngineArg::Mock => Self::Mock,
        }
    }
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Table => Self::Table,
            FormatArg::Md => Self::Md,
            FormatArg::Csv => Self::Csv,
            FormatArg::Json => Self::Json,
        }
    }
}

impl From<PairingArg> for Pairing {
    fn from(p: PairingArg) -> Self {
        match p {
            PairingArg::Auto => Self::Auto,
            PairingArg::Interleaved => Self::Interleaved,
            PairingArg::Blocks => Self::Blocks,
        }
    }
}

impl From<ApiArg> for Api {
    fn from(a: ApiArg) -> Self {
        match a {
            ApiArg::Chat => Self::Chat,
            ApiArg::Completions => Self::Completions,
        }
    }
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Vllm => Self::Vllm,
            BackendArg::Llamacpp => Self::Llamacpp,
            BackendArg::Both => Self::Both,
        }
    }
}
