//! `inproc-bench compare` on load results files, made by the scripted multi-stream engine: levels
//! paired by key (or by level when the engines differ), per-figure differences with intervals,
//! output agreement, and one clear line for a load file beside a single-stream file.

mod common;

use std::path::{Path, PathBuf};

use common::{bin, s};
use serde_json::Value;

/// A load run of the scripted engine at concurrency 2 and 4 with the given inter-token time.
fn load_file(dir: &Path, name: &str, itl_ms: &str) -> PathBuf {
    let p = dir.join(name);
    let o = bin()
        .args([
            "--engine",
            "mock",
            "--concurrency",
            "2,4",
            "--requests",
            "8",
            "--input-tokens",
            "8",
            "--output-tokens",
            "6",
            "--warmup",
            "0",
            "--mock-ttft-ms",
            "2",
            "--mock-itl-ms",
            itl_ms,
            "--slo",
            "ttft=10000",
            "--quiet",
            "--output",
            s(&p),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    p
}

fn compare(args: &[&str]) -> std::process::Output {
    bin().arg("compare").args(args).output().unwrap()
}

fn metric<'a>(level: &'a Value, key: &str) -> &'a Value {
    level["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == key)
        .unwrap_or_else(|| panic!("no {key} in {level}"))
}

#[test]
fn two_load_files_pair_their_levels_and_test_each_figure() {
    let dir = tempfile::tempdir().unwrap();
    let fast = load_file(dir.path(), "fast.json", "1");
    let slow = load_file(dir.path(), "slow.json", "8");
    let o = compare(&[s(&fast), s(&slow), "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let levels = v["levels"].as_array().unwrap();
    let names: Vec<&str> = levels
        .iter()
        .map(|l| l["level"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["concurrency=2", "concurrency=4"]);
    for l in levels {
        let keys: Vec<&str> = l["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys[0], keys[1]);
        // Eight times the inter-token time: the gaps are worse, and the interval says so.
        for key in ["itl_p50_ms", "tpot_mean_ms", "e2e_p50_ms"] {
            let row = &metric(l, key)["rows"][1];
            assert_eq!(row["verdict"], "worse", "{key}: {row}");
            assert!(row["ratio"].as_f64().unwrap() > 2.0, "{key}: {row}");
            let i = &row["interval"];
            assert!(i["difference_low"].as_f64().unwrap() > 0.0, "{key}: {row}");
            assert!(i["ratio_low"].as_f64().unwrap() <= row["ratio"].as_f64().unwrap());
        }
        assert_eq!(
            metric(l, "itl_p99_ms")["rows"][1]["interval"]["method"],
            "bootstrap"
        );
        assert_eq!(
            metric(l, "ttft_mean_ms")["rows"][1]["interval"]["method"],
            "welch"
        );
        let tput = &metric(l, "output_throughput_tps")["rows"][1];
        assert_eq!(tput["verdict"], "untested (one value per level)");
        assert!(tput["ratio"].as_f64().unwrap() < 1.0, "{tput}");
        assert!(
            metric(l, "goodput_request_rate")["rows"][0]["value"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        // The scripted engine generates the same tokens for every request.
        assert_eq!(l["agreement"][0]["compared"], 8);
        assert_eq!(l["agreement"][0]["same_output"], 8);
    }

    // The table says the same in words; CSV has one line per entry and figure.
    let o = compare(&[s(&fast), s(&slow)]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{table}");
    assert!(table.contains("level concurrency=2"), "{table}");
    assert!(table.contains("ITL p50 ms"), "{table}");
    assert!(
        table.contains("[2] generated the same tokens as [1] in 8 of 8 requests"),
        "{table}"
    );
    let o = compare(&[s(&fast), s(&slow), "--format", "csv"]);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(
        csv.starts_with("level,metric,entry,key,file,value,difference"),
        "{csv}"
    );
    assert!(csv.lines().count() > 2 * 2 * 10, "{csv}");
}

#[test]
fn levels_of_different_engines_pair_by_level() {
    let dir = tempfile::tempdir().unwrap();
    let a = load_file(dir.path(), "a.json", "1");
    // Make a copy of a into another engine's run of the same levels, and drop one of its levels:
    // the samples are the same on both sides, whatever the machine's timing did.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let levels = v["load"]["levels"].as_object_mut().unwrap();
    let mut one = levels.remove("mock@concurrency=4").unwrap();
    one["engine"] = "other".into();
    levels.clear();
    levels.insert("other@concurrency=4".into(), one);
    let b2 = dir.path().join("other.json");
    std::fs::write(&b2, serde_json::to_string(&v).unwrap()).unwrap();
    let o = compare(&[s(&a), s(&b2), "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let levels = v["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 1);
    assert_eq!(levels[0]["entries"][1]["key"], "other@concurrency=4");
    // The same samples on both sides: no difference to report.
    let row = &metric(&levels[0], "itl_p50_ms")["rows"][1];
    assert_ne!(row["verdict"], "worse", "{row}");
    assert_ne!(row["verdict"], "better", "{row}");
    assert_eq!(row["ratio"].as_f64(), Some(1.0), "{row}");
    // A pick that names nothing in the file says what it holds.
    let o = compare(&[s(&a), s(&b2), "--backend2", "vllm"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("has no load level or engine 'vllm'; it holds: other@concurrency=4"),
        "{err}"
    );
}

#[test]
fn a_load_file_beside_a_single_stream_file_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let load = load_file(dir.path(), "load.json", "1");
    let single =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_ngl_threads_sweep.json");
    for args in [[s(&load), s(&single)], [s(&single), s(&load)]] {
        let o = compare(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("Error: "), "{err}");
        assert!(
            err.contains("is a load results file")
                && err.contains("compare load files with load files"),
            "{err}"
        );
    }
    let o = compare(&[s(&load)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.starts_with("Error: nothing to compare"),
        "{err}"
    );
}
