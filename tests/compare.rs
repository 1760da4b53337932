//! `inproc-bench compare` on the original benchmark's files, on files from real runs of the tool,
//! and on hand-made files whose statistics are computed by hand; bad files fail cleanly.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn seed_vllm() -> PathBuf {
    fixture("benchmark_qwen3-8b-gpu_20260109_033509.json")
}

fn seed_llamacpp() -> PathBuf {
    fixture("benchmark_qwen3-8b-gpu_20260109_035757.json")
}

/// Runs `compare` with `--format json` and parses what it prints.
fn compare_json(args: &[&str]) -> Value {
    let mut all = vec!["compare", "--format", "json"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).expect("compare prints JSON")
}

/// The row of entry `entry` for `metric` of `prompt`.
fn row<'a>(c: &'a Value, prompt: &str, metric: &str, entry: u64) -> &'a Value {
    let p = c["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["prompt"] == prompt)
        .expect("prompt");
    let m = p["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == metric)
        .expect("metric");
    m["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["entry"] == entry)
        .expect("entry")
}

fn close(a: &Value, b: f64, tol: f64) -> bool {
    (a.as_f64().unwrap_or(f64::NAN) - b).abs() < tol
}

#[test]
fn the_seed_files_compare_as_compare_results_py_did_with_a_test() {
    let c = compare_json(&[
        s(&seed_vllm()),
        s(&seed_llamacpp()),
        "--backend1",
        "vllm",
        "--backend2",
        "llamacpp",
    ]);
    assert_eq!(c["entries"][0]["key"], "vllm");
    assert_eq!(c["entries"][1]["key"], "llamacpp");
    assert_eq!(c["entries"][1]["schema_version"], 0);
    let prompts: Vec<&str> = c["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["short", "medium", "long"], "the files' order");
    // short: TTFT 15.6607 ± 1.4628 (vLLM) against 39.08 (llama.cpp), 20 runs each, from moments.
    let ttft = row(&c, "short", "ttft_ms", 2);
    assert_eq!(ttft["source"], "summary");
    assert_eq!(ttft["runs"], 20);
    assert!(close(&ttft["ratio"], 39.0768 / 15.6607, 2e-3), "{ttft}");
    assert_eq!(ttft["verdict"], "slower");
    assert!(ttft["test"]["p_value"].as_f64().unwrap() < 1e-6);
    let tps = row(&c, "short", "tps", 2);
    assert_eq!(tps["verdict"], "faster");
    assert!(tps["test"]["ratio_ci_low"].as_f64().unwrap() > 1.0);
    assert_eq!(row(&c, "short", "ttft_ms", 1)["verdict"], "baseline");
    let warnings = c["warnings"].to_string();
    assert!(warnings.contains("models differ"), "{warnings}");
    assert!(
        warnings.contains("no hardware or tool version"),
        "{warnings}"
    );
    assert!(c["notes"].to_string().contains("nearest-rank"));
    // Without picks, the only entry of each file is taken.
    let d = compare_json(&[s(&seed_vllm()), s(&seed_llamacpp())]);
    assert_eq!(d["entries"].as_array().unwrap().len(), 2);
}

#[test]
fn the_table_says_slower_faster_and_within_noise() {
    let out = run(&["compare", s(&seed_vllm()), s(&seed_llamacpp())]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[1] vllm · Qwen3-8B-AWQ"), "{text}");
    assert!(
        text.contains("2.495 [2.384, 2.612]"),
        "short TTFT ratio and its CI\n{text}"
    );
    assert!(text.contains("warning: models differ"), "{text}");
    // The same file against itself: every difference is zero.
    let same = compare_json(&[s(&seed_vllm()), s(&seed_vllm())]);
    assert_eq!(row(&same, "long", "tps", 2)["verdict"], "same");
}

/// A results file with one engine whose `short` prompt has TTFT samples `ttft` (and 100 tokens).
fn hand_made(ttft: &[f64], with_runs: bool, schema: Option<u32>) -> Value {
    let n = ttft.len() as f64;
    let mean = ttft.iter().sum::<f64>() / n;
    let std = (ttft.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let mut sorted = ttft.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |f: f64| {
        let h = (n - 1.0) * f;
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(sorted.len() - 1);
        sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
    };
    let runs: Vec<Value> = ttft
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"run": i + 1, "ttft_ms": t, "tokens_generated": 100}))
        .collect();
    let mut prompt = json!({
        "ttft_ms": {"mean": mean, "std": std, "min": sorted[0], "max": sorted[sorted.len() - 1],
                    "p50": q(0.5), "p95": q(0.95), "p99": q(0.99)},
        "tokens_generated": {"mean": 100.0, "std": 0.0, "min": 100.0, "max": 100.0, "p50": 100.0, "p95": 100.0, "p99": 100.0},
        "successful_runs": ttft.len(),
        "total_runs": ttft.len(),
    });
    if with_runs {
        prompt["runs"] = json!(runs);
    }
    let mut file = json!({
        "timestamp": "2026-01-01T00:00:00.000000",
        "scenario": "hand",
        "config": {"warmup_runs": 1, "measurement_runs": ttft.len()},
        "results": {"llamacpp": {"model": "m.gguf", "prompts": {"short": prompt}}},
    });
    if let Some(v) = schema {
        file["schema_version"] = json!(v);
    }
    file
}

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

#[test]
fn welch_on_hand_computed_samples_from_runs_and_from_moments() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_json(
        dir.path(),
        "a.json",
        &hand_made(&[10.0, 11.0, 12.0, 13.0, 14.0], true, Some(1)),
    );
    let b = write_json(
        dir.path(),
        "b.json",
        &hand_made(&[12.0, 14.0, 16.0, 18.0, 20.0], true, Some(1)),
    );
    let c = compare_json(&[s(&a), s(&b)]);
    let r = row(&c, "short", "ttft_ms", 2);
    assert_eq!(r["source"], "runs");
    // mean 12 vs 16, s² 2.5 vs 10: se = √2.5, t = 2.5298221, df = 5.8823529, p = 0.0454646;
    // t(0.975, df) = 2.4588237: difference CI 4 ± 2.4588237·√2.5; ratio CI
    // (16/12)·exp(±2.4588237·√(0.5/144 + 2/256)) = [1.0268361, 1.7313161].
    let t = &r["test"];
    assert!(close(&t["t"], 2.5298221, 1e-6), "{t}");
    assert!(close(&t["df"], 5.8823529, 1e-6));
    assert!(close(&t["p_value"], 0.0454646, 1e-6));
    assert!(close(&t["difference_ci_low"], 0.1122584, 1e-5));
    assert!(close(&t["difference_ci_high"], 7.8877416, 1e-5));
    assert!(close(&t["ratio_ci_low"], 1.0268361, 1e-5));
    assert!(close(&t["ratio_ci_high"], 1.7313161, 1e-5));
    assert!(close(&r["ratio"], 16.0 / 12.0, 1e-12));
    assert_eq!(r["verdict"], "slower");
    assert_eq!(row(&c, "short", "tokens_generated", 2)["verdict"], "same");

    // The same figures as the original benchmark wrote them (no runs, no schema_version): the test
    // works from mean, std and successful_runs and gives the same answer.
    let a0 = write_json(
        dir.path(),
        "a0.json",
        &hand_made(&[10.0, 11.0, 12.0, 13.0, 14.0], false, None),
    );
    let b0 = write_json(
        dir.path(),
        "b0.json",
        &hand_made(&[12.0, 14.0, 16.0, 18.0, 20.0], false, None),
    );
    let c0 = compare_json(&[s(&a0), s(&b0)]);
    let r0 = row(&c0, "short", "ttft_ms", 2);
    assert_eq!(r0["source"], "summary");
    assert!(close(&r0["test"]["p_value"], 0.0454646, 1e-6));

    // Overlapping samples are within noise: 10..14 against 11..15 shifted by 0.5.
    let d = write_json(
        dir.path(),
        "d.json",
        &hand_made(&[10.5, 11.5, 12.5, 13.5, 14.5], true, Some(1)),
    );
    let cd = compare_json(&[s(&a), s(&d)]);
    let rd = row(&cd, "short", "ttft_ms", 2);
    assert_eq!(rd["verdict"], "within noise");
    assert!(rd["test"]["ratio_ci_low"].as_f64().unwrap() < 1.0);
    assert!(rd["test"]["ratio_ci_high"].as_f64().unwrap() > 1.0);
}

#[test]
fn real_runs_of_two_scripted_engines_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    // The fast engine never sleeps between tokens (no wake-up latency at all); the slow one waits
    // at least 4 ms after each delivery, however late the scheduler wakes it: the slow side's gaps
    // can only grow, so the verdict does not depend on the machine's load.
    for (name, itl) in [("fast.json", "0"), ("slow.json", "4")] {
        let p = dir.path().join(name);
        let out = run(&[
            "--engine",
            "mock",
            "--prompt",
            "short,medium",
            "--warmup",
            "1",
            "--runs",
            "6",
            "--max-tokens",
            "12",
            "--mock-ttft-ms",
            "5",
            "--mock-itl-ms",
            itl,
            "--quiet",
            "--output",
            s(&p),
        ]);
        assert!(out.status.success(), "{}", show(&out));
        paths.push(p);
    }
    let c = compare_json(&[s(&paths[0]), s(&paths[1])]);
    // Same machine, tool and plan: only the scripted delay differs, and that is said.
    assert_eq!(
        c["warnings"],
        json!(["setting itl_ms differs: [1] 0.0; [2] 4.0"])
    );
    for prompt in ["short", "medium"] {
        let tps = row(&c, prompt, "tps", 2);
        assert_eq!(tps["source"], "runs");
        assert_eq!(tps["runs"], 6);
        assert_eq!(tps["verdict"], "slower", "{tps}");
        assert!(tps["ratio"].as_f64().unwrap() < 0.5);
        let itl = row(&c, prompt, "itl_mean_ms", 2);
        assert_eq!(itl["verdict"], "slower", "{itl}");
        assert!(itl["summary"]["min"].as_f64().unwrap() >= 4.0, "{itl}");
        assert_eq!(row(&c, prompt, "tokens_generated", 2)["verdict"], "same");
    }
    // A real run against the seed's file: the seed's definitions are used, and said so.
    let mixed = compare_json(&[s(&seed_llamacpp()), s(&paths[0])]);
    assert_eq!(row(&mixed, "short", "seed_tps", 2)["source"], "runs");
    assert!(mixed["notes"].to_string().contains("seed_tps"));
    // Markdown and CSV of the same comparison.
    let md = run(&["compare", s(&paths[0]), s(&paths[1]), "--format", "md"]);
    let md = String::from_utf8_lossy(&md.stdout).into_owned();
    assert!(md.contains("| prompt | metric"), "{md}");
    let csv = run(&["compare", s(&paths[0]), s(&paths[1]), "--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    assert!(
        csv.starts_with("prompt,metric,entry,key,file,runs,source,mean,"),
        "{csv}"
    );
    // 2 prompts × 6 metrics × 2 entries.
    assert_eq!(csv.lines().count(), 1 + 2 * 6 * 2, "{csv}");
}

#[test]
fn bad_files_and_picks_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = seed_vllm();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"results\": {").unwrap();
    assert_clean_error(
        &run(&["compare", s(&good), s(&broken)]),
        "broken.json is not valid JSON",
    );
    let newer = write_json(
        dir.path(),
        "newer.json",
        &json!({"schema_version": 99, "results": {}}),
    );
    assert_clean_error(
        &run(&["compare", s(&good), s(&newer)]),
        "newer.json has schema_version 99",
    );
    let other = write_json(dir.path(), "other.json", &json!({"hello": 1}));
    assert_clean_error(
        &run(&["compare", s(&good), s(&other)]),
        "other.json is not an inproc-bench results file",
    );
    let missing = dir.path().join("missing.json");
    assert_clean_error(&run(&["compare", s(&good), s(&missing)]), "cannot read");
    assert_clean_error(
        &run(&[
            "compare",
            s(&good),
            s(&seed_llamacpp()),
            "--backend1",
            "sglang",
        ]),
        "has no engine 'sglang'; it holds: vllm",
    );
    assert_clean_error(&run(&["compare", s(&good)]), "nothing to compare");
    assert_clean_error(
        &run(&["compare", s(&good), s(&good), "--confidence", "2"]),
        "--confidence",
    );
}
