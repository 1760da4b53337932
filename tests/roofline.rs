//! The bandwidth roofline: bytes per token of the test models against hand-computed counts,
//! llama.cpp's layer placement, the `probe` command, and the `roofline` object of a real run.
//! (The GGUF reader on a GGUF written by the test and on damaged files: `tests/gguf_reader.rs`.)

mod common;

use std::path::Path;

use inproc_bench::gguf::ggml_type::GgmlType;
use inproc_bench::gguf::GgufFile;
use inproc_bench::roofline::model::{llamacpp_cells_read, ModelBytes, Placement};
use inproc_bench::roofline::safetensors;
use serde_json::Value;

fn ty(name: &str) -> GgmlType {
    GgmlType::from_name(name).expect("a known type")
}

// ---- SmolLM2-135M-Instruct Q4_1 --------------------------------------------------------------
//
// By hand, from the architecture (llama, 30 layers, n_embd 576, n_ff 1536, 9 heads of 64, 3 KV
// heads, vocab 49152, output head tied to token_embd) and the types in the file (Q4_1: 32
// elements in 20 bytes; Q8_0: 32 in 34; F32: 4 bytes):
//   per layer: 2 norms 576×4 = 4 608; ffn gate/up/down 3 × 576×1536/32×20 = 1 658 880;
//              attn q, output 2 × 576×576/32×20 = 414 720; attn k, v 2 × 576×192/32×20 = 138 240
//              → 2 216 448, × 30 layers = 66 493 440
//   output_norm 2 304; token_embd (Q8_0) 576×49152/32×34 = 30 081 024, one row 576/32×34 = 612
//   file: 66 493 440 + 2 304 + 30 081 024 = 96 576 768 (gguf-py's GGUFReader sums the same
//   272 tensors' n_bytes to 96 576 768; llama.cpp's llama_model_size says the same)
//   per token: all but token_embd (66 495 744) + the tied table for the logits (30 081 024) +
//   one row (612) = 96 577 380
//   KV per position (F16): 30 layers × 3 heads × 64 × 2 (K, V) × 2 bytes = 23 040
const SMOL_FILE_BYTES: u64 = 96_576_768;
const SMOL_LAYER: f64 = 2_216_448.0;
const SMOL_OUTPUT: f64 = 2_304.0 + 30_081_024.0;
const SMOL_ROW: f64 = 612.0;
const SMOL_PER_TOKEN: f64 = 96_577_380.0;
const SMOL_KV: f64 = 23_040.0;

fn smol() -> (GgufFile, ModelBytes) {
    let g = GgufFile::open(&common::model()).expect("reads the test model");
    let m = ModelBytes::from_gguf(&g).expect("bytes of the test model");
    (g, m)
}

#[test]
fn smollm2_bytes_per_token_match_the_hand_count() {
    let (g, m) = smol();
    assert_eq!(g.version, 3);
    assert_eq!(g.tensors.len(), 272);
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(
        g.tensors.iter().map(|t| t.n_bytes).sum::<u64>(),
        SMOL_FILE_BYTES
    );
    let embd = g.tensor("token_embd.weight").expect("token_embd");
    assert_eq!(
        (embd.ggml_type.name, embd.n_bytes, embd.row_bytes()),
        ("q8_0", 30_081_024, 612)
    );
    assert!(m.tied_output);
    assert_eq!((m.n_layer, m.model_bytes), (30, SMOL_FILE_BYTES));
    assert_eq!(
        SMOL_LAYER * 30.0 + SMOL_OUTPUT + SMOL_ROW,
        SMOL_PER_TOKEN,
        "the hand count adds up"
    );
    let w = m.weights(&Placement::CPU);
    assert_eq!((w.cpu, w.gpu), (SMOL_PER_TOKEN, 0.0));
    let kv = m
        .kv_per_position(&Placement::CPU, ty("f16"), ty("f16"))
        .expect("KV known");
    assert_eq!(kv.cpu, SMOL_KV);
    // q8_0 keys: 192 elements per layer in 6 blocks of 34 bytes; f16 values 384 bytes.
    let kv = m
        .kv_per_position(&Placement::CPU, ty("q8_0"), ty("f16"))
        .expect("KV known");
    assert_eq!(kv.cpu, 30.0 * (6.0 * 34.0 + 384.0));
}

#[test]
fn smollm2_split_follows_llama_cpps_layer_rule() {
    let (_, m) = smol();
    let gpu = |ngl: i64| {
        let p = Placement::llamacpp(true, ngl);
        let w = m.weights(&p);
        assert_eq!(w.cpu + w.gpu, SMOL_PER_TOKEN, "ngl {ngl}: nothing lost");
        let kv = m.kv_per_position(&p, ty("f16"), ty("f16")).expect("KV");
        (w.gpu, kv.gpu, p.gpu_layers(30))
    };
    // The output layer counts as layer 30 of 31: one offloaded layer is the output head alone
    // (with the tied table duplicated onto the GPU); the token-embedding row stays on the CPU.
    assert_eq!(gpu(0), (0.0, 0.0, 0));
    assert_eq!(gpu(1), (SMOL_OUTPUT, 0.0, 1));
    assert_eq!(gpu(2), (SMOL_OUTPUT + SMOL_LAYER, 768.0, 2));
    assert_eq!(gpu(30), (SMOL_OUTPUT + 29.0 * SMOL_LAYER, 29.0 * 768.0, 30));
    for all in [-1, 31, 999] {
        assert_eq!(
            gpu(all),
            (SMOL_PER_TOKEN - SMOL_ROW, SMOL_KV, 31),
            "ngl {all}"
        );
    }
    // Without a GPU backend llama.cpp offloads nothing, whatever --n-gpu-layers says.
    assert_eq!(m.weights(&Placement::llamacpp(false, -1)).gpu, 0.0);
}

#[test]
fn llama_cpp_reads_kv_cells_in_steps_of_256() {
    assert_eq!(llamacpp_cells_read(1, 4096), 256);
    assert_eq!(llamacpp_cells_read(256, 4096), 256);
    assert_eq!(llamacpp_cells_read(257, 4096), 512);
    assert_eq!(llamacpp_cells_read(4000, 4096), 4096);
    assert_eq!(llamacpp_cells_read(100, 128), 128);
}

// ---- the vLLM test model (safetensors) -------------------------------------------------------

#[test]
fn tiny_llama_safetensors_bytes_match_the_hand_count() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/hf/tiny-llama");
    assert!(
        dir.join("config.json").is_file(),
        "{} is missing: run scripts/setup.sh (python/make_tiny_llama.py makes it)",
        dir.display()
    );
    // 2 layers of hidden 256, ffn 1024, 4 heads of 64, 2 KV heads, vocab 8192, untied, bf16:
    // per layer q, o 2 × 256×256 + k, v 2 × 128×256 + gate, up, down 3 × 256×1024 + 2 norms
    // × 256 = 983 552 elements; all: 2 layers + norm 256 + lm_head 8192×256 + embed 8192×256
    // = 6 161 664 elements; per token the embedding table's one row: 4 064 768 elements.
    let m = safetensors::from_hf_folder(&dir, Some(2)).expect("reads");
    assert!(!m.tied_output);
    assert_eq!(m.model_bytes, 6_161_664 * 2);
    assert_eq!(m.weights(&Placement::CPU).cpu, 4_064_768.0 * 2.0);
    let kv = m
        .kv_per_position(&Placement::CPU, ty("bf16"), ty("bf16"))
        .expect("KV");
    assert_eq!(kv.cpu, 2.0 * 2.0 * 64.0 * 2.0 * 2.0);
    // Counted in float32 when the engine runs it so.
    let f32 = safetensors::from_hf_folder(&dir, Some(4)).expect("reads");
    assert_eq!(f32.weights(&Placement::GPU).gpu, 4_064_768.0 * 4.0);
}

// ---- the probe command -----------------------------------------------------------------------

#[test]
fn probe_measures_a_positive_bandwidth() {
    let out = common::run(&[
        "probe",
        "--threads",
        "1",
        "--size-mib",
        "32",
        "--reps",
        "3",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", common::show(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let cpu = &v["cpu"];
    assert_eq!(
        (cpu["threads"].as_u64(), cpu["reps"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(cpu["buffer_bytes"].as_u64(), Some(32 << 20));
    let best = cpu["best_gbps"].as_f64().expect("best");
    assert!(best > 0.0 && best >= cpu["median_gbps"].as_f64().expect("median"));
    assert_eq!(cpu["samples_gbps"].as_array().map(Vec::len), Some(3));
    assert!(v["gpu"]["spec_reason"].is_string() || v["gpu"]["spec_gbps"].is_number());
    assert_eq!(v["tool"]["name"], "inproc-bench");
    let table = common::run(&["probe", "--threads", "1", "--size-mib", "16", "--reps", "2"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("CPU read kernel: 1 thread(s), 16 MiB"),
        "{text}"
    );
    assert!(text.contains("best") && text.contains("median"), "{text}");
    assert!(text.contains("sustained"), "{text}");
}

#[test]
fn probe_reads_at_least_the_asked_time() {
    let out = common::run(&[
        "probe",
        "--threads",
        "1",
        "--size-mib",
        "8",
        "--reps",
        "1",
        "--min-time-ms",
        "50",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", common::show(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let cpu = &v["cpu"];
    let reps = cpu["reps"].as_u64().expect("reps");
    assert!(reps > 1, "{cpu}");
    assert_eq!(
        cpu["samples_gbps"].as_array().map(Vec::len),
        Some(reps as usize)
    );
    assert!(cpu["timed_ms"].as_f64().expect("timed") >= 50.0, "{cpu}");
    let (lo, hi) = (cpu["min_gbps"].as_f64(), cpu["best_gbps"].as_f64());
    let sustained = cpu["sustained_gbps"].as_f64().expect("sustained");
    assert!(lo <= Some(sustained) && Some(sustained) <= hi, "{cpu}");
}

#[test]
fn probe_refuses_nonsense_flags() {
    common::assert_clean_error(&common::run(&["probe", "--threads", "0"]), "--threads");
    common::assert_clean_error(&common::run(&["probe", "--size-mib", "0"]), "--size-mib");
    common::assert_clean_error(
        &common::run(&["probe", "--min-time-ms", "9000000"]),
        "--min-time-ms",
    );
    let out = common::run(&["probe", "--reps", "0"]);
    assert!(!out.status.success());
}

// ---- a real run ------------------------------------------------------------------------------

fn real_run(dir: &Path, name: &str, extra: &[&str]) -> Value {
    let out_file = dir.join(name);
    let model = common::model();
    let mut args = vec![
        "--model",
        model.to_str().expect("utf-8 path"),
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "2",
        "-n",
        "8",
        "-t",
        "1",
        "-q",
        "-o",
        out_file.to_str().expect("utf-8 path"),
    ];
    args.extend(extra);
    let out = common::run(&args);
    assert!(out.status.success(), "{}", common::show(&out));
    common::read_json(&out_file)
}

#[test]
fn a_real_run_carries_the_roofline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = real_run(dir.path(), "probed.json", &[]);
    let e = &v["results"]["llamacpp"];
    let r = &e["roofline"];
    assert_eq!(r["source"], "gguf");
    assert_eq!(
        r["model_bytes"], e["details"]["size_bytes"],
        "llama.cpp's own size"
    );
    assert_eq!(
        r["weights_bytes_per_token"]["total"].as_f64(),
        Some(SMOL_PER_TOKEN)
    );
    assert_eq!(r["kv_bytes_per_position"]["total"].as_f64(), Some(SMOL_KV));
    assert_eq!(r["kv_cache_type"], "f16/f16");
    assert_eq!(r["placement"]["device"], "cpu");
    let cpu = &r["peak"]["cpu"];
    let peak = cpu["measured_gbps"].as_f64().expect("probed");
    assert!(peak > 0.0);
    assert!(cpu["measured_source"]
        .as_str()
        .is_some_and(|s| s.contains("1 thread(s)")));
    assert!(cpu["spec_gbps"].is_null() && cpu["spec_reason"].is_string());
    assert!(r["pct_of_spec_peak"].is_null());
    let runs = e["prompts"]["short"]["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for run in runs {
        let f = &run["roofline"];
        let prompt = run["prompt_tokens"].as_f64().expect("prompt tokens");
        assert_eq!(f["mean_depth"].as_f64(), Some(prompt + 4.0));
        // The decoded tokens read 256 KV cells (llama.cpp's padding) at this depth.
        let bytes = f["bytes_per_token"]["total"].as_f64().expect("bytes");
        assert_eq!(bytes, SMOL_PER_TOKEN + 256.0 * SMOL_KV);
        let tps = run["tps"].as_f64().expect("tps");
        let gbps = f["achieved_gbps"].as_f64().expect("GB/s");
        assert!((gbps - bytes * tps / 1e9).abs() < 1e-9 * gbps.max(1.0));
        let pct = f["pct_of_measured_peak"].as_f64().expect("%");
        assert!((pct - 100.0 * gbps / peak).abs() < 1e-6 * pct.max(1.0));
    }
    let p = &r["prompts"]["short"];
    assert_eq!(p["achieved_gbps"]["mean"], r["achieved_gbps"]["mean"]);
    assert!(r["roofline_tps"].as_f64().is_some_and(|t| t > 0.0));

    let off = real_run(dir.path(), "unprobed.json", &["--roofline-probe", "false"]);
    let r = &off["results"]["llamacpp"]["roofline"];
    assert!(r["peak"]["cpu"]["measured_gbps"].is_null());
    let why = r["peak"]["cpu"]["measured_reason"]
        .as_str()
        .expect("a reason");
    assert!(why.contains("inproc-bench probe --threads 1"), "{why}");
    assert!(r["pct_of_measured_peak"].is_null());
    assert!(r["achieved_gbps"]["mean"].as_f64().is_some_and(|g| g > 0.0));
}

#[test]
fn without_a_model_file_the_roofline_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("mock.json");
    let out = common::run(&[
        "--engine",
        "mock",
        "--warmup",
        "0",
        "--runs",
        "1",
        "-n",
        "4",
        "--prompt",
        "short",
        "-q",
        "-o",
        out_file.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", common::show(&out));
    let v = common::read_json(&out_file);
    let (_, e) = v["results"]
        .as_object()
        .and_then(|m| m.iter().next())
        .expect("an entry");
    let r = &e["roofline"];
    assert!(
        r["reason"]
            .as_str()
            .is_some_and(|s| s.contains("not a file here")),
        "{r}"
    );
    assert!(r["bytes_per_token"].is_null() && r["achieved_gbps"].is_null());
    assert!(e["prompts"]["short"]["runs"][0].get("roofline").is_none());
}
