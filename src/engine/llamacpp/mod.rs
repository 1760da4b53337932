//! The llama.cpp engine, in-process through `llama-cpp-2`: the model is loaded once, one context is
//! kept, and the sequence's KV cells are dropped at the start of every request (as llama-server
//! drops a slot's cells) so that no run reuses another's prompt. Sampling runs llama.cpp's sampler
//! chain, the same one llama-server runs for the comparison's requests.

mod batch;
pub mod bench_tests;
mod chat;
mod load;
mod load_report;
pub mod model_desc;
mod rpc;
mod settings;
mod tensor_split;

pub use batch::LlamaCppBatch;
pub use load::{check_gguf_file, system_info};
pub use load_report::{device_of, LoadReport};
pub use rpc::PROTOCOL as RPC_PROTOCOL;
pub use settings::{DeviceSplit, FlashAttn, LlamaCppSettings, SplitMode};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;
use serde_json::{Map, Value};

use super::{
    Engine, EngineCounters, EngineError, EngineInfo, Finish, Outcome, PreparedPrompt, PromptMode,
    Request,
};
use crate::measure::{Phase, Recorder};
use crate::prompts::PromptSpec;
use crate::template::reasoning::{Phase as ThinkPhase, PhaseTracker, ThinkMarkers};

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

impl LlamaCppEngine {
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

impl Engine for LlamaCppEngine {
    fn info(&self) -> EngineInfo {
        let s = &self.settings;
        let settings = s.record();
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
            rec.phase(Phase::Prompt);
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
            let mut logits_idx = batch.n_tokens() - 1;
            // The logits readable: waits for an asynchronous backend's compute.
            ctx.synchronize();
            rec.phase(Phase::Own);
            cached.extend_from_slice(&prompt[keep..]);
            let mut token_ids = Vec::with_capacity(max_tokens as usize);
            let mut text = Vec::with_capacity(max_tokens as usize * 4);
            let mut finish = Finish::Length;
            for n in 0..max_tokens {
                if rec.should_stop() {
                    return Err(EngineError::Interrupted);
                }
                rec.phase(Phase::Sample);
                let token = sampler.sample(ctx, logits_idx);
                rec.phase(Phase::Detok);
                piece.clear();
                vocab.token_to_piece_into(token, piece, false, None);
                rec.phase(Phase::Own);
                // An end-of-generation token is a generated token, as llama-server and vLLM count
                // it; it ends the request. A reasoning model's tokens are sorted into reasoning
                // and answer (one comparison per token).
                match phases.as_mut().map(|p| p.next(i64::from(token.0), piece)) {
                    Some(ThinkPhase::Reasoning) => rec.reasoning(1),
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
                rec.phase(Phase::Decode);
                ctx.decode(&mut batch).map_err(|e| gen_err(&e))?;
                ctx.synchronize();
                rec.phase(Phase::Own);
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
