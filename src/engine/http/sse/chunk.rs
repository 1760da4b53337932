//! Decoding one event's data of an OpenAI-compatible stream: `[DONE]`, an error object, or a
//! completion chunk (chat `delta.content` / `delta.reasoning_content`, completions `text`,
//! llama-server's `tokens`, `timings` and `usage`, vLLM's `token_ids`). No I/O and no clock.

use serde::Deserialize;

use super::SseEvent;

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
    use super::super::parse_all;
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
