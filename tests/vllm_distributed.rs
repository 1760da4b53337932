//! vLLM's distributed executor on this machine's CPU build (docs/distributed.md): tensor
//! parallelism 2 over `mp` worker processes, driven by the embedded interpreter, decodes the
//! one-process run's greedy text with exact token counts, records the layout vLLM resolved, and
//! leaves no worker process behind.
#![cfg(feature = "vllm")]

mod common;

use common::*;
use serde_json::Value;

/// Token counts and sample text of the `short` prompt.
fn sample(j: &Value) -> (Vec<u64>, String) {
    let p = &j["results"]["vllm"]["prompts"]["short"];
    let tokens = p["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["tokens_generated"].as_u64().expect("a count"))
        .collect();
    (
        tokens,
        p["sample_output"].as_str().expect("text").to_string(),
    )
}

#[test]
fn tensor_parallel_2_over_mp_decodes_the_one_process_text_and_leaves_no_worker() {
    let (model, env) = (tiny_llama(), vllm_env());
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "2",
        "--max-tokens",
        "8",
        "--threads",
        "1",
        "--roofline-probe",
        "false",
    ];
    let (out, one) = run_to(
        &dir.path().join("one.json"),
        &vllm_args(&model, &env, &base),
    );
    assert!(out.status.success(), "{}", show(&out));

    let tp_path = dir.path().join("tp2.json");
    let mut extra = base.to_vec();
    extra.extend([
        "--tensor-parallel-size",
        "2",
        "--distributed-executor-backend",
        "mp",
        "--output",
        s(&tp_path),
    ]);
    let mut bin = Spawned::start(&vllm_args(&model, &env, &extra), &[]);
    let status = bin.wait_exit();
    assert!(status.success(), "{}", bin.seen);
    // vLLM's worker processes (Worker_TP0, Worker_TP1) run in the binary's process group.
    assert_group_empties(
        bin.pid(),
        "the binary's group (vLLM's tensor-parallel workers)",
    );
    let tp = read_json(&tp_path);

    let (one_tokens, one_text) = sample(&one);
    let (tp_tokens, tp_text) = sample(&tp);
    assert_eq!(one_tokens, vec![8, 8]);
    assert_eq!(tp_tokens, vec![8, 8], "exact token counts over two workers");
    assert_eq!(tp_text, one_text, "the same greedy text as one process");

    let e = &tp["results"]["vllm"];
    let parallel = &e["details"]["parallel"];
    assert_eq!(parallel["tensor_parallel_size"], 2, "{parallel}");
    assert_eq!(parallel["world_size"], 2, "{parallel}");
    assert_eq!(parallel["distributed_executor_backend"], "mp", "{parallel}");
    assert_eq!(
        one["results"]["vllm"]["details"]["parallel"]["world_size"], 1,
        "one process"
    );
}
