//! The suite: for each prompt, warmup runs then measured runs, on one engine or interleaved over
//! several (so that a noisy machine's drift hits every engine alike). Interleaved engines take
//! turns in rounds whose order alternates (A B, B A, A B, …: ABBA), so that neither always runs
//! first; each run records its position in its round. [`build`] turns what it measured into the
//! results schema.

pub mod build;
mod measured;

pub use measured::Measured;

use serde_json::{Map, Value};

use crate::engine::{
    Engine, EngineError, EngineInfo, Outcome, PreparedPrompt, PromptMode, Request, Sampling,
};
use crate::measure::{Recorder, RunMetrics, StopFlag};
use crate::progress::Progress;
use crate::prompts::PromptSpec;
use crate::results::gpu::GpuTelemetry;

/// How to run the prompts.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Unmeasured runs per prompt and engine.
    pub warmup: u32,
    /// Measured runs per prompt and engine.
    pub runs: u32,
    /// Chat template or raw text.
    pub mode: PromptMode,
    /// Sampling settings.
    pub sampling: Sampling,
}

/// How two sides of a comparison are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Interleaved when both sides fit in memory at once, else blocks.
    Auto,
    /// Run by run, in ABBA order.
    Interleaved,
    /// Every run of one side, then every run of the other (one loaded at a time).
    Blocks,
}

impl Pairing {
    /// The name recorded in results (`auto`, `interleaved`, `blocks`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Interleaved => "interleaved",
            Self::Blocks => "blocks",
        }
    }
}

/// Engine indices in the order they run in round `round` (0-based): forward in even rounds,
/// backward in odd ones (ABBA for two engines).
pub fn round_order(n_engines: usize, round: u32) -> Vec<usize> {
    if round.is_multiple_of(2) {
        (0..n_engines).collect()
    } else {
        (0..n_engines).rev().collect()
    }
}

/// One measured run: its metrics and what the engine returned, or why it failed.
pub type RunResult = Result<(RunMetrics, Outcome), String>;

/// All runs of one prompt on one engine.
#[derive(Debug, Clone)]
pub struct PromptRuns {
    /// The prompt as the engine evaluated it.
    pub prepared: PreparedPrompt,
    /// Warmup runs done.
    pub warmup_done: u32,
    /// Tokens the warmup runs generated (GPU energy covers them too).
    pub warmup_tokens: u64,
    /// Measured runs, in order.
    pub runs: Vec<RunResult>,
    /// With several engines interleaved: each measured run's position in its round (0 = it ran
    /// first); empty for a single engine.
    pub positions: Vec<u32>,
}

/// Everything one engine did.
#[derive(Debug, Clone)]
pub struct EngineRuns {
    /// The engine and its settings.
    pub info: EngineInfo,
    /// The swept settings of this combination (empty without a sweep).
    pub sweep: Map<String, Value>,
    /// Per prompt.
    pub prompts: Vec<PromptRuns>,
    /// GPU telemetry, filled in by the caller.
    pub gpu: Option<GpuTelemetry>,
}

/// How a suite ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuiteEnd {
    /// Every run was attempted.
    Complete,
    /// The user pressed Ctrl-C; what finished is kept.
    Interrupted,
}

/// Prepares every prompt on every engine (chat template, context check) before any run, so that
/// bad input fails fast.
pub fn prepare_all(
    engines: &mut [&mut dyn Engine],
    prompts: &[PromptSpec],
    mode: &PromptMode,
) -> Result<Vec<Vec<PreparedPrompt>>, EngineError> {
    engines
        .iter_mut()
        .map(|e| prompts.iter().map(|p| e.prepare(p, mode)).collect())
        .collect()
}

fn one_run(
    engine: &mut dyn Engine,
    prompt: &PreparedPrompt,
    sampling: &Sampling,
    rec: &mut Recorder,
) -> Result<RunResult, EngineError> {
    let req = Request {
        prompt,
        sampling,
        prefix_cache: sampling.prefix_cache,
    };
    rec.start();
    let outcome = engine.generate(&req, rec);
    let trace = rec.finish();
    match outcome {
        Err(e @ (EngineError::Interrupted | EngineError::Stopped(_))) => Err(e),
        Err(e) => Ok(Err(e.to_string())),
        Ok(outcome) => Ok(RunMetrics::from_trace(&trace, outcome.prompt_tokens)
            .map(|m| (m, outcome))
            .map_err(|e| e.to_string())),
    }
}

/// Runs the suite. Engines take turns run by run; each engine warms up on a prompt before its
/// measured runs of that prompt. Returns what was measured even when interrupted.
// The prompt index walks the same prompt across every engine's prepared list.
#[allow(clippy::needless_range_loop)]
pub fn run(
    engines: &mut [&mut dyn Engine],
    prepared: Vec<Vec<PreparedPrompt>>,
    opts: &SuiteOptions,
    stop: &StopFlag,
    progress: &Progress,
) -> (Vec<EngineRuns>, SuiteEnd) {
    let mut out: Vec<EngineRuns> = engines
        .iter()
        .map(|e| EngineRuns {
            info: e.info(),
            sweep: Map::new(),
            prompts: Vec::new(),
            gpu: None,
        })
        .collect();
    let n_prompts = prepared.first().map_or(0, Vec::len);
    let max_tokens = prepared
        .iter()
        .flatten()
        .map(|p| p.max_tokens as usize)
        .max()
        .unwrap_or(0);
    let mut rec = Recorder::new(max_tokens, stop.clone());
    progress.set_length((n_prompts * engines.len()) as u64 * u64::from(opts.warmup + opts.runs));

    for pi in 0..n_prompts {
        for (ei, engine) in engines.iter_mut().enumerate() {
            let prompt = &prepared[ei][pi];
            let mut runs = PromptRuns {
                prepared: prompt.clone(),
                warmup_done: 0,
                warmup_tokens: 0,
                runs: Vec::with_capacity(opts.runs as usize),
                positions: Vec::new(),
            };
            for w in 0..opts.warmup {
                progress.message(&format!(
                    "{} · {} · warmup {}/{}",
                    out[ei].info.key,
                    prompt.name,
                    w + 1,
                    opts.warmup
                ));
                let warm = match one_run(&mut **engine, prompt, &opts.sampling, &mut rec) {
                    Ok(warm) if !stop.is_raised() => warm,
                    _ => {
                        out[ei].prompts.push(runs);
                        return (out, SuiteEnd::Interrupted);
                    }
                };
                runs.warmup_tokens += warm.map_or(0, |(m, _)| m.tokens_generated);
                runs.warmup_done += 1;
                progress.inc();
            }
            out[ei].prompts.push(runs);
        }
        let n_engines = engines.len();
        for r in 0..opts.runs {
            for (position, ei) in round_order(n_engines, r).into_iter().enumerate() {
                let engine = &mut engines[ei];
                let prompt = &prepared[ei][pi];
                progress.message(&format!(
                    "{} · {} · run {}/{}",
                    out[ei].info.key,
                    prompt.name,
                    r + 1,
                    opts.runs
                ));
                if stop.is_raised() {
                    return (out, SuiteEnd::Interrupted);
                }
                match one_run(&mut **engine, prompt, &opts.sampling, &mut rec) {
                    Err(_) => return (out, SuiteEnd::Interrupted),
                    Ok(result) => {
                        if let Ok((m, o)) = &result {
                            progress.last_rate(m.tps);
                            crate::journal::record(&out[ei].info.key, &prompt.name, r, m, &o.text);
                        }
                        if let Some(p) = out[ei].prompts.last_mut() {
                            p.runs.push(result);
                            if n_engines > 1 {
                                p.positions.push(position as u32);
                            }
                        }
                    }
                }
                progress.inc();
            }
        }
    }
    (out, SuiteEnd::Complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_abba() {
        let order: Vec<Vec<usize>> = (0..4).map(|r| round_order(2, r)).collect();
        assert_eq!(order, vec![vec![0, 1], vec![1, 0], vec![0, 1], vec![1, 0]]);
        assert_eq!(round_order(1, 1), vec![0]);
        assert_eq!(round_order(3, 1), vec![2, 1, 0]);
    }
}
