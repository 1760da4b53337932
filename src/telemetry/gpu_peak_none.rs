//! GPU memory-bandwidth stand-in for builds without the `cuda-telemetry` feature: no figure, and
//! the reason. Same public API as `gpu_peak_cuda.rs`.

use super::gpu::NOT_BUILT;
use crate::results::roofline::DevicePeak;

/// The specified and (when `measure`) measured memory bandwidth of CUDA device `device_index`:
/// none in this build.
pub fn peak(_device_index: usize, _measure: bool) -> DevicePeak {
    DevicePeak {
        measured_reason: Some(NOT_BUILT.into()),
        spec_reason: Some(NOT_BUILT.into()),
        ..DevicePeak::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_in_has_no_figure_and_says_why() {
        let p = peak(0, true);
        assert_eq!((p.measured_gbps, p.spec_gbps), (None, None));
        assert_eq!(p.spec_reason.as_deref(), Some(NOT_BUILT));
        assert_eq!(p.measured_reason.as_deref(), Some(NOT_BUILT));
    }
}
