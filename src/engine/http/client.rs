//! The HTTP engine's client: TLS through rustls (the system's CA store and the webpki roots, or a
//! CA bundle given with `--ca-cert`), the API key (`--api-key`, `OPENAI_API_KEY`) and extra
//! headers, connect and per-request timeouts; redirects are not followed and nothing is retried,
//! so every measured run is exactly one request. Also the one-line messages for error answers.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use serde_json::{json, Map, Value};

use crate::redact;

/// How the client connects and what it sends with every request.
#[derive(Clone, PartialEq)]
pub struct ClientOptions {
    /// Sent as `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// Extra headers, in the order given (`--header K:V`).
    pub headers: Vec<(String, String)>,
    /// A PEM bundle of CA certificates trusted besides the built-in roots.
    pub ca_cert: Option<PathBuf>,
    /// Limit on opening the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit on one whole request, from sending it to the end of the stream; `None` leaves only the
    /// stall limit.
    pub request_timeout: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            api_key: None,
            headers: Vec::new(),
            ca_cert: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: None,
        }
    }
}

// Written by hand so that a key never reaches a debug print.
impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("api_key", &self.api_key.as_ref().map(|_| redact::REDACTED))
            .field("headers", &self.describe_headers())
            .field("ca_cert", &self.ca_cert)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// Parses a `--header` value, `Name: value` (or `Name:value`), checking both parts.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once(':').ok_or_else(|| {
        format!(
            "'{}' is not NAME:VALUE: pass e.g. --header 'X-Request-Source: bench'",
            redact::header_arg(s)
        )
    })?;
    let (name, value) = (name.trim(), value.trim());
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("'{name}' is not a valid header name"))?;
    HeaderValue::from_str(value).map_err(|_| {
        format!("the value of header '{name}' has characters a header cannot carry")
    })?;
    Ok((name.to_string(), value.to_string()))
}

impl ClientOptions {
    /// Registers the key and credential header values with [`redact`], so that no output shows
    /// them.
    pub fn register_secrets(&self) {
        if let Some(k) = &self.api_key {
            redact::register(k);
        }
        for (k, v) in &self.headers {
            if redact::is_sensitive_header(k) {
                redact::register(v);
            }
        }
    }

    fn describe_headers(&self) -> Map<String, Value> {
        self.headers
            .iter()
            .map(|(k, v)| {
                let v = if redact::is_sensitive_header(k) {
                    redact::REDACTED.to_string()
                } else {
                    redact::text(v)
                };
                (k.clone(), json!(v))
            })
            .collect()
    }

    /// What the results file records: every setting, secrets replaced.
    pub fn describe(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "api_key".into(),
            json!(self.api_key.as_ref().map(|_| "bearer [redacted]")),
        );
        m.insert("headers".into(), Value::Object(self.describe_headers()));
        m.insert(
            "ca_cert".into(),
            json!(self.ca_cert.as_ref().map(|p| p.display().to_string())),
        );
        m.insert(
            "connect_timeout_s".into(),
            json!(self.connect_timeout.as_secs_f64()),
        );
        m.insert(
            "request_timeout_s".into(),
            json!(self.request_timeout.map(|d| d.as_secs_f64())),
        );
        m.insert("redirects".into(), json!("not followed"));
        m.insert("retries".into(), json!(0));
        m
    }

    fn default_headers(&self) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        if let Some(k) = &self.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", k.trim())).map_err(|_| {
                "--api-key (or OPENAI_API_KEY) has characters a header cannot carry".to_string()
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("--header: '{k}' is not a valid header name"))?;
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| format!("--header: the value of '{k}' is not a valid header value"))?;
            value.set_sensitive(redact::is_sensitive_header(k));
            headers.append(name, value);
        }
        Ok(headers)
    }

    /// The reqwest client: one new connection per request (servers close idle keep-alive
    /// connections on their own schedule, and a request on a connection just closed would fail),
    /// no proxy from the environment, no redirects.
    pub fn build(&self) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .connect_timeout(self.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(self.default_headers()?);
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "--ca-cert {}: cannot read it ({e}): pass a PEM file of CA certificates",
                    path.display()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    format!(
                        "--ca-cert {}: no PEM certificate in it: pass a file with -----BEGIN CERTIFICATE----- blocks",
                        path.display()
                    )
                })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        b.build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"))
    }
}

/// `s` on one line: line breaks and control characters become spaces, runs of blanks shrink to
/// one, and at most `max` characters are kept.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut blank = false;
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_whitespace() || c.is_control() {
            if !blank && !out.is_empty() {
                out.push(' ');
            }
            blank = true;
        } else {
            out.push(c);
            blank = false;
        }
    }
    out.trim_end().to_string()
}

/// What an error answer says, on one line: the server's JSON error message (or the start of its
/// body), what a `Retry-After` or `Location` header adds, and what to do.
pub fn status_message(status: reqwest::StatusCode, headers: &HeaderMap, body: &str) -> String {
    let message = serde_json::from_str::<Value>(body).map_or_else(
        |_| one_line(body, 300),
        |v| one_line(&super::sse::error_message(&v), 300),
    );
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| one_line(v, 200))
    };
    let mut out = if message.is_empty() {
        "(no message)".to_string()
    } else {
        message
    };
    if status.is_redirection() {
        out.push_str(&format!(
            " (redirects are not followed; Location: {}): pass the final URL",
            header("location").unwrap_or_else(|| "none".into())
        ));
    } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let after = header("retry-after").map_or(String::new(), |a| format!("Retry-After: {a}; "));
        out.push_str(&format!(
            " ({after}not retried: a measured run is one request; lower the load or raise the server's rate limit)"
        ));
    } else if status == reqwest::StatusCode::UNAUTHORIZED
        || status == reqwest::StatusCode::FORBIDDEN
    {
        out.push_str(" (check --api-key, OPENAI_API_KEY or --header)");
    }
    redact::text(&out)
}

/// The hint for a failed connection: TLS trouble names `--ca-cert` or `http://`, anything else
/// asks whether the server runs.
pub fn connect_hint(cause: &str, flag: &str) -> String {
    let c = cause.to_ascii_lowercase();
    if c.contains("certificate") || c.contains("unknownissuer") || c.contains("notvalidforname") {
        format!("the server's TLS certificate is not trusted: pass its CA bundle with --ca-cert FILE, or check the host name in {flag}")
    } else if ["tls", "handshake", "corrupt message", "invalidcontenttype"]
        .iter()
        .any(|w| c.contains(w))
    {
        format!("the TLS handshake failed: is it an https server? pass the right scheme in {flag}")
    } else {
        format!("is the server running? start it, or pass the right {flag}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_parsed_and_checked() {
        assert_eq!(
            parse_header("X-A: b c").unwrap(),
            ("X-A".to_string(), "b c".to_string())
        );
        assert_eq!(parse_header("X-A:b").unwrap().1, "b");
        assert!(parse_header("no colon").unwrap_err().contains("NAME:VALUE"));
        assert!(parse_header("bad name: x")
            .unwrap_err()
            .contains("header name"));
        assert!(parse_header("X: a\nb")
            .unwrap_err()
            .contains("cannot carry"));
    }

    #[test]
    fn messages_fit_on_one_line_and_say_what_to_do() {
        assert_eq!(one_line("a\n\n b\r\tc", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        let m = status_message(
            reqwest::StatusCode::TOO_MANY_REQUESTS,
            &h,
            r#"{"error":{"message":"slow\ndown"}}"#,
        );
        assert!(
            m.starts_with("slow down (Retry-After: 7; not retried"),
            "{m}"
        );
        h.insert("location", HeaderValue::from_static("/elsewhere"));
        let m = status_message(reqwest::StatusCode::FOUND, &h, "");
        assert!(m.contains("Location: /elsewhere"), "{m}");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let o = ClientOptions {
            api_key: Some("sk-debug-secret".into()),
            headers: vec![("Authorization".into(), "Bearer sk-h".into())],
            ..ClientOptions::default()
        };
        let d = format!("{o:?}");
        assert!(!d.contains("sk-debug-secret") && !d.contains("sk-h"), "{d}");
        assert!(o.build().is_ok());
    }
}
