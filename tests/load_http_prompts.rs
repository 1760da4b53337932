//! Load over HTTP with a prompt set (no `--input-tokens`): each prompt templated and tokenized by
//! the server once before the level, every request sending those ids; with `--compare-http` the
//! in-process engine's ids on both sides. Loopback fixtures (llama-server's and vLLM's tokenizer
//! endpoints), and real llama-server and `vllm serve` with exact per-request token counts.

mod common;

use std::sync::Arc;

use common::fixture_server::{fixture_ids, stream_head, template};
use common::load_fixture::{finish, level, mini_as, outputs, token, Mini};
use common::{llama_server, model, run_to, s, show};
use inproc_bench::compare_http::llama_server::ServerSettings;
use inproc_bench::engine::llamacpp::{LlamaCppEngine, LlamaCppSettings};
use inproc_bench::engine::{Engine, PromptMode};
use inproc_bench::measure::StopFlag;
use inproc_bench::prompts::{self, PromptSpec};
use inproc_bench::server::ServerProcess;
use serde_json::Value;

/// A fixture of `owned_by`'s flavor answering every completion with 2 tokens.
fn two_tokens(owned_by: &'static str) -> Mini {
    mini_as(owned_by, Arc::default(), |_, w| {
        stream_head(w)?;
        for i in 0..2 {
            token(w, i)?;
        }
        finish(w, 2)
    })
}

/// `--engine http` on `url`, concurrency 2, `requests` requests of the prompt set, 2 tokens each.
fn run_prompts(url: &str, requests: &str, extra: &[&str]) -> (std::process::Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let mut args = vec![
        "--engine",
        "http",
        "--url",
        url,
        "--concurrency",
        "2",
        "--requests",
        requests,
        "--max-tokens",
        "2",
        "--warmup",
        "0",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run_to(&out, &args)
}

/// The prompt ids the completions carried, in arrival order of the bodies.
fn sent(f: &Mini) -> Vec<Vec<i64>> {
    f.bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            b["prompt"]
                .as_array()
                .unwrap_or_else(|| panic!("token ids expected in {b}"))
                .iter()
                .map(|t| t.as_i64().unwrap())
                .collect()
        })
        .collect()
}

fn paths(f: &Mini) -> Vec<String> {
    f.tokenizer
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect()
}

#[test]
fn llama_server_templates_and_tokenizes_each_prompt_once() {
    let f = two_tokens("llamacpp");
    let (o, v) = run_prompts(&f.url, "5", &[]);
    assert!(o.status.success(), "{}", show(&o));
    let set = prompts::builtin();
    assert_eq!(set.len(), 3);
    // Once per prompt, before the level: template, then tokenize.
    assert_eq!(
        paths(&f),
        ["/apply-template", "/tokenize"].repeat(3),
        "{:?}",
        f.tokenizer.lock().unwrap()
    );
    for (_, body) in f.tokenizer.lock().unwrap().iter() {
        if body["content"].is_string() {
            assert_eq!(body["add_special"], true, "{body}");
            assert_eq!(body["parse_special"], true, "{body}");
        } else {
            assert_eq!(body["messages"][0]["role"], "user", "{body}");
        }
    }
    let want: Vec<Vec<i64>> = set
        .iter()
        .map(|p| fixture_ids(&template(&p.prompt), true))
        .collect();
    let mut got = sent(&f);
    got.sort();
    let mut expected: Vec<Vec<i64>> = (0..5).map(|i| want[i % 3].clone()).collect();
    expected.sort();
    assert_eq!(got, expected);
    let l = level(&v, "http@concurrency=2");
    assert_eq!(outputs(l), vec![2; 5]);
    let how = l["settings"]["prompt_ids"].as_str().unwrap();
    assert!(how.contains("/apply-template"), "{how}");
    let workload = v["load"]["workload"].as_str().unwrap();
    assert!(
        workload.starts_with("prompts: short,medium,long"),
        "{workload}"
    );
    assert!(workload.contains("/apply-template"), "{workload}");
    assert_eq!(v["config"]["prompt"], "all");
}

#[test]
fn a_raw_prompt_file_is_tokenized_without_a_template() {
    let f = two_tokens("llamacpp");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::write(
        &file,
        r#"[{"name": "a", "prompt": "one two three", "max_tokens": 2},
            {"name": "b", "prompt": "four", "max_tokens": 2}]"#,
    )
    .unwrap();
    let (o, v) = run_prompts(&f.url, "4", &["--prompt-file", s(&file), "--raw-prompt"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(paths(&f), ["/tokenize", "/tokenize"]);
    let mut got = sent(&f);
    got.sort();
    let (a, b) = (
        fixture_ids("one two three", true),
        fixture_ids("four", true),
    );
    let mut want = vec![a.clone(), a, b.clone(), b];
    want.sort();
    assert_eq!(got, want);
    assert!(v["config"]["prompt_file"]
        .as_str()
        .is_some_and(|p| p.ends_with("p.json")));
    let how = level(&v, "http@concurrency=2")["settings"]["prompt_ids"].clone();
    assert!(!how.to_string().contains("apply-template"), "{how}");
}

#[test]
fn vllm_tokenizes_the_chat_messages() {
    let f = two_tokens("vllm");
    let (o, v) = run_prompts(&f.url, "3", &["--prompt", "short"]);
    assert!(o.status.success(), "{}", show(&o));
    let asked = f.tokenizer.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let (path, body) = &asked[0];
    assert_eq!(path, "/tokenize");
    assert_eq!(body["model"], "fixture-model");
    assert_eq!(body["add_generation_prompt"], true);
    let short = prompts::builtin().remove(0);
    assert_eq!(body["messages"][0]["content"], short.prompt.as_str());
    let ids = fixture_ids(&template(&short.prompt), false);
    assert_eq!(sent(&f), vec![ids.clone(), ids.clone(), ids]);
    assert_eq!(outputs(level(&v, "http@concurrency=2")), vec![2; 3]);
}

#[test]
fn a_server_without_a_known_tokenizer_is_refused_in_one_line() {
    let f = two_tokens("fixture");
    let (o, _) = run_prompts(&f.url, "2", &[]);
    common::assert_clean_error(&o, "--input-tokens N");
    assert!(f.bodies.lock().unwrap().is_empty(), "no request was sent");
}

/// The in-process settings of the real tests: the test model, `ctx` tokens, one thread.
fn settings(ctx: u32) -> LlamaCppSettings {
    common::llama_settings(ctx, 1)
}

/// Prompt tokens of each prompt of `set` through the in-process chat template and tokenizer.
fn in_process_counts(set: &[PromptSpec]) -> Vec<u64> {
    let mut engine = LlamaCppEngine::load(settings(2048)).unwrap_or_else(|e| panic!("{e}"));
    let chat = PromptMode::Chat {
        template: None,
        options: Default::default(),
    };
    set.iter()
        .map(|p| {
            engine
                .prepare(p, &chat)
                .unwrap_or_else(|e| panic!("{e}"))
                .prompt_tokens
                .expect("a token count")
        })
        .collect()
}

#[test]
fn llama_server_evaluates_exactly_the_tokens_of_each_prompt() {
    let mut launch = ServerSettings::matching(&settings(2 * 1024), llama_server()).launch();
    let i = launch.args.iter().position(|a| a == "--parallel").unwrap();
    launch.args[i + 1] = "2".into();
    let server = ServerProcess::launch(&launch, &StopFlag::new()).unwrap_or_else(|e| panic!("{e}"));
    let set: Vec<PromptSpec> = prompts::select(prompts::builtin(), "short,medium").unwrap();
    let counts = in_process_counts(&set);
    let (o, v) = run_prompts(server.url(), "4", &["--prompt", "short,medium"]);
    assert!(o.status.success(), "{}", show(&o));
    let l = level(&v, "http@concurrency=2");
    assert_eq!(outputs(l), vec![2; 4]);
    let reqs = l["requests"].as_array().unwrap();
    let http = l["http"]["requests"].as_array().unwrap();
    for (r, h) in reqs.iter().zip(http) {
        let i = r["index"].as_u64().unwrap() as usize;
        let want = counts[i % 2];
        assert_eq!(r["prompt_tokens"], want, "request {i}: {r}");
        assert_eq!(h["server_prompt_n"], want, "request {i}: {h}");
        assert_eq!(h["server_predicted_n"], 2, "request {i}: {h}");
    }
}

#[test]
fn compare_http_sends_the_in_process_ids_to_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let m = model();
    let o = common::bin()
        .args([
            "--model",
            s(&m),
            "--ctx-size",
            "2048",
            "--threads",
            "1",
            "--compare-http",
            "--concurrency",
            "2",
            "--requests",
            "4",
            "--prompt",
            "short,medium",
            "--max-tokens",
            "3",
            "--warmup",
            "0",
            "--output",
            s(&out),
        ])
        .env("CI", "1")
        .env("INPROC_LLAMA_SERVER", llama_server())
        .output()
        .expect("the binary starts");
    assert!(o.status.success(), "{}", show(&o));
    let v = common::read_json(&out);
    let set: Vec<PromptSpec> = prompts::select(prompts::builtin(), "short,medium").unwrap();
    let counts = in_process_counts(&set);
    let inproc = level(&v, "llamacpp@concurrency=2");
    let http = level(&v, "llamacpp-http@concurrency=2");
    for l in [inproc, http] {
        assert_eq!(outputs(l), vec![3; 4]);
        let how = l["settings"]["prompt_ids"].as_str().unwrap();
        assert!(how.contains("in-process"), "{how}");
        for r in l["requests"].as_array().unwrap() {
            let i = r["index"].as_u64().unwrap() as usize;
            assert_eq!(r["prompt_tokens"], counts[i % 2], "request {i}: {r}");
        }
    }
    for h in http["http"]["requests"].as_array().unwrap() {
        let i = h["index"].as_u64().unwrap() as usize;
        assert_eq!(h["server_prompt_n"], counts[i % 2], "request {i}: {h}");
    }
    assert_eq!(v["load"]["http_comparison"].as_array().unwrap().len(), 1);
}

/// Prompt tokens of `text` as one user message through the tiny model's chat template, as the
/// model's own tokenizer (transformers, in the vLLM environment) counts them.
fn hf_chat_count(text: &str) -> u64 {
    let code = "import sys\nfrom transformers import AutoTokenizer\n\
                t = AutoTokenizer.from_pretrained(sys.argv[1])\n\
                ids = t.apply_chat_template([{'role': 'user', 'content': sys.argv[2]}], \
                tokenize=True, add_generation_prompt=True)\n\
                ids = ids['input_ids'] if hasattr(ids, 'keys') else ids\n\
                print(len(ids))";
    let o = std::process::Command::new(common::vllm_env().join("bin/python"))
        .args(["-c", code, s(&common::tiny_llama()), text])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("python runs");
    assert!(o.status.success(), "{}", show(&o));
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("a count")
}

#[test]
fn vllm_serve_evaluates_exactly_the_tokens_of_the_chat_prompt() {
    let server = ServerProcess::launch(&common::vllm_serve_launch(), &StopFlag::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let short = prompts::builtin().remove(0);
    let want = hf_chat_count(&short.prompt);
    let (o, v) = run_prompts(server.url(), "3", &["--prompt", "short"]);
    assert!(o.status.success(), "{}", show(&o));
    let l = level(&v, "http@concurrency=2");
    assert_eq!(outputs(l), vec![2; 3]);
    for r in l["requests"].as_array().unwrap() {
        assert_eq!(r["prompt_tokens"], want, "{r}");
    }
    for h in l["http"]["requests"].as_array().unwrap() {
        assert_eq!(h["usage_tokens"], 2, "{h}");
    }
    let how = l["settings"]["prompt_ids"].as_str().unwrap();
    assert!(how.starts_with("vllm /tokenize"), "{how}");
}
