//! The commands: the only layer below the command line that knows its flags. Each maps its
//! flags onto the domain types and calls the modules below (plan, suite, report, compare).

pub mod compare;
pub mod compare_load;
pub mod llama_bench;
pub mod load;
pub mod load_compare;
pub mod load_http;
pub mod measure;
pub mod output;
pub mod probe;
pub mod report;
pub mod run;
