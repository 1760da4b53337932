//! GPU telemetry stand-in for builds without the `cuda-telemetry` feature: no device is listed,
//! every figure is `null`.
//! Same public API as `gpu_cuda.rs`.

use crate::results::gpu::{GpuDevices, GpuTelemetry};

/// Why every GPU figure is `null` in this build.
pub const NOT_BUILT: &str = "built without the `cuda` feature";

/// The GPUs this process can see: none in this build.
pub fn devices() -> GpuDevices {
    GpuDevices::unavailable(NOT_BUILT)
}

/// Measures device memory and power around a model load and the runs (warm-up included); in this build it
/// measures nothing and every figure is `null`.
#[derive(Debug)]
pub struct GpuWatch {
    _private: (),
}

impl GpuWatch {
    /// A watch on CUDA device `device_index`; never fails.
    pub fn new(_device_index: usize) -> Self {
        Self { _private: () }
    }

    /// Records device memory in use before the model is loaded.
    pub fn before_load(&mut self) {}

    /// Records device memory in use after the model is loaded.
    pub fn after_load(&mut self) {}

    /// Starts sampling memory and power, before the first warm-up run.
    pub fn start_runs(&mut self) {}

    /// Stops sampling and returns the figures.
    pub fn finish_runs(&mut self, _tokens_generated: u64) -> GpuTelemetry {
        GpuTelemetry::unavailable(NOT_BUILT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_in_lists_no_device() {
        let d = devices();
        assert!(!d.available);
        assert_eq!(d.reason.as_deref(), Some(NOT_BUILT));
        assert!(d.devices.is_empty());
    }

    #[test]
    fn stand_in_telemetry_is_null_not_zero() {
        let mut watch = GpuWatch::new(0);
        watch.before_load();
        watch.after_load();
        watch.start_runs();
        let t = watch.finish_runs(123);
        let json = serde_json::to_value(&t).expect("serializes");
        for (field, value) in json.as_object().expect("an object") {
            if field == "note" {
                assert_eq!(value, &serde_json::json!(NOT_BUILT));
            } else {
                assert!(value.is_null(), "{field} = {value}");
            }
        }
    }
}
