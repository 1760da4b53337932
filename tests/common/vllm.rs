//! The vLLM side of the shared test helpers: the tiny test model, the vLLM environment and the
//! arguments of a normal `--engine vllm` run. Tests fail (never skip) when either is missing.

use std::path::{Path, PathBuf};

use super::s;

/// The tiny test model; tests fail (never skip) without it.
pub fn tiny_llama() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/hf/tiny-llama");
    assert!(
        p.join("config.json").is_file(),
        "test model {} is missing: run .venv-vllm/bin/python python/make_tiny_llama.py (the README's test command does)",
        p.display()
    );
    p
}

/// The vLLM environment; tests fail (never skip) without it.
pub fn vllm_env() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-vllm");
    assert!(
        p.join("bin/python").exists(),
        "{} is missing: run python/setup-vllm-env.sh (the README's test command does)",
        p.display()
    );
    p
}

/// The arguments of a normal `--engine vllm` run on the test model, then `extra`.
pub fn vllm_args<'a>(model: &'a Path, env: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--engine",
        "vllm",
        "--model",
        s(model),
        "--python-env",
        s(env),
        "--max-model-len",
        "1024",
        "--enforce-eager",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    args
}
