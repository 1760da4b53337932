//! What a benchmark run is asked for, as plain values: the plan's input, filled from the command
//! line by the `run` command (the flags' meanings are documented on `cli::RunArgs`).

use std::path::PathBuf;

use crate::engine::http::Api;
use crate::suite::Pairing;

/// Which engine runs the prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// llama.cpp in this process (GGUF models).
    Llamacpp,
    /// vLLM in this process through embedded Python (Hugging Face models; feature `vllm`).
    Vllm,
    /// An OpenAI-compatible server over HTTP (llama-server, vllm serve).
    Http,
    /// A scripted engine with fixed delays, for testing the tool itself.
    Mock,
}

/// The original benchmark's choice of server(s) to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// vLLM at the vLLM URL.
    Vllm,
    /// llama-server at the llama.cpp URL.
    Llamacpp,
    /// Both, one after the other.
    Both,
}

/// Everything a plan is built from. Lists (`n_gpu_layers`, `ctx_size`, …) are kept as typed, so
/// that the plan checks and expands them and names the flag when one is wrong.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Engine to measure.
    pub engine: EngineKind,
    /// Model path(s), a comma list sweeps.
    pub model: Option<String>,
    /// Prompt names to run, or `all`.
    pub prompt: String,
    /// A prompt set of one's own.
    pub prompt_file: Option<PathBuf>,
    /// Unmeasured runs per prompt.
    pub warmup: u32,
    /// Measured runs per prompt.
    pub runs: u32,
    /// Tokens per run, overriding the prompt set's.
    pub max_tokens: Option<u32>,
    /// Generate past end-of-sequence.
    pub ignore_eos: bool,
    /// Sampling temperature.
    pub temperature: f32,
    /// Sampling seed.
    pub seed: u32,
    /// A chat template name instead of the model's.
    pub chat_template: Option<String>,
    /// A Jinja chat template file instead of the model's.
    pub chat_template_file: Option<PathBuf>,
    /// Extra template arguments, a JSON object (`--chat-template-kwargs`).
    pub chat_template_kwargs: Option<String>,
    /// `--thinking on|off`: the template's `enable_thinking`.
    pub thinking: Option<bool>,
    /// The prompt text as is, no template.
    pub raw_prompt: bool,
    /// `--prefix-cache on`.
    pub prefix_cache: bool,
    /// llama.cpp: layers on the GPU (list).
    pub n_gpu_layers: String,
    /// llama.cpp: context size (list).
    pub ctx_size: String,
    /// CPU threads (list).
    pub threads: Option<String>,
    /// llama.cpp: logical batch (list).
    pub batch_size: String,
    /// llama.cpp: physical batch (list).
    pub ubatch_size: String,
    /// llama.cpp: flash attention (list).
    pub flash_attn: String,
    /// llama.cpp: full-size SWA cache.
    pub swa_full: bool,
    /// Server URL for the HTTP engine.
    pub url: Option<String>,
    /// Streaming API over HTTP (`--api`; `None`: chat, or completions for `--compare-http`).
    pub api: Option<Api>,
    /// The original benchmark's server choice.
    pub backend: Option<Backend>,
    /// vLLM server URL for `backend`.
    pub vllm_url: String,
    /// llama-server URL for `backend`.
    pub llamacpp_url: String,
    /// Also serve the model over HTTP and compare.
    pub compare_http: bool,
    /// llama-server binary for the comparison.
    pub llama_server: Option<PathBuf>,
    /// Order of the comparison's two sides.
    pub pairing: Pairing,
    /// API key for HTTP requests.
    pub api_key: Option<String>,
    /// Extra request headers, `NAME: VALUE`.
    pub headers: Vec<String>,
    /// Extra CA certificates (PEM).
    pub ca_cert: Option<PathBuf>,
    /// Seconds to open a connection.
    pub connect_timeout: f64,
    /// Seconds for one whole request.
    pub request_timeout: Option<f64>,
    /// Python environment holding vLLM.
    pub python_env: Option<PathBuf>,
    /// vLLM: fraction of GPU memory.
    pub gpu_memory_utilization: f64,
    /// vLLM: GiB of weights in CPU memory.
    pub cpu_offload_gb: f64,
    /// vLLM: maximum sequence length.
    pub max_model_len: Option<u32>,
    /// vLLM: tensor-parallel GPUs.
    pub tensor_parallel_size: u32,
    /// vLLM: quantization method.
    pub quantization: Option<String>,
    /// vLLM: weight dtype.
    pub dtype: String,
    /// vLLM: no CUDA graphs.
    pub enforce_eager: bool,
    /// vLLM's own name for `prefix_cache`.
    pub enable_prefix_caching: bool,
    /// llama.cpp: RPC workers, `host:port` comma list.
    pub rpc: Option<String>,
    /// llama.cpp: split mode over devices (list).
    pub split_mode: String,
    /// llama.cpp: devices by name, `/`-joined (list).
    pub device: String,
    /// llama.cpp: share per device, `/`-joined (list).
    pub tensor_split: String,
    /// vLLM: `mp` or `ray`.
    pub distributed_executor_backend: Option<String>,
    /// vLLM: pipeline-parallel stages.
    pub pipeline_parallel_size: u32,
    /// vLLM: a running Ray cluster's address.
    pub ray_address: Option<String>,
    /// Let the engines print their own logs.
    pub verbose: bool,
    /// Mock engine: time to first token, ms.
    pub mock_ttft_ms: f64,
    /// Mock engine: time between deliveries, ms.
    pub mock_itl_ms: f64,
    /// Mock engine: tokens per delivery.
    pub mock_chunk: u32,
    /// Mock engine: fail every Nth request.
    pub mock_fail_every: u32,
    /// The scripted engine's reasoning tokens before the answer.
    pub mock_reasoning_tokens: u32,
}
