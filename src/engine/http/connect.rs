//! Connecting to a server: the base URL checked, `GET /v1/models` for the model and the server
//! software, its version, and what the process tree of a server this process started runs with.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::client;
use super::stream::{root_cause, HttpError};
use super::{Flavor, HttpEngine, HttpSettings};
use crate::engine::EngineError;
use crate::measure::{LoadTime, LoadTimed};
use crate::server::ServerProcess;

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
    /// learns which server it is. The caller times the connection as the engine's load time.
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
                let message = client::status_message(status, &headers, &text);
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
            let tree = crate::engine::proc_env::server_tree(s.pid());
            details.insert(
                "server_threads".into(),
                Value::Object(crate::engine::proc_env::effective_threads(&tree)),
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
            load_ms: 0.0,
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
}

impl LoadTimed for HttpEngine {
    /// The connection time (`GET /v1/models` and the version) is the engine's load time.
    fn loaded_in(&mut self, load: &LoadTime) {
        self.load_ms = load.ms;
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

#[cfg(test)]
mod tests {
    use super::*;

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
