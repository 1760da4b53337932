//! Results: the versioned file schema, building it from measured runs, and writing it atomically.

pub mod build;
pub mod gpu;
pub mod http_comparison;
pub mod load;
pub mod read;
pub mod roofline;
pub mod schema;
pub mod write;

pub use schema::{EngineResult, PromptResult, ResultsFile, RunRecord, SCHEMA_VERSION};
