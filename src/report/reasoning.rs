//! Reasoning models in the reports: TTFO beside TTFT, and how the tokens divide into reasoning and
//! answer. Nothing is printed for results without reasoning figures.

use super::rows::Entry;
use crate::results::PromptResult;

/// Whether any entry has reasoning figures (then the Markdown table gets their columns).
pub fn any(entries: &[Entry<'_>]) -> bool {
    entries.iter().any(|e| e.result.prompts.values().any(has))
}

fn has(p: &PromptResult) -> bool {
    p.reasoning_tokens.is_some()
}

/// The Markdown cells: TTFO mean ± std, and reasoning / answer tokens (means).
pub fn cells(p: &PromptResult) -> [String; 2] {
    if !has(p) {
        return ["-".into(), "-".into()];
    }
    let ttfo = p
        .ttfo_ms
        .map_or("-".into(), |s| format!("{:.2} ± {:.2}", s.mean, s.std));
    let split = match (p.reasoning_tokens, p.answer_tokens) {
        (Some(r), Some(a)) => format!("{:.1} / {:.1}", r.mean, a.mean),
        _ => "-".into(),
    };
    [ttfo, split]
}

/// The terminal table's line: TTFO (mean ± std, p50/p95/p99) beside the TTFT above it, the token
/// split, and the runs whose reasoning did not end.
pub fn line(p: &PromptResult) -> Option<String> {
    if !has(p) {
        return None;
    }
    let mut s = match p.ttfo_ms {
        Some(t) => format!(
            "TTFO ms {:.2} ± {:.2} (p50/95/99 {:.1}/{:.1}/{:.1})",
            t.mean, t.std, t.p50, t.p95, t.p99
        ),
        None => "TTFO ms -".into(),
    };
    if let (Some(r), Some(a)) = (p.reasoning_tokens, p.answer_tokens) {
        s.push_str(&format!(
            " · reasoning {:.1} + answer {:.1} tokens",
            r.mean, a.mean
        ));
    }
    if let Some(n) = p.ttfo_missing_runs.filter(|&n| n > 0) {
        s.push_str(&format!(
            " · {n} run(s) still reasoning at the token limit (no TTFO)"
        ));
    }
    Some(s)
}
