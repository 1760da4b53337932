//! One results entry's model and settings, resolved for the roofline: the model file's tensors
//! (GGUF or safetensors), where llama.cpp or vLLM keeps them, the KV cache types, the KV cells
//! llama.cpp reads, and the threads the run used (for the probe).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::model::{self, ModelBytes};
use super::safetensors;
use crate::gguf::ggml_type::GgmlType;
use crate::gguf::GgufFile;
use crate::results::EngineResult;
use crate::settings::{llamacpp as set, SettingSpec};

/// One entry's model and settings, resolved.
pub struct Resolved {
    /// The model's bytes per token.
    pub model: ModelBytes,
    /// The file or folder they come from.
    pub model_file: String,
    /// Where the engine keeps the layers.
    pub placement: model::Placement,
    /// Why the placement is what it is, when that needs saying.
    pub placement_note: Option<String>,
    /// `--n-gpu-layers` (llama.cpp engines).
    pub n_gpu_layers: Option<i64>,
    /// KV cache types of K and V.
    pub kv_types: (GgmlType, GgmlType),
    /// KV cache cells, when llama.cpp pads the positions it reads.
    pub llamacpp_cache_cells: Option<u64>,
    /// CPU threads the run used.
    pub threads: usize,
}

fn setting<'a>(e: &'a EngineResult, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|k| e.settings.get(*k).filter(|v| !v.is_null()))
}

/// The value of setting `spec` in a server's recorded command line.
fn server_arg<'a>(e: &'a EngineResult, spec: &SettingSpec) -> Option<&'a str> {
    let flag = spec.server_flag()?;
    let args = e.details.get("server_args")?.as_array()?;
    let i = args.iter().position(|a| a.as_str() == Some(flag))?;
    args.get(i + 1)?.as_str()
}

fn kv_type(e: &EngineResult, keys: &[&str]) -> Result<GgmlType, String> {
    match setting(e, keys).and_then(Value::as_str) {
        None => GgmlType::from_name("f16").ok_or_else(|| "f16 unknown".into()),
        Some(name) => {
            GgmlType::from_name(name).ok_or_else(|| format!("KV cache type {name} is not known"))
        }
    }
}

/// Resolves entry `e`; `Err` is the reason its figures are null. Models are read once per file
/// (`cache`, keyed by the model as given).
pub fn resolve(
    e: &EngineResult,
    gpu_on_system: bool,
    cache: &mut HashMap<String, Result<ModelBytes, String>>,
) -> Result<Resolved, String> {
    let path = Path::new(&e.model);
    let http = e.engine.as_deref().is_some_and(|n| n.contains("HTTP"));
    let is_dir = path.is_dir();
    if !path.is_file() && !is_dir {
        return Err(format!(
            "the model {} is not a file here (a server's model name?): its tensors cannot be read",
            e.model
        ));
    }
    let vllm_dtype = e.details.get("dtype").and_then(Value::as_str);
    let model = cache
        .entry(e.model.clone())
        .or_insert_with(|| {
            if is_dir {
                let runtime = vllm_dtype.and_then(safetensors::torch_dtype_bytes);
                safetensors::from_hf_folder(path, runtime).map_err(|err| err.to_string())
            } else {
                GgufFile::open(path)
                    .map_err(|err| format!("{}: {err}", e.model))
                    .and_then(|g| ModelBytes::from_gguf(&g).map_err(|err| err.to_string()))
            }
        })
        .clone()?;
    let threads = setting(e, &[set::THREADS.key])
        .and_then(Value::as_u64)
        .or_else(|| e.details.get("torch_threads").and_then(Value::as_u64))
        .or_else(|| server_arg(e, &set::THREADS).and_then(|t| t.parse().ok()))
        .map_or_else(
            || crate::telemetry::system::default_threads() as usize,
            |t| t as usize,
        );
    if is_dir {
        // vLLM: everything on its device; the KV cache in the model's dtype (cache dtype auto).
        let on_gpu = match e.details.get("device").and_then(Value::as_str) {
            Some(d) => d.starts_with("cuda"),
            None => http && gpu_on_system,
        };
        let note = (http && e.details.get("device").is_none())
            .then(|| "the server's device is assumed from this machine's GPUs".to_string());
        let t = match vllm_dtype.and_then(safetensors::torch_dtype_bytes) {
            Some(4) => "f32",
            _ if vllm_dtype.is_some_and(|d| d.ends_with("bfloat16")) => "bf16",
            _ => "f16",
        };
        let kv = GgmlType::from_name(t).ok_or("no dtype")?;
        return Ok(Resolved {
            model,
            model_file: e.model.clone(),
            placement: if on_gpu {
                model::Placement::GPU
            } else {
                model::Placement::CPU
            },
            placement_note: note,
            n_gpu_layers: None,
            kv_types: (kv, kv),
            llamacpp_cache_cells: None,
            threads,
        });
    }
    let ngl = setting(e, &[set::N_GPU_LAYERS.key])
        .and_then(Value::as_i64)
        .or_else(|| server_arg(e, &set::N_GPU_LAYERS).and_then(|v| v.parse().ok()))
        .unwrap_or(-1);
    let (gpu_available, note) = if http {
        (
            gpu_on_system,
            Some("the server's offload is assumed from this machine's GPUs".to_string()),
        )
    } else {
        let offload = e
            .details
            .get("gpu_offload_supported")
            .and_then(Value::as_bool);
        let gpu_device = e
            .details
            .get("backend_devices")
            .and_then(Value::as_array)
            .is_some_and(|d| {
                d.iter().any(|d| {
                    d.get("backend")
                        .and_then(Value::as_str)
                        // An RPC worker's device is not this machine's GPU.
                        .is_some_and(|b| {
                            !b.eq_ignore_ascii_case("cpu") && !b.eq_ignore_ascii_case("rpc")
                        })
                })
            });
        let note = (offload == Some(false) && ngl != 0).then(|| {
            "this llama.cpp build cannot offload: everything is in CPU memory".to_string()
        });
        (offload != Some(false) && gpu_device, note)
    };
    let cache_cells = setting(e, &[set::CTX_SIZE.key])
        .and_then(Value::as_u64)
        .or_else(|| server_arg(e, &set::CTX_SIZE).and_then(|v| v.parse().ok()));
    Ok(Resolved {
        model,
        model_file: e.model.clone(),
        placement: model::Placement::llamacpp(gpu_available, ngl),
        placement_note: note,
        n_gpu_layers: Some(ngl),
        kv_types: (
            kv_type(e, &["cache_type_k", "type_k"])?,
            kv_type(e, &["cache_type_v", "type_v"])?,
        ),
        llamacpp_cache_cells: Some(cache_cells.unwrap_or(4096)),
        threads,
    })
}
