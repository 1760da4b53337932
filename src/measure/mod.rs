//! Measurement: the only place that reads the clock, defines the metrics and computes statistics.
//! An engine's load time is timed here too, around its constructor ([`time_load`]).
//!
//! # How a run is timed
//!
//! The suite calls [`Recorder::start`] at the instant it hands a request to an engine. The engine
//! tokenizes, evaluates the prompt and generates; each time one or more generated tokens become
//! available *as text* it calls [`Recorder::tokens`] with how many. The recorder stamps each call
//! with [`std::time::Instant`] (a monotonic clock) and nothing else: engines never read the clock.
//! When the engine returns, the suite calls [`Recorder::finish`], which stamps the end of the request.
//!
//! # Definitions (one run)
//!
//! Let `t0` be the request start, `t_1 … t_k` the instants of the `k` deliveries, `n_i` the number of
//! tokens in delivery `i`, and `N = Σ n_i` the generated token count (exact: counted from engine
//! token ids, never from text chunks).
//!
//! - **request start** (`t0`): the instant the request is handed to the engine. Tokenization, prompt
//!   evaluation and, over HTTP, the whole network round trip come after it.
//! - **TTFT** (`ttft_ms`): `t_1 − t0`, request start to the first generated token available as text.
//! - **E2E** (`e2e_latency_ms`): `t_k − t0`, request start to the last generated token.
//! - **ITL samples** (`itl_ms`): one per delivery after the first: `(t_i − t_{i−1}) / n_i`. For engines
//!   that deliver one token at a time (llama.cpp in-process) these are exactly the gaps between
//!   consecutive tokens. A delivery of several tokens gives one sample, the gap shared by its tokens,
//!   and is counted in `multi_token_deliveries`: no zero gaps are invented for the tokens that arrived
//!   together.
//! - **ITL mean** (`itl_mean_ms`): `(t_k − t_1) / (N − n_1)`, the mean time per token after the first
//!   delivery (the token-weighted mean of the ITL samples).
//! - **TPS** (`tps`): the decode rate, `(N − n_1) / (t_k − t_1)` tokens per second, TTFT excluded;
//!   with one token per delivery this is `(N − 1) / (t_last − t_first)`.
//! - **Seed TPS** (`seed_tps`): `N / (E2E − TTFT)`, the formula of the original Python benchmark, kept
//!   under its own name so old numbers can be compared. It overstates the decode rate by one token.
//! - **Prefill TPS** (`prefill_tps`): prompt tokens / TTFT, the prompt evaluation rate as seen by
//!   the caller (tokenization and the first decode step included).
//! - **Total** (`total_ms`): `t_end − t0`, request start to the engine returning (the tail after the
//!   last token: for HTTP the end of the stream).
//!
//! An end-of-generation token the model emits (only without ignore-eos) is a generated token on
//! every engine: counted in `N`, stamped when sampled, and it ends the run (as llama-server and
//! vLLM count it in `usage.completion_tokens`).
//!
//! # Reasoning models
//!
//! For a model that reasons (its think markers are found, or the server streams reasoning deltas)
//! the engine reports reasoning tokens apart from answer tokens ([`Recorder::reasoning`]), and a run
//! also has:
//!
//! - **TTFO** (`ttfo_ms`): request start to the first delivery that carries an answer token (time to
//!   first output token); TTFT stays the first token of any kind. Null, with a note, when the
//!   reasoning did not end within the run's tokens.
//! - `reasoning_tokens`: tokens before that delivery; `answer_tokens`: `N − reasoning_tokens`.
//!
//! Runs of other models record none of these (their results are unchanged).
//!
//! A run with no generated token has no TTFT and fails; a run with a single delivery has no ITL or
//! TPS (those metrics are left out of that run's record).
//!
//! # Statistics (over the measured runs)
//!
//! See [`stats::Summary`]: mean, sample standard deviation, min, max, and p50/p95/p99 by linear
//! interpolation between closest ranks (numpy's default `linear` method).

pub mod json_float;
pub mod load;
pub mod load_clock;
pub mod load_sample;
pub mod metrics;
pub mod phases;
pub mod recorder;
pub mod significance;
pub mod span;
pub mod stats;

pub use load_clock::{time_load, LoadClock, LoadTime, LoadTimed};
pub use metrics::{ReasoningMetrics, RunMetrics};
pub use phases::{Phase, PhaseTimes};
pub use recorder::{ReasoningSplit, Recorder, RunTrace, StopFlag};
pub use stats::Summary;
