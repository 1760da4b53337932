//! Load over HTTP: exact per-request token counts at concurrency > 1 against real llama-server
//! (parallel slots) and `vllm serve`; the in-process schedule and token-id prompts replayed
//! exactly; a stalled stream does not stall the others' stamps; a server that dies mid-level fails
//! the open requests with one line each and keeps the finished ones.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::fixture_server::{chunk, end, read_request, respond, stream_head};
use common::{llama_server, model, run_to, s, show, tiny_llama, vllm_env};
use inproc_bench::compare_http::llama_server::ServerSettings;
use inproc_bench::engine::llamacpp::{FlashAttn, LlamaCppSettings};
use inproc_bench::load::shape::{Bound, Level, LoadShape};
use inproc_bench::load::workload::{Synthetic, Workload};
use inproc_bench::measure::StopFlag;
use inproc_bench::server::{Launch, ServerProcess, PORT};
use serde_json::{json, Value};

/// Vocabulary the fixture reports.
const VOCAB: u32 = 32000;

/// A loopback server for load: `/v1/models` with `meta.n_vocab`, each completion request handed
/// to `handler` with its number in arrival order and its JSON body; `die` stops accepting.
struct Mini {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

fn mini(
    die: Arc<AtomicBool>,
    handler: impl Fn(usize, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
) -> Mini {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = bodies.clone();
    let handler = Arc::new(handler);
    let count = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for conn in listener.incoming() {
            if die.load(Ordering::SeqCst) {
                return; // the listener closes: later connections are refused
            }
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_nodelay(true);
            let (seen, handler, count) = (seen.clone(), handler.clone(), count.clone());
            thread::spawn(move || {
                let Some(req) = read_request(&mut conn) else {
                    return;
                };
                if req.method == "GET" {
                    let body = json!({"object": "list", "data": [{"id": "fixture-model",
                        "owned_by": "fixture", "meta": {"n_vocab": VOCAB}}]});
                    let _ = respond(&mut conn, "200 OK", "", &body.to_string());
                    return;
                }
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&req.body).unwrap_or(Value::Null));
                let n = count.fetch_add(1, Ordering::SeqCst);
                let _ = handler(n, &mut conn);
            });
        }
    });
    Mini { url, bodies }
}

/// One completions chunk of one token.
fn token(w: &mut dyn Write, i: usize) -> std::io::Result<()> {
    let ev = json!({"choices": [{"index": 0, "text": format!("t{i} "), "finish_reason": null}]});
    chunk(w, format!("data: {ev}\n\n").as_bytes())
}

/// The end of a good answer of `n` tokens.
fn finish(w: &mut dyn Write, n: usize) -> std::io::Result<()> {
    let ev = json!({"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": n}});
    chunk(w, format!("data: {ev}\n\ndata: [DONE]\n\n").as_bytes())?;
    end(w)
}

fn level<'a>(v: &'a Value, key: &str) -> &'a Value {
    let l = &v["load"]["levels"][key];
    assert!(l.is_object(), "no level {key} in {v}");
    l
}

fn outputs(l: &Value) -> Vec<u64> {
    l["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["output_tokens"].as_u64().unwrap())
        .collect()
}

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

/// llama-server with `slots` parallel slots (the in-process settings otherwise).
fn llama_server_with_slots(slots: u32, ctx: u32) -> ServerProcess {
    let settings = LlamaCppSettings {
        model: model(),
        n_gpu_layers: 0,
        ctx_size: ctx,
        threads: 2,
        batch_size: 512,
        ubatch_size: 512,
        flash_attn: FlashAttn::Auto,
        swa_full: false,
        verbose: false,
    };
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
    let (m, env) = (tiny_llama(), vllm_env());
    let launch = Launch {
        name: "vllm serve",
        program: env.join("bin/python"),
        args: [
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            s(&m),
            "--host",
            "127.0.0.1",
            "--port",
            PORT,
            "--max-model-len",
            "512",
            "--enforce-eager",
            "--kv-cache-memory-bytes",
            "268435456",
            "--no-enable-prefix-caching",
            "--disable-uvicorn-access-log",
            "--disable-log-stats",
        ]
        .map(String::from)
        .to_vec(),
        env: [
            ("VLLM_TARGET_DEVICE", "cpu"),
            ("OMP_NUM_THREADS", "2"),
            ("VLLM_NO_USAGE_STATS", "1"),
            ("HF_HUB_OFFLINE", "1"),
            ("VLLM_LOGGING_LEVEL", "WARNING"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec(),
        port: None,
        verbose: false,
        ready_timeout: Duration::from_secs(600),
        build: None,
        fix: "run python/setup-vllm-env.sh",
    };
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
    assert!(String::from_utf8_lossy(&o.stdout).contains("IN-PROCESS vs HTTP under load"));
}

#[test]
fn ctrl_c_in_a_compared_level_keeps_the_finished_requests_and_leaves_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (m, srv) = (model(), llama_server());
    let mut child = common::Spawned::start(
        &[
            "--model",
            s(&m),
            "--ctx-size",
            "1024",
            "--threads",
            "1",
            "--compare-http",
            "--concurrency",
            "2",
            "--requests",
            "200",
            "--input-tokens",
            "8",
            "--output-tokens",
            "6",
            "--warmup",
            "0",
            "--output",
            s(&out),
        ],
        &[("INPROC_LLAMA_SERVER", s(&srv))],
    );
    let ready = child.wait_line("saying llama-server is ready", |l| {
        l.starts_with("llama-server ready on")
    });
    let server: u32 = ready
        .split("(pid ")
        .nth(1)
        .and_then(|x| x.split(')').next())
        .and_then(|x| x.parse().ok())
        .expect("a pid");
    // Mid-level: some requests of the in-process side have finished.
    thread::sleep(Duration::from_secs(3));
    child.interrupt();
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", child.seen);
    common::assert_group_empties(server, "the compared llama-server");
    let v = common::read_json(&out);
    assert_eq!(v["complete"], false);
    let l = level(&v, "llamacpp@concurrency=2");
    let reqs = l["requests"].as_array().unwrap();
    assert!(
        reqs.iter()
            .any(|r| r["error"].is_null() && r["output_tokens"] == 6),
        "{l}"
    );
    assert!(
        reqs.iter().any(|r| r["error"] == "interrupted") || reqs.len() < 200,
        "{l}"
    );
}
