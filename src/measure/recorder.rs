//! The recorder: stamps request start, each token delivery and the request end on a monotonic clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::phases::{Phase, PhaseTimes};

/// A flag the user's Ctrl-C raises; engines poll it between tokens through [`Recorder::should_stop`].
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag was raised.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// One delivery of generated tokens: when it happened and how many tokens it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Time since the request start.
    pub at: Duration,
    /// Tokens that became available together (at least 1).
    pub tokens: u32,
}

/// Records the timeline of one request. Created per run; cheap to reuse with [`Recorder::start`].
#[derive(Debug, Default)]
pub struct Recorder {
    start: Option<Instant>,
    stamps: Vec<(Instant, u32)>,
    stop: StopFlag,
    /// Phase marks of this request (empty for engines that mark none).
    marks: Vec<(Phase, Instant)>,
    /// The run's tokens are sorted into reasoning and answer (a reasoning model).
    sorts_reasoning: bool,
    /// Index in `stamps` of the first answer delivery.
    first_answer: Option<usize>,
}

impl Recorder {
    /// A recorder with room for `expected_tokens` deliveries, so that recording never reallocates.
    pub fn new(expected_tokens: usize, stop: StopFlag) -> Self {
        Self {
            start: None,
            stamps: Vec::with_capacity(expected_tokens + 1),
            stop,
            // Four marks per token (decode, sample, detok, own) and a few for the prompt.
            marks: Vec::with_capacity(4 * expected_tokens + 16),
            sorts_reasoning: false,
            first_answer: None,
        }
    }

    /// Stamps the request start and forgets any earlier timeline.
    pub fn start(&mut self) {
        self.stamps.clear();
        self.marks.clear();
        self.sorts_reasoning = false;
        self.first_answer = None;
        self.start = Some(Instant::now());
    }

    /// Reports that `n` generated tokens are available now. This is the timing path: one clock read
    /// and one push into pre-reserved memory.
    #[inline]
    pub fn tokens(&mut self, n: u32) {
        let now = Instant::now();
        if n > 0 {
            if self.sorts_reasoning && self.first_answer.is_none() {
                self.first_answer = Some(self.stamps.len());
            }
            self.stamps.push((now, n));
        }
    }

    /// Declares that this run's tokens are sorted into reasoning ([`Recorder::reasoning`]) and
    /// answer ([`Recorder::tokens`]): the engine knows the model's think markers. Without it (and
    /// without a reasoning delivery) the run records nothing about reasoning.
    #[inline]
    pub fn track_reasoning(&mut self) {
        self.sorts_reasoning = true;
    }

    /// Reports that `n` generated reasoning tokens are available now: stamped as
    /// [`Recorder::tokens`], and counted as reasoning while no answer token came before them.
    #[inline]
    pub fn reasoning(&mut self, n: u32) {
        let now = Instant::now();
        self.sorts_reasoning = true;
        if n > 0 {
            self.stamps.push((now, n));
        }
    }

    /// Whether the run is in its reasoning: tokens were sorted and no answer token came yet.
    #[inline]
    pub fn in_reasoning(&self) -> bool {
        self.sorts_reasoning && self.first_answer.is_none()
    }

    /// Marks the start of `phase` now; it lasts until the next mark or the request end. The
    /// timing path as [`Recorder::tokens`]: one clock read and one push into reserved memory.
    #[inline]
    pub fn phase(&mut self, phase: Phase) {
        self.marks.push((phase, Instant::now()));
    }

    /// Time since the request start on the recorder's clock (`None` before [`Recorder::start`]):
    /// for milestones that are not tokens, such as an HTTP response's headers and first byte.
    #[inline]
    pub fn mark(&self) -> Option<Duration> {
        self.start.map(|s| s.elapsed())
    }

    /// Makes the recorded token total equal `total` when a server's own count (HTTP `usage`)
    /// disagrees with the deliveries: missing tokens are added to the last delivery (which then
    /// counts as a multi-token delivery), surplus tokens are taken from the last deliveries.
    /// Returns the total before the correction.
    pub fn correct_total(&mut self, total: u64) -> u64 {
        let before = self.tokens_so_far();
        if total > before {
            if let Some(last) = self.stamps.last_mut() {
                let missing = u32::try_from(total - before).unwrap_or(u32::MAX);
                last.1 = last.1.saturating_add(missing);
            }
        } else {
            let mut surplus = before - total;
            while surplus > 0 {
                let Some(last) = self.stamps.last_mut() else {
                    break;
                };
                let take = u64::from(last.1).min(surplus);
                last.1 -= take as u32;
                surplus -= take;
                if last.1 == 0 {
                    self.stamps.pop();
                }
            }
        }
        before
    }

    /// Tokens recorded so far in this run.
    pub fn tokens_so_far(&self) -> u64 {
        self.stamps.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    /// Whether the user asked to stop (Ctrl-C); engines check this between tokens.
    #[inline]
    pub fn should_stop(&self) -> bool {
        self.stop.is_raised()
    }

    /// Stamps the end of the request and returns its timeline.
    pub fn finish(&mut self) -> RunTrace {
        let end = Instant::now();
        let start = self.start.take().unwrap_or(end);
        let phases = self.phase_times(start, end);
        let n = self.stamps.len();
        let reasoning = std::mem::take(&mut self.sorts_reasoning).then(|| ReasoningSplit {
            first_answer: self.first_answer.take().filter(|&i| i < n),
        });
        RunTrace {
            deliveries: self
                .stamps
                .drain(..)
                .map(|(at, tokens)| Delivery {
                    at: at.saturating_duration_since(start),
                    tokens,
                })
                .collect(),
            end: end.saturating_duration_since(start),
            phases,
            reasoning,
        }
    }

    fn phase_times(&mut self, start: Instant, end: Instant) -> Option<PhaseTimes> {
        if self.marks.is_empty() {
            return None;
        }
        let rel = |t: Instant| t.saturating_duration_since(start);
        let marks: Vec<(Phase, Duration)> =
            self.marks.drain(..).map(|(p, t)| (p, rel(t))).collect();
        let (first, last) = match (self.stamps.first(), self.stamps.last()) {
            (Some(f), Some(l)) => (rel(f.0), rel(l.0)),
            _ => (Duration::ZERO, Duration::ZERO),
        };
        let after_first = self.tokens_so_far() - self.stamps.first().map_or(0, |f| u64::from(f.1));
        Some(PhaseTimes::from_marks(
            &marks,
            rel(end),
            (first, last),
            after_first,
        ))
    }
}

/// The timeline of one request, relative to its start.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunTrace {
    /// Token deliveries in the order they happened.
    pub deliveries: Vec<Delivery>,
    /// When the engine returned.
    pub end: Duration,
    /// Time per phase, when the engine marked phases.
    pub phases: Option<PhaseTimes>,
    /// Where the reasoning ended, for a run whose tokens were sorted into reasoning and answer;
    /// `None` for every other run.
    pub reasoning: Option<ReasoningSplit>,
}

/// How a reasoning run's deliveries divide into reasoning and answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReasoningSplit {
    /// Index of the first delivery that carried answer tokens; `None` when the reasoning did not
    /// end (every delivery is reasoning).
    pub first_answer: Option<usize>,
}

impl RunTrace {
    /// A trace from millisecond offsets and token counts; for tests and scripted engines.
    pub fn from_millis(deliveries: &[(f64, u32)], end_ms: f64) -> Self {
        Self {
            deliveries: deliveries
                .iter()
                .map(|&(ms, tokens)| Delivery {
                    at: Duration::from_secs_f64(ms / 1e3),
                    tokens,
                })
                .collect(),
            end: Duration::from_secs_f64(end_ms / 1e3),
            phases: None,
            reasoning: None,
        }
    }

    /// The same trace with its first `reasoning` deliveries marked as reasoning (`None`: all of
    /// them, the reasoning did not end); for tests and scripted engines.
    pub fn with_reasoning(mut self, reasoning: Option<usize>) -> Self {
        self.reasoning = Some(ReasoningSplit {
            first_answer: reasoning.filter(|&i| i < self.deliveries.len()),
        });
        self
    }

    /// Generated tokens over all deliveries.
    pub fn tokens(&self) -> u64 {
        self.deliveries.iter().map(|d| u64::from(d.tokens)).sum()
    }

    /// Whether the delivery times never go backwards and none is after the end.
    pub fn is_monotonic(&self) -> bool {
        self.deliveries.windows(2).all(|w| w[0].at <= w[1].at)
            && self.deliveries.last().is_none_or(|d| d.at <= self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_deliveries_in_order_and_counts_tokens() {
        let mut rec = Recorder::new(8, StopFlag::new());
        rec.start();
        rec.tokens(1);
        rec.tokens(0);
        rec.tokens(3);
        assert_eq!(rec.tokens_so_far(), 4);
        let trace = rec.finish();
        assert_eq!(trace.deliveries.len(), 2);
        assert_eq!(trace.tokens(), 4);
        assert!(trace.is_monotonic());
        assert!(trace.deliveries[1].at >= trace.deliveries[0].at);
    }

    #[test]
    fn marks_and_total_corrections() {
        let mut rec = Recorder::new(8, StopFlag::new());
        assert_eq!(rec.mark(), None);
        rec.start();
        let m = rec.mark().unwrap();
        rec.tokens(1);
        rec.tokens(1);
        rec.tokens(2);
        assert!(rec.mark().unwrap() >= m);
        assert_eq!(rec.correct_total(6), 4);
        assert_eq!(rec.tokens_so_far(), 6);
        assert_eq!(rec.correct_total(1), 6);
        let trace = rec.finish();
        assert_eq!(trace.tokens(), 1);
        assert_eq!(trace.deliveries.len(), 1);
    }

    #[test]
    fn phase_marks_cover_the_decode_window() {
        let mut rec = Recorder::new(4, StopFlag::new());
        assert!(rec.finish().phases.is_none());
        rec.start();
        rec.phase(Phase::Prompt);
        rec.phase(Phase::Own);
        rec.tokens(1);
        rec.phase(Phase::Decode);
        rec.phase(Phase::Own);
        rec.tokens(1);
        let trace = rec.finish();
        let p = trace.phases.expect("marked phases");
        assert_eq!(p.window_tokens, 1);
        assert_eq!(p.marks, 4);
        let sum: f64 = p.window_ms.iter().sum();
        assert!((sum - p.window_len_ms).abs() < 1e-6);
        assert!(p.window_ms.iter().all(|&x| x >= 0.0));
    }

    #[test]
    fn reasoning_deliveries_mark_where_the_answer_starts() {
        let mut rec = Recorder::new(8, StopFlag::new());
        rec.start();
        rec.tokens(1);
        assert_eq!(rec.finish().reasoning, None);
        rec.start();
        rec.reasoning(2);
        assert!(rec.in_reasoning());
        rec.reasoning(1);
        rec.tokens(1);
        rec.reasoning(1);
        assert!(!rec.in_reasoning());
        let trace = rec.finish();
        assert_eq!(trace.reasoning.unwrap().first_answer, Some(2));
        assert_eq!(trace.tokens(), 5);
        // Tracked but never reasoning: the first delivery is the answer.
        rec.start();
        rec.track_reasoning();
        rec.tokens(1);
        assert_eq!(rec.finish().reasoning.unwrap().first_answer, Some(0));
        // Reasoning that never ends.
        rec.start();
        rec.reasoning(3);
        assert_eq!(rec.finish().reasoning.unwrap().first_answer, None);
        // The next run starts clean.
        rec.start();
        rec.tokens(1);
        assert_eq!(rec.finish().reasoning, None);
    }

    #[test]
    fn start_forgets_the_previous_run() {
        let mut rec = Recorder::new(4, StopFlag::new());
        rec.start();
        rec.tokens(2);
        rec.start();
        rec.tokens(1);
        assert_eq!(rec.finish().tokens(), 1);
    }

    #[test]
    fn stop_flag_is_seen_by_the_recorder() {
        let flag = StopFlag::new();
        let rec = Recorder::new(1, flag.clone());
        assert!(!rec.should_stop());
        flag.raise();
        assert!(rec.should_stop());
    }
}
