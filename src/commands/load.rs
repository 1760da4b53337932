//! `inproc-bench run` with `--concurrency` or `--request-rate`: the load levels run on the engine's
//! multi-stream side, written as a results file with a `load` section (docs/load.md).

use std::process::ExitCode;

use anyhow::bail;
use chrono::Local;
use indexmap::IndexMap;

use super::run::run_options;
use crate::cli::RunArgs;
use crate::load::shape::{Bound, Level, LoadShape};
use crate::load::{
    bound_label, load_engine, plan, runner, target, workload, LoadOptions, LoadPlan,
};
use crate::measure::load::summarize;
use crate::measure::StopFlag;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::results::load::{LevelResult, LoadFile, LoadSection};
use crate::results::schema::RunConfig;
use crate::results::{write, ResultsFile, SCHEMA_VERSION};
use crate::telemetry::system;

/// Whether the flags ask for a load run (a closed or an open loop).
pub fn requested(a: &RunArgs) -> bool {
    a.load.concurrency.is_some() || a.load.request_rate.is_some()
}

/// The load flags as the load plan takes them.
pub fn load_options(a: &RunArgs) -> LoadOptions {
    LoadOptions {
        concurrency: a.load.concurrency.clone(),
        request_rate: a.load.request_rate.clone(),
        burstiness: a.load.burstiness,
        max_concurrency: a.load.max_concurrency,
        requests: a.load.requests,
        duration: a.load.duration,
        input_tokens: a.load.input_tokens,
        output_tokens: a.load.output_tokens,
        length_spread: a.load.length_spread,
        shared_prefix: a.load.shared_prefix,
        slo: a.load.slo.clone(),
        load_seed: a.load.load_seed,
        max_tokens: a.max_tokens,
        seed: a.seed,
    }
}

/// Runs the load levels the flags ask for and writes their results; the file is written even
/// when Ctrl-C cuts a level short (the finished requests are kept).
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if args.compare_http {
        return super::load_compare::run(args);
    }
    if super::load_http::applies(args) {
        return super::load_http::run(args);
    }
    let lp = LoadPlan::from_args(&load_options(args))?;
    let options = run_options(args);
    let plan = Plan::from_args(&options)?;
    let target = target(&options, &plan, &lp)?;
    let started = Local::now();
    let output = super::output::results_path(args, &started)?;
    let stop = StopFlag::new();
    crate::signals::install(&stop);
    let progress = Progress::new(!args.quiet);
    progress.status("loading the engine");
    let mut engine = match load_engine(&target, lp.streams()) {
        Ok(e) => e,
        Err(_) if stop.is_raised() => {
            progress.finish();
            eprintln!("stopped before any request finished");
            return Ok(ExitCode::from(crate::signals::exit_code()));
        }
        Err(e) => return Err(e.into()),
    };
    let workload = workload(engine.as_mut(), &lp, &plan)?;
    let need = workload.max_need();
    if need > engine.tokens_per_stream() {
        bail!(
            "a request needs up to {need} tokens but each of the engine's {} streams holds {}: raise --ctx-size (llama.cpp) or --max-model-len (vLLM), or lower the lengths or the concurrency",
            engine.max_streams(),
            engine.tokens_per_stream()
        );
    }
    let info = engine.info();
    let sampling = &plan.suite.sampling;
    if args.warmup > 0 && !stop.is_raised() {
        progress.status(&format!("warm-up: {} requests", args.warmup));
        let first = lp.levels[0];
        let warm = LoadShape {
            level: Level::Concurrency(first.streams().unwrap_or(plan::DEFAULT_OPEN_LOOP_STREAMS)),
            bound: Bound::Requests(args.warmup),
            ..first
        };
        runner::run_level(engine.as_mut(), &warm, &workload, sampling, &stop);
    }
    let mut levels = IndexMap::new();
    let mut interrupted = stop.is_raised();
    let mut engine_error = None;
    let mut skipped = Vec::new();
    let mut saturated_at: Option<f64> = None;
    for shape in &lp.levels {
        if interrupted {
            break;
        }
        // Past a saturated rate, a higher one only lengthens the queue: the sweep stops there.
        if let (Level::Rate(r), Some(at)) = (shape.level, saturated_at) {
            if r >= at {
                progress.println(&format!(
                    "skipping {}: the level at request_rate={at} was saturated",
                    shape.level.label()
                ));
                skipped.push(shape.level.label());
                continue;
            }
        }
        let label = shape.level.label();
        progress.status(&format!("{} {label}", info.key));
        let run = runner::run_level(engine.as_mut(), shape, &workload, sampling, &stop);
        let rate = match shape.level {
            Level::Rate(r) => Some(r),
            Level::Concurrency(_) => None,
        };
        let summary = summarize(&run.samples, rate.filter(|r| r.is_finite()), lp.slo);
        if let (true, Some(r)) = (summary.saturated, rate) {
            saturated_at = Some(saturated_at.map_or(r, |a| a.min(r)));
        }
        let mut settings = info.settings.clone();
        settings.insert(
            "streams_in_flight_max".into(),
            runner::stream_limit(engine.as_ref(), shape).into(),
        );
        let incomplete_reason = if run.interrupted {
            Some("interrupted by the user".to_string())
        } else {
            run.engine_error.clone()
        };
        levels.insert(
            format!("{}@{label}", info.key),
            LevelResult {
                engine: info.key.clone(),
                version: format!("{} {}", info.name, info.version),
                model: info.model.clone(),
                settings,
                load_ms: info.load_ms,
                level: label,
                concurrency: match shape.level {
                    Level::Concurrency(n) => Some(n),
                    Level::Rate(_) => None,
                },
                request_rate: rate,
                bound: bound_label(&shape.bound),
                complete: incomplete_reason.is_none(),
                incomplete_reason,
                summary,
                requests: run.samples,
                http: None,
            },
        );
        interrupted |= run.interrupted;
        if run.engine_error.is_some() {
            engine_error = run.engine_error;
            break;
        }
    }
    progress.finish();
    drop(engine);

    let incomplete_reason = if interrupted && crate::signals::terminated() {
        Some("terminated (SIGTERM)".to_string())
    } else if interrupted {
        Some("interrupted by the user".to_string())
    } else {
        engine_error.clone()
    };
    let file = LoadFile {
        base: ResultsFile {
            schema_version: SCHEMA_VERSION,
            timestamp: started.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            scenario: args.scenario.clone(),
            config: RunConfig {
                warmup_runs: args.warmup,
                measurement_runs: 1,
                prompt: lp.synthetic.is_none().then(|| args.prompt.clone()),
                prompt_file: args.prompt_file.as_ref().map(|p| p.display().to_string()),
                prompt_mode: Some(if args.raw_prompt { "raw" } else { "chat" }.into()),
                chat_template: args.chat_template.clone(),
                max_tokens: args.max_tokens,
                ignore_eos: Some(sampling.ignore_eos),
                temperature: Some(sampling.temperature),
                seed: Some(sampling.seed),
                prefix_cache: Some(sampling.prefix_cache),
                command_line: crate::redact::command_line(std::env::args()),
            },
            results: IndexMap::new(),
            complete: incomplete_reason.is_none(),
            incomplete_reason,
            finished_at: Some(Local::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
            tool: Some(system::tool_info()),
            system: Some(system::system_info()),
            http_comparison: None,
        },
        load: LoadSection {
            workload: workload.describe(),
            seed: lp.seed,
            burstiness: args.load.burstiness,
            max_concurrency: args.load.max_concurrency,
            slo: lp.slo,
            warmup_requests: args.warmup,
            levels,
            skipped,
            http_comparison: Vec::new(),
        },
    };
    let saved = super::output::save(&output, &file)?;
    let output = saved.path;
    if !args.quiet {
        println!("{}", crate::report::load::render(&file, args.format.into()));
    }
    eprintln!("results: {}", output.display());
    if let Some(plot) = &args.plot {
        match write::write_text_atomic(plot, &crate::report::load_plot::svg(&file)) {
            Ok(()) => eprintln!("plot: {}", plot.display()),
            Err(e) => eprintln!("warning: the plot {} was not written: {e}", plot.display()),
        }
    }
    if let Some(problem) = saved.problem {
        bail!(problem);
    }
    if let Some(e) = engine_error {
        bail!(
            "the load run stopped early ({e}); what finished is in {}",
            output.display()
        );
    }
    if interrupted {
        return Ok(ExitCode::from(crate::signals::exit_code()));
    }
    let completed: u64 = file.load.levels.values().map(|l| l.summary.completed).sum();
    if completed == 0 {
        let first = file
            .load
            .levels
            .values()
            .flat_map(|l| l.requests.iter())
            .find_map(|r| r.error.clone())
            .unwrap_or_default();
        bail!(
            "every request failed (first: {first}); see {}",
            output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
