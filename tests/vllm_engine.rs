//! vLLM in this process (feature `vllm`) on real vLLM (its CPU build) with the project-made tiny
//! Llama: exact token counts, monotonic timelines, the seed's keys under `vllm`, provenance, and
//! bad input. The test command builds with the feature, creates `.venv-vllm` and the model.
#![cfg(feature = "vllm")]

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;

fn vllm_run(extra: &[&str], out_path: &Path) -> Output {
    let (model, env) = (tiny_llama(), vllm_env());
    run_to(out_path, &vllm_args(&model, &env, extra)).0
}

/// Runs `--engine vllm` on `model`, with `--python-env` when given, writing to `out_path`.
fn vllm_on(model: &Path, python_env: Option<&Path>, out_path: &Path) -> Output {
    let mut args = vec![
        "--engine",
        "vllm",
        "--model",
        model.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ];
    if let Some(env) = python_env {
        args.extend(["--python-env", env.to_str().unwrap()]);
    }
    run(&args)
}

/// One engine start serves the tests that read a normal run (a start takes about a minute here).
fn measured() -> &'static (Output, Value) {
    static RUN: OnceLock<(Output, Value)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (model, env) = (tiny_llama(), vllm_env());
        let args = vllm_args(
            &model,
            &env,
            &[
                "--prompt",
                "short,medium",
                "--max-tokens",
                "24",
                "--warmup",
                "1",
                "--runs",
                "3",
                "--threads",
                "2",
                "--scenario",
                "tiny-llama-cpu",
            ],
        );
        run_to(&dir.path().join("vllm.json"), &args)
    })
}

#[test]
fn every_run_generates_exactly_max_tokens_with_monotonic_timelines() {
    let (out, j) = measured();
    assert!(out.status.success(), "{}", show(out));
    assert_eq!(j["complete"], true);
    let e = &j["results"]["vllm"];
    for name in ["short", "medium"] {
        let p = &e["prompts"][name];
        assert_eq!(p["successful_runs"], 3, "{name}");
        assert_eq!(p["total_runs"], 3, "{name}");
        assert!(p["prompt_tokens"]["mean"].as_f64().unwrap() > 5.0);
        for run in p["runs"].as_array().unwrap() {
            assert_eq!(run["tokens_generated"], 24, "{run}");
            assert_eq!(run["finish_reason"], "length");
            let ttft = run["ttft_ms"].as_f64().unwrap();
            let e2e = run["e2e_latency_ms"].as_f64().unwrap();
            assert!(0.0 < ttft && ttft <= e2e, "{run}");
            let itl: Vec<f64> = run["itl_ms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_f64().unwrap())
                .collect();
            // One ITL sample per delivery after the first. A delivery of n tokens counts n toward
            // the 24 and, when n > 1, one multi-token delivery: 24 = (d − m) + Σ n ≥ d + m.
            let deliveries = itl.len() as u64 + 1;
            let multi = run["multi_token_deliveries"].as_u64().unwrap();
            assert!(itl.iter().all(|&g| g >= 0.0), "monotonic timestamps");
            let sum: f64 = itl.iter().sum();
            if multi == 0 {
                assert_eq!(deliveries, 24, "one token per step: {run}");
                assert!(
                    (ttft + sum - e2e).abs() < 1e-6 * e2e.max(1.0),
                    "gaps add up to E2E − TTFT: {run}"
                );
            } else {
                assert!(deliveries < 24 && deliveries + multi <= 24, "{run}");
                // Each sample is its gap divided by the tokens it carried.
                assert!(ttft + sum <= e2e * (1.0 + 1e-9), "{run}");
            }
        }
    }
}

#[test]
fn results_carry_the_seed_keys_and_say_how_they_were_made() {
    let (out, j) = measured();
    assert!(out.status.success(), "{}", show(out));
    assert_eq!(j["scenario"], "tiny-llama-cpu");
    let e = &j["results"]["vllm"];
    assert!(e["model"].as_str().unwrap().ends_with("tiny-llama"));
    let short = &e["prompts"]["short"];
    for metric in ["ttft_ms", "tps", "itl_mean_ms", "e2e_latency_ms"] {
        let st = |k: &str| {
            short[metric][k]
                .as_f64()
                .unwrap_or_else(|| panic!("{metric}.{k} in {short}"))
        };
        let ordered = [st("min"), st("p50"), st("p95"), st("p99"), st("max")];
        assert!(
            ordered.windows(2).all(|w| w[0] <= w[1]) && ordered[0] > 0.0,
            "{metric}: {}",
            short[metric]
        );
        assert!(st("min") <= st("mean") && st("mean") <= st("max"));
        assert!(st("std") >= 0.0);
        // The summary is over the three measured runs.
        let runs: Vec<f64> = short["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[metric].as_f64().unwrap())
            .collect();
        let mean = runs.iter().sum::<f64>() / 3.0;
        assert!((st("mean") - mean).abs() <= 1e-9 * mean, "{metric}");
    }
    for stat in ["mean", "min", "max", "p50", "p95", "p99"] {
        assert_eq!(
            short["tokens_generated"][stat], 24.0,
            "tokens_generated.{stat}"
        );
    }
    assert_eq!(short["tokens_generated"]["std"], 0.0);
    let version = e["engine_version"].as_str().unwrap();
    assert!(version.starts_with("0.32.0"), "{version}");
    assert!(version.contains("torch 2.13.0"), "{version}");
    let s = &e["settings"];
    assert_eq!(s["enforce_eager"], true);
    assert_eq!(s["enable_prefix_caching"], false);
    assert_eq!(s["max_model_len"], 1024);
    assert_eq!(s["threads"], 2);
    assert!(s["python_env"].as_str().unwrap().ends_with(".venv-vllm"));
    let d = &e["details"];
    assert_eq!(d["enable_prefix_caching"], false);
    assert_eq!(d["torch_threads"], 2);
    assert_eq!(d["multiprocessing"], "0", "the engine runs in this process");
    // The embedded interpreter is the environment's, never this binary.
    let exe = d["versions"]["executable"].as_str().unwrap();
    assert!(exe.ends_with(".venv-vllm/bin/python"), "{exe}");
    assert!(d["python_start_ms"].as_f64().unwrap() > 0.0);
    assert!(e["load_time_ms"].as_f64().unwrap() > d["python_start_ms"].as_f64().unwrap());
}

/// Tokens of `text` by the test model's own tokenizer (transformers, in the vLLM environment).
fn tokens_of(text: &str) -> u64 {
    let out = std::process::Command::new(vllm_env().join("bin/python"))
        .args([
            "-c",
            "import sys; from transformers import AutoTokenizer; \
             t = AutoTokenizer.from_pretrained(sys.argv[1]); print(len(t(sys.argv[2]).input_ids))",
        ])
        .arg(tiny_llama())
        .arg(text)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn the_prompt_went_through_the_models_chat_template() {
    let (out, j) = measured();
    assert!(out.status.success(), "{}", show(out));
    for name in ["short", "medium"] {
        let p = &j["results"]["vllm"]["prompts"][name];
        let text = p["prompt_text"].as_str().unwrap();
        assert!(text.starts_with("<|im_start|>user\n"), "{text}");
        assert!(text.ends_with("<|im_start|>assistant\n"), "{text}");
        // vLLM evaluated exactly the templated text: its prompt token count is the tokenizer's.
        let expected = tokens_of(text);
        for r in p["runs"].as_array().unwrap() {
            assert_eq!(r["prompt_tokens"], expected, "{name}: {r}");
        }
    }
    let short = &j["results"]["vllm"]["prompts"]["short"]["prompt_text"];
    assert!(short
        .as_str()
        .unwrap()
        .contains("Explain quantum computing in simple terms."));
}

#[test]
fn a_missing_or_gguf_model_is_refused_before_python_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let out = vllm_on(&dir.path().join("nope"), None, &out_path);
    assert_clean_error(&out, "model folder not found");
    let out = vllm_on(&model(), None, &out_path);
    assert_clean_error(&out, "--engine llamacpp");
    assert!(!out_path.exists());
}

#[test]
fn a_python_environment_without_vllm_names_the_setup_script() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let out = vllm_on(&tiny_llama(), Some(&dir.path().join("no-env")), &out_path);
    assert_clean_error(&out, "python/setup-vllm-env.sh");

    // A real environment of the same Python, without vLLM in it.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-vllm/bin/python");
    let empty = dir.path().join("empty-env");
    let made = std::process::Command::new(&base)
        .args([
            "-c",
            "import sys, venv; venv.create(sys.argv[1], with_pip=False)",
        ])
        .arg(&empty)
        .status()
        .expect("python runs");
    assert!(made.success());
    let out = vllm_on(&tiny_llama(), Some(&empty), &out_path);
    assert_clean_error(&out, "vLLM is not installed");
    assert!(!out_path.exists());

    // The same environment with an old vLLM's metadata in it.
    let lib = empty.join("lib");
    let site = std::fs::read_dir(&lib)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("the environment has site-packages");
    let meta = site.join("vllm-0.10.0.dist-info");
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("METADATA"),
        "Metadata-Version: 2.1\nName: vllm\nVersion: 0.10.0\n",
    )
    .unwrap();
    let out = vllm_on(&tiny_llama(), Some(&empty), &out_path);
    assert_clean_error(&out, "older than 0.32");
    assert!(!out_path.exists());
}

#[test]
fn an_error_inside_vllm_is_one_line_without_a_traceback() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let out = vllm_run(&["--quantization", "no-such-method"], &out_path);
    assert_clean_error(&out, "no-such-method");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Traceback"), "{}", show(&out));
    assert!(!out_path.exists());
}

#[test]
fn compare_http_runs_vllm_serve_alongside_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("cmp.json");
    let (model, env) = (tiny_llama(), vllm_env());
    let mut args = vllm_args(
        &model,
        &env,
        &[
            "--compare-http",
            "--prompt",
            "short",
            "--max-tokens",
            "16",
            "--warmup",
            "1",
            "--runs",
            "3",
            "--threads",
            "2",
        ],
    );
    args.extend(["--output", s(&out_path)]);
    // The binary leads its own process group, and the server leads another: whatever either
    // spawned (vLLM's engine core, multiprocessing helpers) stays in one of the two groups.
    let mut child = Spawned::start(&args, &[]);
    let ready = child.wait_line("saying vllm serve is ready", |l| {
        l.starts_with("vllm serve ready on")
    });
    let server = pid_in(&ready);
    assert!(alive(server));
    let status = child.wait_exit();
    assert!(status.success(), "{}", child.seen);
    assert_group_empties(child.pid(), "the binary's own group");
    assert_group_empties(server, "vllm serve's group");
    let j = read_json(&out_path);
    // Both sides run 2 unbound threads: in-process as set, and vLLM's CPU worker in `vllm serve`
    // as well (left to itself it would bind one thread per core minus one).
    let inproc = &j["results"]["vllm"];
    assert_eq!(inproc["settings"]["cpu_threads_bind"], "nobind");
    assert_eq!(inproc["details"]["torch_threads"], 2);
    assert_eq!(inproc["details"]["thread_env"]["OMP_NUM_THREADS"], "2");
    assert_eq!(
        inproc["details"]["thread_env"]["VLLM_CPU_OMP_THREADS_BIND"],
        "nobind"
    );
    let served = &j["results"]["vllm-http"]["details"];
    assert_eq!(served["server_threads"]["OMP_NUM_THREADS"], "2", "{served}");
    assert_eq!(
        served["server_threads"]["VLLM_CPU_OMP_THREADS_BIND"],
        "nobind"
    );
    let procs = served["server_processes"].as_array().unwrap();
    assert!(procs.len() >= 2, "the server and its worker: {procs:?}");
    for p in procs {
        let env = &p["env"];
        assert_eq!(env["OMP_NUM_THREADS"], "2", "{p}");
        for bind in ["OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY"] {
            assert!(env.get(bind).is_none(), "{bind} set in {p}");
        }
    }
    for key in ["vllm", "vllm-http"] {
        let p = &j["results"][key]["prompts"]["short"];
        assert_eq!(p["successful_runs"], 3, "{key}");
        for run in p["runs"].as_array().unwrap() {
            assert_eq!(run["tokens_generated"], 16, "{key}: {run}");
        }
    }
    let http_run = &j["results"]["vllm-http"]["prompts"]["short"]["runs"][0];
    assert_eq!(http_run["server"]["count_source"], "token_ids");
    assert_eq!(http_run["server"]["usage_tokens"], 16);
    let c = &j["http_comparison"];
    assert_eq!(c["inprocess_key"], "vllm");
    assert_eq!(c["http_key"], "vllm-http");
    assert_eq!(c["server"]["name"], "vllm serve");
    let args = c["server"]["args"].as_array().unwrap();
    for flag in ["--enforce-eager", "--no-enable-prefix-caching"] {
        assert!(args.iter().any(|a| a == flag), "{flag} in {args:?}");
    }
    let p = &c["prompts"]["short"];
    assert_eq!(
        p["same_text"], true,
        "greedy text is the same both ways: {p}"
    );
    assert_eq!(
        j["results"]["vllm"]["prompts"]["short"]["sample_output"],
        j["results"]["vllm-http"]["prompts"]["short"]["sample_output"]
    );
    for m in ["ttft_ms", "itl_mean_ms", "e2e_latency_ms"] {
        let metric = &p["metrics"][m];
        let (a, b) = (&metric["inprocess"], &metric["http"]);
        assert_eq!(
            (a["n"].as_u64(), b["n"].as_u64()),
            (Some(3), Some(3)),
            "{m}"
        );
        let w = &metric["welch"];
        let d = w["difference"].as_f64().unwrap();
        let means = b["mean"].as_f64().unwrap() - a["mean"].as_f64().unwrap();
        assert!(
            (d - means).abs() < 1e-9 * means.abs().max(1.0),
            "{m}: {metric}"
        );
        let (lo, hi) = (
            w["difference_ci_low"].as_f64().unwrap(),
            w["difference_ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= d && d <= hi, "{m}: {w}");
    }
}

#[test]
fn ctrl_c_keeps_the_finished_runs_exits_130_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let (model, env) = (tiny_llama(), vllm_env());
    let mut args = vllm_args(
        &model,
        &env,
        &[
            "--prompt",
            "short",
            "--max-tokens",
            "8",
            "--warmup",
            "0",
            "--runs",
            "1000",
        ],
    );
    args.extend(["--output", s(&out_path)]);
    let mut child = Spawned::start(&args, &[]);
    child.wait_finished_run();
    child.interrupt();
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", child.seen);
    assert_group_empties(child.pid(), "the binary's group");
    let j = read_json(&out_path);
    assert_eq!(j["complete"], false);
    assert_eq!(j["incomplete_reason"], "interrupted by the user");
    let p = &j["results"]["vllm"]["prompts"]["short"];
    let done = p["successful_runs"].as_u64().unwrap();
    assert!((1..1000).contains(&done), "{done}");
    assert_eq!(p["total_runs"], done);
    for r in p["runs"].as_array().unwrap() {
        assert_eq!(r["tokens_generated"], 8, "{r}");
    }
    assert!(temporary_files(dir.path()).is_empty());
    assert_eq!(files_in(dir.path()), [out_path]);
}

#[test]
fn a_template_file_and_its_arguments_reach_the_tokenizers_renderer() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/templates/chatml-thinking.jinja");
    let out = vllm_run(
        &[
            "--chat-template-file",
            s(&file),
            "--thinking",
            "off",
            "--prompt",
            "short",
            "--warmup",
            "0",
            "--runs",
            "1",
            "--max-tokens",
            "2",
        ],
        &out_path,
    );
    assert!(out.status.success(), "{}", show(&out));
    let j = read_json(&out_path);
    let text = j["results"]["vllm"]["prompts"]["short"]["prompt_text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("<|im_start|>user\n"), "{text}");
    assert!(
        text.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        "enable_thinking false reached the template: {text:?}"
    );
}

#[test]
fn every_run_splits_its_steps_into_engine_core_output_and_driver_phases() {
    let (out, j) = measured();
    assert!(out.status.success(), "{}", show(out));
    let p = &j["results"]["vllm"]["prompts"]["short"];
    let num = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("a number: {v}"));
    for r in p["runs"].as_array().unwrap() {
        let ph = &r["phases"];
        assert_eq!(ph["source"], "recorder marks", "{ph}");
        let mut names: Vec<&str> = ph["phases"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["detok", "output", "own", "step"], "{ph}");
        for x in ph["phases"].as_object().unwrap().values() {
            assert!(num(&x["sum_ms"]) >= 0.0, "{ph}");
        }
        // The marks tile the window; the engine core is most of it; the driver decodes the text
        // once, after the last token.
        assert!((num(&ph["accounted_pct"]) - 100.0).abs() < 0.01, "{ph}");
        let step = num(&ph["phases"]["step"]["sum_ms"]);
        assert!(step > num(&ph["phases"]["own"]["sum_ms"]), "{ph}");
        assert_eq!(num(&ph["phases"]["detok"]["sum_ms"]), 0.0, "{ph}");
        assert!(num(&ph["detok_total_ms"]) > 0.0, "{ph}");
        assert!(num(&ph["prompt_ms"]) > 0.0, "{ph}");
        assert!(num(&ph["step_total_ms"]) >= step, "{ph}");
        assert!(num(&ph["measured_ms"]) <= num(&r["e2e_latency_ms"]), "{r}");
    }
    let pooled = &p["phases"];
    let tokens: u64 = p["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["phases"]["tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(pooled["tokens"].as_u64(), Some(tokens), "{pooled}");
}
