//! Faults of `--compare-http` under load, with real processes: Ctrl-C in the first side of a level,
//! Ctrl-C while llama-server starts, a later level's llama-server that fails to start or dies.
//! The finished levels are kept, the file is marked incomplete, and no server is left behind. A
//! wrapper script stands in for llama-server where a start must hang or fail; it runs the real one
//! otherwise.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::load_fixture::{level, outputs};
use common::{llama_server, model, s, show, Spawned};
use serde_json::Value;

/// What the wrapper does on its `n`-th start (`--version` does not count).
enum Nth {
    /// Exits 3 before it is ready.
    Fails(u32),
    /// Waits ten minutes before it starts the real server.
    Hangs(u32),
}

/// A llama-server stand-in in `dir` that runs the real one except on the start `nth` names.
fn wrapper(dir: &Path, nth: Nth) -> PathBuf {
    let real = llama_server();
    let count = dir.join("starts");
    let (n, act) = match nth {
        Nth::Fails(n) => (n, "echo \"wrapper: start $n refused\" >&2; exit 3"),
        Nth::Hangs(n) => (n, "sleep 600"),
    };
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = --version ]; then exec '{real}' \"$@\"; fi\n\
         n=$(( $(cat '{count}' 2>/dev/null || echo 0) + 1 ))\n\
         echo $n > '{count}'\n\
         if [ $n -eq {n} ]; then {act}; fi\n\
         exec '{real}' \"$@\"\n",
        real = real.display(),
        count = count.display(),
    );
    let path = dir.join("llama-server");
    std::fs::write(&path, script).expect("write the wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The compared run's arguments: the test model, `levels`, `requests` per level.
fn compare_args<'a>(
    m: &'a Path,
    out: &'a Path,
    levels: &'a str,
    requests: &'a str,
) -> Vec<&'a str> {
    vec![
        "--model",
        s(m),
        "--ctx-size",
        "1024",
        "--threads",
        "1",
        "--compare-http",
        "--concurrency",
        levels,
        "--requests",
        requests,
        "--input-tokens",
        "8",
        "--output-tokens",
        "6",
        "--warmup",
        "0",
        "--output",
        s(out),
    ]
}

/// Pids of the `llama-server ready on … (pid N)` lines in `stderr`.
fn ready_pids(stderr: &str) -> Vec<u32> {
    stderr
        .lines()
        .filter(|l| l.starts_with("llama-server ready on"))
        .map(common::pid_in)
        .collect()
}

fn errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("Error:")).collect()
}

/// The levels of `load.http_comparison` (absent when empty).
fn comparisons(v: &Value) -> Vec<&str> {
    let Some(list) = v["load"]["http_comparison"].as_array() else {
        assert!(v["load"]["http_comparison"].is_null(), "{v}");
        return Vec::new();
    };
    list.iter()
        .map(|c| c["level"].as_str().expect("a level"))
        .collect()
}

fn level_keys(v: &Value) -> Vec<&str> {
    v["load"]["levels"]
        .as_object()
        .expect("levels")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn ctrl_c_in_the_first_side_keeps_its_requests_and_starts_no_second_side() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (m, srv) = (model(), llama_server());
    // More requests than the level can finish before the signal: the queue never empties.
    let mut child = Spawned::start(
        &compare_args(&m, &out, "2", "5000"),
        &[("INPROC_LLAMA_SERVER", s(&srv))],
    );
    let ready = child.wait_line("saying llama-server is ready", |l| {
        l.starts_with("llama-server ready on")
    });
    let server = common::pid_in(&ready);
    // The first level runs in-process first.
    child.wait_line("starting the in-process side", |l| {
        l.ends_with("(in-process)")
    });
    // Mid-side: some requests have finished, others are in flight.
    thread::sleep(Duration::from_secs(3));
    child.interrupt();
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", child.seen);
    common::assert_group_empties(server, "the compared llama-server");
    assert!(!child.seen.contains("over HTTP"), "{}", child.seen);
    let v = common::read_json(&out);
    assert_eq!(v["complete"], false);
    assert_eq!(v["incomplete_reason"], "interrupted by the user");
    assert_eq!(level_keys(&v), ["llamacpp@concurrency=2"], "{v}");
    assert!(comparisons(&v).is_empty(), "{v}");
    let l = level(&v, "llamacpp@concurrency=2");
    assert_eq!(l["complete"], false);
    let reqs = l["requests"].as_array().unwrap();
    assert!(
        reqs.iter()
            .any(|r| r["error"].is_null() && r["output_tokens"] == 6),
        "{l}"
    );
    assert!(reqs.iter().any(|r| r["error"] == "interrupted"), "{l}");
    assert!(
        reqs.iter()
            .all(|r| r["error"].is_null() || r["error"] == "interrupted"),
        "{l}"
    );
}

#[test]
fn ctrl_c_while_llama_server_starts_writes_the_file_and_leaves_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let m = model();
    let srv = wrapper(dir.path(), Nth::Hangs(1));
    let mut child = Spawned::start(
        &compare_args(&m, &out, "1", "2"),
        &[("INPROC_LLAMA_SERVER", s(&srv))],
    );
    // The server's own flags, not the `--version` query.
    let server = common::wait_child(child.pid(), "--no-webui");
    child.interrupt();
    let status = child.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", child.seen);
    common::assert_group_empties(server, "the llama-server still starting");
    assert!(!child.seen.contains("ready on"), "{}", child.seen);
    let v = common::read_json(&out);
    assert_eq!(v["complete"], false);
    assert_eq!(v["incomplete_reason"], "interrupted by the user");
    assert!(level_keys(&v).is_empty(), "{v}");
    assert!(comparisons(&v).is_empty(), "{v}");
}

/// Runs levels 1 and 2 with `srv` as llama-server, `kill` killing the second level's server as
/// soon as it is ready; checks that level 1 is kept whole on both sides, the file is incomplete,
/// one `Error:` line naming `needle`, exit 1, and no server left.
fn later_level_fails(srv: &Path, kill: bool, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let m = model();
    let mut child = Spawned::start(
        &compare_args(&m, &out, "1,2", "12"),
        &[("INPROC_LLAMA_SERVER", s(srv))],
    );
    if kill {
        child.wait_line("saying the first llama-server is ready", |l| {
            l.starts_with("llama-server ready on")
        });
        let second = child.wait_line("saying the second llama-server is ready", |l| {
            l.starts_with("llama-server ready on")
        });
        common::signal_group(common::pid_in(&second), libc::SIGKILL);
    }
    let status = child.wait_exit();
    let seen = child.seen.clone();
    assert_eq!(status.code(), Some(1), "{seen}");
    for pid in ready_pids(&seen) {
        common::assert_group_empties(pid, "a level's llama-server");
    }
    let errs = errors(&seen);
    assert_eq!(errs.len(), 1, "{seen}");
    assert!(errs[0].contains(needle), "{seen}");
    assert!(errs[0].contains(s(&out)), "{seen}");
    assert!(!seen.contains("panicked"), "{seen}");
    let v = common::read_json(&out);
    assert_eq!(v["complete"], false, "{v}");
    assert!(v["incomplete_reason"].as_str().is_some(), "{v}");
    for key in ["llamacpp@concurrency=1", "llamacpp-http@concurrency=1"] {
        let l = level(&v, key);
        assert_eq!(l["complete"], true, "{key}: {l}");
        assert_eq!(outputs(l), vec![6; 12], "{key}");
    }
    assert_eq!(comparisons(&v), ["concurrency=1"], "{v}");
    // The second level ran HTTP first; its in-process side never started.
    assert!(
        v["load"]["levels"]["llamacpp@concurrency=2"].is_null(),
        "{v}"
    );
    if let Some(l) = v["load"]["levels"]["llamacpp-http@concurrency=2"].as_object() {
        assert_eq!(l["complete"], false, "{v}");
        let failed: Vec<&Value> = l["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !r["error"].is_null())
            .collect();
        assert!(!failed.is_empty(), "{v}");
        // One line per failed request (up to 20).
        for r in failed.iter().take(20) {
            let line = format!(
                "llamacpp-http@concurrency=2: request {} failed: ",
                r["index"]
            );
            assert_eq!(seen.matches(&line).count(), 1, "{line}\n{seen}");
        }
    }
}

#[test]
fn a_later_llama_server_that_fails_to_start_keeps_the_finished_levels() {
    let dir = tempfile::tempdir().unwrap();
    let srv = wrapper(dir.path(), Nth::Fails(2));
    later_level_fails(&srv, false, "start 2 refused");
}

#[test]
fn a_later_llama_server_that_dies_keeps_the_finished_levels() {
    later_level_fails(&llama_server(), true, "the load run stopped early");
}

#[test]
fn the_results_of_a_failed_run_say_so_in_one_line() {
    // The wrapper refuses the first start: nothing was measured, the file still says why.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let m = model();
    let srv = wrapper(dir.path(), Nth::Fails(1));
    let o = common::bin()
        .args(compare_args(&m, &out, "1", "2"))
        .env("CI", "1")
        .env("INPROC_LLAMA_SERVER", &srv)
        .output()
        .expect("the binary starts");
    common::assert_clean_error(&o, "llama-server for concurrency=1 failed");
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v = common::read_json(&out);
    assert_eq!(v["complete"], false);
    assert!(level_keys(&v).is_empty(), "{v}");
}
