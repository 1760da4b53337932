//! The load flags, checked before anything loads: each bad value gets one line naming the fix.

use std::time::Duration;

use crate::measure::load::Slo;

use super::shape::{Bound, Level, LoadShape};
use super::workload::Synthetic;

/// Sequences llama.cpp's context holds for an open loop without `--max-concurrency` (as
/// llama-server's default of 4 slots).
pub const DEFAULT_OPEN_LOOP_STREAMS: u32 = 4;

/// The most sequences one llama.cpp context holds (`LLAMA_MAX_SEQ`).
pub const LLAMA_MAX_SEQ: u32 = 256;

/// The load flags as plain values, filled from the command line by the `run` command (the flags'
/// meanings are documented on `cli::RunArgs`).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--concurrency N[,N…]`.
    pub concurrency: Option<String>,
    /// `--request-rate R[,R…]`.
    pub request_rate: Option<String>,
    /// `--burstiness`.
    pub burstiness: f64,
    /// `--max-concurrency`.
    pub max_concurrency: Option<u32>,
    /// `--requests`.
    pub requests: Option<u32>,
    /// `--duration` in seconds.
    pub duration: Option<f64>,
    /// `--input-tokens`.
    pub input_tokens: Option<u32>,
    /// `--output-tokens`.
    pub output_tokens: Option<u32>,
    /// `--length-spread`.
    pub length_spread: f64,
    /// `--shared-prefix`.
    pub shared_prefix: u32,
    /// `--slo`.
    pub slo: Option<String>,
    /// `--load-seed`.
    pub load_seed: Option<u64>,
    /// `--max-tokens`.
    pub max_tokens: Option<u32>,
    /// `--seed`.
    pub seed: u32,
}

/// A checked load plan.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// The levels, in the order given.
    pub levels: Vec<LoadShape>,
    /// Synthetic lengths; `None` runs the prompt set.
    pub synthetic: Option<Synthetic>,
    /// Goodput limits.
    pub slo: Option<Slo>,
    /// Seed of schedules and synthetic prompts.
    pub seed: u64,
}

/// A load flag's error, naming the flag and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {msg}")]
pub struct LoadFlagError {
    flag: &'static str,
    msg: String,
}

fn err(flag: &'static str, msg: impl Into<String>) -> LoadFlagError {
    LoadFlagError {
        flag,
        msg: msg.into(),
    }
}

/// Whether the flags ask for a load run (a closed or an open loop).
pub fn requested(a: &LoadOptions) -> bool {
    a.concurrency.is_some() || a.request_rate.is_some()
}

fn levels(a: &LoadOptions) -> Result<Vec<Level>, LoadFlagError> {
    if let Some(list) = &a.concurrency {
        return list
            .split(',')
            .map(|x| match x.trim().parse::<i64>() {
                Ok(n) if n >= 1 && n <= i64::from(u32::MAX) => Ok(Level::Concurrency(n as u32)),
                Ok(n) => Err(err(
                    "--concurrency",
                    format!("{n} is not a level: give 1 or more requests in flight, e.g. --concurrency 1,4,8"),
                )),
                Err(_) => Err(err(
                    "--concurrency",
                    format!("'{}' is not a whole number: give e.g. --concurrency 1,4,8", x.trim()),
                )),
            })
            .collect();
    }
    let list = a.request_rate.as_deref().unwrap_or_default();
    list.split(',')
        .map(|x| {
            let x = x.trim();
            let r: f64 = if x == "inf" {
                f64::INFINITY
            } else {
                x.parse().map_err(|_| {
                    err(
                        "--request-rate",
                        format!("'{x}' is not a number: give requests per second, e.g. --request-rate 1,2,4"),
                    )
                })?
            };
            if r > 0.0 && !r.is_nan() {
                Ok(Level::Rate(r))
            } else {
                Err(err(
                    "--request-rate",
                    format!("{x} is not a level: give a rate above 0 requests per second (or inf)"),
                ))
            }
        })
        .collect()
}

impl LoadPlan {
    /// Checks the load flags.
    pub fn from_args(a: &LoadOptions) -> Result<Self, LoadFlagError> {
        let levels = levels(a)?;
        if !(a.burstiness > 0.0 && a.burstiness.is_finite()) {
            return Err(err(
                "--burstiness",
                "must be above 0 (1 is Poisson, below 1 burstier, above 1 steadier)",
            ));
        }
        if a.max_concurrency == Some(0) {
            return Err(err(
                "--max-concurrency",
                "must be at least 1 request in flight",
            ));
        }
        if a.requests == Some(0) {
            return Err(err("--requests", "must be at least 1 request per level"));
        }
        let duration = match a.duration {
            Some(d) if d > 0.0 && d.is_finite() => Some(Duration::from_secs_f64(d)),
            Some(_) => return Err(err("--duration", "must be a positive number of seconds")),
            None => None,
        };
        let synthetic = match (a.input_tokens, a.output_tokens) {
            (None, Some(_)) => {
                return Err(err(
                    "--output-tokens",
                    "sets synthetic request lengths: add --input-tokens N (or use --max-tokens with the prompt set)",
                ))
            }
            (None, None) => None,
            (Some(input), output) => Some(Synthetic {
                input_tokens: input,
                output_tokens: output.or(a.max_tokens).unwrap_or(128),
                spread: a.length_spread,
                shared_prefix: a.shared_prefix,
            }),
        };
        if let Some(s) = &synthetic {
            if s.input_tokens == 0 {
                return Err(err("--input-tokens", "must be at least 1"));
            }
            if s.output_tokens == 0 {
                return Err(err("--output-tokens", "must be at least 1"));
            }
            if !(0.0..1.0).contains(&s.spread) {
                return Err(err(
                    "--length-spread",
                    "must be at least 0 and below 1 (0.25 draws lengths within ±25 %)",
                ));
            }
            if s.shared_prefix >= s.input_range().0 {
                return Err(err(
                    "--shared-prefix",
                    format!(
                        "{} leaves no prompt token of its own in the shortest request ({} tokens): lower it or raise --input-tokens",
                        s.shared_prefix,
                        s.input_range().0
                    ),
                ));
            }
        } else if a.shared_prefix > 0 || a.length_spread != 0.0 {
            return Err(err(
                "--shared-prefix/--length-spread",
                "shape synthetic requests: add --input-tokens N",
            ));
        }
        let slo = a
            .slo
            .as_deref()
            .map(str::parse::<Slo>)
            .transpose()
            .map_err(|e| err("--slo", e))?;
        let seed = a.load_seed.unwrap_or(u64::from(a.seed));
        let levels = levels
            .into_iter()
            .map(|level| LoadShape {
                level,
                burstiness: a.burstiness,
                max_concurrency: a.max_concurrency,
                bound: match (a.requests, duration, level) {
                    (Some(n), _, _) => Bound::Requests(n),
                    (None, Some(d), _) => Bound::Duration(d),
                    (None, None, Level::Concurrency(n)) => Bound::Requests((4 * n).max(8)),
                    (None, None, Level::Rate(_)) => Bound::Requests(32),
                },
                seed,
            })
            .collect();
        Ok(Self {
            levels,
            synthetic,
            slo,
            seed,
        })
    }

    /// Sequences one llama.cpp context must hold for every level.
    pub fn streams(&self) -> u32 {
        self.levels
            .iter()
            .map(|l| l.streams().unwrap_or(DEFAULT_OPEN_LOOP_STREAMS))
            .max()
            .unwrap_or(1)
    }

    /// Checks that `streams` sequences of `need` tokens each fit a context of `ctx_size` tokens
    /// (llama.cpp splits its context evenly between its sequences, as llama-server its slots).
    pub fn check_context(&self, ctx_size: u32, need: Option<u64>) -> Result<(), LoadFlagError> {
        let streams = self.streams();
        let flag = if self
            .levels
            .iter()
            .any(|l| matches!(l.level, Level::Concurrency(_)))
        {
            "--concurrency"
        } else {
            "--max-concurrency"
        };
        if streams > LLAMA_MAX_SEQ {
            return Err(err(
                flag,
                format!("{streams} streams are more than one llama.cpp context holds ({LLAMA_MAX_SEQ}): lower it"),
            ));
        }
        let per = u64::from(ctx_size) / u64::from(streams);
        if let Some(need) = need.filter(|&n| n > per) {
            return Err(err(
                flag,
                format!(
                    "{streams} streams in a context of {ctx_size} tokens leave {per} tokens each, but a request needs up to {need}: raise --ctx-size to at least {} or lower the concurrency or the lengths",
                    need * u64::from(streams)
                ),
            ));
        }
        Ok(())
    }
}
