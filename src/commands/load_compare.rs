//! `inproc-bench run --compare-http` with `--concurrency` or `--request-rate`: every load level
//! in-process and against the same engine served over HTTP (llama-server started per level with a
//! parallel slot per stream, or one `vllm serve` with the in-process engine arguments), the same
//! arrivals and token ids on both sides (a prompt set tokenized in-process), and the per-level
//! difference of each metric. Whatever ends the run early (Ctrl-C, a server that does not start
//! or dies) the finished levels are written.

use std::process::ExitCode;

use anyhow::bail;
use chrono::Local;
use indexmap::IndexMap;
use serde_json::json;

use super::load::load_options;
use super::load_http::{
    describe, http_level, output_path, report_failures, write_results, Finished, SYNTHETIC_IDS,
};
use super::run::run_options;
use crate::cli::RunArgs;
use crate::compare_http::load::{differences, llama_server_launch};
use crate::compare_http::{llama_server, vllm_serve, HTTP_KEY, VLLM_HTTP_KEY};
use crate::engine::http::{Api, Flavor, HttpEngine, HttpSettings};
use crate::engine::{Engine, EngineInfo, Sampling};
use crate::load::runner::{self, LevelRun};
use crate::load::shape::{Bound, Level, LoadShape};
use crate::load::{bound_label, load_engine, target, LoadPlan, Target};
use crate::measure::load::summarize;
use crate::measure::{self, StopFlag};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::results::load::LevelResult;
use crate::results::load_http::{HttpLevel, LevelComparison};
use crate::server::{Launch, ServerProcess};

/// How a prompt set's token ids are made under `--compare-http`.
const INPROCESS_IDS: &str = "the in-process engine's template and tokenizer, sent to both sides";

/// One level's results entry.
fn entry(
    info: &EngineInfo,
    shape: &LoadShape,
    run: LevelRun,
    extra: &[(&str, serde_json::Value)],
    slo: Option<crate::measure::load::Slo>,
    http: Option<HttpLevel>,
) -> LevelResult {
    let rate = match shape.level {
        Level::Rate(r) => Some(r),
        Level::Concurrency(_) => None,
    };
    let mut settings = info.settings.clone();
    for (k, v) in extra {
        settings.insert((*k).into(), v.clone());
    }
    let incomplete_reason = if run.interrupted {
        Some("interrupted by the user".to_string())
    } else {
        run.engine_error.clone()
    };
    LevelResult {
        engine: info.key.clone(),
        version: format!("{} {}", info.name, info.version),
        model: info.model.clone(),
        settings,
        load_ms: info.load_ms,
        level: shape.level.label(),
        concurrency: match shape.level {
            Level::Concurrency(n) => Some(n),
            Level::Rate(_) => None,
        },
        request_rate: rate,
        bound: bound_label(&shape.bound),
        complete: incomplete_reason.is_none(),
        incomplete_reason,
        summary: summarize(&run.samples, rate.filter(|r| r.is_finite()), slo),
        requests: run.samples,
        http,
    }
}

/// Why a server for a level could not be had.
enum Fault {
    /// Ctrl-C (or SIGTERM) came while it was starting.
    Interrupted,
    /// It did not start, or did not answer once started.
    Failed(String),
}

/// Starts a server and connects to it: `key` names its results, `flavor` its request fields.
/// Nothing starts when the stop flag is already raised.
fn start_server(
    launch: &Launch,
    key: &str,
    flavor: Flavor,
    sampling: &Sampling,
    stop: &StopFlag,
) -> Result<HttpEngine, Fault> {
    let fault = |e: String| {
        if stop.is_raised() {
            Fault::Interrupted
        } else {
            Fault::Failed(e)
        }
    };
    let server = ServerProcess::launch(launch, stop).map_err(|e| fault(e.to_string()))?;
    eprintln!(
        "{} ready on {} (pid {}) after {:.0} ms",
        server.name(),
        server.url(),
        server.pid(),
        server.ready_ms()
    );
    let settings = HttpSettings {
        flavor: Some(flavor),
        inprocess_sampling: flavor == Flavor::LlamaServer,
        prefix_cache: sampling.prefix_cache,
        ..HttpSettings::new(key, server.url(), "--compare-http", Api::Completions)
    };
    measure::time_load(|_| HttpEngine::with_server(settings, server))
        .map_err(|e| fault(e.to_string()))
}

/// What the levels came to so far.
#[derive(Default)]
struct Tally {
    levels: IndexMap<String, LevelResult>,
    comparison: Vec<LevelComparison>,
    interrupted: bool,
    engine_error: Option<String>,
}

impl Tally {
    /// Takes a server fault in: Ctrl-C, or the error that ends the run.
    fn fault(&mut self, fault: Fault, what: &str) {
        match fault {
            Fault::Interrupted => self.interrupted = true,
            Fault::Failed(e) => self.engine_error = Some(format!("{what} failed: {e}")),
        }
    }

    /// Takes a side's run in: whether it was cut short, and the error that ended it.
    fn side(&mut self, run: &LevelRun, http: bool) {
        self.interrupted |= run.interrupted;
        if self.engine_error.is_none() {
            self.engine_error = run.engine_error.as_deref().map(|e| {
                if http {
                    super::load_http::unreachable(e)
                } else {
                    e.to_string()
                }
            });
        }
    }
}

/// Runs every level in-process and over HTTP and writes both with their differences. A level
/// whose first side is cut short (Ctrl-C, an engine or server failure) does not run its second
/// side; only levels whose two sides both completed are compared. The file is written whatever
/// ends the run: a server that fails to start, dies or is interrupted while starting included.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let lp = LoadPlan::from_args(&load_options(args))?;
    let mut options = run_options(args);
    options.compare_http = false;
    let plan = Plan::from_args(&options)?;
    let target = target(&options, &plan, &lp)?;
    if matches!(target, Target::Mock(_)) {
        bail!("--compare-http: the mock engine has no server; use --engine llamacpp or vllm");
    }
    let binary = match &target {
        Target::LlamaCpp(_) => Some(llama_server::find_binary(options.llama_server.as_deref())?),
        _ => None,
    };
    let started = Local::now();
    let output = output_path(args, &started)?;
    let stop = StopFlag::new();
    crate::signals::install(&stop);
    let progress = Progress::new(!args.quiet);
    let sampling = &plan.suite.sampling;
    progress.status("loading the engine");
    let mut engine = load_engine(&target, lp.streams())?;
    // A prompt set goes through the in-process engine's template and tokenizer: both sides get
    // the very same ids.
    let workload = crate::load::workload(engine.as_mut(), &lp, &plan)?;
    let prompt_ids = if lp.synthetic.is_some() {
        SYNTHETIC_IDS
    } else {
        INPROCESS_IDS
    };
    let need = workload.max_need();
    if need > engine.tokens_per_stream() {
        bail!(
            "a request needs up to {need} tokens but each of the engine's {} streams holds {}: raise --ctx-size (llama.cpp) or --max-model-len (vLLM), or lower the lengths or the concurrency",
            engine.max_streams(),
            engine.tokens_per_stream()
        );
    }
    let info = engine.info();
    let mut t = Tally::default();
    let vllm_http = match &target {
        Target::Vllm(s) => {
            progress.status("starting vllm serve (it loads the model again; a minute or more)");
            let env = crate::engine::vllm::find_python_env(s.python_env.as_deref())?;
            let launch = vllm_serve::serve_launch(s, &env, &info);
            match start_server(&launch, VLLM_HTTP_KEY, Flavor::Vllm, sampling, &stop) {
                Ok(h) => Some(h),
                Err(f) => {
                    t.fault(f, "vllm serve");
                    None
                }
            }
        }
        _ => None,
    };
    let first = lp.levels[0];
    let warm = |streams: usize| LoadShape {
        level: Level::Concurrency(u32::try_from(streams).unwrap_or(1)),
        bound: Bound::Requests(args.warmup),
        ..first
    };
    if args.warmup > 0 && !t.interrupted && t.engine_error.is_none() {
        progress.status(&format!("warm-up: {} requests", args.warmup));
        let w = warm(runner::stream_limit(engine.as_ref(), &first));
        runner::run_level(engine.as_mut(), &w, &workload, sampling, &stop);
    }
    let mut salt = 1u64 << 32;
    for (i, shape) in lp.levels.iter().enumerate() {
        if stop.is_raised() {
            t.interrupted = true;
        }
        if t.interrupted || t.engine_error.is_some() {
            break;
        }
        let label = shape.level.label();
        let streams = runner::stream_limit(engine.as_ref(), shape);
        let slots = u32::try_from(streams).unwrap_or(u32::MAX);
        let level_http = match (&target, &binary) {
            (Target::LlamaCpp(s), Some(bin)) => {
                progress.status(&format!("starting llama-server with {slots} slots"));
                let launch =
                    llama_server_launch(s, bin.clone(), slots, need, sampling.prefix_cache);
                match start_server(&launch, HTTP_KEY, Flavor::LlamaServer, sampling, &stop) {
                    Ok(h) => Some(h),
                    Err(f) => {
                        t.fault(f, &format!("llama-server for {label}"));
                        break;
                    }
                }
            }
            _ => None,
        };
        let Some(http) = level_http.as_ref().or(vllm_http.as_ref()) else {
            bail!("--compare-http: no server for {label}");
        };
        if args.warmup > 0 {
            crate::load::http::run_level(http, &warm(streams), &workload, sampling, &stop, salt);
            salt += u64::from(args.warmup);
        }
        let inproc_first = i % 2 == 0;
        let mut in_run: Option<LevelRun> = None;
        let mut http_run = None;
        for side in 0..2 {
            if stop.is_raised() {
                t.interrupted = true;
                break;
            }
            let cut = if (side == 0) == inproc_first {
                progress.status(&format!("{} {label} (in-process)", info.key));
                let r = runner::run_level(engine.as_mut(), shape, &workload, sampling, &stop);
                t.side(&r, false);
                in_run.insert(r).engine_error.is_some()
            } else {
                progress.status(&format!("{label} over HTTP"));
                let r = crate::load::http::run_level(http, shape, &workload, sampling, &stop, salt);
                salt += r.run.samples.len() as u64;
                t.side(&r.run, true);
                http_run.insert(r).run.engine_error.is_some()
            };
            if cut || t.interrupted {
                break;
            }
        }
        let http_info = http.info();
        let extra = [
            ("streams_in_flight_max", json!(streams)),
            ("prompt_ids", json!(prompt_ids)),
            ("endpoint", json!("/v1/completions")),
            ("prompt", json!("token ids")),
            (
                "server_args",
                http_info
                    .details
                    .get("server_args")
                    .cloned()
                    .unwrap_or_default(),
            ),
        ];
        let (in_key, http_key) = (
            format!("{}@{label}", info.key),
            format!("{}@{label}", http_info.key),
        );
        let whole = |r: &LevelRun| !r.interrupted && r.engine_error.is_none();
        if let (Some(a), Some(b)) = (&in_run, &http_run) {
            if whole(a) && whole(&b.run) {
                t.comparison.push(LevelComparison {
                    level: label.clone(),
                    inprocess: in_key.clone(),
                    http: http_key.clone(),
                    order: if inproc_first { "in-process" } else { "HTTP" }.into(),
                    server_streams: Some(slots),
                    metrics: differences(&a.samples, &b.run.samples, lp.seed ^ i as u64),
                });
            }
        }
        if let Some(a) = in_run {
            report_failures(&progress, &in_key, &a.samples);
            t.levels
                .insert(in_key, entry(&info, shape, a, &extra[..2], lp.slo, None));
        }
        if let Some(b) = http_run {
            report_failures(&progress, &http_key, &b.run.samples);
            let h = http_level(&b);
            if let Some(w) = &h.lag_warning {
                progress.println(&format!("warning: {http_key}: {w}"));
            }
            t.levels.insert(
                http_key,
                entry(&http_info, shape, b.run, &extra, lp.slo, Some(h)),
            );
        }
        drop(level_http);
    }
    progress.finish();
    drop(vllm_http);
    drop(engine);
    write_results(
        args,
        &lp,
        Finished {
            workload: describe(&workload, prompt_ids),
            levels: t.levels,
            comparison: t.comparison,
            started,
            output,
            interrupted: t.interrupted,
            engine_error: t.engine_error,
        },
    )
}
