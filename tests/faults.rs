//! Faults the real world brings, each on a loopback fixture: a one-byte-at-a-time drip, invalid
//! UTF-8 inside a delta, a line with no end, a redirect loop, a server that closes without
//! answering; SIGTERM during the runs (exit 143, what finished kept); a results directory that
//! disappears during the run (the runs go to a fallback file the error names).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::fixture_server::*;
use common::*;
use serde_json::Value;

fn http(dir: &Path, url: &str, extra: &[&str]) -> (Output, Value) {
    let mut args = vec![
        "--engine",
        "http",
        "--url",
        url,
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "2",
        "--max-tokens",
        "3",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run_to(&dir.join("r.json"), &args)
}

#[test]
fn a_stream_dripped_one_byte_at_a_time_counts_the_same_tokens() {
    let f = start(|_, _, w| {
        stream_head(w)?;
        for b in answer_events(3) {
            chunk(w, &[b])?;
            std::thread::sleep(Duration::from_micros(200));
        }
        end(w)
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http(dir.path(), &f.url, &[]);
    assert!(out.status.success(), "{}", show(&out));
    let p = &j["results"]["http"]["prompts"]["short"];
    assert_eq!(p["successful_runs"], 2);
    assert_eq!(p["sample_output"], "t0 t1 t2 ");
    for r in p["runs"].as_array().unwrap() {
        assert_eq!(r["tokens_generated"], 3, "{r}");
        assert_eq!(r["multi_token_deliveries"], 0, "{r}");
    }
}

#[test]
fn invalid_utf8_inside_a_delta_becomes_a_replacement_character_and_the_run_counts() {
    let f = start(|_, _, w| {
        stream_head(w)?;
        let mut bytes =
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\xff\xfeb\"}}]}\n\n"
                .to_vec();
        bytes.extend_from_slice(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"}}]}\n\n",
        );
        bytes.extend_from_slice(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"d\"}}]}\n\ndata: [DONE]\n\n");
        chunk(w, &bytes)?;
        end(w)
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http(dir.path(), &f.url, &[]);
    assert!(out.status.success(), "{}", show(&out));
    let p = &j["results"]["http"]["prompts"]["short"];
    assert_eq!(p["sample_output"], "a\u{fffd}\u{fffd}bcd");
    assert_eq!(p["runs"][0]["tokens_generated"], 3);
}

#[test]
fn a_line_without_end_is_cut_at_the_size_limit_not_buffered_forever() {
    let f = start(|_, _, w| {
        stream_head(w)?;
        let block = vec![b'x'; 1 << 20];
        chunk(w, b"data: ")?;
        for _ in 0..6 {
            chunk(w, &block)?;
        }
        end(w)
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = http(dir.path(), &f.url, &["--runs", "1"]);
    assert_clean_error(
        &out,
        "sent a stream line or event longer than 4194304 bytes (no line end in sight)",
    );
}

#[test]
fn a_redirect_loop_is_one_clear_error_and_redirects_are_not_followed() {
    let f = start(|req, _, w| {
        respond(
            w,
            "307 Temporary Redirect",
            &format!("Location: {}\r\n", req.path),
            "",
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http(dir.path(), &f.url, &[]);
    assert_clean_error(&out, "all 2 measured runs failed");
    let err = j["results"]["http"]["prompts"]["short"]["runs"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("answered 307 Temporary Redirect: (no message) (redirects are not followed; Location: /v1/chat/completions): pass the final URL"),
        "{err}"
    );
    assert_eq!(f.completions().len(), 2, "each run sent one request");
}

#[test]
fn a_server_that_closes_without_answering_is_named() {
    let f = start(|_, _, _| Ok(()));
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = http(dir.path(), &f.url, &["--runs", "1"]);
    assert_clean_error(&out, "closed the connection before answering");
    assert_eq!(j["results"]["http"]["prompts"]["short"]["total_runs"], 1);
}

/// Spawns a long mock benchmark writing to `out_path`.
fn spawn_mock(out_path: &Path, warmup: &str, runs: &str) -> std::process::Child {
    bin()
        .args([
            "--engine",
            "mock",
            "--prompt",
            "short",
            "--warmup",
            warmup,
            "--runs",
            runs,
            "--max-tokens",
            "5",
            "--mock-itl-ms",
            "2",
            "--quiet",
            "--output",
            out_path.to_str().unwrap(),
        ])
        .env("CI", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(pid: u32, sig: &str) {
    assert!(std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn sigterm_keeps_what_finished_and_exits_143() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    // During the warmup: nothing measured yet, still a results file and exit 143.
    let child = spawn_mock(&out_path, "1000", "5");
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("terminated: saving the runs that finished"),
        "{stderr}"
    );
    std::fs::remove_file(&out_path).unwrap();
    // During the measured runs.
    let child = spawn_mock(&out_path, "2", "1000");
    std::thread::sleep(Duration::from_millis(1500));
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", show(&out));
    let j = read_json(&out_path);
    assert_eq!(j["complete"], false);
    assert_eq!(j["incomplete_reason"], "terminated (SIGTERM)");
    let done = j["results"]["mock"]["prompts"]["short"]["successful_runs"]
        .as_u64()
        .unwrap();
    assert!(done > 0 && done < 1000, "{done}");
}

#[test]
fn sigterm_during_model_load_exits_143_and_still_writes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let model = model();
    let child = bin()
        .args([
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "short",
            "--warmup",
            "1",
            "--runs",
            "50",
            "--max-tokens",
            "4",
            "--quiet",
            "--output",
            out_path.to_str().unwrap(),
        ])
        .env("CI", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", show(&out));
    let j = read_json(&out_path);
    assert_eq!(j["incomplete_reason"], "terminated (SIGTERM)");
}

#[test]
fn a_results_directory_gone_at_the_end_sends_the_runs_to_a_fallback_file() {
    let dir = tempfile::tempdir().unwrap();
    let results_dir = dir.path().join("results");
    let out_path = results_dir.join("r.json");
    let child = bin()
        .args([
            "--engine",
            "mock",
            "--prompt",
            "short",
            "--warmup",
            "0",
            "--runs",
            "150",
            "--max-tokens",
            "5",
            "--mock-itl-ms",
            "2",
            "--quiet",
            "--output",
            out_path.to_str().unwrap(),
        ])
        .env("CI", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The directory exists once the tool has checked it; then it is replaced by a plain file, so
    // that no one (root included) can write there.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !results_dir.is_dir() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_dir_all(&results_dir).unwrap();
    std::fs::File::create(&results_dir)
        .unwrap()
        .write_all(b"in the way")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_clean_error(&out, "the runs were saved to ");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let line = err.lines().find(|l| l.starts_with("Error:")).unwrap();
    assert!(line.contains("cannot write results in"), "{line}");
    let fallback = line
        .split("the runs were saved to ")
        .nth(1)
        .and_then(|r| r.strip_suffix(" instead"))
        .unwrap_or_else(|| panic!("no fallback path in {line}"));
    let j = read_json(Path::new(fallback));
    std::fs::remove_file(fallback).unwrap();
    assert_eq!(
        j["results"]["mock"]["prompts"]["short"]["successful_runs"],
        150
    );
    assert_eq!(j["complete"], true);
}
