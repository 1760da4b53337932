//! The HTTP engine against tiny loopback fixture servers (std::net, written here): the happy path of
//! a llama-server-like and a vLLM-like stream, the seed's `--backend` flags, and every fault: no
//! server, not an OpenAI server, 4xx/5xx with an error body, a server that dies mid-stream, a stream
//! without `[DONE]`, invalid JSON in a chunk, an error event, llama-server missing.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::thread;

use common::fixture_server::*;
use common::*;
use serde_json::{json, Value};

fn event(v: Value) -> String {
    format!("data: {v}\n\n")
}

fn delta(text: &str, predicted_n: Option<u64>) -> String {
    let mut v =
        json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
    if let Some(n) = predicted_n {
        v["timings"] = json!({"prompt_n": 9, "prompt_ms": 1.5, "predicted_n": n, "predicted_ms": n as f64 * 2.0});
    }
    event(v)
}

fn usage(n: u64) -> String {
    event(
        json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": n, "total_tokens": 9 + n}}),
    )
}

/// A llama-server-like stream of 5 tokens: per-token timings, a keep-alive, an event split over
/// two writes, and one chunk that carries two tokens (an incomplete UTF-8 token held back).
fn llama_stream() -> Vec<String> {
    let two = delta("lo wé", Some(3));
    let (a, b) = two.split_at(17);
    vec![
        event(json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": null}}]})),
        delta("Hel", Some(1)),
        ": ping\n\n".into(),
        a.into(),
        b.into(),
        delta("r", Some(4)),
        delta("ld", Some(5)),
        event(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})),
        usage(5),
    ]
}

fn http_run(dir: &Path, url_args: &[&str], extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec![
        "--prompt",
        "short",
        "--warmup",
        "1",
        "--runs",
        "2",
        "--max-tokens",
        "5",
        "--quiet",
    ];
    args.extend_from_slice(url_args);
    args.extend_from_slice(extra);
    run_to(&dir.join("r.json"), &args)
}

fn engine_http(url: &str) -> Vec<&str> {
    vec!["--engine", "http", "--url", url]
}

#[test]
fn a_llama_server_stream_counts_real_tokens_and_flags_the_multi_token_chunk() {
    let f = fixture("llamacpp", |_| Reply::Stream(llama_stream(), End::Done));
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http_run(dir.path(), &engine_http(&f.url), &[]);
    assert!(out.status.success(), "{}", show(&out));
    let e = &j["results"]["http"];
    assert_eq!(e["engine"], "llama-server (HTTP)");
    assert_eq!(e["settings"]["endpoint"], "/v1/chat/completions");
    let p = &e["prompts"]["short"];
    assert_eq!(p["successful_runs"], 2);
    assert_eq!(p["sample_output"], "Hello wérld");
    for r in p["runs"].as_array().unwrap() {
        assert_eq!(r["tokens_generated"], 5, "{r}");
        assert_eq!(r["multi_token_deliveries"], 1, "{r}");
        assert_eq!(r["itl_ms"].as_array().unwrap().len(), 3, "{r}");
        assert_eq!(r["prompt_tokens"], 9);
        let s = &r["server"];
        assert_eq!(s["count_source"], "timings");
        assert_eq!(s["usage_tokens"], 5);
        assert!(
            s.get("counted_tokens").is_none(),
            "no correction needed: {s}"
        );
        assert_eq!(
            (s["prompt_ms"].as_f64(), s["predicted_n"].as_u64()),
            (Some(1.5), Some(5))
        );
        let (h, b, ttft) = (
            s["headers_ms"].as_f64().unwrap(),
            s["first_byte_ms"].as_f64().unwrap(),
            r["ttft_ms"].as_f64().unwrap(),
        );
        assert!(
            0.0 < h && h <= b && b <= ttft,
            "headers {h} ≤ first byte {b} ≤ TTFT {ttft}"
        );
    }
    let bodies = f.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 3, "one warmup and two measured requests");
    let b = &bodies[0];
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"]["include_usage"], true);
    assert_eq!(
        (b["timings_per_token"].clone(), b["cache_prompt"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        (
            b["ignore_eos"].clone(),
            b["max_tokens"].clone(),
            b["temperature"].clone()
        ),
        (json!(true), json!(5), json!(0.0))
    );
    assert_eq!(b["model"], "fixture-model");
    assert_eq!(
        b["messages"][0]["content"],
        "Explain quantum computing in simple terms."
    );
}

#[test]
fn without_server_token_data_usage_corrects_the_chunk_count_and_says_so() {
    // Four text chunks, but the server generated five tokens: one chunk held two.
    let stream = vec![
        delta("a", None),
        delta("b", None),
        delta("cd", None),
        delta("e", None),
        usage(5),
    ];
    let f = fixture("vllm", move |_| Reply::Stream(stream.clone(), End::Done));
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http_run(dir.path(), &engine_http(&f.url), &[]);
    assert!(out.status.success(), "{}", show(&out));
    let r = &j["results"]["http"]["prompts"]["short"]["runs"][0];
    assert_eq!(r["tokens_generated"], 5);
    assert_eq!(r["server"]["count_source"], "chunks");
    assert_eq!(r["server"]["counted_tokens"], 4);
    assert_eq!(
        r["multi_token_deliveries"], 1,
        "the correction lands on the last delivery"
    );
    let b = &f.bodies.lock().unwrap()[0];
    assert!(
        b.get("timings_per_token").is_none() && b.get("cache_prompt").is_none(),
        "{b}"
    );
    assert_eq!(j["results"]["http"]["engine"], "vLLM (HTTP)");
}

#[test]
fn the_seeds_backend_flags_keep_their_result_keys_and_interleave() {
    let log = RequestLog::default();
    let llama = fixture_logged("llamacpp", &log, |_| {
        Reply::Stream(llama_stream(), End::Done)
    });
    let vllm = fixture_logged("vllm", &log, |_| Reply::Stream(llama_stream(), End::Done));
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http_run(
        dir.path(),
        &[
            "--backend",
            "both",
            "--llamacpp-url",
            &llama.url,
            "--vllm-url",
            &vllm.url,
        ],
        &["--warmup", "2", "--runs", "3"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let mut keys: Vec<&String> = j["results"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["llamacpp", "vllm"]);
    for k in ["vllm", "llamacpp"] {
        assert_eq!(
            j["results"][k]["prompts"]["short"]["successful_runs"], 3,
            "{k}"
        );
    }
    // Each side warms up on its own, then the measured runs take turns in rounds whose order
    // alternates (ABBA: vllm first, then llamacpp first, …); one after the other would be
    // vllm ×5, then llamacpp ×5.
    assert_eq!(
        *log.lock().unwrap(),
        [
            "vllm", "vllm", "llamacpp", "llamacpp", // warmup
            "vllm", "llamacpp", "llamacpp", "vllm", "vllm", "llamacpp", // measured, ABBA
        ]
    );
}

#[test]
fn no_server_is_a_clear_error_naming_the_flag() {
    let closed = ClosedPort::new();
    let url = format!("http://127.0.0.1:{}", closed.port);
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = http_run(dir.path(), &engine_http(&url), &[]);
    assert_clean_error(
        &out,
        &format!("cannot connect to {url}: is the server running?"),
    );
    assert_clean_error(&out, "--url");
    let (out, _) = http_run(
        dir.path(),
        &["--backend", "llamacpp", "--llamacpp-url", &url],
        &[],
    );
    assert_clean_error(&out, "--llamacpp-url");
}

#[test]
fn a_server_that_is_not_openai_compatible_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = read_request(&mut conn);
            let _ = answer(
                conn,
                Reply::Status("404 Not Found", "<html>nope</html>".into()),
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = http_run(dir.path(), &engine_http(&url), &[]);
    assert_clean_error(&out, "answered 404 Not Found");
    assert_clean_error(&out, "OpenAI-compatible");
}

/// Runs a fixture whose every completion fails, and returns the error line and the results.
fn all_runs_fail(reply: Reply) -> (String, Value) {
    let f = fixture("llamacpp", move |_| reply.clone());
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http_run(dir.path(), &engine_http(&f.url), &["--warmup", "0"]);
    assert_clean_error(&out, "all 2 measured runs failed");
    let p = &j["results"]["http"]["prompts"]["short"];
    assert_eq!(
        (p["successful_runs"].as_u64(), p["total_runs"].as_u64()),
        (Some(0), Some(2)),
        "results are written"
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (err, p["runs"][0].clone())
}

#[test]
fn an_error_status_shows_the_servers_message() {
    let body = json!({"error": {"code": 500, "message": "model exploded", "type": "server_error"}})
        .to_string();
    let (err, run) = all_runs_fail(Reply::Status("500 Internal Server Error", body));
    assert!(
        err.contains("answered 500 Internal Server Error: model exploded (code 500)"),
        "{err}"
    );
    assert!(run["error"].as_str().unwrap().contains("model exploded"));
    let (err, _) = all_runs_fail(Reply::Status("400 Bad Request", "plain text reason".into()));
    assert!(
        err.contains("answered 400 Bad Request: plain text reason"),
        "{err}"
    );
}

#[test]
fn a_server_dying_mid_stream_is_reported_with_the_tokens_seen() {
    let (err, _) = all_runs_fail(Reply::Stream(llama_stream()[..3].to_vec(), End::Die));
    assert!(
        err.contains("broke after 1 tokens: did the server die?"),
        "{err}"
    );
}

#[test]
fn a_stream_without_done_is_an_error() {
    let (err, _) = all_runs_fail(Reply::Stream(llama_stream(), End::NoDone));
    assert!(err.contains("ended without [DONE] after 5 tokens"), "{err}");
    let cut = vec![delta("a", Some(1)), "data: {\"choices\"".into()];
    let (err, _) = all_runs_fail(Reply::Stream(cut, End::NoDone));
    assert!(err.contains("(cut inside an event)"), "{err}");
}

#[test]
fn invalid_json_and_error_events_are_errors() {
    let bad = vec![
        delta("a", Some(1)),
        "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}\n\n".into(),
    ];
    let (err, _) = all_runs_fail(Reply::Stream(bad, End::Done));
    assert!(err.contains("sent invalid JSON in a stream chunk"), "{err}");
    let failing = vec![
        delta("a", Some(1)),
        event(json!({"error": {"code": 500, "message": "slot crashed", "type": "server_error"}})),
    ];
    let (err, _) = all_runs_fail(Reply::Stream(failing, End::Done));
    assert!(
        err.contains("the server reported an error after 1 tokens: slot crashed"),
        "{err}"
    );
}

#[test]
fn runs_that_finished_are_kept_when_the_server_goes_away() {
    let f = fixture("llamacpp", |n| {
        if n < 2 {
            Reply::Stream(llama_stream(), End::Done)
        } else {
            Reply::Stream(llama_stream()[..2].to_vec(), End::Die)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http_run(dir.path(), &engine_http(&f.url), &["--runs", "3"]);
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: 2 of 3 measured runs of http failed"),
        "{stderr}"
    );
    let p = &j["results"]["http"]["prompts"]["short"];
    assert_eq!(p["successful_runs"], 1);
    assert_eq!(p["runs"][0]["tokens_generated"], 5);
    assert!(p["runs"][1]["error"]
        .as_str()
        .unwrap()
        .contains("did the server die?"));
}

#[test]
fn bad_http_flags_fail_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = http_run(dir.path(), &["--engine", "http"], &[]);
    assert_clean_error(&out, "--url: required");
    let (out, _) = http_run(dir.path(), &engine_http("ftp://127.0.0.1:1"), &[]);
    assert_clean_error(&out, "scheme ftp is not HTTP");
    let (out, _) = http_run(
        dir.path(),
        &engine_http("http://127.0.0.1:1"),
        &["--api", "completions"],
    );
    assert_clean_error(&out, "--raw-prompt");
}

#[test]
fn a_missing_llama_server_names_the_build_script_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let (out, _) = http_run(
        dir.path(),
        &[
            "--model",
            model.to_str().unwrap(),
            "--compare-http",
            "--llama-server",
            "/nonexistent/llama-server",
        ],
        &[],
    );
    assert_clean_error(&out, "vendor/build-llama-tools.sh");
    assert_clean_error(&out, "--llama-server PATH");
}

/// Set in the environment of the fake llama-server below: the flags it was started with.
const FAKE_ARGS: &str = "INPROC_TEST_FAKE_LLAMA_SERVER_ARGS";

/// Not a test: the body of a fake llama-server, run by the script that
/// `a_server_that_evaluates_other_prompt_tokens_is_one_clear_error` passes as `--llama-server`.
/// It serves on the port it was given (or on one it picks, for `--port 0`, and says which as
/// llama-server does) streams of 5 tokens that say the prompt had 9 tokens.
#[test]
#[ignore = "run by the fake llama-server script"]
fn fake_llama_server() {
    let Ok(args) = std::env::var(FAKE_ARGS) else {
        return;
    };
    let args: Vec<&str> = args.split_whitespace().collect();
    let port: u16 = args
        .windows(2)
        .find(|w| w[0] == "--port")
        .and_then(|w| w[1].parse().ok())
        .expect("--port N");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    let port = listener.local_addr().unwrap().port();
    eprintln!("main: server is listening on http://127.0.0.1:{port}");
    eprintln!("srv  main: listening on http://127.0.0.1:{port}");
    let _server = serve(listener, "llamacpp", &RequestLog::default(), |_| {
        Reply::Stream(llama_stream(), End::Done)
    });
    loop {
        thread::park();
    }
}

#[test]
fn a_server_that_evaluates_other_prompt_tokens_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("llama-server");
    let exe = std::env::current_exe().unwrap();
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = --version ]; then echo 'version: 0.6.0-dev (build 11434, fake)'; exit 0; fi\n\
             {FAKE_ARGS}=\"$*\" exec '{}' fake_llama_server --exact --ignored --nocapture\n",
            s(&exe)
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let model = model();
    let (out, j) = http_run(
        dir.path(),
        &[
            "--model",
            s(&model),
            "--compare-http",
            "--llama-server",
            s(&fake),
        ],
        &["--warmup", "0"],
    );
    assert_clean_error(
        &out,
        "llama-server evaluated 9 prompt tokens of 'short' where the in-process engine evaluated 37",
    );
    assert_clean_error(&out, "--llama-server PATH");
    // Both sides' runs are kept, and the file says why it is not a comparison to trust.
    assert!(j["incomplete_reason"]
        .as_str()
        .unwrap()
        .contains("prompt tokens"));
    for key in ["llamacpp", "llamacpp-http"] {
        assert_eq!(j["results"][key]["prompts"]["short"]["successful_runs"], 2);
    }
    // The server chose its port (`--port 0`) and said which; that is the URL the runs used.
    let server = &j["http_comparison"]["server"];
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.windows(2).any(|w| w == ["--port", "0"]), "{args:?}");
    let url = server["url"].as_str().unwrap();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(url.starts_with("http://127.0.0.1:") && port != 0, "{url}");
}
