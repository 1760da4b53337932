//! What the benchmark records about the machine it runs on: host (CPU, memory) and GPU telemetry.

#[cfg(feature = "cuda-telemetry")]
#[path = "gpu_cuda.rs"]
pub mod gpu;
#[cfg(not(feature = "cuda-telemetry"))]
#[path = "gpu_none.rs"]
pub mod gpu;
pub mod gpu_figures;
pub mod system;
