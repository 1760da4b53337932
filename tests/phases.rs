//! The per-token phase breakdown (`phases` in every run and prompt summary) on every engine that
//! runs here: real in-process llama.cpp with SmolLM2, the mock, and the HTTP engine against the
//! real llama-server (in-process vLLM: tests/vllm_engine.rs, on its shared run). Behaviour only: phases present, non-negative, within the measured time, and
//! decode dominating on llama.cpp.

mod common;

use common::*;
use inproc_bench::compare_http::llama_server::ServerSettings;
use inproc_bench::engine::llamacpp::LlamaCppSettings;
use inproc_bench::measure::StopFlag;
use serde_json::Value;

fn run_json(dir: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec![
        "--prompt", "short", "--warmup", "0", "--runs", "2", "--quiet",
    ];
    all.extend_from_slice(args);
    let (out, j) = run_to(&dir.join("r.json"), &all);
    assert!(out.status.success(), "{}", show(&out));
    j
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// Every phase non-negative; the sum within the measured window (plus a rounding margin); the
/// prompt summary pools the runs. Returns the pooled phases.
fn check_phases(p: &Value, names: &[&str]) -> Value {
    let runs = p["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for r in runs {
        let ph = &r["phases"];
        assert!(ph.is_object(), "a phases object per run: {r}");
        let measured = f(&ph["measured_ms"]);
        assert!(measured > 0.0, "{ph}");
        let mut sum = 0.0;
        for name in names {
            let x = &ph["phases"][*name];
            for k in ["sum_ms", "per_token_ms", "share_pct"] {
                assert!(f(&x[k]) >= 0.0, "{name}.{k} non-negative: {ph}");
            }
            sum += f(&x["sum_ms"]);
        }
        assert!(
            sum <= measured * 1.000_001 + 1e-6,
            "phases {sum} ≤ window {measured}: {ph}"
        );
        assert!(measured <= f(&r["e2e_latency_ms"]), "{r}");
        let tokens = ph["tokens"].as_u64().expect("tokens");
        assert_eq!(tokens + 1, r["tokens_generated"].as_u64().unwrap(), "{r}");
    }
    let pooled = &p["phases"];
    let tokens: u64 = runs
        .iter()
        .map(|r| r["phases"]["tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(
        pooled["tokens"].as_u64(),
        Some(tokens),
        "pooled over the runs: {pooled}"
    );
    pooled.clone()
}

#[test]
fn llamacpp_marks_every_phase_and_decode_dominates_and_matches_t_eval() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let j = run_json(
        dir.path(),
        &[
            "--engine",
            "llamacpp",
            "--model",
            s(&model),
            "--threads",
            "1",
            "--max-tokens",
            "8",
        ],
    );
    let p = &j["results"]["llamacpp"]["prompts"]["short"];
    let pooled = check_phases(p, &["decode", "sample", "detok", "own"]);
    assert_eq!(pooled["source"], "recorder marks");
    // Every microsecond of the window is in a phase.
    assert!(
        (f(&pooled["accounted_pct"]) - 100.0).abs() < 0.01,
        "{pooled}"
    );
    let decode = f(&pooled["phases"]["decode"]["sum_ms"]);
    for other in ["sample", "detok", "own"] {
        assert!(decode > f(&pooled["phases"][other]["sum_ms"]), "{pooled}");
    }
    assert!(f(&pooled["prompt_ms"]) > 0.0, "{pooled}");
    for r in p["runs"].as_array().unwrap() {
        // Our decode marks enclose llama.cpp's own one-token decode time.
        let ours = f(&r["phases"]["decode_total_ms"]);
        let theirs = f(&r["engine_counters"]["eval_ms"]);
        assert_eq!(f(&r["phases"]["engine_eval_ms"]), theirs);
        assert!(ours >= theirs * 0.99, "decode {ours} vs t_eval {theirs}");
        assert!(f(&r["phases"]["sample_total_ms"]) > 0.0);
    }
    let report = run(&["report", s(&dir.path().join("r.json"))]);
    assert!(report.status.success(), "{}", show(&report));
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("phases")
            && l.contains("decode")
            && l.contains("t_eval")
            && l.contains("vs window − t_eval")),
        "{text}"
    );
}

#[test]
fn the_mock_marks_decode_and_own() {
    let dir = tempfile::tempdir().unwrap();
    let j = run_json(
        dir.path(),
        &[
            "--engine",
            "mock",
            "--max-tokens",
            "5",
            "--mock-ttft-ms",
            "5",
            "--mock-itl-ms",
            "2",
        ],
    );
    let p = &j["results"]["mock"]["prompts"]["short"];
    let pooled = check_phases(p, &["decode", "own"]);
    assert!(f(&pooled["phases"]["decode"]["sum_ms"]) > 0.0, "{pooled}");
    assert!(
        pooled["phases"].get("sample").is_none(),
        "only the phases the engine marks: {pooled}"
    );
    assert!(pooled.get("engine_eval_ms").is_none(), "{pooled}");
}

#[test]
fn http_splits_the_server_time_from_the_rest() {
    let settings = LlamaCppSettings {
        n_gpu_layers: -1,
        batch_size: 2048,
        ..common::llama_settings(2048, 1)
    };
    let server = ServerSettings::matching(&settings, llama_server())
        .start(&StopFlag::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().to_string();
    let j = run_json(
        dir.path(),
        &["--engine", "http", "--url", &url, "--max-tokens", "8"],
    );
    let p = &j["results"]["http"]["prompts"]["short"];
    let pooled = check_phases(p, &["server", "outside"]);
    assert_eq!(pooled["source"], "server timings vs client stamps");
    assert!(f(&pooled["phases"]["server"]["sum_ms"]) > 0.0, "{pooled}");
    assert!(
        (f(&pooled["accounted_pct"]) - 100.0).abs() < 0.01,
        "{pooled}"
    );
    // The first token: the server's prompt time within the client's TTFT, per run and pooled.
    for r in p["runs"].as_array().unwrap() {
        let ft = &r["phases"]["first_token"];
        assert_eq!(ft["runs"], 1, "{ft}");
        assert!(f(&ft["server_ms"]) > 0.0, "{ft}");
        assert!(f(&ft["outside_ms"]) >= 0.0, "{ft}");
        assert_eq!(f(&ft["client_ms"]), f(&r["ttft_ms"]), "{ft}");
    }
    assert_eq!(pooled["first_token"]["runs"], 2, "{pooled}");
    let report = run(&["report", s(&dir.path().join("r.json"))]);
    assert!(report.status.success(), "{}", show(&report));
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("server") && l.contains("first token: server prompt")),
        "{text}"
    );
}
