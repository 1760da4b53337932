//! One streamed request: send it, read the event stream as it arrives, count each chunk's tokens
//! and report them to the recorder the moment the chunk is parsed; the limits (stalls, the whole
//! request, Ctrl-C) and the one-line errors that name the fix.
//!
//! Token counting, best source first: llama-server's cumulative `timings.predicted_n` (asked for
//! with `timings_per_token`), token ids in the chunk, `logprobs` entries, else one token per
//! non-empty text delta (what the original benchmark counted). At the end the total is checked
//! against the server's `usage.completion_tokens` (asked for with `stream_options.include_usage`);
//! a disagreement is corrected on the last delivery and recorded in the run's `server` figures.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::client;
use super::sse::{self, Chunk, Payload, SseEvent, SseParser, Timings, Usage};
use crate::engine::{Finish, Outcome, Request, ServerTimings};
use crate::measure::Recorder;

/// How often a silent stream checks for Ctrl-C.
const POLL: Duration = Duration::from_millis(100);

/// What went wrong in one request. Each message names the likely fix.
#[derive(Debug, thiserror::Error)]
pub(super) enum HttpError {
    #[error(
        "cannot connect to {url}: {} ({cause})",
        client::connect_hint(cause, flag)
    )]
    Connect {
        url: String,
        flag: String,
        cause: String,
    },
    #[error("{url} closed the connection before answering ({cause}): is it an OpenAI-compatible server, and not overloaded?")]
    NoResponse { url: String, cause: String },
    #[error("{url} did not finish within --request-timeout {secs} s ({stage}, after {tokens} tokens): is the server stuck? raise --request-timeout for longer runs")]
    Timeout {
        url: String,
        secs: f64,
        stage: &'static str,
        tokens: u64,
    },
    #[error("{url} sent {error} after {tokens} tokens")]
    TooLong {
        url: String,
        tokens: u64,
        error: sse::LineTooLong,
    },
    #[error("{url} answered {status}: {message}")]
    Status {
        url: String,
        status: String,
        message: String,
    },
    #[error("the connection to {url} broke after {tokens} tokens: did the server die? ({cause})")]
    Broken {
        url: String,
        tokens: u64,
        cause: String,
    },
    #[error("the stream from {url} ended without [DONE] after {tokens} tokens{partial}: the server stopped mid-response")]
    NoDone {
        url: String,
        tokens: u64,
        partial: &'static str,
    },
    #[error("{url} sent {error} after {tokens} tokens")]
    Chunk {
        url: String,
        tokens: u64,
        error: sse::ChunkError,
    },
    #[error("the server reported an error after {tokens} tokens: {message}")]
    Server { tokens: u64, message: String },
    #[error("{url} sent nothing for {secs} s after {tokens} tokens: is the server stuck?")]
    Idle { url: String, secs: u64, tokens: u64 },
    #[error("{url} sent no response headers for {secs} s: is the server stuck?")]
    NoHeaders { url: String, secs: u64 },
    #[error("interrupted")]
    Interrupted,
}

/// The innermost cause of an error chain (for reqwest, the OS error).
pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Token counting sources, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum CountSource {
    Chunks,
    Logprobs,
    TokenIds,
    Timings,
}

impl CountSource {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Chunks => "chunks",
            Self::Logprobs => "logprobs",
            Self::TokenIds => "token_ids",
            Self::Timings => "timings",
        }
    }
}

/// Counts the tokens of each chunk; cumulative sources reconcile with what was counted before.
#[derive(Debug, Default)]
pub(super) struct Counter {
    pub(super) counted: u64,
    pub(super) source: Option<CountSource>,
}

impl Counter {
    pub(super) fn count(&mut self, c: &Chunk) -> u32 {
        let (n, src) = if let Some(p) = c.timings.and_then(|t| t.predicted_n) {
            (
                (p.max(0.0) as u64).saturating_sub(self.counted),
                CountSource::Timings,
            )
        } else if let Some(ids) = c.token_ids.as_ref().filter(|v| !v.is_empty()) {
            (ids.len() as u64, CountSource::TokenIds)
        } else if let Some(k) = c.logprob_tokens.filter(|&k| k > 0) {
            (u64::from(k), CountSource::Logprobs)
        } else if !c.text.is_empty() && self.source != Some(CountSource::Timings) {
            (1, CountSource::Chunks)
        } else {
            (0, CountSource::Chunks)
        };
        if n > 0 || src > CountSource::Chunks {
            self.source = self.source.max(Some(src));
        }
        self.counted += n;
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// Everything a finished stream told us.
#[derive(Debug, Default)]
pub(super) struct Streamed {
    text: String,
    token_ids: Vec<i64>,
    usage: Option<Usage>,
    timings: Option<Timings>,
    finish_reason: Option<String>,
    headers_ms: Option<f64>,
    first_byte_ms: Option<f64>,
    counter: Counter,
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1e3)
}

/// How long a request may take: silent (`idle`), and in all (`request`, `--request-timeout`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) idle: Duration,
    pub(super) request: Option<Duration>,
}

/// One streamed request, timed on `rec`.
pub(super) async fn stream_one(
    client: &reqwest::Client,
    url: &str,
    flag: &str,
    body: Vec<u8>,
    limits: Limits,
    rec: &mut Recorder,
    events: &mut Vec<SseEvent>,
) -> Result<Streamed, HttpError> {
    let Limits {
        idle: idle_limit,
        request: request_limit,
    } = limits;
    let sent = Instant::now();
    let over_time = |stage: &'static str, tokens: u64| {
        request_limit
            .filter(|&l| sent.elapsed() >= l)
            .map(|l| HttpError::Timeout {
                url: url.into(),
                secs: l.as_secs_f64(),
                stage,
                tokens,
            })
    };
    let send = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .body(body)
        .send();
    tokio::pin!(send);
    let resp = loop {
        match tokio::time::timeout(POLL, &mut send).await {
            Ok(Ok(resp)) => break resp,
            Ok(Err(e)) if e.is_connect() => {
                return Err(HttpError::Connect {
                    url: url.into(),
                    flag: flag.into(),
                    cause: root_cause(&e),
                })
            }
            Ok(Err(e)) => {
                return Err(HttpError::NoResponse {
                    url: url.into(),
                    cause: root_cause(&e),
                })
            }
            Err(_) => {
                if rec.should_stop() {
                    return Err(HttpError::Interrupted);
                }
                if let Some(e) = over_time("waiting for the response headers", 0) {
                    return Err(e);
                }
                if sent.elapsed() >= idle_limit {
                    return Err(HttpError::NoHeaders {
                        url: url.into(),
                        secs: idle_limit.as_secs(),
                    });
                }
            }
        }
    };
    let mut out = Streamed {
        headers_ms: ms(rec.mark()),
        ..Streamed::default()
    };
    let status = resp.status();
    if !status.is_success() {
        let headers = resp.headers().clone();
        let wait = request_limit
            .unwrap_or(idle_limit)
            .saturating_sub(sent.elapsed());
        let text = match tokio::time::timeout(wait, resp.text()).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        };
        let message = client::status_message(status, &headers, &text);
        return Err(HttpError::Status {
            url: url.into(),
            status: status.to_string(),
            message,
        });
    }
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::new();
    let mut done = false;
    let mut idle = Duration::ZERO;
    loop {
        let next = match tokio::time::timeout(POLL, body.next()).await {
            Err(_) => {
                if rec.should_stop() {
                    return Err(HttpError::Interrupted);
                }
                if let Some(e) = over_time("in the stream", out.counter.counted) {
                    return Err(e);
                }
                idle += POLL;
                if idle >= idle_limit {
                    return Err(HttpError::Idle {
                        url: url.into(),
                        secs: idle_limit.as_secs(),
                        tokens: out.counter.counted,
                    });
                }
                continue;
            }
            Ok(next) => next,
        };
        idle = Duration::ZERO;
        let bytes = match next {
            None => break,
            Some(Err(e)) => {
                return Err(HttpError::Broken {
                    url: url.into(),
                    tokens: out.counter.counted,
                    cause: root_cause(&e),
                })
            }
            Some(Ok(bytes)) => bytes,
        };
        if out.first_byte_ms.is_none() {
            out.first_byte_ms = ms(rec.mark());
        }
        parser.feed(&bytes, events);
        if let Some(error) = parser.overflow() {
            return Err(HttpError::TooLong {
                url: url.into(),
                tokens: out.counter.counted,
                error: error.clone(),
            });
        }
        for ev in events.drain(..) {
            if done {
                continue; // anything after [DONE] is not part of the answer
            }
            match sse::decode(&ev) {
                Ok(Payload::Done) => done = true,
                Ok(Payload::Error(message)) => {
                    return Err(HttpError::Server {
                        tokens: out.counter.counted,
                        message,
                    })
                }
                Ok(Payload::Chunk(c)) => {
                    let n = out.counter.count(&c);
                    // Reasoning deltas are reasoning tokens; tokens of a chunk without text go
                    // with the phase the run is in.
                    if c.reasoning || (c.text.is_empty() && rec.in_reasoning()) {
                        rec.reasoning(n);
                    } else {
                        rec.tokens(n);
                    }
                    out.text.push_str(&c.text);
                    if let Some(ids) = c.token_ids {
                        out.token_ids.extend(ids);
                    }
                    out.usage = c.usage.or(out.usage);
                    out.timings = c.timings.or(out.timings);
                    out.finish_reason = c.finish_reason.or(out.finish_reason.take());
                }
                Err(error) => {
                    return Err(HttpError::Chunk {
                        url: url.into(),
                        tokens: out.counter.counted,
                        error,
                    })
                }
            }
        }
        if rec.should_stop() {
            return Err(HttpError::Interrupted);
        }
        if let Some(e) = over_time("in the stream", out.counter.counted) {
            return Err(e);
        }
    }
    if !done {
        return Err(HttpError::NoDone {
            url: url.into(),
            tokens: out.counter.counted,
            partial: if parser.has_partial() {
                " (cut inside an event)"
            } else {
                ""
            },
        });
    }
    Ok(out)
}

impl Streamed {
    /// The request's outcome. The token count is checked against what the server reports
    /// (`usage`, else llama-server's `timings`); a disagreement corrects the recorded deliveries to
    /// the server's count and keeps the stream's own count beside it.
    pub(super) fn into_outcome(self, req: &Request<'_>, rec: &mut Recorder) -> Outcome {
        let counted = self.counter.counted;
        let reported = self.usage.and_then(|u| u.completion_tokens).or_else(|| {
            self.timings
                .and_then(|t| t.predicted_n)
                .map(|n| n.max(0.0) as u64)
        });
        let mut counted_tokens = None;
        if let Some(total) = reported.filter(|&t| t != counted) {
            rec.correct_total(total);
            counted_tokens = Some(counted);
        }
        let prompt_tokens = self
            .usage
            .and_then(|u| u.prompt_tokens)
            .or_else(|| {
                self.timings
                    .and_then(|t| t.prompt_n)
                    .map(|n| n.max(0.0) as u64)
            })
            .or(req.prompt.prompt_tokens)
            .unwrap_or(0);
        let t = self.timings.unwrap_or_default();
        Outcome {
            prompt_tokens,
            token_ids: self.token_ids,
            text: self.text,
            finish: match self.finish_reason.as_deref() {
                Some("stop") => Finish::Eos,
                _ => Finish::Length,
            },
            server: Some(ServerTimings {
                prompt_ms: t.prompt_ms,
                predicted_ms: t.predicted_ms,
                prompt_n: t.prompt_n.map(|n| n.max(0.0) as u64),
                predicted_n: t.predicted_n.map(|n| n.max(0.0) as u64),
                headers_ms: self.headers_ms,
                first_byte_ms: self.first_byte_ms,
                usage_tokens: self.usage.and_then(|u| u.completion_tokens),
                counted_tokens,
                count_source: self.counter.source.map(|s| s.name().to_string()),
            }),
            counters: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str, predicted_n: Option<f64>) -> Chunk {
        Chunk {
            text: text.into(),
            timings: predicted_n.map(|p| Timings {
                predicted_n: Some(p),
                ..Timings::default()
            }),
            ..Chunk::default()
        }
    }

    #[test]
    fn per_token_timings_count_exactly_even_for_chunks_of_several_tokens() {
        let mut c = Counter::default();
        assert_eq!(c.count(&chunk("", None)), 0); // chat role delta
        assert_eq!(c.count(&chunk("Hel", Some(1.0))), 1);
        assert_eq!(c.count(&chunk("lo wor", Some(3.0))), 2); // an incomplete UTF-8 token held back
        assert_eq!(c.count(&chunk("", Some(4.0))), 1); // a token with no text
        assert_eq!(c.count(&chunk("ld", None)), 0); // counted by the next timings chunk
        assert_eq!(c.count(&chunk("", Some(5.0))), 1);
        assert_eq!(c.count(&chunk("", Some(5.0))), 0); // the final chunk
        assert_eq!((c.counted, c.source), (5, Some(CountSource::Timings)));
    }

    #[test]
    fn without_server_data_each_text_delta_is_one_token() {
        let mut c = Counter::default();
        assert_eq!(c.count(&chunk("a", None)), 1);
        assert_eq!(c.count(&chunk("", None)), 0);
        let ids = Chunk {
            token_ids: Some(vec![1, 2, 3]),
            ..chunk("abc", None)
        };
        assert_eq!(c.count(&ids), 3);
        assert_eq!((c.counted, c.source), (4, Some(CountSource::TokenIds)));
    }
}
