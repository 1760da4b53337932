//! Stand-in for the vLLM engine in builds without the `vllm` feature: same interface, and loading
//! says which feature to build with.

use super::{PythonEnv, VllmSettings};
use crate::engine::{
    Engine, EngineError, EngineInfo, Outcome, PreparedPrompt, PromptMode, Request,
};
use crate::measure::{LoadClock, LoadTime, LoadTimed, Recorder};
use crate::prompts::PromptSpec;

/// The vLLM engine; this build has none, so it cannot be made.
pub enum VllmEngine {}

impl VllmEngine {
    /// Always fails: the binary was built without the `vllm` feature.
    pub fn load(_settings: VllmSettings, _clock: &mut LoadClock) -> Result<Self, EngineError> {
        Err(EngineError::NotCompiled {
            engine: "vllm",
            feature: "vllm",
        })
    }

    /// The Python environment this engine runs in (never reached: no engine exists).
    pub fn python_env(&self) -> &PythonEnv {
        match *self {}
    }

    /// The prompt's token ids (never reached: no engine exists).
    pub fn prompt_token_ids(&self, _text: &str) -> Result<Vec<i64>, EngineError> {
        match *self {}
    }
}

impl LoadTimed for VllmEngine {
    fn loaded_in(&mut self, _: &LoadTime) {
        match *self {}
    }
}

impl Engine for VllmEngine {
    fn info(&self) -> EngineInfo {
        match *self {}
    }

    fn prepare(&mut self, _: &PromptSpec, _: &PromptMode) -> Result<PreparedPrompt, EngineError> {
        match *self {}
    }

    fn generate(&mut self, _: &Request<'_>, _: &mut Recorder) -> Result<Outcome, EngineError> {
        match *self {}
    }
}
