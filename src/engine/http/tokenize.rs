//! Prompt sets under load over HTTP: each prompt is templated and tokenized by the server once,
//! before the level, so that every request sends token ids as its `/v1/completions` prompt, as
//! synthetic requests do. llama-server: `POST /apply-template` with the chat messages, then
//! `POST /tokenize` with special tokens added and parsed (what its chat endpoint does with the
//! templated text); vLLM: `POST /tokenize` with the chat messages and the generation prompt.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::client;
use super::stream::root_cause;
use super::{Flavor, HttpEngine};
use crate::engine::PromptMode;
use crate::prompts::PromptSpec;

/// How long one tokenize request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a prompt could not be turned into the server's token ids.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// The server software has no known tokenize endpoint.
    #[error("the server at {0} is neither llama-server nor vllm serve, so the prompt set cannot be tokenized by it: add --input-tokens N (synthetic requests)")]
    Unknown(String),
    /// A template other than the server's own was asked for.
    #[error("--chat-template and --chat-template-file do not reach a server: over HTTP the prompt set goes through the server's own template; drop the flag, or start the server with that template")]
    Template,
    /// The request failed.
    #[error("POST {url}: {cause}: is the server still up? (or add --input-tokens N for synthetic requests)")]
    Request {
        /// The endpoint.
        url: String,
        /// The transport's reason.
        cause: String,
    },
    /// The server answered with an error.
    #[error("POST {url} answered {message}: the prompt set needs the server's tokenizer endpoints (or add --input-tokens N for synthetic requests)")]
    Status {
        /// The endpoint.
        url: String,
        /// The status and the server's message.
        message: String,
    },
    /// The answer lacked what was asked.
    #[error("POST {url}: the answer has no {field}: is it llama-server or vllm serve? (or add --input-tokens N for synthetic requests)")]
    Answer {
        /// The endpoint.
        url: String,
        /// The field missing.
        field: &'static str,
    },
    /// The prompt came out empty.
    #[error("prompt '{0}' has no tokens after the server tokenized it: give it some text")]
    Empty(String),
}

/// How the token ids of a prompt set were made over HTTP, for the results.
pub fn method(flavor: Flavor, mode: &PromptMode) -> &'static str {
    match (flavor, mode) {
        (Flavor::LlamaServer, PromptMode::Chat { .. }) => {
            "llama-server /apply-template, then /tokenize (special tokens added and parsed)"
        }
        (Flavor::LlamaServer, PromptMode::Raw) => {
            "llama-server /tokenize (special tokens added and parsed)"
        }
        (Flavor::Vllm, PromptMode::Chat { .. }) => {
            "vllm /tokenize with the chat messages (generation prompt added)"
        }
        (Flavor::Vllm, PromptMode::Raw) => "vllm /tokenize (special tokens added)",
        (Flavor::Other, _) => "none",
    }
}

/// The token ids of a tokenize answer (`tokens`, a list of ints).
fn ids_of(v: &Value, url: &str) -> Result<Vec<i64>, TokenizeError> {
    let missing = || TokenizeError::Answer {
        url: url.to_string(),
        field: "tokens",
    };
    v["tokens"]
        .as_array()
        .ok_or_else(missing)?
        .iter()
        .map(|t| t.as_i64().ok_or_else(missing))
        .collect()
}

impl HttpEngine {
    /// The token ids the server evaluates for `prompt` sent as one user message (`mode` chat) or
    /// as is (raw), asked of the server itself.
    pub fn prompt_ids(
        &self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<Vec<i64>, TokenizeError> {
        let kwargs: Option<Map<String, Value>> = match mode {
            PromptMode::Raw => None,
            PromptMode::Chat { template, options } => {
                if template.is_some() || options.template_file.is_some() {
                    return Err(TokenizeError::Template);
                }
                Some(options.kwargs.clone())
            }
        };
        let messages = json!([{"role": "user", "content": prompt.prompt}]);
        let with_kwargs = |mut body: Value, kwargs: &Map<String, Value>| {
            if !kwargs.is_empty() {
                body["chat_template_kwargs"] = Value::Object(kwargs.clone());
            }
            body
        };
        let ids = match self.flavor {
            Flavor::LlamaServer => {
                let text = match &kwargs {
                    Some(k) => {
                        let (v, url) = self.post(
                            "/apply-template",
                            &with_kwargs(json!({"messages": messages}), k),
                        )?;
                        v["prompt"]
                            .as_str()
                            .ok_or(TokenizeError::Answer {
                                url,
                                field: "prompt",
                            })?
                            .to_string()
                    }
                    None => prompt.prompt.clone(),
                };
                let body = json!({"content": text, "add_special": true, "parse_special": true});
                let (v, url) = self.post("/tokenize", &body)?;
                ids_of(&v, &url)?
            }
            Flavor::Vllm => {
                let body = match &kwargs {
                    Some(k) => with_kwargs(
                        json!({"model": self.model_id, "messages": messages,
                            "add_generation_prompt": true}),
                        k,
                    ),
                    None => json!({"model": self.model_id, "prompt": prompt.prompt,
                        "add_special_tokens": true}),
                };
                let (v, url) = self.post("/tokenize", &body)?;
                ids_of(&v, &url)?
            }
            Flavor::Other => return Err(TokenizeError::Unknown(self.base.clone())),
        };
        if ids.is_empty() {
            return Err(TokenizeError::Empty(prompt.name.clone()));
        }
        Ok(ids)
    }

    /// Posts `body` as JSON to `path` and returns the JSON answer and the URL.
    fn post(&self, path: &str, body: &Value) -> Result<(Value, String), TokenizeError> {
        let url = format!("{}{path}", self.base);
        let bytes = serde_json::to_vec(body).map_err(|e| TokenizeError::Request {
            url: url.clone(),
            cause: e.to_string(),
        })?;
        let request = |cause: String| TokenizeError::Request {
            url: url.clone(),
            cause,
        };
        let (status, headers, text) = self.rt.block_on(async {
            let resp = self
                .client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(TIMEOUT)
                .body(bytes)
                .send()
                .await
                .map_err(|e| request(root_cause(&e)))?;
            let (status, headers) = (resp.status(), resp.headers().clone());
            let text = resp.text().await.map_err(|e| request(root_cause(&e)))?;
            Ok::<_, TokenizeError>((status, headers, text))
        })?;
        if !status.is_success() {
            return Err(TokenizeError::Status {
                message: client::status_message(status, &headers, &text),
                url,
            });
        }
        let v = serde_json::from_str(&text).map_err(|_| TokenizeError::Answer {
            url: url.clone(),
            field: "JSON",
        })?;
        Ok((v, url))
    }
}
