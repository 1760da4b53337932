//! The benchmark command: plan, load engines, run the suite, write results, print the report.

use std::process::ExitCode;

use anyhow::bail;
use chrono::Local;

use super::measure::{measure_one, run_http, run_llamacpp, run_vllm};
use crate::cli::RunArgs;
use crate::engine::mock::MockEngine;
use crate::measure::StopFlag;
use crate::plan::{sweep_label, EnginePlan, Plan, RunOptions};
use crate::progress::Progress;
use crate::report::Format;
use crate::results::schema::RunConfig;
use crate::results::{ResultsFile, SCHEMA_VERSION};
use crate::suite::build;
use crate::suite::{EngineRuns, Measured, SuiteEnd};
use crate::telemetry::gpu::GpuWatch;
use crate::telemetry::system;

/// The plan's input from the flags: each flag's value, mapped onto its domain type.
pub fn run_options(a: &RunArgs) -> RunOptions {
    RunOptions {
        engine: a.engine.into(),
        model: a.model.clone(),
        prompt: a.prompt.clone(),
        prompt_file: a.prompt_file.clone(),
        warmup: a.warmup,
        runs: a.runs,
        max_tokens: a.max_tokens,
        ignore_eos: a.ignore_eos,
        temperature: a.temperature,
        seed: a.seed,
        chat_template: a.chat_template.clone(),
        chat_template_file: a.chat_template_file.clone(),
        chat_template_kwargs: a.chat_template_kwargs.clone(),
        thinking: a.thinking.map(|t| t.is_on()),
        raw_prompt: a.raw_prompt,
        prefix_cache: a.prefix_cache.is_on(),
        n_gpu_layers: a.n_gpu_layers.clone(),
        ctx_size: a.ctx_size.clone(),
        threads: a.threads.clone(),
        batch_size: a.batch_size.clone(),
        ubatch_size: a.ubatch_size.clone(),
        flash_attn: a.flash_attn.clone(),
        swa_full: a.swa_full,
        url: a.url.clone(),
        api: a.api.map(Into::into),
        backend: a.backend.map(Into::into),
        vllm_url: a.vllm_url.clone(),
        llamacpp_url: a.llamacpp_url.clone(),
        compare_http: a.compare_http,
        llama_server: a.llama_server.clone(),
        pairing: a.pairing.into(),
        api_key: a.api_key.clone(),
        headers: a.headers.clone(),
        ca_cert: a.ca_cert.clone(),
        connect_timeout: a.connect_timeout,
        request_timeout: a.request_timeout,
        python_env: a.python_env.clone(),
        gpu_memory_utilization: a.gpu_memory_utilization,
        cpu_offload_gb: a.cpu_offload_gb,
        max_model_len: a.max_model_len,
        tensor_parallel_size: a.tensor_parallel_size,
        quantization: a.quantization.clone(),
        dtype: a.dtype.clone(),
        enforce_eager: a.enforce_eager,
        enable_prefix_caching: a.enable_prefix_caching,
        rpc: a.distributed.rpc.clone(),
        split_mode: a.distributed.split_mode.clone(),
        device: a.distributed.device.clone(),
        tensor_split: a.distributed.tensor_split.clone(),
        distributed_executor_backend: a.distributed.distributed_executor_backend.clone(),
        pipeline_parallel_size: a.distributed.pipeline_parallel_size,
        ray_address: a.distributed.ray_address.clone(),
        verbose: a.verbose,
        mock_ttft_ms: a.mock_ttft_ms,
        mock_itl_ms: a.mock_itl_ms,
        mock_chunk: a.mock_chunk,
        mock_fail_every: a.mock_fail_every,
        mock_reasoning_tokens: a.mock_reasoning_tokens,
    }
}

/// Exit code of a run the user interrupted with Ctrl-C (as a shell reports SIGINT); SIGTERM
/// gives 143 ([`crate::signals`]).
pub const EXIT_INTERRUPTED: u8 = crate::signals::EXIT_SIGINT;

fn results_key(runs: &EngineRuns, sweep: bool) -> String {
    if sweep {
        format!("{}@{}", runs.info.key, sweep_label(&runs.sweep))
    } else {
        runs.info.key.clone()
    }
}

fn run_config(args: &RunArgs, plan: &Plan) -> RunConfig {
    RunConfig {
        warmup_runs: plan.suite.warmup,
        measurement_runs: plan.suite.runs,
        prompt: Some(args.prompt.clone()),
        prompt_file: args.prompt_file.as_ref().map(|p| p.display().to_string()),
        prompt_mode: Some(if args.raw_prompt { "raw" } else { "chat" }.into()),
        chat_template: args.chat_template.clone(),
        max_tokens: args.max_tokens,
        ignore_eos: Some(plan.suite.sampling.ignore_eos),
        temperature: Some(plan.suite.sampling.temperature),
        seed: Some(plan.suite.sampling.seed),
        prefix_cache: Some(plan.suite.sampling.prefix_cache),
        command_line: crate::redact::command_line(std::env::args()),
    }
}

/// Says on stderr how many measured runs failed and why the first did, when some did.
fn warn_failed_runs(file: &ResultsFile) {
    for (key, e) in &file.results {
        let (failed, total, first) = e.prompts.values().fold((0, 0, None), |(f, t, first), p| {
            let err = p.runs.iter().find_map(|r| r.error.as_deref());
            (
                f + p.total_runs - p.successful_runs,
                t + p.total_runs,
                first.or(err),
            )
        });
        if failed > 0 && failed < total {
            eprintln!(
                "warning: {failed} of {total} measured runs of {key} failed (first: {})",
                first.unwrap_or("?")
            );
        }
    }
}

/// Runs a benchmark as `args` describe; the results file is written even when the run is cut short.
pub fn run_benchmark(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if super::load::requested(args) {
        return super::load::run(args);
    }
    let plan = Plan::from_args(&run_options(args))?;
    let format: Format = args.format.into();
    let started = Local::now();
    let output = super::output::results_path(args, &started)?;
    let stop = StopFlag::new();
    crate::signals::install(&stop);
    let progress = Progress::new(!args.quiet);
    // llama.cpp ends the process when an RPC worker is lost mid-run: finished runs go to a journal.
    if crate::plan::uses_rpc(&plan) {
        crate::journal::open(&crate::journal::path_for(&output), &output)?;
    }

    let measured = match &plan.engine {
        EnginePlan::LlamaCpp(combos) => run_llamacpp(combos, &plan, &stop, &progress),
        EnginePlan::Mock(settings) => {
            let mut watch = GpuWatch::new(0);
            let mut engine = MockEngine::new(settings.clone());
            measure_one(&mut engine, &mut watch, &plan, &stop, &progress)
                .map(|(runs, end)| Measured::runs(vec![runs], end))
        }
        EnginePlan::Http(targets) => run_http(targets, &plan, &stop, &progress),
        EnginePlan::CompareHttp {
            settings,
            llama_server,
        } => {
            crate::compare_http::measure(settings, llama_server.as_deref(), &plan, &stop, &progress)
        }
        EnginePlan::Vllm(settings) => run_vllm(settings, &plan, &stop, &progress),
        EnginePlan::CompareHttpVllm(settings) => {
            crate::compare_http::measure_vllm(settings, &plan, &stop, &progress)
        }
    };
    progress.finish();
    let measured = match measured {
        // Stopped by Ctrl-C or SIGTERM before any run finished (during a model load, a server's
        // or vLLM's start): nothing to save, and the exit code says which signal it was.
        Err(e) if stop.is_raised() => {
            crate::journal::finish();
            eprintln!(
                "stopped before any run finished: {}",
                crate::redact::text(&format!("{e:#}"))
            );
            return Ok(ExitCode::from(crate::signals::exit_code()));
        }
        Err(e) => {
            crate::journal::finish();
            return Err(e);
        }
        Ok(m) => m,
    };

    let sweep = measured.runs.iter().any(|r| !r.sweep.is_empty());
    let incomplete_reason = match (&measured.end, &measured.fatal) {
        (SuiteEnd::Interrupted, _) if crate::signals::terminated() => {
            Some("terminated (SIGTERM)".to_string())
        }
        (SuiteEnd::Interrupted, _) => Some("interrupted by the user".to_string()),
        (_, Some(e)) => Some(crate::redact::text(&format!("{e:#}"))),
        _ => None,
    };
    let mut file = ResultsFile {
        schema_version: SCHEMA_VERSION,
        timestamp: started.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        scenario: args.scenario.clone(),
        config: run_config(args, &plan),
        results: measured
            .runs
            .iter()
            .map(|r| {
                let mut e = build::engine_result(r);
                // Every engine records the choice (an engine's own entry, if any, says how).
                e.settings
                    .entry("prefix_cache")
                    .or_insert(plan.suite.sampling.prefix_cache.into());
                (results_key(r, sweep), e)
            })
            .collect(),
        complete: incomplete_reason.is_none(),
        incomplete_reason,
        finished_at: Some(Local::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        tool: Some(system::tool_info()),
        system: Some(system::system_info()),
        http_comparison: measured.comparison,
    };
    let probe = args.roofline_probe && measured.end != SuiteEnd::Interrupted;
    let quiet = args.quiet;
    crate::roofline::annotate::annotate(
        &mut file,
        crate::roofline::annotate::Options { probe, quiet },
    );
    // The results are saved whatever happens to the intended path (see `output::save`).
    let saved = super::output::save(&output, &file)?;
    let (output, write_error) = (saved.path, saved.problem);
    // The results file holds every run now (or the command failed above, keeping the journal).
    crate::journal::finish();
    if !args.quiet {
        println!("{}", crate::report::render(&file, format));
        if let (Some(c), Format::Table) = (&file.http_comparison, format) {
            println!("{}", crate::report::http_comparison::render(c));
        }
    }
    warn_failed_runs(&file);
    eprintln!("results: {}", output.display());
    // A plot that cannot be written fails the command, after the results are safe on disk.
    let mut plot_error = None;
    if let Some(plot) = &args.plot {
        let files = std::slice::from_ref(&file);
        match crate::report::files::write_plot(plot, std::slice::from_ref(&output), files) {
            Ok(()) => eprintln!("plot: {}", plot.display()),
            Err(e) => plot_error = Some(e),
        }
    }
    if measured.fatal.is_some() || measured.end == SuiteEnd::Interrupted || write_error.is_some() {
        if let Some(e) = plot_error.take() {
            eprintln!("warning: {e:#}");
        }
    }

    if let Some(e) = write_error {
        bail!(e);
    }
    if let Some(e) = measured.fatal {
        return Err(e.context(format!(
            "the run stopped early; what finished is in {}",
            output.display()
        )));
    }
    if measured.end == SuiteEnd::Interrupted {
        return Ok(ExitCode::from(crate::signals::exit_code()));
    }
    let (ok, total) = file
        .results
        .values()
        .flat_map(|e| e.prompts.values())
        .fold((0, 0), |(o, t), p| {
            (o + p.successful_runs, t + p.total_runs)
        });
    if ok == 0 {
        let first = file
            .results
            .values()
            .flat_map(|e| e.prompts.values())
            .flat_map(|p| p.runs.iter())
            .find_map(|r| r.error.clone())
            .unwrap_or_default();
        bail!(
            "all {total} measured runs failed (first: {first}); see {}",
            output.display()
        );
    }
    if let Some(e) = plot_error {
        return Err(e);
    }
    Ok(ExitCode::SUCCESS)
}
