//! The `phases` object of a run and of a prompt summary: where each generated token's time went.
//! In-process engines report the phases they marked on the recorder (decode, sample, detok, own);
//! HTTP engines split the client's per-token time into the server's own generation time and the
//! rest (server overhead outside its timings plus transport and client parsing).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::measure::{Phase, PhaseTimes};

/// Where the phase figures come from: marks on the recorder.
pub const SOURCE_MARKS: &str = "recorder marks";
/// Where the phase figures come from: the server's `timings` against the client's stamps.
pub const SOURCE_SERVER: &str = "server timings vs client stamps";

/// One phase's time over the decode window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct PhaseStat {
    /// Time in the phase over the window (ms).
    pub sum_ms: f64,
    /// Time in the phase per token after the first (ms).
    pub per_token_ms: f64,
    /// Share of the measured per-token time (%).
    pub share_pct: f64,
}

/// HTTP: the client's time to first token split by the server's own prompt time. Sums over
/// `runs` runs (one in a run's record).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct FirstTokenSplit {
    /// Runs summed.
    pub runs: u64,
    /// The client's TTFT (ms).
    pub client_ms: f64,
    /// The server's `timings.prompt_ms`: its compute up to the first token (ms).
    pub server_ms: f64,
    /// The rest: the server's work outside its timings (HTTP, template, tokenization, queue)
    /// and transport to the client (ms).
    pub outside_ms: f64,
}

/// The phase breakdown of one run, or pooled over a prompt's runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PhasesRecord {
    /// [`SOURCE_MARKS`] or [`SOURCE_SERVER`].
    pub source: String,
    /// Tokens after the first delivery: the per-token divisor.
    pub tokens: u64,
    /// The measured decode window: last delivery − first delivery (ms); per token it is the ITL
    /// mean.
    pub measured_ms: f64,
    /// Measured time per token (ms).
    pub measured_per_token_ms: f64,
    /// Each phase over the window, in report order.
    pub phases: IndexMap<String, PhaseStat>,
    /// Sum of the phases over the measured window (%): 100 when every microsecond is accounted.
    pub accounted_pct: f64,
    /// Time in prompt evaluation (ms), when marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_ms: Option<f64>,
    /// Decode time over the whole request (ms), to set against llama.cpp's `t_eval_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_total_ms: Option<f64>,
    /// Sampling time over the whole request (ms), one sample per generated token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_total_ms: Option<f64>,
    /// llama.cpp's own one-token decode time (`t_eval_ms`) for the cross-check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_eval_ms: Option<f64>,
    /// vLLM: time in engine core steps over the whole request (ms), prompt step excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_total_ms: Option<f64>,
    /// Detokenization over the whole request (ms): on vLLM the driver decodes the text once,
    /// after the last token, so it is outside the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detok_total_ms: Option<f64>,
    /// HTTP: the first token's split (server prompt time against the client's TTFT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token: Option<FirstTokenSplit>,
}

impl PhasesRecord {
    fn build(source: &str, tokens: u64, measured_ms: f64, sums: &[(&str, f64)]) -> Self {
        let per = |x: f64| if tokens > 0 { x / tokens as f64 } else { 0.0 };
        let share = |x: f64| {
            if measured_ms > 0.0 {
                100.0 * x / measured_ms
            } else {
                0.0
            }
        };
        let phases: IndexMap<String, PhaseStat> = sums
            .iter()
            .map(|&(name, sum)| {
                let sum = sum.max(0.0);
                (
                    name.to_string(),
                    PhaseStat {
                        sum_ms: sum,
                        per_token_ms: per(sum),
                        share_pct: share(sum),
                    },
                )
            })
            .collect();
        let total: f64 = phases.values().map(|p| p.sum_ms).sum();
        PhasesRecord {
            source: source.into(),
            tokens,
            measured_ms,
            measured_per_token_ms: per(measured_ms),
            accounted_pct: share(total),
            phases,
            ..PhasesRecord::default()
        }
    }

    /// A run's breakdown from its recorder marks: the phases the engine marked (llama.cpp:
    /// decode, sample, detok, own; vLLM: step, output, own); `engine_eval_ms` is llama.cpp's
    /// `t_eval_ms` where the engine reports it. Prompt time inside the window (none on
    /// llama.cpp) is left out of the per-token phases.
    pub fn from_marks(p: &PhaseTimes, engine_eval_ms: Option<f64>) -> Self {
        let sums: Vec<(&str, f64)> = Phase::ALL
            .iter()
            .filter(|&&ph| ph != Phase::Prompt && p.was_marked(ph))
            .map(|&ph| (ph.name(), p.window(ph)))
            .collect();
        let mut r = Self::build(SOURCE_MARKS, p.window_tokens, p.window_len_ms, &sums);
        let marked = |ph: Phase| p.was_marked(ph).then(|| p.total(ph));
        r.prompt_ms = marked(Phase::Prompt);
        r.decode_total_ms = marked(Phase::Decode);
        r.sample_total_ms = marked(Phase::Sample);
        r.step_total_ms = marked(Phase::Step);
        r.detok_total_ms = marked(Phase::Detok);
        r.engine_eval_ms = engine_eval_ms;
        r
    }

    /// An HTTP run's breakdown: the server's generation time per token (`predicted_ms` over
    /// `predicted_n − 1`: llama-server's clock starts at the first sampled token, so it spans the
    /// decodes after it) times the window's tokens is the server's compute; the rest of the
    /// window is server overhead outside its timings, transport and client parsing.
    pub fn from_server(
        predicted_ms: f64,
        predicted_n: u64,
        window_tokens: u64,
        window_ms: f64,
    ) -> Option<Self> {
        if predicted_n < 2 || window_tokens == 0 {
            return None;
        }
        let per_token = predicted_ms / (predicted_n - 1) as f64;
        let server = (per_token * window_tokens as f64).min(window_ms);
        Some(Self::build(
            SOURCE_SERVER,
            window_tokens,
            window_ms,
            &[("server", server), ("outside", window_ms - server)],
        ))
    }

    /// Adds the first token's split: the client's TTFT against the server's `prompt_ms` (prompt
    /// evaluation up to the first sampled token).
    pub fn with_first_token(mut self, client_ttft_ms: f64, server_prompt_ms: Option<f64>) -> Self {
        self.first_token = server_prompt_ms.map(|server| {
            let server = server.min(client_ttft_ms);
            FirstTokenSplit {
                runs: 1,
                client_ms: client_ttft_ms,
                server_ms: server,
                outside_ms: client_ttft_ms - server,
            }
        });
        self
    }

    /// Pools runs: sums of each phase and of the windows over all runs, then the same shares.
    pub fn pooled(runs: &[&PhasesRecord]) -> Option<Self> {
        let first = runs.first()?;
        let tokens: u64 = runs.iter().map(|r| r.tokens).sum();
        let measured: f64 = runs.iter().map(|r| r.measured_ms).sum();
        let mut keys: Vec<&str> = Vec::new();
        for k in runs.iter().flat_map(|r| r.phases.keys()) {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        let sums: Vec<(&str, f64)> = keys
            .into_iter()
            .map(|k| {
                let s = runs
                    .iter()
                    .filter_map(|r| r.phases.get(k))
                    .map(|p| p.sum_ms)
                    .sum();
                (k, s)
            })
            .collect();
        let mut out = Self::build(&first.source, tokens, measured, &sums);
        let sum_opt = |f: fn(&PhasesRecord) -> Option<f64>| -> Option<f64> {
            runs.iter().map(|r| f(r)).sum::<Option<f64>>()
        };
        out.prompt_ms = sum_opt(|r| r.prompt_ms);
        out.decode_total_ms = sum_opt(|r| r.decode_total_ms);
        out.sample_total_ms = sum_opt(|r| r.sample_total_ms);
        out.engine_eval_ms = sum_opt(|r| r.engine_eval_ms);
        out.step_total_ms = sum_opt(|r| r.step_total_ms);
        out.detok_total_ms = sum_opt(|r| r.detok_total_ms);
        out.first_token = runs
            .iter()
            .map(|r| r.first_token)
            .collect::<Option<Vec<_>>>()
            .map(|all| FirstTokenSplit {
                runs: all.iter().map(|f| f.runs).sum(),
                client_ms: all.iter().map(|f| f.client_ms).sum(),
                server_ms: all.iter().map(|f| f.server_ms).sum(),
                outside_ms: all.iter().map(|f| f.outside_ms).sum(),
            });
        Some(out)
    }

    /// Our decode total over llama.cpp's `t_eval_ms` (1.0 = agreement), when both exist.
    pub fn decode_agreement(&self) -> Option<f64> {
        match (self.decode_total_ms, self.engine_eval_ms) {
            (Some(ours), Some(theirs)) if theirs > 0.0 => Some(ours / theirs),
            _ => None,
        }
    }

    /// The sampling cross-check available through llama.cpp's context counters (the sampler
    /// chain's own `t_sample_ms` is out of reach: `llama-cpp-2` keeps the chain's pointer
    /// private): our time outside decode in the window (the phases other than `decode`) and the
    /// window less llama.cpp's `t_eval_ms`, both ms. Every one-token decode of a request lies
    /// inside its window (one after each token but the last), so the two agree when the decode
    /// marks do.
    pub fn outside_eval(&self) -> Option<(f64, f64)> {
        let theirs = self.measured_ms - self.engine_eval_ms?;
        let ours = self
            .phases
            .iter()
            .filter(|(k, _)| k.as_str() != Phase::Decode.name())
            .map(|(_, p)| p.sum_ms)
            .sum();
        Some((ours, theirs))
    }

    /// One report line: `decode 4.10 ms/tok 93.1% · sample …`.
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .phases
            .iter()
            .map(|(k, p)| format!("{k} {:.3} ms/tok {:.1}%", p.per_token_ms, p.share_pct))
            .collect();
        let mut s = format!(
            "{} (of {:.3} ms/tok measured, {:.1}% accounted)",
            parts.join(" · "),
            self.measured_per_token_ms,
            self.accounted_pct
        );
        if let (Some(a), Some(ours), Some(theirs)) = (
            self.decode_agreement(),
            self.decode_total_ms,
            self.engine_eval_ms,
        ) {
            s.push_str(&format!(
                "; decode {ours:.2} ms vs llama.cpp t_eval {theirs:.2} ms ({:+.2}%)",
                (a - 1.0) * 100.0
            ));
        }
        if let Some(f) = self.first_token.filter(|f| f.runs > 0) {
            let n = f.runs as f64;
            s.push_str(&format!(
                "; first token: server prompt {:.2} ms + outside {:.2} ms = client {:.2} ms",
                f.server_ms / n,
                f.outside_ms / n,
                f.client_ms / n
            ));
        }
        if let Some((ours, theirs)) = self.outside_eval().filter(|_| self.tokens > 0) {
            let n = self.tokens as f64;
            s.push_str(&format!(
                "; sample+detok+own {:.3} ms/tok vs window − t_eval {:.3} ms/tok",
                ours / n,
                theirs / n
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn marks_become_per_token_shares_and_pool() {
        let d = Duration::from_millis;
        let marks = [
            (Phase::Prompt, d(0)),
            (Phase::Own, d(10)),
            (Phase::Decode, d(11)),
            (Phase::Sample, d(19)),
            (Phase::Own, d(21)),
        ];
        let t = PhaseTimes::from_marks(&marks, d(22), (d(10), d(21)), 1);
        let r = PhasesRecord::from_marks(&t, Some(8.0));
        assert_eq!(r.tokens, 1);
        assert!((r.accounted_pct - 100.0).abs() < 1e-9);
        assert!((r.phases["decode"].per_token_ms - 8.0).abs() < 1e-9);
        assert_eq!(r.decode_agreement(), Some(1.0));
        let pooled = PhasesRecord::pooled(&[&r, &r]).unwrap();
        assert_eq!(pooled.tokens, 2);
        assert!((pooled.phases["decode"].sum_ms - 16.0).abs() < 1e-9);
        assert!((pooled.phases["decode"].share_pct - r.phases["decode"].share_pct).abs() < 1e-9);
        assert!(r.line().contains("decode 8.000 ms/tok"));
        // Window 11 ms, t_eval 8 ms: 3 ms outside decode, ours too (own 1 + sample 2).
        assert_eq!(r.outside_eval(), Some((3.0, 3.0)));
        assert!(
            r.line().contains("vs window − t_eval 3.000 ms/tok"),
            "{}",
            r.line()
        );
    }

    #[test]
    fn vllm_marks_list_only_the_phases_it_marked() {
        let d = Duration::from_millis;
        // prompt step 0-10 (output 10-11, own 11-12: token 1 at 12), step 12-20, output 20-21,
        // own 21-22 (token 2 at 22), detok after the last token 22-23.
        let marks = [
            (Phase::Prompt, d(0)),
            (Phase::Output, d(10)),
            (Phase::Own, d(11)),
            (Phase::Step, d(12)),
            (Phase::Output, d(20)),
            (Phase::Own, d(21)),
            (Phase::Detok, d(22)),
        ];
        let t = PhaseTimes::from_marks(&marks, d(23), (d(12), d(22)), 1);
        let r = PhasesRecord::from_marks(&t, None);
        let keys: Vec<&str> = r.phases.keys().map(String::as_str).collect();
        assert_eq!(keys, ["step", "output", "detok", "own"]);
        assert_eq!(r.phases["step"].sum_ms, 8.0);
        assert_eq!(r.phases["detok"].sum_ms, 0.0);
        assert!((r.accounted_pct - 100.0).abs() < 1e-9);
        assert_eq!(r.prompt_ms, Some(10.0));
        assert_eq!(r.step_total_ms, Some(8.0));
        assert_eq!(r.detok_total_ms, Some(1.0));
        assert_eq!(r.decode_total_ms, None);
        assert_eq!(r.outside_eval(), None);
    }

    #[test]
    fn server_time_splits_the_client_window() {
        // 10 tokens: the server's 40 ms span the 9 decodes after the first token.
        let r = PhasesRecord::from_server(36.0, 10, 9, 45.0)
            .unwrap()
            .with_first_token(20.0, Some(15.0));
        assert!((r.phases["server"].sum_ms - 36.0).abs() < 1e-9);
        assert!((r.phases["outside"].sum_ms - 9.0).abs() < 1e-9);
        assert_eq!(r.first_token.unwrap().outside_ms, 5.0);
        assert!(PhasesRecord::from_server(40.0, 1, 9, 45.0).is_none());
        let pooled = PhasesRecord::pooled(&[&r, &r]).unwrap();
        let f = pooled.first_token.unwrap();
        assert_eq!((f.runs, f.client_ms, f.server_ms), (2, 40.0, 30.0));
        assert!(
            pooled
                .line()
                .contains("server prompt 15.00 ms + outside 5.00 ms = client 20.00 ms"),
            "{}",
            pooled.line()
        );
    }
}
