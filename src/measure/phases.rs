//! Per-token phases: what an engine marks on the recorder (decode, sample, detokenize, own
//! bookkeeping) and the time each phase took, within the decode window and over the whole request.

use std::time::Duration;

/// A phase of one request. An engine marks the start of a phase on the recorder
/// ([`crate::measure::Recorder::phase`]); the phase lasts until the next mark (or the request end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Prompt evaluation (batches of prompt tokens), up to the prompt's logits (vLLM: the engine
    /// core steps before the first token, which sample it too).
    Prompt,
    /// vLLM: one engine core step (scheduling, the model's forward pass, sampling).
    Step,
    /// vLLM: `LLMEngine.step()`'s work after the engine core returns (output processing, stats).
    Output,
    /// One-token graph compute, up to the logits being readable.
    Decode,
    /// The sampler chain over the logits.
    Sample,
    /// Token to text (`token_to_piece`) and text assembly.
    Detok,
    /// The tool's own bookkeeping: recording the token, batch preparation, end checks (on vLLM:
    /// the driver's Python between engine steps, the delivery callback included).
    Own,
}

impl Phase {
    /// Every phase, in the order the report lists them.
    pub const ALL: [Phase; PHASES] = [
        Phase::Prompt,
        Phase::Step,
        Phase::Output,
        Phase::Decode,
        Phase::Sample,
        Phase::Detok,
        Phase::Own,
    ];

    /// The phase's name in results and reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prompt => "prompt",
            Phase::Decode => "decode",
            Phase::Sample => "sample",
            Phase::Detok => "detok",
            Phase::Own => "own",
            Phase::Step => "step",
            Phase::Output => "output",
        }
    }

    /// The phase named `name` (as [`Phase::name`] gives it).
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many phases there are.
pub const PHASES: usize = 7;

/// The time in each phase of one request (ms), indexed like [`Phase::ALL`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseTimes {
    /// Time per phase between the first and the last token delivery (the decode window, whose
    /// length over the tokens after the first is the ITL mean).
    pub window_ms: [f64; PHASES],
    /// Time per phase over the whole request (request start to the engine returning; time
    /// before the first mark is not in any phase).
    pub total_ms: [f64; PHASES],
    /// Length of the decode window (ms): last delivery − first delivery.
    pub window_len_ms: f64,
    /// Tokens delivered after the first delivery (the window's per-token divisor).
    pub window_tokens: u64,
    /// Phase marks made in this request.
    pub marks: u64,
    /// Marks made per phase (an engine's own phases are the ones it marks).
    pub marked: [u64; PHASES],
}

impl PhaseTimes {
    /// Sums phase intervals: mark `i` lasts from its time to the next mark's (the last one to
    /// `end`). `window` is (first delivery, last delivery); intervals are clipped to it for
    /// [`PhaseTimes::window_ms`]. All times are offsets from the request start.
    pub fn from_marks(
        marks: &[(Phase, Duration)],
        end: Duration,
        window: (Duration, Duration),
        window_tokens: u64,
    ) -> Self {
        let mut out = PhaseTimes {
            window_len_ms: ms(window.1.saturating_sub(window.0)),
            window_tokens,
            marks: marks.len() as u64,
            ..PhaseTimes::default()
        };
        for (i, &(phase, from)) in marks.iter().enumerate() {
            let to = marks.get(i + 1).map_or(end, |m| m.1).max(from);
            out.total_ms[phase.index()] += ms(to - from);
            out.marked[phase.index()] += 1;
            let (a, b) = (from.max(window.0), to.min(window.1));
            if b > a {
                out.window_ms[phase.index()] += ms(b - a);
            }
        }
        out
    }

    /// Time in `phase` within the decode window (ms).
    pub fn window(&self, phase: Phase) -> f64 {
        self.window_ms[phase.index()]
    }

    /// Whether the engine marked `phase` in this request.
    pub fn was_marked(&self, phase: Phase) -> bool {
        self.marked[phase.index()] > 0
    }

    /// Time in `phase` over the whole request (ms).
    pub fn total(&self, phase: Phase) -> f64 {
        self.total_ms[phase.index()]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn intervals_last_until_the_next_mark_and_are_clipped_to_the_window() {
        // prompt 0-10, sample 10-12, detok 12-13, own 13-14 (token 1 at 13), decode 14-24,
        // sample 24-26, detok 26-27, own 27-28 (token 2 at 27), end 28.
        let marks = [
            (Phase::Prompt, at(0)),
            (Phase::Sample, at(10)),
            (Phase::Detok, at(12)),
            (Phase::Own, at(13)),
            (Phase::Decode, at(14)),
            (Phase::Sample, at(24)),
            (Phase::Detok, at(26)),
            (Phase::Own, at(27)),
        ];
        let p = PhaseTimes::from_marks(&marks, at(28), (at(13), at(27)), 1);
        assert_eq!(p.total(Phase::Prompt), 10.0);
        assert_eq!(p.total(Phase::Sample), 4.0);
        assert_eq!(p.total(Phase::Own), 2.0);
        assert_eq!(p.window(Phase::Prompt), 0.0);
        assert_eq!(p.window(Phase::Decode), 10.0);
        assert_eq!(p.window(Phase::Sample), 2.0);
        assert_eq!(p.window(Phase::Detok), 1.0);
        assert_eq!(p.window(Phase::Own), 1.0);
        assert_eq!(p.window_ms.iter().sum::<f64>(), p.window_len_ms);
        assert_eq!(p.marks, 8);
        assert!(p.was_marked(Phase::Detok) && !p.was_marked(Phase::Step));
    }

    #[test]
    fn names_round_trip() {
        for p in Phase::ALL {
            assert_eq!(Phase::from_name(p.name()), Some(p));
        }
        assert_eq!(Phase::from_name("nope"), None);
    }
}
