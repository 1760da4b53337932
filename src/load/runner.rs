//! Drives one load level: requests arrive on the shape's schedule (or as streams free up, in a
//! closed loop), wait in a queue for a free stream, are handed to the engine's multi-stream API,
//! and the engine is stepped while anything is in flight. Every stamp goes to the level's
//! [`LoadRecorder`].

use std::collections::VecDeque;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::shape::{Bound, Level, LoadShape};
use super::workload::Workload;
use crate::engine::streams::{BatchEngine, StreamEvent, StreamRequest};
use crate::engine::{Finish, Sampling};
use crate::measure::load::{LoadRecorder, RequestSample};
use crate::measure::StopFlag;

/// What one level came to.
#[derive(Debug, Clone)]
pub struct LevelRun {
    /// Every request that arrived, in arrival order (unfinished ones failed with the reason).
    pub samples: Vec<RequestSample>,
    /// Ctrl-C (or SIGTERM) stopped the level.
    pub interrupted: bool,
    /// An engine step failed, which failed every request in flight and ended the level.
    pub engine_error: Option<String>,
}

/// Requests in flight at most for `shape` on `engine`.
pub fn stream_limit(engine: &dyn BatchEngine, shape: &LoadShape) -> usize {
    let engine_max = engine.max_streams().max(1);
    shape
        .streams()
        .map_or(engine_max, |s| (s as usize).min(engine_max))
        .max(1)
}

/// Sleeps until `deadline` in short slices, so that Ctrl-C is seen.
fn sleep_until(deadline: Instant, stop: &StopFlag) {
    loop {
        let now = Instant::now();
        if now >= deadline || stop.is_raised() {
            return;
        }
        sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

/// Runs one level of `shape` with `workload`'s requests.
pub fn run_level(
    engine: &mut dyn BatchEngine,
    shape: &LoadShape,
    workload: &Workload,
    sampling: &Sampling,
    stop: &StopFlag,
) -> LevelRun {
    let arrivals = shape.arrivals();
    let limit = stream_limit(engine, shape);
    let expected = match shape.bound {
        Bound::Requests(n) => n as usize,
        Bound::Duration(_) => arrivals.len().max(64),
    };
    let closed_loop_more = |next: usize, now: Duration| match shape.bound {
        Bound::Requests(n) => next < n as usize,
        Bound::Duration(d) => now < d,
    };
    let mut rec = LoadRecorder::start(expected);
    let mut queue: VecDeque<StreamRequest> = VecDeque::new();
    let mut next = 0usize;
    let mut interrupted = false;
    let mut engine_error = None;
    loop {
        if stop.is_raised() {
            interrupted = true;
            break;
        }
        let now = rec.elapsed();
        match shape.level {
            Level::Rate(_) => {
                while next < arrivals.len() && arrivals[next] <= now {
                    let r = workload.request(next);
                    rec.arrive(next, arrivals[next], r.max_tokens);
                    queue.push_back(r);
                    next += 1;
                }
            }
            Level::Concurrency(_) => {
                while engine.in_flight() + queue.len() < limit && closed_loop_more(next, now) {
                    let r = workload.request(next);
                    rec.arrive(next, now, r.max_tokens);
                    queue.push_back(r);
                    next += 1;
                }
            }
        }
        while engine.in_flight() < limit {
            let Some(r) = queue.pop_front() else { break };
            let id = r.id;
            rec.admitted(id);
            if let Err(e) = engine.admit(r, sampling) {
                rec.fail(id, e.to_string());
            }
        }
        if engine.in_flight() == 0 && queue.is_empty() {
            match shape.level {
                Level::Rate(_) if next < arrivals.len() => {
                    sleep_until(rec.at(arrivals[next]), stop);
                    continue;
                }
                Level::Concurrency(_) if closed_loop_more(next, rec.elapsed()) => continue,
                _ => break,
            }
        }
        if let Err(e) = engine.step(&mut |ev| record(&mut rec, ev)) {
            engine_error = Some(e.to_string());
            break;
        }
    }
    if interrupted {
        engine.abort_all();
        rec.fail_unfinished("interrupted");
    }
    if let Some(e) = &engine_error {
        engine.abort_all();
        rec.fail_unfinished(e);
    }
    LevelRun {
        samples: rec.samples(),
        interrupted,
        engine_error,
    }
}

/// Hands one engine event to the level's recorder.
#[inline]
fn record(rec: &mut LoadRecorder, ev: StreamEvent) {
    match ev {
        StreamEvent::Tokens { id, n } => rec.tokens(id, n),
        StreamEvent::Done { id, outcome } => rec.done(
            id,
            outcome.prompt_tokens,
            match outcome.finish {
                Finish::Length => "length",
                Finish::Eos => "eos",
            },
            outcome.token_ids,
        ),
        StreamEvent::Failed { id, error } => rec.fail(id, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::mock::MockSettings;
    use crate::engine::mock_batch::MockBatch;
    use crate::load::workload::Synthetic;

    fn sampling() -> Sampling {
        Sampling {
            temperature: 0.0,
            seed: 1,
            ignore_eos: true,
            prefix_cache: false,
        }
    }

    fn mock(streams: usize, fail_every: u32) -> MockBatch {
        MockBatch::new(
            MockSettings {
                ttft_ms: 2.0,
                itl_ms: 1.0,
                chunk: 1,
                fail_every,
                reasoning_tokens: 0,
            },
            streams,
        )
    }

    fn workload() -> Workload {
        Workload::synthetic(
            Synthetic {
                input_tokens: 8,
                output_tokens: 5,
                spread: 0.0,
                shared_prefix: 0,
            },
            32000,
            3,
        )
    }

    fn shape(level: Level, bound: Bound) -> LoadShape {
        LoadShape {
            level,
            burstiness: 1.0,
            max_concurrency: None,
            bound,
            seed: 9,
        }
    }

    #[test]
    fn a_closed_loop_keeps_n_in_flight_and_counts_every_token() {
        let mut e = mock(16, 0);
        let s = shape(Level::Concurrency(4), Bound::Requests(10));
        let run = run_level(&mut e, &s, &workload(), &sampling(), &StopFlag::new());
        assert!(!run.interrupted && run.engine_error.is_none());
        assert_eq!(run.samples.len(), 10);
        assert!(run.samples.iter().all(|r| r.output_tokens == 5
            && r.error.is_none()
            && r.itl_ms.len() == 4
            && r.prompt_tokens == 8));
        // Closed loop: no request waits in a queue.
        assert!(run.samples.iter().all(|r| r.queue_wait_ms.unwrap() < 1.0));
        let sum = crate::measure::load::summarize(&run.samples, None, None);
        assert_eq!((sum.completed, sum.failed), (10, 0));
        assert!(sum.achieved_concurrency > 2.0 && sum.achieved_concurrency <= 4.0 + 1e-9);
    }

    #[test]
    fn an_open_loop_replays_its_schedule_and_queues_past_the_stream_limit() {
        let s = LoadShape {
            max_concurrency: Some(2),
            ..shape(Level::Rate(400.0), Bound::Requests(12))
        };
        let a = run_level(
            &mut mock(8, 0),
            &s,
            &workload(),
            &sampling(),
            &StopFlag::new(),
        );
        let b = run_level(
            &mut mock(8, 0),
            &s,
            &workload(),
            &sampling(),
            &StopFlag::new(),
        );
        let sched = |r: &LevelRun| r.samples.iter().map(|x| x.scheduled_ms).collect::<Vec<_>>();
        assert_eq!(sched(&a), sched(&b));
        assert_eq!(
            sched(&a),
            s.arrivals()
                .iter()
                .map(|d| d.as_secs_f64() * 1e3)
                .collect::<Vec<_>>()
        );
        assert!(a.samples.iter().all(|r| r.output_tokens == 5));
        // 400 requests/s against two streams of ~6 ms requests: some wait.
        assert!(a.samples.iter().any(|r| r.queue_wait_ms.unwrap() > 1.0));
        let sum = crate::measure::load::summarize(&a.samples, Some(400.0), None);
        assert!(sum.saturated, "{sum:?}");
    }

    #[test]
    fn failures_are_counted_and_the_others_go_on() {
        let s = shape(Level::Concurrency(3), Bound::Requests(9));
        let run = run_level(
            &mut mock(8, 3),
            &s,
            &workload(),
            &sampling(),
            &StopFlag::new(),
        );
        let failed = run.samples.iter().filter(|r| r.error.is_some()).count();
        assert_eq!((run.samples.len(), failed), (9, 3));
    }

    #[test]
    fn a_raised_stop_flag_ends_the_level() {
        let stop = StopFlag::new();
        stop.raise();
        let s = shape(Level::Concurrency(2), Bound::Requests(4));
        let run = run_level(&mut mock(8, 0), &s, &workload(), &sampling(), &stop);
        assert!(run.interrupted);
    }
}
