//! The plan from flags: sweeps, defaults, engines and the errors that name their flag.

use std::path::PathBuf;

use super::*;
use crate::cli::Cli;
use crate::engine::http::Api;
use clap::Parser;

fn plan(args: &[&str]) -> Result<Plan, PlanError> {
    let cli =
        Cli::try_parse_from(std::iter::once("inproc-bench").chain(args.iter().copied())).unwrap();
    Plan::from_args(&crate::commands::run::run_options(cli.run_args().unwrap()))
}

#[test]
fn a_sweep_expands_every_combination_and_labels_what_varies() {
    let p = plan(&["--model", "a.gguf,b.gguf", "--threads", "1,2", "--ngl", "0"]).unwrap();
    let EnginePlan::LlamaCpp(combos) = p.engine else {
        panic!()
    };
    assert_eq!(combos.len(), 4);
    assert_eq!(sweep_label(&combos[0].sweep), "model=a.gguf,threads=1");
    assert_eq!(sweep_label(&combos[3].sweep), "model=b.gguf,threads=2");
    assert!(combos.iter().all(|c| c.settings.n_gpu_layers == 0));
}

#[test]
fn sweep_keys_name_models_by_file_and_lists_refuse_repeats() {
    let p = plan(&[
        "--model",
        "m/a-Q4_K_M.gguf,m/a-Q8_0.gguf",
        "--ngl",
        "0-20+10",
    ])
    .unwrap();
    let EnginePlan::LlamaCpp(c) = p.engine else {
        panic!()
    };
    let labels: Vec<String> = c.iter().map(|c| sweep_label(&c.sweep)).collect();
    assert_eq!(labels[0], "model=a-Q4_K_M.gguf,n_gpu_layers=0");
    assert_eq!(labels[5], "model=a-Q8_0.gguf,n_gpu_layers=20");
    assert_eq!(c[5].settings.model, PathBuf::from("m/a-Q8_0.gguf"));
    // Two models with one file name keep their paths, so that keys stay distinct.
    let p = plan(&["--model", "x/m.gguf,y/m.gguf"]).unwrap();
    let EnginePlan::LlamaCpp(c) = p.engine else {
        panic!()
    };
    assert_eq!(sweep_label(&c[1].sweep), "model=y/m.gguf");
    let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
    assert_eq!(
        msg(&["--model", "m", "--threads", "1,2,1"]),
        "--threads: 1 is listed twice"
    );
    assert_eq!(
        msg(&["--model", "m", "--ngl", "0-20+10,10"]),
        "--n-gpu-layers: 10 is listed twice"
    );
    assert_eq!(
        msg(&["--model", "m", "--fa", "on,1"]),
        "--flash-attn: on is listed twice"
    );
    assert_eq!(msg(&["--model", "a,a"]), "--model: a is listed twice");
    assert_eq!(msg(&["--model", "a,"]), "--model: empty item in the list");
}

#[test]
fn defaults_and_overrides() {
    let p = plan(&[
        "--model",
        "m.gguf",
        "--prompt",
        "short",
        "--max-tokens",
        "7",
    ])
    .unwrap();
    assert_eq!(p.prompts.len(), 1);
    assert_eq!(p.prompts[0].max_tokens, 7);
    let EnginePlan::LlamaCpp(c) = p.engine else {
        panic!()
    };
    assert_eq!(c.len(), 1);
    assert!(c[0].sweep.is_empty());
    assert_eq!(c[0].settings.n_gpu_layers, -1);
    assert_eq!(c[0].settings.ctx_size, 4096);
    assert!(c[0].settings.threads >= 1);
}

#[test]
fn the_seeds_backend_flags_map_onto_http_engines() {
    let p = plan(&["--backend", "both"]).unwrap();
    let EnginePlan::Http(t) = p.engine else {
        panic!()
    };
    let keys: Vec<(&str, &str)> = t.iter().map(|s| (s.key.as_str(), s.url.as_str())).collect();
    assert_eq!(
        keys,
        [
            ("vllm", "http://localhost:8000"),
            ("llamacpp", "http://localhost:8001")
        ]
    );
    assert!(t.iter().all(|s| s.api == Api::Chat));
    let p = plan(&[
        "--engine",
        "http",
        "--url",
        "http://127.0.0.1:9",
        "--api",
        "completions",
        "--raw-prompt",
    ])
    .unwrap();
    let EnginePlan::Http(t) = p.engine else {
        panic!()
    };
    assert_eq!(
        (t[0].key.as_str(), t[0].api, t[0].flavor),
        ("http", Api::Completions, None)
    );
    let p = plan(&[
        "--model",
        "m.gguf",
        "--compare-http",
        "--llama-server",
        "/x/llama-server",
    ])
    .unwrap();
    let EnginePlan::CompareHttp {
        settings,
        llama_server,
    } = p.engine
    else {
        panic!()
    };
    assert_eq!(settings.model, PathBuf::from("m.gguf"));
    assert_eq!(llama_server, Some(PathBuf::from("/x/llama-server")));
}

#[test]
fn prefix_cache_reaches_requests_and_vllm_and_is_off_by_default() {
    let off = plan(&["--engine", "vllm", "--model", "m"]).unwrap();
    assert!(!off.suite.sampling.prefix_cache);
    let on = plan(&["--engine", "vllm", "--model", "m", "--prefix-cache", "on"]).unwrap();
    assert!(on.suite.sampling.prefix_cache);
    let EnginePlan::Vllm(s) = on.engine else {
        panic!("not a vLLM plan")
    };
    assert!(s.enable_prefix_caching);
    let old = plan(&[
        "--engine",
        "vllm",
        "--model",
        "m",
        "--enable-prefix-caching",
    ])
    .unwrap();
    assert!(old.suite.sampling.prefix_cache);
    let llama = plan(&["--model", "m.gguf", "--prefix-cache", "on"]).unwrap();
    assert!(llama.suite.sampling.prefix_cache);
    let http = plan(&[
        "--engine",
        "http",
        "--backend",
        "vllm",
        "--prefix-cache",
        "on",
    ])
    .unwrap();
    let EnginePlan::Http(targets) = http.engine else {
        panic!("not an HTTP plan")
    };
    assert!(targets[0].prefix_cache);
    assert!(Cli::try_parse_from(["inproc-bench", "--prefix-cache", "maybe"]).is_err());
}

#[test]
fn vllm_flags_become_engine_settings_and_bad_ones_name_the_flag() {
    let p = plan(&[
        "--engine",
        "vllm",
        "--model",
        "models/hf/m",
        "--threads",
        "3",
        "--max-model-len",
        "2048",
        "--enforce-eager",
    ])
    .unwrap();
    let EnginePlan::Vllm(s) = p.engine else {
        panic!("not a vLLM plan")
    };
    assert_eq!(s.model, PathBuf::from("models/hf/m"));
    assert_eq!(s.threads, 3);
    assert_eq!(s.max_model_len, Some(2048));
    assert!(s.enforce_eager && !s.enable_prefix_caching);
    let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
    assert!(msg(&["--engine", "vllm"]).starts_with("--model: required for --engine vllm"));
    assert!(msg(&["--engine", "vllm", "--model", "a,b"]).contains("one model"));
    assert!(msg(&["--engine", "vllm", "--model", "a", "--threads", "1,2"]).contains("not a list"));
    assert!(msg(&[
        "--engine",
        "vllm",
        "--model",
        "a",
        "--gpu-memory-utilization",
        "1.5"
    ])
    .starts_with("--gpu-memory-utilization"));
}

#[test]
fn bad_http_flags_name_the_flag() {
    let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
    assert!(msg(&["--engine", "http"]).starts_with("--url: required"));
    assert!(msg(&[
        "--engine",
        "http",
        "--url",
        "http://h:1",
        "--api",
        "completions"
    ])
    .contains("--raw-prompt"));
    assert!(msg(&["--backend", "vllm", "--url", "http://h:1"]).starts_with("--backend"));
    assert!(msg(&["--model", "m", "--compare-http", "--threads", "1,2"]).contains("2 combinations"));
    assert!(msg(&["--engine", "mock", "--compare-http"]).starts_with("--compare-http"));
}

#[test]
fn bad_values_name_the_flag() {
    let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
    assert!(msg(&["--model", "m", "--runs", "0"]).starts_with("--runs: must be at least 1"));
    assert!(msg(&["--engine", "llamacpp"]).starts_with("--model: required"));
    assert!(msg(&["--model", "m", "--prompt", "huge"]).contains("unknown prompt 'huge'"));
    assert!(msg(&["--model", "m", "--fa", "maybe"]).starts_with("--flash-attn"));
    assert!(msg(&["--model", "m", "--ngl", "-5"]).starts_with("--n-gpu-layers"));
    assert!(msg(&["--model", "m", "--threads", "0"]).starts_with("--threads"));
}
