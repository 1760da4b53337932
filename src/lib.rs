//! inproc-bench measures LLM inference speed inside the process and over HTTP.
//!
//! A token travels: engine → [`measure::Recorder`] (the only clock) → [`measure::RunMetrics`] →
//! [`measure::Summary`] → [`results`] (versioned JSON, written atomically) → [`report`].
//! Metric definitions are in the [`measure`] module.
//!
//! Cargo features:
//! - `cuda`: llama.cpp built with CUDA, plus GPU telemetry (`cuda-telemetry`: cudarc and NVML,
//!   loaded at run time, so the binary starts on machines without a driver).
//! - `vllm`: vLLM in-process through an embedded Python interpreter (pyo3).

pub mod cli;
pub mod commands;
pub mod compare;
pub mod compare_http;
pub mod engine;
pub mod gguf;
pub mod journal;
pub mod lbench;
pub mod load;
pub mod measure;
pub mod plan;
pub mod progress;
pub mod prompts;
pub mod redact;
pub mod report;
pub mod results;
pub mod roofline;
pub mod server;
pub mod settings;
pub mod signals;
pub mod suite;
pub mod telemetry;
pub mod template;

use std::process::ExitCode;

use cli::{Cli, Command};

/// Runs what the command line asks for and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        None => commands::run::run_benchmark(&cli.run),
        Some(Command::Run(args)) => commands::run::run_benchmark(args),
        Some(Command::Compare(args)) => commands::compare::run_compare(args),
        Some(Command::Report(args)) => commands::report::run_report(args),
        Some(Command::Probe(args)) => commands::probe::run_probe(args),
        Some(Command::LlamaBench(args)) => commands::llama_bench::run_llama_bench(args),
    }
}
