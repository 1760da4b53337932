//! The bandwidth roofline: bytes per token of the test models against hand-computed counts, the
//! GGUF reader on a GGUF this test writes and on truncated and damaged files, llama.cpp's layer
//! placement, the `probe` command, and the `roofline` object of a real run.

mod common;

use std::io::Cursor;
use std::path::Path;

use inproc_bench::roofline::ggml_type::GgmlType;
use inproc_bench::roofline::gguf::{self, GgufError, GgufFile};
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

// ---- a tiny GGUF written here ----------------------------------------------------------------

/// Builds a GGUF v3 file: metadata entries (already encoded: key, type, value) and tensors.
struct Writer {
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, u32, u64)>,
}

fn gstr(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Writer {
    fn new() -> Self {
        Writer {
            kv: Vec::new(),
            n_kv: 0,
            tensors: Vec::new(),
        }
    }
    fn u32(mut self, key: &str, v: u32) -> Self {
        gstr(&mut self.kv, key);
        self.kv.extend(4u32.to_le_bytes());
        self.kv.extend(v.to_le_bytes());
        self.n_kv += 1;
        self
    }
    fn string(mut self, key: &str, v: &str) -> Self {
        gstr(&mut self.kv, key);
        self.kv.extend(8u32.to_le_bytes());
        gstr(&mut self.kv, v);
        self.n_kv += 1;
        self
    }
    fn i32_array(mut self, key: &str, v: &[i32]) -> Self {
        gstr(&mut self.kv, key);
        self.kv.extend(9u32.to_le_bytes());
        self.kv.extend(5u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        for x in v {
            self.kv.extend(x.to_le_bytes());
        }
        self.n_kv += 1;
        self
    }
    fn strings(mut self, key: &str, v: &[&str]) -> Self {
        gstr(&mut self.kv, key);
        self.kv.extend(9u32.to_le_bytes());
        self.kv.extend(8u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        for s in v {
            gstr(&mut self.kv, s);
        }
        self.n_kv += 1;
        self
    }
    /// A tensor of `bytes` bytes of data (the size its type and shape give).
    fn tensor(mut self, name: &str, dims: &[u64], type_id: u32, bytes: u64) -> Self {
        self.tensors
            .push((name.into(), dims.to_vec(), type_id, bytes));
        self
    }
    fn build(&self, alignment: u64) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        let mut offset = 0u64;
        for (name, dims, t, bytes) in &self.tensors {
            gstr(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.to_le_bytes());
            out.extend(offset.to_le_bytes());
            offset = (offset + bytes).div_ceil(alignment) * alignment;
        }
        out.resize(
            (out.len() as u64).div_ceil(alignment) as usize * alignment as usize,
            0,
        );
        out.resize(out.len() + offset as usize, 0);
        out
    }
}

/// A two-layer mixture-of-experts model with an untied head, per-layer KV heads and a type of
/// each family. Sizes by hand (elements / block × bytes per block):
fn tiny() -> Writer {
    Writer::new()
        .string("general.architecture", "llama")
        .u32("general.alignment", 64)
        .u32("llama.block_count", 2)
        .u32("llama.embedding_length", 256)
        .u32("llama.attention.head_count", 4)
        .i32_array("llama.attention.head_count_kv", &[2, 1])
        .u32("llama.attention.key_length", 16)
        .u32("llama.attention.value_length", 16)
        .u32("llama.expert_count", 4)
        .u32("llama.expert_used_count", 2)
        .strings("tokenizer.ggml.tokens", &["a", "b", "<s>"])
        // q4_K 256 in 144: 100 rows of one block = 14 400 (one row 144)
        .tensor("token_embd.weight", &[256, 100], 12, 14_400)
        // q6_K 256 in 210: 100 × 210 = 21 000
        .tensor("output.weight", &[256, 100], 14, 21_000)
        .tensor("output_norm.weight", &[256], 0, 1_024)
        // f16: 256 × 256 × 2 = 131 072
        .tensor("blk.0.attn_q.weight", &[256, 256], 1, 131_072)
        // bf16: 256 × 2 = 512
        .tensor("blk.0.attn_norm.weight", &[256], 30, 512)
        // q8_0 32 in 34: 256×64×4 / 32 × 34 = 69 632, half of the experts per token = 34 816
        .tensor("blk.0.ffn_gate_exps.weight", &[256, 64, 4], 8, 69_632)
        // iq4_xs 256 in 136: 32 × 136 = 4 352
        .tensor("blk.1.attn_k.weight", &[256, 32], 23, 4_352)
        // q4_0 32 in 18: 64×256×4 / 32 × 18 = 36 864, half per token = 18 432
        .tensor("blk.1.ffn_down_exps.weight", &[64, 256, 4], 2, 36_864)
        // q5_K 256 in 176: 64 × 176 = 11 264 (a shared expert: read whole)
        .tensor("blk.1.ffn_up_shexp.weight", &[256, 64], 13, 11_264)
}

const TINY_FILE: u64 = 14_400 + 21_000 + 1_024 + 131_072 + 512 + 69_632 + 4_352 + 36_864 + 11_264;
const TINY_OUTPUT: f64 = 21_000.0 + 1_024.0;
const TINY_LAYER1: f64 = 4_352.0 + 18_432.0 + 11_264.0;
const TINY_PER_TOKEN: f64 = 144.0 + TINY_OUTPUT + 131_072.0 + 512.0 + 34_816.0 + TINY_LAYER1;

fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    gguf::parse(Cursor::new(bytes), bytes.len() as u64)
}

#[test]
fn a_tiny_gguf_gives_the_hand_counted_bytes() {
    let bytes = tiny().build(64);
    let g = parse(&bytes).expect("reads");
    assert_eq!(g.data_offset % 64, 0);
    assert_eq!(g.tensors.iter().map(|t| t.n_bytes).sum::<u64>(), TINY_FILE);
    assert_eq!(
        g.get_per_layer("llama.attention.head_count_kv", 2),
        Some(vec![2, 1])
    );
    let m = ModelBytes::from_gguf(&g).expect("bytes");
    assert!(!m.tied_output);
    assert_eq!(m.model_bytes, TINY_FILE);
    assert_eq!(m.weights(&Placement::CPU).cpu, TINY_PER_TOKEN);
    assert_eq!(TINY_PER_TOKEN, 222_616.0);
    // KV per position: layer 0 2 heads, layer 1 one, of 16 for K and for V.
    let kv = |k, v| {
        m.kv_per_position(&Placement::CPU, ty(k), ty(v))
            .expect("KV")
            .cpu
    };
    assert_eq!(kv("f16", "f16"), (2.0 + 1.0) * 16.0 * 2.0 * 2.0);
    assert_eq!(kv("q8_0", "f16"), 34.0 + 64.0 + 17.0 + 32.0);
    let gpu = |ngl| m.weights(&Placement::llamacpp(true, ngl)).gpu;
    assert_eq!(gpu(1), TINY_OUTPUT);
    assert_eq!(gpu(2), TINY_OUTPUT + TINY_LAYER1);
    assert_eq!(gpu(-1), TINY_PER_TOKEN - 144.0);
}

#[test]
fn bad_gguf_files_are_errors_that_say_what_is_wrong() {
    let err = |bytes: &[u8]| parse(bytes).expect_err("refused").to_string();
    assert!(err(b"").contains("not a GGUF file"));
    assert!(err(b"GGML\x03\0\0\0").contains("not a GGUF file"));
    let mut v1 = tiny().build(64);
    v1[4] = 1;
    assert!(err(&v1).contains("version 1"));
    let mut be = tiny().build(64);
    be[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert!(err(&be).contains("big-endian"));
    let unknown = tiny().tensor("blk.1.x.weight", &[32], 4, 18).build(64);
    assert!(err(&unknown).contains("blk.1.x.weight has ggml type 4"));
    let ragged = tiny().tensor("blk.1.y.weight", &[100], 12, 144).build(64);
    assert!(err(&ragged).contains("not a whole number of q4_K blocks"));
    let five = tiny()
        .tensor("blk.1.z.weight", &[1, 1, 1, 1, 1], 0, 4)
        .build(64);
    assert!(err(&five).contains("5 dimensions"));
    let full = tiny().build(64);
    let cut = &full[..full.len() - 1];
    assert!(err(cut).contains("the data of tensor blk.1.ffn_up_shexp.weight"));
    assert!(err(&full[..30]).contains("truncated"));
}

#[test]
fn truncated_and_damaged_files_never_panic() {
    // Every prefix of the real model's header, metadata and tensor infos is refused.
    let path = common::model();
    let g = GgufFile::open(&path).expect("reads");
    let all = std::fs::read(&path).expect("model");
    let head = &all[..g.data_offset as usize + 4096];
    let step = (head.len() / 300).max(1);
    for len in (0..64).chain((64..head.len()).step_by(step)) {
        assert!(
            parse(&head[..len]).is_err(),
            "a prefix of {len} bytes was accepted"
        );
    }
    // Damaged bytes (a fixed pseudo-random sequence) in the tiny file: errors or a reading,
    // never a panic or a huge allocation.
    let clean = tiny().build(64);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let mut bytes = clean.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        let _ = parse(&bytes);
    }
    for n in [0usize, 7, 100, 5000] {
        let random: Vec<u8> = (0..n).map(|_| next() as u8).collect();
        assert!(parse(&random).is_err());
        let mut magic = b"GGUF\x03\0\0\0".to_vec();
        magic.extend(&random);
        assert!(parse(&magic).is_err());
    }
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
}

#[test]
fn probe_refuses_nonsense_flags() {
    common::assert_clean_error(&common::run(&["probe", "--threads", "0"]), "--threads");
    common::assert_clean_error(&common::run(&["probe", "--size-mib", "0"]), "--size-mib");
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
