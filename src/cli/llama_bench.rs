//! `inproc-bench llama-bench`'s flags: llama-bench's own names and defaults (comma lists sweep),
//! and the rewrite of its multi-letter single-dash flags (`-pg`, `-ctk`, `-ngl`, …) into the long
//! spellings the parser knows.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

/// llama-bench's flags that have more than one letter after a single dash.
const SINGLE_DASH: &[&str] = &["pg", "ctk", "ctv", "ngl", "ub", "fa"];

/// Rewrites `-pg` to `--pg` (and so on) after the `llama-bench` subcommand, so that llama-bench's
/// command lines work unchanged.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut seen = false;
    args.into_iter()
        .map(|a| {
            if !seen {
                seen = a == "llama-bench";
                return a;
            }
            match a.to_str().and_then(|s| s.strip_prefix('-')) {
                Some(name) if SINGLE_DASH.contains(&name) => OsString::from(format!("--{name}")),
                _ => a,
            }
        })
        .collect()
}

/// `inproc-bench llama-bench`.
#[derive(Debug, Clone, Args)]
pub struct LlamaBenchArgs {
    /// Model file (.gguf).
    #[arg(
        short = 'm',
        long,
        default_value = "models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
    )]
    pub model: PathBuf,
    /// Prompt processing tests: tokens evaluated in one go (0: none).
    #[arg(
        short = 'p',
        long = "n-prompt",
        default_value = "512",
        value_name = "N[,N…]"
    )]
    pub n_prompt: String,
    /// Text generation tests: single-token decodes (0: none).
    #[arg(
        short = 'n',
        long = "n-gen",
        default_value = "128",
        value_name = "N[,N…]"
    )]
    pub n_gen: String,
    /// Prompt then generation, timed together (`-pg 512,128`); repeat the flag for more.
    #[arg(long = "pg", value_name = "PP,TG")]
    pub pg: Vec<String>,
    /// KV cache depth filled (untimed) before each test.
    #[arg(
        short = 'd',
        long = "n-depth",
        default_value = "0",
        value_name = "N[,N…]"
    )]
    pub n_depth: String,
    /// KV cache type for K (`-ctk`): f16, q8_0, q4_0, …
    #[arg(long = "cache-type-k", visible_alias = "ctk", default_value = "f16")]
    pub cache_type_k: String,
    /// KV cache type for V (`-ctv`).
    #[arg(long = "cache-type-v", visible_alias = "ctv", default_value = "f16")]
    pub cache_type_v: String,
    /// Repetitions of each test.
    #[arg(short = 'r', long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub repetitions: u32,
    /// Threads (default: physical cores).
    #[arg(short = 't', long, value_name = "N[,N…]")]
    pub threads: Option<String>,
    /// Layers offloaded to the GPU (`-ngl`); -1 is all.
    #[arg(
        long = "n-gpu-layers",
        visible_alias = "ngl",
        default_value = "-1",
        allow_hyphen_values = true
    )]
    pub n_gpu_layers: String,
    /// Logical batch size.
    #[arg(
        short = 'b',
        long = "batch-size",
        default_value = "2048",
        value_name = "N[,N…]"
    )]
    pub batch_size: String,
    /// Physical batch size (`-ub`).
    #[arg(
        long = "ubatch-size",
        visible_alias = "ub",
        default_value = "512",
        value_name = "N[,N…]"
    )]
    pub ubatch_size: String,
    /// Flash attention (`-fa`): on, off or auto (1, 0, -1).
    #[arg(
        long = "flash-attn",
        visible_alias = "fa",
        default_value = "auto",
        allow_hyphen_values = true
    )]
    pub flash_attn: String,
    /// Output format: md, csv, json, jsonl or sql.
    #[arg(short = 'o', long, default_value = "md")]
    pub output: String,
    /// Skip the warmup run before each test.
    #[arg(long)]
    pub no_warmup: bool,
    /// Also run this tool (only `llama-bench`) with the same settings, interleaved, and print the
    /// ratio per test.
    #[arg(long, value_name = "llama-bench")]
    pub against: Option<String>,
    /// The llama-bench binary for --against (default: vendor/llama.cpp-b11434/bin/llama-bench).
    #[arg(long = "llama-bench", value_name = "PATH")]
    pub llama_bench: Option<PathBuf>,
}
