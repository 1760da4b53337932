//! Load on real vLLM (its CPU build, in this process) with the project-made tiny Llama: every
//! request of a level with concurrency > 1 gets exactly its tokens, and the level's figures are
//! recorded. The test command builds with the feature, creates `.venv-vllm` and the model.
#![cfg(feature = "vllm")]

mod common;

use std::path::Path;

use common::{bin, s};
use serde_json::Value;

#[test]
fn a_closed_loop_level_on_vllm_gives_every_request_its_exact_tokens() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/hf/tiny-llama");
    assert!(
        model.join("config.json").is_file(),
        "test model {} is missing: run .venv-vllm/bin/python python/make_tiny_llama.py (the README's test command does)",
        model.display()
    );
    let env = root.join(".venv-vllm");
    assert!(
        env.join("bin/python").exists(),
        "{} is missing: run python/setup-vllm-env.sh (the README's test command does)",
        env.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load.json");
    let o = bin()
        .args([
            "--engine",
            "vllm",
            "--model",
            s(&model),
            "--python-env",
            s(&env),
            "--max-model-len",
            "256",
            "--enforce-eager",
            "--threads",
            "1",
            "--quiet",
            "--concurrency",
            "3",
            "--requests",
            "5",
            "--input-tokens",
            "12",
            "--output-tokens",
            "6",
            "--warmup",
            "0",
            "--output",
            s(&out),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let level = &v["load"]["levels"]["vllm@concurrency=3"];
    let reqs = level["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 5);
    for r in reqs {
        assert!(r.get("error").is_none(), "{r}");
        assert_eq!(r["output_tokens"], 6, "{r}");
        assert_eq!(r["prompt_tokens"], 12, "{r}");
        assert_eq!(r["finish"], "length");
        // The driver hands back the generated ids: the request's outputs can be checked.
        assert!(
            r["output_digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("fnv1a64:")),
            "{r}"
        );
    }
    let sum = &level["summary"];
    assert_eq!(sum["completed"], 5);
    assert!(sum["achieved_concurrency"].as_f64().unwrap() > 1.0, "{sum}");
    assert!(level["settings"]["max_num_seqs"].as_u64().unwrap() >= 3);
}
