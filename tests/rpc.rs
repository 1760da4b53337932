//! llama.cpp over RPC on real processes: two `ggml-rpc-server` workers on loopback take the real
//! SmolLM2 model's layers from the in-process engine (the same greedy text and token counts as a
//! local run, every device and layer recorded), a worker that is not there gets a clear error, and
//! a worker killed mid-run ends the command with a clear error that names the journal of the runs
//! that finished; a tensor split places the layers by share.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The RPC worker: `INPROC_RPC_SERVER`, else the vendor build. Never skipped.
fn rpc_server_bin() -> PathBuf {
    let p = std::env::var_os("INPROC_RPC_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("vendor/llama.cpp-b11434/bin/ggml-rpc-server")
        });
    assert!(
        p.is_file(),
        "ggml-rpc-server {} is missing: build it with vendor/build-llama-tools.sh (scripts/test.sh does), or set INPROC_RPC_SERVER",
        p.display()
    );
    p
}

/// One `ggml-rpc-server` on 127.0.0.1, killed when dropped.
struct Worker {
    child: Child,
    endpoint: String,
}

impl Worker {
    fn start() -> Self {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            let child = Command::new(rpc_server_bin())
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "-t",
                    "1",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("ggml-rpc-server starts");
            let mut w = Worker {
                child,
                endpoint: format!("127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = w.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if TcpStream::connect(&w.endpoint).is_ok() {
                    return w;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = w.child.kill();
        }
        panic!("ggml-rpc-server did not start listening on loopback");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn args<'a>(model: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--engine",
        "llamacpp",
        "--model",
        s(model),
        "--prompt",
        "short",
        "--warmup",
        "0",
        "--runs",
        "2",
        "--max-tokens",
        "12",
        "--threads",
        "1",
        "--ctx-size",
        "512",
        "--quiet",
        "--roofline-probe",
        "false",
    ];
    a.extend_from_slice(extra);
    a
}

fn sample(j: &Value) -> (String, Vec<u64>) {
    let p = &j["results"]["llamacpp"]["prompts"]["short"];
    let tokens = p["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["tokens_generated"].as_u64().unwrap())
        .collect();
    (p["sample_output"].as_str().unwrap().to_string(), tokens)
}

#[test]
fn two_workers_take_the_layers_and_decode_the_same_greedy_text_as_a_local_run() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let (out, local) = run_to(&dir.path().join("local.json"), &args(&model, &[]));
    assert!(out.status.success(), "{}", show(&out));

    let (a, b) = (Worker::start(), Worker::start());
    let rpc = format!("{},{}", a.endpoint, b.endpoint);
    let (out, remote) = run_to(
        &dir.path().join("rpc.json"),
        &args(&model, &["--n-gpu-layers", "99", "--rpc", &rpc]),
    );
    assert!(out.status.success(), "{}", show(&out));

    let (local_text, local_tokens) = sample(&local);
    let (remote_text, remote_tokens) = sample(&remote);
    assert_eq!(local_tokens, vec![12, 12]);
    assert_eq!(remote_tokens, vec![12, 12], "exact token counts over RPC");
    assert_eq!(remote_text, local_text, "the same greedy text");

    let e = &remote["results"]["llamacpp"];
    assert_eq!(e["settings"]["rpc"], rpc.as_str());
    assert_eq!(e["settings"]["split_mode"], "layer");
    assert_eq!(e["settings"]["device"], "auto");
    let o = &e["details"]["offload"];
    assert_eq!(
        o["layers_offloaded"], 31,
        "every layer and the output layer: {o}"
    );
    let devices = o["devices"].as_array().expect("per-device report");
    let names: Vec<&str> = devices
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["CPU", "RPC0", "RPC1"], "{o}");
    for (d, endpoint) in devices[1..].iter().zip([&a.endpoint, &b.endpoint]) {
        assert_eq!(d["description"], endpoint.as_str(), "{d}");
        assert!(d["n_layers"].as_u64().unwrap() > 0, "layers went to {d}");
        assert!(d["buffers_bytes"]["model"].as_u64().unwrap() > 0, "{d}");
        assert!(d["buffers_bytes"]["kv"].as_u64().unwrap() > 0, "{d}");
        assert!(d["free_bytes_at_load"].as_u64().unwrap() > 0, "{d}");
    }
    let n: u64 = devices
        .iter()
        .map(|d| d["n_layers"].as_u64().unwrap())
        .sum();
    assert_eq!(n, 31, "every layer has a device: {o}");
    let listed = e["details"]["backend_devices"].as_array().unwrap();
    assert!(
        listed.iter().any(|d| d["backend"] == "RPC"),
        "the device list names the workers: {listed:?}"
    );

    // Local run: nothing offloaded, no RPC device.
    let o = &local["results"]["llamacpp"]["details"]["offload"];
    assert_eq!(o["layers_offloaded"], 0, "{o}");
}

/// Layers per device name in a results file's offload report.
fn layers_per_device(j: &Value) -> Vec<(String, u64)> {
    j["results"]["llamacpp"]["details"]["offload"]["devices"]
        .as_array()
        .expect("per-device report")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["n_layers"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_tensor_split_places_the_layers_by_share_and_decodes_the_same_text() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Worker::start(), Worker::start());
    let rpc = format!("{},{}", a.endpoint, b.endpoint);
    let run_split = |name: &str, ts: &str| {
        let (out, j) = run_to(
            &dir.path().join(name),
            &args(
                &model,
                &["--n-gpu-layers", "99", "--rpc", &rpc, "--tensor-split", ts],
            ),
        );
        assert!(out.status.success(), "{}", show(&out));
        j
    };
    let even = run_split("even.json", "1/1");
    let skewed = run_split("skewed.json", "3/1");

    let per = |j: &Value| {
        layers_per_device(j)
            .into_iter()
            .map(|(_, n)| n)
            .collect::<Vec<_>>()
    };
    let (even_layers, skewed_layers) = (per(&even), per(&skewed));
    assert_eq!(even_layers.iter().sum::<u64>(), 31, "{even_layers:?}");
    assert_eq!(skewed_layers.iter().sum::<u64>(), 31, "{skewed_layers:?}");
    assert_eq!(
        layers_per_device(&skewed)
            .iter()
            .map(|(d, _)| d.as_str())
            .collect::<Vec<_>>(),
        ["CPU", "RPC0", "RPC1"]
    );
    assert!(
        skewed_layers[1] >= 2 * skewed_layers[2],
        "3/1 puts about three times as many layers on RPC0: {skewed_layers:?}"
    );
    assert!(
        even_layers[1].abs_diff(even_layers[2]) <= 1,
        "1/1 halves the layers: {even_layers:?}"
    );
    let e = &skewed["results"]["llamacpp"];
    assert_eq!(e["settings"]["tensor_split"], "3/1");
    assert_eq!(
        even["results"]["llamacpp"]["settings"]["tensor_split"],
        "1/1"
    );
    let ((even_text, even_tokens), (skewed_text, skewed_tokens)) = (sample(&even), sample(&skewed));
    assert_eq!(even_tokens, vec![12, 12]);
    assert_eq!(skewed_tokens, vec![12, 12]);
    assert_eq!(even_text, skewed_text, "the same greedy text");
}

#[test]
fn a_tensor_split_that_does_not_fit_the_devices_gets_one_clear_error() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Worker::start(), Worker::start());
    let rpc = format!("{},{}", a.endpoint, b.endpoint);
    let (out, j) = run_to(
        &dir.path().join("r.json"),
        &args(
            &model,
            &[
                "--n-gpu-layers",
                "99",
                "--rpc",
                &rpc,
                "--tensor-split",
                "3/1/1",
            ],
        ),
    );
    assert_clean_error(&out, "3 shares for 2 devices");
    assert!(j.is_null(), "nothing measured, nothing written");
    let out = run(&args(&model, &["--tensor-split", "3/1"]));
    assert_clean_error(&out, "no device to split over");
}

#[test]
fn a_worker_that_does_not_answer_gets_one_clear_error() {
    let model = model();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let rpc = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = run_to(&dir.path().join("r.json"), &args(&model, &["--rpc", &rpc]));
    assert_clean_error(&out, "no RPC worker answers");
    assert!(j.is_null(), "nothing measured, nothing written");
    let out = run(&args(&model, &["--rpc", "localhost"]));
    assert_clean_error(&out, "--rpc");
}

#[test]
fn a_worker_killed_mid_run_ends_with_a_clear_error_and_the_finished_runs_kept() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.json");
    let (a, mut b) = (Worker::start(), Worker::start());
    let rpc = format!("{},{}", a.endpoint, b.endpoint);
    let mut all = args(&model, &["--n-gpu-layers", "99", "--rpc", &rpc]);
    for (flag, value) in [("--runs", "200"), ("--max-tokens", "24")] {
        let i = all.iter().position(|x| *x == flag).unwrap();
        all[i + 1] = value;
    }
    all.retain(|x| *x != "--quiet");
    all.extend(["--output", s(&out_path)]);
    let mut bin = Spawned::start(&all, &[]);
    bin.wait_finished_run();
    b.kill();
    let status = bin.wait_exit();
    assert!(!status.success(), "{}", bin.seen);
    let errors: Vec<&str> = bin
        .seen
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one Error: line\n{}", bin.seen);
    let journal = PathBuf::from(format!("{}.partial.jsonl", out_path.display()));
    assert!(
        errors[0].contains("RPC worker") && errors[0].contains(&b.endpoint),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains(s(&journal)), "{}", errors[0]);
    let text = std::fs::read_to_string(&journal).expect("the journal is kept");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(lines[0]["journal"].is_string(), "{text}");
    assert!(lines.len() >= 2, "at least the finished run: {text}");
    for run in &lines[1..] {
        assert_eq!(run["tokens_generated"], 24, "{run}");
        assert_eq!(run["engine"], "llamacpp");
    }
    assert!(
        !out_path.exists(),
        "no results file from an aborted process"
    );
}
