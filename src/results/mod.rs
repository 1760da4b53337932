//! Results: the versioned file schema, written atomically and read back (ours and the original's).
//! A leaf: it imports nothing of the crate but the measure types it stores.

pub mod gpu;
pub mod http_comparison;
pub mod load;
pub mod load_http;
pub mod phases;
pub mod read;
pub mod roofline;
pub mod schema;
pub mod write;

pub use schema::{EngineResult, PromptResult, ResultsFile, RunRecord, SCHEMA_VERSION};
