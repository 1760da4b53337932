//! The comparison's analysis: per prompt and metric both sides with Welch's interval, the HTTP side
//! taken apart with the server's timings and the in-process engine's counters, the texts, and the
//! check that the order of the sides within a round does not move the difference.

use crate::engine::Outcome;
use crate::measure::significance::{welch, Moments};
use crate::measure::{RunMetrics, Summary};
use crate::results::http_comparison::{
    ComparedServer, HttpComparison, HttpSplit, MetricComparison, OrderEffect, PairingRecord,
    PromptComparison, Split, Spread, TextDifference,
};
use crate::suite::{EngineRuns, PromptRuns};

use super::CONFIDENCE;

/// An error when the server evaluated another number of prompt tokens than the in-process engine
/// for some prompt: the two did not run the same thing, so the comparison would mislead.
pub fn prompt_tokens_differ(
    runs: &[EngineRuns],
    server: Option<&ComparedServer>,
) -> Option<anyhow::Error> {
    let [a, b] = runs else { return None };
    let name = server.and_then(|s| s.name.clone()).unwrap_or_default();
    let fix = if name == "llama-server" {
        "use llama-server of the in-process build (vendor/build-llama-tools.sh), or pass another with --llama-server PATH"
    } else {
        "use a server of the same version and settings as the in-process engine"
    };
    let first = |p: &PromptRuns| successes(p).first().map(|(m, _)| m.prompt_tokens);
    a.prompts.iter().zip(&b.prompts).find_map(|(pa, pb)| {
        match (first(pa), first(pb)) {
            (Some(ours), Some(theirs)) if ours != theirs => Some(anyhow::anyhow!(
                "{name} evaluated {theirs} prompt tokens of '{}' where the in-process engine evaluated {ours}: the two did not run the same prompt, so they cannot be compared; {fix}",
                pa.prepared.name
            )),
            _ => None,
        }
    })
}

fn spread(xs: &[f64]) -> Option<Spread> {
    let m = Moments::of(xs)?;
    Some(Spread {
        mean: m.mean,
        std: m.std,
        n: m.n,
    })
}

fn mean(xs: &[f64]) -> Option<f64> {
    Summary::of(xs).map(|s| s.mean)
}

type Successes<'a> = Vec<&'a (RunMetrics, Outcome)>;

fn successes(p: &PromptRuns) -> Successes<'_> {
    p.runs.iter().filter_map(|r| r.as_ref().ok()).collect()
}

fn metric(
    a: &Successes<'_>,
    b: &Successes<'_>,
    f: impl Fn(&RunMetrics) -> Option<f64>,
) -> Option<MetricComparison> {
    let xa: Vec<f64> = a.iter().filter_map(|(m, _)| f(m)).collect();
    let xb: Vec<f64> = b.iter().filter_map(|(m, _)| f(m)).collect();
    let (ma, mb) = (Moments::of(&xa)?, Moments::of(&xb)?);
    Some(MetricComparison {
        inprocess: spread(&xa)?,
        http: spread(&xb)?,
        welch: welch(ma, mb, CONFIDENCE),
    })
}

/// Character offset where `a` and `b` part, if they do.
fn first_difference(a: &str, b: &str) -> Option<(usize, usize)> {
    let mut chars = 0;
    for ((i, ca), cb) in a.char_indices().zip(b.chars()) {
        if ca != cb {
            return Some((chars, i));
        }
        chars += 1;
    }
    (a.len() != b.len()).then(|| (chars, a.len().min(b.len())))
}

fn excerpt(s: &str, byte: usize) -> String {
    let start = s[..byte.min(s.len())]
        .char_indices()
        .rev()
        .nth(19)
        .map_or(0, |(i, _)| i);
    s[start..].chars().take(60).collect()
}

fn split(inprocess: &[f64], server: &[f64], http: &[f64]) -> Option<Split> {
    let (i, s, h) = (mean(inprocess)?, mean(server)?, mean(http)?);
    Some(Split {
        inprocess_ms: i,
        server_ms: s,
        http_ms: h,
        server_minus_inprocess_ms: s - i,
        client_overhead_ms: h - s,
        inprocess_engine_ms: None,
    })
}

/// The in-process engine's own counters over its runs: prompt evaluation ms, and one-token
/// decode ms per decode.
fn engine_counters(a: &Successes<'_>) -> (Option<f64>, Option<f64>) {
    let prompt: Vec<f64> = a
        .iter()
        .filter_map(|(_, o)| o.counters.map(|c| c.prompt_eval_ms))
        .collect();
    let per_token: Vec<f64> = a
        .iter()
        .filter_map(|(_, o)| o.counters)
        .filter(|c| c.eval_tokens > 0)
        .map(|c| c.eval_ms / c.eval_tokens as f64)
        .collect();
    (mean(&prompt), mean(&per_token))
}

fn http_split(a: &Successes<'_>, b: &Successes<'_>) -> Option<HttpSplit> {
    let server = |f: &dyn Fn(&crate::engine::ServerTimings) -> Option<f64>| -> Vec<f64> {
        b.iter()
            .filter_map(|(_, o)| o.server.as_ref().and_then(f))
            .collect()
    };
    let prompt_ms = server(&|s| s.prompt_ms);
    let predicted_ms = server(&|s| s.predicted_ms);
    let per_token = server(&|s| match (s.predicted_ms, s.predicted_n) {
        (Some(ms), Some(n)) if n > 1 => Some(ms / (n - 1) as f64),
        _ => None,
    });
    let ttft = |r: &Successes<'_>| r.iter().map(|(m, _)| m.ttft_ms).collect::<Vec<_>>();
    let itl = |r: &Successes<'_>| {
        r.iter()
            .filter_map(|(m, _)| m.itl_mean_ms)
            .collect::<Vec<_>>()
    };
    let (prompt_eval, eval) = engine_counters(a);
    Some(HttpSplit {
        ttft: Split {
            inprocess_engine_ms: prompt_eval,
            ..split(&ttft(a), &prompt_ms, &ttft(b))?
        },
        per_token: Split {
            inprocess_engine_ms: eval,
            ..split(&itl(a), &per_token, &itl(b))?
        },
        headers_ms: spread(&server(&|s| s.headers_ms)),
        first_byte_ms: spread(&server(&|s| s.first_byte_ms)),
        stream_tail_ms: spread(
            &b.iter()
                .map(|(m, _)| m.total_ms - m.e2e_latency_ms)
                .collect::<Vec<_>>(),
        ),
        server_prompt_ms: spread(&prompt_ms)?,
        server_predicted_ms: spread(&predicted_ms)?,
    })
}

/// Differences HTTP − in-process round by round, split by which side ran first; `None` unless the
/// runs were interleaved (positions recorded on both sides).
fn order_effect(pa: &PromptRuns, pb: &PromptRuns) -> Option<OrderEffect> {
    if pa.positions.is_empty()
        || pa.positions.len() != pa.runs.len()
        || pb.positions.len() != pb.runs.len()
    {
        return None;
    }
    let mut diffs: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    let mut rounds = [0u32; 2];
    for (i, (ra, rb)) in pa.runs.iter().zip(&pb.runs).enumerate() {
        let (Ok((ma, _)), Ok((mb, _))) = (ra, rb) else {
            continue;
        };
        let http_first = usize::from(pb.positions[i] < pa.positions[i]);
        rounds[http_first] += 1;
        diffs[http_first].0.push(mb.ttft_ms - ma.ttft_ms);
        if let (Some(x), Some(y)) = (ma.itl_mean_ms, mb.itl_mean_ms) {
            diffs[http_first].1.push(y - x);
        }
    }
    let test = |a: &[f64], b: &[f64]| welch(Moments::of(a)?, Moments::of(b)?, CONFIDENCE);
    Some(OrderEffect {
        inprocess_first_rounds: rounds[0],
        http_first_rounds: rounds[1],
        ttft_ms: test(&diffs[0].0, &diffs[1].0),
        itl_mean_ms: test(&diffs[0].1, &diffs[1].1),
    })
}

fn prompt_comparison(pa: &PromptRuns, pb: &PromptRuns) -> PromptComparison {
    let (a, b) = (successes(pa), successes(pb));
    let reference = a.first().map(|(_, o)| o.text.as_str());
    let mut first = None;
    let mut matching = [0u32; 2];
    for (side, runs, name) in [(0, &pa.runs, "inprocess"), (1, &pb.runs, "http")] {
        for (i, r) in runs.iter().enumerate() {
            let (Ok((_, o)), Some(reference)) = (r, reference) else {
                continue;
            };
            match first_difference(reference, &o.text) {
                None => matching[side] += 1,
                Some((at_char, byte)) if first.is_none() => {
                    first = Some(TextDifference {
                        run: format!("{name} run {}", i + 1),
                        at_char,
                        inprocess: excerpt(reference, byte),
                        other: excerpt(&o.text, byte),
                    });
                }
                Some(_) => {}
            }
        }
    }
    let metrics = [
        ("ttft_ms", metric(&a, &b, |m| Some(m.ttft_ms))),
        // Reasoning models only (absent when either side has no TTFO).
        (
            "ttfo_ms",
            metric(&a, &b, |m| m.reasoning.and_then(|r| r.ttfo_ms)),
        ),
        ("itl_mean_ms", metric(&a, &b, |m| m.itl_mean_ms)),
        ("tps", metric(&a, &b, |m| m.tps)),
        ("e2e_latency_ms", metric(&a, &b, |m| Some(m.e2e_latency_ms))),
        ("total_ms", metric(&a, &b, |m| Some(m.total_ms))),
        (
            "tokens_generated",
            metric(&a, &b, |m| Some(m.tokens_generated as f64)),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
    .collect();
    let prompt_tokens = |r: &Successes<'_>| r.first().map(|(m, _)| m.prompt_tokens);
    let compared = [a.len() as u32, b.len() as u32];
    PromptComparison {
        same_text: reference.is_some() && matching == compared && !b.is_empty(),
        http_runs_matching: matching[1],
        inprocess_runs_matching: matching[0],
        runs_compared: compared,
        first_difference: first,
        prompt_tokens: [prompt_tokens(&a), prompt_tokens(&b)],
        metrics,
        http_split: http_split(&a, &b),
        order_effect: order_effect(pa, pb),
        chat_prompt: None,
    }
}

/// Compares the in-process runs `a` with the HTTP runs `b`, prompt by prompt.
pub fn build(
    a: &EngineRuns,
    b: &EngineRuns,
    server: ComparedServer,
    method: &str,
    pairing: PairingRecord,
) -> HttpComparison {
    HttpComparison {
        pairing: Some(pairing),
        inprocess_key: a.info.key.clone(),
        http_key: b.info.key.clone(),
        method: method.into(),
        server,
        confidence: CONFIDENCE,
        prompts: a
            .prompts
            .iter()
            .filter_map(|pa| {
                let pb = b
                    .prompts
                    .iter()
                    .find(|p| p.prepared.name == pa.prepared.name)?;
                Some((pa.prepared.name.clone(), prompt_comparison(pa, pb)))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_differences_are_located_by_character() {
        assert_eq!(first_difference("abc", "abc"), None);
        assert_eq!(first_difference("abc", "abd"), Some((2, 2)));
        assert_eq!(first_difference("ab", "abc"), Some((2, 2)));
        assert_eq!(first_difference("héllo", "hello"), Some((1, 1)));
        assert_eq!(first_difference("ééa", "ééb"), Some((2, 4)));
        assert_eq!(
            excerpt("0123456789012345678901234567890", 25),
            "56789012345678901234567890"
        );
    }

    #[test]
    fn splits_add_up() {
        let s = split(&[10.0, 12.0], &[10.5, 12.5], &[12.0, 14.0]).unwrap();
        assert!(
            (s.server_minus_inprocess_ms + s.client_overhead_ms - (s.http_ms - s.inprocess_ms))
                .abs()
                < 1e-12
        );
        assert_eq!(
            (s.server_minus_inprocess_ms, s.client_overhead_ms),
            (0.5, 1.5)
        );
        assert_eq!(split(&[], &[1.0], &[1.0]), None);
    }
}
