//! Reasoning models: TTFO (first answer token), reasoning and answer tokens from a scripted engine
//! and from streams in llama-server's and vLLM's reasoning formats; a run whose reasoning does not
//! end has a null TTFO with its reason; runs of other models record nothing about reasoning; and
//! `--thinking` / `--chat-template-kwargs` reach the server as `chat_template_kwargs`.

mod common;

use std::path::{Path, PathBuf};

use common::fixture_server::{fixture as serve, End, Reply};
use common::*;
use serde_json::{json, Value};

const REASONING_KEYS: [&str; 4] = [
    "ttfo_ms",
    "reasoning_tokens",
    "answer_tokens",
    "ttfo_missing_runs",
];

fn mock(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "--engine",
        "mock",
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "3",
        "--max-tokens",
        "10",
        "--mock-ttft-ms",
        "2",
        "--mock-itl-ms",
        "1",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let (out, j) = run_to(&dir.join("r.json"), &args);
    assert!(out.status.success(), "{}", show(&out));
    j["results"]["mock"]["prompts"]["short"].clone()
}

#[test]
fn scripted_reasoning_gives_ttfo_and_the_token_split() {
    let dir = tempfile::tempdir().unwrap();
    let p = mock(dir.path(), &["--mock-reasoning-tokens", "4"]);
    for r in p["runs"].as_array().unwrap() {
        assert_eq!(r["reasoning_tokens"], 4, "{r}");
        assert_eq!(r["answer_tokens"], 6, "{r}");
        assert_eq!(r["tokens_generated"], 10, "{r}");
        let (ttft, ttfo) = (
            r["ttft_ms"].as_f64().unwrap(),
            r["ttfo_ms"].as_f64().unwrap(),
        );
        // Four reasoning tokens at least 1 ms apart come before the first answer token.
        assert!(ttfo >= ttft + 4.0 * 0.9, "ttft {ttft} ttfo {ttfo}");
        assert!(r.get("ttfo_note").is_none());
    }
    for key in ["ttfo_ms", "reasoning_tokens", "answer_tokens"] {
        for stat in ["mean", "std", "min", "max", "p50", "p95", "p99"] {
            assert!(p[key][stat].is_number(), "{key}.{stat}: {p}");
        }
    }
    assert_eq!(p["reasoning_tokens"]["mean"], 4.0);
    assert_eq!(p["ttfo_missing_runs"], 0);
}

#[test]
fn reasoning_that_does_not_end_has_a_null_ttfo_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = mock(dir.path(), &["--mock-reasoning-tokens", "50"]);
    for r in p["runs"].as_array().unwrap() {
        assert!(r.get("ttfo_ms").is_none(), "no TTFO, not zero: {r}");
        assert_eq!(r["reasoning_tokens"], 10);
        assert_eq!(r["answer_tokens"], 0);
        let note = r["ttfo_note"].as_str().unwrap();
        assert!(note.contains("did not end within the run's 10"), "{note}");
        assert!(r["ttft_ms"].is_number(), "TTFT stays: {r}");
    }
    assert!(p.get("ttfo_ms").is_none());
    assert_eq!(p["ttfo_missing_runs"], 3);
}

#[test]
fn runs_of_models_that_do_not_reason_record_nothing_about_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = mock(dir.path(), &[]);
    for key in REASONING_KEYS {
        assert!(p.get(key).is_none(), "{key}: {p}");
        for r in p["runs"].as_array().unwrap() {
            assert!(r.get(key).is_none(), "{key}: {r}");
        }
    }
}

fn sse(name: &str) -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sse")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs the HTTP engine once against a server replaying `stream`; returns the prompt's results
/// and the request body the server got.
fn over_http(owned_by: &'static str, stream: String, extra: &[&str]) -> (Value, Value) {
    let pieces: Vec<String> = stream.split_inclusive("\n\n").map(str::to_string).collect();
    let server = serve(owned_by, move |_| {
        Reply::Stream(pieces.clone(), End::NoDone)
    });
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--engine",
        "http",
        "--url",
        &server.url,
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "1",
        "--max-tokens",
        "10",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let (out, j) = run_to(&dir.path().join("r.json"), &args);
    assert!(out.status.success(), "{}", show(&out));
    let body = server.bodies.lock().unwrap()[0].clone();
    (j["results"]["http"]["prompts"]["short"].clone(), body)
}

fn check_split(p: &Value, file: &str) {
    let r = &p["runs"][0];
    assert_eq!(r["tokens_generated"], 10, "{file}: {r}");
    // Reasoning deltas are counted as tokens, never as chunks: the first carried two (the start
    // marker has no delta of its own); the end marker and the whitespace after it are counted
    // with the first answer delta.
    assert_eq!(r["reasoning_tokens"], 5, "{file}: {r}");
    assert_eq!(r["answer_tokens"], 5, "{file}: {r}");
    let (ttft, ttfo) = (
        r["ttft_ms"].as_f64().unwrap(),
        r["ttfo_ms"].as_f64().unwrap(),
    );
    assert!(ttfo > ttft, "{file}: ttft {ttft} ttfo {ttfo}");
    assert!(p["ttfo_ms"]["mean"].is_number(), "{file}: {p}");
}

#[test]
fn llama_servers_reasoning_content_deltas() {
    let (p, body) = over_http("llamacpp", sse("llama-server-reasoning-chat.sse"), &[]);
    check_split(&p, "llama-server");
    assert_eq!(p["runs"][0]["server"]["count_source"], "timings");
    assert!(body.get("chat_template_kwargs").is_none(), "{body}");
}

#[test]
fn vllms_reasoning_deltas() {
    let (p, body) = over_http(
        "vllm",
        sse("vllm-reasoning-chat.sse"),
        &["--thinking", "on"],
    );
    check_split(&p, "vllm");
    assert_eq!(p["runs"][0]["server"]["count_source"], "token_ids");
    assert_eq!(
        body["chat_template_kwargs"],
        json!({"enable_thinking": true})
    );
}

#[test]
fn a_stream_that_only_reasons_has_no_ttfo() {
    let only = sse("llama-server-reasoning-chat.sse")
        .replace("\"content\":\"", "\"reasoning_content\":\"");
    let (p, body) = over_http(
        "llamacpp",
        only,
        &[
            "--chat-template-kwargs",
            r#"{"enable_thinking": true, "custom": 1}"#,
            "--thinking",
            "off",
        ],
    );
    let r = &p["runs"][0];
    assert_eq!(
        (r["reasoning_tokens"].as_u64(), r["answer_tokens"].as_u64()),
        (Some(10), Some(0))
    );
    assert!(r.get("ttfo_ms").is_none(), "{r}");
    assert!(r["ttfo_note"].as_str().unwrap().contains("did not end"));
    assert_eq!(p["ttfo_missing_runs"], 1);
    // --thinking wins over the same key in --chat-template-kwargs; the rest is passed as given.
    assert_eq!(
        body["chat_template_kwargs"],
        json!({"enable_thinking": false, "custom": 1})
    );
}

#[test]
fn a_plain_stream_records_nothing_about_reasoning() {
    let (p, _) = over_http("llamacpp", sse("llama-server-b11434-chat.sse"), &[]);
    for key in REASONING_KEYS {
        assert!(p.get(key).is_none(), "{key}: {p}");
        assert!(p["runs"][0].get(key).is_none(), "{key}");
    }
}

#[test]
fn report_and_compare_show_ttfo_beside_ttft_only_for_reasoning_runs() {
    let dir = tempfile::tempdir().unwrap();
    let think = dir.path().join("think.json");
    let plain = dir.path().join("plain.json");
    let common = [
        "--engine",
        "mock",
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "3",
        "--max-tokens",
        "8",
        "--mock-ttft-ms",
        "1",
        "--mock-itl-ms",
        "0.5",
        "--quiet",
    ];
    let mut a = common.to_vec();
    a.extend(["--mock-reasoning-tokens", "3"]);
    let (out, _) = run_to(&think, &a);
    assert!(out.status.success(), "{}", show(&out));
    let (out, _) = run_to(&plain, &common);
    assert!(out.status.success(), "{}", show(&out));

    let table = run(&["report", s(&think)]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("TTFO ms"), "{text}");
    assert!(text.contains("reasoning 3.0 + answer 5.0 tokens"), "{text}");
    let md = run(&["report", s(&think), "--format", "md"]);
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(
        text.contains("TTFO ms") && text.contains("3.0 / 5.0"),
        "{text}"
    );
    let cmp = run(&["compare", s(&think), s(&think)]);
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert!(text.contains("TTFO ms"), "{}", show(&cmp));

    for args in [
        vec!["report", s(&plain)],
        vec!["report", s(&plain), "--format", "md"],
        vec!["compare", s(&plain), s(&plain)],
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("TTFO"), "{args:?}: {text}");
    }
}

/// The test model made to think: its tokenizer's ids 8190 and `end_id` become `<think>` and
/// `</think>` (the merges that built their old texts are dropped), and its template opens a
/// `<think>` block in the generation prompt, as DeepSeek-R1's does. The weights are the test
/// model's own, so the greedy output is unchanged: its 8th token (id 6026) now reads `</think>`.
fn thinking_tiny_llama(dir: &Path, end_id: i64) -> PathBuf {
    let src = tiny_llama();
    let model = dir.join("thinking-tiny-llama");
    std::fs::create_dir_all(&model).unwrap();
    for f in [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "special_tokens_map.json",
    ] {
        std::os::unix::fs::symlink(src.join(f), model.join(f)).unwrap();
    }
    let mut tok: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("tokenizer.json")).unwrap())
            .unwrap();
    let vocab = tok["model"]["vocab"].as_object_mut().unwrap();
    let mut old = Vec::new();
    for (id, text) in [(8190, "<think>"), (end_id, "</think>")] {
        let (k, _) = vocab
            .iter()
            .find(|(_, v)| v.as_i64() == Some(id))
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
        vocab.remove(&k);
        vocab.insert(text.into(), json!(id));
        old.push(k);
    }
    let merges = tok["model"]["merges"].as_array_mut().unwrap();
    merges.retain(|m| {
        let parts: Vec<&str> = m
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        let joined = parts.concat();
        !old.iter()
            .any(|o| *o == joined || parts.contains(&o.as_str()))
    });
    for (id, text) in [(8190, "<think>"), (end_id, "</think>")] {
        tok["added_tokens"].as_array_mut().unwrap().push(json!({
            "id": id, "content": text, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": false
        }));
    }
    std::fs::write(model.join("tokenizer.json"), tok.to_string()).unwrap();
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("tokenizer_config.json")).unwrap())
            .unwrap();
    cfg["chat_template"] = json!(
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}{# the reasoning ends with </think> #}"
    );
    std::fs::write(model.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    model
}

#[test]
fn vllm_in_process_splits_reasoning_by_token_ids() {
    let dir = tempfile::tempdir().unwrap();
    let model = thinking_tiny_llama(dir.path(), 6026);
    let env = vllm_env();
    let short = inproc_bench::prompts::builtin()
        .into_iter()
        .find(|p| p.name == "short")
        .unwrap()
        .prompt;
    let prompts = dir.path().join("p.json");
    std::fs::write(
        &prompts,
        json!([
            {"name": "ends", "prompt": short, "max_tokens": 12},
            {"name": "cut", "prompt": short, "max_tokens": 4}
        ])
        .to_string(),
    )
    .unwrap();
    let args = vllm_args(
        &model,
        &env,
        &[
            "--prompt-file",
            s(&prompts),
            "--prompt",
            "all",
            "--warmup",
            "0",
            "--runs",
            "1",
            "--threads",
            "1",
        ],
    );
    let (out, j) = run_to(&dir.path().join("r.json"), &args);
    assert!(out.status.success(), "{}", show(&out));
    let e = &j["results"]["vllm"];
    assert_eq!(
        e["details"]["think_markers"],
        json!(["<think>", "</think>"])
    );
    // The prompt opens the block; the 8th generated token is `</think>`, the 9th the answer.
    let ends = &e["prompts"]["ends"]["runs"][0];
    assert_eq!(
        (ends["reasoning_tokens"].as_u64(), ends["answer_tokens"].as_u64()),
        (Some(8), Some(4)),
        "counted in tokens; if the test model's greedy output changed, its 8th token is no longer id 6026: {ends}"
    );
    let (ttft, ttfo) = (
        ends["ttft_ms"].as_f64().unwrap(),
        ends["ttfo_ms"].as_f64().unwrap(),
    );
    assert!(ttfo > ttft, "ttft {ttft} ttfo {ttfo}");
    // Four tokens are all reasoning: no TTFO (null, not zero), and the reason.
    let cut = &e["prompts"]["cut"];
    let r = &cut["runs"][0];
    assert!(r.get("ttfo_ms").is_none(), "{r}");
    assert_eq!(
        (r["reasoning_tokens"].as_u64(), r["answer_tokens"].as_u64()),
        (Some(4), Some(0))
    );
    assert!(r["ttfo_note"].as_str().unwrap().contains("did not end"));
    assert_eq!(cut["ttfo_missing_runs"], 1);
}
