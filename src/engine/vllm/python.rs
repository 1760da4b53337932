//! The vLLM engine (feature `vllm`): CPython embedded through pyo3 runs vLLM's `LLMEngine` in this
//! process and thread, driven by `python/inproc_bench_vllm.py` and its helpers
//! `python/inproc_bench_vllm_env.py` (both compiled into the binary); a Rust
//! callback hands each step's new tokens to the recorder the moment vLLM returns them.

use std::ffi::CString;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use serde_json::{json, Map, Value};

use super::{find_python_env, thread_env, PythonEnv, VllmSettings, THREADS_BIND};
use crate::engine::{
    Engine, EngineError, EngineInfo, Finish, Outcome, PreparedPrompt, PromptMode, Request,
};
use crate::measure::{LoadClock, LoadTime, LoadTimed, Phase, Recorder};
use crate::prompts::PromptSpec;
use crate::template::reasoning::{DeliverySorter, Phase as ThinkPhase, ThinkMarkers};

mod helpers;
mod interpreter;

use helpers::one_line;
use interpreter::{check_env_python, start_interpreter};

/// The Python side of the engine, compiled into the binary: the driver, and the helpers it imports
/// (loaded first, so that its `import` finds them).
const DRIVER_SOURCE: &str = include_str!("../../../python/inproc_bench_vllm.py");
const DRIVER_ENV_SOURCE: &str = include_str!("../../../python/inproc_bench_vllm_env.py");

/// One line for a Python exception: the driver's own errors as they are, others with their type;
/// with `verbose` the traceback goes to stderr first.
fn describe(py: Python<'_>, err: &PyErr, verbose: bool) -> String {
    if verbose {
        err.print(py);
    }
    let ty = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "exception".into());
    let msg = one_line(&err.value(py).to_string());
    if ty == "DriverError" {
        msg
    } else if verbose {
        format!("{ty}: {msg}")
    } else {
        format!("{ty}: {msg} (--verbose shows the Python traceback)")
    }
}

/// Python's `json` round trip: serde values in, Python objects out, and back.
fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?
        .call_method1("loads", (value.to_string(),))
}

fn from_python(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let text: String = obj
        .py()
        .import("json")?
        .call_method1("dumps", (obj,))?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// vLLM in this process.
pub struct VllmEngine {
    settings: VllmSettings,
    env: PythonEnv,
    driver: Py<PyAny>,
    load_ms: f64,
    details: Map<String, Value>,
    max_model_len: Option<u64>,
    /// The model's think markers (a reasoning model), from its tokenizer and template.
    markers: Option<ThinkMarkers>,
    /// The vocabulary's whitespace-only token ids, sorted (read once markers are found).
    whitespace: Arc<[i64]>,
}

impl VllmEngine {
    /// Starts Python in the environment, imports vLLM and builds its engine on the model; the
    /// caller times it, and the end of the Python start (interpreter and driver module) is marked
    /// on `clock` as [`PYTHON_STARTED`].
    pub fn load(settings: VllmSettings, clock: &mut LoadClock) -> Result<Self, EngineError> {
        settings.check_model()?;
        let env = find_python_env(settings.python_env.as_deref())?;
        check_env_python(&env)?;
        start_interpreter(&env)?;
        let verbose = settings.verbose;
        let model = settings
            .model
            .canonicalize()
            .unwrap_or_else(|_| settings.model.clone());
        let engine_args = Value::Object(settings.engine_args());
        let (driver, info) = Python::attach(|py| {
            let mut load = || -> PyResult<(Py<PyAny>, Value)> {
                let code = |text: &str| {
                    CString::new(text).map_err(|e| PyRuntimeError::new_err(e.to_string()))
                };
                PyModule::from_code(
                    py,
                    &code(DRIVER_ENV_SOURCE)?,
                    c"inproc_bench_vllm_env.py",
                    c"inproc_bench_vllm_env",
                )?;
                let module = PyModule::from_code(
                    py,
                    &code(DRIVER_SOURCE)?,
                    c"inproc_bench_vllm.py",
                    c"inproc_bench_vllm",
                )?;
                clock.mark(PYTHON_STARTED);
                let kwargs = PyDict::new(py);
                kwargs.set_item("verbose", verbose)?;
                kwargs.set_item("threads", settings.threads)?;
                // The same thread variables `vllm serve` gets (`vllm::thread_env`).
                let env = PyDict::new(py);
                for (k, v) in thread_env(settings.threads) {
                    env.set_item(k, v)?;
                }
                for (k, v) in settings.distributed.env() {
                    env.set_item(k, v)?;
                }
                kwargs.set_item("env", env)?;
                let driver = module.getattr("Driver")?.call(
                    (model.display().to_string(), to_python(py, &engine_args)?),
                    Some(&kwargs),
                )?;
                let info = from_python(&driver.call_method0("info")?)?;
                Ok((driver.unbind(), info))
            };
            load().map_err(|e| EngineError::Load(describe(py, &e, verbose)))
        })?;
        let details = match info {
            Value::Object(m) => m,
            other => Map::from_iter([("info".to_string(), other)]),
        };
        let max_model_len = details.get("max_model_len").and_then(Value::as_u64);
        let mut engine = Self {
            settings,
            env,
            driver,
            load_ms: 0.0,
            details,
            max_model_len,
            markers: None,
            whitespace: Arc::from(Vec::new()),
        };
        let template: Option<String> = engine.call(EngineError::Load, |d| {
            d.call_method0("chat_template_source")?.extract()
        })?;
        engine.find_markers(template.as_deref(), EngineError::Load)?;
        Ok(engine)
    }

    /// The Python driver object (the load driver wraps it).
    pub(crate) fn driver(&self) -> &Py<PyAny> {
        &self.driver
    }

    /// The Python environment this engine runs in.
    pub fn python_env(&self) -> &PythonEnv {
        &self.env
    }

    fn version(&self, package: &str) -> Option<&str> {
        self.details.get("versions")?.get(package)?.as_str()
    }

    /// Calls a driver method and maps a Python exception to `wrap`.
    fn call<T>(
        &self,
        wrap: fn(String) -> EngineError,
        f: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T>,
    ) -> Result<T, EngineError> {
        let verbose = self.settings.verbose;
        Python::attach(|py| f(self.driver.bind(py)).map_err(|e| wrap(describe(py, &e, verbose))))
    }
}

/// The phase mark at the end of the Python start: the interpreter up and the driver module loaded.
pub const PYTHON_STARTED: &str = "python_start";

impl LoadTimed for VllmEngine {
    /// The load time, split into `python_start_ms` (interpreter and driver module) and
    /// `engine_start_ms` (vLLM's engine: model, KV cache, warm-up) in the details.
    fn loaded_in(&mut self, load: &LoadTime) {
        self.load_ms = load.ms;
        if let Some(python) = load.phase(PYTHON_STARTED) {
            self.details.insert("python_start_ms".into(), json!(python));
            self.details
                .insert("engine_start_ms".into(), json!(load.ms - python));
        }
    }
}

impl Engine for VllmEngine {
    fn info(&self) -> EngineInfo {
        let s = &self.settings;
        let mut settings = Map::new();
        settings.insert("model".into(), json!(s.model.display().to_string()));
        settings.insert("threads".into(), json!(s.threads));
        settings.insert("cpu_threads_bind".into(), json!(THREADS_BIND));
        settings.insert(
            "python_env".into(),
            json!(self.env.root.display().to_string()),
        );
        settings.extend(s.engine_args());
        let version = format!(
            "{} (torch {}, Python {}, in-process)",
            self.version("vllm").unwrap_or("?"),
            self.version("torch").unwrap_or("?"),
            self.version("python").unwrap_or("?"),
        );
        EngineInfo {
            key: "vllm".into(),
            name: "vLLM".into(),
            version,
            model: s.model.display().to_string(),
            settings,
            load_ms: self.load_ms,
            details: {
                let mut d = self.details.clone();
                if let Some(mk) = &self.markers {
                    d.insert("think_markers".into(), json!([mk.start, mk.end]));
                }
                d
            },
        }
    }

    fn prepare(
        &mut self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<PreparedPrompt, EngineError> {
        let text = match mode {
            PromptMode::Raw => prompt.prompt.clone(),
            PromptMode::Chat {
                template: Some(name),
                ..
            } => {
                return Err(EngineError::Prompt(format!(
                    "--chat-template {name} names a llama.cpp template; the vllm engine applies the model's own: drop --chat-template, or pass --raw-prompt"
                )))
            }
            PromptMode::Chat {
                template: None,
                options,
            } => {
                let source = match &options.template_file {
                    Some(path) => Some(
                        crate::template::read_template_file(path)
                            .map_err(|e| EngineError::Prompt(e.to_string()))?,
                    ),
                    None => None,
                };
                let kwargs = options
                    .has_kwargs()
                    .then(|| serde_json::Value::Object(options.kwargs.clone()).to_string());
                if source.is_some() {
                    self.find_markers(source.as_deref(), EngineError::Prompt)?;
                }
                let templated: Option<String> = self.call(EngineError::Prompt, |d| {
                    d.call_method1(
                        "chat_prompt",
                        (prompt.prompt.as_str(), source.as_deref(), kwargs.as_deref()),
                    )?
                    .extract()
                })?;
                templated.ok_or_else(|| {
                    EngineError::Prompt(format!(
                        "{} has no chat template: pass --raw-prompt",
                        self.settings.model.display()
                    ))
                })?
            }
        };
        let n_prompt: u64 = self.call(EngineError::Prompt, |d| {
            d.call_method1("count_tokens", (text.as_str(),))?.extract()
        })?;
        let need = n_prompt + u64::from(prompt.max_tokens);
        if let Some(max_len) = self.max_model_len.filter(|&m| need > m) {
            return Err(EngineError::Prompt(format!(
                "prompt '{}' needs {need} tokens ({n_prompt} prompt + {} generated) but the model length is {max_len}: raise --max-model-len or lower --max-tokens",
                prompt.name, prompt.max_tokens
            )));
        }
        Ok(PreparedPrompt {
            name: prompt.name.clone(),
            text,
            max_tokens: prompt.max_tokens,
            prompt_tokens: Some(n_prompt),
        })
    }

    fn generate(&mut self, req: &Request<'_>, rec: &mut Recorder) -> Result<Outcome, EngineError> {
        let sampling = req.sampling;
        let seed = (sampling.temperature > 0.0).then_some(sampling.seed);
        // A reasoning model's deliveries are sorted by their token ids (one lookup per token
        // until the answer starts, none after).
        let sorter = self
            .markers
            .as_ref()
            .map(|m| DeliverySorter::new(m, &req.prompt.text, Arc::clone(&self.whitespace)));
        let with_ids = sorter.is_some();
        if with_ids {
            rec.track_reasoning();
        }
        // The callback must own what it touches, so the recorder moves into it for the request
        // and comes back after.
        let slot = Arc::new(Mutex::new(Some((std::mem::take(rec), sorter))));
        let sink = Arc::clone(&slot);
        let on_tokens =
            move |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                let n: u32 = args.get_item(0)?.extract()?;
                let mut guard = sink
                    .lock()
                    .map_err(|_| PyRuntimeError::new_err("the recorder's lock is poisoned"))?;
                if let Some((r, sorter)) = guard.as_mut() {
                    let phase = match sorter {
                        Some(s) if !s.answering() => {
                            let ids: Vec<i64> = args.get_item(1)?.extract()?;
                            s.next(&ids)
                        }
                        _ => ThinkPhase::Answer,
                    };
                    match phase {
                        ThinkPhase::Reasoning => r.reasoning(n),
                        ThinkPhase::Answer => r.tokens(n),
                    }
                    if r.should_stop() {
                        return Err(PyKeyboardInterrupt::new_err("interrupted"));
                    }
                }
                Ok(())
            };
        // The driver names where each phase of a step starts; the recorder stamps it.
        let marks = Arc::clone(&slot);
        let on_phase =
            move |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                let item = args.get_item(0)?;
                let name: &str = item.extract()?;
                let phase = Phase::from_name(name)
                    .ok_or_else(|| PyRuntimeError::new_err(format!("unknown phase {name:?}")))?;
                let mut guard = marks
                    .lock()
                    .map_err(|_| PyRuntimeError::new_err("the recorder's lock is poisoned"))?;
                if let Some(r) = guard.as_mut() {
                    r.0.phase(phase);
                }
                Ok(())
            };
        let verbose = self.settings.verbose;
        let result = Python::attach(|py| {
            let run = || -> PyResult<Bound<'_, PyAny>> {
                let callback = PyCFunction::new_closure(py, Some(c"on_tokens"), None, on_tokens)?;
                let phases = PyCFunction::new_closure(py, Some(c"on_phase"), None, on_phase)?;
                self.driver.bind(py).call_method1(
                    "generate",
                    (
                        req.prompt.text.as_str(),
                        req.prompt.max_tokens,
                        sampling.ignore_eos,
                        sampling.temperature,
                        seed,
                        callback,
                        with_ids,
                        phases,
                    ),
                )
            };
            match run() {
                Ok(out) => parse_outcome(&out)
                    .map_err(|e| EngineError::Generate(describe(py, &e, verbose))),
                Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => {
                    Err(EngineError::Interrupted)
                }
                Err(e) => Err(EngineError::Generate(describe(py, &e, verbose))),
            }
        });
        let recorder = match slot.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        *rec = recorder.map(|(r, _)| r).unwrap_or_default();
        result
    }
}

fn parse_outcome(out: &Bound<'_, PyAny>) -> PyResult<Outcome> {
    let finish: String = out.get_item("finish_reason")?.extract()?;
    Ok(Outcome {
        prompt_tokens: out.get_item("prompt_tokens")?.extract()?,
        token_ids: out.get_item("token_ids")?.extract()?,
        text: out.get_item("text")?.extract()?,
        finish: if finish == "stop" {
            Finish::Eos
        } else {
            Finish::Length
        },
        server: None,
        counters: None,
    })
}

impl Drop for VllmEngine {
    fn drop(&mut self) {
        Python::attach(|py| {
            let _ = self.driver.bind(py).call_method0("close");
        });
    }
}
