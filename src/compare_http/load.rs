//! `--compare-http` under load: the server recipes sized for a load level (llama-server with as
//! many parallel slots as the level keeps in flight and a context that gives each slot its
//! request; `vllm serve` with the in-process engine arguments), and the per-level difference of
//! each metric (TTFT/ITL/E2E p50 and p99, output tok/s) with a bootstrap confidence interval over
//! the level's requests.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::llama_server::ServerSettings;
use super::CONFIDENCE;
use crate::engine::llamacpp::LlamaCppSettings;
use crate::measure::load::RequestSample;
use crate::results::load_http::MetricDiff;
use crate::server::Launch;

/// Bootstrap resamples per interval.
const RESAMPLES: usize = 1000;

/// Context tokens per llama-server slot are rounded up to this many.
const SLOT_ROUND: u64 = 256;

/// llama-server for a level of `slots` requests in flight, each needing up to `need` tokens: the
/// in-process settings, `--parallel slots`, and a context of `slots` × `need` (rounded up) so that
/// each slot holds its request (llama-server splits its context evenly between its slots).
pub fn llama_server_launch(
    settings: &LlamaCppSettings,
    binary: std::path::PathBuf,
    slots: u32,
    need: u64,
    prefix_cache: bool,
) -> Launch {
    let per_slot = need.div_ceil(SLOT_ROUND) * SLOT_ROUND;
    let ctx = u32::try_from(per_slot * u64::from(slots.max(1))).unwrap_or(u32::MAX);
    let s = ServerSettings {
        prefix_cache,
        ..ServerSettings::matching(
            &LlamaCppSettings {
                ctx_size: ctx,
                ..settings.clone()
            },
            binary,
        )
    };
    let mut launch = s.launch();
    if let Some(i) = launch.args.iter().position(|a| a == "--parallel") {
        if let Some(v) = launch.args.get_mut(i + 1) {
            *v = slots.max(1).to_string();
        }
    }
    launch
}

/// A level's figure from its requests (completed ones only, as the level summary).
type Figure = fn(&[&RequestSample]) -> Option<f64>;

fn percentile(mut v: Vec<f64>, p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (rank - lo as f64))
}

fn col(r: &[&RequestSample], f: fn(&RequestSample) -> Option<f64>, p: f64) -> Option<f64> {
    percentile(r.iter().filter_map(|x| f(x)).collect(), p)
}

fn itl(r: &[&RequestSample], p: f64) -> Option<f64> {
    percentile(r.iter().flat_map(|x| x.itl_ms.iter().copied()).collect(), p)
}

/// Output tokens per second of the level: generated tokens over the span from the first
/// scheduled arrival to the last end.
fn output_tps(r: &[&RequestSample]) -> Option<f64> {
    let tokens: u64 = r.iter().map(|x| x.output_tokens).sum();
    let start = r
        .iter()
        .map(|x| x.scheduled_ms)
        .fold(f64::INFINITY, f64::min);
    let end = r.iter().filter_map(|x| x.end_ms).fold(0.0, f64::max);
    (end > start).then(|| tokens as f64 / ((end - start) / 1e3))
}

/// The metrics compared, with how each is computed from a set of requests.
const METRICS: [(&str, Figure); 7] = [
    ("ttft_p50_ms", |r| col(r, |x| x.ttft_ms, 50.0)),
    ("ttft_p99_ms", |r| col(r, |x| x.ttft_ms, 99.0)),
    ("itl_p50_ms", |r| itl(r, 50.0)),
    ("itl_p99_ms", |r| itl(r, 99.0)),
    ("e2e_p50_ms", |r| col(r, |x| x.e2e_ms, 50.0)),
    ("e2e_p99_ms", |r| col(r, |x| x.e2e_ms, 99.0)),
    ("output_tps", output_tps),
];

/// Each metric on both sides and the difference HTTP − in-process, with a bootstrap interval
/// at [`CONFIDENCE`] (requests of each side resampled with replacement, seeded).
pub fn differences(inproc: &[RequestSample], http: &[RequestSample], seed: u64) -> Vec<MetricDiff> {
    let ok = |v: &[RequestSample]| -> Vec<RequestSample> {
        v.iter().filter(|r| r.error.is_none()).cloned().collect()
    };
    let (a, b) = (ok(inproc), ok(http));
    let (ra, rb): (Vec<&RequestSample>, Vec<&RequestSample>) =
        (a.iter().collect(), b.iter().collect());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for (name, f) in METRICS {
        let (Some(va), Some(vb)) = (f(&ra), f(&rb)) else {
            continue;
        };
        let mut diffs = Vec::with_capacity(RESAMPLES);
        for _ in 0..RESAMPLES {
            let sa: Vec<&RequestSample> = (0..ra.len())
                .map(|_| ra[rng.random_range(0..ra.len())])
                .collect();
            let sb: Vec<&RequestSample> = (0..rb.len())
                .map(|_| rb[rng.random_range(0..rb.len())])
                .collect();
            if let (Some(x), Some(y)) = (f(&sa), f(&sb)) {
                diffs.push(y - x);
            }
        }
        let tail = (1.0 - CONFIDENCE) / 2.0 * 100.0;
        out.push(MetricDiff {
            metric: name.into(),
            inprocess: va,
            http: vb,
            difference: vb - va,
            ci_low: percentile(diffs.clone(), tail).unwrap_or(f64::NAN),
            ci_high: percentile(diffs, 100.0 - tail).unwrap_or(f64::NAN),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(i: usize, ttft: f64, gap: f64) -> RequestSample {
        RequestSample {
            index: i,
            scheduled_ms: 0.0,
            admitted_ms: Some(0.0),
            end_ms: Some(ttft + 4.0 * gap),
            queue_wait_ms: Some(0.0),
            ttft_ms: Some(ttft),
            ttft_from_admission_ms: Some(ttft),
            tpot_ms: Some(gap),
            e2e_ms: Some(ttft + 4.0 * gap),
            prompt_tokens: 8,
            output_tokens: 5,
            itl_ms: vec![gap; 4],
            finish: Some("length".into()),
            error: None,
            output_digest: None,
            output_prefix_digest: None,
        }
    }

    #[test]
    fn a_shift_is_found_and_its_interval_holds_it() {
        let a: Vec<_> = (0..20)
            .map(|i| req(i, 10.0 + i as f64 % 3.0, 2.0))
            .collect();
        let b: Vec<_> = (0..20)
            .map(|i| req(i, 15.0 + i as f64 % 3.0, 2.5))
            .collect();
        let d = differences(&a, &b, 1);
        let ttft = d.iter().find(|m| m.metric == "ttft_p50_ms").unwrap();
        assert!((ttft.difference - 5.0).abs() < 1e-9, "{ttft:?}");
        assert!(ttft.ci_low <= 5.0 && ttft.ci_high >= 5.0, "{ttft:?}");
        let itl = d.iter().find(|m| m.metric == "itl_p99_ms").unwrap();
        assert!((itl.difference - 0.5).abs() < 1e-9);
        assert!(d
            .iter()
            .any(|m| m.metric == "output_tps" && m.difference < 0.0));
        // The same seed gives the same intervals.
        assert_eq!(d, differences(&a, &b, 1));
    }

    #[test]
    fn llama_server_gets_a_slot_per_stream_and_room_for_each_request() {
        let s = LlamaCppSettings {
            model: "m.gguf".into(),
            ctx_size: 4096,
            threads: 2,
            batch_size: 512,
            ubatch_size: 512,
            n_gpu_layers: 0,
            flash_attn: crate::engine::llamacpp::FlashAttn::Auto,
            swa_full: false,
            split: Default::default(),
            verbose: false,
        };
        let l = llama_server_launch(&s, "/nonexistent/llama-server".into(), 4, 300, false);
        let a = l.args.join(" ");
        assert!(a.contains("--parallel 4"), "{a}");
        assert!(a.contains("--ctx-size 2048"), "{a}");
        assert!(a.contains("--no-cache-prompt"), "{a}");
    }
}
