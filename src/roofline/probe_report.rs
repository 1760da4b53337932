//! What `inproc-bench probe` prints: the measured and specified memory bandwidth, as a table or
//! one JSON object.

use std::fmt::Write;

use serde::Serialize;

use super::probe::ProbeResult;
use crate::results::roofline::DevicePeak;
use crate::results::schema::{SystemInfo, ToolInfo};

/// What `probe --format json` prints.
#[derive(Debug, Serialize)]
pub struct ProbeReport {
    /// The CPU read kernel's figures.
    pub cpu: ProbeResult,
    /// Why the CPU has no specified peak.
    pub cpu_spec_reason: &'static str,
    /// The GPU's specified and measured peaks (null figures with reasons where there is none).
    pub gpu: DevicePeak,
    /// The program that measured.
    pub tool: ToolInfo,
    /// The machine.
    pub system: SystemInfo,
}

/// The table `probe` prints.
pub fn render(r: &ProbeReport) -> String {
    let c = &r.cpu;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "MEMORY BANDWIDTH · {} · GB/s = 10^9 bytes/s",
        r.system.cpu_model
    );
    let llc = c
        .llc_bytes
        .map_or_else(|| "unknown".into(), |b| format!("{} MiB", b >> 20));
    let _ = writeln!(
        out,
        "CPU read kernel: {} thread(s), {} MiB buffer (last-level cache {llc}), {} repetitions, {:.0} ms read, {:.0} ms in all",
        c.threads,
        c.buffer_bytes >> 20,
        c.reps,
        c.timed_ms,
        c.elapsed_ms
    );
    let _ = writeln!(out, "  {:<9} {:>10}", "", "GB/s");
    for (name, v) in [
        ("best", c.best_gbps),
        ("median", c.median_gbps),
        ("worst", c.min_gbps),
    ] {
        let _ = writeln!(out, "  {name:<9} {v:>10.2}");
    }
    let _ = writeln!(
        out,
        "  {:<9} {:>10.2}  (all bytes over all read time)",
        "sustained", c.sustained_gbps
    );
    let _ = writeln!(out, "  spec      {:>10}  ({})", "-", r.cpu_spec_reason);
    let g = &r.gpu;
    match (g.spec_gbps, g.measured_gbps) {
        (None, None) => {
            let why = g.spec_reason.as_deref().unwrap_or("no figure");
            let _ = writeln!(out, "GPU 0: {why}");
        }
        (spec, measured) => {
            let _ = writeln!(out, "GPU 0:");
            let line = |v: Option<f64>, src: &Option<String>, why: &Option<String>| match v {
                Some(v) => format!("{v:>10.1}  ({})", src.as_deref().unwrap_or("")),
                None => format!("{:>10}  ({})", "-", why.as_deref().unwrap_or("")),
            };
            let _ = writeln!(
                out,
                "  measured  {}",
                line(measured, &g.measured_source, &g.measured_reason)
            );
            let _ = writeln!(
                out,
                "  spec      {}",
                line(spec, &g.spec_source, &g.spec_reason)
            );
        }
    }
    out
}
