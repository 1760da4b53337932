//! Per-run metrics computed from a [`RunTrace`]; the definitions are in the module doc of `measure`.

use super::recorder::RunTrace;

/// The metrics of one run. Times in milliseconds, rates in tokens per second.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    /// Request start to the first generated token.
    pub ttft_ms: f64,
    /// Request start to the last generated token.
    pub e2e_latency_ms: f64,
    /// Request start to the engine returning (end of stream over HTTP).
    pub total_ms: f64,
    /// Generated tokens (exact).
    pub tokens_generated: u64,
    /// Prompt tokens as the engine tokenized them.
    pub prompt_tokens: u64,
    /// Decode rate `(N − n_1) / (t_k − t_1)`; `None` with a single delivery.
    pub tps: Option<f64>,
    /// The original benchmark's `N / (E2E − TTFT)`; `None` when E2E equals TTFT.
    pub seed_tps: Option<f64>,
    /// Prompt tokens / TTFT.
    pub prefill_tps: Option<f64>,
    /// `(t_k − t_1) / (N − n_1)`; `None` with a single delivery.
    pub itl_mean_ms: Option<f64>,
    /// One sample per delivery after the first: gap to the previous delivery / tokens delivered.
    pub itl_ms: Vec<f64>,
    /// Deliveries that carried more than one token.
    pub multi_token_deliveries: u64,
    /// Time per phase, when the engine marked phases (see [`crate::measure::phases`]).
    pub phases: Option<super::PhaseTimes>,
    /// Reasoning and answer, for a run of a model that reasons; `None` for every other run.
    pub reasoning: Option<ReasoningMetrics>,
}

/// How a reasoning model's run divides into reasoning and answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReasoningMetrics {
    /// Request start to the first answer token (TTFO); `None` when the reasoning did not end
    /// within the run's tokens.
    pub ttfo_ms: Option<f64>,
    /// Tokens before the first answer token (the markers and the thoughts).
    pub reasoning_tokens: u64,
    /// Tokens from the first answer token on.
    pub answer_tokens: u64,
}

impl ReasoningMetrics {
    /// Why TTFO is null, when it is.
    pub fn ttfo_note(&self) -> Option<String> {
        self.ttfo_ms.is_none().then(|| {
            format!(
                "the reasoning did not end within the run's {} generated tokens: no answer token (raise --max-tokens, or --thinking off)",
                self.reasoning_tokens
            )
        })
    }
}

/// Why a trace gives no metrics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    /// The engine returned without reporting a token.
    #[error("the engine generated no token")]
    NoTokens,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl RunMetrics {
    /// Computes the metrics of one run.
    pub fn from_trace(trace: &RunTrace, prompt_tokens: u64) -> Result<Self, MetricsError> {
        let first = trace.deliveries.first().ok_or(MetricsError::NoTokens)?;
        let last = trace.deliveries.last().ok_or(MetricsError::NoTokens)?;
        let tokens = trace.tokens();
        let ttft_ms = ms(first.at);
        let e2e_latency_ms = ms(last.at);
        let decode_ms = e2e_latency_ms - ttft_ms;
        let after_first = tokens - u64::from(first.tokens);

        let itl_ms: Vec<f64> = trace
            .deliveries
            .windows(2)
            .map(|w| ms(w[1].at - w[0].at) / f64::from(w[1].tokens))
            .collect();
        let (tps, itl_mean_ms) = if after_first > 0 && decode_ms > 0.0 {
            (
                Some(after_first as f64 / (decode_ms / 1e3)),
                Some(decode_ms / after_first as f64),
            )
        } else {
            (None, None)
        };
        Ok(Self {
            ttft_ms,
            e2e_latency_ms,
            total_ms: ms(trace.end),
            tokens_generated: tokens,
            prompt_tokens,
            tps,
            seed_tps: (decode_ms > 0.0).then(|| tokens as f64 / (decode_ms / 1e3)),
            prefill_tps: (ttft_ms > 0.0 && prompt_tokens > 0)
                .then(|| prompt_tokens as f64 / (ttft_ms / 1e3)),
            itl_mean_ms,
            itl_ms,
            multi_token_deliveries: trace.deliveries.iter().filter(|d| d.tokens > 1).count() as u64,
            reasoning: trace.reasoning.map(|p| {
                let split = p.first_answer.unwrap_or(trace.deliveries.len());
                let reasoning_tokens: u64 = trace.deliveries[..split]
                    .iter()
                    .map(|d| u64::from(d.tokens))
                    .sum();
                ReasoningMetrics {
                    ttfo_ms: p.first_answer.map(|i| ms(trace.deliveries[i].at)),
                    reasoning_tokens,
                    answer_tokens: tokens - reasoning_tokens,
                }
            }),
            phases: trace.phases.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn single_token_deliveries_follow_the_definitions() {
        // First token at 50 ms, then 4 more every 10 ms: last at 90 ms; stream ends at 95 ms.
        let trace = RunTrace::from_millis(
            &[(50.0, 1), (60.0, 1), (70.0, 1), (80.0, 1), (90.0, 1)],
            95.0,
        );
        let m = RunMetrics::from_trace(&trace, 20).unwrap();
        assert!(close(m.ttft_ms, 50.0));
        assert!(close(m.e2e_latency_ms, 90.0));
        assert!(close(m.total_ms, 95.0));
        assert_eq!(m.tokens_generated, 5);
        // (5 - 1) tokens over 40 ms = 100 tok/s; the seed's formula says 5 / 40 ms = 125 tok/s.
        assert!(close(m.tps.unwrap(), 100.0));
        assert!(close(m.seed_tps.unwrap(), 125.0));
        assert!(close(m.itl_mean_ms.unwrap(), 10.0));
        assert_eq!(m.itl_ms.len(), 4);
        assert!(m.itl_ms.iter().all(|&g| close(g, 10.0)));
        assert!(close(m.prefill_tps.unwrap(), 400.0));
        assert_eq!(m.multi_token_deliveries, 0);
    }

    #[test]
    fn a_multi_token_delivery_shares_its_gap_and_is_flagged() {
        // 1 token at 10 ms, 3 tokens at 40 ms, 1 token at 50 ms.
        let trace = RunTrace::from_millis(&[(10.0, 1), (40.0, 3), (50.0, 1)], 50.0);
        let m = RunMetrics::from_trace(&trace, 0).unwrap();
        assert_eq!(m.tokens_generated, 5);
        assert_eq!(m.itl_ms.len(), 2);
        assert!(close(m.itl_ms[0], 10.0)); // 30 ms shared by 3 tokens
        assert!(close(m.itl_ms[1], 10.0));
        assert!(close(m.tps.unwrap(), 100.0)); // 4 tokens in 40 ms
        assert_eq!(m.multi_token_deliveries, 1);
        assert_eq!(m.prefill_tps, None);
    }

    #[test]
    fn a_first_delivery_of_several_tokens_excludes_them_from_the_decode_rate() {
        let trace = RunTrace::from_millis(&[(10.0, 2), (30.0, 2)], 30.0);
        let m = RunMetrics::from_trace(&trace, 5).unwrap();
        assert!(close(m.tps.unwrap(), 100.0)); // 2 tokens in 20 ms
        assert!(close(m.seed_tps.unwrap(), 200.0)); // 4 tokens in 20 ms
    }

    #[test]
    fn reasoning_runs_have_ttfo_and_token_split() {
        let deliveries = [(10.0, 1), (20.0, 1), (30.0, 2), (40.0, 1)];
        let plain = RunMetrics::from_trace(&RunTrace::from_millis(&deliveries, 41.0), 4).unwrap();
        assert_eq!(plain.reasoning, None);
        let trace = RunTrace::from_millis(&deliveries, 41.0).with_reasoning(Some(2));
        let r = RunMetrics::from_trace(&trace, 4)
            .unwrap()
            .reasoning
            .unwrap();
        assert!(close(r.ttfo_ms.unwrap(), 30.0));
        assert_eq!((r.reasoning_tokens, r.answer_tokens), (2, 3));
        assert_eq!(r.ttfo_note(), None);
        let trace = RunTrace::from_millis(&deliveries, 41.0).with_reasoning(None);
        let m = RunMetrics::from_trace(&trace, 4).unwrap();
        let r = m.reasoning.unwrap();
        assert_eq!(
            (r.ttfo_ms, r.reasoning_tokens, r.answer_tokens),
            (None, 5, 0)
        );
        assert!(r
            .ttfo_note()
            .unwrap()
            .contains("did not end within the run's 5"));
        assert!(close(m.ttft_ms, 10.0)); // TTFT is unchanged: the first token of any kind
        let trace = RunTrace::from_millis(&deliveries, 41.0).with_reasoning(Some(0));
        let r = RunMetrics::from_trace(&trace, 4)
            .unwrap()
            .reasoning
            .unwrap();
        assert!(close(r.ttfo_ms.unwrap(), 10.0));
        assert_eq!((r.reasoning_tokens, r.answer_tokens), (0, 5));
    }

    #[test]
    fn one_delivery_has_no_rate_and_no_tokens_is_an_error() {
        let one = RunMetrics::from_trace(&RunTrace::from_millis(&[(5.0, 1)], 6.0), 3).unwrap();
        assert_eq!(one.tps, None);
        assert_eq!(one.itl_mean_ms, None);
        assert_eq!(one.seed_tps, None);
        assert!(one.itl_ms.is_empty());
        let none = RunMetrics::from_trace(&RunTrace::from_millis(&[], 6.0), 3);
        assert_eq!(none, Err(MetricsError::NoTokens));
    }
}
