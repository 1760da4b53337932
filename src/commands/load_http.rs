//! `inproc-bench run --engine http --url …` (or `--backend vllm|llamacpp|both`) with `--concurrency`
//! or `--request-rate`: the in-process load levels over HTTP, the same seeded arrivals and the same
//! token-id requests (a prompt set tokenized by the server once), written as a load results file
//! (docs/load.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::Local;
use indexmap::IndexMap;
use serde_json::json;

use super::load::load_options;
use super::run::run_options;
use crate::cli::{EngineArg, RunArgs};
use crate::engine::http::tokenize;
use crate::engine::http::HttpEngine;
use crate::engine::Engine;
use crate::load::http::{prompt_workload, run_level, stream_limit, HttpLevelRun};
use crate::load::shape::{Bound, Level, LoadShape};
use crate::load::workload::Workload;
use crate::load::{bound_label, LoadPlan};
use crate::measure::load::{summarize, RequestSample};
use crate::measure::{StopFlag, Summary};
use crate::plan::{EnginePlan, Plan};
use crate::progress::Progress;
use crate::results::load::{LevelResult, LoadFile, LoadSection};
use crate::results::load_http::{HttpLevel, HttpRequest, LevelComparison};
use crate::results::schema::RunConfig;
use crate::results::{write, ResultsFile, SCHEMA_VERSION};
use crate::telemetry::system;

/// The client's lag p99 (scheduled against actual send time) above which a level is flagged.
pub const SEND_LAG_THRESHOLD_MS: f64 = 5.0;

/// Failed requests printed one line each, per level; the rest are counted.
const FAILURES_SHOWN: usize = 20;

/// Whether the load flags go to a server: `--engine http` or `--backend`, without `--compare-http`.
pub fn applies(a: &RunArgs) -> bool {
    !a.compare_http && (a.engine == EngineArg::Http || a.backend.is_some())
}

/// How synthetic requests' token ids are made.
pub const SYNTHETIC_IDS: &str = "seeded random ids";

/// The workload's description, with how its token ids were made when they came from prompts.
pub fn describe(workload: &Workload, prompt_ids: &str) -> String {
    match workload {
        Workload::Prompts(_) => format!("{} (token ids: {prompt_ids})", workload.describe()),
        Workload::Synthetic { .. } => workload.describe(),
    }
}

/// One line per failed request of level `key` (the first [`FAILURES_SHOWN`]), then a count.
pub fn report_failures(progress: &Progress, key: &str, samples: &[RequestSample]) {
    let failed: Vec<_> = samples
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| (s.index, e)))
        .collect();
    for (i, e) in failed.iter().take(FAILURES_SHOWN) {
        progress.println(&format!("{key}: request {i} failed: {e}"));
    }
    if failed.len() > FAILURES_SHOWN {
        progress.println(&format!(
            "{key}: {} more requests failed (see the results file)",
            failed.len() - FAILURES_SHOWN
        ));
    }
}

/// What ended a run whose server could not be reached any more.
pub fn unreachable(cause: &str) -> String {
    format!("the server became unreachable ({cause})")
}

/// The HTTP figures of one level: the client's lag and the server's own timings per request.
pub fn http_level(run: &HttpLevelRun) -> HttpLevel {
    let requests: Vec<HttpRequest> = run
        .run
        .samples
        .iter()
        .map(|s| {
            let t = run
                .server
                .get(s.index)
                .cloned()
                .flatten()
                .unwrap_or_default();
            HttpRequest {
                index: s.index,
                send_lag_ms: s
                    .queue_wait_ms
                    .filter(|_| run.unqueued.get(s.index).copied().unwrap_or(false)),
                server_prompt_ms: t.prompt_ms,
                server_predicted_ms: t.predicted_ms,
                server_prompt_n: t.prompt_n,
                server_predicted_n: t.predicted_n,
                usage_tokens: t.usage_tokens,
                counted_tokens: t.counted_tokens,
                count_source: t.count_source,
            }
        })
        .collect();
    let lags: Vec<f64> = requests.iter().filter_map(|r| r.send_lag_ms).collect();
    let send_lag_ms = Summary::of(&lags);
    let lag_warning = send_lag_ms
        .as_ref()
        .filter(|s| s.p99 > SEND_LAG_THRESHOLD_MS)
        .map(|s| {
            format!(
                "the client sent requests late: send lag p99 {:.2} ms (max {:.2} ms) is above {SEND_LAG_THRESHOLD_MS} ms, so the client may be the bottleneck at this level: lower the load or give the tool a core of its own",
                s.p99, s.max
            )
        });
    HttpLevel {
        endpoint: "/v1/completions".into(),
        send_lag_ms,
        send_lag_threshold_ms: SEND_LAG_THRESHOLD_MS,
        lag_warning,
        requests,
    }
}

/// Runs the load levels against the server(s) and writes their results; the file is written even
/// when Ctrl-C cuts a level short or the server dies (the finished requests are kept).
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let lp = LoadPlan::from_args(&load_options(args))?;
    let options = run_options(args);
    let plan = Plan::from_args(&options)?;
    let EnginePlan::Http(targets) = &plan.engine else {
        bail!("--concurrency/--request-rate over HTTP: pass --engine http --url URL or --backend vllm|llamacpp|both");
    };
    let started = Local::now();
    let output = output_path(args, &started)?;
    let stop = StopFlag::new();
    crate::signals::install(&stop);
    let progress = Progress::new(!args.quiet);
    let sampling = &plan.suite.sampling;
    let mut levels = IndexMap::new();
    let mut interrupted = stop.is_raised();
    let mut engine_error = None;
    let mut workload_text = String::new();
    let mut salt = 0u64;
    for target in targets {
        if interrupted || engine_error.is_some() {
            break;
        }
        progress.status(&format!("connecting to {}", target.url));
        let engine = crate::measure::time_load(|_| HttpEngine::connect(target.clone()))?;
        let (workload, prompt_ids) = match lp.synthetic {
            Some(s) => (
                Workload::synthetic(s, engine.vocab_size()?, lp.seed),
                SYNTHETIC_IDS,
            ),
            None => {
                progress.status(&format!("{}: tokenizing the prompts", target.key));
                let mode = &plan.suite.mode;
                (
                    prompt_workload(&engine, &plan.prompts, mode)?,
                    tokenize::method(engine.flavor(), mode),
                )
            }
        };
        workload_text = describe(&workload, prompt_ids);
        let info = engine.info();
        if args.warmup > 0 && !stop.is_raised() {
            progress.status(&format!("{}: warm-up, {} requests", info.key, args.warmup));
            let first = lp.levels[0];
            let warm = LoadShape {
                level: Level::Concurrency(first.streams().unwrap_or(1)),
                bound: Bound::Requests(args.warmup),
                ..first
            };
            run_level(&engine, &warm, &workload, sampling, &stop, salt);
            salt += u64::from(args.warmup);
        }
        let mut saturated_at: Option<f64> = None;
        for shape in &lp.levels {
            if stop.is_raised() {
                interrupted = true;
                break;
            }
            if let (Level::Rate(r), Some(at)) = (shape.level, saturated_at) {
                if r >= at {
                    progress.println(&format!(
                        "skipping {}@{}: the level at request_rate={at} was saturated",
                        info.key,
                        shape.level.label()
                    ));
                    continue;
                }
            }
            let label = shape.level.label();
            progress.status(&format!("{} {label}", info.key));
            let run = run_level(&engine, shape, &workload, sampling, &stop, salt);
            salt += run.run.samples.len() as u64;
            let rate = match shape.level {
                Level::Rate(r) => Some(r),
                Level::Concurrency(_) => None,
            };
            let summary = summarize(&run.run.samples, rate.filter(|r| r.is_finite()), lp.slo);
            if let (true, Some(r)) = (summary.saturated, rate) {
                saturated_at = Some(saturated_at.map_or(r, |a| a.min(r)));
            }
            report_failures(
                &progress,
                &format!("{}@{label}", info.key),
                &run.run.samples,
            );
            let http = http_level(&run);
            if let Some(w) = &http.lag_warning {
                progress.println(&format!("warning: {}@{label}: {w}", info.key));
            }
            let mut settings = info.settings.clone();
            settings.insert("endpoint".into(), json!("/v1/completions"));
            settings.insert("prompt".into(), json!("token ids"));
            settings.insert("prompt_ids".into(), json!(prompt_ids));
            let limit = stream_limit(shape);
            settings.insert(
                "streams_in_flight_max".into(),
                if limit == usize::MAX {
                    json!(null)
                } else {
                    json!(limit)
                },
            );
            let incomplete_reason = if run.run.interrupted {
                Some("interrupted by the user".to_string())
            } else {
                run.run.engine_error.clone()
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
                    requests: run.run.samples,
                    http: Some(http),
                },
            );
            interrupted |= run.run.interrupted;
            if let Some(e) = run.run.engine_error {
                engine_error = Some(unreachable(&e));
                break;
            }
        }
    }
    progress.finish();
    write_results(
        args,
        &lp,
        Finished {
            workload: workload_text,
            levels,
            comparison: Vec::new(),
            started,
            output,
            interrupted,
            engine_error,
        },
    )
}

/// What a load run over HTTP (or a comparison) came to, for the results file.
pub struct Finished {
    /// The workload's description.
    pub workload: String,
    /// Every level measured.
    pub levels: IndexMap<String, LevelResult>,
    /// `--compare-http`: the levels side by side.
    pub comparison: Vec<LevelComparison>,
    /// When the run started.
    pub started: chrono::DateTime<Local>,
    /// The results file.
    pub output: PathBuf,
    /// Ctrl-C or SIGTERM.
    pub interrupted: bool,
    /// What ended the run early.
    pub engine_error: Option<String>,
}

/// The results file named by `--output`, else a new one in `--results-dir`, checked writable (and
/// the plot's path).
pub fn output_path(args: &RunArgs, started: &chrono::DateTime<Local>) -> anyhow::Result<PathBuf> {
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
    Ok(output)
}

/// Writes the load file, prints the report and the plot, and says how the run ended.
pub fn write_results(args: &RunArgs, lp: &LoadPlan, f: Finished) -> anyhow::Result<ExitCode> {
    let Finished {
        workload,
        levels,
        comparison,
        started,
        output,
        interrupted,
        engine_error,
    } = f;
    let plan = Plan::from_args(&run_options(args))?;
    let sampling = &plan.suite.sampling;
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
                prompt_file: lp
                    .synthetic
                    .is_none()
                    .then(|| args.prompt_file.as_ref().map(|p| p.display().to_string()))
                    .flatten(),
                prompt_mode: Some("token ids".into()),
                chat_template: None,
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
            workload,
            seed: lp.seed,
            burstiness: args.load.burstiness,
            max_concurrency: args.load.max_concurrency,
            slo: lp.slo,
            warmup_requests: args.warmup,
            levels,
            skipped: Vec::new(),
            http_comparison: comparison,
        },
    };
    let mut text = serde_json::to_string_pretty(&file).context("cannot encode the results")?;
    text.push('\n');
    let output = match write::write_text_atomic(&output, &text) {
        Err(write::WriteError::Exists(_)) => {
            let next = write::unused_sibling(&output);
            write::write_text_atomic(&next, &text)?;
            next
        }
        other => other.map(|()| output)?,
    };
    if !args.quiet {
        println!("{}", crate::report::load::render(&file, args.format.into()));
        if !file.load.http_comparison.is_empty() {
            println!(
                "{}",
                crate::report::load_http::render(&file.load.http_comparison)
            );
        }
    }
    eprintln!("results: {}", output.display());
    if let Some(plot) = &args.plot {
        match write::write_text_atomic(plot, &crate::report::load_plot::svg(&file)) {
            Ok(()) => eprintln!("plot: {}", plot.display()),
            Err(e) => eprintln!("warning: the plot {} was not written: {e}", plot.display()),
        }
    }
    if let Some(e) = engine_error {
        bail!(
            "the load run stopped early: {e}; what finished is in {}",
            output.display()
        );
    }
    if interrupted {
        return Ok(ExitCode::from(crate::signals::exit_code()));
    }
    if file.load.levels.values().all(|l| l.summary.completed == 0) {
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
