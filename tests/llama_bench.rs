//! `inproc-bench llama-bench`: llama-bench's tests in-process on the real model, every output
//! format with llama-bench's field names, depth runs that fill exactly the asked depth, KV cache
//! types, the comparison against the real llama-bench binary, and bad flags.

mod common;

use common::{bin, model, s};
use serde_json::Value;

/// Runs `inproc-bench llama-bench` on the test model with 1 thread and the given flags.
fn lb(args: &[&str]) -> std::process::Output {
    let m = model();
    let mut c = bin();
    c.args(["llama-bench", "-m", s(&m), "-t", "1"]).args(args);
    c.output().expect("run inproc-bench")
}

fn ok(args: &[&str]) -> String {
    let out = lb(args);
    assert!(
        out.status.success(),
        "llama-bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

const FAST: &[&str] = &["-p", "16", "-n", "8", "-r", "2"];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    FAST.iter().copied().chain(extra.iter().copied()).collect()
}

const CSV_HEADER: &str = "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,n_batch,n_ubatch,n_threads,type_k,type_v,n_gpu_layers,flash_attn,n_prompt,n_gen,n_depth,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts,runner";

const JSONL_KEYS: &str = "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,n_batch,n_ubatch,n_threads,type_k,type_v,n_gpu_layers,flash_attn,n_prompt,n_gen,n_depth,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts,samples_ns,samples_ts,runner,kv_tokens_before_test,provenance";

#[test]
fn every_output_format_parses_with_llama_bench_field_names() {
    // JSONL: one object a line, keys in llama-bench's order (snapshot).
    let jsonl = ok(&with(&["-o", "jsonl"]));
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{jsonl}");
    for (v, raw) in lines.iter().zip(jsonl.lines()) {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want: Vec<&str> = JSONL_KEYS.split(',').collect();
        // In llama-bench's order on the line.
        let at: Vec<usize> = want
            .iter()
            .map(|k| raw.find(&format!("\"{k}\":")).expect(k))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{raw}");
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v["samples_ns"].as_array().unwrap().len(), 2);
        assert!(v["avg_ts"].as_f64().unwrap() > 0.0);
        assert_eq!(v["build_number"], 11434);
        assert_eq!(v["n_threads"], 1);
        // llama.cpp's own description of the model, as llama-bench writes it.
        assert_eq!(v["model_type"], "llama 256M Q4_1");
        // How it was made: the tool, the hardware and the settings.
        assert!(v["provenance"]["tool"]["version"].is_string());
        assert!(v["provenance"]["system"]["cpu_model"].is_string());
        assert_eq!(v["provenance"]["settings"]["repetitions"], 2);
    }
    assert_eq!(
        (lines[0]["n_prompt"].clone(), lines[0]["n_gen"].clone()),
        (16.into(), 0.into())
    );
    assert_eq!(
        (lines[1]["n_prompt"].clone(), lines[1]["n_gen"].clone()),
        (0.into(), 8.into())
    );

    let json: Value = serde_json::from_str(&ok(&with(&["-o", "json"]))).expect("a JSON array");
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert!(json[0]["samples_ts"].is_array());

    let csv = ok(&with(&["-o", "csv"]));
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some(CSV_HEADER));
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].split("\",\"").count(),
        CSV_HEADER.split(',').count()
    );

    let sql = ok(&with(&["-o", "sql"]));
    assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS llama_bench ("));
    assert_eq!(sql.matches("INSERT INTO llama_bench (").count(), 2);

    let md = ok(&with(&["-o", "md"]));
    assert!(
        md.starts_with("| model | size | params | backend | threads | test | t/s |"),
        "{md}"
    );
    assert!(md.contains("| pp16 |") && md.contains("| tg8 |"), "{md}");
}

#[test]
fn depth_runs_fill_exactly_the_asked_depth_and_pg_runs_both() {
    let out = ok(&[
        "-p", "16", "-n", "0", "-pg", "8,4", "-d", "0,24", "-r", "2", "-o", "jsonl",
    ]);
    let recs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tests: Vec<(u64, u64, u64)> = recs
        .iter()
        .map(|r| {
            (
                r["n_depth"].as_u64().unwrap(),
                r["n_prompt"].as_u64().unwrap(),
                r["n_gen"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(tests, vec![(0, 16, 0), (0, 8, 4), (24, 16, 0), (24, 8, 4)]);
    for r in &recs {
        let d = r["n_depth"].as_u64().unwrap();
        // The engine's KV cache held exactly the depth when each timed part began.
        assert_eq!(r["kv_tokens_before_test"], serde_json::json!([d, d]), "{r}");
    }
}

#[test]
fn kv_cache_types_are_accepted_and_recorded() {
    let out = ok(&[
        "-p", "8", "-n", "4", "-r", "1", "-ctk", "q8_0", "-o", "json",
    ]);
    let recs: Value = serde_json::from_str(&out).unwrap();
    for r in recs.as_array().unwrap() {
        assert_eq!(r["type_k"], "q8_0");
        assert_eq!(r["type_v"], "f16");
    }
    let md = ok(&["-p", "8", "-n", "0", "-r", "1", "-ctk", "q8_0"]);
    assert!(
        md.contains("| type_k | type_v |") && md.contains("| q8_0 | f16 |"),
        "{md}"
    );
}

#[test]
fn against_llama_bench_prints_one_ratio_per_test() {
    let out = ok(&with(&["--against", "llama-bench", "-o", "jsonl"]));
    let recs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let theirs: Vec<&Value> = recs
        .iter()
        .filter(|r| r["runner"] == "llama-bench")
        .collect();
    let ratios: Vec<&Value> = recs.iter().filter(|r| r["record"] == "ratio").collect();
    assert_eq!(theirs.len(), 2, "{out}");
    assert_eq!(ratios.len(), 2, "{out}");
    // The same model text on both sides.
    for r in recs.iter().filter(|r| r["runner"] == "inproc-bench") {
        assert_eq!(r["model_type"], theirs[0]["model_type"], "{out}");
    }
    // llama-bench's own JSON was read: its build, its samples (one run per repetition).
    for r in &theirs {
        assert_eq!(r["build_number"], 11434);
        assert_eq!(r["samples_ns"].as_array().unwrap().len(), 2);
        assert_eq!(r["n_threads"], 1);
    }
    for (q, test) in ratios.iter().zip(["pp16", "tg8"]) {
        assert_eq!(q["test"], test);
        assert_eq!(q["pairs"], 2);
        assert!(q["ratio_median"].as_f64().unwrap() > 0.0);
        assert!(q["ci_low"].as_f64().unwrap() <= q["ci_high"].as_f64().unwrap());
    }
}

fn one_error_line(args: &[&str], needles: &[&str]) {
    let out = lb(args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("Error: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{err} lacks {n}");
    }
}

#[test]
fn bad_flags_get_one_line_naming_the_fix() {
    one_error_line(&["-p", "0", "-n", "0"], &["nothing to measure", "-p 512"]);
    one_error_line(&["-ctk", "q9"], &["-ctk", "q9", "q8_0"]);
    one_error_line(&["-o", "xml"], &["-o", "md, csv, json, jsonl or sql"]);
    one_error_line(&["--against", "vllm"], &["--against llama-bench"]);
    one_error_line(&["-pg", "512"], &["-pg 512,128"]);
    one_error_line(&["-b", "0"], &["-b", "at least 1"]);
}
