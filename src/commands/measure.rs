//! Loads each planned engine and runs the suite on it: llama.cpp combination by combination
//! (reusing a loaded model where only the context changes), vLLM, HTTP servers, the mock engine.

use anyhow::Context;

use crate::engine::http::{HttpEngine, HttpSettings};
use crate::engine::llamacpp::{LlamaCppEngine, LlamaCppSettings};
use crate::engine::vllm::VllmSettings;
use crate::engine::Engine;
use crate::engine::VllmEngine;
use crate::measure::{self, StopFlag};
use crate::plan::{sweep_label, Combination, Plan};
use crate::progress::Progress;
use crate::suite::{self, EngineRuns, Measured, SuiteEnd};
use crate::telemetry::gpu::GpuWatch;

/// Runs one engine over the plan's prompts, with GPU telemetry around its load and runs.
pub(crate) fn measure_one(
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

pub(crate) fn run_llamacpp(
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
            Some(e) if e.reuses_model(&combo.settings) => {
                measure::time_load(|_| e.reconfigure(combo.settings.clone()))
            }
            previous => {
                drop(previous);
                watch.before_load();
                measure::time_load(|_| LlamaCppEngine::load(combo.settings.clone()))
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

pub(crate) fn run_vllm(
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
    let mut engine = measure::time_load(|clock| VllmEngine::load(settings.clone(), clock))?;
    watch.after_load();
    let (runs, end) = measure_one(&mut engine, &mut watch, plan, stop, progress)?;
    Ok(Measured::runs(vec![runs], end))
}

/// Connects to every server first (so a wrong URL fails before any run), then runs them
/// interleaved run by run.
pub(crate) fn run_http(
    targets: &[HttpSettings],
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    let mut engines = Vec::new();
    for t in targets {
        progress.status(&format!("connecting to {}", crate::redact::text(&t.url)));
        engines.push(measure::time_load(|_| HttpEngine::connect(t.clone()))?);
    }
    let mut dyns: Vec<&mut dyn Engine> = engines.iter_mut().map(|e| e as &mut dyn Engine).collect();
    let prepared = suite::prepare_all(&mut dyns, &plan.prompts, &plan.suite.mode)?;
    let (runs, end) = suite::run(&mut dyns, prepared, &plan.suite, stop, progress);
    Ok(Measured::runs(runs, end))
}
