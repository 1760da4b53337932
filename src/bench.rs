//! The benchmark command: plan, load engines, run the suite, write results, print the report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::Local;

use crate::cli::RunArgs;
use crate::engine::http::{HttpEngine, HttpSettings};
use crate::engine::llamacpp::{LlamaCppEngine, LlamaCppSettings};
use crate::engine::mock::MockEngine;
use crate::engine::vllm::VllmSettings;
use crate::engine::Engine;
use crate::engine::VllmEngine;
use crate::measure::StopFlag;
use crate::plan::{sweep_label, Combination, EnginePlan, Plan};
use crate::progress::Progress;
use crate::results::http_comparison::HttpComparison;
use crate::results::schema::RunConfig;
use crate::results::{build, write, ResultsFile, SCHEMA_VERSION};
use crate::suite::{self, EngineRuns, SuiteEnd};
use crate::telemetry::gpu::GpuWatch;
use crate::telemetry::system;

/// Exit code of a run the user interrupted with Ctrl-C (as a shell reports SIGINT); SIGTERM
/// gives 143 ([`crate::signals`]).
pub const EXIT_INTERRUPTED: u8 = crate::signals::EXIT_SIGINT;

/// What a set of engine runs came to.
struct Measured {
    runs: Vec<EngineRuns>,
    end: SuiteEnd,
    /// An error that stopped the run after some work was done.
    fatal: Option<anyhow::Error>,
    /// In-process against HTTP (`--compare-http`).
    comparison: Option<HttpComparison>,
}

/// Runs one engine over the plan's prompts, with GPU telemetry around its load and runs.
fn measure_one(
    engine: &mut dyn Engine,
    watch: &mut GpuWatch,
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<(EngineRuns, SuiteEnd)> {
    let mut engines = [engine];
    let prepared = suite::prepare_all(&mut engines, &plan.prompts, &plan.suite.mode)?;
    let watching = gpu_watch_on();
    if watching {
        watch.start_runs();
    }
    let (mut runs, end) = suite::run(&mut engines, prepared, &plan.suite, stop, progress);
    let mut one = runs.pop().context("the suite returned no engine")?;
    // The watch samples from before the first warm-up run, so their tokens count too.
    let tokens: u64 = one
        .prompts
        .iter()
        .map(|p| {
            p.warmup_tokens
                + p.runs
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .map(|(m, _)| m.tokens_generated)
                    .sum::<u64>()
        })
        .sum();
    let mut gpu = watch.finish_runs(tokens);
    if !watching {
        let off = format!("{GPU_WATCH_VAR}=off: nothing was sampled during the runs");
        gpu.note = Some(gpu.note.map_or(off.clone(), |n| format!("{n}; {off}")));
    }
    one.gpu = Some(gpu);
    Ok((one, end))
}

/// Setting this variable to `off` keeps the GPU watch's sampling thread from running during the
/// runs (for `scripts/bench-observer-cost.sh`, which measures what the thread costs).
pub const GPU_WATCH_VAR: &str = "INPROC_BENCH_GPU_WATCH";

fn gpu_watch_on() -> bool {
    std::env::var(GPU_WATCH_VAR).map_or(true, |v| v != "off")
}

fn run_llamacpp(
    combos: &[Combination<LlamaCppSettings>],
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    let mut out = Measured {
        runs: Vec::new(),
        end: SuiteEnd::Complete,
        fatal: None,
        comparison: None,
    };
    let mut engine: Option<LlamaCppEngine> = None;
    for combo in combos {
        let mut watch = GpuWatch::new(0);
        let label = sweep_label(&combo.sweep);
        progress.status(&format!(
            "loading {} {label}",
            combo.settings.model.display()
        ));
        let loaded = match engine.take() {
            Some(e) if e.reuses_model(&combo.settings) => e.reconfigure(combo.settings.clone()),
            previous => {
                drop(previous);
                watch.before_load();
                LlamaCppEngine::load(combo.settings.clone())
            }
        };
        let mut e = match loaded {
            Ok(e) => e,
            Err(err) if out.runs.is_empty() => return Err(err.into()),
            Err(err) => {
                out.fatal = Some(anyhow::Error::new(err).context(format!("combination {label}")));
                return Ok(out);
            }
        };
        watch.after_load();
        if let Some(w) = e.offload_warning() {
            progress.println(&w);
        }
        match measure_one(&mut e, &mut watch, plan, stop, progress) {
            Ok((mut runs, end)) => {
                runs.sweep = combo.sweep.clone();
                out.runs.push(runs);
                if end == SuiteEnd::Interrupted {
                    out.end = end;
                    return Ok(out);
                }
            }
            Err(err) if out.runs.is_empty() => return Err(err),
            Err(err) => {
                out.fatal = Some(err);
                return Ok(out);
            }
        }
        engine = Some(e);
    }
    Ok(out)
}

fn run_vllm(
    settings: &VllmSettings,
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    let mut watch = GpuWatch::new(0);
    progress.status(&format!(
        "loading vLLM and {} (a first start takes a minute)",
        settings.model.display()
    ));
    watch.before_load();
    let mut engine = VllmEngine::load(settings.clone())?;
    watch.after_load();
    let (runs, end) = measure_one(&mut engine, &mut watch, plan, stop, progress)?;
    Ok(Measured {
        runs: vec![runs],
        end,
        fatal: None,
        comparison: None,
    })
}

/// Connects to every server first (so a wrong URL fails before any run), then runs them
/// interleaved run by run.
fn run_http(
    targets: &[HttpSettings],
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    let mut engines = Vec::new();
    for t in targets {
        progress.status(&format!("connecting to {}", crate::redact::text(&t.url)));
        engines.push(HttpEngine::connect(t.clone())?);
    }
    let mut dyns: Vec<&mut dyn Engine> = engines.iter_mut().map(|e| e as &mut dyn Engine).collect();
    let prepared = suite::prepare_all(&mut dyns, &plan.prompts, &plan.suite.mode)?;
    let (runs, end) = suite::run(&mut dyns, prepared, &plan.suite, stop, progress);
    Ok(Measured {
        runs,
        end,
        fatal: None,
        comparison: None,
    })
}

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
    if crate::load::requested(args) {
        return crate::load::run(args);
    }
    let plan = Plan::from_args(args)?;
    let started = Local::now();
    let output: PathBuf = match &args.output {
        Some(p) => p.clone(),
        None => write::default_path(
            &args.results_dir,
            &args.scenario,
            &started.format("%Y%m%d_%H%M%S").to_string(),
        ),
    };
    write::check_writable(&output)?;
    if let Some(plot) = &args.plot {
        write::check_writable(plot)?;
    }
    let stop = StopFlag::new();
    crate::signals::install(&stop);
    let progress = Progress::new(!args.quiet);

    let measured = match &plan.engine {
        EnginePlan::LlamaCpp(combos) => run_llamacpp(combos, &plan, &stop, &progress),
        EnginePlan::Mock(settings) => {
            let mut watch = GpuWatch::new(0);
            let mut engine = MockEngine::new(settings.clone());
            measure_one(&mut engine, &mut watch, &plan, &stop, &progress).map(|(runs, end)| {
                Measured {
                    runs: vec![runs],
                    end,
                    fatal: None,
                    comparison: None,
                }
            })
        }
        EnginePlan::Http(targets) => run_http(targets, &plan, &stop, &progress),
        EnginePlan::CompareHttp {
            settings,
            llama_server,
        } => {
            crate::compare_http::measure(settings, llama_server.as_deref(), &plan, &stop, &progress)
                .map(|c| Measured {
                    runs: c.runs,
                    end: c.end,
                    fatal: c.fatal,
                    comparison: c.comparison,
                })
        }
        EnginePlan::Vllm(settings) => run_vllm(settings, &plan, &stop, &progress),
        EnginePlan::CompareHttpVllm(settings) => {
            crate::compare_http::measure_vllm(settings, &plan, &stop, &progress).map(|c| Measured {
                runs: c.runs,
                end: c.end,
                fatal: c.fatal,
                comparison: c.comparison,
            })
        }
    };
    progress.finish();
    let measured = match measured {
        // Stopped by Ctrl-C or SIGTERM before any run finished (during a model load, a server's
        // or vLLM's start): nothing to save, and the exit code says which signal it was.
        Err(e) if stop.is_raised() => {
            eprintln!(
                "stopped before any run finished: {}",
                crate::redact::text(&format!("{e:#}"))
            );
            return Ok(ExitCode::from(crate::signals::exit_code()));
        }
        other => other?,
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
    // A file that appeared at the output path during the run is never overwritten: the runs go
    // next to it. A results directory that went away or turned unwritable during the runs does not
    // lose them either: they go to a fallback file. Either way the command fails saying where.
    let (output, write_error) = match write::write_atomic(&output, &file) {
        Ok(()) => (output, None),
        Err(write::WriteError::Exists(_)) => {
            let next = write::unused_sibling(&output);
            write::write_atomic(&next, &file)?;
            let msg = format!(
                "{} appeared during the run and was not overwritten; the results are in {}",
                output.display(),
                next.display()
            );
            (next, Some(msg))
        }
        Err(e) => {
            let fallback = write::fallback_path(&output);
            match write::write_atomic(&fallback, &file) {
                Ok(()) => {
                    let msg = format!("{e}; the runs were saved to {} instead", fallback.display());
                    (fallback, Some(msg))
                }
                Err(e2) => bail!(
                    "{e}; the fallback file {} could not be written either ({e2})",
                    fallback.display()
                ),
            }
        }
    };
    if !args.quiet {
        println!("{}", crate::report::render(&file, args.format));
        if let (Some(c), crate::cli::Format::Table) = (&file.http_comparison, args.format) {
            println!("{}", crate::compare_http::render(c));
        }
    }
    warn_failed_runs(&file);
    eprintln!("results: {}", output.display());
    // A plot that cannot be written fails the command, after the results are safe on disk.
    let mut plot_error = None;
    if let Some(plot) = &args.plot {
        let files = std::slice::from_ref(&file);
        match crate::report::command::write_plot(plot, std::slice::from_ref(&output), files) {
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
