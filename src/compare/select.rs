//! Which engine entries of which files are compared: `--backend1/--backend2` (as the original
//! `compare_results.py`) or `--backend` pick keys; without a pick every entry of a file is taken.

use std::path::{Path, PathBuf};

use crate::results::{EngineResult, ResultsFile};

/// The keys asked for.
#[derive(Debug, Clone, Default)]
pub struct Picks {
    /// Key in the first file (with one file: the first entry of it).
    pub backend1: Option<String>,
    /// Key in the second file (with one file: the second entry of it).
    pub backend2: Option<String>,
    /// Key in every file without its own pick.
    pub backend: Option<String>,
}

/// One compared entry.
#[derive(Debug, Clone)]
pub struct Side<'a> {
    /// 1-based position; the first is the baseline.
    pub index: usize,
    /// The file it came from.
    pub path: &'a Path,
    /// The file.
    pub file: &'a ResultsFile,
    /// Its key in `results`.
    pub key: String,
    /// The result.
    pub result: &'a EngineResult,
}

impl Side<'_> {
    /// `[2]`.
    pub fn tag(&self) -> String {
        format!("[{}]", self.index)
    }

    /// The file's name without its directory.
    pub fn file_name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// Why the entries cannot be chosen.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// A pick names no entry of the file.
    #[error("{path} has no engine '{pick}'; it holds: {keys}")]
    NoSuchKey {
        /// The file.
        path: PathBuf,
        /// The pick.
        pick: String,
        /// The keys it has.
        keys: String,
    },
    /// Fewer than two entries.
    #[error("nothing to compare: {0}")]
    TooFew(String),
}

/// The keys of `file` that `pick` names: the key itself, or every key of that engine
/// (`llamacpp` picks `llamacpp@threads=1` and `llamacpp@threads=2`); all keys without a pick.
fn matching(
    path: &Path,
    file: &ResultsFile,
    pick: Option<&str>,
) -> Result<Vec<String>, SelectError> {
    let keys: Vec<&String> = file.results.keys().collect();
    let Some(pick) = pick else {
        return Ok(keys.into_iter().cloned().collect());
    };
    if file.results.contains_key(pick) {
        return Ok(vec![pick.to_string()]);
    }
    let by_engine: Vec<String> = keys
        .iter()
        .filter(|k| k.split_once('@').is_some_and(|(engine, _)| engine == pick))
        .map(|k| k.to_string())
        .collect();
    if by_engine.is_empty() {
        return Err(SelectError::NoSuchKey {
            path: path.to_path_buf(),
            pick: pick.to_string(),
            keys: keys
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(by_engine)
}

/// Chooses the compared entries, baseline first.
pub fn select<'a>(
    files: &'a [(PathBuf, ResultsFile)],
    picks: &Picks,
) -> Result<Vec<Side<'a>>, SelectError> {
    let mut chosen: Vec<(usize, String)> = Vec::new();
    if let [(path, file)] = files {
        let explicit: Vec<&str> = [&picks.backend1, &picks.backend2]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if explicit.is_empty() {
            chosen.extend(
                matching(path, file, picks.backend.as_deref())?
                    .into_iter()
                    .map(|k| (0, k)),
            );
        } else {
            for pick in explicit {
                chosen.extend(
                    matching(path, file, Some(pick))?
                        .into_iter()
                        .map(|k| (0, k)),
                );
            }
        }
    } else {
        for (i, (path, file)) in files.iter().enumerate() {
            let own = match i {
                0 => picks.backend1.as_deref(),
                1 => picks.backend2.as_deref(),
                _ => None,
            };
            let pick = own.or(picks.backend.as_deref());
            chosen.extend(matching(path, file, pick)?.into_iter().map(|k| (i, k)));
        }
    }
    if chosen.len() < 2 {
        let what = match files {
            [(path, _)] => format!(
                "{} holds one entry here; pass a second file",
                path.display()
            ),
            _ => "fewer than two entries".into(),
        };
        return Err(SelectError::TooFew(what));
    }
    Ok(chosen
        .into_iter()
        .enumerate()
        .filter_map(|(n, (i, key))| {
            let (path, file) = &files[i];
            file.results.get(&key).map(|result| Side {
                index: n + 1,
                path,
                file,
                key,
                result,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures(names: &[&str]) -> Vec<(PathBuf, ResultsFile)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        names
            .iter()
            .map(|n| {
                let p = dir.join(n);
                let f = crate::results::read::read(&p).expect("fixture reads");
                (p, f)
            })
            .collect()
    }

    fn keys(sides: &[Side<'_>]) -> Vec<String> {
        sides
            .iter()
            .map(|s| format!("{}{}", s.tag(), s.key))
            .collect()
    }

    #[test]
    fn picks_by_key_by_engine_or_everything() {
        let sweep = fixtures(&["smollm2_ngl_threads_sweep.json"]);
        let all = select(&sweep, &Picks::default()).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].key, "llamacpp@n_gpu_layers=0,threads=1");
        let by_engine = Picks {
            backend: Some("llamacpp".into()),
            ..Picks::default()
        };
        assert_eq!(select(&sweep, &by_engine).unwrap().len(), 6);
        let two = Picks {
            backend1: Some("llamacpp@n_gpu_layers=-1,threads=2".into()),
            backend2: Some("llamacpp@n_gpu_layers=0,threads=2".into()),
            backend: None,
        };
        assert_eq!(
            keys(&select(&sweep, &two).unwrap()),
            [
                "[1]llamacpp@n_gpu_layers=-1,threads=2",
                "[2]llamacpp@n_gpu_layers=0,threads=2"
            ]
        );
        let seed = fixtures(&[
            "benchmark_qwen3-8b-gpu_20260109_035757.json",
            "smollm2_ngl_threads_sweep.json",
            "benchmark_qwen3-8b-gpu_20260109_033509.json",
        ]);
        // --backend applies to the files without their own pick.
        let picks = Picks {
            backend2: Some("llamacpp@n_gpu_layers=10,threads=1".into()),
            backend: Some("vllm".into()),
            ..Picks::default()
        };
        let err = select(&seed, &picks).unwrap_err().to_string();
        assert!(
            err.ends_with("has no engine 'vllm'; it holds: llamacpp"),
            "{err}"
        );
        let picks = Picks {
            backend2: Some("llamacpp@n_gpu_layers=10,threads=1".into()),
            ..Picks::default()
        };
        assert_eq!(
            keys(&select(&seed, &picks).unwrap()),
            [
                "[1]llamacpp",
                "[2]llamacpp@n_gpu_layers=10,threads=1",
                "[3]vllm"
            ]
        );
        let one = fixtures(&["benchmark_qwen3-8b-gpu_20260109_033509.json"]);
        let err = select(&one, &Picks::default()).unwrap_err().to_string();
        assert!(err.starts_with("nothing to compare"), "{err}");
    }
}
