//! The HTTP engine's client against loopback fixtures: https with a self-signed certificate made
//! here (trusted through --ca-cert, refused without it), the API key from --api-key or
//! OPENAI_API_KEY, extra headers, per-request timeouts (a stalled run fails, the next goes on),
//! error answers quoted on one line and never retried, and no secret in anything the tool writes.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::fixture_server::*;
use common::*;
use serde_json::{json, Value};

/// What one run of the tool left: its output, the results JSON and the plot's text.
struct Ran {
    out: Output,
    results: Value,
    /// stdout, stderr, the results file and the plot, as bytes.
    everything: Vec<u8>,
}

fn ran(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let results = dir.join("r.json");
    let plot = dir.join("p.svg");
    let _ = std::fs::remove_file(&results);
    let _ = std::fs::remove_file(&plot);
    let mut cmd = bin();
    cmd.args([
        "--engine",
        "http",
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "2",
        "--max-tokens",
        "3",
        "--output",
        results.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ])
    .args(args)
    .env("CI", "1")
    .env_remove("OPENAI_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let mut everything = out.stdout.clone();
    everything.extend_from_slice(&out.stderr);
    everything.extend(std::fs::read(&results).unwrap_or_default());
    everything.extend(std::fs::read(&plot).unwrap_or_default());
    let results = if results.exists() {
        read_json(&results)
    } else {
        Value::Null
    };
    Ran {
        out,
        results,
        everything,
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn assert_secret_absent(r: &Ran, secret: &str) {
    assert!(
        !contains(&r.everything, secret),
        "the secret {secret} leaked\n{}",
        show(&r.out)
    );
}

#[test]
fn https_with_a_given_ca_and_a_key_works_and_the_key_is_sent_but_never_written() {
    let (pem, cert, key) = self_signed();
    let f = start_tls(cert, key, |_, _, w| good(w, 3));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let secret = "sk-tls-test-4a1b9c";
    let r = ran(
        dir.path(),
        &[
            "--url",
            &f.url,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--api-key",
            secret,
            "--header",
            "X-Bench-Run: tls-test",
            "--format",
            "json",
            "--verbose",
        ],
        &[],
    );
    assert!(r.out.status.success(), "{}", show(&r.out));
    let e = &r.results["results"]["http"];
    assert_eq!(e["prompts"]["short"]["successful_runs"], 2);
    assert_eq!(e["settings"]["url"], f.url);
    let client = &e["settings"]["client"];
    assert_eq!(client["api_key"], "bearer [redacted]");
    assert_eq!(client["headers"]["X-Bench-Run"], "tls-test");
    assert_eq!(client["ca_cert"], ca.to_str().unwrap());
    let posts = f.completions();
    assert_eq!(posts.len(), 2);
    for p in &posts {
        assert_eq!(
            p.header("authorization"),
            Some(&*format!("Bearer {secret}"))
        );
        assert_eq!(p.header("x-bench-run"), Some("tls-test"));
    }
    let line = r.results["config"]["command_line"].to_string();
    assert!(
        line.contains("--api-key") && line.contains("[redacted]"),
        "{line}"
    );
    assert_secret_absent(&r, secret);
}

#[test]
fn an_untrusted_certificate_names_ca_cert_and_a_bad_bundle_is_refused() {
    let (_, cert, key) = self_signed();
    let f = start_tls(cert, key, |_, _, w| good(w, 3));
    let dir = tempfile::tempdir().unwrap();
    let r = ran(dir.path(), &["--url", &f.url], &[]);
    assert_clean_error(
        &r.out,
        "the server's TLS certificate is not trusted: pass its CA bundle with --ca-cert FILE",
    );
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let r = ran(
        dir.path(),
        &["--url", &f.url, "--ca-cert", bad.to_str().unwrap()],
        &[],
    );
    assert_clean_error(&r.out, "no PEM certificate in it");
    // An https client talking to a plain-HTTP server.
    let plain = start(|_, _, w| good(w, 3));
    let r = ran(
        dir.path(),
        &["--url", &plain.url.replace("http://", "https://")],
        &[],
    );
    assert_clean_error(
        &r.out,
        "the TLS handshake failed: is it an https server? pass the right scheme in --url",
    );
}

#[test]
fn the_key_from_openai_api_key_is_sent_and_hidden_from_help_and_results() {
    let f = start(|_, _, w| good(w, 3));
    let dir = tempfile::tempdir().unwrap();
    let secret = "sk-env-test-77f3e2";
    let r = ran(
        dir.path(),
        &["--url", &f.url],
        &[("OPENAI_API_KEY", secret)],
    );
    assert!(r.out.status.success(), "{}", show(&r.out));
    assert_eq!(
        f.completions()[0].header("authorization"),
        Some(&*format!("Bearer {secret}"))
    );
    assert_secret_absent(&r, secret);
    let help = bin()
        .arg("--help")
        .env("OPENAI_API_KEY", secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("OPENAI_API_KEY") && !text.contains(secret),
        "{text}"
    );
}

#[test]
fn a_server_that_echoes_credentials_in_errors_never_gets_them_printed() {
    // The server quotes the key and the headers back, as some gateways do.
    let f = start(|req, _, w| {
        let body = json!({"error": {"message": format!(
            "invalid api key: {} / {}",
            req.header("authorization").unwrap_or(""),
            req.header("x-api-key").unwrap_or("")
        )}});
        respond(w, "401 Unauthorized", "", &body.to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = ("sk-echo-one-1f2e3d", "sk-echo-two-9a8b7c");
    let r = ran(
        dir.path(),
        &[
            &format!("--api-key={k1}"),
            "--url",
            &f.url,
            "-H",
            &format!("X-Api-Key: {k2}"),
            "--format",
            "json",
        ],
        &[],
    );
    assert_clean_error(&r.out, "answered 401 Unauthorized: invalid api key: Bearer [redacted] / [redacted] (check --api-key");
    for k in [k1, k2] {
        assert_secret_absent(&r, k);
    }
    let run = &r.results["results"]["http"]["prompts"]["short"]["runs"][0];
    assert!(
        run["error"].as_str().unwrap().contains("[redacted]"),
        "{run}"
    );
}

#[test]
fn rate_limits_and_server_errors_fail_the_run_on_one_line_without_retry() {
    let f = start(|_, n, w| match n {
        0 => respond(
            w,
            "429 Too Many Requests",
            "Retry-After: 3\r\n",
            &json!({"error": {"message": "Rate limit reached\nfor requests", "type": "requests"}})
                .to_string(),
        ),
        _ => respond(
            w,
            "503 Service Unavailable",
            "",
            r#"{"error":{"message":"overloaded","code":503}}"#,
        ),
    });
    let dir = tempfile::tempdir().unwrap();
    let r = ran(dir.path(), &["--url", &f.url], &[]);
    assert_clean_error(&r.out, "all 2 measured runs failed (first:");
    let runs = &r.results["results"]["http"]["prompts"]["short"]["runs"];
    let first = runs[0]["error"].as_str().unwrap();
    assert!(
        first.contains("answered 429 Too Many Requests: Rate limit reached for requests (Retry-After: 3; not retried"),
        "{first}"
    );
    assert!(!first.contains('\n'));
    let second = runs[1]["error"].as_str().unwrap();
    assert!(
        second.contains("answered 503 Service Unavailable: overloaded (code 503)"),
        "{second}"
    );
    assert_eq!(f.completions().len(), 2, "one request per run, no retries");
}

#[test]
fn a_stalled_stream_fails_its_run_at_the_request_timeout_and_the_next_run_goes_on() {
    let f = start(|_, n, w| {
        if n == 0 {
            stream_head(w)?;
            chunk(w, delta("a").as_bytes())?;
            std::thread::sleep(Duration::from_secs(30));
            Ok(())
        } else {
            good(w, 3)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let r = ran(
        dir.path(),
        &["--url", &f.url, "--request-timeout", "1"],
        &[],
    );
    assert!(r.out.status.success(), "{}", show(&r.out));
    let stderr = String::from_utf8_lossy(&r.out.stderr);
    assert!(
        stderr.contains("warning: 1 of 2 measured runs of http failed"),
        "{stderr}"
    );
    let p = &r.results["results"]["http"]["prompts"]["short"];
    assert!(
        p["runs"][0]["error"].as_str().unwrap().contains(
            "did not finish within --request-timeout 1 s (in the stream, after 1 tokens)"
        ),
        "{p}"
    );
    assert_eq!(p["runs"][1]["tokens_generated"], 3);
    assert_eq!(
        r.results["results"]["http"]["settings"]["client"]["request_timeout_s"],
        1.0
    );
}

#[test]
fn a_server_that_never_sends_headers_times_out_with_a_reason() {
    let f = start(|_, _, _| {
        std::thread::sleep(Duration::from_secs(30));
        Ok(())
    });
    let dir = tempfile::tempdir().unwrap();
    let r = ran(
        dir.path(),
        &["--url", &f.url, "--request-timeout", "0.5", "--runs", "1"],
        &[],
    );
    assert_clean_error(&r.out, "did not finish within --request-timeout 0.5 s (waiting for the response headers, after 0 tokens)");
}

#[test]
fn bad_client_flags_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    let r = ran(dir.path(), &["--url", &url, "--header", "no-colon"], &[]);
    assert_clean_error(&r.out, "--header: 'no-colon' is not NAME:VALUE");
    let r = ran(dir.path(), &["--url", &url, "--request-timeout", "0"], &[]);
    assert_clean_error(
        &r.out,
        "--request-timeout: 0 is not a number of seconds above 0",
    );
    let r = ran(dir.path(), &["--url", &url, "--connect-timeout=-1"], &[]);
    assert_clean_error(
        &r.out,
        "--connect-timeout: -1 is not a number of seconds above 0",
    );
    let r = ran(
        dir.path(),
        &[
            "--url",
            &url,
            "--header",
            "Authorization:Bearer sk-hdr\u{7f}x",
        ],
        &[],
    );
    assert_clean_error(&r.out, "has characters a header cannot carry");
    assert_secret_absent(&r, "sk-hdr");
    let url_secret = "pw-in-url-5c6d";
    let r = ran(
        dir.path(),
        &[
            "--url",
            &url.replace("http://", &format!("http://user:{url_secret}@")),
        ],
        &[],
    );
    assert_clean_error(&r.out, "cannot connect to http://user:[redacted]@127.0.0.1");
    assert_secret_absent(&r, url_secret);
    let r = ran(dir.path(), &["--url", "ftp://127.0.0.1:1"], &[]);
    assert_clean_error(&r.out, "scheme ftp is not HTTP");
}
