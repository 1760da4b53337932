//! CSV as llama-bench prints it: one row per engine (or sweep combination) and prompt, every field
//! in its own column with raw numbers, and the same columns for every file so that files concatenate.

use crate::measure::Summary;
use crate::results::{PromptResult, ResultsFile};

use super::rows::{self, num, Entry};

/// Settings with their own column (the llama.cpp ones a sweep varies, from its settings table);
/// `sweep` holds the label.
fn settings() -> impl Iterator<Item = &'static str> {
    crate::settings::report_columns(crate::settings::llamacpp::TABLE)
}

/// Metrics written as `<metric>_{mean,std,p50,p95,p99}`.
const METRICS: [&str; 6] = [
    "ttft_ms",
    "prefill_tps",
    "tps",
    "itl_mean_ms",
    "itl_ms",
    "e2e_latency_ms",
];

fn metric<'a>(p: &'a PromptResult, name: &str) -> Option<&'a Summary> {
    match name {
        "ttft_ms" => p.ttft_ms.as_ref(),
        "prefill_tps" => p.prefill_tps.as_ref(),
        "tps" => p.tps.as_ref(),
        "itl_mean_ms" => p.itl_mean_ms.as_ref(),
        "itl_ms" => p.itl_ms.as_ref(),
        "e2e_latency_ms" => p.e2e_latency_ms.as_ref(),
        _ => None,
    }
}

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The header line's fields.
pub fn header() -> Vec<String> {
    let mut h: Vec<String> = [
        "timestamp",
        "scenario",
        "schema_version",
        "key",
        "engine",
        "engine_version",
        "model",
        "model_size_bytes",
        "model_n_params",
        "backend",
        "layers_offloaded",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    h.extend(settings().map(String::from));
    h.extend(
        [
            "sweep",
            "prompt",
            "successful_runs",
            "total_runs",
            "prompt_tokens",
            "tokens_generated",
        ]
        .map(String::from),
    );
    for m in METRICS {
        for s in ["mean", "std", "p50", "p95", "p99"] {
            h.push(format!("{m}_{s}"));
        }
    }
    h.extend(["tool_version", "git_commit", "llama_cpp_build", "cpu_model"].map(String::from));
    h
}

fn opt_num(s: Option<&Summary>, f: impl Fn(&Summary) -> f64) -> String {
    s.map(|s| num(f(s))).unwrap_or_default()
}

/// The CSV report of `entries`, header first.
pub fn render_entries(entries: &[Entry<'_>]) -> String {
    let mut out = header().join(",");
    out.push('\n');
    for e in entries {
        let r = e.result;
        let sweep = crate::settings::sweep_label(&r.sweep);
        for (prompt, p) in &r.prompts {
            let mut row: Vec<String> = vec![
                e.file.timestamp.clone(),
                e.file.scenario.clone(),
                e.file.schema_version.to_string(),
                e.key.to_string(),
                r.engine.clone().unwrap_or_default(),
                r.engine_version.clone().unwrap_or_default(),
                r.model.clone(),
                rows::model_size_bytes(r)
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                rows::model_params(r)
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                rows::backend(e),
                rows::offload_text(r),
            ];
            row.extend(settings().map(|k| {
                let t = rows::setting_raw(r, k);
                if t == "-" {
                    String::new()
                } else {
                    t
                }
            }));
            row.push(sweep.clone());
            row.push(prompt.clone());
            row.push(p.successful_runs.to_string());
            row.push(p.total_runs.to_string());
            row.push(opt_num(p.prompt_tokens.as_ref(), |s| s.mean));
            row.push(opt_num(p.tokens_generated.as_ref(), |s| s.mean));
            for m in METRICS {
                let s = metric(p, m);
                row.push(opt_num(s, |s| s.mean));
                row.push(opt_num(s, |s| s.std));
                row.push(opt_num(s, |s| s.p50));
                row.push(opt_num(s, |s| s.p95));
                row.push(opt_num(s, |s| s.p99));
            }
            let tool = e.file.tool.as_ref();
            row.push(tool.map(|t| t.version.clone()).unwrap_or_default());
            row.push(tool.map(|t| t.git_commit.clone()).unwrap_or_default());
            row.push(tool.map(|t| t.llama_cpp_build.clone()).unwrap_or_default());
            row.push(
                e.file
                    .system
                    .as_ref()
                    .map(|s| s.cpu_model.clone())
                    .unwrap_or_default(),
            );
            let line: Vec<String> = row.iter().map(|f| field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
    out
}

/// The CSV report of one file.
pub fn render(file: &ResultsFile) -> String {
    render_entries(&rows::entries(std::slice::from_ref(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("threads=1,ngl=0"), "\"threads=1,ngl=0\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn header_lists_every_column_in_order() {
        let expected = "timestamp,scenario,schema_version,key,engine,engine_version,model,\
            model_size_bytes,model_n_params,backend,layers_offloaded,\
            n_gpu_layers,threads,ctx_size,batch_size,ubatch_size,flash_attn,\
            sweep,prompt,successful_runs,total_runs,prompt_tokens,tokens_generated,\
            ttft_ms_mean,ttft_ms_std,ttft_ms_p50,ttft_ms_p95,ttft_ms_p99,\
            prefill_tps_mean,prefill_tps_std,prefill_tps_p50,prefill_tps_p95,prefill_tps_p99,\
            tps_mean,tps_std,tps_p50,tps_p95,tps_p99,\
            itl_mean_ms_mean,itl_mean_ms_std,itl_mean_ms_p50,itl_mean_ms_p95,itl_mean_ms_p99,\
            itl_ms_mean,itl_ms_std,itl_ms_p50,itl_ms_p95,itl_ms_p99,\
            e2e_latency_ms_mean,e2e_latency_ms_std,e2e_latency_ms_p50,e2e_latency_ms_p95,e2e_latency_ms_p99,\
            tool_version,git_commit,llama_cpp_build,cpu_model";
        assert_eq!(header().join(","), expected);
    }
}
