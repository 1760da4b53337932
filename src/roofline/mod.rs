//! The bandwidth roofline: bytes each generated token reads (from the model's real tensors: GGUF
//! tensor infos, or safetensors headers for Hugging Face folders), the bandwidth a run achieved
//! (bytes per token × decode rate), and the machine's peak (the `probe` read kernel on the CPU,
//! NVML and a device copy on a GPU). Decode is memory-bound: tokens/s ≤ peak ÷ bytes per token.
//!
//! - [`crate::gguf`] reads a GGUF file's header, metadata and tensor infos (and knows each ggml
//!   type's block size); [`safetensors`] reads Hugging Face folders.
//! - [`model`] turns tensors into bytes per token, split by device as llama.cpp places layers.
//! - [`probe`] is the CPU read kernel; [`probe_report`] is what `inproc-bench probe` prints.
//! - [`resolve`] reads an entry's model and settings; [`annotate`] fills in a results file's
//!   `roofline` figures after the runs.

pub mod annotate;
pub mod model;
pub mod probe;
pub mod probe_report;
pub mod resolve;
pub mod safetensors;

/// How a probe figure was measured, in words.
pub fn probe_source(p: &probe::ProbeResult) -> String {
    format!(
        "inproc-bench probe: read kernel, {} thread(s), {} MiB buffer, best of {} (median {:.2} GB/s)",
        p.threads,
        p.buffer_bytes >> 20,
        p.reps,
        p.median_gbps
    )
}
