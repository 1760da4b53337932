//! `inproc-bench compare`: two or more results files (ours or the original benchmark's), prompt by
//! prompt: each metric as mean ± std and p50/p95/p99, its ratio to the first entry, and whether the
//! difference is real (Welch's test; see `measure::significance`) or within noise.

pub mod checks;
pub mod load;
pub mod load_checks;
pub mod load_render;
pub mod load_stats;
pub mod metric;
pub mod render;
pub mod select;

use serde::Serialize;

use crate::measure::significance::{welch, Welch};
use crate::measure::Summary;
use metric::{Better, Metric, Source};
use select::Side;

/// A whole comparison, as printed and as written with `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// The compared entries; the first is the baseline.
    pub entries: Vec<EntryInfo>,
    /// What may make the comparison unfair.
    pub warnings: Vec<String>,
    /// How the figures were obtained, where that is not the default.
    pub notes: Vec<String>,
    /// Per prompt, per metric, one row per entry.
    pub prompts: Vec<PromptComparison>,
}

/// One compared entry.
#[derive(Debug, Clone, Serialize)]
pub struct EntryInfo {
    /// 1-based position.
    pub entry: usize,
    /// The file, as given.
    pub file: String,
    /// Its key in `results`.
    pub key: String,
    /// The model.
    pub model: String,
    /// The file's schema version (0: the original benchmark).
    pub schema_version: u32,
}

/// One prompt.
#[derive(Debug, Clone, Serialize)]
pub struct PromptComparison {
    /// Prompt name.
    pub prompt: String,
    /// One block per metric.
    pub metrics: Vec<MetricComparison>,
}

/// One metric of one prompt.
#[derive(Debug, Clone, Serialize)]
pub struct MetricComparison {
    /// Schema key of the metric used (`tps`, or `seed_tps` under the original definitions).
    pub metric: &'static str,
    /// Heading.
    pub label: &'static str,
    /// Which way is better.
    pub better: Better,
    /// Decimals shown in tables.
    #[serde(skip)]
    pub digits: usize,
    /// One row per entry, in entry order.
    pub rows: Vec<Row>,
}

/// One entry's figures for one metric and prompt.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// 1-based entry.
    pub entry: usize,
    /// Successful measured runs.
    pub runs: u32,
    /// Where the test's moments came from; `null` when the entry lacks the metric.
    pub source: Option<Source>,
    /// Stored summary; `null` when the entry lacks the metric.
    pub summary: Option<Summary>,
    /// Mean of this entry / mean of the first.
    pub ratio: Option<f64>,
    /// Welch's test against the first entry.
    pub test: Option<Welch>,
    /// `baseline`, `faster`, `slower`, `within noise`, …
    pub verdict: String,
}

fn verdict(m: Metric, ratio: f64, test: Option<&Welch>) -> String {
    let Some(t) = test else {
        return if m.tested() {
            "untested (fewer than 2 runs)"
        } else {
            "not tested"
        }
        .into();
    };
    if t.within_noise {
        return if t.difference == 0.0 {
            "same"
        } else {
            "within noise"
        }
        .into();
    }
    match (m.better(), ratio > 1.0) {
        (Better::Lower, true) | (Better::Higher, false) => "slower",
        (Better::Lower, false) | (Better::Higher, true) => "faster",
        (Better::Neither, true) => "more",
        (Better::Neither, false) => "fewer",
    }
    .into()
}

/// Compares `sides` (baseline first) at `confidence`.
pub fn compare(sides: &[Side<'_>], confidence: f64) -> Comparison {
    // The seed's definitions apply when its files are compared with ours; among its own files
    // they are what the files hold anyway.
    let seed_defs = sides.iter().any(|s| s.file.schema_version == 0)
        && sides.iter().any(|s| s.file.schema_version > 0);
    let mut prompts: Vec<&str> = Vec::new();
    for s in sides {
        for p in s.result.prompts.keys() {
            if !prompts.contains(&p.as_str()) {
                prompts.push(p);
            }
        }
    }
    let prompts = prompts
        .into_iter()
        .map(|prompt| {
            let metrics = metric::ALL
                .iter()
                .map(|&m| {
                    let cell = |s: &Side<'_>| {
                        let own_seed = s.file.schema_version == 0;
                        s.result.prompts.get(prompt).map(|p| {
                            (
                                p.successful_runs,
                                m.summary(p, seed_defs, own_seed),
                                m.moments(p, seed_defs, own_seed),
                            )
                        })
                    };
                    let base = cell(&sides[0]);
                    let rows = sides
                        .iter()
                        .map(|s| {
                            let (runs, summary, moments) = cell(s).unwrap_or((0, None, None));
                            let mut row = Row {
                                entry: s.index,
                                runs,
                                source: moments.map(|(_, src)| src),
                                summary,
                                ratio: None,
                                test: None,
                                verdict: if summary.is_none() {
                                    "-".into()
                                } else {
                                    "baseline".into()
                                },
                            };
                            if s.index == sides[0].index || summary.is_none() {
                                return row;
                            }
                            let Some((_, Some(base_s), base_m)) = &base else {
                                row.verdict = "no baseline".into();
                                return row;
                            };
                            let ratio = summary
                                .map(|x| x.mean / base_s.mean)
                                .filter(|r| r.is_finite());
                            row.ratio = ratio;
                            row.test = match (m.tested(), base_m, moments) {
                                (true, Some((a, _)), Some((b, _))) => welch(*a, b, confidence),
                                _ => None,
                            };
                            row.verdict = ratio
                                .map_or_else(|| "-".into(), |r| verdict(m, r, row.test.as_ref()));
                            row
                        })
                        .collect();
                    MetricComparison {
                        metric: m.key(seed_defs),
                        label: m.label(),
                        better: m.better(),
                        digits: m.digits(),
                        rows,
                    }
                })
                .filter(|m: &MetricComparison| m.rows.iter().any(|r| r.summary.is_some()))
                .collect();
            PromptComparison {
                prompt: prompt.to_string(),
                metrics,
            }
        })
        .collect();
    Comparison {
        confidence,
        entries: sides
            .iter()
            .map(|s| EntryInfo {
                entry: s.index,
                file: s.path.display().to_string(),
                key: s.key.clone(),
                model: s.result.model.clone(),
                schema_version: s.file.schema_version,
            })
            .collect(),
        warnings: checks::warnings(sides),
        notes: checks::notes(sides),
        prompts,
    }
}
