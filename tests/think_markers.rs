//! Think markers in-process, on a GGUF this test writes: a tiny llama whose vocabulary holds
//! `<think>` and `</think>` and whose weights make greedy decoding follow a script (every layer
//! adds nothing, so each next token is a fixed function of the current one): `<think>`, two
//! thoughts, `</think>`, a new line, then the answer. The real llama.cpp engine finds the markers
//! from the vocabulary and template, and the run records TTFO at the first answer token; with
//! `--thinking off` the template closes the block and the model answers at once.

mod common;

use std::path::Path;

use common::*;

/// Appends a GGUF string.
fn gstr(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// GGUF v3 metadata and F32 tensors.
#[derive(Default)]
struct Gguf {
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, Vec<f32>)>,
}

impl Gguf {
    fn key(&mut self, k: &str, ty: u32) {
        gstr(&mut self.kv, k);
        self.kv.extend(ty.to_le_bytes());
        self.n_kv += 1;
    }
    fn u32(&mut self, k: &str, v: u32) {
        self.key(k, 4);
        self.kv.extend(v.to_le_bytes());
    }
    fn f32(&mut self, k: &str, v: f32) {
        self.key(k, 6);
        self.kv.extend(v.to_le_bytes());
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.key(k, 7);
        self.kv.push(u8::from(v));
    }
    fn string(&mut self, k: &str, v: &str) {
        self.key(k, 8);
        gstr(&mut self.kv, v);
    }
    fn array(&mut self, k: &str, elem: u32, n: usize, write: impl FnOnce(&mut Vec<u8>)) {
        self.key(k, 9);
        self.kv.extend(elem.to_le_bytes());
        self.kv.extend((n as u64).to_le_bytes());
        write(&mut self.kv);
    }
    fn tensor(&mut self, name: &str, dims: &[u64], data: Vec<f32>) {
        assert_eq!(dims.iter().product::<u64>() as usize, data.len(), "{name}");
        self.tensors.push((name.into(), dims.to_vec(), data));
    }
    fn bytes(&self) -> Vec<u8> {
        const ALIGN: usize = 32;
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        let mut offset = 0usize;
        for (name, dims, data) in &self.tensors {
            gstr(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(0u32.to_le_bytes()); // F32
            out.extend((offset as u64).to_le_bytes());
            offset += (data.len() * 4).div_ceil(ALIGN) * ALIGN;
        }
        while !out.len().is_multiple_of(ALIGN) {
            out.push(0);
        }
        for (_, _, data) in &self.tensors {
            let start = out.len();
            for x in data {
                out.extend(x.to_le_bytes());
            }
            while !(out.len() - start).is_multiple_of(ALIGN) {
                out.push(0);
            }
        }
        out
    }
}

const D: usize = 32;

/// Writes the scripted model; returns its path.
fn scripted_model(dir: &Path) -> std::path::PathBuf {
    const NORMAL: i32 = 1;
    const UNKNOWN: i32 = 2;
    const CONTROL: i32 = 3;
    const USER: i32 = 4;
    const BYTE: i32 = 6;
    let mut tokens: Vec<(String, i32)> = vec![
        ("<unk>".into(), UNKNOWN),
        ("<s>".into(), CONTROL),
        ("</s>".into(), CONTROL),
        ("<|user|>".into(), CONTROL),
        ("<|assistant|>".into(), CONTROL),
        ("<think>".into(), USER),
        ("</think>".into(), USER),
    ];
    tokens.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), BYTE)));
    for piece in ["▁Hi", "Hi", "▁hmm", "▁so", "▁Yes", "."] {
        tokens.push((piece.into(), NORMAL));
    }
    let id = |t: &str| tokens.iter().position(|(p, _)| p == t).unwrap();
    let newline = id("<0x0A>");
    // The script: each token's successor under greedy decoding.
    let script = [
        (id("<|assistant|>"), id("<think>")),
        (id("<think>"), id("▁hmm")),
        (id("▁hmm"), id("▁so")),
        (id("▁so"), id("</think>")),
        (id("</think>"), newline),
        (newline, id("▁Yes")),
        (id("▁Yes"), id(".")),
        (id("."), id(".")),
    ];
    let n_vocab = tokens.len();
    let mut embd = vec![0f32; n_vocab * D];
    let mut output = vec![0f32; n_vocab * D];
    for (basis, &(from, to)) in script.iter().enumerate() {
        embd[from * D + basis] = 1.0;
        output[to * D + basis] = 1.0;
    }
    let mut g = Gguf::default();
    g.string("general.architecture", "llama");
    g.string("general.name", "inproc-bench scripted thinker");
    g.u32("general.file_type", 0);
    g.u32("llama.context_length", 256);
    g.u32("llama.embedding_length", D as u32);
    g.u32("llama.block_count", 1);
    g.u32("llama.feed_forward_length", 64);
    g.u32("llama.attention.head_count", 4);
    g.u32("llama.attention.head_count_kv", 4);
    g.f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    g.u32("llama.rope.dimension_count", (D / 4) as u32);
    g.string("tokenizer.ggml.model", "llama");
    g.array("tokenizer.ggml.tokens", 8, n_vocab, |o| {
        for (t, _) in &tokens {
            gstr(o, t);
        }
    });
    g.array("tokenizer.ggml.scores", 6, n_vocab, |o| {
        for (t, _) in &tokens {
            o.extend((t.chars().count() as f32).to_le_bytes());
        }
    });
    g.array("tokenizer.ggml.token_type", 5, n_vocab, |o| {
        for (_, ty) in &tokens {
            o.extend(ty.to_le_bytes());
        }
    });
    g.u32("tokenizer.ggml.unknown_token_id", 0);
    g.u32("tokenizer.ggml.bos_token_id", 1);
    g.u32("tokenizer.ggml.eos_token_id", 2);
    g.bool("tokenizer.ggml.add_bos_token", true);
    g.bool("tokenizer.ggml.add_eos_token", false);
    g.string(
        "tokenizer.chat_template",
        "{% for m in messages %}<|user|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% if enable_thinking is false %}<think></think>{% endif %}{% endif %}",
    );
    let ones = vec![1f32; D];
    g.tensor("token_embd.weight", &[D as u64, n_vocab as u64], embd);
    g.tensor("output_norm.weight", &[D as u64], ones.clone());
    g.tensor("output.weight", &[D as u64, n_vocab as u64], output);
    g.tensor("blk.0.attn_norm.weight", &[D as u64], ones.clone());
    for name in ["attn_q", "attn_k", "attn_v", "attn_output"] {
        g.tensor(
            &format!("blk.0.{name}.weight"),
            &[D as u64, D as u64],
            vec![0.0; D * D],
        );
    }
    g.tensor("blk.0.ffn_norm.weight", &[D as u64], ones);
    g.tensor("blk.0.ffn_gate.weight", &[D as u64, 64], vec![0.0; D * 64]);
    g.tensor("blk.0.ffn_up.weight", &[D as u64, 64], vec![0.0; D * 64]);
    g.tensor("blk.0.ffn_down.weight", &[64, D as u64], vec![0.0; D * 64]);
    let path = dir.join("thinker.gguf");
    std::fs::write(&path, g.bytes()).unwrap();
    path
}

fn run_model(model: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--model",
        s(model),
        "--prompt-file",
        "PROMPTS",
        "--warmup",
        "0",
        "--runs",
        "2",
        "--threads",
        "1",
        "--ctx-size",
        "128",
        "--roofline-probe",
        "false",
        "--quiet",
    ];
    let prompts = out.with_extension("prompts.json");
    std::fs::write(&prompts, r#"[{"name":"hi","prompt":"Hi","max_tokens":8}]"#).unwrap();
    args[3] = s(&prompts);
    args.extend_from_slice(extra);
    let (o, j) = run_to(out, &args);
    assert!(o.status.success(), "{}", show(&o));
    j["results"]["llamacpp"].clone()
}

#[test]
fn the_engine_finds_the_markers_and_times_the_first_answer_token() {
    let dir = tempfile::tempdir().unwrap();
    let model = scripted_model(dir.path());
    let e = run_model(&model, &dir.path().join("on.json"), &[]);
    assert_eq!(
        e["details"]["think_markers"],
        serde_json::json!(["<think>", "</think>"])
    );
    let p = &e["prompts"]["hi"];
    let text = p["sample_output"].as_str().unwrap();
    assert!(
        text.contains("hmm so") && text.ends_with("Yes.."),
        "{text:?}"
    );
    for r in p["runs"].as_array().unwrap() {
        // <think> hmm so </think> and the new line, then Yes . .
        assert_eq!(r["reasoning_tokens"], 5, "{r}");
        assert_eq!(r["answer_tokens"], 3, "{r}");
        assert!(r["ttfo_ms"].as_f64().unwrap() > r["ttft_ms"].as_f64().unwrap());
    }
    assert_eq!(p["ttfo_missing_runs"], 0);

    // Thinking off: the template closes the block, the model answers at once.
    let e = run_model(&model, &dir.path().join("off.json"), &["--thinking", "off"]);
    let p = &e["prompts"]["hi"];
    assert!(p["prompt_text"]
        .as_str()
        .unwrap()
        .ends_with("<|assistant|><think></think>"));
    assert_eq!(
        e["details"]["chat_template_kwargs"],
        serde_json::json!({"enable_thinking": false})
    );
    for r in p["runs"].as_array().unwrap() {
        assert_eq!(
            (r["reasoning_tokens"].as_u64(), r["answer_tokens"].as_u64()),
            (Some(0), Some(8))
        );
        assert_eq!(r["ttfo_ms"], r["ttft_ms"]);
    }

    // A budget that ends inside the reasoning: no TTFO, and why.
    let e = run_model(
        &model,
        &dir.path().join("short.json"),
        &["--max-tokens", "3"],
    );
    let p = &e["prompts"]["hi"];
    for r in p["runs"].as_array().unwrap() {
        assert!(r.get("ttfo_ms").is_none(), "{r}");
        assert!(r["ttfo_note"].as_str().unwrap().contains("did not end"));
    }
    assert_eq!(p["ttfo_missing_runs"], 2);
}
