//! The vLLM side of the shared test helpers: the tiny test model, the vLLM environment, the
//! arguments of a normal `--engine vllm` run and a `vllm serve` of the test model. Tests fail (never skip) when either is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use inproc_bench::server::{Launch, PORT};

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

/// `vllm serve` of the tiny test model on CPU: 512 tokens per sequence, no prefix caching.
pub fn vllm_serve_launch() -> Launch {
    let (m, env) = (tiny_llama(), vllm_env());
    Launch {
        name: "vllm serve",
        program: env.join("bin/python"),
        args: [
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            s(&m),
            "--host",
            "127.0.0.1",
            "--port",
            PORT,
            "--max-model-len",
            "512",
            "--enforce-eager",
            "--kv-cache-memory-bytes",
            "268435456",
            "--no-enable-prefix-caching",
            "--disable-uvicorn-access-log",
            "--disable-log-stats",
        ]
        .map(String::from)
        .to_vec(),
        env: [
            ("VLLM_TARGET_DEVICE", "cpu"),
            ("OMP_NUM_THREADS", "2"),
            ("VLLM_NO_USAGE_STATS", "1"),
            ("HF_HUB_OFFLINE", "1"),
            ("VLLM_LOGGING_LEVEL", "WARNING"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec(),
        port: None,
        verbose: false,
        ready_timeout: Duration::from_secs(600),
        build: None,
        fix: "run python/setup-vllm-env.sh",
    }
}
