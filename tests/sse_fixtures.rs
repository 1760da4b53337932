//! The SSE parser on byte fixtures captured from llama-server b11434 (`tests/fixtures/sse/`): every
//! way of cutting the bytes into pieces gives the same events, and the HTTP engine's token counter,
//! fed each captured stream by a loopback server, counts exactly the tokens the stream carries.

mod common;

use std::path::{Path, PathBuf};

use common::fixture_server::{fixture as serve, End, Reply};
use common::*;
use inproc_bench::engine::http::sse::{self, parse_all, Payload, SseEvent};

fn fixture(name: &str) -> Vec<u8> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sse")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Pieces of `bytes` of `size` bytes each.
fn pieces(bytes: &[u8], size: usize) -> Vec<&[u8]> {
    bytes.chunks(size).collect()
}

/// Parses `bytes` whole and cut every way the test can afford, and checks they agree.
fn events_every_way(bytes: &[u8]) -> Vec<SseEvent> {
    let (whole, parser) = parse_all([bytes]);
    assert!(
        !parser.has_partial(),
        "a complete stream leaves nothing pending"
    );
    for size in [1, 2, 3, 5, 7, 13, 64, 1000] {
        assert_eq!(
            parse_all(pieces(bytes, size)).0,
            whole,
            "pieces of {size} bytes"
        );
    }
    for cut in (0..bytes.len()).step_by(11) {
        let (a, b) = bytes.split_at(cut);
        assert_eq!(parse_all([a, b]).0, whole, "cut at {cut}");
    }
    whole
}

struct Totals {
    text: String,
    content_events: usize,
    predicted_n: Option<f64>,
    usage_tokens: Option<u64>,
    finish_reason: Option<String>,
    done: bool,
}

fn totals(events: &[SseEvent]) -> Totals {
    let mut t = Totals {
        text: String::new(),
        content_events: 0,
        predicted_n: None,
        usage_tokens: None,
        finish_reason: None,
        done: false,
    };
    for ev in events {
        match sse::decode(ev).unwrap_or_else(|e| panic!("{e}")) {
            Payload::Done => t.done = true,
            Payload::Error(m) => panic!("unexpected error event {m}"),
            Payload::Chunk(c) => {
                assert!(!t.done, "nothing after [DONE]");
                if !c.text.is_empty() {
                    t.content_events += 1;
                }
                t.text.push_str(&c.text);
                if let Some(n) = c.timings.and_then(|x| x.predicted_n) {
                    assert!(
                        t.predicted_n.is_none_or(|p| p <= n),
                        "predicted_n never goes back"
                    );
                    t.predicted_n = Some(n);
                }
                if let Some(u) = c.usage.and_then(|u| u.completion_tokens) {
                    t.usage_tokens = Some(u);
                }
                if c.finish_reason.is_some() {
                    t.finish_reason = c.finish_reason;
                }
            }
        }
    }
    t
}

/// What a captured stream holds, counted here by hand from the fixture file.
struct Expected {
    file: &'static str,
    /// `usage.completion_tokens` and the last `timings.predicted_n`.
    tokens: u64,
    /// Chunks with generated text (one per token in these captures).
    content_events: usize,
    /// The start of the generated text.
    text_starts: &'static str,
}

const COMPLETIONS: Expected = Expected {
    file: "llama-server-b11434-completions.sse",
    tokens: 16,
    content_events: 16,
    text_starts: "Quantum computing is a field of computer science",
};
const CHAT: Expected = Expected {
    file: "llama-server-b11434-chat.sse",
    tokens: 16,
    content_events: 16,
    text_starts: "Quantum computing is a field of computer science",
};
/// A second capture of each endpoint (another prompt, 8 tokens), described in vendor/README.md.
const COMPLETIONS_PARIS: Expected = Expected {
    file: "llama_server_completions_stream.txt",
    tokens: 8,
    content_events: 8,
    text_starts: " Paris.\n\nThe United States has",
};
const CHAT_LIST: Expected = Expected {
    file: "llama_server_chat_stream.txt",
    tokens: 8,
    content_events: 8,
    text_starts: "1. 1\n2. ",
};

fn check_parsed(e: &Expected) -> Totals {
    let events = events_every_way(&fixture(e.file));
    let t = totals(&events);
    assert!(t.done, "{}", e.file);
    assert_eq!(t.usage_tokens, Some(e.tokens), "{}", e.file);
    assert_eq!(t.predicted_n, Some(e.tokens as f64), "{}", e.file);
    assert_eq!(t.content_events, e.content_events, "{}", e.file);
    assert_eq!(t.finish_reason.as_deref(), Some("length"), "{}", e.file);
    assert!(
        t.text.starts_with(e.text_starts),
        "{}: {:?}",
        e.file,
        t.text
    );
    t
}

#[test]
fn llama_server_completions_streams_with_per_token_timings() {
    check_parsed(&COMPLETIONS);
    check_parsed(&COMPLETIONS_PARIS);
}

#[test]
fn llama_server_chat_streams_with_role_delta_and_usage_chunk() {
    for e in [&CHAT, &CHAT_LIST] {
        check_parsed(e);
        let events = parse_all([&fixture(e.file)[..]]).0;
        let first = sse::decode(&events[0]).unwrap();
        assert!(
            matches!(first, Payload::Chunk(c) if c.text.is_empty()),
            "{}: a role delta opens the stream",
            e.file
        );
    }
}

#[test]
fn llama_server_error_bodies_give_their_message() {
    for (name, tokens, ctx) in [
        ("llama-server-b11434-error-400.json", 5001, 4096),
        ("llama_server_error.json", 2431, 2048),
    ] {
        let body = fixture(name);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let m = sse::error_message(&v);
        assert!(m.contains("code 400"), "{m}");
        assert!(
            m.contains(&format!(
                "request ({tokens} tokens) exceeds the available context size ({ctx} tokens)"
            )),
            "{m}"
        );
    }
}

#[test]
fn keep_alives_and_crlf_line_ends_are_handled() {
    let bytes = fixture("keepalive-crlf.sse");
    let events = events_every_way(&bytes);
    let (_, parser) = parse_all([&bytes[..]]);
    assert_eq!(parser.comments(), 2);
    let t = totals(&events);
    assert!(t.done);
    assert_eq!(t.text, "Hello world");
    assert_eq!(t.usage_tokens, Some(2));
    assert_eq!(t.content_events, 2);
}

/// The captured stream `e` as a loopback server sends it: one write per event.
fn replay(e: &Expected) -> Vec<String> {
    let text = String::from_utf8(fixture(e.file)).expect("UTF-8 fixture");
    text.split_inclusive("\n\n").map(str::to_string).collect()
}

/// Runs the HTTP engine once on a server that replays `e`, and checks that the counter found
/// exactly the stream's tokens, one delivery per token, with the stream's text.
fn counted_by_the_engine(e: &'static Expected, api: &[&str]) {
    let pieces = replay(e);
    let server = serve("llamacpp", move |_| {
        Reply::Stream(pieces.clone(), End::NoDone)
    });
    let dir = tempfile::tempdir().unwrap();
    let tokens = e.tokens.to_string();
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
        &tokens,
        "--quiet",
    ];
    args.extend_from_slice(api);
    let (out, j) = run_to(&dir.path().join("r.json"), &args);
    assert!(out.status.success(), "{}: {}", e.file, show(&out));
    let p = &j["results"]["http"]["prompts"]["short"];
    let r = &p["runs"][0];
    assert_eq!(r["tokens_generated"], e.tokens, "{}: {r}", e.file);
    assert_eq!(r["server"]["count_source"], "timings", "{}", e.file);
    assert_eq!(r["server"]["usage_tokens"], e.tokens, "{}", e.file);
    assert!(
        r["server"].get("counted_tokens").is_none(),
        "{}: the chunks' count agreed with usage: {r}",
        e.file
    );
    assert_eq!(r["multi_token_deliveries"], 0, "{}", e.file);
    assert_eq!(
        r["itl_ms"].as_array().unwrap().len() as u64,
        e.tokens - 1,
        "{}: one gap per token after the first",
        e.file
    );
    assert_eq!(r["finish_reason"], "length", "{}", e.file);
    let text = p["sample_output"].as_str().unwrap();
    assert!(text.starts_with(e.text_starts), "{}: {text:?}", e.file);
    assert_eq!(
        server.bodies.lock().unwrap()[0]["max_tokens"],
        e.tokens,
        "{}",
        e.file
    );
}

#[test]
fn the_token_counter_counts_each_captured_completions_stream_exactly() {
    let raw = ["--api", "completions", "--raw-prompt"];
    counted_by_the_engine(&COMPLETIONS, &raw);
    counted_by_the_engine(&COMPLETIONS_PARIS, &raw);
}

#[test]
fn the_token_counter_counts_each_captured_chat_stream_exactly() {
    counted_by_the_engine(&CHAT, &[]);
    counted_by_the_engine(&CHAT_LIST, &[]);
}
