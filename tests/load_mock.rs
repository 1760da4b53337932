//! Load on the scripted engine through the binary: a seeded open-loop level replays the same
//! schedule, and Ctrl-C in the middle of a level keeps the requests that finished.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{bin, s};
use serde_json::Value;

fn read(p: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn mock_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--engine",
        "mock",
        "--input-tokens",
        "8",
        "--output-tokens",
        "4",
        "--warmup",
        "0",
        "--mock-ttft-ms",
        "2",
        "--mock-itl-ms",
        "1",
        "--quiet",
        "--output",
        out,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn a_seeded_open_loop_replays_its_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = |name: &str, seed: &str| {
        let p = dir.path().join(name);
        let o = bin()
            .args(mock_args(
                s(&p),
                &[
                    "--request-rate",
                    "100",
                    "--requests",
                    "12",
                    "--load-seed",
                    seed,
                ],
            ))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v = read(&p);
        let level = &v["load"]["levels"]["mock@request_rate=100"];
        assert_eq!(level["summary"]["completed"], 12);
        level["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["scheduled_ms"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    let a = schedule("a.json", "7");
    assert_eq!(a, schedule("b.json", "7"));
    assert_ne!(a, schedule("c.json", "8"));
}

#[test]
fn ctrl_c_mid_level_keeps_the_finished_requests() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.json");
    let child = bin()
        .args(mock_args(
            s(&p),
            &[
                "--request-rate",
                "400",
                "--max-concurrency",
                "2",
                "--requests",
                "100000",
                "--mock-itl-ms",
                "5",
            ],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = read(&p);
    assert_eq!(v["complete"], false);
    let level = &v["load"]["levels"]["mock@request_rate=400"];
    assert_eq!(level["complete"], false);
    assert_eq!(level["incomplete_reason"], "interrupted by the user");
    let reqs = level["requests"].as_array().unwrap();
    let done: Vec<&Value> = reqs.iter().filter(|r| r.get("error").is_none()).collect();
    assert!(done.len() >= 10, "only {} finished", done.len());
    assert!(done.iter().all(|r| r["output_tokens"] == 4));
    // Two streams serve about 90 requests/s, so at the signal hundreds wait in the queue (and
    // two are in flight): every one of them is kept as interrupted, not lost. (A closed loop
    // would be racy here: both streams finish together, so the signal can fall between pairs.)
    let interrupted = reqs.iter().filter(|r| r["error"] == "interrupted").count();
    assert!(interrupted >= 10, "only {interrupted} kept as interrupted");
    assert_eq!(done.len() + interrupted, reqs.len());
    assert!(reqs.len() < 100000);
}

#[test]
fn an_open_loop_sweep_stops_past_a_saturated_level() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.json");
    // Two streams of ~40 ms requests hold about 50 requests/s: 500/s saturates, 1000/s is skipped.
    let o = bin()
        .args(mock_args(
            s(&p),
            &[
                "--request-rate",
                "500,1000",
                "--requests",
                "12",
                "--max-concurrency",
                "2",
                "--mock-ttft-ms",
                "10",
                "--mock-itl-ms",
                "10",
            ],
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = read(&p);
    let level = &v["load"]["levels"]["mock@request_rate=500"];
    assert_eq!(level["summary"]["saturated"], true, "{}", level["summary"]);
    assert!(level["summary"]["queue_wait_ms"]["p50"].as_f64().unwrap() > 10.0);
    assert_eq!(
        v["load"]["skipped"],
        serde_json::json!(["request_rate=1000"])
    );
}
