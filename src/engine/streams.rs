//! The multi-stream engine interface for load: several requests in flight in one engine, admitted
//! at any time and advanced together one engine step at a time. Engines report each generated
//! token through the sink the moment it exists; they never read the clock (the load recorder
//! stamps the sink's calls).

use super::{EngineError, EngineInfo, Finish, PromptMode, Sampling};
use crate::prompts::PromptSpec;

/// One request of a load level, as token ids so that every engine sees the same input.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest {
    /// The request's number in the level (the sink reports it back).
    pub id: usize,
    /// Prompt token ids.
    pub prompt: Vec<i64>,
    /// Tokens to generate (exactly this many with `ignore_eos`).
    pub max_tokens: u32,
}

/// How a request of a level ended, besides its token timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOutcome {
    /// Prompt tokens evaluated.
    pub prompt_tokens: u64,
    /// Generated token ids.
    pub token_ids: Vec<i64>,
    /// Why generation stopped.
    pub finish: Finish,
}

/// What an engine step reports, request by request.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// `n` generated tokens of request `id` are available now.
    Tokens {
        /// The request.
        id: usize,
        /// How many (at least 1).
        n: u32,
    },
    /// Request `id` finished; its sequence is free for the next.
    Done {
        /// The request.
        id: usize,
        /// Its tokens and finish reason.
        outcome: StreamOutcome,
    },
    /// Request `id` failed; the others go on.
    Failed {
        /// The request.
        id: usize,
        /// Why.
        error: String,
    },
}

/// An engine that runs several requests at once (continuous batching).
pub trait BatchEngine {
    /// Who the engine is, its version, model and settings (the streams included).
    fn info(&self) -> EngineInfo;

    /// Most requests the engine holds in flight at once; the runner queues the rest.
    fn max_streams(&self) -> usize;

    /// The most tokens (prompt + generated) one request may need.
    fn tokens_per_stream(&self) -> u64;

    /// Vocabulary size, for synthetic prompts of random token ids.
    fn vocab_size(&self) -> u32;

    /// A prompt of the seed's set (or the user's file) as the token ids the engine evaluates,
    /// after its chat template when `mode` asks for one; not timed.
    fn prompt_tokens(
        &mut self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<Vec<i64>, EngineError>;

    /// Takes a request in; it joins the next step.
    fn admit(&mut self, req: StreamRequest, sampling: &Sampling) -> Result<(), EngineError>;

    /// Runs one step for every request in flight, reporting tokens, finished and failed
    /// requests through `sink` as they happen. An error here fails every request in flight.
    fn step(&mut self, sink: &mut dyn FnMut(StreamEvent)) -> Result<(), EngineError>;

    /// Requests in flight.
    fn in_flight(&self) -> usize;

    /// Drops every request in flight (after Ctrl-C or an error), leaving the engine ready for
    /// the next level.
    fn abort_all(&mut self);
}
