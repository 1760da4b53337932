//! What the Markdown, CSV and plot reports show: engine entries (one per engine or sweep
//! combination, from one or more files) and the columns llama-bench prints for them.

use std::path::Path;

use serde_json::Value;

use crate::results::{EngineResult, ResultsFile};
use crate::settings::{self, SettingSpec};

/// One engine result to report, with the file it came from.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The file.
    pub file: &'a ResultsFile,
    /// Its key in `results` (`llamacpp`, `llamacpp@threads=2`, …).
    pub key: &'a str,
    /// The result.
    pub result: &'a EngineResult,
}

/// Every entry of `files`, in file then key order.
pub fn entries(files: &[ResultsFile]) -> Vec<Entry<'_>> {
    files
        .iter()
        .flat_map(|file| {
            file.results.iter().map(move |(key, result)| Entry {
                file,
                key: key.as_str(),
                result,
            })
        })
        .collect()
}

/// Settings shown in every llama-bench-style table when any entry has them (`ngl`, `threads`),
/// from the llama.cpp settings table.
fn always() -> impl Iterator<Item = &'static SettingSpec> {
    settings::llamacpp::TABLE.iter().filter(|s| s.always_shown)
}

/// The settings columns for `entries`: `ngl` and `threads`, then every other setting whose value
/// differs between entries (what a sweep varied), as (setting, column name).
pub fn setting_columns<'a>(entries: &[Entry<'a>]) -> Vec<(String, String)> {
    let mut cols: Vec<(String, String)> = always()
        .filter(|s| {
            entries
                .iter()
                .any(|e| e.result.settings.contains_key(s.key))
        })
        .map(|s| (s.key.to_string(), s.column.to_string()))
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    for e in entries {
        for k in e.result.settings.keys() {
            if k == settings::llamacpp::MODEL.key
                || always().any(|a| a.key == k)
                || seen.contains(&k.as_str())
            {
                continue;
            }
            seen.push(k);
            let first = entries[0].result.settings.get(k);
            if entries.iter().any(|o| o.result.settings.get(k) != first) {
                cols.push((k.clone(), settings::column(k).to_string()));
            }
        }
    }
    cols
}

/// A setting's value as text; `-` when absent. `n_gpu_layers` also says how many layers
/// llama.cpp really offloaded when that differs from the request (`30 (0 offloaded)` on a build
/// without a GPU backend).
pub fn setting_text(e: &EngineResult, key: &str) -> String {
    let text = setting_raw(e, key);
    if text == "-" {
        return text;
    }
    match offload(e) {
        Some((done, total)) if key == settings::llamacpp::N_GPU_LAYERS.key => {
            let asked = e.settings.get(key).and_then(Value::as_i64).unwrap_or(-1);
            let expected = settings::gpu_layers(asked, total);
            if done == expected {
                text
            } else {
                format!("{text} ({done} offloaded)")
            }
        }
        _ => text,
    }
}

/// A setting's value as recorded, as text; `-` when absent.
pub fn setting_raw(e: &EngineResult, key: &str) -> String {
    match e.settings.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// Layers llama.cpp offloaded and could offload, from its load report (`details.offload`).
pub fn offload(e: &EngineResult) -> Option<(u64, u64)> {
    let o = e.details.get("offload")?;
    Some((
        o.get("layers_offloaded")?.as_u64()?,
        o.get("layers_total")?.as_u64()?,
    ))
}

/// `offloaded/total` layers, or empty when the engine did not report it.
pub fn offload_text(e: &EngineResult) -> String {
    offload(e).map_or_else(String::new, |(n, m)| format!("{n}/{m}"))
}

/// The model's file or folder name (`Qwen3-8B-Q4_K_M.gguf`, `Qwen3-8B-AWQ`).
pub fn model_name(e: &EngineResult) -> String {
    Path::new(&e.model)
        .file_name()
        .map_or_else(|| e.model.clone(), |n| n.to_string_lossy().into_owned())
}

/// Model file size in bytes, when the engine reported it.
pub fn model_size_bytes(e: &EngineResult) -> Option<u64> {
    e.details.get("size_bytes").and_then(Value::as_u64)
}

/// Model parameter count, when the engine reported it.
pub fn model_params(e: &EngineResult) -> Option<u64> {
    e.details.get("n_params").and_then(Value::as_u64)
}

/// Size as llama-bench prints it: MiB below 1 GiB, GiB above.
pub fn size_text(bytes: Option<u64>) -> String {
    match bytes {
        None => "-".into(),
        Some(b) if b < 1 << 30 => format!("{:.2} MiB", b as f64 / f64::from(1u32 << 20)),
        Some(b) => format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30)),
    }
}

/// Parameter count as llama-bench prints it (`134.52 M`, `8.19 B`).
pub fn params_text(n: Option<u64>) -> String {
    match n {
        None => "-".into(),
        Some(n) if n < 1_000_000_000 => format!("{:.2} M", n as f64 / 1e6),
        Some(n) => format!("{:.2} B", n as f64 / 1e9),
    }
}

/// The devices that held the weights (`CPU`, `CUDA0`, … from llama.cpp's load report), else the
/// compute backends the engine listed (`CPU`, `CUDA`, …), else the engine name or key.
pub fn backend(entry: &Entry<'_>) -> String {
    if let Some(Value::Array(devs)) = entry
        .result
        .details
        .get("offload")
        .and_then(|o| o.get("weight_devices"))
    {
        let names: Vec<&str> = devs.iter().filter_map(Value::as_str).collect();
        if !names.is_empty() {
            return names.join(",");
        }
    }
    let mut names: Vec<String> = Vec::new();
    if let Some(Value::Array(devs)) = entry.result.details.get("backend_devices") {
        for d in devs {
            if let Some(b) = d.get("backend").and_then(Value::as_str) {
                if !names.iter().any(|n| n == b) {
                    names.push(b.to_string());
                }
            }
        }
    }
    if names.is_empty() {
        entry
            .result
            .engine
            .clone()
            .unwrap_or_else(|| entry.key.split('@').next().unwrap_or(entry.key).to_string())
    } else {
        names.join(",")
    }
}

/// A number with at most six decimals and no trailing zeros (stable across platforms).
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return String::new();
    }
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_params_and_numbers() {
        assert_eq!(size_text(Some(96_576_768)), "92.10 MiB");
        assert_eq!(size_text(Some(5_027_783_488)), "4.68 GiB");
        assert_eq!(params_text(Some(134_515_008)), "134.52 M");
        assert_eq!(params_text(Some(8_190_735_360)), "8.19 B");
        assert_eq!(
            (num(1.5), num(2.0), num(0.1234567), num(-0.0000001)),
            ("1.5".into(), "2".into(), "0.123457".into(), "0".into())
        );
    }
}
