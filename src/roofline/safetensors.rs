//! Bytes per token of a Hugging Face model folder (vLLM's input): tensor shapes and dtypes from
//! the `*.safetensors` headers (an 8-byte little-endian length, then a JSON map of name →
//! `{dtype, shape, data_offsets}`), hyperparameters from `config.json`. Only the headers are read.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::model::{KvLayer, ModelBytes, ModelError, Place, PlacedBytes};

/// Headers larger than this are refused (real ones are a few MiB at most).
const MAX_HEADER: u64 = 256 << 20;

/// Bytes per element of a safetensors dtype.
pub fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => 1,
        _ => return None,
    })
}

/// Bytes per element of a torch dtype as vLLM reports it (`torch.bfloat16`, `bfloat16`, `half`).
pub fn torch_dtype_bytes(dtype: &str) -> Option<u64> {
    match dtype.trim_start_matches("torch.") {
        "float32" | "float" => Some(4),
        "float16" | "half" | "bfloat16" => Some(2),
        _ => None,
    }
}

/// One tensor of a header: name, element count, dtype.
type HeaderTensor = (String, u64, String);

fn header(path: &Path) -> Result<Vec<HeaderTensor>, ModelError> {
    let err = |what: String| ModelError(format!("{}: {what}", path.display()));
    let mut f = File::open(path).map_err(|e| err(e.to_string()))?;
    let file_len = f.metadata().map_err(|e| err(e.to_string()))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| err("too short for a safetensors header".into()))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER || len > file_len.saturating_sub(8) {
        return Err(err(format!("header of {len} bytes does not fit the file")));
    }
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)
        .map_err(|_| err("truncated header".into()))?;
    let map: serde_json::Map<String, Value> =
        serde_json::from_slice(&buf).map_err(|e| err(format!("header is not JSON: {e}")))?;
    let mut out = Vec::new();
    for (name, t) in map {
        if name == "__metadata__" {
            continue;
        }
        let dtype = t["dtype"].as_str().unwrap_or_default().to_string();
        let numel = t["shape"]
            .as_array()
            .ok_or_else(|| err(format!("tensor {name} has no shape")))?
            .iter()
            .try_fold(1u64, |acc, d| d.as_u64().and_then(|d| acc.checked_mul(d)))
            .ok_or_else(|| err(format!("tensor {name} has a bad shape")))?;
        out.push((name, numel, dtype));
    }
    Ok(out)
}

fn place_of(name: &str, n_layer: u32) -> Place {
    if name.ends_with("embed_tokens.weight") || name.ends_with("wte.weight") {
        return Place::Input;
    }
    let layer = name
        .split(".layers.")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .and_then(|n| n.parse::<u32>().ok());
    match layer {
        Some(n) if n < n_layer => Place::Layer(n),
        _ => Place::Output,
    }
}

/// The figures of the Hugging Face folder `dir`, with floating-point weights counted at
/// `runtime_elem_bytes` per element (the dtype the engine runs them in) when given.
pub fn from_hf_folder(
    dir: &Path,
    runtime_elem_bytes: Option<u64>,
) -> Result<ModelBytes, ModelError> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path)
        .map_err(|e| ModelError(format!("{}: {e}", cfg_path.display())))?;
    let full: Value = serde_json::from_str(&text)
        .map_err(|e| ModelError(format!("{}: {e}", cfg_path.display())))?;
    let cfg = full.get("text_config").unwrap_or(&full);
    let get = |k: &str| cfg.get(k).and_then(Value::as_u64);
    let n_layer = get("num_hidden_layers")
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ModelError("config.json has no num_hidden_layers".into()))?;
    let mut notes = Vec::new();
    if full.get("quantization_config").is_some() {
        notes.push("quantized checkpoint: weights counted as stored in the files".into());
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| ModelError(format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ModelError(format!(
            "{} holds no .safetensors file",
            dir.display()
        )));
    }
    let quantized = full.get("quantization_config").is_some();
    let mut tensors = Vec::new();
    for f in &files {
        tensors.extend(header(f)?);
    }
    let bytes_of = |numel: u64, dtype: &str| -> Result<f64, ModelError> {
        let stored = dtype_bytes(dtype)
            .ok_or_else(|| ModelError(format!("safetensors dtype {dtype} is not known")))?;
        let floating = dtype.starts_with("F") || dtype == "BF16";
        let per = match runtime_elem_bytes {
            Some(b) if floating && !quantized && stored >= 2 => b,
            _ => stored,
        };
        Ok((numel * per) as f64)
    };
    let has_head = tensors.iter().any(|t| t.0.ends_with("lm_head.weight"));
    let hidden = get("hidden_size").unwrap_or(0);
    let mut reads = Vec::new();
    let mut model_bytes = 0.0;
    for (name, numel, dtype) in &tensors {
        let bytes = bytes_of(*numel, dtype)?;
        model_bytes += bytes;
        let place = place_of(name, n_layer);
        if place == Place::Input {
            // One row per token: the table is vocab × hidden.
            let row = if hidden > 0 {
                bytes * hidden as f64 / *numel as f64
            } else {
                bytes
            };
            reads.push(PlacedBytes { place, bytes: row });
            if !has_head {
                reads.push(PlacedBytes {
                    place: Place::Output,
                    bytes,
                });
                notes.push(
                    "output head tied to the embeddings: the whole table is read for the logits"
                        .into(),
                );
            }
        } else {
            reads.push(PlacedBytes { place, bytes });
        }
    }
    let n_head = get("num_attention_heads");
    let n_head_kv = get("num_key_value_heads").or(n_head);
    let head_dim = get("head_dim").or_else(|| n_head.filter(|&h| h > 0).map(|h| hidden / h));
    let kv = match (n_head_kv, head_dim) {
        (Some(h), Some(d)) => Some(vec![KvLayer { k: h * d, v: h * d }; n_layer as usize]),
        _ => {
            notes.push("config.json lacks the attention heads: KV cache bytes unknown".into());
            None
        }
    };
    Ok(ModelBytes {
        source: "safetensors",
        architecture: cfg
            .get("model_type")
            .and_then(Value::as_str)
            .map(str::to_string),
        n_layer,
        model_bytes: model_bytes as u64,
        tied_output: !has_head,
        reads,
        kv,
        notes,
    })
}
