//! A pure Server-Sent Events parser and the decoding of OpenAI-compatible stream chunks: bytes in,
//! events out, incremental across arbitrary splits of the byte stream. No I/O and no clock.
//!
//! # Events
//!
//! [`SseParser::feed`] takes the body bytes as they arrive, in pieces split anywhere (inside a
//! line, inside a UTF-8 sequence, between the `\r` and `\n` of a line end), and returns the events
//! completed by those bytes. It follows the WHATWG event-stream rules: lines end with `\r\n`, `\n` or
//! `\r`; `data:` lines accumulate (joined by `\n`); a blank line dispatches the event; lines that
//! start with `:` are comments (keep-alives such as llama-server's `: ping`), counted and skipped;
//! one space after the colon is dropped. One departure: llama-server reports an error inside a
//! stream on an `error:` line, which the standard would ignore; it becomes an event named `error`.
//!
//! # Chunks
//!
//! [`decode`] reads the data of one event: `[DONE]`, an error object, or a completion chunk (chat
//! `delta.content` / `delta.reasoning_content`, completions `text`, llama-server's `tokens`,
//! `timings` and `usage`).

use serde::Deserialize;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`error` for llama-server's `error:` lines); `None` is a plain message.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// The longest line, and the most data one event may gather, by default: far above any real
/// chunk (a few hundred bytes to a few KiB), low enough that a hostile stream cannot fill memory.
pub const MAX_LINE: usize = 4 << 20;

/// The UTF-8 byte order mark, dropped at the start of a stream.
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// A line or an event larger than the parser's limit.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("a stream line or event longer than {limit} bytes (no line end in sight): not an event stream, or a broken one")]
pub struct LineTooLong {
    /// The limit in bytes.
    pub limit: usize,
}

/// The incremental parser. Feed it bytes; it keeps what belongs to an unfinished line or event,
/// up to a size limit: past it the parser stops (see [`SseParser::overflow`]).
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    /// The last byte fed was a `\r`: a `\n` right after it belongs to the same line end.
    after_cr: bool,
    /// Past the very start of the stream (a UTF-8 byte order mark is dropped there).
    started: bool,
    /// Bytes of a byte order mark seen so far at the start (it may arrive in pieces).
    bom: usize,
    data: String,
    has_data: bool,
    event: Option<String>,
    comments: u64,
    limit: usize,
    overflow: Option<LineTooLong>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_limit(MAX_LINE)
    }
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser whose lines and events may not exceed `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            started: false,
            bom: 0,
            data: String::new(),
            has_data: false,
            event: None,
            comments: 0,
            limit,
            overflow: None,
        }
    }

    /// Set once a line or an event outgrew the limit; the parser ignores everything after it.
    pub fn overflow(&self) -> Option<&LineTooLong> {
        self.overflow.as_ref()
    }

    fn too_long(&mut self) {
        self.overflow = Some(LineTooLong { limit: self.limit });
        self.line = Vec::new();
        self.data = String::new();
        self.has_data = false;
    }

    /// Parses `bytes`, appending every event they complete to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) {
        // An empty piece changes nothing (in particular not a pending `\r`).
        if self.overflow.is_some() || bytes.is_empty() {
            return;
        }
        while !self.started && !bytes.is_empty() {
            if bytes[0] == BOM[self.bom] {
                self.bom += 1;
                bytes = &bytes[1..];
                self.started = self.bom == BOM.len();
            } else {
                // Not a byte order mark after all: what was held back is text.
                self.started = true;
                self.line.extend_from_slice(&BOM[..self.bom]);
            }
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.line.len() + end > self.limit {
                return self.too_long();
            }
            self.line.extend_from_slice(&bytes[..end]);
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
            if self.data.len() > self.limit {
                return self.too_long();
            }
            self.line = line;
            self.line.clear();
            let cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        if self.line.len() + bytes.len() > self.limit {
            return self.too_long();
        }
        self.line.extend_from_slice(bytes);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the `\n` after the last data line
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.has_data = false;
            self.event = None;
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => self.push_data(value),
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"error" => {
                self.event = Some("error".into());
                self.push_data(value);
            }
            _ => {} // id, retry and unknown fields do not concern a benchmark
        }
    }

    fn push_data(&mut self, value: &[u8]) {
        self.data.push_str(&String::from_utf8_lossy(value));
        self.data.push('\n');
        self.has_data = true;
    }

    /// Comment lines seen so far (keep-alives).
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Whether bytes of an unfinished line or event are pending: at the end of the body this means
    /// the stream was cut inside an event.
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data || (!self.started && self.bom > 0)
    }
}

/// Parses a whole byte stream given as pieces; for tests and fixtures.
pub fn parse_all<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<SseEvent>, SseParser) {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for piece in pieces {
        parser.feed(piece, &mut out);
    }
    (out, parser)
}

/// Token usage as OpenAI-compatible servers report it (`stream_options.include_usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Generated tokens.
    #[serde(default)]
    pub completion_tokens: Option<u64>,
}

/// llama-server's `timings` object (every chunk with `timings_per_token`, else the last one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Timings {
    /// Prompt tokens evaluated (after the prompt cache).
    #[serde(default)]
    pub prompt_n: Option<f64>,
    /// Prompt evaluation time, ms.
    #[serde(default)]
    pub prompt_ms: Option<f64>,
    /// Tokens generated so far.
    #[serde(default)]
    pub predicted_n: Option<f64>,
    /// Generation time so far, ms.
    #[serde(default)]
    pub predicted_ms: Option<f64>,
}

/// What one completion chunk carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// Generated text (chat content and reasoning content, or completions text).
    pub text: String,
    /// Why generation ended, on the last choice chunk.
    pub finish_reason: Option<String>,
    /// Token ids of this chunk (llama-server with `return_tokens`).
    pub token_ids: Option<Vec<i64>>,
    /// Entries of `logprobs` in this chunk: one per token.
    pub logprob_tokens: Option<u32>,
    /// Usage, on the final chunk with `include_usage`.
    pub usage: Option<Usage>,
    /// llama-server's timings.
    pub timings: Option<Timings>,
    /// The chunk carries reasoning text (`reasoning_content`, vLLM's `reasoning`) and no answer
    /// text: its tokens are reasoning tokens.
    pub reasoning: bool,
}

/// The meaning of one event's data.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `[DONE]`: the stream is complete.
    Done,
    /// A completion chunk.
    Chunk(Chunk),
    /// The server reported an error inside the stream.
    Error(String),
}

/// A chunk that is not what an OpenAI-compatible stream sends.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid JSON in a stream chunk ({reason}): {excerpt}")]
pub struct ChunkError {
    /// What the JSON parser said.
    pub reason: String,
    /// The start of the offending data.
    pub excerpt: String,
}

#[derive(Deserialize)]
struct RawChunk {
    #[serde(default)]
    choices: Vec<RawChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    /// llama-server: token ids of this chunk with `return_tokens` (top level on some endpoints).
    #[serde(default)]
    tokens: Option<Vec<i64>>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    delta: Option<RawDelta>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<RawLogprobs>,
    /// llama-server's `tokens`, vLLM's `token_ids` (with `return_token_ids`).
    #[serde(default, alias = "token_ids")]
    tokens: Option<Vec<i64>>,
}

#[derive(Deserialize)]
struct RawDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    /// vLLM's newer name for `reasoning_content`.
    #[serde(default)]
    reasoning: Option<String>,
}

#[derive(Deserialize)]
struct RawLogprobs {
    /// Chat and llama-server: one entry per token.
    #[serde(default)]
    content: Option<Vec<serde::de::IgnoredAny>>,
    /// Legacy completions: one entry per token.
    #[serde(default)]
    tokens: Option<Vec<serde::de::IgnoredAny>>,
}

/// The message of an error object: `{"error": {"message": …}}`, `{"error": "…"}`, `{"message": …}`,
/// or the JSON itself.
pub fn error_message(v: &serde_json::Value) -> String {
    let inner = v.get("error").unwrap_or(v);
    match inner {
        serde_json::Value::String(s) => s.clone(),
        other => match other.get("message").and_then(|m| m.as_str()) {
            Some(m) => {
                let code = other.get("code").map(|c| c.to_string());
                match code {
                    Some(c) if c != "null" => format!("{m} (code {c})"),
                    _ => m.to_string(),
                }
            }
            None => other.to_string(),
        },
    }
}

fn excerpt(data: &str) -> String {
    const MAX: usize = 120;
    match data.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &data[..i]),
        None => data.to_string(),
    }
}

/// Decodes the data of one event.
pub fn decode(event: &SseEvent) -> Result<Payload, ChunkError> {
    let data = event.data.trim();
    if data == "[DONE]" {
        return Ok(Payload::Done);
    }
    if event.event.as_deref() == Some("error") {
        let message = serde_json::from_str::<serde_json::Value>(data)
            .map_or_else(|_| data.to_string(), |v| error_message(&v));
        return Ok(Payload::Error(message));
    }
    let raw: RawChunk = match serde_json::from_str(data) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(ChunkError {
                reason: e.to_string(),
                excerpt: excerpt(data),
            })
        }
    };
    if let Some(err) = raw.error {
        return Ok(Payload::Error(error_message(
            &serde_json::json!({ "error": err }),
        )));
    }
    let mut chunk = Chunk {
        usage: raw.usage,
        timings: raw.timings,
        token_ids: raw.tokens,
        ..Chunk::default()
    };
    for choice in raw.choices {
        if let Some(d) = choice.delta {
            let thought = [d.reasoning_content, d.reasoning].into_iter().flatten();
            for r in thought.filter(|r| !r.is_empty()) {
                chunk.text.push_str(&r);
                chunk.reasoning = true;
            }
            if let Some(c) = d.content.filter(|c| !c.is_empty()) {
                chunk.text.push_str(&c);
                chunk.reasoning = false;
            }
        }
        if let Some(t) = choice.text {
            chunk.text.push_str(&t);
        }
        if let Some(lp) = choice.logprobs {
            let n = lp.content.or(lp.tokens).map_or(0, |v| v.len() as u32);
            *chunk.logprob_tokens.get_or_insert(0) += n;
        }
        if let Some(ids) = choice.tokens {
            chunk.token_ids.get_or_insert_with(Vec::new).extend(ids);
        }
        if choice.finish_reason.is_some() {
            chunk.finish_reason = choice.finish_reason;
        }
    }
    Ok(Payload::Chunk(chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(pieces: &[&[u8]]) -> Vec<SseEvent> {
        parse_all(pieces.iter().copied()).0
    }

    fn msg(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn every_split_of_a_stream_gives_the_same_events() {
        let body = "data: {\"a\":1}\r\n\r\n: ping\n\ndata:x\ndata: y\r\revent: e\ndata: z\n\ndata: [DONE]\n\n";
        let whole = events(&[body.as_bytes()]);
        assert_eq!(
            whole,
            vec![
                msg("{\"a\":1}"),
                msg("x\ny"),
                SseEvent {
                    event: Some("e".into()),
                    data: "z".into()
                },
                msg("[DONE]"),
            ]
        );
        let b = body.as_bytes();
        for i in 0..=b.len() {
            for j in i..=b.len() {
                assert_eq!(
                    events(&[&b[..i], &b[i..j], &b[j..]]),
                    whole,
                    "split at {i}, {j}"
                );
            }
        }
        let bytes: Vec<&[u8]> = b.chunks(1).collect();
        assert_eq!(parse_all(bytes).1.comments(), 1);
    }

    #[test]
    fn utf8_split_inside_a_character_survives() {
        let body = "data: {\"t\":\"héllo 世界\"}\n\n".as_bytes();
        let cut = body.iter().position(|&b| b >= 0x80).unwrap() + 1;
        assert_eq!(
            events(&[&body[..cut], &body[cut..]]),
            vec![msg("{\"t\":\"héllo 世界\"}")]
        );
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched_and_is_reported() {
        let (ev, p) = parse_all([&b"data: {\"a\":1}\n\ndata: {\"b\""[..]]);
        assert_eq!(ev.len(), 1);
        assert!(p.has_partial());
        let (_, p) = parse_all([&b"data: x\n\n"[..]]);
        assert!(!p.has_partial());
    }

    #[test]
    fn byte_order_mark_and_fields_without_colon() {
        let ev = events(&[b"\xEF\xBB\xBFdata\n\nid: 3\nretry: 10\ndata: a\n\n"]);
        assert_eq!(ev, vec![msg(""), msg("a")]);
    }

    #[test]
    fn decodes_chat_completions_and_llama_server_extras() {
        let chat =
            msg(r#"{"choices":[{"delta":{"content":"Hi"},"finish_reason":null,"index":0}]}"#);
        let Payload::Chunk(c) = decode(&chat).unwrap() else {
            panic!()
        };
        assert_eq!(
            (c.text.as_str(), c.finish_reason, c.token_ids),
            ("Hi", None, None)
        );

        let reasoning =
            msg(r#"{"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]}"#);
        let Payload::Chunk(c) = decode(&reasoning).unwrap() else {
            panic!()
        };
        assert_eq!(c.text, "hmm");
        assert!(c.reasoning);
        // vLLM's newer field name; a chunk with answer text is an answer chunk.
        let vllm = msg(r#"{"choices":[{"delta":{"reasoning":"so"}}]}"#);
        let Payload::Chunk(c) = decode(&vllm).unwrap() else {
            panic!()
        };
        assert!(c.reasoning && c.text == "so");
        let Payload::Chunk(c) = decode(&chat).unwrap() else {
            panic!()
        };
        assert!(!c.reasoning);

        let cmpl = msg(
            r#"{"choices":[{"text":" a b","index":0,"finish_reason":"length","logprobs":{"content":[{},{}]}}],
               "tokens":[5,6],"timings":{"prompt_n":12,"prompt_ms":3.5,"predicted_n":2,"predicted_ms":9.25}}"#,
        );
        let Payload::Chunk(c) = decode(&cmpl).unwrap() else {
            panic!()
        };
        assert_eq!(c.text, " a b");
        assert_eq!(c.finish_reason.as_deref(), Some("length"));
        assert_eq!(c.token_ids, Some(vec![5, 6]));
        assert_eq!(c.logprob_tokens, Some(2));
        let t = c.timings.unwrap();
        assert_eq!(
            (t.prompt_n, t.prompt_ms, t.predicted_n, t.predicted_ms),
            (Some(12.0), Some(3.5), Some(2.0), Some(9.25))
        );

        let vllm = msg(
            r#"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"ab","logprobs":null,"finish_reason":null,"token_ids":[17,4]}],"usage":null}"#,
        );
        let Payload::Chunk(c) = decode(&vllm).unwrap() else {
            panic!()
        };
        assert_eq!(c.token_ids, Some(vec![17, 4]), "vLLM's return_token_ids");

        let usage = msg(
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":100,"total_tokens":112}}"#,
        );
        let Payload::Chunk(c) = decode(&usage).unwrap() else {
            panic!()
        };
        assert_eq!(c.usage.unwrap().completion_tokens, Some(100));
        assert!(c.text.is_empty());
    }

    #[test]
    fn done_errors_and_invalid_json() {
        assert_eq!(decode(&msg("[DONE]")).unwrap(), Payload::Done);
        let e = decode(&msg(
            r#"{"error":{"code":500,"message":"boom","type":"server_error"}}"#,
        ))
        .unwrap();
        assert_eq!(e, Payload::Error("boom (code 500)".into()));
        let ev = events(&[b"error: {\"message\":\"slot crashed\"}\n\n"]);
        assert_eq!(
            decode(&ev[0]).unwrap(),
            Payload::Error("slot crashed".into())
        );
        let bad = decode(&msg(r#"{"choices":[{"delta":{"content":"x"}"#)).unwrap_err();
        assert!(
            bad.to_string()
                .starts_with("invalid JSON in a stream chunk"),
            "{bad}"
        );
        assert!(bad.excerpt.contains("choices"));
    }
}
