//! What the benchmark records about the machine it runs on: host (CPU, memory), GPU telemetry and
//! the GPU's memory bandwidth (`gpu_peak`).

#[cfg(feature = "cuda-telemetry")]
#[path = "gpu_cuda.rs"]
pub mod gpu;
#[cfg(not(feature = "cuda-telemetry"))]
#[path = "gpu_none.rs"]
pub mod gpu;
pub mod gpu_figures;
#[cfg(feature = "cuda-telemetry")]
#[path = "gpu_peak_cuda.rs"]
pub mod gpu_peak;
#[cfg(not(feature = "cuda-telemetry"))]
#[path = "gpu_peak_none.rs"]
pub mod gpu_peak;
pub mod system;
