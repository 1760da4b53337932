//! Build script: records the git commit, cargo features, CPU target and profile for the results'
//! `tool` section.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    println!("cargo:rustc-env=INPROC_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=INPROC_GIT_DIRTY={dirty}");

    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| {
            k.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase().replace('_', "-"))
        })
        .collect();
    features.sort();
    println!("cargo:rustc-env=INPROC_FEATURES={}", features.join(","));

    let target_cpu = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .ok()
        .and_then(|f| {
            f.split('\x1f')
                .find_map(|x| x.split("target-cpu=").nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "generic".into());
    println!("cargo:rustc-env=INPROC_TARGET_CPU={target_cpu}");
    println!(
        "cargo:rustc-env=INPROC_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );

    python_rpath();

    for path in [".git/HEAD", ".git/index", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
}

/// With the `vllm` feature the binary links libpython: record its directory as an rpath, so the
/// binary starts without LD_LIBRARY_PATH (a pyenv or venv Python keeps it outside the system paths).
#[cfg(feature = "vllm")]
fn python_rpath() {
    let config = pyo3_build_config::get();
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!(
        "cargo:rustc-env=INPROC_PYTHON_VERSION={}.{}",
        config.version().major,
        config.version().minor
    );
}

#[cfg(not(feature = "vllm"))]
fn python_rpath() {}
