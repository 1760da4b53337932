//! The CLI, recorder and results against the scripted mock engine: fast and deterministic.

mod common;

use common::*;
use serde_json::Value;

fn mock_run(dir: &std::path::Path, extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec![
        "--engine",
        "mock",
        "--prompt",
        "short",
        "--warmup",
        "1",
        "--runs",
        "3",
        "--max-tokens",
        "10",
        "--mock-ttft-ms",
        "20",
        "--mock-itl-ms",
        "2",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run_to(&dir.join("r.json"), &args)
}

/// A long mock run in its own process group, printing a line per finished run.
fn spawn_long_mock(out_path: &std::path::Path) -> Spawned {
    Spawned::start(
        &[
            "--engine",
            "mock",
            "--prompt",
            "short",
            "--warmup",
            "0",
            "--runs",
            "1000",
            "--max-tokens",
            "5",
            "--mock-itl-ms",
            "2",
            "--quiet",
            "--output",
            s(out_path),
        ],
        &[],
    )
}

#[test]
fn scripted_delays_are_measured_as_defined() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = mock_run(dir.path(), &[]);
    assert!(out.status.success(), "{}", show(&out));
    let p = &j["results"]["mock"]["prompts"]["short"];
    assert_eq!(p["successful_runs"], 3);
    assert_eq!(p["total_runs"], 3);
    assert_eq!(p["tokens_generated"]["mean"], 10.0);
    for run in p["runs"].as_array().unwrap() {
        let ttft = run["ttft_ms"].as_f64().unwrap();
        let e2e = run["e2e_latency_ms"].as_f64().unwrap();
        assert!(ttft >= 20.0, "TTFT includes the scripted 20 ms: {ttft}");
        assert!(e2e >= ttft + 9.0 * 2.0, "9 gaps of at least 2 ms: {e2e}");
        let itl = run["itl_ms"].as_array().unwrap();
        assert_eq!(itl.len(), 9);
        assert!(itl.iter().all(|g| g.as_f64().unwrap() >= 2.0));
        assert_eq!(run["multi_token_deliveries"], 0);
        // TPS is (N - 1) / (t_last - t_first); the seed's formula N / (E2E - TTFT) is 10/9 of it.
        let tps = run["tps"].as_f64().unwrap();
        let seed = run["seed_tps"].as_f64().unwrap();
        assert!((seed / tps - 10.0 / 9.0).abs() < 1e-9);
        assert!((tps - 9.0 / ((e2e - ttft) / 1e3)).abs() < 1e-6);
    }
}

#[test]
fn multi_token_deliveries_are_counted_as_tokens_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = mock_run(dir.path(), &["--mock-chunk", "4"]);
    assert!(out.status.success(), "{}", show(&out));
    let run = &j["results"]["mock"]["prompts"]["short"]["runs"][0];
    assert_eq!(run["tokens_generated"], 10); // 4 + 4 + 2
    assert_eq!(run["multi_token_deliveries"], 3);
    assert_eq!(run["itl_ms"].as_array().unwrap().len(), 2);
}

#[test]
fn failed_runs_are_recorded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // The warmup is request 1; measured runs are requests 2, 3, 4: 2 and 4 fail.
    let (out, j) = mock_run(dir.path(), &["--mock-fail-every", "2"]);
    assert!(out.status.success(), "{}", show(&out));
    let p = &j["results"]["mock"]["prompts"]["short"];
    assert_eq!(p["successful_runs"], 1);
    assert_eq!(p["total_runs"], 3);
    assert!(p["runs"][0]["error"]
        .as_str()
        .unwrap()
        .contains("scripted failure"));
}

#[test]
fn every_run_failing_is_an_error_but_the_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = mock_run(dir.path(), &["--mock-fail-every", "1", "--warmup", "0"]);
    assert_clean_error(&out, "measured runs failed");
    assert_eq!(
        j["results"]["mock"]["prompts"]["short"]["successful_runs"],
        0
    );
}

#[test]
fn bad_flags_fail_cleanly_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = mock_run(dir.path(), &["--runs", "0"]);
    assert_clean_error(&out, "--runs");
    let (out, _) = mock_run(dir.path(), &["--prompt", "enormous"]);
    assert_clean_error(&out, "unknown prompt 'enormous'");
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn an_existing_output_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("r.json");
    std::fs::write(&kept, "keep").unwrap();
    let out = run(&[
        "--engine",
        "mock",
        "--prompt",
        "short",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--output",
        s(&kept),
    ]);
    assert_clean_error(&out, "never overwritten");
    assert_eq!(files_in(dir.path()), [kept], "nothing else written");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("r.json")).unwrap(),
        "keep"
    );
}

#[test]
fn an_unwritable_output_directory_fails_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let out = run(&[
        "--engine",
        "mock",
        "--prompt",
        "short",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--output",
        blocker.join("r.json").to_str().unwrap(),
    ]);
    assert_clean_error(&out, "--output");
}

#[test]
fn default_file_name_follows_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "--engine",
        "mock",
        "--prompt",
        "short",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--max-tokens",
        "3",
        "--scenario",
        "my-scenario",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let files = files_in(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    let stamp = name
        .strip_prefix("benchmark_my-scenario_")
        .and_then(|s| s.strip_suffix(".json"))
        .unwrap();
    assert_eq!(stamp.len(), 15, "{name}");
    assert!(stamp.chars().enumerate().all(|(i, c)| if i == 8 {
        c == '_'
    } else {
        c.is_ascii_digit()
    }));
    // The report table is printed unless --quiet.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("BENCHMARK RESULTS") && stdout.contains("short"),
        "{stdout}"
    );
}

#[test]
fn ctrl_c_keeps_what_finished_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let mut child = spawn_long_mock(&out_path);
    child.wait_finished_run();
    child.interrupt();
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", child.seen);
    assert!(
        child
            .seen
            .contains("interrupted: saving the runs that finished"),
        "{}",
        child.seen
    );
    let j = read_json(&out_path);
    assert_eq!(j["complete"], false);
    assert_eq!(j["incomplete_reason"], "interrupted by the user");
    let p = &j["results"]["mock"]["prompts"]["short"];
    let done = p["successful_runs"].as_u64().unwrap();
    assert!((1..1000).contains(&done), "{done}");
    assert_eq!(p["total_runs"], done, "the interrupted run is not counted");
    for r in p["runs"].as_array().unwrap() {
        assert_eq!(r["tokens_generated"], 5, "only whole runs are kept: {r}");
    }
    assert_eq!(files_in(dir.path()), [out_path], "no temporary file left");
}

#[test]
fn a_file_that_appears_at_the_output_path_during_the_run_is_kept_and_so_are_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let mut child = Spawned::start(
        &[
            "--engine",
            "mock",
            "--prompt",
            "short",
            "--warmup",
            "0",
            "--runs",
            "200",
            "--max-tokens",
            "5",
            "--mock-itl-ms",
            "2",
            "--quiet",
            "--output",
            s(&out_path),
        ],
        &[],
    );
    child.wait_finished_run();
    // The run has 199 more runs (about 2 s) to go: the file is there long before it ends.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out_path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"someone else's"))
        .expect("the run had not written its results yet");
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", child.seen);
    let moved = dir.path().join("r_2.json");
    let errors: Vec<&str> = child
        .seen
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", child.seen);
    assert!(
        errors[0].contains("appeared during the run and was not overwritten")
            && errors[0].contains(s(&moved)),
        "{}",
        child.seen
    );
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "someone else's"
    );
    let j = read_json(&moved);
    assert_eq!(j["complete"], true);
    assert_eq!(
        j["results"]["mock"]["prompts"]["short"]["successful_runs"],
        200
    );
    assert_eq!(files_in(dir.path()), [out_path, moved]);
}
