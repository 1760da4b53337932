//! A scripted engine: fixed delays and chunk sizes, no model. It exists to test the measurement,
//! the suite and the CLI deterministically and fast, beside the real engines (never instead).

use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Map};

use super::{
    Engine, EngineError, EngineInfo, Finish, Outcome, PreparedPrompt, PromptMode, Request,
};
use crate::measure::{Phase, Recorder};
use crate::prompts::PromptSpec;

/// The script a mock engine follows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MockSettings {
    /// Time before the first delivery.
    pub ttft_ms: f64,
    /// Time between deliveries (at least; measured from the previous delivery).
    pub itl_ms: f64,
    /// Tokens per delivery.
    pub chunk: u32,
    /// Fail every request whose 1-based number is a multiple of this (0 never).
    pub fail_every: u32,
    /// A reasoning model: the first this many tokens of each run are reasoning (0: the model does
    /// not reason and nothing about reasoning is recorded).
    pub reasoning_tokens: u32,
}

/// The scripted engine.
#[derive(Debug)]
pub struct MockEngine {
    settings: MockSettings,
    requests: u32,
}

impl MockEngine {
    /// A mock engine following `settings`.
    pub fn new(settings: MockSettings) -> Self {
        Self {
            settings,
            requests: 0,
        }
    }
}

/// Sleeps until `deadline`, spinning for the last stretch so that delays are precise.
fn wait_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now + Duration::from_micros(500) {
        sleep(deadline - now - Duration::from_micros(300));
    }
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

impl Engine for MockEngine {
    fn info(&self) -> EngineInfo {
        let mut settings = Map::new();
        settings.insert("ttft_ms".into(), json!(self.settings.ttft_ms));
        settings.insert("itl_ms".into(), json!(self.settings.itl_ms));
        settings.insert("chunk".into(), json!(self.settings.chunk));
        settings.insert("fail_every".into(), json!(self.settings.fail_every));
        if self.settings.reasoning_tokens > 0 {
            settings.insert(
                "reasoning_tokens".into(),
                json!(self.settings.reasoning_tokens),
            );
        }
        EngineInfo {
            key: "mock".into(),
            name: "scripted mock".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            model: "mock".into(),
            settings,
            load_ms: 0.0,
            details: Map::new(),
        }
    }

    fn prepare(
        &mut self,
        prompt: &PromptSpec,
        _: &PromptMode,
    ) -> Result<PreparedPrompt, EngineError> {
        Ok(PreparedPrompt {
            name: prompt.name.clone(),
            text: prompt.prompt.clone(),
            max_tokens: prompt.max_tokens,
            prompt_tokens: Some(prompt.prompt.split_whitespace().count() as u64),
        })
    }

    fn generate(&mut self, req: &Request<'_>, rec: &mut Recorder) -> Result<Outcome, EngineError> {
        self.requests += 1;
        let s = &self.settings;
        if s.fail_every > 0 && self.requests.is_multiple_of(s.fail_every) {
            return Err(EngineError::Generate(format!(
                "scripted failure of request {}",
                self.requests
            )));
        }
        let start = Instant::now();
        let max = req.prompt.max_tokens;
        let chunk = s.chunk.max(1);
        let mut produced = 0;
        let mut deadline = start + Duration::from_secs_f64(s.ttft_ms / 1e3);
        while produced < max {
            if rec.should_stop() {
                return Err(EngineError::Interrupted);
            }
            // The scripted wait stands for the compute: the prompt before the first delivery,
            // decode after it.
            rec.phase(if produced == 0 {
                Phase::Prompt
            } else {
                Phase::Decode
            });
            wait_until(deadline);
            rec.phase(Phase::Own);
            let mut n = chunk.min(max - produced);
            if produced < s.reasoning_tokens {
                // A delivery never mixes the two: the last reasoning chunk may be short.
                n = n.min(s.reasoning_tokens - produced);
                rec.reasoning(n);
            } else {
                rec.tokens(n);
            }
            produced += n;
            // Each gap is at least the scripted one, measured from the delivery just made.
            deadline = Instant::now() + Duration::from_secs_f64(s.itl_ms / 1e3 * f64::from(n));
        }
        Ok(Outcome {
            prompt_tokens: req.prompt.prompt_tokens.unwrap_or(0),
            token_ids: (0..i64::from(max)).collect(),
            text: "tok ".repeat(max as usize),
            finish: Finish::Length,
            server: None,
            counters: None,
        })
    }
}
