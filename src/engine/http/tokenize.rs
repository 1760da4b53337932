//! Prompt sets under load over HTTP: each prompt is templated and tokenized by the server once,
//! before the level, so that every request sends token ids as its `/v1/completions` prompt, as
//! synthetic requests do. llama-server: `POST /apply-template` with the chat messages, then
//! `POST /tokenize` with special tokens added and parsed (what its chat endpoint does with the
//! templated text); vLLM: `POST /tokenize` with the chat messages and the generation prompt.
//! The same requests serve `--compare-http --api chat`'s check of the server's rendering.

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
    #[error("POST {url}: {cause}: is the server still up?")]
    Request {
        /// The endpoint.
        url: String,
        /// The transport's reason.
        cause: String,
    },
    /// The server answered with an error.
    #[error("POST {url} answered {message}")]
    Status {
        /// The endpoint.
        url: String,
        /// The status and the server's message.
        message: String,
    },
    /// The answer lacked what was asked.
    #[error("POST {url}: the answer has no {field}: is it llama-server or vllm serve?")]
    Answer {
        /// The endpoint.
        url: String,
        /// The field missing.
        field: &'static str,
    },
    /// One of the above while a load's prompt set was tokenized, with what the user can do.
    #[error("{0}{1} (or add --input-tokens N for synthetic requests)")]
    ForPrompts(Box<TokenizeError>, &'static str),
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

/// `body` with `chat_template_kwargs` when there are any.
fn with_kwargs(mut body: Value, kwargs: &Map<String, Value>) -> Value {
    if !kwargs.is_empty() {
        body["chat_template_kwargs"] = Value::Object(kwargs.clone());
    }
    body
}

/// One user message, as every chat prompt is sent.
pub fn user_message(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

impl TokenizeError {
    /// The error of a load's prompt set: the transport and answer errors gain the way out.
    fn for_prompts(self) -> Self {
        let suffix = match &self {
            Self::Status { .. } => ": the prompt set needs the server's tokenizer endpoints",
            Self::Request { .. } | Self::Answer { .. } => "",
            _ => return self,
        };
        Self::ForPrompts(Box::new(self), suffix)
    }
}

impl HttpEngine {
    /// The token ids the server evaluates for `prompt` sent as one user message (`mode` chat) or
    /// as is (raw), asked of the server itself.
    pub fn prompt_ids(
        &self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<Vec<i64>, TokenizeError> {
        let kwargs: Option<&Map<String, Value>> = match mode {
            PromptMode::Raw => None,
            PromptMode::Chat { template, options } => {
                if template.is_some() || options.template_file.is_some() {
                    return Err(TokenizeError::Template);
                }
                Some(&options.kwargs)
            }
        };
        let messages = user_message(&prompt.prompt);
        let ids = match (self.flavor, kwargs) {
            (Flavor::LlamaServer, Some(k)) => self
                .apply_template(&messages, k)
                .and_then(|text| self.tokenize_text(&text)),
            (Flavor::LlamaServer, None) => self.tokenize_text(&prompt.prompt),
            (Flavor::Vllm, Some(k)) => self.tokenize_messages(&messages, k),
            (Flavor::Vllm, None) => self
                .post(
                    "/tokenize",
                    &json!({"model": self.model_id, "prompt": prompt.prompt,
                        "add_special_tokens": true}),
                )
                .and_then(|(v, url)| ids_of(&v, &url)),
            (Flavor::Other, _) => return Err(TokenizeError::Unknown(self.base.clone())),
        }
        .map_err(TokenizeError::for_prompts)?;
        if ids.is_empty() {
            return Err(TokenizeError::Empty(prompt.name.clone()));
        }
        Ok(ids)
    }

    /// llama-server's rendering of `messages` with its own template (`POST /apply-template`).
    pub fn apply_template(
        &self,
        messages: &Value,
        kwargs: &Map<String, Value>,
    ) -> Result<String, TokenizeError> {
        let (v, url) = self.post(
            "/apply-template",
            &with_kwargs(json!({"messages": messages}), kwargs),
        )?;
        v["prompt"]
            .as_str()
            .map(str::to_string)
            .ok_or(TokenizeError::Answer {
                url,
                field: "prompt",
            })
    }

    /// llama-server's token ids of `text`, special tokens added and parsed: what its chat
    /// endpoint does with the templated text (`POST /tokenize`).
    pub fn tokenize_text(&self, text: &str) -> Result<Vec<i64>, TokenizeError> {
        let body = json!({"content": text, "add_special": true, "parse_special": true});
        let (v, url) = self.post("/tokenize", &body)?;
        ids_of(&v, &url)
    }

    /// `vllm serve`'s token ids of `messages` rendered with the generation prompt
    /// (`POST /tokenize` with the messages).
    pub fn tokenize_messages(
        &self,
        messages: &Value,
        kwargs: &Map<String, Value>,
    ) -> Result<Vec<i64>, TokenizeError> {
        let body = with_kwargs(
            json!({"model": self.model_id, "messages": messages, "add_generation_prompt": true}),
            kwargs,
        );
        let (v, url) = self.post("/tokenize", &body)?;
        ids_of(&v, &url)
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
