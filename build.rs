//! Build script: records the git commit, cargo features, CPU target and profile for the results'
//! `tool` section, and generates the bindings for llama.cpp's RPC backend (`ggml-rpc.h`).

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
    rpc_bindings();

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

/// Bindings for `ggml-rpc.h`, which llama-cpp-sys-2 installs (with `GGML_RPC=ON`, set in
/// .cargo/config.toml) but does not bind: only the `ggml_backend_rpc_*` functions; the ggml types
/// they use come from llama-cpp-sys-2 (src/engine/llamacpp/rpc.rs imports them).
fn rpc_bindings() {
    // llama-cpp-sys-2 (`links = "llama"`) reports where it installed ggml's CMake package:
    // <out>/lib/cmake; the headers are in <out>/include.
    let Ok(cmake_dir) = std::env::var("DEP_LLAMA_GGML_CMAKE_DIR") else {
        panic!("llama-cpp-sys-2 did not report DEP_LLAMA_GGML_CMAKE_DIR: cannot find ggml-rpc.h");
    };
    let include = std::path::Path::new(&cmake_dir)
        .ancestors()
        .nth(2)
        .map(|out| out.join("include"))
        .expect("DEP_LLAMA_GGML_CMAKE_DIR is <out>/lib/cmake");
    let header = include.join("ggml-rpc.h");
    assert!(
        header.is_file(),
        "{} is missing: llama.cpp was built without its RPC backend. .cargo/config.toml sets GGML_RPC=ON, but a target directory built before that keeps the old llama.cpp: run `cargo clean --release -p llama-cpp-sys-2` once",
        header.display()
    );
    println!("cargo:rerun-if-changed={}", header.display());
    let bindings = bindgen::Builder::default()
        .header(header.display().to_string())
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_function("ggml_backend_rpc_.*")
        .allowlist_var("RPC_PROTO_.*|GGML_RPC_MAX_SERVERS")
        .allowlist_recursively(false)
        .generate()
        .expect("bindgen could not read ggml-rpc.h");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("ggml_rpc.rs"))
        .expect("cannot write the ggml-rpc bindings");
}
