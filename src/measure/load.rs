//! Load measurement: the recorder's one clock stamps every request of a level (scheduled arrival,
//! admission, each token, end), and the level's figures are computed from those stamps only.
//!
//! Per request (offsets from the level start `t=0`; `a` the scheduled arrival, `s` the admission,
//! `t_1 … t_k` the token stamps, `N` the generated tokens):
//! - **queue wait** `s − a`: time the request waited for a free stream.
//! - **TTFT** `t_1 − a` (the user's view, queueing included) and **TTFT from admission** `t_1 − s`.
//! - **TPOT** `(t_k − t_1) / (N − 1)`; **ITL** every gap `t_i − t_{i−1}` (per token of a delivery).
//! - **E2E** `t_k − a`.
//!
//! Per level (`T` = the last request's end): request/s = completed / T; output tok/s = generated
//! tokens of completed requests / T; achieved concurrency = Σ (end − s) / T (time-weighted
//! requests in flight); goodput = requests meeting every `--slo` limit / T. An open-loop level is
//! **saturated** when requests complete more slowly than they arrive: completed / (T − min E2E +
//! 1/R) below 90 % of issued / (last arrival + 1/R).

use std::time::{Duration, Instant};

pub use super::load_sample::{
    token_digest, Goodput, LevelSummary, RequestSample, Slo, PREFIX_TOKENS,
};
use super::Summary;

/// Stamps of one request on the level's clock.
#[derive(Debug)]
struct Stamps {
    scheduled: Duration,
    admitted: Option<Instant>,
    tokens: Vec<(Instant, u32)>,
    end: Option<Instant>,
    prompt_tokens: u64,
    finish: Option<&'static str>,
    error: Option<String>,
    /// Generated token ids, as the engine reported them at the end (empty when it does not).
    token_ids: Vec<i64>,
}

/// The level's recorder: one clock for every request. Engines reach it only through the step's
/// sink ([`LoadRecorder::tokens`], [`LoadRecorder::done`], [`LoadRecorder::fail`]).
#[derive(Debug)]
pub struct LoadRecorder {
    origin: Instant,
    reqs: Vec<Stamps>,
}

impl LoadRecorder {
    /// Starts the level's clock.
    pub fn start(expected_requests: usize) -> Self {
        Self {
            origin: Instant::now(),
            reqs: Vec::with_capacity(expected_requests),
        }
    }

    /// Time since the level started.
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The instant `offset` after the level start.
    pub fn at(&self, offset: Duration) -> Instant {
        self.origin + offset
    }

    /// Request `id` (the next number) arrived at `scheduled`, with room for `max_tokens` stamps.
    pub fn arrive(&mut self, id: usize, scheduled: Duration, max_tokens: u32) {
        debug_assert_eq!(id, self.reqs.len());
        self.reqs.push(Stamps {
            scheduled,
            admitted: None,
            tokens: Vec::with_capacity(max_tokens as usize + 1),
            end: None,
            prompt_tokens: 0,
            finish: None,
            error: None,
            token_ids: Vec::new(),
        });
    }

    /// Request `id` was handed to the engine now.
    pub fn admitted(&mut self, id: usize) {
        if let Some(r) = self.reqs.get_mut(id) {
            r.admitted = Some(Instant::now());
        }
    }

    /// `n` generated tokens of request `id` are available now. The timing path: one clock read
    /// and one push into reserved memory per token delivery.
    #[inline]
    pub fn tokens(&mut self, id: usize, n: u32) {
        let now = Instant::now();
        if let Some(r) = self.reqs.get_mut(id) {
            r.tokens.push((now, n));
        }
    }

    /// Request `id` finished after evaluating `prompt_tokens`; `finish` says why (`length`, `eos`);
    /// `token_ids` are its generated tokens (moved in, digested after the level).
    pub fn done(
        &mut self,
        id: usize,
        prompt_tokens: u64,
        finish: &'static str,
        token_ids: Vec<i64>,
    ) {
        let now = Instant::now();
        if let Some(r) = self.reqs.get_mut(id) {
            r.end = Some(now);
            r.prompt_tokens = prompt_tokens;
            r.finish = Some(finish);
            r.token_ids = token_ids;
        }
    }

    /// Request `id` failed (or was cut off) with `error`.
    pub fn fail(&mut self, id: usize, error: String) {
        if let Some(r) = self.reqs.get_mut(id) {
            if r.end.is_none() && r.error.is_none() {
                r.end = Some(Instant::now());
                r.error = Some(error);
            }
        }
    }

    /// Marks every request not yet finished as failed with `why`.
    pub fn fail_unfinished(&mut self, why: &str) {
        for id in 0..self.reqs.len() {
            if self.reqs[id].end.is_none() {
                self.fail(id, why.to_string());
            }
        }
    }

    /// Requests that arrived so far.
    pub fn arrived(&self) -> usize {
        self.reqs.len()
    }

    /// The per-request samples, in arrival order.
    pub fn samples(&self) -> Vec<RequestSample> {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let off = |t: Instant| ms(t.saturating_duration_since(self.origin));
        let ok = |r: &Stamps| r.error.is_none() && !r.token_ids.is_empty();
        self.reqs
            .iter()
            .enumerate()
            .map(|(index, r)| {
                // No ids (an engine that streams text only, e.g. over HTTP): no digest.
                let digest = |ids: &[i64]| (ok(r) && !ids.is_empty()).then(|| token_digest(ids));
                let scheduled_ms = ms(r.scheduled);
                let admitted_ms = r.admitted.map(off);
                let first = r.tokens.first().map(|&(t, _)| off(t));
                let last = r.tokens.last().map(|&(t, _)| off(t));
                let output_tokens: u64 = r.tokens.iter().map(|&(_, n)| u64::from(n)).sum();
                let mut itl_ms = Vec::with_capacity(r.tokens.len());
                for w in r.tokens.windows(2) {
                    let gap = ms(w[1].0.saturating_duration_since(w[0].0));
                    for _ in 0..w[1].1 {
                        itl_ms.push(gap / f64::from(w[1].1));
                    }
                }
                let tpot_ms = match (first, last) {
                    (Some(f), Some(l)) if output_tokens > 1 => {
                        Some((l - f) / (output_tokens - u64::from(r.tokens[0].1)).max(1) as f64)
                    }
                    _ => None,
                };
                RequestSample {
                    index,
                    scheduled_ms,
                    admitted_ms,
                    end_ms: r.end.map(off).or(last),
                    queue_wait_ms: admitted_ms.map(|a| (a - scheduled_ms).max(0.0)),
                    ttft_ms: first.map(|f| f - scheduled_ms),
                    ttft_from_admission_ms: first.zip(admitted_ms).map(|(f, a)| f - a),
                    tpot_ms,
                    e2e_ms: last.map(|l| l - scheduled_ms),
                    prompt_tokens: r.prompt_tokens,
                    output_tokens,
                    itl_ms,
                    finish: r.finish.map(str::to_string),
                    error: r.error.clone(),
                    output_digest: digest(&r.token_ids),
                    output_prefix_digest: digest(
                        &r.token_ids[..r.token_ids.len().min(PREFIX_TOKENS)],
                    ),
                }
            })
            .collect()
    }
}

/// Summarises a level's samples; `rate` is the open loop's requested rate.
pub fn summarize(samples: &[RequestSample], rate: Option<f64>, slo: Option<Slo>) -> LevelSummary {
    let ok: Vec<&RequestSample> = samples.iter().filter(|r| r.error.is_none()).collect();
    let duration_ms = samples
        .iter()
        .filter_map(|r| r.end_ms)
        .fold(0.0f64, f64::max);
    let secs = (duration_ms / 1e3).max(1e-9);
    let output: u64 = ok.iter().map(|r| r.output_tokens).sum();
    let prompt: u64 = ok.iter().map(|r| r.prompt_tokens).sum();
    let busy_ms: f64 = samples
        .iter()
        .filter_map(|r| Some(r.end_ms? - r.admitted_ms?))
        .sum();
    let col = |f: fn(&RequestSample) -> Option<f64>| -> Option<Summary> {
        Summary::of(&ok.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let itl: Vec<f64> = ok.iter().flat_map(|r| r.itl_ms.iter().copied()).collect();
    let (achieved_rate, saturated) = match rate {
        Some(r) if r > 0.0 && !ok.is_empty() => {
            let gap = 1.0 / r;
            let last_arrival = samples.iter().map(|s| s.scheduled_ms).fold(0.0, f64::max) / 1e3;
            let min_e2e = ok
                .iter()
                .filter_map(|s| s.e2e_ms)
                .fold(f64::INFINITY, f64::min)
                / 1e3;
            let min_e2e = if min_e2e.is_finite() { min_e2e } else { 0.0 };
            let achieved = ok.len() as f64 / (secs - min_e2e + gap).max(1e-9);
            let offered = samples.len() as f64 / (last_arrival + gap);
            (Some(achieved), achieved < 0.9 * offered)
        }
        _ => (None, false),
    };
    LevelSummary {
        requests: samples.len() as u64,
        completed: ok.len() as u64,
        failed: (samples.len() - ok.len()) as u64,
        duration_ms,
        request_throughput: ok.len() as f64 / secs,
        output_throughput_tps: output as f64 / secs,
        total_token_throughput_tps: (output + prompt) as f64 / secs,
        achieved_concurrency: busy_ms / duration_ms.max(1e-9),
        requested_rate: rate,
        achieved_rate,
        saturated,
        goodput: slo.map(|slo| {
            let met = samples.iter().filter(|r| slo.met(r)).count() as u64;
            Goodput {
                slo,
                requests_met: met,
                request_rate: met as f64 / secs,
                fraction: met as f64 / samples.len().max(1) as f64,
            }
        }),
        ttft_ms: col(|r| r.ttft_ms),
        ttft_from_admission_ms: col(|r| r.ttft_from_admission_ms),
        queue_wait_ms: col(|r| r.queue_wait_ms),
        tpot_ms: col(|r| r.tpot_ms),
        itl_ms: Summary::of(&itl),
        e2e_ms: col(|r| r.e2e_ms),
        output_tokens: Summary::of_counts(&ok.iter().map(|r| r.output_tokens).collect::<Vec<_>>()),
        prompt_tokens: Summary::of_counts(&ok.iter().map(|r| r.prompt_tokens).collect::<Vec<_>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(index: usize, sched: f64, adm: f64, tokens: &[f64], error: bool) -> RequestSample {
        let first = tokens.first().copied();
        let last = tokens.last().copied();
        RequestSample {
            index,
            scheduled_ms: sched,
            admitted_ms: Some(adm),
            end_ms: last.or(Some(adm)),
            queue_wait_ms: Some(adm - sched),
            ttft_ms: first.map(|f| f - sched),
            ttft_from_admission_ms: first.map(|f| f - adm),
            tpot_ms: (tokens.len() > 1)
                .then(|| (last.unwrap() - first.unwrap()) / (tokens.len() - 1) as f64),
            e2e_ms: last.map(|l| l - sched),
            prompt_tokens: 10,
            output_tokens: tokens.len() as u64,
            itl_ms: tokens.windows(2).map(|w| w[1] - w[0]).collect(),
            finish: (!error).then(|| "length".into()),
            error: error.then(|| "boom".into()),
            output_digest: None,
            output_prefix_digest: None,
        }
    }

    #[test]
    fn level_figures_from_hand_made_requests() {
        // Two requests in flight over 0..100 ms and 0..50 ms, and a failed one.
        let reqs = [
            sample(0, 0.0, 0.0, &[20.0, 60.0, 100.0], false),
            sample(1, 0.0, 10.0, &[30.0, 50.0], false),
            sample(2, 0.0, 0.0, &[], true),
        ];
        let slo: Slo = "ttft=25".parse().unwrap();
        let s = summarize(&reqs, None, Some(slo));
        assert_eq!((s.requests, s.completed, s.failed), (3, 2, 1));
        assert_eq!(s.duration_ms, 100.0);
        assert!((s.request_throughput - 20.0).abs() < 1e-9);
        assert!((s.output_throughput_tps - 50.0).abs() < 1e-9);
        // (100 + 40 + 0) ms busy over 100 ms.
        assert!((s.achieved_concurrency - 1.4).abs() < 1e-9);
        let g = s.goodput.unwrap();
        assert_eq!(g.requests_met, 1);
        assert!((g.fraction - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.ttft_ms.unwrap().min, 20.0);
        assert_eq!(s.queue_wait_ms.unwrap().max, 10.0);
        assert_eq!(s.itl_ms.unwrap().max, 40.0);
        assert!(!s.saturated && s.achieved_rate.is_none());
    }

    #[test]
    fn an_open_loop_that_falls_behind_is_saturated() {
        // Ten arrivals 10 ms apart (100/s), served one after another at 50 ms each.
        let reqs: Vec<RequestSample> = (0..10)
            .map(|i| {
                let sched = i as f64 * 10.0;
                let adm = i as f64 * 50.0;
                sample(i, sched, adm, &[adm + 25.0, adm + 50.0], false)
            })
            .collect();
        let s = summarize(&reqs, Some(100.0), None);
        assert!(s.saturated, "{:?}", s.achieved_rate);
        // The same arrivals served at once keep up.
        let fast: Vec<RequestSample> = (0..10)
            .map(|i| {
                let t = i as f64 * 10.0;
                sample(i, t, t, &[t + 2.0, t + 4.0], false)
            })
            .collect();
        assert!(!summarize(&fast, Some(100.0), None).saturated);
    }

    #[test]
    fn the_recorder_turns_events_into_samples() {
        let mut rec = LoadRecorder::start(2);
        rec.arrive(0, Duration::ZERO, 4);
        rec.admitted(0);
        rec.arrive(1, Duration::ZERO, 4);
        for _ in 0..3 {
            rec.tokens(0, 1);
        }
        rec.done(0, 7, "length", (0..20).collect());
        rec.fail_unfinished("interrupted");
        let s = rec.samples();
        assert_eq!((s[0].output_tokens, s[0].prompt_tokens), (3, 7));
        assert_eq!(s[0].itl_ms.len(), 2);
        assert_eq!(s[0].finish.as_deref(), Some("length"));
        assert!(s[0].ttft_ms.unwrap() >= s[0].ttft_from_admission_ms.unwrap());
        assert_eq!(s[1].error.as_deref(), Some("interrupted"));
        let ids: Vec<i64> = (0..20).collect();
        assert_eq!(s[0].output_digest, Some(token_digest(&ids)));
        assert_eq!(s[0].output_prefix_digest, Some(token_digest(&ids[..16])));
        assert_eq!(s[1].output_digest, None);
        assert_eq!(s[1].admitted_ms, None);
    }
}
