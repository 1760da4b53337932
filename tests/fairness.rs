//! Both sides of `--compare-http` do the same work, on the real llama-server (build 11434) and
//! SmolLM2: the same sampler chain and `swa_full`, the end-of-generation token counted alike,
//! ABBA order recorded and checked, blocks when asked, llama.cpp's own counters beside the stamps,
//! and a CPU build that says where `--n-gpu-layers` really ran. Never skipped.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn compare(dir: &Path, extra: &[&str]) -> (std::process::Output, Value) {
    let out_path = dir.join("r.json");
    let model = model();
    let mut c = bin();
    c.env("CI", "1")
        .env("INPROC_LLAMA_SERVER", llama_server())
        .args([
            "--engine",
            "llamacpp",
            "--model",
            model.to_str().unwrap(),
            "--compare-http",
            "--threads",
            "1",
            "--output",
            out_path.to_str().unwrap(),
        ])
        .args(extra);
    let out = c.output().expect("the binary starts");
    assert!(out.status.success(), "{}", show(&out));
    (out, read_json(&out_path))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

/// A prompt the default model answers in a few tokens, then ends with its end-of-generation token.
const EARLY_EOS: &str = r#"[{"name":"yesno","prompt":"Answer with one word, yes or no: is the sky blue?","max_tokens":40}]"#;

#[test]
fn both_sides_count_eos_alike_run_abba_and_record_the_same_work() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("p.json");
    std::fs::write(&prompts, EARLY_EOS).unwrap();
    let (out, j) = compare(
        dir.path(),
        &[
            "--prompt-file",
            prompts.to_str().unwrap(),
            "--prompt",
            "yesno",
            "--ignore-eos",
            "false",
            "--warmup",
            "0",
            "--runs",
            "4",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (a, b) = (&j["results"]["llamacpp"], &j["results"]["llamacpp-http"]);

    // EOS: both sides stop at it and count it; same tokens, same text.
    let (ra, rb) = (
        a["prompts"]["yesno"]["runs"].as_array().unwrap(),
        b["prompts"]["yesno"]["runs"].as_array().unwrap(),
    );
    assert_eq!((ra.len(), rb.len()), (4, 4));
    for (x, y) in ra.iter().zip(rb) {
        assert_eq!(x["finish_reason"], "eos", "{x}");
        assert_eq!(y["finish_reason"], "eos", "{y}");
        let n = x["tokens_generated"].as_u64().unwrap();
        assert!(n < 40, "stopped early: {x}");
        assert_eq!(
            x["tokens_generated"], y["tokens_generated"],
            "the EOS token counts on both sides"
        );
        assert_eq!(y["server"]["usage_tokens"], y["tokens_generated"]);
    }
    assert_eq!(j["http_comparison"]["prompts"]["yesno"]["same_text"], true);

    // ABBA: the in-process run goes first in rounds 1 and 3, second in rounds 2 and 4.
    let pos = |runs: &[Value]| -> Vec<u64> {
        runs.iter()
            .map(|r| r["position_in_round"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(pos(ra), vec![0, 1, 0, 1]);
    assert_eq!(pos(rb), vec![1, 0, 1, 0]);
    let c = &j["http_comparison"];
    assert_eq!(c["pairing"]["mode"], "interleaved", "{}", c["pairing"]);
    assert_eq!(c["pairing"]["requested"], "auto");
    let order = &c["prompts"]["yesno"]["order_effect"];
    assert_eq!(order["inprocess_first_rounds"], 2, "{order}");
    assert_eq!(order["http_first_rounds"], 2, "{order}");
    assert!(order["ttft_ms"]["difference_ci_low"].is_number(), "{order}");
    assert!(
        stdout.contains("order: in-process first in 2 rounds, HTTP first in 2"),
        "{stdout}"
    );
    assert!(stdout.contains("pairing: interleaved"), "{stdout}");

    // The same sampler chain and the same swa_full on both sides.
    assert!(a["details"]["sampler_chain"]
        .as_str()
        .unwrap()
        .contains("temp_ext"));
    assert_eq!(
        b["settings"]["samplers"],
        serde_json::json!(["temperature"])
    );
    assert_eq!(a["settings"]["swa_full"], false);
    assert!(!strings(&b["details"]["server_args"]).contains(&"--swa-full"));

    // llama.cpp's own counters beside the stamps: every prompt token in the prompt evaluation,
    // one decode per generated token but the last.
    for x in ra {
        let k = &x["engine_counters"];
        assert_eq!(k["prompt_eval_tokens"], x["prompt_tokens"], "{x}");
        assert_eq!(
            k["eval_tokens"].as_u64().unwrap(),
            x["tokens_generated"].as_u64().unwrap() - 1,
            "{x}"
        );
        assert!(k["prompt_eval_ms"].as_f64().unwrap() > 0.0);
        assert!(
            k["prompt_eval_ms"].as_f64().unwrap() <= x["ttft_ms"].as_f64().unwrap(),
            "the prompt evaluation is part of TTFT: {x}"
        );
    }
    let split = &c["prompts"]["yesno"]["http_split"];
    assert!(
        split["ttft"]["inprocess_engine_ms"].as_f64().unwrap() > 0.0,
        "{split}"
    );
    assert!(
        stdout.contains("in-process llama.cpp counters: prompt eval"),
        "{stdout}"
    );
}

#[test]
fn blocks_run_every_in_process_run_first_and_swa_full_reaches_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = compare(
        dir.path(),
        &[
            "--pairing",
            "blocks",
            "--swa-full",
            "--prompt",
            "short",
            "--warmup",
            "0",
            "--runs",
            "2",
            "--max-tokens",
            "8",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pairing: blocks (asked with --pairing)"),
        "{stderr}"
    );
    let c = &j["http_comparison"];
    assert_eq!(c["pairing"]["mode"], "blocks");
    assert!(c["prompts"]["short"].get("order_effect").is_none());
    let (a, b) = (&j["results"]["llamacpp"], &j["results"]["llamacpp-http"]);
    for side in [a, b] {
        for r in side["prompts"]["short"]["runs"].as_array().unwrap() {
            assert!(r.get("position_in_round").is_none(), "{r}");
            assert_eq!(r["tokens_generated"], 8);
        }
    }
    assert_eq!(a["settings"]["swa_full"], true);
    assert!(strings(&b["details"]["server_args"]).contains(&"--swa-full"));
    assert_eq!(c["prompts"]["short"]["same_text"], true);
}

#[test]
fn gpu_layers_on_a_cpu_build_say_where_the_model_ran() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let model = model();
    let out = run(&[
        "--model",
        model.to_str().unwrap(),
        "--n-gpu-layers",
        "30",
        "--threads",
        "1",
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "1",
        "--max-tokens",
        "4",
        "--format",
        "md",
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning: --n-gpu-layers 30"))
        .unwrap_or_else(|| panic!("no warning before the runs\n{stderr}"));
    assert!(
        warning.contains("no GPU backend") && warning.contains("--features cuda"),
        "{warning}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("30 (0 offloaded)"), "{stdout}");
    assert!(stdout.contains("| CPU "), "{stdout}");

    let j = read_json(&out_path);
    let e = &j["results"]["llamacpp"];
    assert_eq!(e["settings"]["n_gpu_layers"], 30);
    let o = &e["details"]["offload"];
    assert_eq!(o["layers_offloaded"], 0, "{o}");
    assert_eq!(o["layers_total"], 31, "{o}");
    assert_eq!(o["weight_devices"], serde_json::json!(["CPU"]));

    let csv = run(&["report", out_path.to_str().unwrap(), "--format", "csv"]);
    assert!(csv.status.success(), "{}", show(&csv));
    let text = String::from_utf8_lossy(&csv.stdout);
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap());
    let row = csv_fields(lines.next().unwrap());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(row[col("layers_offloaded")], "0/31");
    assert_eq!(row[col("backend")], "CPU");
    assert_eq!(row[col("n_gpu_layers")], "30", "raw numbers in CSV");
}

/// The fields of one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[test]
fn prefix_cache_on_reuses_the_prompt_on_both_sides_and_off_evaluates_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_, j) = compare(
        dir.path(),
        &[
            "--prefix-cache",
            "on",
            "--prompt",
            "short",
            "--warmup",
            "1",
            "--runs",
            "2",
            "--max-tokens",
            "8",
        ],
    );
    let (a, b) = (&j["results"]["llamacpp"], &j["results"]["llamacpp-http"]);
    assert!(!strings(&b["details"]["server_args"]).contains(&"--no-cache-prompt"));
    assert!(j["http_comparison"]["method"]
        .as_str()
        .unwrap()
        .contains("--prefix-cache on"));
    // After the warmup the whole prompt is cached: each side evaluates only its last token (a
    // one-token batch, which llama.cpp counts as a decode, not as prompt evaluation).
    for r in a["prompts"]["short"]["runs"].as_array().unwrap() {
        let k = &r["engine_counters"];
        assert!(
            k["prompt_eval_tokens"].as_u64().unwrap() <= 1,
            "the cached prompt was evaluated again: {r}"
        );
        assert_eq!(r["tokens_generated"], 8);
    }
    for r in b["prompts"]["short"]["runs"].as_array().unwrap() {
        assert_eq!(r["server"]["prompt_n"], 1, "{r}");
        assert_eq!(r["tokens_generated"], 8);
    }
    assert_eq!(j["http_comparison"]["prompts"]["short"]["same_text"], true);

    // Off (the default): every prompt token evaluated on both sides, every run.
    let dir = tempfile::tempdir().unwrap();
    let (_, j) = compare(
        dir.path(),
        &[
            "--prompt",
            "short",
            "--warmup",
            "1",
            "--runs",
            "2",
            "--max-tokens",
            "8",
        ],
    );
    let (a, b) = (&j["results"]["llamacpp"], &j["results"]["llamacpp-http"]);
    assert!(strings(&b["details"]["server_args"]).contains(&"--no-cache-prompt"));
    for r in a["prompts"]["short"]["runs"].as_array().unwrap() {
        assert_eq!(
            r["engine_counters"]["prompt_eval_tokens"],
            r["prompt_tokens"]
        );
    }
    for r in b["prompts"]["short"]["runs"].as_array().unwrap() {
        assert_eq!(r["server"]["prompt_n"], r["prompt_tokens"]);
    }
}

#[test]
fn api_chat_sends_the_messages_and_checks_the_servers_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = compare(
        dir.path(),
        &[
            "--api",
            "chat",
            "--thinking",
            "off",
            "--prompt",
            "short",
            "--warmup",
            "0",
            "--runs",
            "2",
            "--max-tokens",
            "4",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let c = &j["http_comparison"];
    assert_eq!(c["server"]["endpoint"], "/v1/chat/completions");
    assert!(c["method"].as_str().unwrap().contains("/apply-template"));
    let b = &j["results"]["llamacpp-http"];
    assert_eq!(b["settings"]["endpoint"], "/v1/chat/completions");
    assert_eq!(
        b["settings"]["chat_template_kwargs"],
        serde_json::json!({"enable_thinking": false})
    );
    // The server's rendering of the same message, asked before the runs: byte-equal to the
    // in-process prompt (the model's template with its system prompt: 37 tokens).
    let p = &c["prompts"]["short"];
    let check = &p["chat_prompt"];
    assert_eq!(check["equal"], true, "{check}");
    assert_eq!(check["inprocess_bytes"], check["server_bytes"], "{check}");
    assert_eq!(check["inprocess_prompt_tokens"], 37, "{check}");
    assert_eq!(check["server_prompt_tokens"], 37, "{check}");
    assert_eq!(p["prompt_tokens"], serde_json::json!([37, 37]));
    assert_eq!(p["same_text"], true);
    assert!(
        stdout.contains("chat prompt: the server renders the same prompt"),
        "{stdout}"
    );

    // A template both sides render differently (llama-server's strftime knows no %f): one warning
    // line naming both sizes, before the runs.
    let file = dir.path().join("differs.jinja");
    std::fs::write(
        &file,
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant {{ strftime_now('%f') }}\n",
    )
    .unwrap();
    let model = model();
    let out = bin()
        .env("INPROC_LLAMA_SERVER", llama_server())
        .args([
            "--model",
            model.to_str().unwrap(),
            "--compare-http",
            "--api",
            "chat",
            "--chat-template-file",
            file.to_str().unwrap(),
            "--threads",
            "1",
            "--prompt",
            "short",
            "--warmup",
            "0",
            "--runs",
            "1",
            "--max-tokens",
            "2",
            "--quiet",
            "--output",
            dir.path().join("d.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: prompt 'short': the server's rendering"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("bytes") && warnings[0].contains("in-process prompt ("),
        "{}",
        warnings[0]
    );
    assert!(!out.status.success(), "different prompts are not compared");
    assert!(stderr.contains("use --api completions"), "{stderr}");
}

#[test]
fn api_chat_refuses_what_the_chat_endpoint_cannot_reproduce() {
    let model = model();
    for (extra, want) in [
        (["--raw-prompt", "--quiet"], "--raw-prompt"),
        (["--chat-template", "chatml"], "drop --chat-template"),
    ] {
        let out = run(&[
            "--model",
            model.to_str().unwrap(),
            "--compare-http",
            "--api",
            "chat",
            extra[0],
            extra[1],
            "--runs",
            "1",
        ]);
        assert_clean_error(&out, want);
    }
}
