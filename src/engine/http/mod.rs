//! The HTTP engine: streams an OpenAI-compatible server (llama-server, `vllm serve`) with reqwest on
//! a current-thread tokio runtime owned by the engine, and reports each chunk's tokens to the
//! recorder the moment the chunk is parsed.
//!
//! - [`client`]: TLS, API key, headers, timeouts, and one-line messages for error answers;
//! - [`sse`]: the event-stream parser and the decoding of stream chunks;
//! - `connect`: the server checked and identified; `request`: each run's request body;
//! - `stream`: one streamed request, its token counting and its errors;
//! - [`tokenize`]: a prompt set as the server's own token ids, for load levels.

pub mod client;
mod connect;
pub mod load;
mod request;
pub mod sse;
mod stream;
pub mod tokenize;

pub use connect::base_url;

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::{Engine, EngineError, EngineInfo, Outcome, PreparedPrompt, PromptMode, Request};
use crate::measure::Recorder;
use crate::prompts::PromptSpec;
use crate::server::ServerProcess;
use client::ClientOptions;
use sse::SseEvent;
use stream::{stream_one, HttpError, Limits};

/// The streaming API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`, one user message; the server applies its chat template.
    Chat,
    /// `POST /v1/completions` with the prompt text as is.
    Completions,
}

impl Api {
    /// The endpoint's path.
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Completions => "/v1/completions",
        }
    }
}

/// Which server software answers; decides the request's extra fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// llama.cpp's llama-server: `timings_per_token`, `cache_prompt` as `--prefix-cache`.
    LlamaServer,
    /// vLLM's OpenAI-compatible server: `return_token_ids`, a unique `cache_salt` per request
    /// unless `--prefix-cache on`.
    Vllm,
    /// Another OpenAI-compatible server: only standard fields.
    Other,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Self::LlamaServer => "llama-server",
            Self::Vllm => "vllm",
            Self::Other => "openai-compatible",
        }
    }
}

/// Where and how to stream.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Results key (`http`, `llamacpp`, `vllm`, `llamacpp-http`).
    pub key: String,
    /// Base URL, e.g. `http://127.0.0.1:8001` (a trailing `/v1` is accepted).
    pub url: String,
    /// The flag that set the URL, named in connection errors (`--url`, `--llamacpp-url`).
    pub url_flag: String,
    /// Chat or completions.
    pub api: Api,
    /// The server software, when known; else it is asked (`GET /v1/models`, `owned_by`).
    pub flavor: Option<Flavor>,
    /// The longest silence allowed inside a stream before the run fails.
    pub idle_timeout: Duration,
    /// Ask llama-server for the in-process engine's sampler chain (temperature, then the seeded
    /// draw; no top-k/top-p/min-p or penalties), so that sampled runs can match too.
    pub inprocess_sampling: bool,
    /// `--prefix-cache on`, as recorded in the settings (each request follows its own
    /// `Request::prefix_cache`).
    pub prefix_cache: bool,
    /// TLS, API key, extra headers and timeouts.
    pub client: ClientOptions,
}

impl HttpSettings {
    /// Settings with the usual timeouts.
    pub fn new(key: &str, url: &str, url_flag: &str, api: Api) -> Self {
        Self {
            key: key.into(),
            url: url.into(),
            url_flag: url_flag.into(),
            api,
            flavor: None,
            idle_timeout: Duration::from_secs(300),
            inprocess_sampling: false,
            prefix_cache: false,
            client: ClientOptions::default(),
        }
    }
}

/// The HTTP engine.
#[derive(Debug)]
pub struct HttpEngine {
    settings: HttpSettings,
    base: String,
    endpoint: String,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    model_id: String,
    model_label: String,
    flavor: Flavor,
    version: String,
    load_ms: f64,
    events: Vec<SseEvent>,
    details: Map<String, Value>,
    server: Option<ServerProcess>,
    /// Requests sent, for unique cache salts.
    requests: u64,
    /// Distinguishes this engine's salts from another process's.
    salt_tag: String,
    /// Chat template arguments sent with every chat request (`--chat-template-kwargs`, `--thinking`).
    chat_kwargs: Map<String, Value>,
}

impl HttpEngine {
    /// Sets the chat template arguments sent with every chat request, for callers that prepare
    /// the prompts themselves (`--compare-http --api chat`).
    pub fn set_chat_kwargs(&mut self, kwargs: Map<String, Value>) {
        self.chat_kwargs = kwargs;
    }

    /// The model id requests name (`data[0].id` of `/v1/models`).
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The llama-server this engine started, if any.
    pub fn server(&self) -> Option<&ServerProcess> {
        self.server.as_ref()
    }

    /// If the server this engine started has died: how, with the end of its log. `grace` is how
    /// long to wait for a dying server to be gone (its sockets close just before it exits).
    pub fn server_exit(&mut self, grace: Duration) -> Option<String> {
        let s = self.server.as_mut()?;
        let deadline = Instant::now() + grace;
        let status = loop {
            match s.exited() {
                Some(status) => break status,
                None if Instant::now() >= deadline => return None,
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        Some(format!(
            "{} exited during the runs ({status}){}",
            s.name(),
            s.log_tail()
        ))
    }
}

impl Engine for HttpEngine {
    fn info(&self) -> EngineInfo {
        let mut settings = Map::new();
        settings.insert("url".into(), json!(crate::redact::text(&self.base)));
        settings.insert("endpoint".into(), json!(self.settings.api.path()));
        settings.insert("server".into(), json!(self.flavor.name()));
        settings.insert("model_id".into(), json!(self.model_id));
        settings.insert("stream_options.include_usage".into(), json!(true));
        settings.insert("prefix_cache".into(), json!(self.settings.prefix_cache));
        if !self.chat_kwargs.is_empty() {
            let kwargs = Value::Object(self.chat_kwargs.clone());
            settings.insert("chat_template_kwargs".into(), kwargs);
        }
        if self.flavor == Flavor::Vllm && !self.settings.prefix_cache {
            settings.insert("cache_salt".into(), json!("unique per request"));
        }
        if self.flavor == Flavor::LlamaServer {
            settings.insert("cache_prompt".into(), json!(self.settings.prefix_cache));
            settings.insert("timings_per_token".into(), json!(true));
            if self.settings.inprocess_sampling {
                settings.insert("samplers".into(), json!(["temperature"]));
            }
        }
        if self.settings.client != ClientOptions::default() {
            settings.insert(
                "client".into(),
                Value::Object(self.settings.client.describe()),
            );
        }
        let name = match self.flavor {
            Flavor::LlamaServer => "llama-server (HTTP)",
            Flavor::Vllm => "vLLM (HTTP)",
            Flavor::Other => "OpenAI-compatible server (HTTP)",
        };
        EngineInfo {
            key: self.settings.key.clone(),
            name: name.into(),
            version: self.version.clone(),
            model: self.model_label.clone(),
            settings,
            load_ms: self.load_ms,
            details: self.details.clone(),
        }
    }

    fn prepare(
        &mut self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<PreparedPrompt, EngineError> {
        if let PromptMode::Chat { options, .. } = mode {
            if options.template_file.is_some() {
                return Err(EngineError::Prompt(
                    "--chat-template-file does not apply over HTTP: the server renders its own template (start llama-server with --chat-template-file, vllm serve with --chat-template)".into(),
                ));
            }
            self.chat_kwargs = options.kwargs.clone();
        }
        match (mode, self.settings.api) {
            (PromptMode::Chat { template: Some(_), .. }, Api::Chat) => Err(EngineError::Prompt(
                "--chat-template does not apply over HTTP: the server applies its own template (--api chat), or pass --raw-prompt with --api completions".into(),
            )),
            (PromptMode::Chat { .. }, Api::Completions) => Err(EngineError::Prompt(
                "--api completions sends the prompt text as is: pass --raw-prompt, or use --api chat to let the server apply its chat template".into(),
            )),
            _ => Ok(PreparedPrompt {
                name: prompt.name.clone(),
                text: prompt.prompt.clone(),
                max_tokens: prompt.max_tokens,
                prompt_tokens: None,
            }),
        }
    }

    fn generate(&mut self, req: &Request<'_>, rec: &mut Recorder) -> Result<Outcome, EngineError> {
        let body = serde_json::to_vec(&self.body(req))
            .map_err(|e| EngineError::Generate(format!("cannot encode the request: {e}")))?;
        self.requests += 1;
        let mut events = std::mem::take(&mut self.events);
        let result = self.rt.block_on(stream_one(
            &self.client,
            &self.endpoint,
            &self.settings.url_flag,
            body,
            Limits {
                idle: self.settings.idle_timeout,
                request: self.settings.client.request_timeout,
            },
            rec,
            &mut events,
        ));
        self.events = events;
        let out = match result {
            Ok(out) => out,
            Err(HttpError::Interrupted) => return Err(EngineError::Interrupted),
            Err(e) => {
                let grace = match e {
                    HttpError::Connect { .. }
                    | HttpError::NoResponse { .. }
                    | HttpError::Broken { .. }
                    | HttpError::NoDone { .. } => Duration::from_millis(500),
                    _ => Duration::ZERO,
                };
                let e = crate::redact::text(&e.to_string());
                return Err(match self.server_exit(grace) {
                    Some(death) => {
                        EngineError::Stopped(format!("{death}; the request failed: {e}"))
                    }
                    None => EngineError::Generate(e),
                });
            }
        };
        Ok(out.into_outcome(req, rec))
    }
}
