//! Helpers shared by the integration tests: the binary (run to the end, or spawned and watched
//! line by line), the test model, results read back, and process groups that must empty.
#![allow(dead_code)]

pub mod fixture_server;
pub mod load_fixture;
pub mod vllm;

#[allow(unused_imports)]
pub use vllm::{tiny_llama, vllm_args, vllm_env, vllm_serve_launch};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inproc-bench"))
}

/// The default test model. Tests fail (never skip) without it: `scripts/fetch-model.sh` fetches it.
pub fn model() -> PathBuf {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file(),
        "test model {} is missing: run scripts/fetch-model.sh (the README's test command does)",
        p.display()
    );
    p
}

/// In-process llama.cpp settings for the test model: `ctx` tokens, `threads` threads, no GPU
/// layers, batches of 512, llama.cpp's defaults otherwise. Tests that need other values change
/// fields with struct update syntax.
pub fn llama_settings(ctx: u32, threads: u32) -> inproc_bench::engine::llamacpp::LlamaCppSettings {
    inproc_bench::engine::llamacpp::LlamaCppSettings {
        model: model(),
        n_gpu_layers: 0,
        ctx_size: ctx,
        threads,
        batch_size: 512,
        ubatch_size: 512,
        flash_attn: inproc_bench::engine::llamacpp::FlashAttn::Auto,
        swa_full: false,
        split: Default::default(),
        verbose: false,
    }
}

/// A path as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The llama-server under test: `INPROC_LLAMA_SERVER`, else the vendor build in this checkout.
/// Never skipped: without it the test fails and names the build script.
pub fn llama_server() -> PathBuf {
    let p = std::env::var_os("INPROC_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(inproc_bench::compare_http::llama_server::VENDOR_SERVER)
        });
    assert!(
        p.is_file(),
        "llama-server {} is missing: build it with vendor/build-llama-tools.sh (scripts/test.sh does), or set INPROC_LLAMA_SERVER",
        p.display()
    );
    p
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env("CI", "1")
        .output()
        .expect("the binary starts")
}

/// Runs the binary with `args` and `--output out`, and reads the results back (`Null` when no file
/// was written).
pub fn run_to(out: &Path, args: &[&str]) -> (Output, Value) {
    let mut all = args.to_vec();
    all.extend(["--output", s(out)]);
    let output = run(&all);
    let json = if out.exists() {
        read_json(out)
    } else {
        Value::Null
    };
    (output, json)
}

/// Stdout and stderr of `out`, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// Asserts a bad-input failure: non-zero exit, one `Error:` line naming `needle`, no panic.
pub fn assert_clean_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure\n{}", show(out));
    assert!(!stderr.contains("panicked"), "panic\n{}", show(out));
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "one Error: line expected\n{}", show(out));
    assert!(
        errors[0].contains(needle),
        "error should mention '{needle}'\n{}",
        show(out)
    );
}

/// The files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Temporary files the tool left in `dir` (its atomic writes use `.inproc-bench-*`).
pub fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    files_in(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".inproc-bench"))
        })
        .collect()
}

/// A failure guard for waits on events: long enough for a cold, loaded 2-core machine.
pub const GUARD: Duration = Duration::from_secs(300);

/// The binary running in its own process group, its stderr read line by line. Dropping it kills
/// the whole group (and, through the parent-death signal, any server it started), so a failing
/// test leaves nothing running.
pub struct Spawned {
    child: Child,
    lines: Receiver<String>,
    /// Every stderr line read so far.
    pub seen: String,
    status: Option<ExitStatus>,
}

impl Spawned {
    /// Starts the binary with `args` and `env` (plus `CI=1` and one progress line per finished run),
    /// stdout discarded.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::os::unix::process::CommandExt;
        let mut cmd = bin();
        cmd.args(args)
            .env("CI", "1")
            .env("INPROC_PROGRESS_LINES", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("the binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: String::new(),
            status: None,
        }
    }

    /// Process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the first stderr line for which `wanted` holds and returns it; fails when the
    /// binary ends first or after [`GUARD`].
    pub fn wait_line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line {what} after {GUARD:?}:\n{}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "the binary ended ({status:?}) before {what}:\n{}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Waits until a measured (not warmup) run has finished: the progress line `done …: … run N/M`.
    pub fn wait_finished_run(&mut self) -> String {
        self.wait_line("saying a measured run finished", |l| {
            l.starts_with("done ") && l.contains(" run ")
        })
    }

    /// Sends SIGINT (Ctrl-C) to the binary alone.
    pub fn interrupt(&self) {
        signal(self.pid(), libc::SIGINT);
    }

    /// Waits for the binary to exit, reads the rest of its stderr into [`Spawned::seen`], and
    /// returns its status. Stderr ends when the binary exits, unless something it started (and
    /// left behind) still holds it: then the lines already written are taken and the wait ends.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + GUARD;
        let mut exited = None;
        loop {
            let wait = if exited.is_some() {
                Duration::from_secs(2)
            } else {
                Duration::from_millis(50)
            };
            match self.lines.recv_timeout(wait) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) if exited.is_some() => break,
                Err(RecvTimeoutError::Timeout) => {
                    exited = self.child.try_wait().expect("wait for the binary");
                    assert!(
                        Instant::now() < deadline,
                        "the binary did not exit after {GUARD:?}:\n{}",
                        self.seen
                    );
                }
            }
        }
        let status = self.child.wait().expect("wait for the binary");
        self.status = Some(status);
        status
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.status.is_none() {
            signal_group(self.pid(), libc::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) with a pid of a process this test started; touches no memory.
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig}) failed");
}

/// Sends `sig` to every process of group `pgid` (nothing when the group is empty).
pub fn signal_group(pgid: u32, sig: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        // SAFETY: kill(2) on a process group this test started; touches no memory.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// Fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, …
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether `pid` runs (a zombie has exited).
pub fn alive(pid: u32) -> bool {
    stat_fields(&pid.to_string()).is_some_and(|f| f.first().map(String::as_str) != Some("Z"))
}

/// Live (not zombie) processes of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid: u32 = name.parse().ok()?;
            let f = stat_fields(&name)?;
            (f.first()? != "Z" && f.get(2)?.parse::<u32>().ok()? == pgid).then_some(pid)
        })
        .collect()
}

/// Waits until process group `pgid` has no live process; fails after [`GUARD`] naming them.
pub fn assert_group_empties(pgid: u32, what: &str) {
    let deadline = Instant::now() + GUARD;
    loop {
        let left = group_members(pgid);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: processes {left:?} of group {pgid} still run after {GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid in a line `… (pid N) …` (a server's `ready on` line).
pub fn pid_in(line: &str) -> u32 {
    line.split("(pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line}"))
}

/// The live children of `parent` whose command line contains `needle`.
pub fn children_running(parent: u32, needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&c| {
            stat_fields(&c.to_string()).is_some_and(|f| {
                f.first().map(String::as_str) != Some("Z")
                    && f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
            }) && std::fs::read(format!("/proc/{c}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// Waits until `parent` has a live child whose command line contains `needle` and returns its
/// pid; fails after [`GUARD`].
pub fn wait_child(parent: u32, needle: &str) -> u32 {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Some(&pid) = children_running(parent, needle).first() {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no child '{needle}' of {parent} after {GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port that refuses connections while this value lives: a socket bound to it that
/// never listens, so no other process can take the port in the meantime.
pub struct ClosedPort {
    fd: libc::c_int,
    /// The port.
    pub port: u16,
}

impl ClosedPort {
    /// Binds a TCP socket to 127.0.0.1 on a port the kernel picks, without listening.
    pub fn new() -> Self {
        // SAFETY: plain socket calls on a socket owned here; `addr` and `len` are valid for the
        // calls that write them.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0, "socket() failed");
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            addr.sin_port = 0;
            let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(fd, std::ptr::addr_of!(addr).cast(), size);
            assert_eq!(bound, 0, "bind() failed");
            let mut len = size;
            let named = libc::getsockname(fd, std::ptr::addr_of_mut!(addr).cast(), &mut len);
            assert_eq!(named, 0, "getsockname() failed");
            Self {
                fd,
                port: u16::from_be(addr.sin_port),
            }
        }
    }
}

impl Drop for ClosedPort {
    fn drop(&mut self) {
        // SAFETY: closes the socket this value owns, once.
        unsafe {
            libc::close(self.fd);
        }
    }
}
