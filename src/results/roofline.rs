//! The `roofline` figures of a results entry and of each measured run: bytes read per generated
//! token, the bandwidth a run achieved with them, and the machine's peak. Decode is memory-bound,
//! so `tokens/s ≤ peak bandwidth ÷ bytes per token`; `pct_of_*_peak` says how close a run came.
//!
//! Bytes are per generated token; GB/s are 10⁹ bytes per second. A figure that cannot be had is
//! `null` and a `reason` (or `*_reason`) says why.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::measure::Summary;

/// Bytes in CPU memory, in GPU memory and both.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceBytes {
    /// In CPU (host) memory.
    pub cpu: f64,
    /// In GPU memory.
    pub gpu: f64,
    /// Both.
    pub total: f64,
}

/// Bytes one generated token reads.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenBytes {
    /// Weights (the token-embedding table one row, or whole when it is the output head too).
    pub weights: f64,
    /// KV cache at the depth.
    pub kv: f64,
    /// Both.
    pub total: f64,
}

/// A device's peak bandwidth, measured and from its specification.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DevicePeak {
    /// Measured (CPU: `inproc-bench probe`'s best repetition; GPU: a device-to-device copy).
    pub measured_gbps: Option<f64>,
    /// How it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_source: Option<String>,
    /// Why it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_reason: Option<String>,
    /// From the specification (GPU: NVML memory clock × bus width × 2).
    pub spec_gbps: Option<f64>,
    /// Where it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_source: Option<String>,
    /// Why there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_reason: Option<String>,
}

/// Peaks of the devices the entry's bytes live on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Peaks {
    /// CPU memory; absent when no byte is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<DevicePeak>,
    /// GPU memory; absent when no byte is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<DevicePeak>,
}

/// Where the model's bytes are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Placement {
    /// `cpu`, `gpu` or `cpu+gpu`.
    pub device: String,
    /// `--n-gpu-layers` as given (llama.cpp), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_gpu_layers: Option<i64>,
    /// Layers in GPU memory, of `n_layer + 1` (the output layer counts as one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_layers: Option<u32>,
    /// Repeating layers of the model.
    pub n_layer: u32,
    /// Why it is so (e.g. a CPU-only build offloads nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The figures of one prompt (all its measured runs), or of the whole entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Figures {
    /// Mean KV depth over the decoded tokens: prompt tokens + half the generated ones, averaged
    /// over the runs.
    pub mean_depth: Option<f64>,
    /// Bytes per generated token at that depth, averaged over the runs.
    pub bytes_per_token: Option<TokenBytes>,
    /// Bytes per token × decode rate, per run (GB/s).
    pub achieved_gbps: Option<Summary>,
    /// Decode rate at the measured peak: `1 / Σ_device bytes_device / peak_device`, at the mean
    /// depth (tokens/s).
    pub roofline_tps: Option<f64>,
    /// Decode rate ÷ the rate at the measured peak, per run (%).
    pub pct_of_measured_peak: Option<Summary>,
    /// Decode rate ÷ the rate at the specified peak, per run (%).
    pub pct_of_spec_peak: Option<Summary>,
}

/// The `roofline` object of a results entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Roofline {
    /// Why the figures are `null`, when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `gguf` (tensor infos of the GGUF file) or `safetensors` (headers of a Hugging Face folder).
    pub source: Option<String>,
    /// The model file or folder the bytes come from.
    pub model_file: Option<String>,
    /// Bytes of all tensors as the engine holds them.
    pub model_bytes: Option<u64>,
    /// Whether the output head is the token-embedding table.
    pub tied_output: Option<bool>,
    /// Where the bytes are.
    pub placement: Option<Placement>,
    /// Weight bytes each generated token reads, by device.
    pub weights_bytes_per_token: Option<DeviceBytes>,
    /// KV cache bytes read per cached position (all layers, K and V), by device.
    pub kv_bytes_per_position: Option<DeviceBytes>,
    /// KV cache types, `k/v` (`f16/f16` is llama.cpp's default).
    pub kv_cache_type: Option<String>,
    /// How many KV positions a token reads at a depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_positions_read: Option<String>,
    /// The devices' peaks.
    pub peak: Peaks,
    /// Figures over every measured run of every prompt.
    #[serde(flatten)]
    pub all: Figures,
    /// Figures per prompt.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub prompts: IndexMap<String, Figures>,
    /// What the figures leave out or assume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The roofline figures of one measured run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct RunRoofline {
    /// Prompt tokens + half the generated tokens.
    pub mean_depth: f64,
    /// Bytes per generated token at the KV positions this run's decoded tokens read.
    pub bytes_per_token: TokenBytes,
    /// Bytes per token × decode rate (GB/s).
    pub achieved_gbps: Option<f64>,
    /// Decode rate ÷ the rate at the measured peak (%).
    pub pct_of_measured_peak: Option<f64>,
    /// Decode rate ÷ the rate at the specified peak (%).
    pub pct_of_spec_peak: Option<f64>,
}
