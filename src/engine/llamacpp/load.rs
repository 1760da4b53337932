//! Loading llama.cpp: the backend started once, the model file checked before llama.cpp sees it,
//! the model loaded and its context made (or only a new context on a loaded model), what the model
//! and the build say of themselves. The caller times the load ([`crate::measure::time_load`]).

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::{LlamaModelParams, LlamaSplitMode};
use llama_cpp_2::model::LlamaModel;
use serde_json::{json, Map, Value};

use super::{
    load_report, rpc, tensor_split, FlashAttn, LlamaCppEngine, LlamaCppSettings, LoadReport,
    Loaded, SplitMode, RPC_PROTOCOL, SAMPLER_CHAIN,
};
use crate::engine::EngineError;
use crate::gguf::{self, GgufError, GgufSummary};
use crate::measure::{LoadTime, LoadTimed};

pub(super) fn backend(verbose: bool) -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    load_report::install(verbose);
    let b = LlamaBackend::init()
        .map_err(|e| EngineError::Load(format!("cannot start llama.cpp: {e}")))?;
    Ok(BACKEND.get_or_init(|| b))
}

/// Checks the model file before llama.cpp sees it: it exists, is a file, and is a whole GGUF model
/// ([`crate::gguf`] reads its header, metadata and tensor infos, and the tensor data they describe
/// must fit the file). A random file, a truncated download or a header that points past the end
/// gets one clear error that names the file and the fix, instead of a crash or a long, doomed load.
pub fn check_gguf_file(path: &Path) -> Result<GgufSummary, EngineError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        EngineError::Load(format!(
            "model file {} not found ({e}): pass an existing .gguf with --model (scripts/fetch-model.sh gets the default one)",
            path.display()
        ))
    })?;
    if meta.is_dir() {
        return Err(EngineError::Load(format!(
            "{} is a directory: --model takes a .gguf file for the llamacpp engine (a Hugging Face folder is for --engine vllm)",
            path.display()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| {
        EngineError::Load(format!(
            "cannot read {} ({e}): check its permissions",
            path.display()
        ))
    })?;
    let gguf = gguf::parse(file, meta.len()).map_err(|e| {
        let fix = match e {
            GgufError::NotGguf | GgufError::Version(_) => "pass a .gguf model with --model",
            GgufError::UnknownType { .. } => "it needs a newer llama.cpp than this build",
            _ => "the download is incomplete or damaged: fetch the file again",
        };
        EngineError::Load(format!(
            "{} is not a usable GGUF file: {e}; {fix}",
            path.display()
        ))
    })?;
    Ok(gguf.summary())
}

pub(super) fn context_params(s: &LlamaCppSettings) -> LlamaContextParams {
    let fa = match s.flash_attn {
        FlashAttn::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
        FlashAttn::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        FlashAttn::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
    };
    let threads = i32::try_from(s.threads).unwrap_or(i32::MAX);
    LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(s.ctx_size))
        .with_n_batch(s.batch_size)
        .with_n_ubatch(s.ubatch_size)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(fa)
        .with_swa_full(s.swa_full)
        // llama.cpp's own counters (llama_perf_context) are kept per run, as llama-server keeps them.
        .with_no_perf(false)
}

fn split_mode(s: &LlamaCppSettings) -> LlamaSplitMode {
    match s.split.split_mode {
        SplitMode::None => LlamaSplitMode::None,
        SplitMode::Layer => LlamaSplitMode::Layer,
        SplitMode::Row => LlamaSplitMode::Row,
        SplitMode::Tensor => LlamaSplitMode::Tensor,
    }
}

/// `--device` as ggml device indices: `None` for llama.cpp's choice (`auto`).
fn device_indices(s: &LlamaCppSettings) -> Result<Option<Vec<usize>>, EngineError> {
    if s.split.devices.is_empty() {
        return Ok(None);
    }
    rpc::device_indices(&s.split.devices).map(Some)
}

/// Loads the model with its GPU layers, split mode, devices and tensor split (RPC workers
/// registered first), and returns llama.cpp's load log with it.
fn load_model(
    backend: &LlamaBackend,
    s: &LlamaCppSettings,
) -> Result<(LlamaModel, Vec<String>), EngineError> {
    rpc::register(&s.split.rpc)?;
    let devices = device_indices(s)?;
    let (model, log) = if s.split.tensor_split.is_empty() {
        let mut params = LlamaModelParams::default()
            .with_n_gpu_layers(u32::try_from(s.n_gpu_layers).unwrap_or(u32::MAX))
            .with_split_mode(split_mode(s));
        if let Some(indices) = &devices {
            params = params.with_devices(indices).map_err(|e| {
                EngineError::Load(format!("--device {}: {e}", s.split.devices_label()))
            })?;
        }
        load_report::capture(|| LlamaModel::load_from_file(backend, &s.model, &params))
    } else {
        let label = s.split.tensor_split_label();
        let split = tensor_split::SplitLoad {
            n_gpu_layers: s.n_gpu_layers,
            split_mode: s.split.split_mode,
            devices: devices.as_deref(),
            shares: &s.split.tensor_split,
            label: &label,
        };
        split.check()?;
        load_report::capture(|| split.load(&s.model))
    };
    let model = model.map_err(|e| {
        EngineError::Load(format!(
            "llama.cpp could not load {} ({e}): the file may be truncated or corrupt; download it again",
            s.model.display()
        ))
    })?;
    Ok((model, log))
}

impl LlamaCppEngine {
    /// Loads the model and creates the context; the caller times it as the engine's load time.
    pub fn load(settings: LlamaCppSettings) -> Result<Self, EngineError> {
        check_gguf_file(&settings.model)?;
        let backend = backend(settings.verbose)?;
        let (model, mut log) = load_model(backend, &settings)?;
        let mut details = model_details(&model);
        details.insert("sampler_chain".into(), json!(SAMPLER_CHAIN));
        if !settings.split.rpc.is_empty() {
            let (major, minor, patch) = RPC_PROTOCOL;
            details.insert(
                "rpc_protocol".into(),
                json!(format!("{major}.{minor}.{patch}")),
            );
        }
        let markers =
            super::chat::think_markers(&model, super::chat::model_template(&model).as_deref());
        details.insert(
            "gpu_offload_supported".into(),
            json!(backend.supports_gpu_offload() && rpc::offload_device_count() > 0),
        );
        let (loaded, context_log) = load_report::capture(|| {
            Loaded::try_new(model, |model| {
                model.new_context(backend, context_params(&settings))
            })
        });
        log.extend(context_log);
        let loaded = loaded.map_err(|e| {
            EngineError::Load(format!(
                "llama.cpp could not create a context of {} tokens ({e}): try a smaller --ctx-size or --batch-size",
                settings.ctx_size
            ))
        })?;
        let load_report = LoadReport::parse(&log);
        let n_layer = loaded.borrow_owner().n_layer();
        details.insert(
            "offload".into(),
            load_report.to_json(n_layer, settings.n_gpu_layers),
        );
        let eog_tokens = {
            let vocab = loaded.borrow_owner().vocab();
            vocab.tokens().filter(|&t| vocab.is_eog(t)).collect()
        };
        Ok(Self {
            settings,
            loaded,
            eog_tokens,
            load_ms: 0.0,
            details,
            load_report,
            piece: Vec::with_capacity(64),
            cached: Vec::new(),
            markers,
        })
    }

    /// Whether `settings` can reuse this engine's loaded model (same file and GPU offload), so
    /// that only the context is made anew.
    pub fn reuses_model(&self, settings: &LlamaCppSettings) -> bool {
        settings.model == self.settings.model
            && settings.n_gpu_layers == self.settings.n_gpu_layers
            && settings.split == self.settings.split
    }

    /// Applies new settings: a new context on the loaded model when [`Self::reuses_model`],
    /// else a fresh load.
    pub fn reconfigure(self, settings: LlamaCppSettings) -> Result<Self, EngineError> {
        if !self.reuses_model(&settings) {
            drop(self);
            return Self::load(settings);
        }
        let backend = backend(settings.verbose)?;
        let model = self.loaded.into_owner();
        let (loaded, log) = load_report::capture(|| {
            Loaded::try_new(model, |model| {
                model.new_context(backend, context_params(&settings))
            })
        });
        // The weights stay where they were; the context's buffers are new.
        let mut load_report = self.load_report;
        load_report.buffers.retain(|b| b.holds == "model");
        load_report.buffers.extend(
            LoadReport::parse(&log)
                .buffers
                .into_iter()
                .filter(|b| b.holds != "model"),
        );
        let loaded = loaded.map_err(|e| {
                EngineError::Load(format!(
                    "llama.cpp could not create a context of {} tokens ({e}): try a smaller --ctx-size or --batch-size",
                    settings.ctx_size
                ))
            })?;
        let mut details = self.details;
        let n_layer = loaded.borrow_owner().n_layer();
        details.insert(
            "offload".into(),
            load_report.to_json(n_layer, settings.n_gpu_layers),
        );
        Ok(Self {
            settings,
            loaded,
            load_ms: self.load_ms,
            details,
            load_report,
            eog_tokens: self.eog_tokens,
            piece: self.piece,
            cached: Vec::new(),
            markers: self.markers,
        })
    }
}

impl LoadTimed for LlamaCppEngine {
    /// A reconfigured engine's load time is its first load's plus the new context's.
    fn loaded_in(&mut self, load: &LoadTime) {
        self.load_ms += load.ms;
    }
}

fn model_details(model: &LlamaModel) -> Map<String, Value> {
    let meta = |k: &str| model.meta_val_str(k).ok();
    let mut m = Map::new();
    m.insert("architecture".into(), json!(meta("general.architecture")));
    m.insert("model_name".into(), json!(meta("general.name")));
    m.insert("file_type".into(), json!(meta("general.file_type")));
    m.insert("n_params".into(), json!(model.n_params()));
    m.insert("size_bytes".into(), json!(model.size()));
    m.insert("n_layer".into(), json!(model.n_layer()));
    m.insert("n_ctx_train".into(), json!(model.n_ctx_train()));
    m.insert("n_vocab".into(), json!(model.n_vocab()));
    m.insert("backend_devices".into(), rpc::devices_json());
    m.insert("system_info".into(), json!(system_info()));
    m
}

/// llama.cpp's own summary of the CPU features and backends it was built with.
pub fn system_info() -> String {
    // SAFETY: llama_print_system_info takes no arguments and returns a pointer to a static,
    // NUL-terminated buffer owned by llama.cpp; we copy it out immediately.
    let ptr = unsafe { llama_cpp_sys_2::llama_print_system_info() };
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, valid for the duration of this call (see above).
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_model_paths_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = check_gguf_file(&dir.path().join("nope.gguf"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("not found") && missing.contains("--model"));
        let isdir = check_gguf_file(dir.path()).unwrap_err().to_string();
        assert!(isdir.contains("is a directory"));
        let txt = dir.path().join("x.gguf");
        std::fs::write(&txt, "hello").unwrap();
        assert!(check_gguf_file(&txt)
            .unwrap_err()
            .to_string()
            .contains("not a GGUF file"));
    }
}
