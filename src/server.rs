//! Server processes: started as their [`Launch`] recipe says, on a free loopback port, in a process
//! group of their own, waited for (`GET /health`) while keeping their log's tail, and stopped when
//! dropped, on Ctrl-C, and when this process dies (the kernel kills them with us). What to start
//! (llama-server, `vllm serve`) is the caller's recipe.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::measure::StopFlag;

/// Lines of the server's log kept for error messages.
const LOG_LINES: usize = 60;

/// The placeholder in [`Launch::args`] that becomes the port.
pub const PORT: &str = "{port}";

/// Why a server could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The binary could not be run.
    #[error("cannot start {name} {path}: {cause}; {fix}")]
    Spawn {
        /// Which server.
        name: &'static str,
        /// The binary.
        path: String,
        /// What the OS said.
        cause: std::io::Error,
        /// How to get a working one.
        fix: &'static str,
    },
    /// The port asked for is in use.
    #[error("port {0} on 127.0.0.1 is already taken: stop what listens there, or leave the port to inproc-bench (it picks a free one)")]
    PortTaken(u16),
    /// No loopback port could be had.
    #[error("no free port on 127.0.0.1: {0}")]
    NoPort(std::io::Error),
    /// The server exited before it was ready.
    #[error("{name} exited ({status}) before it was ready{log}")]
    Exited {
        /// Which server.
        name: &'static str,
        /// Exit status.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// The server did not become ready in time.
    #[error("{name} was not ready after {secs} s (GET /health on port {port}); raise the wait with INPROC_SERVER_READY_SECS{log}")]
    NotReady {
        /// Which server.
        name: &'static str,
        /// Seconds waited.
        secs: u64,
        /// Its port.
        port: u16,
        /// The end of its log.
        log: String,
    },
    /// The user pressed Ctrl-C while the server was loading.
    #[error("interrupted while {0} was starting")]
    Interrupted(&'static str),
}

/// How long to wait for a server to become ready: `INPROC_SERVER_READY_SECS`, else `default_secs`.
pub fn ready_timeout(default_secs: u64) -> Duration {
    Duration::from_secs(
        std::env::var("INPROC_SERVER_READY_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_secs),
    )
}

/// How to start a server process of any kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// What to call it in messages (`llama-server`, `vllm serve`).
    pub name: &'static str,
    /// The program.
    pub program: PathBuf,
    /// Its arguments; [`PORT`] stands for the port.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// A fixed port; `None` picks a free one; `Some(0)` lets the program bind one of its own
    /// choosing and read it from its log (`listening on http://127.0.0.1:PORT`), which leaves no
    /// window in which another process could take a port picked here.
    pub port: Option<u16>,
    /// Let the server print its log instead of keeping its tail.
    pub verbose: bool,
    /// How long to wait for `/health` to answer 200.
    pub ready_timeout: Duration,
    /// The llama.cpp build it reports, when it is llama-server.
    pub build: Option<u32>,
    /// How to get a program that runs, for the error when it does not.
    pub fix: &'static str,
}

/// Pids of the servers this process started and has not stopped yet.
static STARTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every server this process started (for a hard exit, such as a second Ctrl-C).
pub fn kill_started() {
    let pids = STARTED.lock().map(|v| v.clone()).unwrap_or_default();
    for pid in pids {
        kill_group(pid);
    }
}

/// Kills a server's whole process group: the server leads its own group, and what it spawned
/// (vLLM's engine core, multiprocessing's resource tracker) must not outlive it.
fn kill_group(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on the process group of a child we started as a group leader; no
        // memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

type LogTail = Arc<Mutex<VecDeque<String>>>;

fn keep_tail(pipe: impl Read + Send + 'static, tail: LogTail) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut t) = tail.lock() {
                if t.len() == LOG_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        }
    });
}

/// A running server (llama-server, `vllm serve`) that this process started.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    name: &'static str,
    port: u16,
    url: String,
    args: Vec<String>,
    binary: PathBuf,
    build: Option<u32>,
    log: LogTail,
    ready_ms: f64,
    exit: Option<String>,
}

fn free_port() -> Result<u16, ServerError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(ServerError::NoPort)
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// The port in a log line `… listening on http://127.0.0.1:PORT` (llama-server's, after it bound
/// the port it chose for `--port 0`).
fn listening_port(line: &str) -> Option<u16> {
    const LISTENING: &str = "listening on http://127.0.0.1:";
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&p| p != 0)
}

/// Status code of `GET /health`, or `None` when nothing answers.
fn health(port: u16) -> Option<u16> {
    let addr = (Ipv4Addr::LOCALHOST, port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

impl ServerProcess {
    /// Starts a server and waits until `/health` answers 200. An automatically chosen port that
    /// another process takes in the meantime is replaced by a new one (three tries).
    /// Nothing starts when `stop` is already raised (Ctrl-C came first).
    pub fn launch(settings: &Launch, stop: &StopFlag) -> Result<Self, ServerError> {
        if stop.is_raised() {
            return Err(ServerError::Interrupted(settings.name));
        }
        if let Some(port) = settings.port {
            if !port_is_free(port) {
                return Err(ServerError::PortTaken(port));
            }
            return Self::start_on(settings, port, stop);
        }
        let mut tries = 0;
        loop {
            let port = free_port()?;
            match Self::start_on(settings, port, stop) {
                Err(ServerError::Exited { .. }) if tries < 2 && !port_is_free(port) => tries += 1,
                other => return other,
            }
        }
    }

    fn start_on(settings: &Launch, port: u16, stop: &StopFlag) -> Result<Self, ServerError> {
        if stop.is_raised() {
            return Err(ServerError::Interrupted(settings.name));
        }
        let args: Vec<String> = settings
            .args
            .iter()
            .map(|a| a.replace(PORT, &port.to_string()))
            .collect();
        let mut cmd = Command::new(&settings.program);
        cmd.args(&args)
            .envs(settings.env.iter().cloned())
            .stdin(Stdio::null());
        if settings.verbose {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a Ctrl-C at the terminal reaches us, and we stop the server.
            cmd.process_group(0);
            #[cfg(target_os = "linux")]
            // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent; it makes
            // the kernel kill the server when the thread that started it dies (even by SIGKILL).
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|cause| ServerError::Spawn {
            name: settings.name,
            path: settings.program.display().to_string(),
            cause,
            fix: settings.fix,
        })?;
        if let Ok(mut v) = STARTED.lock() {
            v.push(child.id());
        }
        let log: LogTail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            keep_tail(out, log.clone());
        }
        if let Some(err) = child.stderr.take() {
            keep_tail(err, log.clone());
        }
        let mut server = Self {
            child,
            name: settings.name,
            port,
            url: format!("http://127.0.0.1:{port}"),
            args,
            binary: settings.program.clone(),
            build: settings.build,
            log,
            ready_ms: 0.0,
            exit: None,
        };
        loop {
            if let Some(status) = server.exited() {
                // Let the log threads read the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Err(ServerError::Exited {
                    name: settings.name,
                    status,
                    log: server.log_tail(),
                });
            }
            if stop.is_raised() {
                return Err(ServerError::Interrupted(settings.name));
            }
            if server.port == 0 {
                // Port 0: the server says which port it bound once it listens.
                if let Some(bound) = server.reported_port() {
                    server.port = bound;
                    server.url = format!("http://127.0.0.1:{bound}");
                }
            }
            if server.port != 0 && health(server.port) == Some(200) && server.exited().is_none() {
                server.ready_ms = started.elapsed().as_secs_f64() * 1e3;
                return Ok(server);
            }
            if started.elapsed() > settings.ready_timeout {
                return Err(ServerError::NotReady {
                    name: settings.name,
                    secs: settings.ready_timeout.as_secs(),
                    port: server.port,
                    log: server.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port of the server's `listening on http://127.0.0.1:PORT` log line, once it is logged.
    fn reported_port(&self) -> Option<u16> {
        let log = self.log.lock().ok()?;
        log.iter().find_map(|line| listening_port(line))
    }

    /// What it is (`llama-server`, `vllm serve`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The flags it was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The build number it reports, when it does.
    pub fn build(&self) -> Option<u32> {
        self.build
    }

    /// Start to ready (model load included), ms.
    pub fn ready_ms(&self) -> f64 {
        self.ready_ms
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Option<String> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status.to_string());
                self.forget();
            }
        }
        self.exit.clone()
    }

    /// The last lines of its log, as a suffix for error messages (empty when there are none).
    pub fn log_tail(&self) -> String {
        let lines: Vec<String> = self
            .log
            .lock()
            .map(|t| t.iter().rev().take(8).rev().cloned().collect())
            .unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; its log ends: {}", lines.join(" | "))
        }
    }

    fn forget(&self) {
        let pid = self.child.id();
        if let Ok(mut v) = STARTED.lock() {
            v.retain(|&p| p != pid);
        }
    }

    /// Stops the server (SIGKILL: it holds no state worth saving) and reaps it.
    pub fn stop(&mut self) {
        let running = self.exited().is_none();
        // Also after the server itself has died: what it spawned may still run.
        kill_group(self.child.id());
        if running {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exit = Some("stopped".into());
            self.forget();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_a_server_bound_is_read_from_its_log() {
        assert_eq!(
            listening_port("srv    main: listening on http://127.0.0.1:41234"),
            Some(41234)
        );
        assert_eq!(
            listening_port("main: HTTP server is listening, hostname: 127.0.0.1, port: 8080"),
            None
        );
        assert_eq!(listening_port("listening on http://127.0.0.1:0"), None);
        assert_eq!(listening_port("listening on http://0.0.0.0:8080"), None);
    }

    #[test]
    fn nothing_starts_once_the_stop_flag_is_raised() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("started");
        let launch = Launch {
            name: "llama-server",
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), format!("touch {}", marker.display())],
            env: Vec::new(),
            port: None,
            verbose: false,
            ready_timeout: Duration::from_secs(5),
            build: None,
            fix: "none",
        };
        let stop = StopFlag::new();
        stop.raise();
        let e = ServerProcess::launch(&launch, &stop).unwrap_err();
        assert!(matches!(e, ServerError::Interrupted("llama-server")), "{e}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(!marker.exists(), "the program ran");
    }
}
