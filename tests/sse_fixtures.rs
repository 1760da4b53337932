//! The SSE parser on byte fixtures captured from llama-server b11434 (`tests/fixtures/sse/`): every
//! way of cutting the bytes into pieces gives the same events, and the decoded chunks account for
//! every generated token.

use std::path::{Path, PathBuf};

use inproc_bench::engine::sse::{self, parse_all, Payload, SseEvent};

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
    done: bool,
}

fn totals(events: &[SseEvent]) -> Totals {
    let mut t = Totals {
        text: String::new(),
        content_events: 0,
        predicted_n: None,
        usage_tokens: None,
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
            }
        }
    }
    t
}

#[test]
fn llama_server_completions_stream_with_per_token_timings() {
    let events = events_every_way(&fixture("llama-server-b11434-completions.sse"));
    let t = totals(&events);
    assert!(t.done);
    assert_eq!(t.usage_tokens, Some(16));
    assert_eq!(t.predicted_n, Some(16.0));
    assert!(!t.text.is_empty());
    assert!(t.content_events <= 16);
}

#[test]
fn llama_server_chat_stream_with_role_delta_and_usage_chunk() {
    let events = events_every_way(&fixture("llama-server-b11434-chat.sse"));
    let t = totals(&events);
    assert!(t.done);
    assert_eq!(t.usage_tokens, Some(16));
    assert_eq!(t.predicted_n, Some(16.0));
    let first = sse::decode(&events[0]).unwrap();
    assert!(
        matches!(first, Payload::Chunk(c) if c.text.is_empty()),
        "a role delta opens the stream"
    );
}

#[test]
fn llama_server_error_body_gives_its_message() {
    let body = fixture("llama-server-b11434-error-400.json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let m = sse::error_message(&v);
    assert!(m.contains("code 400"), "{m}");
    assert!(m.len() > 20, "{m}");
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
}
