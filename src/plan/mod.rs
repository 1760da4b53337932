//! From flags to a checked plan: prompt set, run counts, sampling, and the engine settings with
//! every sweep combination expanded (llama-bench style comma lists and ranges). `parse` reads the
//! lists, `engines` turns flags into each engine's settings, `sweep` expands the combinations.

mod distributed;
mod engines;
mod options;
mod parse;
mod sweep;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::engine::http::{Api, HttpSettings};
use crate::engine::llamacpp::LlamaCppSettings;
use crate::engine::mock::MockSettings;
use crate::engine::vllm::VllmSettings;
use crate::engine::{PromptMode, Sampling};
use crate::prompts::{self, PromptError, PromptSpec};
use crate::suite::{Pairing, SuiteOptions};
use engines::{http_targets, llamacpp_combinations, register_secrets, vllm_settings};

pub use distributed::uses_rpc;
pub use engines::prefix_cache;
pub use options::{Backend, EngineKind, RunOptions};
pub use parse::{parse_list, MAX_RANGE_ITEMS};
pub use sweep::{expand, sweep_label, Axis};

/// Bad flags, caught before anything is loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A flag's value is out of range or malformed.
    #[error("{flag}: {msg}")]
    Flag {
        /// The flag, as typed.
        flag: &'static str,
        /// What is wrong and what to pass instead.
        msg: String,
    },
    /// The prompt set or selection is wrong.
    #[error(transparent)]
    Prompt(#[from] PromptError),
}

fn flag_err(flag: &'static str, msg: impl Into<String>) -> PlanError {
    PlanError::Flag {
        flag,
        msg: msg.into(),
    }
}

pub use crate::telemetry::system::default_threads;

/// One combination of engine settings.
#[derive(Debug, Clone)]
pub struct Combination<S> {
    /// The settings.
    pub settings: S,
    /// The settings that vary across the sweep, with this combination's values.
    pub sweep: Map<String, Value>,
}

/// What to measure and how.
#[derive(Debug, Clone)]
pub enum EnginePlan {
    /// llama.cpp in-process, one entry per sweep combination.
    LlamaCpp(Vec<Combination<LlamaCppSettings>>),
    /// The scripted engine.
    Mock(MockSettings),
    /// OpenAI-compatible servers over HTTP (`--engine http --url`, or the seed's `--backend`),
    /// interleaved run by run.
    Http(Vec<HttpSettings>),
    /// llama.cpp in-process against the same build served by llama-server (`--compare-http`).
    CompareHttp {
        /// The in-process settings, which the server gets too.
        settings: LlamaCppSettings,
        /// `--llama-server` (or `INPROC_LLAMA_SERVER`); `None` looks in vendor/.
        llama_server: Option<PathBuf>,
    },
    /// vLLM in-process.
    Vllm(VllmSettings),
    /// vLLM in-process against `vllm serve` from the same environment (`--compare-http`).
    CompareHttpVllm(VllmSettings),
}

/// A checked plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Prompts to run, in order.
    pub prompts: Vec<PromptSpec>,
    /// Runs, prompt mode and sampling.
    pub suite: SuiteOptions,
    /// The engine and its combinations.
    pub engine: EnginePlan,
    /// How `--compare-http` orders its two sides.
    pub pairing: Pairing,
    /// The API `--compare-http` streams: `--api`, else completions (the in-process text as is).
    pub compare_api: Api,
}

fn engine_plan(a: &RunOptions) -> Result<EnginePlan, PlanError> {
    if a.compare_http {
        if a.engine == EngineKind::Vllm && a.backend.is_none() && a.url.is_none() {
            return Ok(EnginePlan::CompareHttpVllm(vllm_settings(a)?));
        }
        if a.engine != EngineKind::Llamacpp || a.backend.is_some() || a.url.is_some() {
            return Err(flag_err(
                "--compare-http",
                "compares an in-process engine (--engine llamacpp or vllm) with the server it starts itself: drop --url and --backend",
            ));
        }
        let mut combos = llamacpp_combinations(a)?;
        if combos.len() != 1 {
            return Err(flag_err(
                "--compare-http",
                format!(
                    "measures one setting, and these flags make {} combinations: give single values instead of lists",
                    combos.len()
                ),
            ));
        }
        return Ok(EnginePlan::CompareHttp {
            settings: combos.remove(0).settings,
            llama_server: a.llama_server.clone(),
        });
    }
    Ok(match a.engine {
        EngineKind::Http => EnginePlan::Http(http_targets(a)?),
        EngineKind::Llamacpp if a.backend.is_some() => EnginePlan::Http(http_targets(a)?),
        _ if a.backend.is_some() => {
            return Err(flag_err(
                "--backend",
                "measures servers over HTTP: drop --engine",
            ))
        }
        EngineKind::Llamacpp => EnginePlan::LlamaCpp(llamacpp_combinations(a)?),
        EngineKind::Vllm => EnginePlan::Vllm(vllm_settings(a)?),
        EngineKind::Mock => EnginePlan::Mock(MockSettings {
            ttft_ms: a.mock_ttft_ms,
            itl_ms: a.mock_itl_ms,
            chunk: a.mock_chunk,
            fail_every: a.mock_fail_every,
            reasoning_tokens: a.mock_reasoning_tokens,
        }),
    })
}

impl Plan {
    /// Checks the flags and builds the plan.
    pub fn from_args(a: &RunOptions) -> Result<Self, PlanError> {
        register_secrets(a);
        if a.runs == 0 {
            return Err(flag_err(
                "--runs",
                "must be at least 1 (the statistics need measured runs)",
            ));
        }
        if a.max_tokens == Some(0) {
            return Err(flag_err("--max-tokens", "must be at least 1"));
        }
        if !(a.temperature >= 0.0 && a.temperature.is_finite()) {
            return Err(flag_err("--temperature", "must be 0 (greedy) or positive"));
        }
        let set = match &a.prompt_file {
            Some(path) => prompts::load_file(path)?,
            None => prompts::builtin(),
        };
        let mut prompts = prompts::select(set, &a.prompt)?;
        if let Some(n) = a.max_tokens {
            for p in &mut prompts {
                p.max_tokens = n;
            }
        }
        let mode = if a.raw_prompt {
            PromptMode::Raw
        } else {
            PromptMode::Chat {
                template: a.chat_template.clone(),
                options: crate::template::ChatOptions::from_flags(
                    a.chat_template_file.clone(),
                    a.chat_template_kwargs.as_deref(),
                    a.thinking,
                )
                .map_err(|e| match e {
                    crate::template::TemplateError::Kwargs(m) => {
                        flag_err("--chat-template-kwargs", m)
                    }
                    other => flag_err("--chat-template-kwargs", other.to_string()),
                })?,
            }
        };
        let engine = engine_plan(a)?;
        Ok(Self {
            prompts,
            suite: SuiteOptions {
                warmup: a.warmup,
                runs: a.runs,
                mode,
                sampling: Sampling {
                    temperature: a.temperature,
                    seed: a.seed,
                    ignore_eos: a.ignore_eos,
                    prefix_cache: prefix_cache(a),
                },
            },
            engine,
            pairing: a.pairing,
            compare_api: a.api.unwrap_or(Api::Completions),
        })
    }
}

#[cfg(test)]
mod tests;
