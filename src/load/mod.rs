//! Load in-process: levels of concurrent requests (a closed loop of N in flight, or an open loop
//! of seeded Poisson arrivals) on an engine's multi-stream side, with per-request stamps on one
//! clock, per-level throughput, goodput and latency, written as a results file with a `load`
//! section. See docs/load.md.

pub mod http;
pub mod plan;
pub mod runner;
pub mod shape;
pub mod workload;

use anyhow::bail;

use crate::engine::llamacpp::LlamaCppBatch;
use crate::engine::mock_batch::MockBatch;
use crate::engine::streams::BatchEngine;
use crate::engine::vllm::VllmSettings;
use crate::engine::EngineError;
use crate::plan::{EngineKind, RunOptions};
use crate::plan::{EnginePlan, Plan};

pub use plan::{requested, LoadOptions, LoadPlan};
use shape::Bound;
use workload::{PromptTokens, Workload};

#[cfg(feature = "vllm")]
fn load_vllm(s: &VllmSettings) -> Result<Box<dyn BatchEngine>, EngineError> {
    Ok(Box::new(crate::engine::vllm::load::VllmLoad::from_engine(
        crate::measure::time_load(|clock| crate::engine::VllmEngine::load(s.clone(), clock))?,
    )?))
}

#[cfg(not(feature = "vllm"))]
fn load_vllm(_: &VllmSettings) -> Result<Box<dyn BatchEngine>, EngineError> {
    Err(EngineError::NotCompiled {
        engine: "vllm",
        feature: "vllm",
    })
}

/// What to load, checked before anything loads.
pub enum Target {
    LlamaCpp(crate::engine::llamacpp::LlamaCppSettings),
    Vllm(VllmSettings),
    Mock(crate::engine::mock::MockSettings),
}

pub fn target(args: &RunOptions, plan: &Plan, lp: &LoadPlan) -> anyhow::Result<Target> {
    if args.compare_http || args.backend.is_some() || args.engine == EngineKind::Http {
        bail!("--concurrency/--request-rate: load runs in-process: use --engine llamacpp, vllm (drop --url, --backend and --compare-http)");
    }
    Ok(match &plan.engine {
        EnginePlan::LlamaCpp(combos) => {
            let [combo] = combos.as_slice() else {
                bail!(
                    "--concurrency/--request-rate: measure one llama.cpp setting, and these flags make {} combinations: give single values for the llama.cpp flags (the load levels are the sweep)",
                    combos.len()
                );
            };
            let need = lp
                .synthetic
                .map(|s| Workload::synthetic(s, 2, 0).max_need());
            lp.check_context(combo.settings.ctx_size, need)?;
            Target::LlamaCpp(combo.settings.clone())
        }
        EnginePlan::Vllm(s) => Target::Vllm(s.clone()),
        EnginePlan::Mock(s) => Target::Mock(s.clone()),
        _ => bail!(
            "--concurrency/--request-rate: load runs in-process: use --engine llamacpp or vllm"
        ),
    })
}

pub fn load_engine(t: &Target, streams: u32) -> Result<Box<dyn BatchEngine>, EngineError> {
    Ok(match t {
        Target::LlamaCpp(s) => Box::new(LlamaCppBatch::from_engine(
            crate::measure::time_load(|_| {
                crate::engine::llamacpp::LlamaCppEngine::load(s.clone())
            })?,
            streams,
        )?),
        Target::Vllm(s) => load_vllm(s)?,
        Target::Mock(s) => Box::new(MockBatch::new(s.clone(), streams as usize)),
    })
}

pub fn workload(
    engine: &mut dyn BatchEngine,
    lp: &LoadPlan,
    plan: &Plan,
) -> Result<Workload, EngineError> {
    if let Some(s) = lp.synthetic {
        return Ok(Workload::synthetic(s, engine.vocab_size(), lp.seed));
    }
    let mut list = Vec::new();
    for p in &plan.prompts {
        list.push(PromptTokens {
            name: p.name.clone(),
            ids: engine.prompt_tokens(p, &plan.suite.mode)?,
            max_tokens: p.max_tokens,
        });
    }
    Ok(Workload::Prompts(list))
}

pub fn bound_label(b: &Bound) -> String {
    match b {
        Bound::Requests(n) => format!("requests={n}"),
        Bound::Duration(d) => format!("duration={}", d.as_secs_f64()),
    }
}
