//! Reading results files back: ours (any schema version up to this build's) and the original
//! benchmark's (no `schema_version`, read as 0), with errors that name the file and the fault.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::schema::{ResultsFile, SCHEMA_VERSION};

/// Why a results file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path} is not valid JSON ({source}): is it a results file, and complete?")]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why parsing stopped.
        source: serde_json::Error,
    },
    /// The file was written by a newer version of the tool.
    #[error("{path} has schema_version {found}, newer than this build reads ({supported}): update inproc-bench")]
    Newer {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The JSON is not a results file.
    #[error("{path} is not an inproc-bench results file: {msg}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        msg: String,
    },
}

/// Reads and checks one results file.
pub fn read(path: &Path) -> Result<ResultsFile, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses the text of a results file; `path` is only used in errors.
pub fn parse(path: &Path, text: &str) -> Result<ResultsFile, ReadError> {
    let value: Value = serde_json::from_str(text).map_err(|source| ReadError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let shape = |msg: String| ReadError::Shape {
        path: path.to_path_buf(),
        msg,
    };
    let obj = value
        .as_object()
        .ok_or_else(|| shape("the top level is not an object".into()))?;
    // The version is checked before the shape: a newer file may legitimately not fit these types.
    match obj.get("schema_version") {
        None => {}
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= u64::from(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(ReadError::Newer {
                    path: path.to_path_buf(),
                    found: v,
                    supported: SCHEMA_VERSION,
                })
            }
            None => return Err(shape(format!("schema_version {n} is not a version number"))),
        },
        Some(other) => {
            return Err(shape(format!(
                "schema_version {other} is not a version number"
            )))
        }
    }
    if !obj.get("results").is_some_and(Value::is_object) {
        return Err(shape("no \"results\" object".into()));
    }
    // Parsed again from the text, not from `value`: `Value` objects do not keep key order, and
    // the order of engines and prompts is the order they ran.
    let file: ResultsFile = serde_json::from_str(text).map_err(|e| shape(e.to_string()))?;
    if file.results.is_empty() {
        return Err(shape("\"results\" holds no engine".into()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("x.json"), text).unwrap_err().to_string()
    }

    #[test]
    fn refuses_what_it_cannot_read_and_names_the_file() {
        assert!(err("{").starts_with("x.json is not valid JSON"));
        assert!(err("[]").contains("top level is not an object"));
        assert!(
            err(r#"{"schema_version": 99, "results": {}}"#).contains("schema_version 99, newer")
        );
        assert!(err(r#"{"schema_version": "1", "results": {}}"#).contains("not a version number"));
        assert!(err(r#"{"timestamp": "t", "scenario": "s"}"#).contains("no \"results\" object"));
        let e = err(
            r#"{"timestamp": "t", "scenario": "s", "config": {"warmup_runs": 1, "measurement_runs": 1}, "results": {}}"#,
        );
        assert!(e.contains("holds no engine"), "{e}");
        let e = err(r#"{"timestamp": "t", "scenario": "s", "config": {}, "results": {"a": {}}}"#);
        assert!(
            e.starts_with("x.json is not an inproc-bench results file: missing field"),
            "{e}"
        );
    }

    #[test]
    fn reads_the_seed_files_as_version_0() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let f = read(&dir.join("benchmark_qwen3-8b-gpu_20260109_033509.json")).unwrap();
        assert_eq!(f.schema_version, 0);
        assert_eq!(f.results["vllm"].prompts["short"].successful_runs, 20);
        assert!(f.results["vllm"].prompts["short"].runs.is_empty());
        let order: Vec<&str> = f.results["vllm"]
            .prompts
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(order, ["short", "medium", "long"]);
    }
}
