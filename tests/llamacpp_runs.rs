//! Promises of the README checked on real runs of in-process llama.cpp with the real SmolLM2
//! model: the GPU fields on a CPU build, Ctrl-C, the seed's medium and long prompts, and a model
//! sweep that loads each model once.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn llamacpp(dir: &Path, model: &Path, extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec![
        "--engine",
        "llamacpp",
        "--model",
        s(model),
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "2",
        "--max-tokens",
        "4",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run_to(&dir.join("r.json"), &args)
}

#[test]
fn n_gpu_layers_on_a_cpu_build_is_recorded_and_every_gpu_figure_is_null_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = llamacpp(dir.path(), &model(), &["--n-gpu-layers", "30"]);
    assert!(out.status.success(), "{}", show(&out));
    let e = &j["results"]["llamacpp"];
    assert_eq!(e["settings"]["n_gpu_layers"], 30, "the setting is recorded");
    assert_eq!(
        e["details"]["gpu_offload_supported"], false,
        "a CPU build offloads nothing"
    );
    let gpu = e["gpu"].as_object().expect("a gpu object");
    for field in [
        "device",
        "memory_used_before_load_bytes",
        "memory_used_after_load_bytes",
        "memory_peak_during_runs_bytes",
        "power_mean_w",
        "energy_j",
        "energy_per_token_j",
        "power_source",
    ] {
        assert!(gpu.contains_key(field), "gpu.{field} is written: {gpu:?}");
        assert!(gpu[field].is_null(), "gpu.{field} is null: {gpu:?}");
    }
    let note = gpu["note"].as_str().expect("a note says why");
    assert!(note.contains("cuda"), "{note}");
    let sys = &j["system"]["gpu"];
    assert_eq!(sys["available"], false);
    assert_eq!(sys["reason"].as_str(), Some(note), "{sys}");
    assert_eq!(sys["devices"], serde_json::json!([]));
    assert_eq!(e["prompts"]["short"]["successful_runs"], 2);
}

#[test]
fn ctrl_c_keeps_the_finished_runs_exits_130_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let model = model();
    let mut child = Spawned::start(
        &[
            "--engine",
            "llamacpp",
            "--model",
            s(&model),
            "--prompt",
            "short",
            "--warmup",
            "0",
            "--runs",
            "1000",
            "--max-tokens",
            "8",
            "--quiet",
            "--output",
            s(&out_path),
        ],
        &[],
    );
    child.wait_finished_run();
    child.interrupt();
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", child.seen);
    let j = read_json(&out_path);
    assert_eq!(j["complete"], false);
    assert_eq!(j["incomplete_reason"], "interrupted by the user");
    let p = &j["results"]["llamacpp"]["prompts"]["short"];
    let done = p["successful_runs"].as_u64().unwrap();
    assert!((1..1000).contains(&done), "{done}");
    assert_eq!(p["total_runs"], done, "the interrupted run is not kept");
    for r in p["runs"].as_array().unwrap() {
        assert_eq!(r["tokens_generated"], 8, "{r}");
    }
    assert!(temporary_files(dir.path()).is_empty());
    assert_eq!(files_in(dir.path()), [out_path]);
}

#[test]
fn the_seeds_medium_and_long_prompts_generate_their_300_and_500_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let out_path = dir.path().join("r.json");
    let (out, j) = run_to(
        &out_path,
        &[
            "--engine",
            "llamacpp",
            "--model",
            s(&model),
            "--prompt",
            "medium,long",
            "--warmup",
            "0",
            "--runs",
            "1",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let prompts = &j["results"]["llamacpp"]["prompts"];
    let mut names: Vec<&String> = prompts.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["long", "medium"]);
    // The seed's prompt lengths: ~100 and ~200 words, more tokens through the chat template.
    for (name, max, min_prompt) in [("medium", 300, 90), ("long", 500, 180)] {
        let p = &prompts[name];
        assert_eq!(p["max_tokens"], max, "{name}");
        let r = &p["runs"][0];
        assert_eq!(r["tokens_generated"], max, "{name}: {r}");
        assert_eq!(r["finish_reason"], "length");
        assert_eq!(r["itl_ms"].as_array().unwrap().len(), max - 1, "{name}");
        let prompt_tokens = r["prompt_tokens"].as_u64().unwrap();
        assert!(prompt_tokens >= min_prompt, "{name}: {prompt_tokens}");
        assert!(
            prompt_tokens + max as u64 <= 4096,
            "fits the default context"
        );
    }
}

/// The lines of llama.cpp's log (`--verbose`) that report loading a model file.
fn load_lines<'a>(stderr: &'a str, model: &Path) -> Vec<&'a str> {
    stderr
        .lines()
        .filter(|l| l.contains("loaded meta data") && l.contains(s(model)))
        .collect()
}

#[test]
fn a_model_sweep_loads_each_model_once_and_reuses_it_for_the_context_settings() {
    let dir = tempfile::tempdir().unwrap();
    let first = model();
    // Another path to the same file is another model to the sweep.
    let second = dir.path().join("second.gguf");
    std::os::unix::fs::symlink(&first, &second).unwrap();
    let models = format!("{},{}", s(&first), s(&second));
    let (out, j) = llamacpp(
        dir.path(),
        Path::new(&models),
        &["--threads", "1,2", "--verbose"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(load_lines(&stderr, &first).len(), 1, "{stderr}");
    assert_eq!(load_lines(&stderr, &second).len(), 1, "{stderr}");
    let results = j["results"].as_object().unwrap();
    let keys: Vec<&String> = results.keys().collect();
    assert_eq!(
        keys,
        [
            "llamacpp@model=SmolLM2-135M-Instruct.Q4_1.gguf,threads=1",
            "llamacpp@model=SmolLM2-135M-Instruct.Q4_1.gguf,threads=2",
            "llamacpp@model=second.gguf,threads=1",
            "llamacpp@model=second.gguf,threads=2",
        ]
    );
    // The second combination of each model only made a new context on the loaded model: its load
    // time is the first's plus that.
    for pair in keys.chunks(2) {
        let load = |k: &str| results[k]["load_time_ms"].as_f64().unwrap();
        assert!(load(pair[1]) > load(pair[0]), "{pair:?}");
    }
    for e in results.values() {
        assert_eq!(e["prompts"]["short"]["successful_runs"], 2);
    }
}
