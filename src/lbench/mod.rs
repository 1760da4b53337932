//! llama-bench's tests and its output, in-process: one record per test in llama-bench's own
//! field names (so the two tables can be laid side by side), the sweep of its comma lists, and
//! the comparison against the llama-bench binary built from the same source.

pub mod against;
pub mod output;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The fields every format carries, in llama-bench's order (its JSON has more; these are the ones
/// that describe this tool's tests). JSON and JSONL add `samples_ns` and `samples_ts`.
pub const FIELDS: &[&str] = &[
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "flash_attn",
    "n_prompt",
    "n_gen",
    "n_depth",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "runner",
];

/// One test's result, as llama-bench writes it (`runner` says which side measured it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub build_commit: String,
    pub build_number: u32,
    #[serde(default)]
    pub cpu_info: String,
    #[serde(default)]
    pub gpu_info: String,
    #[serde(default)]
    pub backends: String,
    pub model_filename: String,
    pub model_type: String,
    pub model_size: u64,
    pub model_n_params: u64,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub n_threads: u32,
    pub type_k: String,
    pub type_v: String,
    pub n_gpu_layers: i32,
    pub flash_attn: i32,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_depth: u32,
    pub test_time: String,
    pub avg_ns: u64,
    pub stddev_ns: u64,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<f64>,
    /// `inproc-bench` or `llama-bench`.
    #[serde(default)]
    pub runner: String,
    /// Tokens the KV cache held when each timed part began (in-process only; equals `n_depth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_tokens_before_test: Option<Vec<u32>>,
    /// How the record was made: tool, engine, settings, hardware (in-process only).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub provenance: Value,
}

impl Record {
    /// Fills the statistics from the samples, as llama-bench computes them: tokens per second per
    /// sample (depth excluded), means and sample standard deviations.
    pub fn set_samples(&mut self, samples_ns: Vec<u64>) {
        let tokens = f64::from(self.n_prompt + self.n_gen);
        self.samples_ts = samples_ns
            .iter()
            .map(|&ns| 1e9 * tokens / (ns.max(1) as f64))
            .collect();
        let ns: Vec<f64> = samples_ns.iter().map(|&n| n as f64).collect();
        self.avg_ns = mean(&ns).round() as u64;
        self.stddev_ns = stddev(&ns).round() as u64;
        self.avg_ts = mean(&self.samples_ts);
        self.stddev_ts = stddev(&self.samples_ts);
        self.samples_ns = samples_ns;
    }

    /// llama-bench's test name: `pp512`, `tg128`, `pp512+tg128`, with ` @ d4096` at a depth.
    pub fn test_name(&self) -> String {
        let mut s = match (self.n_prompt, self.n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        };
        if self.n_depth > 0 {
            s.push_str(&format!(" @ d{}", self.n_depth));
        }
        s
    }

    /// The settings that make two records the same test (for pairing the two sides).
    pub fn test_key(&self) -> (u32, u32, u32, u32, u32, u32, String, String, i32) {
        (
            self.n_prompt,
            self.n_gen,
            self.n_depth,
            self.n_batch,
            self.n_ubatch,
            self.n_threads,
            self.type_k.clone(),
            self.type_v.clone(),
            self.flash_attn,
        )
    }
}

fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().sum::<f64>() / x.len() as f64
}

fn stddev(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_and_names_follow_llama_bench() {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "build_commit": "x", "build_number": 1, "model_filename": "m", "model_type": "t",
            "model_size": 1, "model_n_params": 1, "n_batch": 2048, "n_ubatch": 512,
            "n_threads": 1, "type_k": "f16", "type_v": "f16", "n_gpu_layers": -1,
            "flash_attn": -1, "n_prompt": 512, "n_gen": 128, "n_depth": 4096,
            "test_time": "", "avg_ns": 0, "stddev_ns": 0, "avg_ts": 0.0, "stddev_ts": 0.0,
            "samples_ns": [], "samples_ts": []
        }))
        .unwrap();
        r.set_samples(vec![1_000_000_000, 2_000_000_000]);
        assert_eq!(r.avg_ns, 1_500_000_000);
        assert_eq!(r.samples_ts, vec![640.0, 320.0]);
        assert_eq!(r.avg_ts, 480.0);
        assert_eq!(r.test_name(), "pp512+tg128 @ d4096");
    }
}
