//! llama-bench's tests on a model loaded in this process: prompt processing (`pp`: N tokens in
//! one go), text generation (`tg`: N single-token decodes) and both (`pg`), each after the KV
//! cache was filled to a depth (untimed), the tokens chosen as llama-bench chooses them (random
//! ids for the prompt and after each generated token, the BOS token first). The clock is
//! [`crate::measure::span`]'s; this module only decodes.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::{check_gguf_file, load::backend, FlashAttn};
use crate::engine::EngineError;
use crate::measure::span::time_ns;

/// The KV cache types llama-bench's `-ctk/-ctv` accept, by its names.
pub const CACHE_TYPES: &[(&str, KvCacheType)] = &[
    ("f32", KvCacheType::F32),
    ("f16", KvCacheType::F16),
    ("bf16", KvCacheType::BF16),
    ("q8_0", KvCacheType::Q8_0),
    ("q4_0", KvCacheType::Q4_0),
    ("q4_1", KvCacheType::Q4_1),
    ("iq4_nl", KvCacheType::IQ4_NL),
    ("q5_0", KvCacheType::Q5_0),
    ("q5_1", KvCacheType::Q5_1),
];

/// A KV cache type named as llama-bench names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheType(pub &'static str);

impl std::str::FromStr for CacheType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CACHE_TYPES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(n, _)| CacheType(n))
            .ok_or_else(|| {
                let names: Vec<&str> = CACHE_TYPES.iter().map(|c| c.0).collect();
                format!("unknown cache type '{s}': use one of {}", names.join(", "))
            })
    }
}

impl TryFrom<i64> for CacheType {
    type Error = ();
    fn try_from(_: i64) -> Result<Self, ()> {
        Err(())
    }
}

impl CacheType {
    fn kv(self) -> KvCacheType {
        CACHE_TYPES
            .iter()
            .find(|(n, _)| *n == self.0)
            .map_or(KvCacheType::F16, |c| c.1)
    }
}

/// One test's settings (one point of the sweep).
#[derive(Debug, Clone, PartialEq)]
pub struct TestParams {
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_depth: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub threads: u32,
    pub type_k: CacheType,
    pub type_v: CacheType,
    pub flash_attn: FlashAttn,
}

/// What the model says of itself, in llama-bench's fields.
#[derive(Debug, Clone)]
pub struct ModelFacts {
    pub filename: PathBuf,
    pub model_type: String,
    pub size: u64,
    pub n_params: u64,
}

/// A model loaded for llama-bench's tests.
pub struct BenchModel {
    model: LlamaModel,
    pub facts: ModelFacts,
}

impl BenchModel {
    /// Loads the model with `n_gpu_layers` offloaded (-1: all).
    pub fn load(path: &Path, n_gpu_layers: i32) -> Result<Self, EngineError> {
        check_gguf_file(path)?;
        let backend = backend(false)?;
        let ngl = u32::try_from(n_gpu_layers).unwrap_or(u32::MAX);
        let params = LlamaModelParams::default().with_n_gpu_layers(ngl);
        let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
            EngineError::Load(format!(
                "llama.cpp could not load {} ({e}): the file may be truncated or corrupt; download it again",
                path.display()
            ))
        })?;
        // llama-bench's text (`llama 256M Q4_1`); the GGUF's own labels if llama.cpp gives none.
        let meta = |k: &str| model.meta_val_str(k).ok();
        let model_type = super::model_desc::model_desc(path).unwrap_or_else(|| {
            [meta("general.architecture"), meta("general.size_label")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        });
        let facts = ModelFacts {
            filename: path.to_path_buf(),
            model_type,
            size: model.size(),
            n_params: model.n_params(),
        };
        Ok(Self { model, facts })
    }

    /// A context for `p` (as llama-bench: n_ctx = depth + prompt + generated), warmed up unless
    /// `warmup` is false.
    pub fn test(&self, p: &TestParams, warmup: bool) -> Result<BenchTest<'_>, EngineError> {
        let backend = backend(false)?;
        let fa = match p.flash_attn {
            FlashAttn::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttn::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        };
        let threads = i32::try_from(p.threads).unwrap_or(i32::MAX);
        let n_ctx = p.n_depth + p.n_prompt + p.n_gen;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx.max(1)))
            .with_n_batch(p.n_batch)
            .with_n_ubatch(p.n_ubatch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(fa)
            .with_type_k(p.type_k.kv())
            .with_type_v(p.type_v.kv());
        let ctx = self.model.new_context(backend, params).map_err(|e| {
            EngineError::Load(format!(
                "llama.cpp could not create a context of {n_ctx} tokens with cache types {}/{} ({e}): try other -ctk/-ctv (quantized V needs -fa 1) or smaller -b",
                p.type_k.0, p.type_v.0
            ))
        })?;
        let vocab = self.model.vocab();
        let mut t = BenchTest {
            ctx,
            params: p.clone(),
            n_vocab: u64::try_from(self.model.n_vocab()).unwrap_or(1).max(1),
            bos: vocab.should_add_bos().then(|| vocab.bos()),
            rng: 0x9E37_79B9_7F4A_7C15,
            batch: LlamaBatch::new(p.n_batch.max(1) as usize, 1),
            pos: 0,
        };
        if warmup {
            t.clear()?;
            if p.n_prompt > 0 {
                t.prompt(p.n_prompt)?;
            }
            if p.n_gen > 0 {
                t.generate(1)?;
            }
        }
        Ok(t)
    }
}

/// One repetition: its time and the KV cache fill before the timed part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub ns: u64,
    /// Tokens the KV cache held when the timed part began (the depth reached).
    pub depth_filled: u32,
}

/// A context made for one test, run repetition by repetition.
pub struct BenchTest<'m> {
    ctx: LlamaContext<'m>,
    params: TestParams,
    n_vocab: u64,
    bos: Option<LlamaToken>,
    rng: u64,
    batch: LlamaBatch<'static>,
    pos: i32,
}

fn decode_err(e: &dyn std::fmt::Display) -> EngineError {
    EngineError::Generate(format!("llama.cpp decode failed: {e}"))
}

impl BenchTest<'_> {
    fn random_token(&mut self) -> LlamaToken {
        // xorshift64: llama-bench draws with std::rand; any uniform draw does the same work.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        LlamaToken((self.rng % self.n_vocab) as i32)
    }

    fn clear(&mut self) -> Result<(), EngineError> {
        // Metadata only, as llama-bench's llama_memory_clear(mem, false).
        self.ctx
            .clear_kv_cache_seq(None, None, None)
            .map_err(|e| EngineError::Generate(format!("cannot clear the KV cache: {e}")))?;
        self.pos = 0;
        Ok(())
    }

    /// Evaluates `n` tokens in batches of n_batch (llama-bench's test_prompt).
    fn prompt(&mut self, n: u32) -> Result<(), EngineError> {
        let n_batch = self.params.n_batch.max(1);
        let mut done = 0;
        while done < n {
            let take = (n - done).min(n_batch);
            self.batch.clear();
            for i in 0..take {
                let tok = match self.bos {
                    Some(b) if done == 0 && i == 0 => b,
                    _ => self.random_token(),
                };
                self.batch
                    .add(tok, self.pos + i as i32, &[0], i + 1 == take)
                    .map_err(|e| decode_err(&e))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| decode_err(&e))?;
            self.pos += take as i32;
            done += take;
        }
        self.ctx.synchronize();
        Ok(())
    }

    /// `n` single-token decodes (llama-bench's test_gen).
    fn generate(&mut self, n: u32) -> Result<(), EngineError> {
        let mut tok = match self.bos {
            Some(b) => b,
            None => self.random_token(),
        };
        for _ in 0..n {
            self.batch.clear();
            self.batch
                .add(tok, self.pos, &[0], true)
                .map_err(|e| decode_err(&e))?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| decode_err(&e))?;
            self.ctx.synchronize();
            self.pos += 1;
            tok = self.random_token();
        }
        Ok(())
    }

    /// Tokens the KV cache holds (its largest position + 1).
    pub fn kv_tokens(&self) -> u32 {
        u32::try_from(self.ctx.kv_cache_seq_pos_max(0) + 1).unwrap_or(0)
    }

    /// One repetition: the cache cleared, filled to the depth (untimed), then the test timed.
    pub fn repetition(&mut self) -> Result<Sample, EngineError> {
        self.clear()?;
        let p = self.params.clone();
        if p.n_depth > 0 {
            self.prompt(p.n_depth)?;
        }
        let depth_filled = self.kv_tokens();
        let (res, ns) = time_ns(|| -> Result<(), EngineError> {
            if p.n_prompt > 0 {
                self.prompt(p.n_prompt)?;
            }
            if p.n_gen > 0 {
                self.generate(p.n_gen)?;
            }
            Ok(())
        });
        res?;
        Ok(Sample { ns, depth_filled })
    }
}
