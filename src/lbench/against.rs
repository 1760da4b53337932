//! `--against llama-bench`: finds the llama-bench built from the same llama.cpp source, runs it
//! for one repetition of a test with the same settings, reads its JSON, and turns the paired
//! repetitions into a ratio per test (in-process t/s ÷ llama-bench t/s).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use super::Record;
use crate::engine::llamacpp::bench_tests::TestParams;
use crate::engine::llamacpp::FlashAttn;
use crate::measure::significance::t_quantile;
use crate::measure::stats::percentile_sorted;

/// Where the project's scripts put llama-bench (built from the same source as the in-process
/// engine).
pub const VENDOR_LLAMA_BENCH: &str = "vendor/llama.cpp-b11434/bin/llama-bench";

/// Why llama-bench could not be run or read.
#[derive(Debug, thiserror::Error)]
pub enum AgainstError {
    #[error(
        "llama-bench not found (looked for {0}): run scripts/setup.sh, or pass --llama-bench PATH"
    )]
    Missing(String),
    #[error("llama-bench could not start ({0}): check that {1} is executable")]
    Start(std::io::Error, String),
    #[error("llama-bench failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("llama-bench printed no result this tool can read ({0}): is {1} a llama-bench of build b11434?")]
    Parse(String, String),
}

/// Finds llama-bench: the path given, else [`VENDOR_LLAMA_BENCH`] under the working directory,
/// the directories above the executable, and the source checkout.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, AgainstError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(AgainstError::Missing(p.display().to_string()))
        };
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let candidates: Vec<PathBuf> = roots.iter().map(|r| r.join(VENDOR_LLAMA_BENCH)).collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            AgainstError::Missing(candidates.first().map_or_else(
                || VENDOR_LLAMA_BENCH.to_string(),
                |p| p.display().to_string(),
            ))
        })
}

/// llama-bench's flags for one repetition of the test `p`.
pub fn args(model: &Path, ngl: i32, p: &TestParams, warmup: bool) -> Vec<String> {
    let fa = match p.flash_attn {
        FlashAttn::Auto => "auto",
        FlashAttn::On => "on",
        FlashAttn::Off => "off",
    };
    let mut a: Vec<String> = [
        "-m".to_string(),
        model.display().to_string(),
        "-p".into(),
        p.n_prompt.to_string(),
        "-n".into(),
        p.n_gen.to_string(),
        "-d".into(),
        p.n_depth.to_string(),
        "-b".into(),
        p.n_batch.to_string(),
        "-ub".into(),
        p.n_ubatch.to_string(),
        "-t".into(),
        p.threads.to_string(),
        "-ctk".into(),
        p.type_k.0.into(),
        "-ctv".into(),
        p.type_v.0.into(),
        "-ngl".into(),
        ngl.to_string(),
        "-fa".into(),
        fa.into(),
        "-r".into(),
        "1".into(),
        "-o".into(),
        "json".into(),
    ]
    .into();
    if !warmup {
        a.push("--no-warmup".into());
    }
    a
}

/// Runs llama-bench once with `args` and returns its one record of the test (llama-bench prints
/// a pp and a tg record when both -p and -n are non-zero; the caller's test has one of them zero
/// or asks for `pg`, which it runs as -pg).
pub fn run_once(binary: &Path, args: &[String], p: &TestParams) -> Result<Record, AgainstError> {
    let mut a = args.to_vec();
    if p.n_prompt > 0 && p.n_gen > 0 {
        // pp+tg as one test: llama-bench's -pg, with -p/-n set to nothing else.
        let i = a.iter().position(|x| x == "-p").unwrap_or(0);
        a.splice(i..i + 4, ["-p".into(), "0".into(), "-n".into(), "0".into()]);
        a.extend(["-pg".into(), format!("{},{}", p.n_prompt, p.n_gen)]);
    }
    let out = Command::new(binary)
        .args(&a)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| AgainstError::Start(e, binary.display().to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        return Err(AgainstError::Failed {
            status: out.status.to_string(),
            stderr: last.to_string(),
        });
    }
    let bin = binary.display().to_string();
    let mut recs: Vec<Record> = serde_json::from_slice(&out.stdout)
        .map_err(|e| AgainstError::Parse(e.to_string(), bin.clone()))?;
    recs.retain(|r| r.n_prompt == p.n_prompt && r.n_gen == p.n_gen && r.n_depth == p.n_depth);
    let mut r = recs
        .pop()
        .ok_or_else(|| AgainstError::Parse("no record of the test".into(), bin))?;
    r.runner = "llama-bench".into();
    Ok(r)
}

/// The ratio of one test: in-process t/s ÷ llama-bench t/s over the paired repetitions.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ratio {
    /// Always `ratio`, to tell these lines from the test records in JSON/JSONL.
    pub record: &'static str,
    pub test: String,
    pub pairs: usize,
    pub inproc_median_ts: f64,
    pub llama_bench_median_ts: f64,
    /// Median of the per-pair ratios.
    pub ratio_median: f64,
    /// Geometric mean of the per-pair ratios.
    pub ratio_geomean: f64,
    /// 95 % t interval of the geometric mean (pairs ran back to back, ABBA); none with one pair.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

fn median(x: &[f64]) -> f64 {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    percentile_sorted(&s, 0.5)
}

/// The ratio of the paired samples (tokens per second of each repetition).
pub fn ratio(test: String, inproc_ts: &[f64], llama_bench_ts: &[f64]) -> Ratio {
    let pairs: Vec<f64> = inproc_ts
        .iter()
        .zip(llama_bench_ts)
        .map(|(a, b)| a / b)
        .collect();
    let logs: Vec<f64> = pairs.iter().map(|r| r.ln()).collect();
    let n = logs.len();
    let m = logs.iter().sum::<f64>() / n.max(1) as f64;
    let (ci_low, ci_high) = if n >= 2 {
        let sd = (logs.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let h = t_quantile(0.975, (n - 1) as f64) * sd / (n as f64).sqrt();
        (Some((m - h).exp()), Some((m + h).exp()))
    } else {
        (None, None)
    };
    Ratio {
        record: "ratio",
        test,
        pairs: n,
        inproc_median_ts: median(inproc_ts),
        llama_bench_median_ts: median(llama_bench_ts),
        ratio_median: median(&pairs),
        ratio_geomean: m.exp(),
        ci_low,
        ci_high,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_pairs_repetitions() {
        let r = ratio("tg8".into(), &[10.0, 20.0, 30.0], &[10.0, 10.0, 30.0]);
        assert_eq!(r.pairs, 3);
        assert_eq!(r.ratio_median, 1.0);
        assert_eq!(r.inproc_median_ts, 20.0);
        assert!(r.ci_low.unwrap() < 1.0 && r.ci_high.unwrap() > 1.26);
        assert!(ratio("x".into(), &[1.0], &[2.0]).ci_low.is_none());
    }
}
