//! Load over HTTP against real servers: exact per-request token counts at concurrency > 1 on
//! llama-server (parallel slots) and `vllm serve`; `--compare-http` at every level, leaving no
//! server behind (its faults and Ctrl-C: tests/load_http_ctrl_c.rs).

mod common;

use common::load_fixture::{level, outputs};
use common::{llama_server, model, run_to, s, show};
use inproc_bench::compare_http::llama_server::ServerSettings;
use inproc_bench::measure::StopFlag;
use inproc_bench::server::ServerProcess;

/// llama-server with `slots` parallel slots (the in-process settings otherwise).
fn llama_server_with_slots(slots: u32, ctx: u32) -> ServerProcess {
    let settings = common::llama_settings(ctx, 2);
    let mut launch = ServerSettings::matching(&settings, llama_server()).launch();
    let i = launch.args.iter().position(|a| a == "--parallel").unwrap();
    launch.args[i + 1] = slots.to_string();
    ServerProcess::launch(&launch, &StopFlag::new()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn llama_server_slots_count_every_token_of_every_request() {
    let server = llama_server_with_slots(3, 3 * 64);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (o, v) = run_to(
        &out,
        &[
            "--engine",
            "http",
            "--url",
            server.url(),
            "--concurrency",
            "3",
            "--requests",
            "5",
            "--input-tokens",
            "24",
            "--output-tokens",
            "8",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let l = level(&v, "http@concurrency=3");
    assert_eq!(outputs(l), vec![8; 5]);
    assert_eq!(l["summary"]["completed"], 5);
    for r in l["http"]["requests"].as_array().unwrap() {
        assert_eq!(r["server_predicted_n"], 8, "{r}");
        assert_eq!(r["server_prompt_n"], 24, "{r}");
        assert_eq!(r["count_source"], "timings", "{r}");
        assert!(r["server_prompt_ms"].as_f64().is_some(), "{r}");
    }
    assert_eq!(l["settings"]["server"], "llama-server");
}

#[test]
fn vllm_serve_counts_every_token_of_every_request() {
    let launch = common::vllm_serve_launch();
    let server = ServerProcess::launch(&launch, &StopFlag::new()).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (o, v) = run_to(
        &out,
        &[
            "--engine",
            "http",
            "--url",
            server.url(),
            "--concurrency",
            "3",
            "--requests",
            "6",
            "--input-tokens",
            "16",
            "--output-tokens",
            "6",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let l = level(&v, "http@concurrency=3");
    assert_eq!(outputs(l), vec![6; 6]);
    for r in l["requests"].as_array().unwrap() {
        assert_eq!(r["prompt_tokens"], 16, "{r}");
    }
    for r in l["http"]["requests"].as_array().unwrap() {
        assert_eq!(r["usage_tokens"], 6, "{r}");
        assert_eq!(r["count_source"], "token_ids", "{r}");
    }
    assert_eq!(l["settings"]["server"], "vllm");
}

#[test]
fn compare_http_runs_every_level_on_both_sides_and_leaves_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let m = model();
    let mut args = vec![
        "--model",
        s(&m),
        "--ctx-size",
        "512",
        "--threads",
        "1",
        "--compare-http",
        "--concurrency",
        "1,2",
        "--requests",
        "3",
        "--input-tokens",
        "16",
        "--output-tokens",
        "4",
        "--warmup",
        "0",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(["--output".into(), s(&out).into()]);
    let o = common::bin()
        .args(&args)
        .env("CI", "1")
        .env("INPROC_LLAMA_SERVER", llama_server())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let pids: Vec<u32> = stderr
        .lines()
        .filter(|l| l.starts_with("llama-server ready on"))
        .filter_map(|l| l.split("(pid ").nth(1)?.split(')').next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "one server per level\n{}", show(&o));
    for p in pids {
        common::assert_group_empties(p, "llama-server of a level");
    }
    let v = common::read_json(&out);
    for key in ["llamacpp", "llamacpp-http"] {
        for lv in ["concurrency=1", "concurrency=2"] {
            assert_eq!(outputs(level(&v, &format!("{key}@{lv}"))), vec![4; 3]);
        }
    }
    let http2 = level(&v, "llamacpp-http@concurrency=2");
    let args = http2["settings"].to_string();
    assert!(
        http2["settings"]["server_args"]
            .to_string()
            .contains("\"--parallel\",\"2\""),
        "{args}"
    );
    let cmp = v["load"]["http_comparison"].as_array().unwrap();
    assert_eq!(cmp.len(), 2);
    let metrics: Vec<&str> = cmp[1]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    assert!(
        metrics.contains(&"ttft_p99_ms") && metrics.contains(&"output_tps"),
        "{metrics:?}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("IN-PROCESS vs HTTP under load"), "{stdout}");
    assert!(
        stdout.contains("where they part: ttft_p50_ms "),
        "the level where the sides part, per metric: {stdout}"
    );
}
