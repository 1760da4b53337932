//! Bytes a decoded token reads, from a model's real tensors: the weights by where llama.cpp puts
//! them (input, layer N, output), the KV cache per cached position, and their split between CPU
//! and GPU memory for a given `--n-gpu-layers`.
//!
//! What one decoded token reads (single sequence, batch of one):
//! - every weight tensor once, except the token-embedding table, of which one row is read;
//! - when the output head is tied to the embedding table (no `output.weight`), the whole table
//!   once more, for the logits;
//! - of Mixture-of-Experts tensors (`*_exps`), the share `expert_used_count / expert_count`;
//! - of the KV cache, every cached position of every attention layer, K and V.
//!
//! Activations, logits and the sampler's reads are left out: they are small beside the weights.

use crate::gguf::ggml_type::GgmlType;
use crate::gguf::GgufFile;

/// Where llama.cpp keeps a tensor (`llama-model.cpp`, `load_tensors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The input layer (token embeddings): always in CPU memory.
    Input,
    /// Repeating layer N (`blk.N.*`).
    Layer(u32),
    /// The output layer (output norm and head), placed as a layer numbered `n_layer`.
    Output,
}

/// Bytes read per token from one place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlacedBytes {
    /// Where.
    pub place: Place,
    /// Bytes read per decoded token (fractional for expert tensors).
    pub bytes: f64,
}

/// KV cache of one layer: elements per cached position for K and for V.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLayer {
    /// K elements per position (`n_head_kv × key_length`).
    pub k: u64,
    /// V elements per position (`n_head_kv × value_length`).
    pub v: u64,
}

/// What a model's tensors say about the bytes a token reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBytes {
    /// `gguf` or `safetensors`.
    pub source: &'static str,
    /// Architecture (`llama`, `qwen3`, …).
    pub architecture: Option<String>,
    /// Repeating layers.
    pub n_layer: u32,
    /// Bytes of every tensor (the whole model, as stored).
    pub model_bytes: u64,
    /// Whether the output head is the token-embedding table.
    pub tied_output: bool,
    /// Bytes read per decoded token, by place.
    pub reads: Vec<PlacedBytes>,
    /// KV cache per layer; `None` where it cannot be computed (with a note).
    pub kv: Option<Vec<KvLayer>>,
    /// What the figures leave out or assume.
    pub notes: Vec<String>,
}

/// Why a model's bytes cannot be computed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

fn place_of(name: &str, n_layer: u32) -> Place {
    if name.starts_with("token_embd") || name.starts_with("position_embd") {
        return Place::Input;
    }
    let layer = name
        .strip_prefix("blk.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|n| n.parse::<u32>().ok());
    match layer {
        // Blocks past the repeating layers (e.g. next-token-prediction heads) go with the output.
        Some(n) if n < n_layer => Place::Layer(n),
        _ => Place::Output,
    }
}

impl ModelBytes {
    /// The figures of a GGUF model.
    pub fn from_gguf(g: &GgufFile) -> Result<ModelBytes, ModelError> {
        let arch = g
            .architecture()
            .ok_or_else(|| ModelError("the GGUF has no general.architecture".into()))?
            .to_string();
        let key = |k: &str| format!("{arch}.{k}");
        let n_layer = g
            .get_u64(&key("block_count"))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ModelError(format!("the GGUF has no {}", key("block_count"))))?;
        let mut notes = Vec::new();
        let experts = match (
            g.get_u64(&key("expert_count")),
            g.get_u64(&key("expert_used_count")),
        ) {
            (Some(n), Some(used)) if n > 0 && used <= n => {
                notes.push(format!(
                    "expert tensors (*_exps) count {used} of {n} experts per token"
                ));
                used as f64 / n as f64
            }
            _ => 1.0,
        };
        let tied_output = g.tensor("output.weight").is_none();
        let mut reads = Vec::new();
        for t in &g.tensors {
            let place = place_of(&t.name, n_layer);
            let bytes = if place == Place::Input && t.name.ends_with(".weight") {
                t.row_bytes() as f64
            } else if t.name.contains("_exps") {
                t.n_bytes as f64 * experts
            } else {
                t.n_bytes as f64
            };
            reads.push(PlacedBytes { place, bytes });
            if tied_output && t.name == "token_embd.weight" {
                reads.push(PlacedBytes {
                    place: Place::Output,
                    bytes: t.n_bytes as f64,
                });
                notes.push("output head tied to token_embd: the whole table is read for the logits, one more row for the input".into());
            }
        }
        let kv = kv_layers(g, &arch, n_layer, &mut notes);
        Ok(ModelBytes {
            source: "gguf",
            architecture: Some(arch),
            n_layer,
            model_bytes: g.tensors.iter().map(|t| t.n_bytes).sum(),
            tied_output,
            reads,
            kv,
            notes,
        })
    }

    /// Weight bytes per decoded token, split by where `placement` puts each place.
    pub fn weights(&self, placement: &Placement) -> DeviceBytes {
        let mut out = DeviceBytes::default();
        for r in &self.reads {
            out.add(placement.on_gpu(r.place, self.n_layer), r.bytes);
        }
        out
    }

    /// KV cache bytes per cached position, split by device (each layer's cache lives with the
    /// layer), for K and V stored as `k_type` and `v_type`; `None` when the layout is unknown.
    pub fn kv_per_position(
        &self,
        placement: &Placement,
        k_type: GgmlType,
        v_type: GgmlType,
    ) -> Option<DeviceBytes> {
        let mut out = DeviceBytes::default();
        for (il, l) in self.kv.as_ref()?.iter().enumerate() {
            let bytes = row_bytes_f(k_type, l.k) + row_bytes_f(v_type, l.v);
            let il = u32::try_from(il).unwrap_or(u32::MAX);
            out.add(placement.on_gpu(Place::Layer(il), self.n_layer), bytes);
        }
        Some(out)
    }
}

/// Bytes of `elements` elements of `t` (fractional where a row is not whole blocks).
fn row_bytes_f(t: GgmlType, elements: u64) -> f64 {
    elements as f64 * t.type_size as f64 / t.block_size as f64
}

/// KV elements per position and layer from the GGUF hyperparameters.
fn kv_layers(
    g: &GgufFile,
    arch: &str,
    n_layer: u32,
    notes: &mut Vec<String>,
) -> Option<Vec<KvLayer>> {
    let key = |k: &str| format!("{arch}.{k}");
    let n = n_layer as usize;
    if g.get(&key("attention.kv_lora_rank")).is_some() {
        notes.push("multi-head latent attention: the KV cache layout is not modeled".into());
        return None;
    }
    if g.metadata.keys().any(|k| k.starts_with(&key("ssm."))) {
        notes.push("recurrent (SSM) layers: their state is not counted as KV cache".into());
    }
    if g.get(&key("attention.sliding_window")).is_some() {
        notes.push("sliding-window layers read at most their window; counted at full depth (an upper bound)".into());
    }
    let Some(n_head) = g.get_per_layer(&key("attention.head_count"), n) else {
        notes.push(format!(
            "no {}: KV cache bytes unknown",
            key("attention.head_count")
        ));
        return None;
    };
    let n_head_kv = g
        .get_per_layer(&key("attention.head_count_kv"), n)
        .unwrap_or_else(|| n_head.clone());
    let n_embd = g.get_u64(&key("embedding_length"));
    let max_head = n_head.iter().copied().max().unwrap_or(0);
    let default_dim = n_embd.filter(|_| max_head > 0).map(|e| e / max_head);
    let k_len = g.get_u64(&key("attention.key_length")).or(default_dim);
    let v_len = g.get_u64(&key("attention.value_length")).or(default_dim);
    let (Some(k_len), Some(v_len)) = (k_len, v_len) else {
        notes.push("no head dimension in the GGUF: KV cache bytes unknown".into());
        return None;
    };
    Some(
        n_head_kv
            .iter()
            .map(|&h| KvLayer {
                k: h * k_len,
                v: h * v_len,
            })
            .collect(),
    )
}

/// Bytes in CPU and in GPU memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeviceBytes {
    /// In CPU (host) memory.
    pub cpu: f64,
    /// In GPU memory.
    pub gpu: f64,
}

impl DeviceBytes {
    fn add(&mut self, gpu: bool, bytes: f64) {
        if gpu {
            self.gpu += bytes;
        } else {
            self.cpu += bytes;
        }
    }

    /// Both together.
    pub fn total(&self) -> f64 {
        self.cpu + self.gpu
    }

    /// Each part times `k`.
    pub fn scaled(&self, k: f64) -> DeviceBytes {
        DeviceBytes {
            cpu: self.cpu * k,
            gpu: self.gpu * k,
        }
    }
}

/// Where llama.cpp puts the layers for `--n-gpu-layers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Whether a GPU backend is there to offload to (llama.cpp offloads nothing without one).
    pub gpu_available: bool,
    /// `--n-gpu-layers` as given; negative means all.
    pub n_gpu_layers: i64,
    /// Whether the input layer is in GPU memory too (vLLM on a GPU; never llama.cpp).
    pub input_on_gpu: bool,
}

impl Placement {
    /// Everything in CPU memory.
    pub const CPU: Placement = Placement {
        gpu_available: false,
        n_gpu_layers: 0,
        input_on_gpu: false,
    };

    /// Everything in GPU memory (vLLM on a GPU).
    pub const GPU: Placement = Placement {
        gpu_available: true,
        n_gpu_layers: -1,
        input_on_gpu: true,
    };

    /// llama.cpp with `n_gpu_layers`, offloading when a GPU backend is there.
    pub fn llamacpp(gpu_available: bool, n_gpu_layers: i64) -> Placement {
        Placement {
            gpu_available,
            n_gpu_layers,
            input_on_gpu: false,
        }
    }

    /// Whether `place` is in GPU memory, by llama.cpp's rule (`llama-model.cpp`, b11434): the
    /// output layer counts as layer `n_layer`, `-1` means `n_layer + 1`, and the last
    /// `n_gpu_layers` of the `n_layer + 1` go to the GPU, so `--n-gpu-layers 1` offloads the
    /// output head alone and `n_layer` leaves layer 0 on the CPU. The input layer stays on the CPU.
    pub fn on_gpu(&self, place: Place, n_layer: u32) -> bool {
        if !self.gpu_available {
            return false;
        }
        let all = i64::from(n_layer) + 1;
        // -1 (all) as the settings table defines it; `all` is positive.
        let ngl = crate::settings::gpu_layers(self.n_gpu_layers, all.unsigned_abs()) as i64;
        let il = match place {
            Place::Input => return self.input_on_gpu,
            Place::Layer(n) => i64::from(n),
            Place::Output => i64::from(n_layer),
        };
        il >= all - ngl
    }

    /// Layers (of `n_layer + 1`, the output counted as one) in GPU memory.
    pub fn gpu_layers(&self, n_layer: u32) -> u32 {
        (0..=n_layer)
            .filter(|&il| {
                let place = if il == n_layer {
                    Place::Output
                } else {
                    Place::Layer(il)
                };
                self.on_gpu(place, n_layer)
            })
            .count() as u32
    }
}

/// KV cache cells llama.cpp reads per decoded token when `used` cells hold positions: the used
/// cells rounded up to a multiple of 256, at least 256, at most the cache size
/// (`llama_kv_cache::get_n_kv`, b11434), so that the graph keeps its shape between tokens.
pub fn llamacpp_cells_read(used: u64, cache_cells: u64) -> u64 {
    let padded = used.div_ceil(256).max(1) * 256;
    padded.min(cache_cells.max(1))
}
