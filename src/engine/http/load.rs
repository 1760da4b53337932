//! The HTTP engine under load: one streamed `/v1/completions` request per load request, its prompt
//! sent as token ids (llama-server and vLLM take a list of ints as `prompt`), many of them at once
//! on the engine's one current-thread runtime. Each chunk's tokens go to the caller's sink the
//! moment the chunk is parsed; the caller stamps them (the engine reads no clock).

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::client;
use super::sse::{self, Payload, SseParser, Timings, Usage};
use super::stream::{root_cause, Counter, HttpError};
use super::{Flavor, HttpEngine};
use crate::engine::streams::StreamRequest;
use crate::engine::{EngineError, Sampling, ServerTimings};

/// How one request of a load level ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadStreamed {
    /// Prompt tokens as the server reports them (else the ids sent).
    pub prompt_tokens: u64,
    /// `length` or `eos`.
    pub finish: &'static str,
    /// The server's own figures for the request (llama-server's `timings`, `usage`).
    pub server: ServerTimings,
}

/// Why one request of a load level failed, on one line.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadFailure {
    /// The message, naming the fix.
    pub message: String,
    /// The server could not be reached at all (connection refused): later requests would fail
    /// the same way.
    pub unreachable: bool,
}

impl HttpEngine {
    /// Runs `f` on the engine's runtime (one thread: every request of a level on it).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The server software.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The vocabulary size the server's model has, for synthetic prompts of random token ids:
    /// llama-server reports it in `/v1/models` (`meta.n_vocab`); vLLM names its model folder
    /// there (`root`), whose `config.json` has `vocab_size`.
    pub fn vocab_size(&self) -> Result<u32, EngineError> {
        let url = format!("{}/v1/models", self.base);
        let models: Value = self
            .rt
            .block_on(async {
                self.client
                    .get(&url)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await?
                    .json()
                    .await
            })
            .map_err(|e| EngineError::Load(format!("GET {url}: {}", root_cause(&e))))?;
        let first = &models["data"][0];
        if let Some(n) = first["meta"]["n_vocab"].as_u64() {
            return Ok(u32::try_from(n).unwrap_or(u32::MAX));
        }
        let root = first["root"].as_str().unwrap_or(&self.model_id);
        let config = std::path::Path::new(root).join("config.json");
        std::fs::read_to_string(&config)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["vocab_size"].as_u64())
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .ok_or_else(|| {
                EngineError::Load(format!(
                    "cannot learn the vocabulary size of {} (neither meta.n_vocab in {url} nor a readable {}): synthetic load over HTTP needs it; run the server on this machine from a local model folder",
                    self.model_id,
                    config.display()
                ))
            })
    }

    /// The body of load request `req`: its token ids as the prompt, the in-process sampling
    /// (seed + request number, as each in-process sequence draws), exact lengths.
    fn load_body(&self, req: &StreamRequest, s: &Sampling, salt: u64) -> Value {
        let mut body = json!({
            "model": self.model_id,
            "prompt": req.prompt,
            "max_tokens": req.max_tokens,
            "temperature": s.temperature,
            "seed": s.seed.wrapping_add(req.id as u32),
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if s.ignore_eos && self.flavor != Flavor::Other {
            body["ignore_eos"] = json!(true);
        }
        match self.flavor {
            Flavor::Vllm => {
                body["return_token_ids"] = json!(true);
                if !s.prefix_cache {
                    body["cache_salt"] =
                        json!(format!("inproc-bench-{}-load-{salt}", self.salt_tag));
                }
            }
            Flavor::LlamaServer => {
                body["cache_prompt"] = json!(s.prefix_cache);
                body["timings_per_token"] = json!(true);
                if self.settings.inprocess_sampling {
                    body["samplers"] = json!(["temperature"]);
                }
            }
            Flavor::Other => {}
        }
        body
    }

    /// Streams load request `req`; `on_tokens(n)` is called the moment a chunk of `n` generated
    /// tokens is parsed. `salt` makes vLLM's cache salt unique. Stalls longer than the engine's
    /// idle limit fail the request; the caller drops the future to cut it off.
    pub async fn stream_load(
        &self,
        req: &StreamRequest,
        sampling: &Sampling,
        salt: u64,
        on_tokens: &mut dyn FnMut(u32),
    ) -> Result<LoadStreamed, LoadFailure> {
        let url = format!("{}/v1/completions", self.base);
        let fail = |e: HttpError| LoadFailure {
            unreachable: matches!(e, HttpError::Connect { .. }),
            message: crate::redact::text(&e.to_string()),
        };
        let body =
            serde_json::to_vec(&self.load_body(req, sampling, salt)).map_err(|e| LoadFailure {
                message: format!("cannot encode the request: {e}"),
                unreachable: false,
            })?;
        let idle = self.settings.idle_timeout;
        let send = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(body)
            .send();
        let resp = match tokio::time::timeout(idle, send).await {
            Err(_) => {
                return Err(fail(HttpError::NoHeaders {
                    url,
                    secs: idle.as_secs(),
                }))
            }
            Ok(Err(e)) if e.is_connect() => {
                return Err(fail(HttpError::Connect {
                    url,
                    flag: self.settings.url_flag.clone(),
                    cause: root_cause(&e),
                }))
            }
            Ok(Err(e)) => {
                return Err(fail(HttpError::NoResponse {
                    url,
                    cause: root_cause(&e),
                }))
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if !status.is_success() {
            let headers = resp.headers().clone();
            let text = tokio::time::timeout(idle, resp.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(fail(HttpError::Status {
                url,
                status: status.to_string(),
                message: client::status_message(status, &headers, &text),
            }));
        }
        let mut stream = resp.bytes_stream();
        let mut parser = SseParser::new();
        let mut events = Vec::with_capacity(4);
        let mut counter = Counter::default();
        let (mut usage, mut timings): (Option<Usage>, Option<Timings>) = (None, None);
        let mut finish_reason: Option<String> = None;
        let mut done = false;
        loop {
            let bytes = match tokio::time::timeout(idle, stream.next()).await {
                Err(_) => {
                    return Err(fail(HttpError::Idle {
                        url,
                        secs: idle.as_secs(),
                        tokens: counter.counted,
                    }))
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(fail(HttpError::Broken {
                        url,
                        tokens: counter.counted,
                        cause: root_cause(&e),
                    }))
                }
                Ok(Some(Ok(b))) => b,
            };
            parser.feed(&bytes, &mut events);
            if let Some(error) = parser.overflow() {
                return Err(fail(HttpError::TooLong {
                    url,
                    tokens: counter.counted,
                    error: error.clone(),
                }));
            }
            for ev in events.drain(..) {
                if done {
                    continue;
                }
                match sse::decode(&ev) {
                    Ok(Payload::Done) => done = true,
                    Ok(Payload::Error(message)) => {
                        return Err(fail(HttpError::Server {
                            tokens: counter.counted,
                            message,
                        }))
                    }
                    Ok(Payload::Chunk(c)) => {
                        let n = counter.count(&c);
                        if n > 0 {
                            on_tokens(n);
                        }
                        usage = c.usage.or(usage);
                        timings = c.timings.or(timings);
                        finish_reason = c.finish_reason.or(finish_reason.take());
                    }
                    Err(error) => {
                        return Err(fail(HttpError::Chunk {
                            url,
                            tokens: counter.counted,
                            error,
                        }))
                    }
                }
            }
        }
        if !done {
            return Err(fail(HttpError::NoDone {
                url,
                tokens: counter.counted,
                partial: if parser.has_partial() {
                    " (cut inside an event)"
                } else {
                    ""
                },
            }));
        }
        let t = timings.unwrap_or_default();
        let n = |x: Option<f64>| x.map(|v| v.max(0.0) as u64);
        let usage_tokens = usage.and_then(|u| u.completion_tokens);
        Ok(LoadStreamed {
            prompt_tokens: usage
                .and_then(|u| u.prompt_tokens)
                .or(n(t.prompt_n))
                .unwrap_or(req.prompt.len() as u64),
            finish: match finish_reason.as_deref() {
                Some("stop") => "eos",
                _ => "length",
            },
            server: ServerTimings {
                prompt_ms: t.prompt_ms,
                predicted_ms: t.predicted_ms,
                prompt_n: n(t.prompt_n),
                predicted_n: n(t.predicted_n),
                headers_ms: None,
                first_byte_ms: None,
                usage_tokens,
                counted_tokens: usage_tokens
                    .filter(|&u| u != counter.counted)
                    .map(|_| counter.counted),
                count_source: counter.source.map(|s| s.name().to_string()),
            },
        })
    }
}
