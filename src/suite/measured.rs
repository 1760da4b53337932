//! What one benchmark's engine runs came to, whichever way they were run (one engine, a sweep,
//! HTTP servers, or in-process against HTTP).

use super::{EngineRuns, SuiteEnd};
use crate::results::http_comparison::HttpComparison;

/// The runs of every engine, how the suite ended, and the comparison when there was one.
pub struct Measured {
    /// Each engine's (or sweep combination's) runs; for a comparison, in-process then HTTP.
    pub runs: Vec<EngineRuns>,
    /// How the suite ended.
    pub end: SuiteEnd,
    /// An error that stopped the runs after some work was done (a later combination failed to
    /// load, the server died).
    pub fatal: Option<anyhow::Error>,
    /// In-process against HTTP (`--compare-http`), when both sides ran.
    pub comparison: Option<HttpComparison>,
}

impl Measured {
    /// Runs that ended as `end`, with no error and no comparison.
    pub fn runs(runs: Vec<EngineRuns>, end: SuiteEnd) -> Self {
        Self {
            runs,
            end,
            fatal: None,
            comparison: None,
        }
    }
}
