//! GPU offload checks for a `--features cuda` build on a machine with an NVIDIA GPU.
//!
//! Runs the binary on the test model with `--n-gpu-layers 0`, a partial value and `-1`, one
//! process each, and checks that the VRAM figures in the results JSON are present and that the
//! memory the load takes rises with offload.
//!
//! Run with `cargo test --release --features cuda --test gpu`. The model is
//! `models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf` (`scripts/fetch-model.sh`) unless
//! `INPROC_BENCH_TEST_MODEL` names another. Without a CUDA device these tests print why and pass,
//! unless `INPROC_BENCH_REQUIRE_GPU=1` (the GPU workflow sets it), where they fail.
#![cfg(feature = "cuda")]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const PARTIAL_LAYERS: &str = "15";

fn test_model() -> PathBuf {
    std::env::var_os("INPROC_BENCH_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf")
        })
}

/// `false` (after saying why) when there is no GPU and none is required.
fn gpu_present() -> bool {
    let devices = inproc_bench::telemetry::gpu::devices();
    if devices.available {
        return true;
    }
    let why = devices.reason.unwrap_or_default();
    if std::env::var("INPROC_BENCH_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("INPROC_BENCH_REQUIRE_GPU=1 but no GPU: {why}");
    }
    eprintln!("skipped: no GPU ({why})");
    false
}

/// Runs the binary with `--n-gpu-layers ngl` and returns `results.<first key>` of its JSON.
fn run_with_offload(ngl: &str, out_dir: &Path) -> Value {
    let model = test_model();
    assert!(
        model.is_file(),
        "test model {} missing: run scripts/fetch-model.sh",
        model.display()
    );
    let output = out_dir.join(format!("ngl{ngl}.json"));
    let status = Command::new(env!("CARGO_BIN_EXE_inproc-bench"))
        .args(["--engine", "llamacpp", "--model"])
        .arg(&model)
        .args([
            "--n-gpu-layers",
            ngl,
            "--prompt",
            "short",
            "--warmup",
            "1",
            "--runs",
            "3",
            "--quiet",
        ])
        .arg("--output")
        .arg(&output)
        .status()
        .expect("the binary starts");
    assert!(status.success(), "--n-gpu-layers {ngl}: exit {status}");
    let text = std::fs::read_to_string(&output).expect("results written");
    let file: Value = serde_json::from_str(&text).expect("results are JSON");
    let results = file["results"].as_object().expect("results is an object");
    let (_, engine) = results.iter().next().expect("one engine result");
    engine.clone()
}

fn bytes(gpu: &Value, field: &str, ngl: &str) -> u64 {
    gpu[field].as_u64().unwrap_or_else(|| {
        panic!(
            "--n-gpu-layers {ngl}: gpu.{field} is {} (note: {})",
            gpu[field], gpu["note"]
        )
    })
}

#[test]
fn vram_figures_are_present_and_rise_with_offload() {
    if !gpu_present() {
        return;
    }
    // The results go where INPROC_BENCH_GPU_RESULTS says (the GPU workflow uploads them), else into
    // a folder of this test's own that is removed afterwards.
    let own = tempfile::tempdir().expect("a temporary folder");
    let dir = std::env::var_os("INPROC_BENCH_GPU_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| own.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("results folder");

    let mut load_bytes = Vec::new();
    for ngl in ["0", PARTIAL_LAYERS, "-1"] {
        let engine = run_with_offload(ngl, &dir);
        let gpu = &engine["gpu"];
        assert!(
            gpu.is_object(),
            "--n-gpu-layers {ngl}: no gpu figures: {engine}"
        );
        assert!(
            gpu["device"].is_object(),
            "--n-gpu-layers {ngl}: no device: {gpu}"
        );
        let before = bytes(gpu, "memory_used_before_load_bytes", ngl);
        let after = bytes(gpu, "memory_used_after_load_bytes", ngl);
        let peak = bytes(gpu, "memory_peak_during_runs_bytes", ngl);
        let tps = engine["prompts"]["short"]["tps"]["mean"]
            .as_f64()
            .unwrap_or(0.0);
        assert!(tps > 0.0, "--n-gpu-layers {ngl}: no decode rate");
        eprintln!(
            "ngl {ngl:>3}: before load {} MiB, after {} MiB, peak {} MiB, {tps:.1} tok/s, power {} W",
            before >> 20,
            after >> 20,
            peak >> 20,
            gpu["power_mean_w"]
        );
        load_bytes.push((ngl, after.saturating_sub(before)));
    }
    for pair in load_bytes.windows(2) {
        let ((less, a), (more, b)) = (pair[0], pair[1]);
        assert!(
            b > a,
            "the load took {b} bytes of VRAM with --n-gpu-layers {more}, not more than {a} with {less}"
        );
    }
}

/// The GPU's memory bandwidth: specified (NVML clock × bus width × 2) and measured (a device
/// copy), and the roofline of a fully offloaded run held against them.
#[test]
fn gpu_bandwidth_is_specified_measured_and_used_by_the_roofline() {
    if !gpu_present() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_inproc-bench"))
        .args([
            "probe",
            "--threads",
            "1",
            "--size-mib",
            "64",
            "--reps",
            "2",
            "--format",
            "json",
        ])
        .output()
        .expect("the binary starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let gpu = &v["gpu"];
    let spec = gpu["spec_gbps"].as_f64().unwrap_or(0.0);
    let measured = gpu["measured_gbps"].as_f64().unwrap_or(0.0);
    eprintln!("GPU bandwidth: spec {spec:.0} GB/s, device copy {measured:.0} GB/s");
    assert!(spec > 0.0 && measured > 0.0, "{gpu}");
    assert!(
        measured < spec * 1.2,
        "a copy faster than the specification: {gpu}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let engine = run_with_offload("-1", dir.path());
    let r = &engine["roofline"];
    assert_eq!(r["placement"]["device"], "gpu", "{r}");
    assert!(r["peak"]["gpu"]["spec_gbps"].as_f64().is_some(), "{r}");
    assert!(
        r["pct_of_spec_peak"]["mean"]
            .as_f64()
            .is_some_and(|p| p > 0.0),
        "{r}"
    );
}
