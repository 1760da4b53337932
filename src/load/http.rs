//! Load over HTTP: one level of the in-process load shapes (the same seeded arrivals, the same
//! token-id requests; a prompt set as the server's own token ids) driven against an OpenAI-compatible server, every request a future on the
//! HTTP engine's one current-thread runtime (no thread per request). Each chunk's tokens are
//! stamped by the level's [`LoadRecorder`] the moment the chunk is parsed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;

use super::runner::LevelRun;
use super::shape::{Bound, Level, LoadShape};
use super::workload::{PromptTokens, Workload};
use crate::engine::http::tokenize::TokenizeError;
use crate::engine::http::HttpEngine;
use crate::engine::streams::StreamRequest;
use crate::engine::{PromptMode, Sampling, ServerTimings};
use crate::measure::load::LoadRecorder;
use crate::measure::StopFlag;
use crate::prompts::PromptSpec;

/// How often the level wakes when nothing happens, to see Ctrl-C.
const TICK: Duration = Duration::from_millis(20);

/// After the server became unreachable, how long requests still in flight may take to end.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(5);

/// What one HTTP level came to: the samples as in-process, and what only HTTP has.
#[derive(Debug, Clone)]
pub struct HttpLevelRun {
    /// Samples, interruption and the error that ended the level, as in-process.
    pub run: LevelRun,
    /// Per request (arrival order): the server's own figures, when it finished.
    pub server: Vec<Option<ServerTimings>>,
    /// Per request: sent in the pass of the loop it arrived in, with a free stream (its queue
    /// wait is then the client's own lag between the scheduled and the actual send).
    pub unqueued: Vec<bool>,
}

/// Requests in flight at most: the closed loop's N, else `--max-concurrency`, else unbounded.
pub fn stream_limit(shape: &LoadShape) -> usize {
    shape.streams().map_or(usize::MAX, |s| s.max(1) as usize)
}

/// The prompt set as the token ids of `engine`'s server, each prompt templated (`mode`) and
/// tokenized by the server once.
pub fn prompt_workload(
    engine: &HttpEngine,
    prompts: &[PromptSpec],
    mode: &PromptMode,
) -> Result<Workload, TokenizeError> {
    let list = prompts
        .iter()
        .map(|p| {
            Ok(PromptTokens {
                name: p.name.clone(),
                ids: engine.prompt_ids(p, mode)?,
                max_tokens: p.max_tokens,
            })
        })
        .collect::<Result<Vec<_>, TokenizeError>>()?;
    Ok(Workload::Prompts(list))
}

/// Runs one level of `shape` against `engine`'s server; `salt` keeps vLLM's cache salts unique
/// across levels.
pub fn run_level(
    engine: &HttpEngine,
    shape: &LoadShape,
    workload: &Workload,
    sampling: &Sampling,
    stop: &StopFlag,
    salt: u64,
) -> HttpLevelRun {
    engine.block_on(level(engine, shape, workload, sampling, stop, salt))
}

async fn level(
    engine: &HttpEngine,
    shape: &LoadShape,
    workload: &Workload,
    sampling: &Sampling,
    stop: &StopFlag,
    salt: u64,
) -> HttpLevelRun {
    let arrivals = shape.arrivals();
    let limit = stream_limit(shape);
    let expected = match shape.bound {
        Bound::Requests(n) => n as usize,
        Bound::Duration(_) => arrivals.len().max(64),
    };
    let more_closed = |next: usize, now: Duration| match shape.bound {
        Bound::Requests(n) => next < n as usize,
        Bound::Duration(d) => now < d,
    };
    let rec = RefCell::new(LoadRecorder::start(expected));
    let mut server: Vec<Option<ServerTimings>> = Vec::with_capacity(expected);
    let mut unqueued: Vec<bool> = Vec::with_capacity(expected);
    let mut arrived_in: Vec<u64> = Vec::with_capacity(expected);
    let mut queue: VecDeque<StreamRequest> = VecDeque::new();
    let mut inflight = FuturesUnordered::new();
    let mut next = 0usize;
    let mut pass = 0u64;
    let mut interrupted = false;
    let mut engine_error: Option<String> = None;
    let mut unreachable_since = None;
    loop {
        pass += 1;
        if stop.is_raised() {
            interrupted = true;
            break;
        }
        let now = rec.borrow().elapsed();
        if engine_error.is_none() {
            let mut arrived: Vec<(StreamRequest, Duration)> = Vec::new();
            match shape.level {
                Level::Rate(_) => {
                    while next < arrivals.len() && arrivals[next] <= now {
                        arrived.push((workload.request(next), arrivals[next]));
                        next += 1;
                    }
                }
                Level::Concurrency(_) => {
                    while inflight.len() + queue.len() + arrived.len() < limit
                        && more_closed(next, now)
                    {
                        arrived.push((workload.request(next), now));
                        next += 1;
                    }
                }
            }
            for (r, at) in arrived {
                rec.borrow_mut().arrive(r.id, at, r.max_tokens);
                server.push(None);
                unqueued.push(false);
                arrived_in.push(pass);
                queue.push_back(r);
            }
            while inflight.len() < limit {
                let Some(r) = queue.pop_front() else { break };
                let id = r.id;
                unqueued[id] = arrived_in[id] == pass;
                rec.borrow_mut().admitted(id);
                let rec = &rec;
                inflight.push(async move {
                    let mut sink = |n: u32| rec.borrow_mut().tokens(id, n);
                    let res = engine
                        .stream_load(&r, sampling, salt.wrapping_add(id as u64), &mut sink)
                        .await;
                    (id, res)
                });
            }
        }
        if inflight.is_empty() && engine_error.is_some() {
            break;
        }
        if inflight.is_empty() && queue.is_empty() {
            match shape.level {
                Level::Rate(_) if next < arrivals.len() => {}
                Level::Concurrency(_) if more_closed(next, rec.borrow().elapsed()) => continue,
                _ => break,
            }
        }
        if unreachable_since.is_some_and(|t: Duration| now.saturating_sub(t) > UNREACHABLE_GRACE) {
            break;
        }
        let mut wake = rec.borrow().at(now + TICK);
        if let (Level::Rate(_), Some(a)) = (shape.level, arrivals.get(next)) {
            wake = wake.min(rec.borrow().at(*a));
        }
        tokio::select! {
            biased;
            Some((id, res)) = inflight.next(), if !inflight.is_empty() => match res {
                Ok(s) => {
                    // A text stream carries no token ids: the output digest stays empty.
                    rec.borrow_mut().done(id, s.prompt_tokens, s.finish, Vec::new());
                    server[id] = Some(s.server);
                }
                Err(f) => {
                    rec.borrow_mut().fail(id, f.message.clone());
                    if f.unreachable && engine_error.is_none() {
                        engine_error = Some(f.message);
                        unreachable_since = Some(now);
                    }
                }
            },
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    drop(inflight);
    let mut rec = rec.into_inner();
    if interrupted {
        rec.fail_unfinished("interrupted");
    }
    if let Some(e) = &engine_error {
        rec.fail_unfinished(&format!(
            "not finished: the server became unreachable ({e})"
        ));
    }
    HttpLevelRun {
        run: LevelRun {
            samples: rec.samples(),
            interrupted,
            engine_error,
        },
        server,
        unqueued,
    }
}
