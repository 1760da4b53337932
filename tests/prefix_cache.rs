//! `--prefix-cache on|off` on every engine, seen from the request bodies a loopback fixture server
//! receives (vLLM: a different `cache_salt` on every request unless on; llama-server:
//! `cache_prompt` follows the flag) and from the results file (config and each engine's settings).

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::fixture_server::{End, Fixture, Reply};
use common::*;
use serde_json::{json, Value};

fn stream_reply() -> String {
    let mut events = String::new();
    for (i, text) in ["a", "b", "c"].iter().enumerate() {
        let v = json!({"choices": [{"index": 0, "delta": {"content": text}, "token_ids": [i],
            "finish_reason": null}],
            "timings": {"prompt_n": 4, "prompt_ms": 1.0, "predicted_n": i + 1, "predicted_ms": 1.0}});
        events.push_str(&format!("data: {v}\n\n"));
    }
    let end = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]});
    let usage = json!({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3}});
    events.push_str(&format!("data: {end}\n\ndata: {usage}\n\ndata: [DONE]\n\n"));
    events
}

/// A fixture server: says it is `owned_by`, streams three tokens, and keeps every request body.
fn fixture(owned_by: &'static str) -> Fixture {
    common::fixture_server::fixture(owned_by, |_| {
        Reply::Stream(vec![stream_reply()], End::NoDone)
    })
}

fn measured(dir: &Path, args: &[&str]) -> Value {
    let out_path = dir.join("r.json");
    let mut all = vec![
        "--prompt",
        "short",
        "--warmup",
        "1",
        "--runs",
        "3",
        "--max-tokens",
        "3",
        "--quiet",
        "--output",
        out_path.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(out.status.success(), "{}", show(&out));
    read_json(&out_path)
}

fn bodies(f: &Fixture) -> Vec<Value> {
    f.bodies.lock().unwrap().clone()
}

#[test]
fn off_by_default_vllm_gets_a_new_cache_salt_every_request_and_llama_server_no_cache() {
    let (vllm, llama) = (fixture("vllm"), fixture("llamacpp"));
    let dir = tempfile::tempdir().unwrap();
    let j = measured(
        dir.path(),
        &[
            "--engine",
            "http",
            "--backend",
            "both",
            "--vllm-url",
            &vllm.url,
            "--llamacpp-url",
            &llama.url,
        ],
    );
    let v = bodies(&vllm);
    assert_eq!(v.len(), 4, "one warm-up and three runs");
    let salts: HashSet<&str> = v
        .iter()
        .map(|b| b["cache_salt"].as_str().unwrap())
        .collect();
    assert_eq!(
        salts.len(),
        4,
        "a different cache_salt every request: {v:?}"
    );
    for b in bodies(&llama) {
        assert_eq!(b["cache_prompt"], json!(false));
        assert!(b.get("cache_salt").is_none(), "{b}");
    }
    assert_eq!(j["config"]["prefix_cache"], json!(false));
    let s = &j["results"]["vllm"]["settings"];
    assert_eq!(s["prefix_cache"], json!(false));
    assert_eq!(s["cache_salt"], json!("unique per request"));
    let s = &j["results"]["llamacpp"]["settings"];
    assert_eq!(s["prefix_cache"], json!(false));
    assert_eq!(s["cache_prompt"], json!(false));
}

#[test]
fn a_vllm_server_found_by_url_is_salted_too() {
    let vllm = fixture("vllm");
    let dir = tempfile::tempdir().unwrap();
    measured(dir.path(), &["--engine", "http", "--url", &vllm.url]);
    let v = bodies(&vllm);
    let salts: HashSet<&str> = v.iter().filter_map(|b| b["cache_salt"].as_str()).collect();
    assert_eq!(salts.len(), v.len(), "{v:?}");
}

#[test]
fn prefix_cache_on_sends_no_salt_and_lets_llama_server_cache() {
    let (vllm, llama) = (fixture("vllm"), fixture("llamacpp"));
    let dir = tempfile::tempdir().unwrap();
    let j = measured(
        dir.path(),
        &[
            "--engine",
            "http",
            "--backend",
            "both",
            "--vllm-url",
            &vllm.url,
            "--llamacpp-url",
            &llama.url,
            "--prefix-cache",
            "on",
        ],
    );
    let v = bodies(&vllm);
    assert_eq!(v.len(), 4);
    assert!(v.iter().all(|b| b.get("cache_salt").is_none()), "{v:?}");
    let l = bodies(&llama);
    assert!(l.iter().all(|b| b["cache_prompt"] == json!(true)), "{l:?}");
    assert_eq!(j["config"]["prefix_cache"], json!(true));
    assert_eq!(
        j["results"]["vllm"]["settings"]["prefix_cache"],
        json!(true)
    );
    assert!(j["results"]["vllm"]["settings"].get("cache_salt").is_none());
    assert_eq!(
        j["results"]["llamacpp"]["settings"]["cache_prompt"],
        json!(true)
    );
}

#[test]
fn every_engine_records_the_choice() {
    let dir = tempfile::tempdir().unwrap();
    let j = measured(
        dir.path(),
        &[
            "--engine",
            "mock",
            "--mock-ttft-ms",
            "1",
            "--mock-itl-ms",
            "1",
            "--prefix-cache",
            "on",
        ],
    );
    assert_eq!(j["config"]["prefix_cache"], json!(true));
    assert_eq!(
        j["results"]["mock"]["settings"]["prefix_cache"],
        json!(true)
    );
}
