//! Helpers shared by the integration tests: the binary, the test model, and JSON access.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env("CI", "1")
        .output()
        .expect("the binary starts")
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
