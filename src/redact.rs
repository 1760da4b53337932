//! Keeps secrets (API keys, credential headers, passwords in URLs) out of everything the tool
//! writes: the recorded command line, error messages, run errors and progress text.
//!
//! Secrets are registered once, when the flags are read ([`register`]); [`text`] then replaces
//! every occurrence of them in any string, and [`command_line`] rewrites the argument list
//! structurally (the value of `--api-key`, the value of a credential `--header`) before the text
//! pass, so a key is hidden even where it is too short to search for safely.

use std::sync::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `secret` so that [`text`] hides it from now on. Empty strings are ignored.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.is_empty() {
        return;
    }
    if let Ok(mut s) = SECRETS.write() {
        if !s.iter().any(|x| x == secret) {
            s.push(secret.to_string());
            // Longest first, so a secret that contains another is replaced whole.
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }
}

/// `s` with every registered secret replaced by [`REDACTED`].
pub fn text(s: &str) -> String {
    let Ok(secrets) = SECRETS.read() else {
        return s.to_string();
    };
    let mut out = s.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}

/// Whether a header carries credentials: `Authorization`, `Proxy-Authorization`, `Cookie`, and
/// any name that speaks of a key, token, secret, password or auth (`X-Api-Key`, `api-key`, …).
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    n == "cookie"
        || [
            "auth",
            "key",
            "token",
            "secret",
            "passw",
            "session",
            "signature",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// A `K:V` header argument with the value hidden when the header carries credentials.
pub fn header_arg(arg: &str) -> String {
    match arg.split_once(':') {
        Some((k, _)) if is_sensitive_header(k) => format!("{k}: {REDACTED}"),
        _ => text(arg),
    }
}

/// The command line as it may be recorded: values of `--api-key` and of credential headers
/// replaced, then every registered secret hidden wherever else it appears.
pub fn command_line(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut next_is: Option<&str> = None;
    for arg in args {
        let replaced = match next_is.take() {
            Some("key") => REDACTED.to_string(),
            Some(_) => header_arg(&arg),
            None => {
                if arg == "--api-key" {
                    next_is = Some("key");
                    arg
                } else if arg == "--header" || arg == "-H" {
                    next_is = Some("header");
                    arg
                } else if arg.starts_with("--api-key=") {
                    format!("--api-key={REDACTED}")
                } else if let Some(v) = arg.strip_prefix("--header=") {
                    format!("--header={}", header_arg(v))
                } else if let Some(v) = arg.strip_prefix("-H").filter(|v| !v.is_empty()) {
                    format!("-H{}", header_arg(v))
                } else {
                    arg
                }
            }
        };
        out.push(text(&replaced));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> Vec<String> {
        command_line(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn keys_and_credential_headers_are_hidden_in_every_spelling() {
        register("sk-unit-test-secret");
        let got = line(&[
            "inproc-bench",
            "--api-key",
            "k1",
            "--api-key=k2",
            "--header",
            "Authorization: Bearer k3",
            "--header=X-Api-Key:k4",
            "-HCookie: k5",
            "-H",
            "X-Trace: visible",
            "--url",
            "http://u:sk-unit-test-secret@h",
        ]);
        let joined = got.join(" ");
        for k in ["k1", "k2", "k3", "k4", "k5", "sk-unit-test-secret"] {
            assert!(!joined.contains(k), "{k} in {joined}");
        }
        assert!(joined.contains("X-Trace: visible"), "{joined}");
        assert_eq!(got[2], REDACTED);
        assert_eq!(got[3], "--api-key=[redacted]");
        assert_eq!(
            text("failed with sk-unit-test-secret!"),
            "failed with [redacted]!"
        );
    }

    #[test]
    fn header_names_that_carry_credentials() {
        for h in [
            "Authorization",
            "proxy-authorization",
            "X-API-Key",
            "api-key",
            "Cookie",
        ] {
            assert!(is_sensitive_header(h), "{h}");
        }
        for h in ["Accept", "X-Request-Id", "User-Agent"] {
            assert!(!is_sensitive_header(h), "{h}");
        }
    }
}
