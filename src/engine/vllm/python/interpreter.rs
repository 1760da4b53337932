//! The embedded CPython's start: once per process, from the vLLM environment's interpreter, with
//! Python's own signal handlers off, and a check that the environment matches the Python linked in.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pyo3::ffi;

use super::super::PythonEnv;
use crate::engine::EngineError;

/// The interpreter this process started, or why it could not; Python starts once per process.
static INTERPRETER: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Reads a `PyStatus`'s message.
fn status_message(status: &ffi::PyStatus) -> String {
    let part = |p: *const std::ffi::c_char| {
        if p.is_null() {
            None
        } else {
            // SAFETY: CPython's status strings are static, NUL-terminated C strings.
            Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        }
    };
    match (part(status.func), part(status.err_msg)) {
        (Some(f), Some(m)) => format!("{f}: {m}"),
        (None, Some(m)) => m,
        _ => format!("exit code {}", status.exitcode),
    }
}

/// Starts CPython with `sys.executable` set to the environment's interpreter, so that `sys.prefix`,
/// site-packages and the subprocesses vLLM spawns are the environment's and never this binary.
/// Python's own signal handlers stay off: Ctrl-C belongs to the benchmark.
fn init_interpreter(executable: &Path) -> Result<(), String> {
    let exe = CString::new(executable.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains a NUL byte", executable.display()))?;
    // SAFETY: the PyConfig is initialised by PyConfig_InitPythonConfig before any field is touched
    // and cleared once; `exe` outlives the call that copies it; Py_IsInitialized guards against a
    // second start; PyEval_SaveThread releases the GIL this thread holds after initialisation.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Err("Python was already started in this process by something else".into());
        }
        let mut config = MaybeUninit::<ffi::PyConfig>::uninit();
        let cfg = config.as_mut_ptr();
        ffi::PyConfig_InitPythonConfig(cfg);
        (*cfg).install_signal_handlers = 0;
        (*cfg).parse_argv = 0;
        let status = ffi::PyConfig_SetBytesString(
            cfg,
            std::ptr::addr_of_mut!((*cfg).executable),
            exe.as_ptr(),
        );
        if ffi::PyStatus_Exception(status) != 0 {
            ffi::PyConfig_Clear(cfg);
            return Err(status_message(&status));
        }
        let status = ffi::Py_InitializeFromConfig(cfg);
        ffi::PyConfig_Clear(cfg);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(status_message(&status));
        }
        ffi::PyEval_SaveThread();
    }
    Ok(())
}

/// Starts the embedded interpreter for `env` (once per process).
pub(super) fn start_interpreter(env: &PythonEnv) -> Result<(), EngineError> {
    let started = INTERPRETER
        .get_or_init(|| init_interpreter(&env.executable).map(|()| env.executable.clone()));
    match started {
        Ok(exe) if *exe == env.executable => Ok(()),
        Ok(exe) => Err(EngineError::Load(format!(
            "this process already embeds the Python of {}; it cannot switch to {}",
            exe.display(),
            env.executable.display()
        ))),
        Err(e) => Err(EngineError::Load(format!(
            "cannot start the embedded Python from {}: {e}",
            env.executable.display()
        ))),
    }
}

/// The Python version this binary links, `major.minor`.
const EMBEDDED_PYTHON: &str = env!("INPROC_PYTHON_VERSION");

/// Refuses an environment made from another Python version than the one embedded: its packages
/// would not import.
pub(super) fn check_env_python(env: &PythonEnv) -> Result<(), EngineError> {
    let Ok(cfg) = std::fs::read_to_string(env.root.join("pyvenv.cfg")) else {
        return Ok(());
    };
    let version = cfg.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_string())
    });
    match version {
        Some(v) if v != EMBEDDED_PYTHON && !v.starts_with(&format!("{EMBEDDED_PYTHON}.")) => {
            Err(EngineError::Load(format!(
                "the Python environment {} is Python {v} but this binary embeds Python {EMBEDDED_PYTHON}: recreate it with INPROC_PYTHON=python{EMBEDDED_PYTHON} python/setup-vllm-env.sh, or rebuild with PYO3_PYTHON pointing at its Python",
                env.root.display()
            )))
        }
        _ => Ok(()),
    }
}
