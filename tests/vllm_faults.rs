//! Signals while vLLM starts (feature `vllm`), on real vLLM with the tiny test model: Ctrl-C while
//! the in-process engine starts, SIGTERM while `vllm serve` starts for `--compare-http`. Each exits
//! with the signal's code and leaves no Python process behind, checked by process group.
#![cfg(feature = "vllm")]

mod common;

use common::*;

#[test]
fn ctrl_c_while_the_vllm_engine_starts_exits_130_and_leaves_no_python_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let (model, env) = (tiny_llama(), vllm_env());
    let mut args = vllm_args(
        &model,
        &env,
        &["--prompt", "short", "--max-tokens", "4", "--runs", "2"],
    );
    args.extend(["--output", s(&out_path)]);
    let mut child = Spawned::start(&args, &[]);
    child.wait_line("saying vLLM is loading", |l| l.starts_with("loading vLLM"));
    child.interrupt();
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", child.seen);
    // vLLM's engine core and its helpers run in the binary's process group.
    assert_group_empties(child.pid(), "the binary's group (the Python engine)");
    // No run finished: the results file still says how it ended.
    let j = read_json(&out_path);
    assert_eq!(j["complete"], false);
    assert_eq!(j["incomplete_reason"], "interrupted by the user");
    let p = &j["results"]["vllm"]["prompts"]["short"];
    assert_eq!(p["successful_runs"], 0, "{p}");
    assert!(temporary_files(dir.path()).is_empty());
}

#[test]
fn sigterm_while_vllm_serve_starts_exits_143_and_leaves_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let (model, env) = (tiny_llama(), vllm_env());
    let mut args = vllm_args(
        &model,
        &env,
        &[
            "--compare-http",
            "--prompt",
            "short",
            "--max-tokens",
            "4",
            "--warmup",
            "0",
            "--runs",
            "2",
            "--threads",
            "2",
        ],
    );
    args.extend(["--output", s(&out_path)]);
    let mut child = Spawned::start(&args, &[]);
    child.wait_line("saying vllm serve is starting", |l| {
        l.starts_with("starting vllm serve")
    });
    // The server leads a process group of its own: wait until it runs, then stop the binary.
    let server = wait_child(child.pid(), "vllm.entrypoints.openai.api_server");
    signal(child.pid(), libc::SIGTERM);
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(143), "{}", child.seen);
    assert!(
        child.seen.contains("stopped before any run finished"),
        "{}",
        child.seen
    );
    assert_group_empties(server, "vllm serve's group after SIGTERM during its start");
    assert_group_empties(child.pid(), "the binary's group (the in-process engine)");
}
