//! Command-line flags. Names follow llama-server / llama-bench and the original Python benchmark
//! where they exist; each help text says why a setting matters for a measurement.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod distributed;
mod llama_bench;
mod load;
mod values;

pub use distributed::DistributedArgs;
pub use llama_bench::{normalize_args, LlamaBenchArgs};
pub use load::LoadArgs;
pub use values::{ApiArg, BackendArg, EngineArg, FormatArg, OnOff, PairingArg, ProbeFormat};

/// Measure LLM inference speed inside the process (llama.cpp, vLLM) and over HTTP, token by token.
///
/// With no subcommand, runs a benchmark (same flags as `inproc-bench run`).
#[derive(Debug, Parser)]
#[command(
    name = "inproc-bench",
    version,
    args_conflicts_with_subcommands = true,
    args_override_self = true
)]
pub struct Cli {
    /// What to do; a benchmark run when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Benchmark flags (when no subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
// Parsed once per process: the size of the largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a benchmark (the default).
    #[command(args_override_self = true)]
    Run(RunArgs),
    /// Compare results files (or the entries of one): ratios, confidence intervals, within noise.
    Compare(CompareArgs),
    /// Print results files again as a table, Markdown, CSV or JSON, and plot them.
    Report(ReportArgs),
    /// Measure the memory bandwidth (a STREAM-like read kernel on the CPU; NVML and a device
    /// copy on a GPU): the peak a decode rate is held against.
    Probe(ProbeArgs),
    /// llama-bench's tests (pp, tg, pg, depth, KV cache types) in-process, in its output formats;
    /// `--against llama-bench` runs llama-bench too and prints the ratio per test.
    LlamaBench(LlamaBenchArgs),
}

/// `inproc-bench probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// Threads reading at once (default: physical cores, as a run's --threads).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Buffer size in MiB (default: 8 × the last-level cache, 256 MiB to 2 GiB, at most a quarter
    /// of the free memory), so that it is read from memory, not from a cache.
    #[arg(long, value_name = "MIB")]
    pub size_mib: Option<u64>,
    /// Timed repetitions; the best is the peak, the median shows the spread.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
    /// Keep repeating until the timed reads add up to this many milliseconds, so that the
    /// sustained rate covers as long a read as a reference tool's (likwid-bench reads for about a
    /// second); 0 reads exactly --reps times.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub min_time_ms: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ProbeFormat::Table)]
    pub format: ProbeFormat,
}

/// `inproc-bench compare A.json B.json [C.json …]`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Results files, ours or the original benchmark's; the first entry is the baseline. One file
    /// compares its own entries (engines or sweep combinations) against its first.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Entry to take from the first file (with one file: the baseline entry), e.g. vllm, or
    /// llamacpp for every llamacpp@… combination. Default: every entry of the file.
    #[arg(long, value_name = "KEY")]
    pub backend1: Option<String>,
    /// Entry to take from the second file (with one file: the entry compared with --backend1).
    #[arg(long, value_name = "KEY")]
    pub backend2: Option<String>,
    /// Entry to take from every file that has no --backend1/--backend2 of its own.
    #[arg(long, value_name = "KEY")]
    pub backend: Option<String>,
    /// Confidence level of the intervals: a difference whose interval holds zero is within noise.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Also draw the compared entries (TTFT by prompt, decode rate, ITL distribution) as SVG, or
    /// as an HTML page when the name ends in .html, because a picture shows a latency tail at a
    /// glance; never overwrites.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// `inproc-bench report FILE [FILE …]`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Results files, ours or the original benchmark's.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format: md and csv print one row per engine (or sweep combination) and prompt.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Also draw the results as SVG, or as an HTML page when the name ends in .html; never
    /// overwrites.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// Everything a benchmark run takes.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Engine to measure.
    #[arg(long, value_enum, default_value_t = EngineArg::Llamacpp)]
    pub engine: EngineArg,

    /// Model: a .gguf file for llamacpp, a Hugging Face folder for vllm. A comma list sweeps models
    /// (e.g. Q4_K_M vs Q8_0), each loaded once.
    #[arg(short = 'm', long, value_name = "PATH[,PATH…]")]
    pub model: Option<String>,

    // ---- prompts and plan ----
    /// Prompts to run: all, or names from the set (short, medium, long), comma-separated.
    #[arg(long, default_value = "all", help_heading = "Plan")]
    pub prompt: String,
    /// Your own prompt set: a JSON array or JSON lines of {"name", "prompt", "max_tokens"}.
    #[arg(long, value_name = "FILE", help_heading = "Plan")]
    pub prompt_file: Option<PathBuf>,
    /// Unmeasured runs per prompt first: they warm caches, page in weights and settle clocks.
    #[arg(long, default_value_t = 5, help_heading = "Plan")]
    pub warmup: u32,
    /// Measured runs per prompt; more runs narrow the confidence intervals.
    #[arg(short = 'r', long, default_value_t = 20, help_heading = "Plan")]
    pub runs: u32,
    /// Scenario name, used in the results file name.
    #[arg(long, default_value = "custom", help_heading = "Plan")]
    pub scenario: String,
    /// Tokens to generate per run, overriding the prompt set's (100/300/500).
    #[arg(short = 'n', long, help_heading = "Plan")]
    pub max_tokens: Option<u32>,
    /// Keep generating past end-of-sequence so every run produces exactly max tokens and runs are
    /// comparable; `--ignore-eos false` lets the model stop and records where it did.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", help_heading = "Plan")]
    pub ignore_eos: bool,
    /// Sampling temperature; 0 is greedy, which makes runs (and engines) produce the same text.
    #[arg(
        long,
        visible_alias = "temp",
        default_value_t = 0.0,
        help_heading = "Plan"
    )]
    pub temperature: f32,
    /// Sampling seed, used when temperature > 0.
    #[arg(long, default_value_t = 42, help_heading = "Plan")]
    pub seed: u32,
    /// Use this chat template (a name llama.cpp knows, e.g. chatml, llama3) instead of the model's.
    #[arg(
        long,
        value_name = "NAME",
        help_heading = "Plan",
        conflicts_with = "raw_prompt"
    )]
    pub chat_template: Option<String>,
    /// Send the prompt text as is, without a chat template.
    #[arg(long, help_heading = "Plan")]
    pub raw_prompt: bool,

    // ---- chat templates and reasoning ----
    /// Render this Jinja chat template instead of the model's own (in-process llama.cpp), as
    /// llama-server's --chat-template-file does.
    #[arg(long, value_name = "FILE", help_heading = "Plan", conflicts_with_all = ["raw_prompt", "chat_template"])]
    pub chat_template_file: Option<PathBuf>,
    /// Extra chat template arguments as a JSON object, e.g. '{"enable_thinking": false}': merged
    /// into the template's context in-process, and sent as `chat_template_kwargs` to llama-server
    /// and vLLM, so that every engine builds the same prompt.
    #[arg(
        long,
        value_name = "JSON",
        help_heading = "Plan",
        conflicts_with = "raw_prompt"
    )]
    pub chat_template_kwargs: Option<String>,
    /// Let a reasoning model think (`on`) or answer directly (`off`): the template argument
    /// `enable_thinking` on every engine. Reasoning models record TTFO, reasoning and answer tokens.
    #[arg(
        long,
        value_enum,
        value_name = "on|off",
        help_heading = "Plan",
        conflicts_with = "raw_prompt"
    )]
    pub thinking: Option<OnOff>,
    /// Mock engine: the first N tokens of each run are reasoning.
    #[arg(long, default_value_t = 0, hide = true)]
    pub mock_reasoning_tokens: u32,
    /// Prompt (prefix) cache between runs of the same prompt, on every engine: `off` makes every
    /// run evaluate its whole prompt (vLLM over HTTP gets a unique `cache_salt` per request,
    /// llama-server `cache_prompt: false`); `on` measures the cached case (runs 2..N reuse the
    /// prompt's KV cache where the engine can).
    #[arg(long, value_enum, default_value_t = OnOff::Off, value_name = "on|off", help_heading = "Plan")]
    pub prefix_cache: OnOff,

    // ---- llama.cpp ----
    /// Layers to offload to the GPU (-1 = all). Accepted and recorded on CPU-only builds. A comma
    /// list or range (0-30+10) sweeps.
    #[arg(
        long,
        visible_alias = "ngl",
        default_value = "-1",
        value_name = "N[,N…]",
        allow_hyphen_values = true,
        help_heading = "llama.cpp"
    )]
    pub n_gpu_layers: String,
    /// Context size in tokens; must hold the prompt plus max tokens.
    #[arg(
        short = 'c',
        long,
        default_value = "4096",
        value_name = "N[,N…]",
        help_heading = "llama.cpp"
    )]
    pub ctx_size: String,
    /// CPU threads: llama.cpp's, or torch's for --engine vllm (default: physical cores; more than
    /// that usually slows decoding).
    #[arg(short = 't', long, value_name = "N[,N…]", help_heading = "llama.cpp")]
    pub threads: Option<String>,
    /// Logical batch size for prompt evaluation.
    #[arg(
        short = 'b',
        long,
        default_value = "2048",
        value_name = "N[,N…]",
        help_heading = "llama.cpp"
    )]
    pub batch_size: String,
    /// Physical batch size: how many prompt tokens go to the backend at once.
    #[arg(
        long,
        visible_alias = "ub",
        default_value = "512",
        value_name = "N[,N…]",
        help_heading = "llama.cpp"
    )]
    pub ubatch_size: String,
    /// Flash attention: on, off or auto (1/0 as llama-bench).
    #[arg(
        long,
        visible_alias = "fa",
        default_value = "auto",
        value_name = "on|off|auto[,…]",
        allow_hyphen_values = true,
        help_heading = "llama.cpp"
    )]
    pub flash_attn: String,
    /// Full-size KV cache for sliding-window attention layers (llama-server's `--swa-full`). Off,
    /// as llama-server's default, so that in-process and served runs hold the same cache.
    #[arg(long, help_heading = "llama.cpp")]
    pub swa_full: bool,

    // ---- HTTP ----
    /// Base URL of an OpenAI-compatible server for --engine http.
    #[arg(long, help_heading = "HTTP")]
    pub url: Option<String>,
    /// API to stream: chat (/v1/chat/completions, as the original benchmark; the default) or
    /// completions. With --compare-http the default is completions (the in-process prompt text as
    /// is); chat sends the messages to both sides and checks the server renders the same prompt.
    #[arg(long, value_enum, help_heading = "HTTP")]
    pub api: Option<ApiArg>,
    /// The original benchmark's backend choice: measures the server(s) at --vllm-url / --llamacpp-url.
    #[arg(long, value_enum, help_heading = "HTTP")]
    pub backend: Option<BackendArg>,
    /// vLLM server for --backend vllm|both.
    #[arg(long, default_value = "http://localhost:8000", help_heading = "HTTP")]
    pub vllm_url: String,
    /// llama-server for --backend llamacpp|both.
    #[arg(long, default_value = "http://localhost:8001", help_heading = "HTTP")]
    pub llamacpp_url: String,
    /// Also serve the same model with the same settings over HTTP (llama-server or vllm serve) and
    /// report what the serving layer costs, run for run.
    #[arg(long, help_heading = "HTTP")]
    pub compare_http: bool,
    /// llama-server binary for --compare-http (default: the one vendor/build-llama-tools.sh built).
    #[arg(
        long,
        env = "INPROC_LLAMA_SERVER",
        value_name = "PATH",
        help_heading = "HTTP"
    )]
    pub llama_server: Option<PathBuf>,
    /// How --compare-http orders the two sides: `interleaved` run by run, the order alternating
    /// ABBA so that drift and order effects hit both alike; `blocks`: every in-process run, unload,
    /// then every HTTP run, for a GPU that holds only one copy of the model (drift between the
    /// blocks then adds to the difference); `auto`: interleaved when both copies fit.
    #[arg(long, value_enum, default_value_t = PairingArg::Auto, help_heading = "HTTP")]
    pub pairing: PairingArg,

    // ---- HTTP client: TLS, credentials, timeouts ----
    /// API key, sent as `Authorization: Bearer KEY`; never written to the results or printed.
    #[arg(
        long,
        env = "OPENAI_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "HTTP"
    )]
    pub api_key: Option<String>,
    /// Extra request header, `NAME: VALUE`; repeatable. Values of credential headers
    /// (Authorization, *key*, *token*, Cookie, …) are never written or printed.
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME:VALUE",
        help_heading = "HTTP"
    )]
    pub headers: Vec<String>,
    /// PEM file of CA certificates to trust for https:// besides the system's and the built-in
    /// roots (a private CA, a self-signed server).
    #[arg(long, value_name = "FILE", help_heading = "HTTP")]
    pub ca_cert: Option<PathBuf>,
    /// Seconds allowed to open a connection (TCP and TLS).
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "SECS",
        help_heading = "HTTP"
    )]
    pub connect_timeout: f64,
    /// Seconds allowed for one whole request, headers to end of stream; a run that takes longer
    /// fails with that reason and the next run goes on (default: no limit, but a stream silent
    /// for 300 s fails).
    #[arg(long, value_name = "SECS", help_heading = "HTTP")]
    pub request_timeout: Option<f64>,

    // ---- vLLM ----
    /// Python environment holding vLLM (default: the active virtual environment, then .venv-vllm).
    #[arg(
        long,
        env = "INPROC_PYTHON_ENV",
        value_name = "DIR",
        help_heading = "vLLM"
    )]
    pub python_env: Option<PathBuf>,
    /// Fraction of GPU memory vLLM may take.
    #[arg(long, default_value_t = 0.9, help_heading = "vLLM")]
    pub gpu_memory_utilization: f64,
    /// GiB of weights to keep in CPU memory (for models larger than the GPU).
    #[arg(long, default_value_t = 0.0, help_heading = "vLLM")]
    pub cpu_offload_gb: f64,
    /// Maximum sequence length (default: the model's).
    #[arg(long, help_heading = "vLLM")]
    pub max_model_len: Option<u32>,
    /// GPUs for tensor parallelism.
    #[arg(long, default_value_t = 1, help_heading = "vLLM")]
    pub tensor_parallel_size: u32,
    /// Quantization method (awq, fp8, …; default: from the model).
    #[arg(long, help_heading = "vLLM")]
    pub quantization: Option<String>,
    /// Weight dtype (auto, bfloat16, float16, float32).
    #[arg(long, default_value = "auto", help_heading = "vLLM")]
    pub dtype: String,
    /// Disable CUDA graphs (slower decoding, faster start).
    #[arg(long, help_heading = "vLLM")]
    pub enforce_eager: bool,
    /// The same as `--prefix-cache on` (vLLM's own name for it).
    #[arg(long, help_heading = "vLLM")]
    pub enable_prefix_caching: bool,

    // ---- load (docs/load.md) ----
    #[command(flatten)]
    pub load: LoadArgs,

    // ---- distributed: llama.cpp RPC workers, vLLM executors (docs/distributed.md) ----
    #[command(flatten)]
    pub distributed: DistributedArgs,

    // ---- output ----
    /// Results file (default: <results-dir>/benchmark_<scenario>_<YYYYmmdd_HHMMSS>.json); never overwritten.
    #[arg(short = 'o', long, help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Directory for default results file names.
    #[arg(long, default_value = "results", help_heading = "Output")]
    pub results_dir: PathBuf,
    /// Report printed at the end.
    #[arg(long, value_enum, default_value_t = FormatArg::Table, help_heading = "Output")]
    pub format: FormatArg,
    /// Also draw the results (TTFT by prompt, decode rate against the swept setting, ITL
    /// distribution) as SVG, or as an HTML page when the name ends in .html, because a picture
    /// shows a sweep's trend and a latency tail at a glance; never overwrites.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub plot: Option<PathBuf>,
    /// No progress bar and no report; errors still go to stderr.
    #[arg(short = 'q', long, help_heading = "Output")]
    pub quiet: bool,
    /// Let the engines print their own logs.
    #[arg(short = 'v', long, help_heading = "Output")]
    pub verbose: bool,
    /// After the runs, measure the memory bandwidth the roofline figures are held against
    /// (`inproc-bench probe` on each run's thread count, about half a second each; a GPU copy
    /// on GPU runs); false leaves the measured peak null.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", help_heading = "Output")]
    pub roofline_probe: bool,

    // ---- scripted engine (tests) ----
    /// Mock engine: time to first token.
    #[arg(long, default_value_t = 5.0, hide = true)]
    pub mock_ttft_ms: f64,
    /// Mock engine: time between deliveries.
    #[arg(long, default_value_t = 1.0, hide = true)]
    pub mock_itl_ms: f64,
    /// Mock engine: tokens per delivery.
    #[arg(long, default_value_t = 1, hide = true)]
    pub mock_chunk: u32,
    /// Mock engine: fail every Nth request.
    #[arg(long, default_value_t = 0, hide = true)]
    pub mock_fail_every: u32,
}

impl Cli {
    /// The benchmark flags, whether given at top level or after `run`.
    pub fn run_args(&self) -> Option<&RunArgs> {
        match &self.command {
            None => Some(&self.run),
            Some(Command::Run(args)) => Some(args),
            Some(
                Command::Compare(_)
                | Command::Report(_)
                | Command::Probe(_)
                | Command::LlamaBench(_),
            ) => None,
        }
    }
}

#[cfg(test)]
mod tests;
