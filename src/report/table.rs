//! The terminal table printed after a run, in the spirit of the original benchmark's summary.

use std::fmt::Write;

use crate::measure::Summary;
use crate::results::{EngineResult, ResultsFile};

fn mean_std(s: &Option<Summary>, digits: usize) -> String {
    match s {
        Some(s) => format!("{:.*} ± {:.*}", digits, s.mean, digits, s.std),
        None => "-".into(),
    }
}

fn pcts(s: &Option<Summary>, digits: usize) -> String {
    match s {
        Some(s) => format!(
            "{:.*}/{:.*}/{:.*}",
            digits, s.p50, digits, s.p95, digits, s.p99
        ),
        None => "-".into(),
    }
}

fn header(key: &str, e: &EngineResult) -> String {
    let settings: Vec<String> = e
        .settings
        .iter()
        .filter(|(k, _)| k.as_str() != "model")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut out = format!(
        "{key}: {} · {} {}\n  {}\n",
        e.model,
        e.engine.as_deref().unwrap_or("?"),
        e.engine_version.as_deref().unwrap_or(""),
        settings.join(" ")
    );
    if let Some((done, total)) = super::rows::offload(e) {
        let devices = e
            .details
            .get("offload")
            .and_then(|o| o.get("weight_devices"))
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  ran on: {devices} · {done}/{total} layers offloaded to a GPU (llama.cpp's load report)"
        );
    }
    out
}

/// One block per engine (or sweep combination): per prompt, mean ± std and p50/p95/p99.
pub fn render(file: &ResultsFile) -> String {
    let mut out = String::new();
    let rule = "=".repeat(100);
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(
        out,
        "BENCHMARK RESULTS · scenario {} · {} warmup + {} measured runs per prompt{}",
        file.scenario,
        file.config.warmup_runs,
        file.config.measurement_runs,
        if file.complete { "" } else { " · INCOMPLETE" }
    );
    let _ = writeln!(out, "{rule}");
    for (key, e) in &file.results {
        out.push_str(&header(key, e));
        let _ = writeln!(
            out,
            "  {:<10} {:>7} {:>18} {:>18} {:>16} {:>20} {:>8} {:>8}",
            "prompt", "runs", "TTFT ms", "TPS tok/s", "ITL ms", "E2E ms", "prompt", "tokens"
        );
        for (name, p) in &e.prompts {
            let tokens = p
                .tokens_generated
                .map_or("-".into(), |s| format!("{:.1}", s.mean));
            let prompt_tokens = p
                .prompt_tokens
                .map_or("-".into(), |s| format!("{:.0}", s.mean));
            let _ = writeln!(
                out,
                "  {:<10} {:>7} {:>18} {:>18} {:>16} {:>20} {:>8} {:>8}",
                name,
                format!("{}/{}", p.successful_runs, p.total_runs),
                mean_std(&p.ttft_ms, 2),
                mean_std(&p.tps, 1),
                mean_std(&p.itl_mean_ms, 3),
                mean_std(&p.e2e_latency_ms, 1),
                prompt_tokens,
                tokens
            );
            let _ = writeln!(
                out,
                "  {:<10} {:>7} {:>18} {:>18} {:>16} {:>20}",
                "p50/95/99",
                "",
                pcts(&p.ttft_ms, 1),
                pcts(&p.tps, 1),
                pcts(&p.itl_ms, 2),
                pcts(&p.e2e_latency_ms, 0)
            );
            if let Some(line) = super::reasoning::line(p) {
                let _ = writeln!(out, "  {:<10} {line}", "reasoning");
            }
            if let Some(line) = super::roofline::line(e, name) {
                let _ = writeln!(out, "  {:<10} {line}", "roofline");
            }
            if let Some(ph) = &p.phases {
                let _ = writeln!(out, "  {:<10} {}", "phases", ph.line());
            }
            if let Some(err) = p.runs.iter().find_map(|r| r.error.as_deref()) {
                let _ = writeln!(out, "  {:<10} first failure: {err}", "");
            }
        }
        out.push('\n');
    }
    out
}
