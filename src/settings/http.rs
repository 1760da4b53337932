//! The HTTP engine's settings table: what it sends to an OpenAI-compatible server, as recorded.

use super::SettingSpec;

/// Every HTTP engine setting, each once; the columns keep the results keys.
pub const TABLE: &[SettingSpec] = &[
    SettingSpec::plain("url", "--url"),
    SettingSpec::plain("endpoint", "--api"),
    // The server's kind, from `--backend` or asked from the server.
    SettingSpec::plain("server", ""),
    // The model id the server lists.
    SettingSpec::plain("model_id", ""),
    SettingSpec::plain("stream_options.include_usage", ""),
    SettingSpec::plain("prefix_cache", "--prefix-cache"),
    // vLLM: a salt per request keeps its prefix cache from serving a prompt.
    SettingSpec::plain("cache_salt", ""),
    // llama-server: the request's own prompt-cache switch.
    SettingSpec::plain("cache_prompt", "--prefix-cache"),
    SettingSpec::plain("timings_per_token", ""),
    SettingSpec::plain("samplers", ""),
    // TLS, credentials and timeouts of the client (secrets redacted).
    SettingSpec::plain("client", ""),
];
