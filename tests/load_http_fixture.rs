//! Load over HTTP against loopback fixtures: the in-process schedule and token-id prompts replayed
//! exactly; a stalled stream does not stall the others' stamps; a server that dies mid-level fails
//! the open requests with one line each and keeps the finished ones; `--backend` takes the load
//! flags.

mod common;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::fixture_server::stream_head;
use common::load_fixture::{finish, level, mini, outputs, token, VOCAB};
use common::{run_to, show};
use inproc_bench::load::shape::{Bound, Level, LoadShape};
use inproc_bench::load::workload::{Synthetic, Workload};
use serde_json::{json, Value};

#[test]
fn an_open_loop_replays_the_in_process_schedule_and_sends_the_same_token_ids() {
    let f = mini(Arc::default(), |_, w| {
        stream_head(w)?;
        for i in 0..3 {
            token(w, i)?;
        }
        finish(w, 3)
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (o, v) = run_to(
        &out,
        &[
            "--engine",
            "http",
            "--url",
            &f.url,
            "--request-rate",
            "50",
            "--requests",
            "6",
            "--input-tokens",
            "12",
            "--output-tokens",
            "3",
            "--load-seed",
            "7",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let l = level(&v, "http@request_rate=50");
    assert_eq!(outputs(l), vec![3; 6]);
    let shape = LoadShape {
        level: Level::Rate(50.0),
        burstiness: 1.0,
        max_concurrency: None,
        bound: Bound::Requests(6),
        seed: 7,
    };
    let sched: Vec<f64> = l["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scheduled_ms"].as_f64().unwrap())
        .collect();
    let want: Vec<f64> = shape
        .arrivals()
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    assert_eq!(sched, want);
    // The prompts are the in-process workload's token ids, with the in-process seeds.
    let w = Workload::synthetic(
        Synthetic {
            input_tokens: 12,
            output_tokens: 3,
            spread: 0.0,
            shared_prefix: 0,
        },
        VOCAB,
        7,
    );
    let mut bodies = f.bodies.lock().unwrap().clone();
    bodies.sort_by_key(|b| b["seed"].as_u64());
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(b["prompt"], json!(w.request(i).prompt), "request {i}");
        assert_eq!(
            (b["max_tokens"].as_u64(), b["stream"].as_bool()),
            (Some(3), Some(true))
        );
    }
    assert_eq!(l["http"]["endpoint"], "/v1/completions");
    assert!(l["http"]["send_lag_ms"]["p50"].as_f64().is_some(), "{l}");
}

#[test]
fn a_stalled_stream_does_not_stall_the_others_stamps() {
    let f = mini(Arc::default(), |n, w| {
        stream_head(w)?;
        token(w, 0)?;
        if n == 0 {
            thread::sleep(Duration::from_millis(2500));
        }
        for i in 1..5 {
            thread::sleep(Duration::from_millis(5));
            token(w, i)?;
        }
        finish(w, 5)
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (o, v) = run_to(
        &out,
        &[
            "--engine",
            "http",
            "--url",
            &f.url,
            "--concurrency",
            "3",
            "--requests",
            "3",
            "--input-tokens",
            "8",
            "--output-tokens",
            "5",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let l = level(&v, "http@concurrency=3");
    assert_eq!(outputs(l), vec![5; 3]);
    let mut e2e: Vec<f64> = l["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["e2e_ms"].as_f64().unwrap())
        .collect();
    e2e.sort_by(f64::total_cmp);
    // One stream stalls 2.5 s; the other two were stamped as their tokens came, long before.
    assert!(e2e[2] >= 2500.0, "{e2e:?}");
    assert!(e2e[1] < 1500.0, "{e2e:?}");
}

#[test]
fn a_server_dying_mid_level_fails_the_open_requests_one_line_each_and_keeps_the_finished() {
    let die = Arc::new(AtomicBool::new(false));
    let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let (d, op) = (die.clone(), open.clone());
    let f = mini(die.clone(), move |n, w| {
        stream_head(w)?;
        if n < 2 {
            for i in 0..4 {
                token(w, i)?;
            }
            return finish(w, 4);
        }
        token(w, 0)?;
        token(w, 1)?;
        let mut open = op.lock().unwrap();
        open.push(w.try_clone()?);
        if open.len() == 2 {
            // The server dies: the open streams break, no connection is accepted any more.
            thread::sleep(Duration::from_millis(100));
            d.store(true, Ordering::SeqCst);
            for s in open.iter() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        Ok(())
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let url = f.url.clone();
    // Wakes the accept loop so that it sees `die` and closes the listener.
    let waker = thread::spawn(move || {
        while !die.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(10));
        }
        let _ = TcpStream::connect(url.trim_start_matches("http://"));
    });
    let (o, v) = run_to(
        &out,
        &[
            "--engine",
            "http",
            "--url",
            &f.url,
            "--concurrency",
            "2",
            "--requests",
            "8",
            "--input-tokens",
            "8",
            "--output-tokens",
            "4",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    waker.join().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{}", show(&o));
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{}", show(&o));
    assert!(errors[0].contains("unreachable"), "{}", show(&o));
    let l = level(&v, "http@concurrency=2");
    assert_eq!(l["complete"], false);
    let reqs = l["requests"].as_array().unwrap();
    let finished: Vec<&Value> = reqs.iter().filter(|r| r["error"].is_null()).collect();
    assert_eq!(finished.len(), 2, "{l}");
    assert!(finished.iter().all(|r| r["output_tokens"] == 4));
    let broken: Vec<&Value> = reqs
        .iter()
        .filter(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.contains("broke after 2 tokens"))
        })
        .collect();
    assert_eq!(broken.len(), 2, "{l}");
    // One line per failed request on stderr.
    for r in reqs.iter().filter(|r| !r["error"].is_null()) {
        let line = format!("request {} failed: ", r["index"]);
        assert_eq!(stderr.matches(&line).count(), 1, "{line}\n{}", show(&o));
    }
    assert_eq!(v["complete"], false);
}

#[test]
fn backend_takes_the_load_flags() {
    let f = mini(Arc::default(), |_, w| {
        stream_head(w)?;
        for i in 0..2 {
            token(w, i)?;
        }
        finish(w, 2)
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (o, v) = run_to(
        &out,
        &[
            "--backend",
            "llamacpp",
            "--llamacpp-url",
            &f.url,
            "--concurrency",
            "2",
            "--requests",
            "4",
            "--input-tokens",
            "8",
            "--output-tokens",
            "2",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(outputs(level(&v, "llamacpp@concurrency=2")), vec![2; 4]);
    // llama-server's fields go with every request.
    let bodies = f.bodies.lock().unwrap().clone();
    assert!(bodies
        .iter()
        .all(|b| b["timings_per_token"] == true && b["ignore_eos"] == true));
}
