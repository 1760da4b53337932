//! End to end on real llama.cpp with the real SmolLM2 model: exact token counts, monotonic
//! timelines, the seed's JSON keys, and bad input.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn bench(dir: &Path, extra: &[&str]) -> (std::process::Output, Value) {
    let model = model();
    let mut args = vec![
        "--engine",
        "llamacpp",
        "--model",
        s(&model),
        "--prompt",
        "short",
        "--warmup",
        "1",
        "--runs",
        "3",
        "--scenario",
        "smollm2-cpu",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run_to(&dir.join("r.json"), &args)
}

/// Keys of an object, recursively, as dotted paths (arrays excluded).
fn key_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, v) in m {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(p.clone());
            key_paths(v, &p, out);
        }
    }
}

#[test]
fn short_prompt_generates_exactly_100_tokens_with_sane_timelines() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = bench(dir.path(), &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["complete"], true);
    let e = &j["results"]["llamacpp"];
    assert!(e["model"]
        .as_str()
        .unwrap()
        .ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert_eq!(e["settings"]["n_gpu_layers"], -1);
    assert_eq!(e["settings"]["ctx_size"], 4096);
    assert!(e["load_time_ms"].as_f64().unwrap() > 0.0);
    let p = &e["prompts"]["short"];
    assert_eq!(p["successful_runs"], 3);
    assert_eq!(p["tokens_generated"]["min"], 100.0);
    assert_eq!(p["tokens_generated"]["max"], 100.0);
    assert!(p["prompt_tokens"]["mean"].as_f64().unwrap() > 5.0);
    assert!(p["prompt_text"]
        .as_str()
        .unwrap()
        .contains("Explain quantum computing in simple terms."));
    // Greedy decoding of the pinned model and build: the text llama-server b11434 streamed for the
    // same templated prompt (tests/fixtures/sse/llama-server-b11434-completions.sse).
    let text = p["sample_output"].as_str().unwrap();
    assert!(
        text.starts_with("Quantum computing is a field of computer science that leverages"),
        "{text}"
    );
    for run in p["runs"].as_array().unwrap() {
        assert_eq!(run["tokens_generated"], 100);
        assert_eq!(run["finish_reason"], "length");
        let ttft = run["ttft_ms"].as_f64().unwrap();
        let e2e = run["e2e_latency_ms"].as_f64().unwrap();
        let total = run["total_ms"].as_f64().unwrap();
        assert!(0.0 < ttft && ttft < e2e && e2e <= total, "{run}");
        let itl: Vec<f64> = run["itl_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_f64().unwrap())
            .collect();
        assert_eq!(itl.len(), 99, "one gap per token after the first");
        assert!(itl.iter().all(|&g| g >= 0.0), "monotonic timestamps");
        let sum: f64 = itl.iter().sum();
        assert!(
            (ttft + sum - e2e).abs() < 1e-6 * e2e,
            "gaps add up to E2E − TTFT"
        );
        assert_eq!(run["multi_token_deliveries"], 0);
    }
    // Provenance.
    assert_eq!(j["tool"]["llama_cpp_build"], "b11434");
    assert!(j["system"]["cpu_logical_cores"].as_u64().unwrap() >= 1);
    assert_eq!(j["config"]["warmup_runs"], 1);
    assert_eq!(j["config"]["measurement_runs"], 3);
}

#[test]
fn results_keep_every_key_of_the_seed_files() {
    let dir = tempfile::tempdir().unwrap();
    let (out, ours) = bench(
        dir.path(),
        &[
            "--prompt",
            "all",
            "--max-tokens",
            "8",
            "--warmup",
            "0",
            "--runs",
            "2",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in [
        "benchmark_qwen3-8b-gpu_20260109_033509.json",
        "benchmark_qwen3-8b-gpu_20260109_035757.json",
    ] {
        let seed = read_json(&fixtures.join(name));
        let seed_backend = seed["results"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        // Rename the seed's backend key to ours and compare key sets.
        let mut seed_paths = Vec::new();
        key_paths(&seed, "", &mut seed_paths);
        let mut our_paths = Vec::new();
        key_paths(&ours, "", &mut our_paths);
        for path in seed_paths {
            let path = path.replace(&format!("results.{seed_backend}"), "results.llamacpp");
            if path.starts_with("results.llamacpp") || !path.starts_with("results.") {
                assert!(our_paths.contains(&path), "missing seed key {path}");
            }
        }
    }
}

/// A prompt the test model answers in a few tokens and then ends (greedy): its end-of-generation
/// token comes well before the budget.
const EOS_PROMPT: &str =
    r#"[{"name": "capital", "prompt": "What is the capital of France?", "max_tokens": 64}]"#;

#[test]
fn without_ignore_eos_the_model_stops_at_its_end_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts.json");
    std::fs::write(&prompts, EOS_PROMPT).unwrap();
    let (out, j) = bench(
        dir.path(),
        &[
            "--prompt-file",
            s(&prompts),
            "--prompt",
            "all",
            "--ignore-eos",
            "false",
            // llama.cpp's built-in ChatML (no system prompt), with which the model answers and ends.
            "--chat-template",
            "chatml",
            "--runs",
            "2",
            "--warmup",
            "0",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(j["config"]["ignore_eos"], false);
    let p = &j["results"]["llamacpp"]["prompts"]["capital"];
    assert_eq!(p["max_tokens"], 64);
    let runs = p["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let mut eos = 0;
    for run in runs {
        let n = run["tokens_generated"].as_u64().unwrap();
        // Whether the end-of-generation token itself is counted, it is within the budget; a run
        // that stops at the budget generated exactly max tokens.
        match run["finish_reason"].as_str().unwrap() {
            "eos" => {
                eos += 1;
                assert!((1..=64).contains(&n), "{run}");
            }
            "length" => assert_eq!(n, 64, "{run}"),
            other => panic!("unexpected finish {other}"),
        }
        assert_eq!(
            run["itl_ms"].as_array().unwrap().len() as u64 + 1,
            n,
            "one delivery per token: {run}"
        );
    }
    assert_eq!(eos, 2, "greedy: both runs end at the model's end token");
    let text = p["sample_output"].as_str().unwrap();
    assert!(text.contains("Paris"), "{text}");

    // The same prompt with ignore-eos (the default) runs to the budget.
    let (out, j) = bench(
        &dir.path().join("ignored"),
        &[
            "--prompt-file",
            s(&prompts),
            "--prompt",
            "all",
            "--runs",
            "1",
            "--warmup",
            "0",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let run = &j["results"]["llamacpp"]["prompts"]["capital"]["runs"][0];
    assert_eq!(run["finish_reason"], "length");
    assert_eq!(run["tokens_generated"], 64);
}

#[test]
fn greedy_runs_produce_the_same_text() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = bench(
        dir.path(),
        &["--max-tokens", "20", "--runs", "2", "--warmup", "0"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let (out2, j2) = bench(
        &dir.path().join("again"),
        &["--max-tokens", "20", "--runs", "1", "--warmup", "0"],
    );
    assert!(out2.status.success(), "{}", show(&out2));
    let text = |j: &Value| j["results"]["llamacpp"]["prompts"]["short"]["sample_output"].clone();
    assert_eq!(text(&j), text(&j2));
}

#[test]
fn a_thread_sweep_gives_one_entry_per_combination() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = bench(
        dir.path(),
        &[
            "--threads",
            "1,2",
            "--max-tokens",
            "8",
            "--runs",
            "2",
            "--warmup",
            "0",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let results = j["results"].as_object().unwrap();
    let keys: Vec<&String> = results.keys().collect();
    assert_eq!(keys, ["llamacpp@threads=1", "llamacpp@threads=2"]);
    for (i, (_, e)) in results.iter().enumerate() {
        assert_eq!(e["settings"]["threads"], i as u64 + 1);
        assert_eq!(e["sweep"]["threads"], i as u64 + 1);
        assert_eq!(e["prompts"]["short"]["tokens_generated"]["mean"], 8.0);
    }
}

// ---- bad input: one clear line, non-zero exit, no panic, no results file ----

fn bad_model(path: &Path, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let out = run(&[
        "--model",
        path.to_str().unwrap(),
        "--prompt",
        "short",
        "--runs",
        "1",
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert_clean_error(&out, needle);
    assert!(!out_path.exists());
}

#[test]
fn missing_directory_and_non_gguf_models() {
    let dir = tempfile::tempdir().unwrap();
    bad_model(&dir.path().join("absent.gguf"), "not found");
    bad_model(dir.path(), "is a directory");
    let txt = dir.path().join("notes.gguf");
    std::fs::write(&txt, "this is not a model").unwrap();
    bad_model(&txt, "not a GGUF file");
}

#[test]
fn truncated_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(model()).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    bad_model(&cut, "truncated: the tensor data ends at byte");
}

#[test]
fn model_without_chat_template_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(model()).unwrap();
    // Rename the metadata key (same length), so llama.cpp finds no template.
    let key = b"tokenizer.chat_template";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the model has a template");
    bytes[at + key.len() - 1] = b'X';
    let plain = dir.path().join("plain.gguf");
    std::fs::write(&plain, &bytes).unwrap();
    bad_model(&plain, "--chat-template");
    // With a named template or raw text, the same model runs.
    let out_path = dir.path().join("r.json");
    let out = run(&[
        "--model",
        plain.to_str().unwrap(),
        "--prompt",
        "short",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--max-tokens",
        "4",
        "--chat-template",
        "chatml",
        "--quiet",
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let out_path = dir.path().join("raw.json");
    let out = run(&[
        "--model",
        plain.to_str().unwrap(),
        "--prompt",
        "short",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--max-tokens",
        "4",
        "--raw-prompt",
        "--quiet",
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(read_json(&out_path)["config"]["prompt_mode"], "raw");
}

#[test]
fn context_too_small_names_ctx_size() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let out = run(&[
        "--model",
        model().to_str().unwrap(),
        "--prompt",
        "short",
        "--ctx-size",
        "64",
        "--runs",
        "1",
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert_clean_error(&out, "--ctx-size");
    assert!(!out_path.exists());
}

#[test]
fn unknown_prompt_and_zero_runs() {
    let m = model();
    let out = run(&["--model", m.to_str().unwrap(), "--prompt", "gigantic"]);
    assert_clean_error(&out, "unknown prompt 'gigantic'");
    let out = run(&["--model", m.to_str().unwrap(), "--runs", "0"]);
    assert_clean_error(&out, "--runs");
}
