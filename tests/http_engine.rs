//! The HTTP engine and `--compare-http` against the real llama-server (build 11434) with SmolLM2 on
//! loopback: exact token counts, the same text both ways, both sides in the JSON, and no server
//! left behind (after a normal end, Ctrl-C, or the server dying). Never skipped: without llama-server
//! these tests fail and name `vendor/build-llama-tools.sh`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use common::*;
use inproc_bench::compare_http::llama_server::ServerSettings;
use inproc_bench::engine::llamacpp::LlamaCppSettings;
use inproc_bench::measure::StopFlag;
use inproc_bench::server::ServerProcess;
use serde_json::Value;

/// One test at a time: each loads the model twice (in-process and in the server), and timing-based
/// steps must not starve each other on a small machine.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pid in a line `llama-server … ready on … (pid N) …`.
fn server_pid(stderr: &str) -> u32 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("llama-server") && l.contains("ready on"))
        .unwrap_or_else(|| panic!("no 'llama-server … ready on' line in\n{stderr}"));
    pid_in(line)
}

fn compare_args<'a>(model: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--engine",
        "llamacpp",
        "--model",
        model,
        "--compare-http",
        "--threads",
        "2",
        "--prompt",
        "short",
        "--output",
        out,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn compare_http_counts_exactly_matches_the_text_and_keeps_both_sides() {
    let _serial = serial();
    let bin = llama_server();
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let (m, o) = (model.to_str().unwrap(), out_path.to_str().unwrap());
    let out = bin_with_server(&bin)
        .args(compare_args(
            m,
            o,
            &["--warmup", "1", "--runs", "3", "--max-tokens", "40"],
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_group_empties(server_pid(&stderr), "the server the binary started");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("IN-PROCESS vs HTTP"), "{stdout}");
    assert!(
        stdout.contains("text: identical both ways (3/3 HTTP runs, 3/3 in-process runs)"),
        "{stdout}"
    );

    let j = read_json(&out_path);
    let (a, b) = (&j["results"]["llamacpp"], &j["results"]["llamacpp-http"]);
    assert_eq!(a["engine"], "llama.cpp");
    assert_eq!(b["engine"], "llama-server (HTTP)");
    assert!(
        b["engine_version"].as_str().unwrap().contains("11434"),
        "{}",
        b["engine_version"]
    );
    assert_eq!(b["settings"]["endpoint"], "/v1/completions");
    let args: Vec<&str> = b["details"]["server_args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for pair in [
        ["--threads", "2"],
        ["--ctx-size", "4096"],
        ["--parallel", "1"],
    ] {
        assert!(args.windows(2).any(|w| w == pair), "{pair:?} in {args:?}");
    }
    assert!(args.contains(&"--no-cache-prompt"));
    let (pa, pb) = (&a["prompts"]["short"], &b["prompts"]["short"]);
    assert_eq!(
        pa["prompt_text"], pb["prompt_text"],
        "the same templated text both ways"
    );
    assert_eq!(pa["sample_output"], pb["sample_output"]);
    for r in pb["runs"].as_array().unwrap() {
        assert_eq!(r["tokens_generated"], 40, "{r}");
        assert_eq!(r["finish_reason"], "length");
        let s = &r["server"];
        assert_eq!(s["count_source"], "timings", "{s}");
        assert_eq!(s["usage_tokens"], 40);
        assert!(
            s.get("counted_tokens").is_none(),
            "chunk counts agreed with usage: {s}"
        );
        assert_eq!(s["predicted_n"], 40);
        assert_eq!(
            s["prompt_n"], r["prompt_tokens"],
            "no prompt cache: every prompt token evaluated"
        );
        assert!(
            s["prompt_ms"].as_f64().unwrap() > 0.0 && s["predicted_ms"].as_f64().unwrap() > 0.0
        );
        assert!(s["headers_ms"].as_f64().unwrap() <= s["first_byte_ms"].as_f64().unwrap());
    }
    for r in pa["runs"].as_array().unwrap() {
        assert_eq!(r["tokens_generated"], 40);
    }

    let c = &j["http_comparison"]["prompts"]["short"];
    assert_eq!(j["http_comparison"]["inprocess_key"], "llamacpp");
    assert_eq!(j["http_comparison"]["http_key"], "llamacpp-http");
    assert_eq!(c["same_text"], true, "{c}");
    assert_eq!(
        c["prompt_tokens"][0], c["prompt_tokens"][1],
        "both sides evaluated the same tokens"
    );
    for m in [
        "ttft_ms",
        "itl_mean_ms",
        "tps",
        "e2e_latency_ms",
        "total_ms",
    ] {
        let w = &c["metrics"][m]["welch"];
        let (lo, d, hi) = (
            w["difference_ci_low"].as_f64().unwrap(),
            w["difference"].as_f64().unwrap(),
            w["difference_ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= d && d <= hi, "{m}: {w}");
        assert_eq!(c["metrics"][m]["inprocess"]["n"], 3);
        assert_eq!(c["metrics"][m]["http"]["n"], 3);
    }
    let split = &c["http_split"];
    for part in ["ttft", "per_token"] {
        let s = &split[part];
        let sum = s["server_minus_inprocess_ms"].as_f64().unwrap()
            + s["client_overhead_ms"].as_f64().unwrap();
        let total = s["http_ms"].as_f64().unwrap() - s["inprocess_ms"].as_f64().unwrap();
        assert!((sum - total).abs() < 1e-9, "{part}: {s}");
    }
}

/// The binary, with `INPROC_LLAMA_SERVER` pointing at the server under test.
fn bin_with_server(server: &Path) -> Command {
    let mut c = bin();
    c.env("CI", "1").env("INPROC_LLAMA_SERVER", server);
    c
}

/// Starts llama-server through the library, as `--compare-http` would, for `--engine http` runs.
fn start_server() -> ServerProcess {
    let settings = LlamaCppSettings {
        n_gpu_layers: -1,
        batch_size: 2048,
        ..common::llama_settings(2048, 2)
    };
    ServerSettings::matching(&settings, llama_server())
        .start(&StopFlag::new())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_http_engine_streams_both_apis_with_exact_counts_and_the_in_process_text() {
    let _serial = serial();
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let bench = |name: &str, extra: &[&str]| -> Value {
        let out_path = dir.path().join(format!("{name}.json"));
        let mut args = vec![
            "--prompt",
            "short",
            "--warmup",
            "1",
            "--runs",
            "2",
            "--max-tokens",
            "24",
            "--quiet",
            "--output",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{name}: {}", show(&out));
        read_json(&out_path)
    };
    let url = server.url().to_string();
    let raw = bench(
        "completions",
        &[
            "--engine",
            "http",
            "--url",
            &url,
            "--api",
            "completions",
            "--raw-prompt",
        ],
    );
    let chat = bench("chat", &["--engine", "http", "--url", &url]);
    let seed = bench("seed", &["--backend", "llamacpp", "--llamacpp-url", &url]);
    let inproc = bench(
        "inproc",
        &[
            "--engine",
            "llamacpp",
            "--model",
            model.to_str().unwrap(),
            "--threads",
            "2",
            "--ctx-size",
            "2048",
            "--raw-prompt",
        ],
    );
    for (j, key) in [(&raw, "http"), (&chat, "http"), (&seed, "llamacpp")] {
        let p = &j["results"][key]["prompts"]["short"];
        assert_eq!(p["successful_runs"], 2, "{key}: {p}");
        for r in p["runs"].as_array().unwrap() {
            assert_eq!(r["tokens_generated"], 24, "{r}");
            assert_eq!(r["server"]["count_source"], "timings");
            assert_eq!(r["server"]["usage_tokens"], 24);
        }
    }
    assert_eq!(
        raw["results"]["http"]["prompts"]["short"]["sample_output"],
        inproc["results"]["llamacpp"]["prompts"]["short"]["sample_output"],
        "greedy and ignore-eos: the same text in-process and over HTTP"
    );
    assert_eq!(
        seed["results"]["llamacpp"]["settings"]["endpoint"],
        "/v1/chat/completions"
    );
    let pid = server.pid();
    drop(server);
    assert_group_empties(pid, "the server this test started");
}

/// Spawns a long comparison (killed with its server when the test ends, however it ends) and
/// waits until the server is ready; returns it with the server's pid.
fn spawn_long_compare(out_path: &Path) -> (Spawned, u32) {
    let model = model();
    let server = llama_server();
    let mut child = Spawned::start(
        &compare_args(
            s(&model),
            s(out_path),
            &["--warmup", "0", "--runs", "200", "--max-tokens", "30"],
        ),
        &[("INPROC_LLAMA_SERVER", s(&server))],
    );
    let ready = child.wait_line("saying llama-server is ready", |l| {
        l.starts_with("llama-server") && l.contains("ready on")
    });
    (child, server_pid(&ready))
}

#[test]
fn ctrl_c_saves_the_finished_runs_and_stops_the_server() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let (mut child, pid) = spawn_long_compare(&out_path);
    assert!(alive(pid));
    // The sides take turns: once a run has finished, the next one goes to the server.
    child.wait_finished_run();
    child.interrupt();
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", child.seen);
    assert_group_empties(pid, "llama-server after Ctrl-C");
    let j = read_json(&out_path);
    assert_eq!(j["complete"], false);
    assert_eq!(j["incomplete_reason"], "interrupted by the user");
    let done = j["results"]["llamacpp"]["prompts"]["short"]["successful_runs"]
        .as_u64()
        .unwrap();
    assert!(done >= 1, "runs that finished are kept");
    assert!(temporary_files(dir.path()).is_empty());
}

#[test]
fn a_server_dying_mid_run_stops_with_a_clear_error_and_keeps_the_runs() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let (mut child, pid) = spawn_long_compare(&out_path);
    child.wait_finished_run();
    signal(pid, libc::SIGKILL);
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", child.seen);
    let errors: Vec<&str> = child
        .seen
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", child.seen);
    assert!(
        errors[0].contains("the run stopped early")
            && errors[0].contains("llama-server exited during the runs"),
        "{}",
        child.seen
    );
    let j = read_json(&out_path);
    assert_eq!(j["complete"], false);
    assert!(j["incomplete_reason"]
        .as_str()
        .unwrap()
        .contains("llama-server exited"));
    assert!(
        j["results"]["llamacpp"]["prompts"]["short"]["successful_runs"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn sigterm_saves_the_finished_runs_stops_the_server_and_exits_143() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let (mut child, pid) = spawn_long_compare(&out_path);
    child.wait_finished_run();
    signal(child.pid(), libc::SIGTERM);
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(143), "{}", child.seen);
    assert_group_empties(pid, "llama-server after SIGTERM");
    let j = read_json(&out_path);
    assert_eq!(j["incomplete_reason"], "terminated (SIGTERM)");
    assert!(
        j["results"]["llamacpp"]["prompts"]["short"]["successful_runs"]
            .as_u64()
            .unwrap()
            >= 1,
        "runs that finished are kept"
    );
}

#[test]
fn sigkill_of_the_tool_takes_the_server_with_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, pid) = spawn_long_compare(&dir.path().join("r.json"));
    assert!(alive(pid));
    // SIGKILL to the binary alone: no handler runs, only the kernel's parent-death signal
    // reaches the server, which leads a process group of its own.
    signal(child.pid(), libc::SIGKILL);
    let _ = child.wait_exit();
    assert_group_empties(pid, "llama-server after the benchmark was killed");
}

#[test]
fn sigterm_while_the_server_starts_exits_143_and_leaves_no_server() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (model, server_bin, out_path) = (model(), llama_server(), dir.path().join("r.json"));
    let mut child = Spawned::start(
        &compare_args(
            s(&model),
            s(&out_path),
            &["--warmup", "0", "--runs", "200", "--max-tokens", "30"],
        ),
        &[("INPROC_LLAMA_SERVER", s(&server_bin))],
    );
    // The event: llama-server exists as our child (it is loading, not yet ready).
    let server = wait_child(child.pid(), "llama-server");
    signal(child.pid(), libc::SIGTERM);
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(143), "{}", child.seen);
    assert!(
        child.seen.contains("stopped before any run finished"),
        "{}",
        child.seen
    );
    assert_group_empties(server, "llama-server after SIGTERM during its start");
}
