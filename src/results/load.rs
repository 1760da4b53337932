//! The load results: a results file of the usual shape (how it was made: tool, system, config)
//! with an added `load` section of one entry per level, keyed like sweep combinations
//! (`llamacpp@concurrency=8`), each with its summary (the stats shape of single-stream results)
//! and every request's raw figures. Single-stream files have no `load` key and read as before.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::read::ReadError;
use super::schema::ResultsFile;
use crate::measure::load::{LevelSummary, RequestSample, Slo};

/// A results file of a load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadFile {
    /// How the file was made (its `results` map is empty: the levels are under `load`).
    #[serde(flatten)]
    pub base: ResultsFile,
    /// The levels.
    pub load: LoadSection,
}

/// The load settings and the levels measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadSection {
    /// What the requests were (synthetic lengths or the prompt set).
    pub workload: String,
    /// Seed of the arrival schedules and the synthetic prompts.
    pub seed: u64,
    /// Gamma shape of the open loop's arrival gaps.
    pub burstiness: f64,
    /// `--max-concurrency`.
    pub max_concurrency: Option<u32>,
    /// Goodput limits.
    pub slo: Option<Slo>,
    /// Unmeasured requests run before the first level.
    pub warmup_requests: u32,
    /// One entry per engine and level, in the order run.
    pub levels: IndexMap<String, LevelResult>,
    /// Open-loop levels not run because a lower rate was already saturated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// `--compare-http`: each level in-process against over HTTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_comparison: Vec<super::load_http::LevelComparison>,
}

/// One level on one engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelResult {
    /// Engine key (`llamacpp`, `vllm`, `mock`).
    pub engine: String,
    /// Engine name and version.
    pub version: String,
    /// The model.
    pub model: String,
    /// Every engine setting, as used (the streams included).
    pub settings: Map<String, Value>,
    /// Model load time.
    pub load_ms: f64,
    /// The level: `concurrency=8` or `request_rate=2`.
    pub level: String,
    /// Closed loop's N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Open loop's rate (null for `inf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<f64>,
    /// What bounded the level: `requests=N` or `duration=S`.
    pub bound: String,
    /// False when Ctrl-C or an engine error cut the level short.
    pub complete: bool,
    /// Why the level is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// The level's figures.
    pub summary: LevelSummary,
    /// Every request's raw figures.
    pub requests: Vec<RequestSample>,
    /// Over HTTP: the client's lag and the server's own timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<super::load_http::HttpLevel>,
}

/// Reads the `load` section of a results file; `None` for a single-stream file. The text is
/// parsed straight into the types, so that the levels keep their order.
pub fn read(path: &Path) -> Result<Option<LoadFile>, ReadError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        load: Option<serde::de::IgnoredAny>,
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let json = |source| ReadError::Json {
        path: path.to_path_buf(),
        source,
    };
    // Anything else (not JSON, not an object) is left to the usual reader and its messages.
    match serde_json::from_str::<Probe>(&text) {
        Ok(Probe { load: Some(_) }) => {}
        _ => return Ok(None),
    }
    serde_json::from_str(&text).map(Some).map_err(json)
}
