//! llama.cpp under load: continuous batching in one context, as llama-server's slots. Each request
//! in flight holds one sequence (seq id); every step is one `llama_decode` holding the next token
//! of every generating sequence plus chunks of the prompts that joined, up to `--batch-size`
//! tokens. Each sequence samples with its own chain (the single-stream chain), and a finished
//! sequence's KV cells are freed for the next request.

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde_json::json;

use super::{load_report, LlamaCppEngine, LlamaCppSettings, Loaded};
use crate::engine::streams::{BatchEngine, StreamEvent, StreamOutcome, StreamRequest};
use crate::engine::{
    Engine, EngineError, EngineInfo, Finish, PreparedPrompt, PromptMode, Request, Sampling,
};
use crate::prompts::PromptSpec;

/// One request in flight.
struct Slot {
    id: usize,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens decoded so far.
    fed: usize,
    /// Position of the next token.
    pos: i32,
    max_tokens: u32,
    ignore_eos: bool,
    generated: Vec<i64>,
    sampler: LlamaSampler,
    /// The last sampled token, decoded in the next step.
    next: Option<LlamaToken>,
    /// Where this sequence's logits are in the step's batch.
    logits_at: Option<i32>,
}

/// llama.cpp with several sequences in one context.
pub struct LlamaCppBatch {
    engine: LlamaCppEngine,
    slots: Vec<Option<Slot>>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    piece: Vec<u8>,
}

impl LlamaCppBatch {
    /// Loads the model with a context of `--ctx-size` tokens shared by `streams` sequences
    /// (each gets `ctx_size / streams`, as llama-server's slots).
    pub fn load(settings: LlamaCppSettings, streams: u32) -> Result<Self, EngineError> {
        let engine = LlamaCppEngine::load(settings)?;
        Self::from_engine(engine, streams)
    }

    /// Makes `engine`'s context anew with `streams` sequences; the model stays loaded.
    pub fn from_engine(engine: LlamaCppEngine, streams: u32) -> Result<Self, EngineError> {
        let streams = streams.max(1);
        let backend = super::load::backend(engine.settings.verbose)?;
        let params = super::load::context_params(&engine.settings)
            .with_n_seq_max(streams)
            .with_kv_unified(false);
        let LlamaCppEngine {
            settings,
            loaded,
            eog_tokens,
            load_ms,
            mut details,
            load_report,
            piece,
            cached: _,
            markers,
        } = engine;
        let model = loaded.into_owner();
        let (loaded, _log) = load_report::capture(|| {
            Loaded::try_new(model, |model| model.new_context(backend, params))
        });
        let loaded = loaded.map_err(|e| {
            EngineError::Load(format!(
                "llama.cpp could not create a context of {} tokens for {streams} sequences ({e}): lower the concurrency or --ctx-size",
                settings.ctx_size
            ))
        })?;
        details.insert("streams".into(), json!(streams));
        let n_batch = settings.batch_size.max(1) as usize;
        Ok(Self {
            engine: LlamaCppEngine {
                settings,
                loaded,
                eog_tokens,
                load_ms,
                details,
                load_report,
                piece: Vec::new(),
                cached: Vec::new(),
                markers,
            },
            slots: (0..streams).map(|_| None).collect(),
            batch: LlamaBatch::new(n_batch, 1),
            n_batch,
            piece,
        })
    }

    fn sampler(&self, sampling: &Sampling, id: usize) -> LlamaSampler {
        let prompt = PreparedPrompt {
            name: String::new(),
            text: String::new(),
            max_tokens: 0,
            prompt_tokens: None,
        };
        // Each sequence draws from its own seed, so a request's tokens do not depend on which
        // others share its steps.
        let sampling = Sampling {
            seed: sampling.seed.wrapping_add(id as u32),
            ..sampling.clone()
        };
        self.engine.sampler(&Request {
            prompt: &prompt,
            sampling: &sampling,
            prefix_cache: false,
        })
    }

    fn clear_seq(&mut self, seq: usize) {
        self.engine.loaded.with_dependent_mut(|_, ctx| {
            let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        });
    }
}

impl BatchEngine for LlamaCppBatch {
    fn info(&self) -> EngineInfo {
        let mut info = self.engine.info();
        let streams = self.slots.len() as u32;
        info.settings.insert("streams".into(), json!(streams));
        info.settings.insert(
            "ctx_per_stream".into(),
            json!(self.engine.settings.ctx_size / streams),
        );
        info.settings.insert("kv_unified".into(), json!(false));
        info.settings.insert(
            "batching".into(),
            json!("continuous: one llama_decode per step for every sequence in flight"),
        );
        info
    }

    fn max_streams(&self) -> usize {
        self.slots.len()
    }

    fn tokens_per_stream(&self) -> u64 {
        u64::from(self.engine.settings.ctx_size) / self.slots.len().max(1) as u64
    }

    fn vocab_size(&self) -> u32 {
        u32::try_from(self.engine.loaded.borrow_owner().n_vocab()).unwrap_or(0)
    }

    fn prompt_tokens(
        &mut self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<Vec<i64>, EngineError> {
        let prepared = self.engine.prepare(prompt, mode)?;
        Ok(self
            .engine
            .loaded
            .borrow_owner()
            .vocab()
            .tokenize(prepared.text.as_bytes(), true, true)
            .into_iter()
            .map(|t| i64::from(t.0))
            .collect())
    }

    fn admit(&mut self, req: StreamRequest, sampling: &Sampling) -> Result<(), EngineError> {
        let Some(seq) = self.slots.iter().position(Option::is_none) else {
            return Err(EngineError::Generate(format!(
                "all {} sequences are busy",
                self.slots.len()
            )));
        };
        if req.prompt.is_empty() || req.max_tokens == 0 {
            return Err(EngineError::Prompt(
                "a request needs a prompt token and a token to generate".into(),
            ));
        }
        let need = req.prompt.len() as u64 + u64::from(req.max_tokens);
        if need > self.tokens_per_stream() {
            return Err(EngineError::Prompt(format!(
                "request {} needs {need} tokens but a sequence holds {}: raise --ctx-size",
                req.id,
                self.tokens_per_stream()
            )));
        }
        let sampler = self.sampler(sampling, req.id);
        self.clear_seq(seq);
        self.slots[seq] = Some(Slot {
            id: req.id,
            prompt: req
                .prompt
                .iter()
                .map(|&t| LlamaToken(i32::try_from(t).unwrap_or(0)))
                .collect(),
            fed: 0,
            pos: 0,
            max_tokens: req.max_tokens,
            ignore_eos: sampling.ignore_eos,
            generated: Vec::with_capacity(req.max_tokens as usize),
            sampler,
            next: None,
            logits_at: None,
        });
        Ok(())
    }

    fn step(&mut self, sink: &mut dyn FnMut(StreamEvent)) -> Result<(), EngineError> {
        let gen_err = |e: &dyn std::fmt::Display| {
            EngineError::Generate(format!("llama.cpp decode failed: {e}"))
        };
        let batch = &mut self.batch;
        batch.clear();
        // The next token of every generating sequence first, then prompt chunks in the room left.
        for (seq, slot) in self.slots.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            s.logits_at = None;
            if let Some(tok) = s.next.take() {
                batch
                    .add(tok, s.pos, &[seq as i32], true)
                    .map_err(|e| gen_err(&e))?;
                s.logits_at = Some(batch.n_tokens() - 1);
                s.pos += 1;
            }
        }
        for (seq, slot) in self.slots.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            let room = self.n_batch.saturating_sub(batch.n_tokens() as usize);
            if s.fed >= s.prompt.len() || room == 0 {
                continue;
            }
            let take = room.min(s.prompt.len() - s.fed);
            for k in s.fed..s.fed + take {
                let last = k + 1 == s.prompt.len();
                batch
                    .add(s.prompt[k], k as i32, &[seq as i32], last)
                    .map_err(|e| gen_err(&e))?;
                if last {
                    s.logits_at = Some(batch.n_tokens() - 1);
                }
            }
            s.fed += take;
            s.pos = s.fed as i32;
        }
        if batch.n_tokens() == 0 {
            return Ok(());
        }
        let slots = &mut self.slots;
        let piece = &mut self.piece;
        let mut finished = Vec::new();
        self.engine.loaded.with_dependent_mut(|model, ctx| {
            ctx.decode(batch).map_err(|e| gen_err(&e))?;
            let vocab = model.vocab();
            for (seq, slot) in slots.iter_mut().enumerate() {
                let Some(s) = slot else { continue };
                let Some(at) = s.logits_at.take() else {
                    continue;
                };
                let token = s.sampler.sample(ctx, at);
                piece.clear();
                vocab.token_to_piece_into(token, piece, false, None);
                sink(StreamEvent::Tokens { id: s.id, n: 1 });
                s.generated.push(i64::from(token.0));
                let eos = !s.ignore_eos && vocab.is_eog(token);
                if eos || s.generated.len() >= s.max_tokens as usize {
                    sink(StreamEvent::Done {
                        id: s.id,
                        outcome: StreamOutcome {
                            prompt_tokens: s.prompt.len() as u64,
                            token_ids: std::mem::take(&mut s.generated),
                            finish: if eos { Finish::Eos } else { Finish::Length },
                        },
                    });
                    finished.push(seq);
                } else {
                    s.next = Some(token);
                }
            }
            // Free the finished sequences' cells for the next requests.
            for &seq in &finished {
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
            }
            Ok::<(), EngineError>(())
        })?;
        for seq in finished {
            self.slots[seq] = None;
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn abort_all(&mut self) {
        for seq in 0..self.slots.len() {
            if self.slots[seq].take().is_some() {
                self.clear_seq(seq);
            }
        }
    }
}
