//! The GGUF reader: a small mixture-of-experts GGUF this test writes (its bytes per token against a
//! hand count, per-layer KV heads, placement), malformed files with a clear error each, and
//! truncated and damaged files, which must give errors, never a panic.

mod common;

use std::io::Cursor;

use inproc_bench::gguf::ggml_type::GgmlType;
use inproc_bench::gguf::{self, GgufError, GgufFile};
use inproc_bench::roofline::model::{ModelBytes, Placement};

fn ty(name: &str) -> GgmlType {
    GgmlType::from_name(name).expect("a known type")
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
