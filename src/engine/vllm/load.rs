//! vLLM under load (feature `vllm`): the in-process engine of [`VllmEngine`] with every admitted
//! request added to it, and one engine step per runner step; `python/inproc_bench_vllm_load.py`
//! (compiled into the binary) reports each step's new tokens per request.

use std::collections::HashMap;
use std::ffi::CString;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use serde_json::json;

use crate::engine::streams::{BatchEngine, StreamEvent, StreamOutcome, StreamRequest};
use crate::engine::{Engine, EngineError, EngineInfo, Finish, PromptMode, Sampling, VllmEngine};
use crate::prompts::PromptSpec;

const LOAD_SOURCE: &str = include_str!("../../../python/inproc_bench_vllm_load.py");

/// One request's news from a driver step: id, new tokens, finish reason, and (when it finished)
/// its generated token ids.
type StepEvent = (usize, u32, Option<String>, Option<Vec<i64>>);

/// vLLM with many requests in flight.
pub struct VllmLoad {
    engine: VllmEngine,
    load: Py<PyAny>,
    max_seqs: usize,
    max_len: u64,
    vocab: u32,
    prompt_len: HashMap<usize, u64>,
}

fn py_err(wrap: fn(String) -> EngineError) -> impl Fn(PyErr) -> EngineError {
    move |e| wrap(e.to_string())
}

impl VllmLoad {
    /// Wraps a loaded single-stream engine (its load timed by the caller) in the load driver.
    pub fn from_engine(engine: VllmEngine) -> Result<Self, EngineError> {
        let (load, limits) = Python::attach(|py| {
            let source =
                CString::new(LOAD_SOURCE).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            let module = PyModule::from_code(
                py,
                &source,
                c"inproc_bench_vllm_load.py",
                c"inproc_bench_vllm_load",
            )?;
            let load = module
                .getattr("LoadDriver")?
                .call1((engine.driver().bind(py),))?;
            let limits: (usize, u64, u32) = {
                let l = load.call_method0("limits")?;
                (
                    l.get_item("max_num_seqs")?.extract()?,
                    l.get_item("max_model_len")?.extract()?,
                    l.get_item("vocab_size")?.extract()?,
                )
            };
            Ok::<_, PyErr>((load.unbind(), limits))
        })
        .map_err(py_err(EngineError::Load))?;
        Ok(Self {
            engine,
            load,
            max_seqs: limits.0,
            max_len: limits.1,
            vocab: limits.2,
            prompt_len: HashMap::new(),
        })
    }
}

impl BatchEngine for VllmLoad {
    fn info(&self) -> EngineInfo {
        let mut info = self.engine.info();
        info.settings
            .insert("max_num_seqs".into(), json!(self.max_seqs));
        info.settings.insert(
            "batching".into(),
            json!("vLLM's scheduler: every admitted request added to the engine, one step loop"),
        );
        info
    }

    fn max_streams(&self) -> usize {
        self.max_seqs.max(1)
    }

    fn tokens_per_stream(&self) -> u64 {
        self.max_len
    }

    fn vocab_size(&self) -> u32 {
        self.vocab
    }

    fn prompt_tokens(
        &mut self,
        prompt: &PromptSpec,
        mode: &PromptMode,
    ) -> Result<Vec<i64>, EngineError> {
        let prepared = self.engine.prepare(prompt, mode)?;
        Python::attach(|py| {
            self.load
                .bind(py)
                .call_method1("prompt_ids", (prepared.text.as_str(),))?
                .extract::<Vec<i64>>()
        })
        .map_err(py_err(EngineError::Prompt))
    }

    fn admit(&mut self, req: StreamRequest, sampling: &Sampling) -> Result<(), EngineError> {
        let seed = (sampling.temperature > 0.0).then(|| sampling.seed.wrapping_add(req.id as u32));
        self.prompt_len.insert(req.id, req.prompt.len() as u64);
        Python::attach(|py| {
            self.load
                .bind(py)
                .call_method1(
                    "add",
                    (
                        req.id,
                        req.prompt,
                        req.max_tokens,
                        sampling.ignore_eos,
                        sampling.temperature,
                        seed,
                    ),
                )
                .map(|_| ())
        })
        .map_err(py_err(EngineError::Generate))
    }

    fn step(&mut self, sink: &mut dyn FnMut(StreamEvent)) -> Result<(), EngineError> {
        let events: Vec<StepEvent> =
            Python::attach(|py| self.load.bind(py).call_method0("step")?.extract())
                .map_err(py_err(EngineError::Generate))?;
        for (id, n, finish, token_ids) in events {
            if n > 0 {
                sink(StreamEvent::Tokens { id, n });
            }
            let Some(finish) = finish else { continue };
            let prompt_tokens = self.prompt_len.remove(&id).unwrap_or(0);
            if finish == "lost" || finish == "abort" {
                sink(StreamEvent::Failed {
                    id,
                    error: format!("vLLM dropped the request ({finish})"),
                });
                continue;
            }
            sink(StreamEvent::Done {
                id,
                outcome: StreamOutcome {
                    prompt_tokens,
                    token_ids: token_ids.unwrap_or_default(),
                    finish: if finish == "stop" {
                        Finish::Eos
                    } else {
                        Finish::Length
                    },
                },
            });
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.prompt_len.len()
    }

    fn abort_all(&mut self) {
        self.prompt_len.clear();
        Python::attach(|py| {
            let _ = self.load.bind(py).call_method0("abort_all");
        });
    }
}
