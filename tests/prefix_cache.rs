//! `--prefix-cache on|off` on every engine, seen from the request bodies a loopback fixture server
//! receives (vLLM: a different `cache_salt` on every request unless on; llama-server:
//! `cache_prompt` follows the flag) and from the results file (config and each engine's settings).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use serde_json::{json, Value};

/// A fixture server: says it is `owned_by`, streams three tokens, and keeps every request body.
struct Fixture {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, body))
}

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

fn fixture(owned_by: &'static str) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = bodies.clone();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let seen = seen.clone();
            thread::spawn(move || {
                let Some((path, body)) = read_request(&mut conn) else {
                    return;
                };
                let (ctype, text) = if path == "/v1/models" {
                    let m = json!({"data": [{"id": "fixture", "owned_by": owned_by}]});
                    ("application/json", m.to_string())
                } else if path.ends_with("completions") {
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    seen.lock().unwrap().push(body);
                    ("text/event-stream", stream_reply())
                } else {
                    ("application/json", "{}".to_string())
                };
                let status = if path == "/v1/models" || path.ends_with("completions") {
                    "200 OK"
                } else {
                    "404 Not Found"
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    Fixture { url, bodies }
}

fn run_to(dir: &Path, args: &[&str]) -> Value {
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
    let j = run_to(
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
    run_to(dir.path(), &["--engine", "http", "--url", &vllm.url]);
    let v = bodies(&vllm);
    let salts: HashSet<&str> = v.iter().filter_map(|b| b["cache_salt"].as_str()).collect();
    assert_eq!(salts.len(), v.len(), "{v:?}");
}

#[test]
fn prefix_cache_on_sends_no_salt_and_lets_llama_server_cache() {
    let (vllm, llama) = (fixture("vllm"), fixture("llamacpp"));
    let dir = tempfile::tempdir().unwrap();
    let j = run_to(
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
    let j = run_to(
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
