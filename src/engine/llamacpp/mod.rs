//! The llama.cpp engine, in-process through `llama-cpp-2`: the model is loaded once, one context is
//! kept, and the sequence's KV cells are dropped at the start of every request (as llama-server
//! drops a slot's cells) so that no run reuses another's prompt. Sampling runs llama.cpp's sampler
//! chain, the same one llama-server runs for the comparison's requests.

mod chat;
mod load_report;
mod settings;

pub use load_report::{device_of, LoadReport};
pub use settings::{FlashAttn, LlamaCppSettings};

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;
use serde_json::{json, Map, Value};

use super::{
    Engine, EngineCounters, EngineError, EngineInfo, Finish, Outcome, PreparedPrompt, PromptMode,
    Request,
};
use crate::measure::Recorder;
use crate::prompts::PromptSpec;
use crate::template::reasoning::{Phase, PhaseTracker, ThinkMarkers};

/// The sampler chain, as recorded in the settings (the same on llama-server's side of
/// `--compare-http`, which is asked for `samplers: ["temperature"]`).
pub const SAMPLER_CHAIN: &str = "logit_bias(eog=-inf when ignoring EOS) > temp_ext > dist(seed)";

/// The llama.cpp build that the pinned `llama-cpp-sys-2` compiles in.
pub const LLAMA_CPP_BUILD: u32 = 11434;

self_cell::self_cell!(
    /// The model and the one context that borrows it.
    struct Loaded {
        owner: LlamaModel,
        #[covariant]
        dependent: LlamaContext,
    }
);

/// The in-process llama.cpp engine.
pub struct LlamaCppEngine {
    settings: LlamaCppSettings,
    loaded: Loaded,
    eog_tokens: Vec<LlamaToken>,
    load_ms: f64,
    details: Map<String, Value>,
    load_report: LoadReport,
    piece: Vec<u8>,
    /// The tokens whose KV cells the sequence holds, in order (kept for `--prefix-cache on`).
    cached: Vec<LlamaToken>,
    /// The model's think markers (a reasoning model), from its vocabulary and template.
    markers: Option<ThinkMarkers>,
}

fn backend(verbose: bool) -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    load_report::install(verbose);
    let b = LlamaBackend::init()
        .map_err(|e| EngineError::Load(format!("cannot start llama.cpp: {e}")))?;
    Ok(BACKEND.get_or_init(|| b))
}

/// Checks the model path before llama.cpp sees it, so that bad input gets a clear message.
pub fn check_gguf_file(path: &Path) -> Result<(), EngineError> {
    super::gguf_check::check(path).map(|_| ())
}

fn context_params(s: &LlamaCppSettings) -> LlamaContextParams {
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

impl LlamaCppEngine {
    /// Loads the model and creates the context; this is the engine's load time.
    pub fn load(settings: LlamaCppSettings) -> Result<Self, EngineError> {
        check_gguf_file(&settings.model)?;
        let backend = backend(settings.verbose)?;
        let started = Instant::now();
        let ngl = u32::try_from(settings.n_gpu_layers).unwrap_or(u32::MAX);
        let params = LlamaModelParams::default().with_n_gpu_layers(ngl);
        let (model, mut log) =
            load_report::capture(|| LlamaModel::load_from_file(backend, &settings.model, &params));
        let model = model.map_err(|e| {
            EngineError::Load(format!(
                "llama.cpp could not load {} ({e}): the file may be truncated or corrupt; download it again",
                settings.model.display()
            ))
        })?;
        let mut details = model_details(&model);
        details.insert("sampler_chain".into(), json!(SAMPLER_CHAIN));
        let markers = chat::think_markers(&model, chat::model_template(&model).as_deref());
        details.insert(
            "gpu_offload_supported".into(),
            json!(backend.supports_gpu_offload()),
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
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
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
            load_ms,
            details,
            load_report,
            piece: Vec::with_capacity(64),
            cached: Vec::new(),
            markers,
        })
    }

    /// A warning when `--n-gpu-layers` asked for GPU layers that llama.cpp did not offload (a
    /// build without a GPU backend runs every layer on the CPU).
    pub fn offload_warning(&self) -> Option<String> {
        let asked = self.settings.n_gpu_layers;
        if asked <= 0 {
            return None;
        }
        let n_layer = self.loaded.borrow_owner().n_layer();
        let (done, total) = self.load_report.layers(n_layer);
        let expected = (asked as u32).min(total);
        if done >= expected {
            return None;
        }
        Some(match self.load_report.offloaded {
            None => format!(
                "warning: --n-gpu-layers {asked} asks for GPU layers, but this build has no GPU backend: all {total} layers run on the CPU and the numbers are CPU numbers; rebuild with `cargo build --release --features cuda`"
            ),
            Some(_) => format!(
                "warning: --n-gpu-layers {asked}: llama.cpp offloaded only {done} of {total} layers to the GPU"
            ),
        })
    }

    /// llama.cpp's load report: layers offloaded and the buffers that hold the model.
    pub fn load_report(&self) -> &LoadReport {
        &self.load_report
    }

    /// Whether `settings` can reuse this engine's loaded model (same file and GPU offload), so
    /// that only the context is made anew.
    pub fn reuses_model(&self, settings: &LlamaCppSettings) -> bool {
        settings.model == self.settings.model && settings.n_gpu_layers == self.settings.n_gpu_layers
    }

    /// Applies new settings: a new context on the loaded model when [`Self::reuses_model`],
    /// else a fresh load.
    pub fn reconfigure(self, settings: LlamaCppSettings) -> Result<Self, EngineError> {
        if !self.reuses_model(&settings) {
            drop(self);
            return Self::load(settings);
        }
        let backend = backend(settings.verbose)?;
        let started = Instant::now();
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
            load_ms: self.load_ms + started.elapsed().as_secs_f64() * 1e3,
            details,
            load_report,
            eog_tokens: self.eog_tokens,
            piece: self.piece,
            cached: Vec::new(),
            markers: self.markers,
        })
    }

    /// The settings this engine was loaded with.
    pub fn settings(&self) -> &LlamaCppSettings {
        &self.settings
    }

    /// llama.cpp's sampler chain as llama-server builds it for the comparison's requests
    /// (`samplers: ["temperature"]`): the end-of-generation tokens biased to −∞ when EOS is
    /// ignored, the temperature (at 0 it keeps only the most likely token), then the seeded draw.
    /// Both sides thus do the same work per token over the whole vocabulary, greedy or not.
    fn sampler(&self, req: &Request<'_>) -> LlamaSampler {
        let s = req.sampling;
        let model = self.loaded.borrow_owner();
        let mut chain = Vec::new();
        if s.ignore_eos {
            let biases: Vec<LlamaLogitBias> = self
                .eog_tokens
                .iter()
                .map(|&t| LlamaLogitBias::new(t, f32::NEG_INFINITY))
                .collect();
            chain.push(LlamaSampler::logit_bias(model.n_vocab(), &biases));
        }
        chain.push(LlamaSampler::temp_ext(s.temperature, 0.0, 1.0));
        chain.push(LlamaSampler::dist(s.seed));
        LlamaSampler::chain_simple(chain)
    }
}

fn model_details(model: &LlamaModel) -> Map<String, Value> {
    let meta = |k: &str| model.meta_val_str(k).ok();
    let devices: Vec<Value> = llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .map(|d| {
            json!({"name": d.name, "description": d.description, "backend": d.backend,
                   "memory_total_bytes": d.memory_total})
        })
        .collect();
    let mut m = Map::new();
    m.insert("architecture".into(), json!(meta("general.architecture")));
    m.insert("model_name".into(), json!(meta("general.name")));
    m.insert("file_type".into(), json!(meta("general.file_type")));
    m.insert("n_params".into(), json!(model.n_params()));
    m.insert("size_bytes".into(), json!(model.size()));
    m.insert("n_layer".into(), json!(model.n_layer()));
    m.insert("n_ctx_train".into(), json!(model.n_ctx_train()));
    m.insert("n_vocab".into(), json!(model.n_vocab()));
    m.insert("backend_devices".into(), Value::Array(devices));
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

impl Engine for LlamaCppEngine {
    fn info(&self) -> EngineInfo {
        let s = &self.settings;
        let mut settings = Map::new();
        settings.insert("model".into(), json!(s.model.display().to_string()));
        settings.insert("n_gpu_layers".into(), json!(s.n_gpu_layers));
        settings.insert("ctx_size".into(), json!(s.ctx_size));
        settings.insert("threads".into(), json!(s.threads));
        settings.insert("batch_size".into(), json!(s.batch_size));
        settings.insert("ubatch_size".into(), json!(s.ubatch_size));
        settings.insert("flash_attn".into(), json!(s.flash_attn.to_string()));
        settings.insert("swa_full".into(), json!(s.swa_full));
        EngineInfo {
            key: "llamacpp".into(),
            name: "llama.cpp".into(),
            version: format!("b{LLAMA_CPP_BUILD} (llama-cpp-2 0.1.160, in-process)"),
            model: s.model.display().to_string(),
            settings,
            load_ms: self.load_ms,
            details: self.details.clone(),
        }
    }

    fn prepare(
        &mut self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<PreparedPrompt, EngineError> {
        let text = match mode {
            PromptMode::Raw => prompt.prompt.clone(),
            PromptMode::Chat { template, options } => {
                let (text, about) = chat::prompt(
                    self.loaded.borrow_owner(),
                    &self.settings.model,
                    (template.as_deref(), options),
                    prompt,
                    &mut self.markers,
                )?;
                self.details.extend(about);
                text
            }
        };
        let n_prompt = self
            .loaded
            .borrow_owner()
            .vocab()
            .tokenize(text.as_bytes(), true, true)
            .len() as u64;
        let need = n_prompt + u64::from(prompt.max_tokens);
        if need > u64::from(self.settings.ctx_size) {
            return Err(EngineError::Prompt(format!(
                "prompt '{}' needs {need} tokens ({n_prompt} prompt + {} generated) but the context holds {}: raise --ctx-size or lower --max-tokens",
                prompt.name, prompt.max_tokens, self.settings.ctx_size
            )));
        }
        Ok(PreparedPrompt {
            name: prompt.name.clone(),
            text,
            max_tokens: prompt.max_tokens,
            prompt_tokens: Some(n_prompt),
        })
    }

    fn generate(&mut self, req: &Request<'_>, rec: &mut Recorder) -> Result<Outcome, EngineError> {
        let max_tokens = req.prompt.max_tokens;
        let mut sampler = self.sampler(req);
        let n_batch = self.settings.batch_size.max(1) as usize;
        let piece = &mut self.piece;
        let cached = &mut self.cached;
        let mut phases = self
            .markers
            .as_ref()
            .map(|m| PhaseTracker::new(m, &req.prompt.text));
        if phases.is_some() {
            rec.track_reasoning();
        }
        self.loaded.with_dependent_mut(|model, ctx| {
            let vocab = model.vocab();
            ctx.reset_timings();
            let prompt = vocab.tokenize(req.prompt.text.as_bytes(), true, true);
            if prompt.is_empty() {
                return Err(EngineError::Prompt(format!(
                    "prompt '{}' tokenized to nothing",
                    req.prompt.name
                )));
            }
            // Forget the previous request: drop the sequence's cells (metadata only, as
            // llama-server does for a new task; zeroing the whole KV buffer would cost time that
            // grows with --ctx-size). With --prefix-cache on, keep the cells of the prefix this
            // prompt shares with what the sequence holds, as llama-server's cache_prompt does,
            // and evaluate at least the last prompt token so its logits exist.
            let keep = if req.prefix_cache {
                let common = cached
                    .iter()
                    .zip(&prompt)
                    .take_while(|(a, b)| a == b)
                    .count();
                common.min(prompt.len() - 1)
            } else {
                0
            };
            let from = u32::try_from(keep).unwrap_or(u32::MAX);
            ctx.clear_kv_cache_seq(Some(0), Some(from), None)
                .map_err(|e| EngineError::Generate(format!("cannot clear the KV cache: {e}")))?;
            cached.truncate(keep);
            // Room for the whole request, so that recording a token never reallocates.
            cached.reserve(prompt.len() - keep + max_tokens as usize);
            let mut batch = LlamaBatch::new(n_batch.max(1), 1);
            let gen_err = |e: &dyn std::fmt::Display| {
                EngineError::Generate(format!("llama.cpp decode failed: {e}"))
            };
            let mut pos: i32 = i32::try_from(keep).unwrap_or(i32::MAX);
            for chunk in prompt[keep..].chunks(n_batch) {
                batch.clear();
                for (i, &tok) in chunk.iter().enumerate() {
                    let last = pos as usize + i + 1 == prompt.len();
                    batch
                        .add(tok, pos + i as i32, &[0], last)
                        .map_err(|e| gen_err(&e))?;
                }
                ctx.decode(&mut batch).map_err(|e| gen_err(&e))?;
                pos += chunk.len() as i32;
            }
            cached.extend_from_slice(&prompt[keep..]);
            let mut logits_idx = batch.n_tokens() - 1;
            let mut token_ids = Vec::with_capacity(max_tokens as usize);
            let mut text = Vec::with_capacity(max_tokens as usize * 4);
            let mut finish = Finish::Length;
            for n in 0..max_tokens {
                if rec.should_stop() {
                    return Err(EngineError::Interrupted);
                }
                let token = sampler.sample(ctx, logits_idx);
                piece.clear();
                vocab.token_to_piece_into(token, piece, false, None);
                // An end-of-generation token is a generated token, as llama-server and vLLM count
                // it; it ends the request. A reasoning model's tokens are sorted into reasoning
                // and answer (one comparison per token).
                match phases.as_mut().map(|p| p.next(i64::from(token.0), piece)) {
                    Some(Phase::Reasoning) => rec.reasoning(1),
                    _ => rec.tokens(1),
                }
                text.extend_from_slice(piece);
                token_ids.push(i64::from(token.0));
                if !req.sampling.ignore_eos && vocab.is_eog(token) {
                    finish = Finish::Eos;
                    break;
                }
                if n + 1 == max_tokens {
                    break;
                }
                batch.clear();
                batch.add(token, pos, &[0], true).map_err(|e| gen_err(&e))?;
                ctx.decode(&mut batch).map_err(|e| gen_err(&e))?;
                cached.push(token);
                pos += 1;
                logits_idx = 0;
            }
            let t = ctx.timings();
            // One-token decodes ran after every generated token but the last; llama.cpp reports
            // at least 1 even when there was none.
            let decodes = token_ids.len().saturating_sub(1) as u64;
            let counters = EngineCounters {
                prompt_eval_ms: t.t_p_eval_ms(),
                prompt_eval_tokens: u64::try_from(t.n_p_eval()).unwrap_or(0),
                eval_ms: t.t_eval_ms(),
                eval_tokens: if decodes == 0 {
                    0
                } else {
                    u64::try_from(t.n_eval()).unwrap_or(0)
                },
            };
            Ok(Outcome {
                prompt_tokens: prompt.len() as u64,
                token_ids,
                text: String::from_utf8_lossy(&text).into_owned(),
                finish,
                server: None,
                counters: Some(counters),
            })
        })
    }
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
