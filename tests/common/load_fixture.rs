//! The loopback server of the load-over-HTTP tests: `/v1/models` with a vocabulary, the tokenizer
//! endpoints, completion requests handed to a handler with their arrival number; and readers of
//! load results.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};

use super::fixture_server::{chunk, end, read_request, respond, tokenizer_reply};

/// Vocabulary the fixture reports.
pub const VOCAB: u32 = 32000;

/// A loopback server for load: `/v1/models` with `meta.n_vocab`, each completion request handed
/// to `handler` with its number in arrival order and its JSON body; `die` stops accepting.
pub struct Mini {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<Value>>>,
    /// Tokenizer requests (`/apply-template`, `/tokenize`): path and JSON body, in order.
    pub tokenizer: Arc<Mutex<Vec<(String, Value)>>>,
}

pub fn mini(
    die: Arc<AtomicBool>,
    handler: impl Fn(usize, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
) -> Mini {
    mini_as("fixture", die, handler)
}

/// [`mini`] whose `/v1/models` says `owned_by` (`llamacpp`, `vllm`), answering the tokenizer
/// endpoints as [`tokenizer_reply`] does.
pub fn mini_as(
    owned_by: &'static str,
    die: Arc<AtomicBool>,
    handler: impl Fn(usize, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
) -> Mini {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let tokenizer: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let (seen, asked) = (bodies.clone(), tokenizer.clone());
    let handler = Arc::new(handler);
    let count = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for conn in listener.incoming() {
            if die.load(Ordering::SeqCst) {
                return; // the listener closes: later connections are refused
            }
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_nodelay(true);
            let (seen, asked, handler, count) =
                (seen.clone(), asked.clone(), handler.clone(), count.clone());
            thread::spawn(move || {
                let Some(req) = read_request(&mut conn) else {
                    return;
                };
                if req.method == "GET" {
                    let body = json!({"object": "list", "data": [{"id": "fixture-model",
                        "owned_by": owned_by, "meta": {"n_vocab": VOCAB}}]});
                    let _ = respond(&mut conn, "200 OK", "", &body.to_string());
                    return;
                }
                if let Some((status, body)) = tokenizer_reply(&req) {
                    asked.lock().unwrap().push((
                        req.path.clone(),
                        serde_json::from_slice(&req.body).unwrap_or(Value::Null),
                    ));
                    let _ = respond(&mut conn, status, "", &body);
                    return;
                }
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&req.body).unwrap_or(Value::Null));
                let n = count.fetch_add(1, Ordering::SeqCst);
                let _ = handler(n, &mut conn);
            });
        }
    });
    Mini {
        url,
        bodies,
        tokenizer,
    }
}

/// One completions chunk of one token.
pub fn token(w: &mut dyn Write, i: usize) -> std::io::Result<()> {
    let ev = json!({"choices": [{"index": 0, "text": format!("t{i} "), "finish_reason": null}]});
    chunk(w, format!("data: {ev}\n\n").as_bytes())
}

/// The end of a good answer of `n` tokens.
pub fn finish(w: &mut dyn Write, n: usize) -> std::io::Result<()> {
    let ev = json!({"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": n}});
    chunk(w, format!("data: {ev}\n\ndata: [DONE]\n\n").as_bytes())?;
    end(w)
}

pub fn level<'a>(v: &'a Value, key: &str) -> &'a Value {
    let l = &v["load"]["levels"][key];
    assert!(l.is_object(), "no level {key} in {v}");
    l
}

pub fn outputs(l: &Value) -> Vec<u64> {
    l["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["output_tokens"].as_u64().unwrap())
        .collect()
}
