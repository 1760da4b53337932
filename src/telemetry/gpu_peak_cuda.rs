//! A CUDA device's memory bandwidth: specified, from NVML (maximum memory clock × bus width × 2
//! transfers per clock), and measured, as a device-to-device copy of a large buffer (each byte
//! read once and written once, so the copy moves twice its size). Same public API as
//! `gpu_peak_none.rs`; never panics where the driver is missing.

use std::time::Instant;

use nvml_wrapper::enum_wrappers::device::Clock;

use super::gpu::{cu_err, guarded, nvml_device, open};
use crate::results::roofline::DevicePeak;

/// The copy's buffer: at most this large…
const COPY_MAX_BYTES: usize = 1 << 30;
/// …and at most this share of the free device memory (two buffers are needed).
const COPY_FREE_SHARE: usize = 8;
/// Timed copies; the best is the figure.
const COPY_REPS: usize = 10;

/// The specified and (when `measure`: a timed copy, under a second) measured memory bandwidth of
/// CUDA device `device_index`; a figure that cannot be had is `None` with its reason.
pub fn peak(device_index: usize, measure: bool) -> DevicePeak {
    let mut out = DevicePeak::default();
    let ctx = match guarded(|| open(device_index)) {
        Ok((ctx, _)) => ctx,
        Err(e) => {
            out.measured_reason = Some(e.clone());
            out.spec_reason = Some(e);
            return out;
        }
    };
    match guarded(|| spec(&ctx)) {
        Ok((gbps, source)) => {
            out.spec_gbps = Some(gbps);
            out.spec_source = Some(source);
        }
        Err(e) => out.spec_reason = Some(e),
    }
    if !measure {
        out.measured_reason = Some("not measured (--roofline-probe false)".into());
        return out;
    }
    match guarded(|| copy(&ctx)) {
        Ok((gbps, source)) => {
            out.measured_gbps = Some(gbps);
            out.measured_source = Some(source);
        }
        Err(e) => out.measured_reason = Some(e),
    }
    out
}

fn spec(ctx: &cudarc::driver::CudaContext) -> Result<(f64, String), String> {
    let device = nvml_device(ctx)?;
    let clock_mhz = device
        .max_clock_info(Clock::Memory)
        .map_err(|e| format!("NVML memory clock: {e}"))?;
    let bus_bits = device
        .memory_bus_width()
        .map_err(|e| format!("NVML memory bus width: {e}"))?;
    let gbps = f64::from(clock_mhz) * 1e6 * f64::from(bus_bits) / 8.0 * 2.0 / 1e9;
    Ok((
        gbps,
        format!("NVML: memory clock {clock_mhz} MHz × {bus_bits}-bit bus × 2"),
    ))
}

fn copy(ctx: &std::sync::Arc<cudarc::driver::CudaContext>) -> Result<(f64, String), String> {
    let (free, _) = ctx.mem_get_info().map_err(|e| cu_err(&e))?;
    let bytes = (free / COPY_FREE_SHARE).min(COPY_MAX_BYTES) & !0xfff;
    if bytes < 1 << 20 {
        return Err(format!("only {free} bytes of device memory free"));
    }
    let stream = ctx.default_stream();
    let src = stream.alloc_zeros::<u8>(bytes).map_err(|e| cu_err(&e))?;
    let mut dst = stream.alloc_zeros::<u8>(bytes).map_err(|e| cu_err(&e))?;
    let mut best = f64::INFINITY;
    // One untimed copy first: it pages in and warms up the copy engine.
    for rep in 0..=COPY_REPS {
        let t0 = Instant::now();
        stream.memcpy_dtod(&src, &mut dst).map_err(|e| cu_err(&e))?;
        stream.synchronize().map_err(|e| cu_err(&e))?;
        if rep > 0 {
            best = best.min(t0.elapsed().as_secs_f64());
        }
    }
    let gbps = 2.0 * bytes as f64 / best / 1e9;
    Ok((
        gbps,
        format!(
            "device-to-device copy of {} MiB (read + write), best of {COPY_REPS}",
            bytes >> 20
        ),
    ))
}
