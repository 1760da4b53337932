//! The HTTP engine: streams an OpenAI-compatible server (llama-server, `vllm serve`) with reqwest on
//! a current-thread tokio runtime owned by the engine, and reports each chunk's tokens to the
//! recorder the moment the chunk is parsed.
//!
//! Token counting, best source first: llama-server's cumulative `timings.predicted_n` (asked for
//! with `timings_per_token`), token ids in the chunk, `logprobs` entries, else one token per
//! non-empty text delta (what the original benchmark counted). At the end the total is checked
//! against the server's `usage.completion_tokens` (asked for with `stream_options.include_usage`);
//! a disagreement is corrected on the last delivery and recorded in the run's `server` figures.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use super::http_client::{self, ClientOptions};
use super::sse::{self, Chunk, Payload, SseEvent, SseParser, Timings, Usage};
use super::{
    Engine, EngineError, EngineInfo, Finish, Outcome, PreparedPrompt, PromptMode, Request,
    ServerTimings,
};
use crate::measure::Recorder;
use crate::prompts::PromptSpec;
use crate::server::ServerProcess;

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

/// How often a silent stream checks for Ctrl-C.
const POLL: Duration = Duration::from_millis(100);

/// What went wrong in one request. Each message names the likely fix.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error(
        "cannot connect to {url}: {} ({cause})",
        http_client::connect_hint(cause, flag)
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
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Token counting sources, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CountSource {
    Chunks,
    Logprobs,
    TokenIds,
    Timings,
}

impl CountSource {
    fn name(self) -> &'static str {
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
struct Counter {
    counted: u64,
    source: Option<CountSource>,
}

impl Counter {
    fn count(&mut self, c: &Chunk) -> u32 {
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
struct Streamed {
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
struct Limits {
    idle: Duration,
    request: Option<Duration>,
}

/// One streamed request, timed on `rec`.
async fn stream_one(
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
        let message = http_client::status_message(status, &headers, &text);
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

fn load_err(msg: String) -> EngineError {
    EngineError::Load(msg)
}

/// Normalizes a base URL: no trailing `/` or `/v1`; http only.
pub fn base_url(url: &str, flag: &str) -> Result<String, EngineError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        load_err(format!(
            "{flag} {url:?} is not a URL ({e}): pass e.g. http://127.0.0.1:8001"
        ))
    })?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(load_err(format!(
                "{flag} {url}: scheme {other} is not HTTP; pass e.g. http://127.0.0.1:8001 or https://host"
            )))
        }
    }
    if let Some(p) = parsed.password() {
        crate::redact::register(p);
    }
    let mut base = url.trim_end_matches('/').to_string();
    if let Some(stripped) = base.strip_suffix("/v1") {
        base = stripped.to_string();
    }
    Ok(base)
}

impl HttpEngine {
    /// Connects: checks the server answers `GET /v1/models`, takes the model name from it and
    /// learns which server it is. The connection time is the engine's load time.
    pub fn connect(settings: HttpSettings) -> Result<Self, EngineError> {
        Self::connect_inner(settings, None)
    }

    /// Connects to a llama-server this process started; the engine owns it and stops it when
    /// dropped.
    pub fn with_server(settings: HttpSettings, server: ServerProcess) -> Result<Self, EngineError> {
        Self::connect_inner(settings, Some(server))
    }

    fn connect_inner(
        settings: HttpSettings,
        server: Option<ServerProcess>,
    ) -> Result<Self, EngineError> {
        let started = Instant::now();
        let base = base_url(&settings.url, &settings.url_flag)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| load_err(format!("cannot start the HTTP runtime: {e}")))?;
        // A new connection per request, as the original benchmark's `requests.post`.
        settings.client.register_secrets();
        let client = settings.client.build().map_err(load_err)?;
        let models_url = format!("{base}/v1/models");
        let flag = settings.url_flag.clone();
        let models: Value = rt.block_on(async {
            let resp = client
                .get(&models_url)
                .timeout(settings.client.request_timeout.unwrap_or(Duration::from_secs(30)))
                .send()
                .await
                .map_err(|e| {
                    load_err(
                        HttpError::Connect {
                            url: base.clone(),
                            flag: flag.clone(),
                            cause: root_cause(&e),
                        }
                        .to_string(),
                    )
                })?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap_or_default();
            if !status.is_success() {
                let message = http_client::status_message(status, &headers, &text);
                return Err(load_err(format!(
                    "GET {models_url} answered {status} ({message}): is {base} an OpenAI-compatible server? check {flag}"
                )));
            }
            serde_json::from_str(&text).map_err(|e| {
                load_err(format!(
                    "GET {models_url} did not return JSON ({e}): is {base} an OpenAI-compatible server? check {flag}"
                ))
            })
        })?;
        let first = &models["data"][0];
        let model_id = first["id"].as_str().unwrap_or_default().to_string();
        let owned_by = first["owned_by"].as_str().unwrap_or_default();
        let flavor = settings.flavor.unwrap_or(match owned_by {
            "llamacpp" => Flavor::LlamaServer,
            "vllm" => Flavor::Vllm,
            _ if server.is_some() => Flavor::LlamaServer,
            _ => Flavor::Other,
        });
        let version = rt.block_on(server_version(&client, &base, flavor));
        let model_label = server
            .as_ref()
            .and_then(|s| {
                let a = s.args();
                a.iter()
                    .position(|x| x == "--model")
                    .and_then(|i| a.get(i + 1))
                    .cloned()
            })
            .unwrap_or_else(|| model_id.clone());
        let mut details = Map::new();
        if let Some(s) = &server {
            details.insert(
                "server_binary".into(),
                json!(s.binary().display().to_string()),
            );
            details.insert("server_args".into(), json!(s.args()));
            details.insert("server_ready_ms".into(), json!(s.ready_ms()));
            // The threads and CPU binding the server's processes really run with.
            let tree = super::proc_env::server_tree(s.pid());
            details.insert(
                "server_threads".into(),
                Value::Object(super::proc_env::effective_threads(&tree)),
            );
            details.insert("server_processes".into(), Value::Array(tree));
        }
        Ok(Self {
            endpoint: format!("{base}{}", settings.api.path()),
            base,
            rt,
            client,
            model_id,
            model_label,
            flavor,
            version,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            events: Vec::with_capacity(8),
            chat_kwargs: Map::new(),
            details,
            server,
            settings,
            requests: 0,
            salt_tag: format!(
                "{:x}-{:x}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ),
        })
    }

    /// A `cache_salt` no earlier request carried.
    fn next_salt(&self) -> String {
        format!("inproc-bench-{}-{}", self.salt_tag, self.requests)
    }

    /// The request body for one run.
    fn body(&self, req: &Request<'_>) -> Value {
        let s = req.sampling;
        let mut body = json!({
            "model": self.model_id,
            "max_tokens": req.prompt.max_tokens,
            "temperature": s.temperature,
            "seed": s.seed,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        match self.settings.api {
            Api::Chat => {
                body["messages"] = json!([{"role": "user", "content": req.prompt.text}]);
                if !self.chat_kwargs.is_empty() {
                    body["chat_template_kwargs"] = Value::Object(self.chat_kwargs.clone());
                }
            }
            Api::Completions => body["prompt"] = json!(req.prompt.text),
        }
        if s.ignore_eos && self.flavor != Flavor::Other {
            body["ignore_eos"] = json!(true);
        }
        if self.flavor == Flavor::Vllm {
            // Each chunk then carries its token ids: tokens are counted, not chunks.
            body["return_token_ids"] = json!(true);
            if !req.prefix_cache {
                // vLLM caches prompt prefixes by default: a salt no other request has makes every
                // block of this prompt a miss, so each run evaluates its whole prompt.
                body["cache_salt"] = json!(self.next_salt());
            }
        }
        if self.flavor == Flavor::LlamaServer {
            body["cache_prompt"] = json!(req.prefix_cache);
            body["timings_per_token"] = json!(true);
            if self.settings.inprocess_sampling {
                body["samplers"] = json!(["temperature"]);
            }
        }
        body
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

async fn server_version(client: &reqwest::Client, base: &str, flavor: Flavor) -> String {
    let (path, field) = match flavor {
        Flavor::LlamaServer => ("/props", "build_info"),
        Flavor::Vllm => ("/version", "version"),
        Flavor::Other => return "unknown".into(),
    };
    let got = async {
        let v: Value = client
            .get(format!("{base}{path}"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v[field].as_str().map(str::to_string)
    };
    got.await.unwrap_or_else(|| "unknown".into())
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
        let mut out = match result {
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
        let counted = out.counter.counted;
        let reported = out.usage.and_then(|u| u.completion_tokens).or_else(|| {
            out.timings
                .and_then(|t| t.predicted_n)
                .map(|n| n.max(0.0) as u64)
        });
        let mut counted_tokens = None;
        if let Some(total) = reported.filter(|&t| t != counted) {
            rec.correct_total(total);
            counted_tokens = Some(counted);
        }
        let prompt_tokens = out
            .usage
            .and_then(|u| u.prompt_tokens)
            .or_else(|| {
                out.timings
                    .and_then(|t| t.prompt_n)
                    .map(|n| n.max(0.0) as u64)
            })
            .or(req.prompt.prompt_tokens)
            .unwrap_or(0);
        let t = out.timings.unwrap_or_default();
        Ok(Outcome {
            prompt_tokens,
            token_ids: std::mem::take(&mut out.token_ids),
            text: std::mem::take(&mut out.text),
            finish: match out.finish_reason.as_deref() {
                Some("stop") => Finish::Eos,
                _ => Finish::Length,
            },
            server: Some(ServerTimings {
                prompt_ms: t.prompt_ms,
                predicted_ms: t.predicted_ms,
                prompt_n: t.prompt_n.map(|n| n.max(0.0) as u64),
                predicted_n: t.predicted_n.map(|n| n.max(0.0) as u64),
                headers_ms: out.headers_ms,
                first_byte_ms: out.first_byte_ms,
                usage_tokens: out.usage.and_then(|u| u.completion_tokens),
                counted_tokens,
                count_source: out.counter.source.map(|s| s.name().to_string()),
            }),
            counters: None,
        })
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

    #[test]
    fn urls_are_normalized_and_checked() {
        assert_eq!(
            base_url("http://127.0.0.1:8001/v1/", "--url").unwrap(),
            "http://127.0.0.1:8001"
        );
        assert_eq!(base_url("http://h:1", "--url").unwrap(), "http://h:1");
        assert_eq!(base_url("https://h/v1", "--url").unwrap(), "https://h");
        assert!(base_url("127.0.0.1:8001", "--url")
            .unwrap_err()
            .to_string()
            .contains("--url"));
        assert!(base_url("ftp://h", "--url")
            .unwrap_err()
            .to_string()
            .contains("not HTTP"));
    }
}
