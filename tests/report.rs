//! Reports after the fact (`inproc-bench report`): Markdown and CSV snapshots of the seed's files and
//! of a real sweep, the plot, and a real two-value sweep on llama.cpp producing two entries.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

const SEED_VLLM: &str = "benchmark_qwen3-8b-gpu_20260109_033509.json";
const SEED_LLAMACPP: &str = "benchmark_qwen3-8b-gpu_20260109_035757.json";
/// A real run: `--ngl 0,10,-1 --threads 1,2 --prompt short,long --runs 3 --max-tokens 16` with
/// SmolLM2 on a CPU-only build (the layer counts are recorded, not offloaded).
const SWEEP: &str = "smollm2_ngl_threads_sweep.json";

/// Compares `actual` with the snapshot `name`; `UPDATE_SNAPSHOTS=1` rewrites the snapshot instead.
fn snapshot(name: &str, actual: &str) {
    let path = fixture("snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "{name} changed; run with UPDATE_SNAPSHOTS=1 if that is intended"
    );
}

/// The fields of one CSV line (RFC 4180 quoting, no line breaks inside fields).
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

fn stdout_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn markdown_and_csv_snapshots_of_the_seed_files() {
    let (a, b) = (fixture(SEED_VLLM), fixture(SEED_LLAMACPP));
    let md = stdout_of(&["report", s(&a), s(&b), "--format", "md"]);
    snapshot("report_seed.md", &md);
    // One row per engine and prompt, after the header and its rule.
    assert_eq!(md.lines().count(), 2 + 2 * 3, "{md}");
    let csv = stdout_of(&["report", s(&a), s(&b), "--format", "csv"]);
    snapshot("report_seed.csv", &csv);
    assert_eq!(csv.lines().count(), 1 + 2 * 3);
    let cmp = stdout_of(&["compare", s(&a), s(&b), "--format", "md"]);
    snapshot("compare_seed.md", &cmp);
}

#[test]
fn markdown_and_csv_snapshots_of_a_real_sweep() {
    let f = fixture(SWEEP);
    let md = stdout_of(&["report", s(&f), "--format", "md"]);
    snapshot("report_sweep.md", &md);
    let header = md.lines().next().unwrap();
    for col in [
        "model", "size", "params", "backend", "ngl", "threads", "prompt", "tg t/s",
    ] {
        assert!(header.contains(&format!(" {col} ")), "{col} in {header}");
    }
    assert_eq!(
        md.lines().count(),
        2 + 6 * 2,
        "6 combinations × 2 prompts\n{md}"
    );
    let csv = stdout_of(&["report", s(&f), "--format", "csv"]);
    snapshot("report_sweep.csv", &csv);
    let second = csv.lines().nth(1).unwrap();
    assert!(
        second.contains("llamacpp@n_gpu_layers=0,threads=1"),
        "{second}"
    );
    // Every row has as many fields as the header (the sweep label is quoted).
    let header_fields = fields(csv.lines().next().unwrap()).len();
    for line in csv.lines().skip(1) {
        assert_eq!(fields(line).len(), header_fields, "{line}");
        assert!(
            fields(line).contains(&"n_gpu_layers=0,threads=1".to_string())
                || !line.contains("n_gpu_layers=0,threads=1")
        );
    }
    // And the terminal table and JSON still work after the fact.
    assert!(stdout_of(&["report", s(&f)]).contains("llamacpp@n_gpu_layers=10,threads=2"));
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&["report", s(&f), "--format", "json"])).unwrap();
    assert_eq!(json["results"].as_object().unwrap().len(), 6);
}

#[test]
fn the_plot_draws_every_panel_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sweep.svg");
    let out = run(&[
        "report",
        s(&fixture(SWEEP)),
        "--format",
        "md",
        "--plot",
        s(&svg),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(text.trim_end().ends_with("</svg>"));
    for part in [
        "Time to first token by prompt",
        "Decode rate against n_gpu_layers",
        "all (-1)",
        "Inter-token latency distribution",
        "llamacpp@n_gpu_layers=0,threads=1",
    ] {
        assert!(text.contains(part), "{part} missing from the plot");
    }
    // Never overwritten: the command fails before printing anything and the file is unchanged.
    let again = run(&["report", s(&fixture(SWEEP)), "--plot", s(&svg)]);
    assert_clean_error(&again, "already exists");
    assert!(again.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), text);
    // An HTML page holding the same picture; the seed's files draw too (per-run means only).
    let html = dir.path().join("seed.html");
    let out = run(&[
        "compare",
        s(&fixture(SEED_VLLM)),
        s(&fixture(SEED_LLAMACPP)),
        "--plot",
        s(&html),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("<svg") && page.contains("hollow box")
    );
}

#[test]
fn report_refuses_bad_files_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "not json").unwrap();
    assert_clean_error(&run(&["report", s(&bad)]), "bad.json is not valid JSON");
}

#[test]
fn bad_sweep_lists_fail_before_loading_anything() {
    let m = model();
    for (flag, value, needle) in [
        ("--threads", "1,,2", "--threads: empty item"),
        ("--threads", "1,1", "--threads: 1 is listed twice"),
        (
            "--n-gpu-layers",
            "30-0",
            "--n-gpu-layers: invalid value '30-0'",
        ),
        (
            "--batch-size",
            "128,big",
            "--batch-size: invalid value 'big'",
        ),
        ("--flash-attn", "on,maybe", "--flash-attn"),
    ] {
        let out = run(&[
            "--model",
            s(&m),
            flag,
            value,
            "--output",
            "/nonexistent-dir/never.json",
        ]);
        assert_clean_error(&out, needle);
    }
}

#[test]
fn a_real_two_value_sweep_writes_two_entries_and_compares_them() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("sweep.json");
    let plot = dir.path().join("sweep.svg");
    let m = model();
    let out = run(&[
        "--model",
        s(&m),
        "--threads",
        "1,2",
        "--prompt",
        "short",
        "--warmup",
        "1",
        "--runs",
        "2",
        "--max-tokens",
        "8",
        "--format",
        "md",
        "--output",
        s(&out_path),
        "--plot",
        s(&plot),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let j = read_json(&out_path);
    let keys: Vec<&String> = j["results"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["llamacpp@threads=1", "llamacpp@threads=2"]);
    for (key, threads) in [("llamacpp@threads=1", 1), ("llamacpp@threads=2", 2)] {
        let e = &j["results"][key];
        assert_eq!(e["sweep"], serde_json::json!({ "threads": threads }));
        assert_eq!(e["settings"]["threads"], threads);
        assert_eq!(e["prompts"]["short"]["successful_runs"], 2);
        assert_eq!(e["prompts"]["short"]["tokens_generated"]["mean"], 8.0);
    }
    // The Markdown printed after the run: one row per combination.
    let md = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .collect();
    assert_eq!(rows.len(), 2, "{md}");
    assert!(std::fs::read_to_string(&plot)
        .unwrap()
        .contains("Decode rate against threads"));
    // One sweep file compares its combinations against the first, without settings warnings.
    let out = run(&["compare", s(&out_path), "--format", "json"]);
    assert!(out.status.success(), "{}", show(&out));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["entries"].as_array().unwrap().len(), 2);
    assert!(
        c["warnings"].as_array().unwrap().is_empty(),
        "{}",
        c["warnings"]
    );
    // Picking one combination by key, against the seed's llama.cpp file.
    let out = run(&[
        "compare",
        s(&out_path),
        s(&fixture(SEED_LLAMACPP)),
        "--backend1",
        "llamacpp@threads=2",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[1] llamacpp@threads=2"), "{text}");
    assert!(text.contains("warning: models differ"), "{text}");
}

/// A real run with the roofline figures: `--prompt short,long --warmup 1 --runs 3 -n 16 -t 1`
/// with SmolLM2 Q4_1 on a 2-core CPU-only machine that other jobs were loading.
const ROOFLINE: &str = "smollm2_roofline.json";

#[test]
fn markdown_snapshot_with_the_roofline_column() {
    let f = fixture(ROOFLINE);
    let md = stdout_of(&["report", s(&f), "--format", "md"]);
    snapshot("report_roofline.md", &md);
    let header = md.lines().next().unwrap();
    assert!(header.ends_with(" mem GB/s | % peak |"), "{header}");
    // Files without roofline figures get no such column.
    let seed = stdout_of(&["report", s(&fixture(SEED_LLAMACPP)), "--format", "md"]);
    assert!(!seed.contains("mem GB/s"), "{seed}");
    let table = stdout_of(&["report", s(&f)]);
    assert!(
        table.contains("roofline   102.5 MB/token (96.6 weights + 5.9 KV)"),
        "{table}"
    );
}
