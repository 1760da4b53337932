//! The host: OS, kernel, CPU model and cores, memory, and the tool's own build.

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use crate::results::schema::{SystemInfo, ToolInfo};

/// The machine this process runs on; GPU devices come from `telemetry::gpu`.
pub fn system_info() -> SystemInfo {
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    let cpu_model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .unwrap_or_default();
    SystemInfo {
        os: System::long_os_version().unwrap_or_else(|| std::env::consts::OS.to_string()),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: std::env::consts::ARCH.to_string(),
        cpu_model,
        cpu_physical_cores: System::physical_core_count(),
        cpu_logical_cores: sys.cpus().len(),
        memory_total_bytes: sys.total_memory(),
        llama_cpp_system_info: Some(crate::engine::llamacpp::system_info()),
        gpu: Some(super::gpu::devices()),
    }
}

/// This binary: version, git commit, llama.cpp build, features and CPU target (from build.rs).
pub fn tool_info() -> ToolInfo {
    ToolInfo {
        name: env!("CARGO_PKG_NAME").to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: env!("INPROC_GIT_COMMIT").to_string(),
        git_dirty: env!("INPROC_GIT_DIRTY") == "true",
        llama_cpp_build: format!("b{}", crate::engine::llamacpp::LLAMA_CPP_BUILD),
        features: env!("INPROC_FEATURES")
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        target_cpu: env!("INPROC_TARGET_CPU").to_string(),
        profile: env!("INPROC_PROFILE").to_string(),
    }
}

/// Physical cores, falling back to logical CPUs.
pub fn default_threads() -> u32 {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    sysinfo::System::physical_core_count()
        .unwrap_or(logical)
        .clamp(1, logical) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_this_machine_and_build() {
        let s = system_info();
        assert!(s.cpu_logical_cores >= 1);
        assert!(s.memory_total_bytes > 0);
        assert!(!s.os.is_empty());
        let t = tool_info();
        assert_eq!(t.name, "inproc-bench");
        assert_eq!(t.llama_cpp_build, "b11434");
        assert!(!t.git_commit.is_empty());
    }
}
