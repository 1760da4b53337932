//! Prompt sets: the seed's three prompts (kept word for word in `data/prompts.json`) and user files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The seed's prompt set, embedded at build time.
const BUILTIN_JSON: &str = include_str!("../data/prompts.json");

/// One named prompt and how many tokens to generate for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptSpec {
    /// Short name used as the results key (`short`, `medium`, `long`, or the user's).
    pub name: String,
    /// The user message, sent as is.
    pub prompt: String,
    /// Tokens to generate.
    pub max_tokens: u32,
    /// Free text about the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What can go wrong reading or choosing prompts.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The prompt file could not be read.
    #[error("cannot read prompt file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The prompt file is not a JSON array or JSON lines of prompts.
    #[error("{path}: {msg}; a prompt file is a JSON array (or JSON lines) of {{\"name\", \"prompt\", \"max_tokens\"}}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        msg: String,
    },
    /// A prompt name that the set does not have.
    #[error("unknown prompt '{name}': choose one of {available} or all (--prompt)")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names the set has.
        available: String,
    },
    /// A prompt asks for no tokens, or two prompts share a name.
    #[error("{0}")]
    Invalid(String),
}

/// The seed's three prompts (short, medium, long with 100, 300 and 500 tokens).
pub fn builtin() -> Vec<PromptSpec> {
    serde_json::from_str(BUILTIN_JSON).unwrap_or_default()
}

/// Reads a user's prompt set: a JSON array of prompts, or one JSON prompt per line.
pub fn load_file(path: &Path) -> Result<Vec<PromptSpec>, PromptError> {
    let text = std::fs::read_to_string(path).map_err(|cause| PromptError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let parse_err = |msg: String| PromptError::Parse {
        path: path.to_path_buf(),
        msg,
    };
    let set: Vec<PromptSpec> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).map_err(|e| parse_err(e.to_string()))?
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| parse_err(format!("line {}: {e}", i + 1)))
            })
            .collect::<Result<_, _>>()?
    };
    validate(&set).map_err(|e| parse_err(e.to_string()))?;
    Ok(set)
}

fn validate(set: &[PromptSpec]) -> Result<(), PromptError> {
    if set.is_empty() {
        return Err(PromptError::Invalid("the prompt set is empty".into()));
    }
    for (i, p) in set.iter().enumerate() {
        if p.max_tokens == 0 {
            return Err(PromptError::Invalid(format!(
                "prompt '{}' has max_tokens 0",
                p.name
            )));
        }
        if set[..i].iter().any(|q| q.name == p.name) {
            return Err(PromptError::Invalid(format!(
                "prompt name '{}' appears twice",
                p.name
            )));
        }
    }
    Ok(())
}

/// Picks prompts by name: `all`, one name, or a comma-separated list, in the order asked for.
pub fn select(set: Vec<PromptSpec>, which: &str) -> Result<Vec<PromptSpec>, PromptError> {
    if which.trim() == "all" {
        return Ok(set);
    }
    which
        .split(',')
        .map(str::trim)
        .map(|name| {
            set.iter()
                .find(|p| p.name == name)
                .cloned()
                .ok_or_else(|| PromptError::Unknown {
                    name: name.to_string(),
                    available: set
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_the_seed_set() {
        let set = builtin();
        let names: Vec<_> = set
            .iter()
            .map(|p| (p.name.as_str(), p.max_tokens))
            .collect();
        assert_eq!(names, [("short", 100), ("medium", 300), ("long", 500)]);
        assert_eq!(set[0].prompt, "Explain quantum computing in simple terms.");
    }

    #[test]
    fn select_by_name_list_and_unknown() {
        let picked = select(builtin(), "long,short").unwrap();
        assert_eq!(picked[0].name, "long");
        assert_eq!(picked[1].name, "short");
        let err = select(builtin(), "tiny").unwrap_err().to_string();
        assert!(err.contains("unknown prompt 'tiny'") && err.contains("short, medium, long"));
    }

    #[test]
    fn files_in_json_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("p.json");
        std::fs::write(&json, r#"[{"name":"a","prompt":"hi","max_tokens":4}]"#).unwrap();
        assert_eq!(load_file(&json).unwrap()[0].max_tokens, 4);
        let jsonl = dir.path().join("p.jsonl");
        std::fs::write(
            &jsonl,
            "{\"name\":\"a\",\"prompt\":\"x\",\"max_tokens\":1}\n\n{\"name\":\"b\",\"prompt\":\"y\",\"max_tokens\":2}\n",
        )
        .unwrap();
        assert_eq!(load_file(&jsonl).unwrap().len(), 2);
        std::fs::write(&jsonl, "{\"name\":\"a\"}\n").unwrap();
        assert!(load_file(&jsonl)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
        std::fs::write(&json, r#"[{"name":"a","prompt":"x","max_tokens":0}]"#).unwrap();
        assert!(load_file(&json)
            .unwrap_err()
            .to_string()
            .contains("max_tokens 0"));
    }
}
