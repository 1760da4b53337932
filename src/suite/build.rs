//! Turns measured runs (internal types) into the results schema.

use indexmap::IndexMap;

use super::{EngineRuns, PromptRuns};
use crate::engine::{Finish, Outcome, ServerTimings};
use crate::measure::{RunMetrics, Summary};
use crate::results::phases::PhasesRecord;
use crate::results::schema::{
    EngineCountersRecord, EngineResult, PromptResult, RunRecord, ServerRecord,
};

fn server_record(s: &ServerTimings) -> ServerRecord {
    ServerRecord {
        prompt_ms: s.prompt_ms,
        predicted_ms: s.predicted_ms,
        prompt_n: s.prompt_n,
        predicted_n: s.predicted_n,
        headers_ms: s.headers_ms,
        first_byte_ms: s.first_byte_ms,
        usage_tokens: s.usage_tokens,
        counted_tokens: s.counted_tokens,
        count_source: s.count_source.clone(),
    }
}

/// A run's phase breakdown: the engine's marks (with llama.cpp's `t_eval_ms` beside them), or
/// over HTTP the server's generation time against the client's window.
fn phases_record(m: &RunMetrics, o: &Outcome) -> Option<PhasesRecord> {
    if let Some(p) = &m.phases {
        return Some(PhasesRecord::from_marks(p, o.counters.map(|c| c.eval_ms)));
    }
    let s = o.server.as_ref()?;
    let itl = m.itl_mean_ms?;
    // The window (first to last delivery) over the ITL mean is the tokens after the first.
    let window_ms = m.e2e_latency_ms - m.ttft_ms;
    let window_tokens = (window_ms / itl).round() as u64;
    PhasesRecord::from_server(
        s.predicted_ms?,
        s.predicted_n.or(s.usage_tokens)?,
        window_tokens,
        window_ms,
    )
    .map(|r| r.with_first_token(m.ttft_ms, s.prompt_ms))
}

/// The record of one measured run; `position` is its place in its round when engines were
/// interleaved.
pub fn run_record(
    run: u32,
    result: &Result<(RunMetrics, Outcome), String>,
    position: Option<u32>,
) -> RunRecord {
    match result {
        Err(e) => RunRecord {
            run,
            error: Some(e.clone()),
            position_in_round: position,
            ..RunRecord::default()
        },
        Ok((m, o)) => RunRecord {
            run,
            error: None,
            ttft_ms: Some(m.ttft_ms),
            tps: m.tps,
            seed_tps: m.seed_tps,
            prefill_tps: m.prefill_tps,
            itl_mean_ms: m.itl_mean_ms,
            e2e_latency_ms: Some(m.e2e_latency_ms),
            total_ms: Some(m.total_ms),
            tokens_generated: m.tokens_generated,
            prompt_tokens: m.prompt_tokens,
            finish_reason: Some(
                match o.finish {
                    Finish::Length => "length",
                    Finish::Eos => "eos",
                }
                .into(),
            ),
            multi_token_deliveries: m.multi_token_deliveries,
            itl_ms: m.itl_ms.clone(),
            server: o.server.as_ref().map(server_record),
            engine_counters: o.counters.map(|c| EngineCountersRecord {
                prompt_eval_ms: c.prompt_eval_ms,
                prompt_eval_tokens: c.prompt_eval_tokens,
                eval_ms: c.eval_ms,
                eval_tokens: c.eval_tokens,
            }),
            position_in_round: position,
            roofline: None,
            ttfo_ms: m.reasoning.and_then(|r| r.ttfo_ms),
            ttfo_note: m.reasoning.and_then(|r| r.ttfo_note()),
            reasoning_tokens: m.reasoning.map(|r| r.reasoning_tokens),
            answer_tokens: m.reasoning.map(|r| r.answer_tokens),
            phases: phases_record(m, o),
        },
    }
}

fn summary_of(ok: &[&RunMetrics], f: impl Fn(&RunMetrics) -> Option<f64>) -> Option<Summary> {
    Summary::of(&ok.iter().filter_map(|m| f(m)).collect::<Vec<_>>())
}

/// The result of one prompt.
pub fn prompt_result(p: &PromptRuns) -> PromptResult {
    let ok: Vec<&RunMetrics> = p
        .runs
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(m, _)| m)
        .collect();
    let pooled_itl: Vec<f64> = ok.iter().flat_map(|m| m.itl_ms.iter().copied()).collect();
    PromptResult {
        ttft_ms: summary_of(&ok, |m| Some(m.ttft_ms)),
        tps: summary_of(&ok, |m| m.tps),
        itl_mean_ms: summary_of(&ok, |m| m.itl_mean_ms),
        e2e_latency_ms: summary_of(&ok, |m| Some(m.e2e_latency_ms)),
        tokens_generated: summary_of(&ok, |m| Some(m.tokens_generated as f64)),
        successful_runs: ok.len() as u32,
        total_runs: p.runs.len() as u32,
        seed_tps: summary_of(&ok, |m| m.seed_tps),
        prefill_tps: summary_of(&ok, |m| m.prefill_tps),
        total_ms: summary_of(&ok, |m| Some(m.total_ms)),
        prompt_tokens: summary_of(&ok, |m| Some(m.prompt_tokens as f64)),
        itl_ms: Summary::of(&pooled_itl),
        max_tokens: Some(p.prepared.max_tokens),
        warmup_runs: Some(p.warmup_done),
        prompt_text: Some(p.prepared.text.clone()),
        sample_output: p
            .runs
            .iter()
            .find_map(|r| r.as_ref().ok())
            .map(|(_, o)| o.text.clone()),
        phases: PhasesRecord::pooled(
            &p.runs
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .filter_map(|(m, o)| phases_record(m, o))
                .collect::<Vec<_>>()
                .iter()
                .collect::<Vec<_>>(),
        ),
        runs: p
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| run_record(i as u32 + 1, r, p.positions.get(i).copied()))
            .collect(),
        ttfo_ms: summary_of(&ok, |m| m.reasoning.and_then(|r| r.ttfo_ms)),
        reasoning_tokens: summary_of(&ok, |m| m.reasoning.map(|r| r.reasoning_tokens as f64)),
        answer_tokens: summary_of(&ok, |m| m.reasoning.map(|r| r.answer_tokens as f64)),
        ttfo_missing_runs: ok.iter().any(|m| m.reasoning.is_some()).then(|| {
            ok.iter()
                .filter(|m| m.reasoning.is_some_and(|r| r.ttfo_ms.is_none()))
                .count() as u32
        }),
    }
}

/// The result of one engine (or sweep combination).
pub fn engine_result(e: &EngineRuns) -> EngineResult {
    let prompts: IndexMap<String, PromptResult> = e
        .prompts
        .iter()
        .map(|p| (p.prepared.name.clone(), prompt_result(p)))
        .collect();
    EngineResult {
        model: e.info.model.clone(),
        prompts,
        engine: Some(e.info.name.clone()),
        engine_version: Some(e.info.version.clone()),
        settings: e.info.settings.clone(),
        sweep: e.sweep.clone(),
        load_time_ms: Some(e.info.load_ms),
        details: e.info.details.clone(),
        gpu: e.gpu.clone(),
        roofline: None,
    }
}
