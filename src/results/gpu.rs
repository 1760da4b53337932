//! What the results record about GPUs: the devices the CUDA driver reports, and per engine the
//! device memory and power figures measured around model load and the measured runs.
//!
//! Every figure is an `Option` that serializes as `null` (never skipped, never zero), so a CPU-only
//! build, a machine without an NVIDIA driver and a GPU run all write the same set of fields; a null
//! figure means "not measured", and [`GpuTelemetry::note`] says why.

use serde::{Deserialize, Serialize};

/// The GPUs visible to this process, as the CUDA driver reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevices {
    /// `true` when the CUDA driver was loaded and reported at least one device.
    pub available: bool,
    /// Why no device is listed, e.g. "no CUDA device: libcuda not found" or "built without the
    /// `cuda` feature"; `null` when `available` is `true`.
    pub reason: Option<String>,
    /// One entry per CUDA device, in CUDA ordinal order (the order `--main-gpu` and llama.cpp's
    /// device list use, after `CUDA_VISIBLE_DEVICES`).
    pub devices: Vec<GpuDevice>,
}

impl GpuDevices {
    /// No device listed, for the given reason.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            available: false,
            reason: Some(reason.into()),
            devices: Vec::new(),
        }
    }
}

/// One CUDA device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// CUDA device ordinal (0-based, after `CUDA_VISIBLE_DEVICES`).
    pub index: u32,
    /// Marketing name, e.g. "NVIDIA GeForce RTX 4080".
    pub name: String,
    /// Compute capability as "major.minor", e.g. "8.9".
    pub compute_capability: String,
    /// Total device memory in bytes.
    pub total_memory_bytes: u64,
    /// NVIDIA driver version as NVML reports it, e.g. "550.54.15"; `null` where NVML is not
    /// reachable.
    pub driver_version: Option<String>,
    /// Highest CUDA version the installed driver supports, "major.minor" (`cuDriverGetVersion`),
    /// e.g. "12.4"; `null` where the driver does not say.
    pub cuda_driver_api_version: Option<String>,
}

/// GPU figures for one engine's measurement: device memory around model load and during the runs,
/// and board power and energy during the runs. "The runs" are one window, from the start of the
/// first warm-up run to the end of the last measured run (the suite warms up per prompt, between
/// other prompts' measured runs), and energy per token divides by the tokens of exactly those runs.
///
/// Memory figures are device-wide (`total - free` from `cuMemGetInfo`): they include the CUDA
/// context and memory held by other processes on the same device, so compare them between
/// settings on an otherwise idle GPU. Power and energy are whole-board figures from NVML.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuTelemetry {
    /// The device measured; `null` where no CUDA device was reachable.
    pub device: Option<GpuDevice>,
    /// Device memory in use just before the model was loaded, in bytes.
    pub memory_used_before_load_bytes: Option<u64>,
    /// Device memory in use just after the model was loaded and its context created, in bytes.
    pub memory_used_after_load_bytes: Option<u64>,
    /// Highest device memory in use seen during the runs, warm-up included (sampled about every
    /// 20 ms), in bytes.
    pub memory_peak_during_runs_bytes: Option<u64>,
    /// Mean board power during the runs (warm-up included), in watts.
    pub power_mean_w: Option<f64>,
    /// Board energy used during the runs (warm-up included), in joules: the difference of
    /// NVML's total energy counter where the device has one, otherwise power samples integrated
    /// over time.
    pub energy_j: Option<f64>,
    /// `energy_j` divided by the tokens generated in the same runs (warm-up and measured runs,
    /// failed runs excepted), in joules per token. It includes prompt processing and the idle
    /// draw of the board.
    pub energy_per_token_j: Option<f64>,
    /// Where the power and energy figures come from: "nvml"; `null` when there are none.
    pub power_source: Option<String>,
    /// Why some figures are `null`, e.g. "NVML not reachable: ..." or "built without the `cuda`
    /// feature"; `null` when every figure was measured.
    pub note: Option<String>,
}

impl GpuTelemetry {
    /// Every figure `null`, with the reason in `note`.
    pub fn unavailable(note: impl Into<String>) -> Self {
        Self {
            note: Some(note.into()),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_telemetry_writes_every_field_as_null() {
        let json = serde_json::to_value(GpuTelemetry::unavailable("why")).expect("serializes");
        let obj = json.as_object().expect("an object");
        let fields = [
            "device",
            "memory_used_before_load_bytes",
            "memory_used_after_load_bytes",
            "memory_peak_during_runs_bytes",
            "power_mean_w",
            "energy_j",
            "energy_per_token_j",
            "power_source",
        ];
        for field in fields {
            assert_eq!(obj.get(field), Some(&serde_json::Value::Null), "{field}");
        }
        assert_eq!(obj.get("note"), Some(&serde_json::json!("why")));
        assert_eq!(obj.len(), fields.len() + 1);
    }

    #[test]
    fn devices_round_trip() {
        let devices = GpuDevices {
            available: true,
            reason: None,
            devices: vec![GpuDevice {
                index: 0,
                name: "NVIDIA GeForce RTX 4080".into(),
                compute_capability: "8.9".into(),
                total_memory_bytes: 17_171_480_576,
                driver_version: None,
                cuda_driver_api_version: Some("12.4".into()),
            }],
        };
        let json = serde_json::to_value(&devices).expect("serializes");
        assert_eq!(json["reason"], serde_json::Value::Null);
        assert_eq!(
            json["devices"][0]["driver_version"],
            serde_json::Value::Null
        );
        let back: GpuDevices = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, devices);
    }
}
