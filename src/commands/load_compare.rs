//! `inproc-bench run --compare-http` with `--concurrency` or `--request-rate`: every load level
//! in-process and against the same engine served over HTTP (llama-server started per level with a
//! parallel slot per stream, or one `vllm serve` with the in-process engine arguments), the same
//! arrivals and token ids on both sides, and the per-level difference of each metric.

use std::process::ExitCode;

use anyhow::bail;
use chrono::Local;
use indexmap::IndexMap;
use serde_json::json;

use super::load::load_options;
use super::load_http::{http_level, output_path, write_results, Finished};
use super::run::run_options;
use crate::cli::RunArgs;
use crate::compare_http::load::{differences, llama_server_launch};
use crate::compare_http::{llama_server, vllm_serve, HTTP_KEY, VLLM_HTTP_KEY};
use crate::engine::http::{Api, Flavor, HttpEngine, HttpSettings};
use crate::engine::{Engine, EngineInfo, Sampling};
use crate::load::runner::{self, LevelRun};
use crate::load::shape::{Bound, Level, LoadShape};
use crate::load::workload::Workload;
use crate::load::{bound_label, load_engine, target, LoadPlan, Target};
use crate::measure::load::summarize;
use crate::measure::{self, StopFlag};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::results::load::LevelResult;
use crate::results::load_http::{HttpLevel, LevelComparison};
use crate::server::ServerProcess;

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

/// Connects to a server this process started.
fn connect(
    server: ServerProcess,
    key: &str,
    flavor: Flavor,
    sampling: &Sampling,
) -> anyhow::Result<HttpEngine> {
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
    Ok(measure::time_load(|_| {
        HttpEngine::with_server(settings, server)
    })?)
}

/// Runs every level in-process and over HTTP and writes both with their differences.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let lp = LoadPlan::from_args(&load_options(args))?;
    let mut options = run_options(args);
    options.compare_http = false;
    let plan = Plan::from_args(&options)?;
    let Some(synthetic) = lp.synthetic else {
        bail!("--compare-http with --concurrency/--request-rate sends token ids to both sides: add --input-tokens N (and --output-tokens N)");
    };
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
    let workload = Workload::synthetic(synthetic, engine.vocab_size(), lp.seed);
    let need = workload.max_need();
    if need > engine.tokens_per_stream() {
        bail!(
            "a request needs up to {need} tokens but each of the engine's {} streams holds {}: raise --ctx-size (llama.cpp) or --max-model-len (vLLM), or lower the lengths or the concurrency",
            engine.max_streams(),
            engine.tokens_per_stream()
        );
    }
    let info = engine.info();
    let vllm_http = match &target {
        Target::Vllm(s) => {
            progress.status("starting vllm serve (it loads the model again; a minute or more)");
            let env = crate::engine::vllm::find_python_env(s.python_env.as_deref())?;
            let launch = vllm_serve::serve_launch(s, &env, &info);
            Some(connect(
                ServerProcess::launch(&launch, &stop)?,
                VLLM_HTTP_KEY,
                Flavor::Vllm,
                sampling,
            )?)
        }
        _ => None,
    };
    let first = lp.levels[0];
    let warm = |streams: usize| LoadShape {
        level: Level::Concurrency(u32::try_from(streams).unwrap_or(1)),
        bound: Bound::Requests(args.warmup),
        ..first
    };
    if args.warmup > 0 {
        progress.status(&format!("warm-up: {} requests", args.warmup));
        let w = warm(runner::stream_limit(engine.as_ref(), &first));
        runner::run_level(engine.as_mut(), &w, &workload, sampling, &stop);
    }
    let mut levels = IndexMap::new();
    let mut comparison = Vec::new();
    let (mut interrupted, mut engine_error) = (false, None);
    let mut salt = 1u64 << 32;
    for (i, shape) in lp.levels.iter().enumerate() {
        if stop.is_raised() {
            interrupted = true;
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
                match ServerProcess::launch(&launch, &stop) {
                    Ok(server) => Some(connect(server, HTTP_KEY, Flavor::LlamaServer, sampling)?),
                    Err(_) if stop.is_raised() => {
                        interrupted = true;
                        break;
                    }
                    Err(e) => return Err(e.into()),
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
        let mut in_run = None;
        let mut http_run = None;
        for side in 0..2 {
            if (side == 0) == inproc_first {
                progress.status(&format!("{} {label} (in-process)", info.key));
                in_run = Some(runner::run_level(
                    engine.as_mut(),
                    shape,
                    &workload,
                    sampling,
                    &stop,
                ));
            } else {
                progress.status(&format!("{label} over HTTP"));
                let r = crate::load::http::run_level(http, shape, &workload, sampling, &stop, salt);
                salt += r.run.samples.len() as u64;
                http_run = Some(r);
            }
        }
        let (Some(a), Some(b)) = (in_run, http_run) else {
            break;
        };
        let http_info = http.info();
        let extra = [
            ("streams_in_flight_max", json!(streams)),
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
        let metrics = differences(&a.samples, &b.run.samples, lp.seed ^ i as u64);
        let (in_key, http_key) = (
            format!("{}@{label}", info.key),
            format!("{}@{label}", http_info.key),
        );
        comparison.push(LevelComparison {
            level: label.clone(),
            inprocess: in_key.clone(),
            http: http_key.clone(),
            order: if inproc_first { "in-process" } else { "HTTP" }.into(),
            server_streams: Some(slots),
            metrics,
        });
        interrupted |= a.interrupted || b.run.interrupted;
        engine_error = a.engine_error.clone().or(b.run.engine_error.clone());
        let h = http_level(&b);
        if let Some(w) = &h.lag_warning {
            progress.println(&format!("warning: {http_key}: {w}"));
        }
        levels.insert(in_key, entry(&info, shape, a, &extra[..1], lp.slo, None));
        levels.insert(
            http_key,
            entry(&http_info, shape, b.run, &extra, lp.slo, Some(h)),
        );
        drop(level_http);
        if interrupted || engine_error.is_some() {
            break;
        }
    }
    progress.finish();
    drop(vllm_http);
    drop(engine);
    write_results(
        args,
        &lp,
        Finished {
            workload: workload.describe(),
            levels,
            comparison,
            started,
            output,
            interrupted,
            engine_error,
        },
    )
}
