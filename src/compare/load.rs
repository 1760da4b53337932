//! `inproc-bench compare` on load results files: the levels of each file paired with the first
//! file's (by key, `llamacpp@concurrency=8`, or by the level itself, `concurrency=8`, when the
//! engines differ), and per level the difference of every figure from the first file's, with a
//! confidence interval where the requests allow one:
//! - the means of per-request TTFT, TPOT and E2E: Welch's test (`measure::significance`), as the
//!   single-stream comparison;
//! - p50 and p99 of TTFT, ITL and E2E: a seeded bootstrap over the requests (each side's requests
//!   drawn again with replacement, a request's ITL gaps staying together), the interval from the
//!   percentiles of the resampled differences and ratios;
//! - request and output throughput and goodput: one value per level, not tested.
//!
//! When the engines report token ids, the requests of paired levels are also checked for the same
//! output (the digests of the generated tokens, whole and first 16).

use std::path::Path;

use serde::Serialize;

use super::load_stats::{bootstrap, itl_groups, per_request, welch_interval};
pub use super::load_stats::{Interval, RESAMPLES};
use super::metric::Better;
use crate::results::load::{LevelResult, LoadFile};

/// One load file as given.
pub struct LoadInput<'a> {
    /// The path given.
    pub path: &'a Path,
    /// The file.
    pub file: &'a LoadFile,
    /// `--backend1`/`--backend2`/`--backend`: an engine key or a level key to keep.
    pub pick: Option<&'a str>,
}

/// The whole comparison, as printed and as written with `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct LoadComparison {
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// Bootstrap resamples of the percentile intervals.
    pub resamples: usize,
    /// The files, baseline first.
    pub files: Vec<String>,
    /// What may make the comparison unfair.
    pub warnings: Vec<String>,
    /// One block per level of the first file that another file also has.
    pub levels: Vec<LevelComparison>,
}

/// One level, every file's entry for it.
#[derive(Debug, Clone, Serialize)]
pub struct LevelComparison {
    /// The level (`concurrency=8`).
    pub level: String,
    /// The paired entries, baseline first.
    pub entries: Vec<LevelEntry>,
    /// One block per figure.
    pub metrics: Vec<LoadMetric>,
    /// Per entry after the first: how many requests generated the baseline's tokens.
    pub agreement: Vec<Agreement>,
}

/// One file's entry of a level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelEntry {
    /// 1-based file position.
    pub entry: usize,
    /// Its key in `load.levels`.
    pub key: String,
    /// The model.
    pub model: String,
    /// Requests issued and completed.
    pub requests: u64,
    /// Requests completed.
    pub completed: u64,
}

/// One figure of one level.
#[derive(Debug, Clone, Serialize)]
pub struct LoadMetric {
    /// Key (`ttft_p50_ms`, `output_throughput_tps`, …).
    pub metric: &'static str,
    /// Heading.
    pub label: &'static str,
    /// Which way is better.
    pub better: Better,
    /// Decimals shown.
    #[serde(skip)]
    pub digits: usize,
    /// One row per entry.
    pub rows: Vec<LoadRow>,
}

/// One entry's value of one figure, against the baseline's.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    /// 1-based entry.
    pub entry: usize,
    /// The value; `null` when the entry lacks it.
    pub value: Option<f64>,
    /// `value − baseline`.
    pub difference: Option<f64>,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    /// The interval, where the requests allow one.
    pub interval: Option<Interval>,
    /// `baseline`, `better`, `worse`, `within noise`, `untested …`.
    pub verdict: String,
}

/// Same generated tokens, request by request (same arrival number), against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// 1-based entry.
    pub entry: usize,
    /// Requests both sides completed with a digest.
    pub compared: usize,
    /// Of those, requests whose whole output is the same.
    pub same_output: usize,
    /// Of those, requests whose first 16 tokens are the same.
    pub same_prefix: usize,
}

/// Why load files cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum LoadCompareError {
    /// A pick names no level or engine of the file.
    #[error("{path} has no load level or engine '{pick}'; it holds: {keys}")]
    NoSuchKey {
        /// The file.
        path: String,
        /// The pick.
        pick: String,
        /// Its level keys.
        keys: String,
    },
    /// No level of the first file has a partner.
    #[error("no level of {first} is in the other files (levels are paired by key, or by level when the engines differ): {detail}")]
    NoPairs {
        /// The first file.
        first: String,
        /// The levels on each side.
        detail: String,
    },
}

fn levels<'a>(input: &LoadInput<'a>) -> Result<Vec<(&'a str, &'a LevelResult)>, LoadCompareError> {
    let all: Vec<(&str, &LevelResult)> = input
        .file
        .load
        .levels
        .iter()
        .map(|(k, l)| (k.as_str(), l))
        .collect();
    let Some(pick) = input.pick else {
        return Ok(all);
    };
    let kept: Vec<_> = all
        .iter()
        .copied()
        .filter(|(k, l)| *k == pick || l.engine == pick)
        .collect();
    if kept.is_empty() {
        return Err(LoadCompareError::NoSuchKey {
            path: input.path.display().to_string(),
            pick: pick.to_string(),
            keys: all.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "),
        });
    }
    Ok(kept)
}

/// The partner of `(key, level)` among `others`: the same key, else the only entry of the same
/// level (`concurrency=8`) of another engine.
fn partner<'a>(
    key: &str,
    level: &LevelResult,
    others: &[(&'a str, &'a LevelResult)],
) -> Option<(&'a str, &'a LevelResult)> {
    if let Some(same) = others.iter().find(|(k, _)| *k == key) {
        return Some(*same);
    }
    let by_level: Vec<_> = others
        .iter()
        .filter(|(_, l)| l.level == level.level)
        .collect();
    match by_level.as_slice() {
        [one] => Some(**one),
        _ => None,
    }
}

/// Compares `inputs` (baseline first, at least two) at `confidence`.
pub fn compare_load(
    inputs: &[LoadInput<'_>],
    confidence: f64,
) -> Result<LoadComparison, LoadCompareError> {
    let sets: Vec<Vec<(&str, &LevelResult)>> =
        inputs.iter().map(levels).collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for &(key, base) in &sets[0] {
        let mut paired = vec![(1usize, key, base)];
        for (i, set) in sets.iter().enumerate().skip(1) {
            if let Some((k, l)) = partner(key, base, set) {
                paired.push((i + 1, k, l));
            }
        }
        if paired.len() > 1 {
            out.push(level_comparison(&paired, confidence));
        }
    }
    if out.is_empty() {
        let list = |s: &Vec<(&str, &LevelResult)>| {
            s.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        };
        return Err(LoadCompareError::NoPairs {
            first: inputs[0].path.display().to_string(),
            detail: sets.iter().map(list).collect::<Vec<_>>().join(" | "),
        });
    }
    Ok(LoadComparison {
        confidence,
        resamples: RESAMPLES,
        files: inputs
            .iter()
            .map(|i| i.path.display().to_string())
            .collect(),
        warnings: super::load_checks::warnings(inputs, &out),
        levels: out,
    })
}

/// How a figure's interval is made.
#[derive(Clone, Copy)]
enum Test {
    /// Welch's test on the per-request values' means.
    Mean(fn(&LevelResult) -> Vec<Vec<f64>>),
    /// Bootstrap of the `q` quantile over requests.
    Quantile(fn(&LevelResult) -> Vec<Vec<f64>>, f64),
    /// One value per level.
    None,
}

struct Figure {
    metric: &'static str,
    label: &'static str,
    better: Better,
    digits: usize,
    value: fn(&LevelResult) -> Option<f64>,
    test: Test,
}

fn ttft(l: &LevelResult) -> Vec<Vec<f64>> {
    per_request(l, |r| r.ttft_ms)
}
fn tpot(l: &LevelResult) -> Vec<Vec<f64>> {
    per_request(l, |r| r.tpot_ms)
}
fn e2e(l: &LevelResult) -> Vec<Vec<f64>> {
    per_request(l, |r| r.e2e_ms)
}

fn figures() -> Vec<Figure> {
    use Better::{Higher, Lower};
    let f = |metric, label, better, digits, value, test| Figure {
        metric,
        label,
        better,
        digits,
        value,
        test,
    };
    vec![
        f(
            "ttft_p50_ms",
            "TTFT p50 ms",
            Lower,
            2,
            |l| l.summary.ttft_ms.map(|s| s.p50),
            Test::Quantile(ttft, 0.5),
        ),
        f(
            "ttft_p99_ms",
            "TTFT p99 ms",
            Lower,
            2,
            |l| l.summary.ttft_ms.map(|s| s.p99),
            Test::Quantile(ttft, 0.99),
        ),
        f(
            "ttft_mean_ms",
            "TTFT mean ms",
            Lower,
            2,
            |l| l.summary.ttft_ms.map(|s| s.mean),
            Test::Mean(ttft),
        ),
        f(
            "itl_p50_ms",
            "ITL p50 ms",
            Lower,
            3,
            |l| l.summary.itl_ms.map(|s| s.p50),
            Test::Quantile(itl_groups, 0.5),
        ),
        f(
            "itl_p99_ms",
            "ITL p99 ms",
            Lower,
            3,
            |l| l.summary.itl_ms.map(|s| s.p99),
            Test::Quantile(itl_groups, 0.99),
        ),
        f(
            "tpot_mean_ms",
            "TPOT mean ms",
            Lower,
            3,
            |l| l.summary.tpot_ms.map(|s| s.mean),
            Test::Mean(tpot),
        ),
        f(
            "e2e_p50_ms",
            "E2E p50 ms",
            Lower,
            1,
            |l| l.summary.e2e_ms.map(|s| s.p50),
            Test::Quantile(e2e, 0.5),
        ),
        f(
            "e2e_p99_ms",
            "E2E p99 ms",
            Lower,
            1,
            |l| l.summary.e2e_ms.map(|s| s.p99),
            Test::Quantile(e2e, 0.99),
        ),
        f(
            "e2e_mean_ms",
            "E2E mean ms",
            Lower,
            1,
            |l| l.summary.e2e_ms.map(|s| s.mean),
            Test::Mean(e2e),
        ),
        f(
            "request_throughput",
            "requests/s",
            Higher,
            3,
            |l| Some(l.summary.request_throughput),
            Test::None,
        ),
        f(
            "output_throughput_tps",
            "output tok/s",
            Higher,
            2,
            |l| Some(l.summary.output_throughput_tps),
            Test::None,
        ),
        f(
            "goodput_request_rate",
            "goodput req/s",
            Higher,
            3,
            |l| l.summary.goodput.as_ref().map(|g| g.request_rate),
            Test::None,
        ),
    ]
}

fn verdict(better: Better, ratio: f64, interval: Option<&Interval>, test: Test) -> String {
    let Some(i) = interval else {
        return match test {
            Test::None => "untested (one value per level)",
            _ => "untested (fewer than 2 requests)",
        }
        .into();
    };
    if i.within_noise() {
        return if i.difference_low == 0.0 && i.difference_high == 0.0 {
            "same"
        } else {
            "within noise"
        }
        .into();
    }
    match (better, ratio > 1.0) {
        (Better::Lower, true) | (Better::Higher, false) => "worse",
        (Better::Lower, false) | (Better::Higher, true) => "better",
        (Better::Neither, true) => "more",
        (Better::Neither, false) => "fewer",
    }
    .into()
}

fn level_comparison(paired: &[(usize, &str, &LevelResult)], confidence: f64) -> LevelComparison {
    let (_, _, base) = paired[0];
    let metrics = figures()
        .into_iter()
        .map(|fig| {
            let base_value = (fig.value)(base);
            let rows = paired
                .iter()
                .map(|&(entry, _, l)| {
                    let value = (fig.value)(l);
                    let mut row = LoadRow {
                        entry,
                        value,
                        difference: None,
                        ratio: None,
                        interval: None,
                        verdict: if value.is_some() { "baseline" } else { "-" }.into(),
                    };
                    if entry == 1 || value.is_none() {
                        return row;
                    }
                    let (Some(v), Some(b)) = (value, base_value) else {
                        row.verdict = "no baseline".into();
                        return row;
                    };
                    row.difference = Some(v - b);
                    row.ratio = Some(v / b).filter(|r| r.is_finite());
                    row.interval = match fig.test {
                        Test::Mean(f) => welch_interval(&f(base), &f(l), confidence),
                        Test::Quantile(f, q) => bootstrap(&f(base), &f(l), q, confidence),
                        Test::None => None,
                    };
                    row.verdict = match row.ratio {
                        Some(r) => verdict(fig.better, r, row.interval.as_ref(), fig.test),
                        None => "-".into(),
                    };
                    row
                })
                .collect();
            LoadMetric {
                metric: fig.metric,
                label: fig.label,
                better: fig.better,
                digits: fig.digits,
                rows,
            }
        })
        .filter(|m| m.rows.iter().any(|r| r.value.is_some()))
        .collect();
    LevelComparison {
        level: base.level.clone(),
        entries: paired
            .iter()
            .map(|&(entry, key, l)| LevelEntry {
                entry,
                key: key.to_string(),
                model: l.model.clone(),
                requests: l.summary.requests,
                completed: l.summary.completed,
            })
            .collect(),
        metrics,
        agreement: paired
            .iter()
            .skip(1)
            .filter_map(|&(entry, _, l)| agreement(entry, base, l))
            .collect(),
    }
}

/// Requests of the same arrival number that both levels completed with a digest, and how many
/// of those generated the same tokens; `None` when there is none to compare.
fn agreement(entry: usize, a: &LevelResult, b: &LevelResult) -> Option<Agreement> {
    let mut out = Agreement {
        entry,
        compared: 0,
        same_output: 0,
        same_prefix: 0,
    };
    for ra in &a.requests {
        let Some(rb) = b.requests.iter().find(|r| r.index == ra.index) else {
            continue;
        };
        let (Some(da), Some(db)) = (&ra.output_digest, &rb.output_digest) else {
            continue;
        };
        out.compared += 1;
        out.same_output += usize::from(da == db);
        out.same_prefix += usize::from(ra.output_prefix_digest == rb.output_prefix_digest);
    }
    (out.compared > 0).then_some(out)
}
