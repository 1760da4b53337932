//! The vLLM engine's settings and Python environment lookup (the `vllm serve` recipe lives in
//! `compare_http`); the engine itself is [`VllmEngine`]: `python.rs` (CPython embedded, feature
//! `vllm`), else `missing.rs`, a stand-in that says which feature to build with.

#[cfg(feature = "vllm")]
pub mod load;
#[cfg(not(feature = "vllm"))]
mod missing;
#[cfg(feature = "vllm")]
mod python;

#[cfg(not(feature = "vllm"))]
pub use missing::VllmEngine;
#[cfg(feature = "vllm")]
pub use python::VllmEngine;

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::EngineError;

/// Where `python/setup-vllm-env.sh` puts the environment, relative to the repository root.
pub const DEFAULT_ENV_DIR: &str = ".venv-vllm";

/// Everything the vLLM engine is set up with; recorded with the results.
#[derive(Debug, Clone, PartialEq)]
pub struct VllmSettings {
    /// Hugging Face model folder.
    pub model: PathBuf,
    /// Python environment holding vLLM, as the user named it (`None`: looked up).
    pub python_env: Option<PathBuf>,
    /// CPU threads for torch (`OMP_NUM_THREADS` and `torch.set_num_threads`).
    pub threads: u32,
    /// Fraction of GPU memory vLLM may take.
    pub gpu_memory_utilization: f64,
    /// GiB of weights kept in CPU memory.
    pub cpu_offload_gb: f64,
    /// Maximum sequence length (`None`: the model's).
    pub max_model_len: Option<u32>,
    /// GPUs for tensor parallelism.
    pub tensor_parallel_size: u32,
    /// Quantization method (`None`: from the model).
    pub quantization: Option<String>,
    /// Weight dtype.
    pub dtype: String,
    /// No CUDA graphs / no compilation.
    pub enforce_eager: bool,
    /// Reuse KV blocks of identical prompt prefixes.
    pub enable_prefix_caching: bool,
    /// Show vLLM's own logging and Python tracebacks.
    pub verbose: bool,
    /// Executor, pipeline stages and Ray cluster (docs/distributed.md).
    pub distributed: Distributed,
}

/// vLLM's distributed settings; the default is a single process group as vLLM picks it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distributed {
    /// `mp` or `ray`; `None`: vLLM's choice.
    pub executor_backend: Option<String>,
    /// Pipeline-parallel stages.
    pub pipeline_parallel_size: u32,
    /// A running Ray cluster's address (RAY_ADDRESS).
    pub ray_address: Option<String>,
}

impl Distributed {
    /// Environment for the driver and `vllm serve`: RAY_ADDRESS when a cluster is named.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.ray_address
            .iter()
            .map(|a| ("RAY_ADDRESS", a.clone()))
            .collect()
    }
}

impl VllmSettings {
    /// The keyword arguments of `vllm.EngineArgs` these settings give (the model excepted).
    pub fn engine_args(&self) -> Map<String, Value> {
        let mut a = Map::new();
        a.insert(
            "gpu_memory_utilization".into(),
            json!(self.gpu_memory_utilization),
        );
        a.insert("cpu_offload_gb".into(), json!(self.cpu_offload_gb));
        if let Some(n) = self.max_model_len {
            a.insert("max_model_len".into(), json!(n));
        }
        a.insert(
            "tensor_parallel_size".into(),
            json!(self.tensor_parallel_size),
        );
        if let Some(q) = &self.quantization {
            a.insert("quantization".into(), json!(q));
        }
        a.insert("dtype".into(), json!(self.dtype));
        a.insert("enforce_eager".into(), json!(self.enforce_eager));
        a.insert(
            "enable_prefix_caching".into(),
            json!(self.enable_prefix_caching),
        );
        let d = &self.distributed;
        a.insert(
            "pipeline_parallel_size".into(),
            json!(d.pipeline_parallel_size.max(1)),
        );
        if let Some(b) = &d.executor_backend {
            a.insert("distributed_executor_backend".into(), json!(b));
        }
        a
    }

    /// Checks the model is a Hugging Face folder before any Python starts.
    pub fn check_model(&self) -> Result<(), EngineError> {
        let m = &self.model;
        if !m.exists() {
            return Err(EngineError::Load(format!(
                "model folder not found: {} (vLLM takes a Hugging Face folder with config.json; python/make_smollm2_hf.py makes one from the default GGUF)",
                m.display()
            )));
        }
        if m.is_file() {
            let gguf = m
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
            return Err(EngineError::Load(if gguf {
                format!(
                    "{} is a GGUF file: vLLM takes a Hugging Face folder (use --engine llamacpp for GGUF, or convert it with python/make_smollm2_hf.py)",
                    m.display()
                )
            } else {
                format!(
                    "{} is a file: --model takes a Hugging Face folder for --engine vllm",
                    m.display()
                )
            }));
        }
        if !m.join("config.json").is_file() {
            return Err(EngineError::Load(format!(
                "{} has no config.json: it is not a Hugging Face model folder",
                m.display()
            )));
        }
        Ok(())
    }
}

/// vLLM's CPU thread binding on both sides: none. `vllm serve` runs the model in a worker process
/// whose OpenMP threads vLLM 0.32 binds itself (`VLLM_CPU_OMP_THREADS_BIND=auto`: one thread per
/// core of the first NUMA node, minus one core kept for its scheduler process, overriding
/// `OMP_NUM_THREADS`); the in-process engine runs its worker in this process, where vLLM binds
/// nothing. `nobind` makes the worker keep `OMP_NUM_THREADS`, so both sides run `--threads`
/// unbound threads.
pub const THREADS_BIND: &str = "nobind";

/// The environment that sets vLLM's CPU threads, the same for the in-process engine (set before
/// torch loads) and for `vllm serve`.
pub fn thread_env(threads: u32) -> Vec<(&'static str, String)> {
    vec![
        ("OMP_NUM_THREADS", threads.to_string()),
        ("VLLM_CPU_OMP_THREADS_BIND", THREADS_BIND.into()),
    ]
}

/// A Python environment (a virtual environment holding vLLM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// The environment's root (holds `bin/python`).
    pub root: PathBuf,
    /// The interpreter path the embedded Python takes as its `sys.executable`.
    pub executable: PathBuf,
}

fn env_at(root: &Path, found_by: &'static str) -> Result<PythonEnv, EngineError> {
    let executable = root.join("bin").join("python");
    if !root.is_dir() {
        return Err(EngineError::Load(format!(
            "Python environment {} (from {found_by}) does not exist: create it with python/setup-vllm-env.sh or pass --python-env DIR",
            root.display()
        )));
    }
    if !executable.exists() {
        return Err(EngineError::Load(format!(
            "{} (from {found_by}) has no bin/python, so it is not a virtual environment: pass --python-env with one made by python/setup-vllm-env.sh",
            root.display()
        )));
    }
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    // Keep the venv's own `bin/python` (a symlink): resolving it would point at the base Python
    // and lose the environment's site-packages.
    let executable = root.join("bin").join("python");
    Ok(PythonEnv { root, executable })
}

/// The Python environment to embed: `--python-env` (or `INPROC_PYTHON_ENV`), else the active
/// virtual environment, else `.venv-vllm` in the current directory or above the binary.
pub fn find_python_env(explicit: Option<&Path>) -> Result<PythonEnv, EngineError> {
    if let Some(p) = explicit {
        return env_at(p, "--python-env");
    }
    if let Some(v) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        return env_at(Path::new(&v), "VIRTUAL_ENV");
    }
    let mut candidates = vec![PathBuf::from(DEFAULT_ENV_DIR)];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|d| d.join(DEFAULT_ENV_DIR)));
    }
    match candidates.iter().find(|c| c.join("bin").join("python").exists()) {
        Some(c) => env_at(c, "the default .venv-vllm"),
        None => Err(EngineError::Load(
            "no Python environment with vLLM found: create one with python/setup-vllm-env.sh (it makes .venv-vllm), or pass --python-env DIR".into(),
        )),
    }
}

/// Settings of a small vLLM run, shared by the unit tests.
#[cfg(test)]
pub(crate) fn test_settings(model: &Path) -> VllmSettings {
    VllmSettings {
        model: model.to_path_buf(),
        python_env: None,
        threads: 2,
        gpu_memory_utilization: 0.9,
        cpu_offload_gb: 0.0,
        max_model_len: Some(1024),
        tensor_parallel_size: 1,
        quantization: None,
        dtype: "auto".into(),
        enforce_eager: true,
        enable_prefix_caching: false,
        verbose: false,
        distributed: Distributed {
            executor_backend: Some("mp".into()),
            pipeline_parallel_size: 2,
            ray_address: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_args_carry_every_setting_and_leave_unset_ones_to_vllm() {
        let a = test_settings(Path::new("m")).engine_args();
        assert_eq!(a["max_model_len"], json!(1024));
        assert_eq!(a["enforce_eager"], json!(true));
        assert_eq!(a["enable_prefix_caching"], json!(false));
        assert!(!a.contains_key("quantization"));
        assert!(!a.contains_key("model"));
    }

    #[test]
    fn model_checks_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let missing = test_settings(&dir.path().join("nope"))
            .check_model()
            .unwrap_err();
        assert!(missing.to_string().contains("model folder not found"));
        let gguf = dir.path().join("m.gguf");
        std::fs::write(&gguf, b"GGUF").unwrap();
        let e = test_settings(&gguf).check_model().unwrap_err().to_string();
        assert!(e.contains("--engine llamacpp"), "{e}");
        let e = test_settings(dir.path())
            .check_model()
            .unwrap_err()
            .to_string();
        assert!(e.contains("no config.json"), "{e}");
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        test_settings(dir.path()).check_model().unwrap();
    }

    #[test]
    fn the_python_side_binds_threads_as_the_tool_does() {
        // The benchmark scripts' offline references read the binding from the Python module.
        let env = include_str!("../../../python/inproc_bench_vllm_env.py");
        let want =
            format!("THREADS_BIND_ENV = {{\"VLLM_CPU_OMP_THREADS_BIND\": \"{THREADS_BIND}\"}}");
        assert!(
            env.contains(&want),
            "python/inproc_bench_vllm_env.py lacks {want}"
        );
        assert_eq!(
            thread_env(2)[1],
            ("VLLM_CPU_OMP_THREADS_BIND", THREADS_BIND.into())
        );
    }

    #[test]
    fn python_env_errors_name_the_setup_script() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_python_env(Some(&dir.path().join("none")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("python/setup-vllm-env.sh"), "{e}");
        let e = find_python_env(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("no bin/python"), "{e}");
    }
}
