//! Load on the real llama.cpp engine (SmolLM2-135M): exact token counts per request at
//! concurrency > 1, no cross-talk between the sequences of one batch (greedy: each request's
//! tokens equal its run alone on the single-stream path), and bad load flags refused in one line
//! before anything loads.

mod common;

use std::path::PathBuf;

use common::{bin, model, s};
use inproc_bench::engine::llamacpp::{LlamaCppBatch, LlamaCppEngine, LlamaCppSettings};
use inproc_bench::engine::streams::{BatchEngine, StreamEvent, StreamRequest};
use inproc_bench::engine::{Engine, PreparedPrompt, PromptMode, Request, Sampling};
use inproc_bench::measure::{Recorder, StopFlag};
use inproc_bench::prompts::PromptSpec;
use serde_json::Value;

fn settings(ctx: u32) -> LlamaCppSettings {
    common::llama_settings(ctx, 1)
}

fn greedy() -> Sampling {
    Sampling {
        temperature: 0.0,
        seed: 42,
        ignore_eos: true,
        prefix_cache: false,
    }
}

const TOKENS: u32 = 16;

fn prompts() -> Vec<PromptSpec> {
    [
        "Name three colours.",
        "Write one sentence about the sea.",
        "What is 2 + 2? Explain briefly.",
        "List the days of the week.",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| PromptSpec {
        name: format!("p{i}"),
        prompt: p.to_string(),
        max_tokens: TOKENS,
        description: None,
    })
    .collect()
}

#[test]
fn four_sequences_in_one_batch_give_exact_counts_and_the_tokens_of_their_runs_alone() {
    let mode = PromptMode::Chat {
        template: None,
        options: Default::default(),
    };
    let mut batch = LlamaCppBatch::load(settings(1024), 4).expect("load with 4 sequences");
    assert_eq!(batch.max_streams(), 4);
    let specs = prompts();
    let ids: Vec<Vec<i64>> = specs
        .iter()
        .map(|p| batch.prompt_tokens(p, &mode).unwrap())
        .collect();
    let mut outputs: Vec<Option<Vec<i64>>> = vec![None; 4];
    let mut counts = [0u32; 4];
    let sink =
        |ev: StreamEvent, outputs: &mut Vec<Option<Vec<i64>>>, counts: &mut [u32; 4]| match ev {
            StreamEvent::Tokens { id, n } => counts[id] += n,
            StreamEvent::Done { id, outcome } => outputs[id] = Some(outcome.token_ids),
            StreamEvent::Failed { id, error } => panic!("request {id} failed: {error}"),
        };
    // Two requests first; the other two join while those generate (as llama-server's slots).
    for (i, prompt) in ids.iter().enumerate().take(2) {
        let req = StreamRequest {
            id: i,
            prompt: prompt.clone(),
            max_tokens: TOKENS,
        };
        batch.admit(req, &greedy()).unwrap();
    }
    for _ in 0..3 {
        batch
            .step(&mut |ev| sink(ev, &mut outputs, &mut counts))
            .unwrap();
    }
    for (i, prompt) in ids.iter().enumerate().skip(2) {
        let req = StreamRequest {
            id: i,
            prompt: prompt.clone(),
            max_tokens: TOKENS,
        };
        batch.admit(req, &greedy()).unwrap();
    }
    assert_eq!(batch.in_flight(), 4);
    let mut steps = 0;
    while batch.in_flight() > 0 {
        batch
            .step(&mut |ev| sink(ev, &mut outputs, &mut counts))
            .unwrap();
        steps += 1;
        assert!(steps < 200, "the batch never finished");
    }
    assert_eq!(counts, [TOKENS; 4], "tokens reported per request");
    let batched: Vec<Vec<i64>> = outputs.into_iter().map(|o| o.unwrap()).collect();
    assert!(batched.iter().all(|t| t.len() == TOKENS as usize));
    drop(batch);

    // Each request alone, on the single-stream path.
    let mut single = LlamaCppEngine::load(settings(1024)).unwrap();
    for (i, spec) in specs.iter().enumerate() {
        let prepared: PreparedPrompt = single.prepare(spec, &mode).unwrap();
        let mut rec = Recorder::new(TOKENS as usize, StopFlag::new());
        rec.start();
        let sampling = greedy();
        let out = single
            .generate(
                &Request {
                    prompt: &prepared,
                    sampling: &sampling,
                    prefix_cache: false,
                },
                &mut rec,
            )
            .unwrap();
        let agree = out
            .token_ids
            .iter()
            .zip(&batched[i])
            .take_while(|(a, b)| a == b)
            .count();
        eprintln!("request {i}: batched and alone agree on {agree} of {TOKENS} tokens");
        assert_eq!(
            out.token_ids, batched[i],
            "request {i}: its tokens in the batch differ from its run alone"
        );
    }
}

fn run_cli(args: &[&str]) -> std::process::Output {
    bin().args(args).env("CI", "1").output().unwrap()
}

#[test]
fn a_closed_loop_level_records_every_request_with_its_exact_token_count() {
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("load.json");
    let m = model();
    let o = run_cli(&[
        "--model",
        s(&m),
        "--concurrency",
        "4",
        "--requests",
        "6",
        "--input-tokens",
        "24",
        "--output-tokens",
        "8",
        "--ctx-size",
        "512",
        "--threads",
        "1",
        "--warmup",
        "0",
        "--slo",
        "ttft=100000,itl=100000",
        "--quiet",
        "--output",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let level = &v["load"]["levels"]["llamacpp@concurrency=4"];
    let reqs = level["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 6);
    for r in reqs {
        assert_eq!(r["output_tokens"], 8, "{r}");
        assert_eq!(r["prompt_tokens"], 24, "{r}");
        assert_eq!(r["itl_ms"].as_array().unwrap().len(), 7);
        assert!(r.get("error").is_none());
    }
    let sum = &level["summary"];
    assert_eq!(
        (sum["completed"].as_u64(), sum["failed"].as_u64()),
        (Some(6), Some(0))
    );
    assert!(sum["achieved_concurrency"].as_f64().unwrap() > 1.5, "{sum}");
    assert_eq!(sum["goodput"]["requests_met"], 6);
    assert!(sum["ttft_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(level["settings"]["streams"], 4);
    assert_eq!(level["settings"]["ctx_per_stream"], 128);
    // The usual header says how the file was made; single-stream entries stay empty.
    assert_eq!(v["results"].as_object().unwrap().len(), 0);
    assert!(v["tool"]["version"].is_string() && v["system"].is_object());
}

#[test]
fn bad_load_flags_get_one_line_naming_the_fix_before_the_model_loads() {
    // The model does not exist: every error below comes before any load is tried.
    let cases: [(&[&str], &str); 6] = [
        (&["--concurrency", "0"], "--concurrency"),
        (&["--concurrency", "2,-1"], "--concurrency"),
        (&["--request-rate", "0"], "--request-rate"),
        (
            &["--request-rate", "2", "--slo", "latency=5"],
            "unknown metric 'latency'",
        ),
        (
            &[
                "--concurrency",
                "8",
                "--ctx-size",
                "512",
                "--input-tokens",
                "64",
                "--output-tokens",
                "64",
            ],
            "raise --ctx-size to at least 1024",
        ),
        (
            &[
                "--concurrency",
                "300",
                "--input-tokens",
                "4",
                "--output-tokens",
                "4",
            ],
            "lower it",
        ),
    ];
    for (flags, expect) in cases {
        let mut args = vec!["--model", "/nonexistent/model.gguf"];
        args.extend_from_slice(flags);
        let o = run_cli(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{flags:?} succeeded");
        assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");
        assert!(
            err.starts_with("Error: ") && err.contains(expect),
            "{flags:?}: {err}"
        );
        assert!(
            !err.contains("nonexistent"),
            "{flags:?} tried the model: {err}"
        );
    }
}

#[test]
fn greedy_requests_at_concurrency_4_generate_the_tokens_they_generate_at_concurrency_1() {
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("agree.json");
    let m = model();
    let o = run_cli(&[
        "--model",
        s(&m),
        "--concurrency",
        "1,4",
        "--requests",
        "4",
        "--input-tokens",
        "24",
        "--output-tokens",
        "16",
        "--temperature",
        "0",
        "--ctx-size",
        "1024",
        "--threads",
        "1",
        "--warmup",
        "0",
        "--quiet",
        "--output",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let digests = |level: &str, key: &str| -> Vec<String> {
        let reqs = v["load"]["levels"][level]["requests"].as_array().unwrap();
        assert_eq!(reqs.len(), 4, "{level}");
        reqs.iter()
            .map(|r| {
                r[key]
                    .as_str()
                    .expect("every request has a digest")
                    .to_string()
            })
            .collect()
    };
    for key in ["output_digest", "output_prefix_digest"] {
        let one = digests("llamacpp@concurrency=1", key);
        let four = digests("llamacpp@concurrency=4", key);
        // Different prompts generate different tokens: the digests tell requests apart.
        assert!(one.iter().skip(1).any(|d| *d != one[0]), "{one:?}");
        assert_eq!(
            four, one,
            "{key}: request by request, concurrency 4 against 1"
        );
    }
}
