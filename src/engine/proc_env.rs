//! What a started server process tree actually runs with: for the server and each process it
//! spawned (vLLM's engine core and CPU worker), the thread and binding variables in its environment
//! and the CPUs it may run on, read from `/proc` (Linux; elsewhere nothing is recorded).

use std::path::Path;

use serde_json::{json, Map, Value};

/// Environment variables that decide OpenMP/torch threads and their binding (vLLM's CPU worker reads
/// `VLLM_CPU_OMP_THREADS_BIND`, and sets `OMP_NUM_THREADS` and the binding variables for its worker
/// from it), and the libraries preloaded into the process.
pub const THREAD_VARS: &[&str] = &[
    "OMP_NUM_THREADS",
    "VLLM_CPU_OMP_THREADS_BIND",
    "VLLM_CPU_NUM_OF_RESERVED_CPU",
    "OMP_PLACES",
    "OMP_PROC_BIND",
    "GOMP_CPU_AFFINITY",
    "KMP_AFFINITY",
    "LD_PRELOAD",
];

/// The parent pid of `pid`, from `/proc/PID/stat` (the field after the parenthesised name).
fn parent_of(proc_dir: &Path, pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and every process below it, parents before children.
fn tree(proc_dir: &Path, pid: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir(proc_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, parent_of(proc_dir, p)?)))
        .collect();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        let mut children: Vec<u32> = all
            .iter()
            .filter(|&&(_, pp)| pp == parent)
            .map(|&(p, _)| p)
            .collect();
        children.sort_unstable();
        out.extend(children);
        i += 1;
    }
    out
}

/// One line of `/proc/PID/status` (`Threads`, `Cpus_allowed_list`).
fn status_field(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// One process: its name, thread variables as it started with them, allowed CPUs and threads.
fn describe(proc_dir: &Path, pid: u32) -> Option<Value> {
    let dir = proc_dir.join(pid.to_string());
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
    let mut env = Map::new();
    for entry in environ.split(|&b| b == 0) {
        let entry = String::from_utf8_lossy(entry);
        if let Some((k, v)) = entry.split_once('=') {
            if THREAD_VARS.contains(&k) {
                env.insert(k.to_string(), json!(v));
            }
        }
    }
    Some(json!({
        "pid": pid,
        "name": status_field(&status, "Name"),
        "env": env,
        "cpus_allowed": status_field(&status, "Cpus_allowed_list"),
        "threads": status_field(&status, "Threads").and_then(|t| t.parse::<u64>().ok()),
    }))
}

/// The server `pid` and the processes it started, each with its thread settings; empty where
/// `/proc` is not readable.
pub fn server_tree(pid: u32) -> Vec<Value> {
    tree_at(Path::new("/proc"), pid)
}

fn tree_at(proc_dir: &Path, pid: u32) -> Vec<Value> {
    tree(proc_dir, pid)
        .into_iter()
        .filter_map(|p| describe(proc_dir, p))
        .collect()
}

/// `OMP_NUM_THREADS` and `VLLM_CPU_OMP_THREADS_BIND` of the deepest process of a tree (the one
/// that runs the model: vLLM's CPU worker, or llama-server itself), as [`server_tree`] gave it.
pub fn effective_threads(tree: &[Value]) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(last) = tree.last() {
        for key in ["OMP_NUM_THREADS", "VLLM_CPU_OMP_THREADS_BIND"] {
            out.insert(
                key.into(),
                last["env"].get(key).cloned().unwrap_or(Value::Null),
            );
        }
        out.insert("pid".into(), last["pid"].clone());
        out.insert("cpus_allowed".into(), last["cpus_allowed"].clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_a_child_with_their_thread_variables() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .env("OMP_NUM_THREADS", "3")
            .env("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            .spawn()
            .unwrap();
        let me = std::process::id();
        // Until the child has exec'd, its environment is still this process's.
        let mut t = Vec::new();
        for _ in 0..100 {
            t = server_tree(me);
            let c = t.iter().find(|p| p["pid"] == json!(child.id()));
            if c.is_some_and(|c| c["env"].get("OMP_NUM_THREADS").is_some()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(t[0]["pid"], json!(me));
        let c = t
            .iter()
            .find(|p| p["pid"] == json!(child.id()))
            .expect("the child is in the tree");
        assert_eq!(c["env"]["OMP_NUM_THREADS"], json!("3"));
        assert!(c["cpus_allowed"].is_string());
        let eff = effective_threads(std::slice::from_ref(c));
        assert_eq!(eff["VLLM_CPU_OMP_THREADS_BIND"], json!("nobind"));
    }
}
