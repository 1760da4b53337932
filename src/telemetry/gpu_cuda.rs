//! GPU telemetry through the CUDA driver API (cudarc; `libcuda` is loaded at run time) and NVML
//! (`libnvidia-ml`, also loaded at run time, for power and energy).
//!
//! Nothing here panics or fails where the driver is missing: the binary starts on a machine
//! without an NVIDIA driver, lists no device, and writes every GPU figure as `null` with the reason
//! in `note`. Same public API as `gpu_none.rs`.
//!
//! Memory is device-wide (`total - free` from `cuMemGetInfo`, in the device's primary context,
//! the one llama.cpp's CUDA backend also uses, so the watch adds no context of its own). During the
//! runs (from the first warm-up run to the last measured run) a side thread samples it, and NVML
//! board power, about every 20 ms, so the token path only pays for the thread's wake-ups
//! (`scripts/bench-observer-cost.sh` measures that cost on ITL p99).

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cudarc::driver::sys::{CUdevice_attribute, CUresult};
use cudarc::driver::{result as cu, sys, CudaContext, DriverError};
use nvml_wrapper::{Device, Nvml};

use super::gpu_figures::{energy_per_token, format_uuid, power_and_energy};
use crate::results::gpu::{GpuDevice, GpuDevices, GpuTelemetry};

/// How often the side thread samples memory and power during the runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// The CUDA devices this process can see, in CUDA ordinal order. Never panics: without a driver
/// or device, `available` is `false` and `reason` says why.
pub fn devices() -> GpuDevices {
    match guarded(list_devices) {
        Ok(list) if !list.is_empty() => GpuDevices {
            available: true,
            reason: None,
            devices: list,
        },
        Ok(_) => GpuDevices::unavailable("no CUDA device: the driver reports 0 devices"),
        Err(reason) => GpuDevices::unavailable(reason),
    }
}

fn list_devices() -> Result<Vec<GpuDevice>, String> {
    driver()?;
    let count = cu::device::get_count().map_err(|e| format!("no CUDA device: {}", cu_err(&e)))?;
    (0..count)
        .map(|ordinal| {
            describe(ordinal).map_err(|e| format!("CUDA device {ordinal}: {}", cu_err(&e)))
        })
        .collect()
}

/// Measures device memory around a model load and device memory and board power during the runs
/// (warm-up included), on one CUDA device. Every figure it cannot take stays `null`.
pub struct GpuWatch {
    /// The device's primary context; `None` where the driver or device is not reachable.
    ctx: Option<Arc<CudaContext>>,
    device: Option<GpuDevice>,
    /// The same device in NVML, for power and energy.
    nvml: Result<Arc<Device<'static>>, String>,
    before_load: Option<u64>,
    after_load: Option<u64>,
    runs: Option<Runs>,
    /// Why figures are missing; becomes `note`.
    problems: Vec<String>,
}

/// The measured runs in progress.
struct Runs {
    started: Instant,
    energy_start_mj: Option<u64>,
    stop: Sender<()>,
    sampler: JoinHandle<Samples>,
}

/// What the side thread saw.
#[derive(Debug, Default)]
struct Samples {
    memory_peak_bytes: Option<u64>,
    power_w: Vec<f64>,
    power_error: Option<String>,
}

impl GpuWatch {
    /// A watch on CUDA device `device_index` (a CUDA ordinal, as llama.cpp's `--main-gpu`).
    /// Never panics and never fails: where the device is not reachable, every later figure is
    /// `null`.
    pub fn new(device_index: usize) -> Self {
        let mut watch = GpuWatch {
            ctx: None,
            device: None,
            nvml: Err(String::new()),
            before_load: None,
            after_load: None,
            runs: None,
            problems: Vec::new(),
        };
        match guarded(|| open(device_index)) {
            Ok((ctx, device)) => {
                watch.nvml = guarded(|| nvml_device(&ctx).map(Arc::new));
                if let Err(e) = &watch.nvml {
                    watch.problems.push(e.clone());
                }
                watch.ctx = Some(ctx);
                watch.device = Some(device);
            }
            Err(e) => watch.problems.push(e),
        }
        watch
    }

    /// Records device memory in use before the model is loaded.
    pub fn before_load(&mut self) {
        self.before_load = self.memory_used();
    }

    /// Records device memory in use after the model is loaded.
    pub fn after_load(&mut self) {
        self.after_load = self.memory_used();
    }

    /// Starts the side thread that samples device memory and board power until
    /// [`GpuWatch::finish_runs`]. Called before the first warm-up run: the suite warms up per
    /// prompt, between other prompts' measured runs, so one window covers all the runs and
    /// `finish_runs` gets the tokens of warm-up and measured runs alike.
    pub fn start_runs(&mut self) {
        if let Some(runs) = self.runs.take() {
            let _ = runs.stop.send(());
            let _ = runs.sampler.join();
        }
        if self.ctx.is_none() && self.nvml.is_err() {
            return;
        }
        let (stop, stopped) = mpsc::channel();
        let ctx = self.ctx.clone();
        let device = self.nvml.as_ref().ok().cloned();
        let energy_start_mj = device
            .as_ref()
            .and_then(|d| d.total_energy_consumption().ok());
        let spawned = std::thread::Builder::new()
            .name("gpu-watch".into())
            .spawn(move || sample(ctx, device, stopped));
        match spawned {
            Ok(sampler) => {
                self.runs = Some(Runs {
                    started: Instant::now(),
                    energy_start_mj,
                    stop,
                    sampler,
                })
            }
            Err(e) => self
                .problems
                .push(format!("could not start the sampling thread: {e}")),
        }
    }

    /// Stops the side thread and returns the figures: memory before and after load, peak memory,
    /// mean power, energy and energy per generated token during the runs; `tokens_generated`
    /// counts every token of the runs the window covered (warm-up and measured).
    pub fn finish_runs(&mut self, tokens_generated: u64) -> GpuTelemetry {
        let mut problems = self.problems.clone();
        let mut telemetry = GpuTelemetry {
            device: self.device.clone(),
            memory_used_before_load_bytes: self.before_load,
            memory_used_after_load_bytes: self.after_load,
            ..GpuTelemetry::default()
        };
        match self.runs.take() {
            Some(runs) => {
                let _ = runs.stop.send(());
                let elapsed_s = runs.started.elapsed().as_secs_f64();
                let energy_end_mj = self
                    .nvml
                    .as_ref()
                    .ok()
                    .and_then(|d| d.total_energy_consumption().ok());
                let samples = runs.sampler.join().unwrap_or_else(|_| Samples {
                    power_error: Some("the sampling thread stopped early".into()),
                    ..Samples::default()
                });
                telemetry.memory_peak_during_runs_bytes = samples.memory_peak_bytes;
                if self.nvml.is_ok() {
                    let counter = runs.energy_start_mj.zip(energy_end_mj);
                    let (power, energy) = power_and_energy(counter, &samples.power_w, elapsed_s);
                    telemetry.power_mean_w = power;
                    telemetry.energy_j = energy;
                    if power.is_none() {
                        let why = samples.power_error.unwrap_or_else(|| "no reading".into());
                        problems.push(format!("NVML power not readable: {why}"));
                    }
                }
                telemetry.energy_per_token_j =
                    energy_per_token(telemetry.energy_j, tokens_generated);
                telemetry.power_source = telemetry.power_mean_w.map(|_| "nvml".to_string());
            }
            None if self.ctx.is_some() => problems.push("no measured runs were sampled".into()),
            None => {}
        }
        problems.dedup();
        telemetry.note = (!problems.is_empty()).then(|| problems.join("; "));
        telemetry
    }

    fn memory_used(&self) -> Option<u64> {
        memory_used(self.ctx.as_deref()?)
    }
}

impl Drop for GpuWatch {
    fn drop(&mut self) {
        if let Some(runs) = self.runs.take() {
            let _ = runs.stop.send(());
            let _ = runs.sampler.join();
        }
    }
}

/// The side thread: samples until told to stop (or the watch is gone), then once more.
fn sample(
    ctx: Option<Arc<CudaContext>>,
    device: Option<Arc<Device<'static>>>,
    stop: Receiver<()>,
) -> Samples {
    let mut samples = Samples::default();
    loop {
        if let Some(used) = ctx.as_deref().and_then(memory_used) {
            samples.memory_peak_bytes =
                Some(samples.memory_peak_bytes.map_or(used, |p| p.max(used)));
        }
        if let Some(device) = &device {
            match device.power_usage() {
                Ok(mw) => samples.power_w.push(f64::from(mw) / 1000.0),
                Err(e) => samples.power_error = Some(e.to_string()),
            }
        }
        match stop.recv_timeout(SAMPLE_EVERY) {
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(used) = ctx.as_deref().and_then(memory_used) {
        samples.memory_peak_bytes = Some(samples.memory_peak_bytes.map_or(used, |p| p.max(used)));
    }
    samples
}

/// Device memory in use (bytes), device-wide.
fn memory_used(ctx: &CudaContext) -> Option<u64> {
    let (free, total) = ctx.mem_get_info().ok()?;
    u64::try_from(total.saturating_sub(free)).ok()
}

/// Loads libcuda and runs `cuInit` once per process. `is_culib_present` is asked first: cudarc's
/// first driver call panics where libcuda is missing.
fn driver() -> Result<(), String> {
    static DRIVER: OnceLock<Result<(), String>> = OnceLock::new();
    DRIVER
        .get_or_init(|| {
            // SAFETY: this only tries to open libcuda by its usual names (running the library's
            // initialisers, as any CUDA program does) and closes it again; it calls nothing in it.
            if !unsafe { sys::is_culib_present() } {
                return Err("no CUDA device: libcuda not found (no NVIDIA driver)".into());
            }
            cu::init().map_err(|e| format!("no CUDA device: {}", cu_err(&e)))
        })
        .clone()
}

/// Retains the primary context of CUDA device `ordinal` and describes the device.
pub(crate) fn open(ordinal: usize) -> Result<(Arc<CudaContext>, GpuDevice), String> {
    driver()?;
    let count = cu::device::get_count().map_err(|e| format!("no CUDA device: {}", cu_err(&e)))?;
    let index = c_int::try_from(ordinal)
        .ok()
        .filter(|&i| i < count)
        .ok_or_else(|| format!("no CUDA device {ordinal}: the driver reports {count} device(s)"))?;
    let ctx =
        CudaContext::new(ordinal).map_err(|e| format!("CUDA device {ordinal}: {}", cu_err(&e)))?;
    let device = describe(index).map_err(|e| format!("CUDA device {ordinal}: {}", cu_err(&e)))?;
    Ok((ctx, device))
}

fn describe(ordinal: c_int) -> Result<GpuDevice, DriverError> {
    let dev = cu::device::get(ordinal)?;
    let name = cu::device::get_name(dev)?;
    // SAFETY: `dev` was just returned by `cuDeviceGet`, which is all these calls require.
    let (major, minor, total) = unsafe {
        (
            cu::device::get_attribute(
                dev,
                CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
            )?,
            cu::device::get_attribute(
                dev,
                CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
            )?,
            cu::device::total_mem(dev)?,
        )
    };
    Ok(GpuDevice {
        index: u32::try_from(ordinal).unwrap_or(u32::MAX),
        name,
        compute_capability: format!("{major}.{minor}"),
        total_memory_bytes: u64::try_from(total).unwrap_or(u64::MAX),
        driver_version: nvml().ok().and_then(|n| n.sys_driver_version().ok()),
        cuda_driver_api_version: cuda_driver_api_version(),
    })
}

/// The CUDA version the driver supports, "major.minor".
fn cuda_driver_api_version() -> Option<String> {
    let mut version: c_int = 0;
    // SAFETY: `cuDriverGetVersion` writes one int through the pointer, which points at `version`;
    // the driver is loaded (`driver()` succeeded before any caller gets here).
    let status = unsafe { sys::cuDriverGetVersion(&mut version) };
    (status == CUresult::CUDA_SUCCESS && version > 0)
        .then(|| format!("{}.{}", version / 1000, version % 1000 / 10))
}

/// NVML, initialised once per process; `Err` says why it is not reachable.
fn nvml() -> Result<&'static Nvml, String> {
    static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| guarded(|| Nvml::init().map_err(|e| e.to_string())))
        .as_ref()
        .map_err(|e| format!("NVML not reachable: {e}"))
}

/// The NVML handle of the CUDA device behind `ctx`, matched by UUID (CUDA ordinals and NVML
/// indices differ in order), else by PCI bus id.
pub(crate) fn nvml_device(ctx: &CudaContext) -> Result<Device<'static>, String> {
    let nvml = nvml()?;
    if let Ok(uuid) = ctx.uuid() {
        if let Ok(device) = nvml.device_by_uuid(format_uuid(&uuid.bytes)) {
            return Ok(device);
        }
    }
    let attr = |a| ctx.attribute(a).ok();
    let bus_id = (|| {
        Some(format!(
            "{:08x}:{:02x}:{:02x}.0",
            attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID)?,
            attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)?,
            attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID)?
        ))
    })();
    bus_id
        .and_then(|id| nvml.device_by_pci_bus_id(id).ok())
        .ok_or_else(|| {
            format!(
                "NVML not reachable: CUDA device {} not found in NVML",
                ctx.ordinal()
            )
        })
}

/// "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected".
pub(crate) fn cu_err(e: &DriverError) -> String {
    match e.error_string() {
        Ok(text) => format!("{:?}: {}", e.0, text.to_string_lossy()),
        Err(_) => format!("{:?}", e.0),
    }
}

/// Runs `f`, turning a panic inside a driver binding (e.g. a symbol missing from an old driver)
/// into an error, so telemetry never takes the benchmark down.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the GPU driver binding failed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without an NVIDIA driver (CI, this crate's CPU tests) everything degrades to
    /// "not available"; on a GPU machine the device is described.
    #[test]
    fn devices_never_panics() {
        let d = devices();
        if d.available {
            assert!(d.reason.is_none());
            assert!(!d.devices.is_empty());
        } else {
            let reason = d.reason.expect("a reason");
            assert!(reason.starts_with("no CUDA device"), "{reason}");
            assert!(d.devices.is_empty());
        }
    }

    #[test]
    fn watch_without_device_gives_nulls_and_a_note() {
        if driver().is_ok() {
            return; // a GPU machine: tests/gpu.rs covers it
        }
        let mut watch = GpuWatch::new(0);
        watch.before_load();
        watch.after_load();
        watch.start_runs();
        let t = watch.finish_runs(10);
        let json = serde_json::to_value(&t).expect("serializes");
        for (field, value) in json.as_object().expect("an object") {
            if field == "note" {
                let note = value.as_str().expect("a note");
                assert!(note.starts_with("no CUDA device"), "{note}");
            } else {
                assert!(value.is_null(), "{field} = {value}");
            }
        }
    }

    #[test]
    fn watch_on_a_missing_ordinal_does_not_panic() {
        let mut watch = GpuWatch::new(10_000);
        watch.start_runs();
        let t = watch.finish_runs(0);
        assert!(t.device.is_none());
        assert!(t.note.is_some());
    }

    #[test]
    fn watch_is_send() {
        fn send<T: Send>() {}
        send::<GpuWatch>();
    }
}
