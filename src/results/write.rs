//! Writing results: default file names, an early check that the place is writable, and atomic,
//! never-overwriting writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::schema::ResultsFile;

/// What can go wrong writing results.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The directory cannot be created or written.
    #[error("cannot write results in {dir}: {cause}; choose another --output or fix the directory's permissions")]
    NotWritable {
        /// The directory.
        dir: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file exists and is never overwritten.
    #[error("{0} already exists and is never overwritten: choose another --output or remove it")]
    Exists(PathBuf),
    /// Serialization failed.
    #[error("cannot serialize results: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// `results/benchmark_<scenario>_<YYYYmmdd_HHMMSS>.json`, with `_2`, `_3`, … when taken.
pub fn default_path(dir: &Path, scenario: &str, stamp: &str) -> PathBuf {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = format!("benchmark_{safe}_{stamp}");
    let mut path = dir.join(format!("{base}.json"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{base}_{n}.json"));
        n += 1;
    }
    path
}

/// `path` itself when nothing is there, else the first of `<stem>_2.<ext>`, `<stem>_3.<ext>`, …
/// that is free: where results go when a file appeared at the chosen path during the run.
pub fn unused_sibling(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let dir = dir_of(path);
    let mut candidate = path.to_path_buf();
    let mut n = 2;
    while candidate.exists() {
        candidate = dir.join(format!("{stem}_{n}{ext}"));
        n += 1;
    }
    candidate
}

/// Where results go when `intended` cannot be written at the end of a run: the system's temporary
/// directory, same file name with the process id, never an existing file.
pub fn fallback_path(intended: &Path) -> PathBuf {
    let name = intended
        .file_stem()
        .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
    let dir = std::env::temp_dir();
    let mut path = dir.join(format!("{name}.{}.json", std::process::id()));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{name}.{}_{n}.json", std::process::id()));
        n += 1;
    }
    path
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks, before any run, that `path` can be written: its directory exists (or is created) and
/// takes a file, and the file itself does not exist yet.
pub fn check_writable(path: &Path) -> Result<(), WriteError> {
    let dir = dir_of(path);
    let not_writable = |cause| WriteError::NotWritable {
        dir: dir.clone(),
        cause,
    };
    std::fs::create_dir_all(&dir).map_err(not_writable)?;
    tempfile::Builder::new()
        .prefix(".inproc-bench-probe")
        .tempfile_in(&dir)
        .map_err(not_writable)?;
    if path.exists() {
        return Err(WriteError::Exists(path.to_path_buf()));
    }
    Ok(())
}

/// Writes `results` to `path` atomically (a temporary file in the same directory, synced, then
/// linked into place); fails rather than overwrite an existing file.
pub fn write_atomic(path: &Path, results: &ResultsFile) -> Result<(), WriteError> {
    let mut text = serde_json::to_string_pretty(results)?;
    text.push('\n');
    write_text_atomic(path, &text)
}

/// Writes `text` to `path` atomically, never overwriting.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<(), WriteError> {
    let dir = dir_of(path);
    let not_writable = |cause| WriteError::NotWritable {
        dir: dir.clone(),
        cause,
    };
    std::fs::create_dir_all(&dir).map_err(not_writable)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".inproc-bench-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(not_writable)?;
    // Temporary files are private (0600); a results file is an ordinary one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(not_writable)?;
    }
    tmp.write_all(text.as_bytes()).map_err(not_writable)?;
    tmp.as_file().sync_all().map_err(not_writable)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            WriteError::Exists(path.to_path_buf())
        } else {
            not_writable(e.error)
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let a = default_path(dir.path(), "my run/x", "20260101_000000");
        assert!(a.ends_with("benchmark_my_run_x_20260101_000000.json"));
        std::fs::write(&a, "{}").unwrap();
        let b = default_path(dir.path(), "my run/x", "20260101_000000");
        assert!(b.ends_with("benchmark_my_run_x_20260101_000000_2.json"));
    }

    #[test]
    fn an_unused_sibling_keeps_the_stem_and_extension() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        assert_eq!(unused_sibling(&p), p);
        std::fs::write(&p, "{}").unwrap();
        assert_eq!(unused_sibling(&p), dir.path().join("r_2.json"));
        std::fs::write(dir.path().join("r_2.json"), "{}").unwrap();
        assert_eq!(unused_sibling(&p), dir.path().join("r_3.json"));
    }

    #[test]
    fn atomic_write_refuses_to_overwrite_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write_text_atomic(&p, "one").unwrap();
        let err = write_text_atomic(&p, "two").unwrap_err();
        assert!(matches!(err, WriteError::Exists(_)));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(check_writable(&p).is_err());
        assert!(check_writable(&dir.path().join("sub/new.json")).is_ok());
    }
}
