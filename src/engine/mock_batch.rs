//! The scripted engine's multi-stream side, for load tests: every step sleeps the scripted time
//! (TTFT when a request is new in the step, else the ITL) and gives each request in flight its
//! next chunk of tokens. No model; deterministic token counts.

use std::thread::sleep;
use std::time::Duration;

use serde_json::json;

use super::mock::{MockEngine, MockSettings};
use super::streams::{BatchEngine, StreamEvent, StreamOutcome, StreamRequest};
use super::{Engine, EngineError, EngineInfo, Finish, PromptMode, Sampling};
use crate::prompts::PromptSpec;

struct Active {
    id: usize,
    prompt_tokens: u64,
    max_tokens: u32,
    produced: u32,
}

/// The scripted multi-stream engine.
pub struct MockBatch {
    settings: MockSettings,
    streams: usize,
    active: Vec<Active>,
    admitted: u32,
    pending_failures: Vec<(usize, String)>,
}

impl MockBatch {
    /// A scripted engine holding up to `streams` requests at once.
    pub fn new(settings: MockSettings, streams: usize) -> Self {
        Self {
            settings,
            streams: streams.max(1),
            active: Vec::new(),
            admitted: 0,
            pending_failures: Vec::new(),
        }
    }
}

impl BatchEngine for MockBatch {
    fn info(&self) -> EngineInfo {
        let mut info = MockEngine::new(self.settings.clone()).info();
        info.settings.insert("streams".into(), json!(self.streams));
        info
    }

    fn max_streams(&self) -> usize {
        self.streams
    }

    fn tokens_per_stream(&self) -> u64 {
        u64::MAX
    }

    fn vocab_size(&self) -> u32 {
        32000
    }

    fn prompt_tokens(
        &mut self,
        prompt: &PromptSpec,
        _: &PromptMode,
    ) -> Result<Vec<i64>, EngineError> {
        Ok((0..prompt.prompt.split_whitespace().count().max(1) as i64).collect())
    }

    fn admit(&mut self, req: StreamRequest, _: &Sampling) -> Result<(), EngineError> {
        if self.active.len() >= self.streams {
            return Err(EngineError::Generate(format!(
                "all {} streams are busy",
                self.streams
            )));
        }
        self.admitted += 1;
        let every = self.settings.fail_every;
        if every > 0 && self.admitted.is_multiple_of(every) {
            self.pending_failures.push((
                req.id,
                format!("scripted failure of request {}", self.admitted),
            ));
            return Ok(());
        }
        self.active.push(Active {
            id: req.id,
            prompt_tokens: req.prompt.len() as u64,
            max_tokens: req.max_tokens,
            produced: 0,
        });
        Ok(())
    }

    fn step(&mut self, sink: &mut dyn FnMut(StreamEvent)) -> Result<(), EngineError> {
        for (id, error) in self.pending_failures.drain(..) {
            sink(StreamEvent::Failed { id, error });
        }
        if self.active.is_empty() {
            return Ok(());
        }
        let s = &self.settings;
        let new = self.active.iter().any(|a| a.produced == 0);
        let ms = if new { s.ttft_ms } else { s.itl_ms };
        sleep(Duration::from_secs_f64(ms.max(0.0) / 1e3));
        let chunk = s.chunk.max(1);
        for a in &mut self.active {
            let n = chunk.min(a.max_tokens - a.produced);
            a.produced += n;
            sink(StreamEvent::Tokens { id: a.id, n });
            if a.produced == a.max_tokens {
                sink(StreamEvent::Done {
                    id: a.id,
                    outcome: StreamOutcome {
                        prompt_tokens: a.prompt_tokens,
                        token_ids: (0..i64::from(a.max_tokens)).collect(),
                        finish: Finish::Length,
                    },
                });
            }
        }
        self.active.retain(|a| a.produced < a.max_tokens);
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.active.len() + self.pending_failures.len()
    }

    fn abort_all(&mut self) {
        self.active.clear();
        self.pending_failures.clear();
    }
}
