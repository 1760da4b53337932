//! `inproc-bench probe`: measures the memory bandwidth a decode rate is held against, and prints
//! it as a table or one JSON object.

use std::process::ExitCode;

use crate::cli::{ProbeArgs, ProbeFormat};
use crate::roofline::annotate::CPU_SPEC_REASON;
use crate::roofline::probe::{self, ProbeOptions};
use crate::roofline::probe_report::{render, ProbeReport};

/// The probe's options from the flags.
pub fn options(args: &ProbeArgs) -> anyhow::Result<ProbeOptions> {
    let threads = args
        .threads
        .unwrap_or_else(|| crate::plan::default_threads() as usize);
    if threads == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    let buffer_bytes = match args.size_mib {
        Some(0) => anyhow::bail!("--size-mib must be at least 1"),
        Some(m) => m
            .checked_mul(1 << 20)
            .ok_or_else(|| anyhow::anyhow!("--size-mib {m} is too large"))?,
        None => probe::default_buffer_bytes(probe::last_level_cache(), probe::available_memory()),
    };
    if let Some(avail) = probe::available_memory() {
        if buffer_bytes > avail / 2 {
            anyhow::bail!(
                "a {} MiB buffer is more than half the free memory ({} MiB): pass a smaller --size-mib",
                buffer_bytes >> 20,
                avail >> 20
            );
        }
    }
    let min_time = std::time::Duration::from_millis(args.min_time_ms);
    if min_time > probe::MAX_MIN_TIME {
        anyhow::bail!(
            "--min-time-ms {} is longer than the probe reads: pass at most {}",
            args.min_time_ms,
            probe::MAX_MIN_TIME.as_millis()
        );
    }
    Ok(ProbeOptions {
        threads,
        buffer_bytes,
        reps: args.reps,
        min_time,
    })
}

/// Runs `inproc-bench probe`.
pub fn run_probe(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let opts = options(args)?;
    let cpu = probe::run(opts)?;
    let report = ProbeReport {
        cpu,
        cpu_spec_reason: CPU_SPEC_REASON,
        gpu: crate::telemetry::gpu_peak::peak(0, true),
        tool: crate::telemetry::system::tool_info(),
        system: crate::telemetry::system::system_info(),
    };
    let text = match args.format {
        ProbeFormat::Table => render(&report),
        ProbeFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(ExitCode::SUCCESS)
}
