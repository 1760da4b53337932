//! The load flags of `inproc-bench run` (docs/load.md): closed and open loop levels, synthetic
//! lengths, goodput limits; flattened into `RunArgs`.

use clap::Args;

/// Load levels instead of one request at a time.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Closed-loop load: keep N requests in flight (a new one starts when one finishes); a comma
    /// list sweeps levels, one results entry each. What a serving stack costs shows under load,
    /// not at one stream.
    #[arg(
        long,
        value_name = "N[,N…]",
        help_heading = "Load",
        conflicts_with = "request_rate"
    )]
    pub concurrency: Option<String>,
    /// Open-loop load: requests per second arriving on a seeded Poisson schedule whatever the
    /// engine does (`inf`: all at once); a comma list sweeps.
    #[arg(long, value_name = "R[,R…]", help_heading = "Load")]
    pub request_rate: Option<String>,
    /// Gamma shape of the arrival gaps: 1 is Poisson, below 1 burstier, above 1 steadier.
    #[arg(long, default_value_t = 1.0, help_heading = "Load")]
    pub burstiness: f64,
    /// At most this many requests in flight; the rest wait in a queue (their wait is measured).
    /// llama.cpp's context holds this many sequences (default for --request-rate: 4, as
    /// llama-server's slots).
    #[arg(long, value_name = "N", help_heading = "Load")]
    pub max_concurrency: Option<u32>,
    /// Requests per level (default: 4 × the concurrency, at least 8; 32 for a request rate).
    #[arg(
        long,
        value_name = "N",
        help_heading = "Load",
        conflicts_with = "duration"
    )]
    pub requests: Option<u32>,
    /// Seconds per level: no request starts after it, those in flight finish.
    #[arg(long, value_name = "SECS", help_heading = "Load")]
    pub duration: Option<f64>,
    /// Synthetic requests of this many prompt tokens (random token ids, so every engine sees
    /// the same input) instead of the prompt set.
    #[arg(long, value_name = "N", help_heading = "Load")]
    pub input_tokens: Option<u32>,
    /// Tokens to generate per synthetic request (default: --max-tokens, else 128).
    #[arg(long, value_name = "N", help_heading = "Load")]
    pub output_tokens: Option<u32>,
    /// Spread of synthetic lengths: each drawn uniformly in [L·(1−S), L·(1+S)]; 0 is exact.
    #[arg(long, default_value_t = 0.0, value_name = "S", help_heading = "Load")]
    pub length_spread: f64,
    /// The first K prompt tokens are the same in every synthetic request (a system prompt).
    #[arg(long, default_value_t = 0, value_name = "K", help_heading = "Load")]
    pub shared_prefix: u32,
    /// Latency limits for goodput, in ms: `ttft=500,itl=50,e2e=10000` (any of them).
    #[arg(long, value_name = "METRIC=MS[,…]", help_heading = "Load")]
    pub slo: Option<String>,
    /// Seed of the arrival schedule and the synthetic prompts (default: --seed), so a level
    /// replays exactly.
    #[arg(long, value_name = "N", help_heading = "Load")]
    pub load_seed: Option<u64>,
}
