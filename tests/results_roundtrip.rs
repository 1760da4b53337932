//! Every results file the tool writes reads back: property tests that build results (and the
//! in-process/HTTP comparison) from degenerate samples (no spread, one run, both sides equal, every
//! run failed), write them with the tool's writer and read them with its reader.

mod common;

use std::path::Path;

use common::*;
use indexmap::IndexMap;
use inproc_bench::compare_http;
use inproc_bench::engine::{
    EngineCounters, EngineInfo, Finish, Outcome, PreparedPrompt, ServerTimings,
};
use inproc_bench::measure::{RunMetrics, RunTrace};
use inproc_bench::results::http_comparison::{ComparedServer, PairingRecord};
use inproc_bench::results::schema::RunConfig;
use inproc_bench::results::{read, write, ResultsFile, SCHEMA_VERSION};
use inproc_bench::suite::{build, EngineRuns, PromptRuns, RunResult};
use proptest::prelude::*;
use serde_json::Map;

/// How one side's runs look.
#[derive(Debug, Clone)]
enum Side {
    /// `n` identical runs (no spread at all).
    Same {
        n: usize,
        ttft: f64,
        itl: f64,
        tokens: u32,
    },
    /// `n` runs, every one failed.
    Failed { n: usize },
    /// Runs with their own TTFT and ITL.
    Varied(Vec<(f64, f64, u32)>),
}

fn one_run(ttft: f64, itl: f64, tokens: u32, server: bool) -> RunResult {
    let deliveries: Vec<(f64, u32)> = (0..tokens)
        .map(|i| (ttft + itl * f64::from(i), 1))
        .collect();
    let end = deliveries.last().map_or(ttft, |d| d.0) + 0.5;
    let trace = RunTrace::from_millis(&deliveries, end);
    let metrics = RunMetrics::from_trace(&trace, 7).map_err(|e| e.to_string())?;
    let outcome = Outcome {
        prompt_tokens: 7,
        token_ids: (0..i64::from(tokens)).collect(),
        text: "same text".into(),
        finish: Finish::Length,
        server: server.then(|| ServerTimings {
            prompt_ms: Some(ttft * 0.9),
            predicted_ms: Some(itl * f64::from(tokens.saturating_sub(1))),
            prompt_n: Some(7),
            predicted_n: Some(u64::from(tokens)),
            headers_ms: Some(ttft * 0.5),
            first_byte_ms: Some(ttft * 0.6),
            usage_tokens: Some(u64::from(tokens)),
            counted_tokens: None,
            count_source: Some("token_ids".into()),
        }),
        // The in-process side's own counters, with the same spread as its stamps.
        counters: (!server).then_some(EngineCounters {
            prompt_eval_ms: ttft * 0.95,
            prompt_eval_tokens: 7,
            eval_ms: itl * 0.9 * f64::from(tokens.saturating_sub(1)),
            eval_tokens: u64::from(tokens.saturating_sub(1)),
        }),
    };
    Ok((metrics, outcome))
}

fn runs(side: &Side, server: bool) -> Vec<RunResult> {
    match side {
        Side::Same {
            n,
            ttft,
            itl,
            tokens,
        } => (0..*n)
            .map(|_| one_run(*ttft, *itl, *tokens, server))
            .collect(),
        Side::Failed { n } => (0..*n).map(|i| Err(format!("run {i} failed"))).collect(),
        Side::Varied(v) => v
            .iter()
            .map(|&(ttft, itl, tokens)| one_run(ttft, itl, tokens, server))
            .collect(),
    }
}

fn engine(key: &str, side: &Side, server: bool) -> EngineRuns {
    EngineRuns {
        info: EngineInfo {
            key: key.into(),
            name: key.into(),
            version: "test".into(),
            model: "m".into(),
            settings: Map::new(),
            load_ms: 1.0,
            details: Map::new(),
        },
        sweep: Map::new(),
        prompts: vec![PromptRuns {
            prepared: PreparedPrompt {
                name: "short".into(),
                text: "hi".into(),
                max_tokens: 8,
                prompt_tokens: Some(7),
            },
            warmup_done: 0,
            warmup_tokens: 0,
            // ABBA positions, so the order check sees the same degenerate samples.
            positions: (0..runs(side, server).len() as u32)
                .map(|i| (i + u32::from(server)) % 2)
                .collect(),
            runs: runs(side, server),
        }],
        gpu: None,
    }
}

fn file(a: &EngineRuns, b: &EngineRuns) -> ResultsFile {
    let mut results = IndexMap::new();
    results.insert(a.info.key.clone(), build::engine_result(a));
    results.insert(b.info.key.clone(), build::engine_result(b));
    ResultsFile {
        schema_version: SCHEMA_VERSION,
        timestamp: "2026-01-01T00:00:00.000000".into(),
        scenario: "roundtrip".into(),
        config: RunConfig::default(),
        results,
        complete: true,
        incomplete_reason: None,
        finished_at: None,
        tool: None,
        system: None,
        http_comparison: Some(compare_http::build(
            a,
            b,
            ComparedServer::default(),
            "round trip",
            PairingRecord {
                mode: "interleaved".into(),
                requested: "auto".into(),
                reason: "round trip".into(),
            },
        )),
    }
}

/// Writes `f` with the tool's writer, reads it with its reader, and checks that what was read
/// writes the same text again.
fn round_trip(dir: &Path, name: &str, f: &ResultsFile) {
    let path = dir.join(name);
    write::write_atomic(&path, f).expect("written");
    let written = std::fs::read_to_string(&path).unwrap();
    let back = read::read(&path).unwrap_or_else(|e| panic!("{e}\n{written}"));
    let again = serde_json::to_string_pretty(&back).unwrap() + "\n";
    assert_eq!(written, again, "what was read writes back differently");
}

fn side() -> impl Strategy<Value = Side> {
    let ms = 0.5f64..200.0;
    prop_oneof![
        (0usize..5, ms.clone(), 0.1f64..50.0, 1u32..6).prop_map(|(n, ttft, itl, tokens)| {
            Side::Same {
                n,
                ttft,
                itl,
                tokens,
            }
        }),
        (0usize..4).prop_map(|n| Side::Failed { n }),
        proptest::collection::vec((ms, 0.1f64..50.0, 1u32..6), 0..5).prop_map(Side::Varied),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn degenerate_samples_round_trip(a in side(), b in side(), same in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let ea = engine("llamacpp", &a, false);
        let eb = engine("llamacpp-http", if same { &a } else { &b }, true);
        round_trip(dir.path(), "r.json", &file(&ea, &eb));
    }
}

/// The case that used to break: both sides without spread and different means, so Welch's t is
/// infinite; written as "Infinity"/"-Infinity", it reads back as such.
#[test]
fn infinite_t_is_written_as_a_string_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let fast = Side::Same {
        n: 3,
        ttft: 10.0,
        itl: 2.0,
        tokens: 4,
    };
    let slow = Side::Same {
        n: 3,
        ttft: 20.0,
        itl: 3.0,
        tokens: 4,
    };
    let f = file(&engine("a", &fast, false), &engine("b", &slow, true));
    round_trip(dir.path(), "inf.json", &f);
    let text = std::fs::read_to_string(dir.path().join("inf.json")).unwrap();
    assert!(text.contains("\"t\": \"Infinity\""), "{text}");
    let back = read::read(&dir.path().join("inf.json")).unwrap();
    let c = back.http_comparison.unwrap();
    let w = c.prompts["short"].metrics["ttft_ms"].welch.unwrap();
    assert_eq!(w.t, f64::INFINITY);
    assert_eq!(w.p_value, 0.0);
    assert!(!w.within_noise);
}

/// Files written before this representation hold `null` for an infinite t: they read, as NaN.
#[test]
fn an_older_file_with_a_null_statistic_reads() {
    let dir = tempfile::tempdir().unwrap();
    let same = Side::Same {
        n: 2,
        ttft: 10.0,
        itl: 2.0,
        tokens: 3,
    };
    let other = Side::Same {
        n: 2,
        ttft: 12.0,
        itl: 2.0,
        tokens: 3,
    };
    let f = file(&engine("a", &same, false), &engine("b", &other, true));
    round_trip(dir.path(), "new.json", &f);
    let text = std::fs::read_to_string(dir.path().join("new.json"))
        .unwrap()
        .replace("\"Infinity\"", "null");
    let old = dir.path().join("old.json");
    std::fs::write(&old, text).unwrap();
    let back = read::read(&old).expect("a null statistic reads");
    let w = back.http_comparison.unwrap().prompts["short"].metrics["ttft_ms"]
        .welch
        .unwrap();
    assert!(w.t.is_nan());
}

fn mock_file(dir: &Path, name: &str, extra: &[&str]) -> String {
    let path = dir.join(name);
    let p = path.to_str().unwrap().to_string();
    let mut args = vec![
        "--engine",
        "mock",
        "--mock-ttft-ms",
        "1",
        "--mock-itl-ms",
        "1",
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--quiet",
        "--output",
        &p,
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(path.exists(), "{}", show(&out));
    p
}

/// The tool's own files with degenerate samples (one run; every run failed; token counts without
/// spread on both sides and different means) open in `report` and `compare`, and `compare`'s JSON
/// is JSON with its infinite statistics spelled out.
#[test]
fn report_and_compare_open_what_the_mock_writes() {
    let dir = tempfile::tempdir().unwrap();
    let one = mock_file(
        dir.path(),
        "one.json",
        &["--runs", "1", "--max-tokens", "4"],
    );
    let failed = mock_file(
        dir.path(),
        "failed.json",
        &["--runs", "2", "--mock-fail-every", "1"],
    );
    let four = mock_file(
        dir.path(),
        "four.json",
        &["--runs", "3", "--max-tokens", "4"],
    );
    let six = mock_file(
        dir.path(),
        "six.json",
        &["--runs", "3", "--max-tokens", "6"],
    );
    for f in [&one, &failed, &four, &six] {
        let out = run(&["report", f]);
        assert!(out.status.success(), "report {f}: {}", show(&out));
    }
    let out = run(&["compare", &four, &six, "--format", "json"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).expect("compare writes JSON");
    assert!(
        text.contains("Infinity"),
        "tokens 4 against 6 without spread: {v}"
    );
    let out = run(&["compare", &one, &failed, &four]);
    assert!(out.status.success(), "{}", show(&out));
}
