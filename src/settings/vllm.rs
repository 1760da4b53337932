//! The vLLM engine's settings table (in-process and `vllm serve`), as recorded with the results.

use super::SettingSpec;

/// Every vLLM setting, each once; the columns keep the results keys.
pub const TABLE: &[SettingSpec] = &[
    SettingSpec::plain("model", "--model"),
    SettingSpec::plain("threads", "--threads"),
    // vLLM's OpenMP thread binding, set by the tool (`nobind`).
    SettingSpec::plain("cpu_threads_bind", ""),
    SettingSpec::plain("python_env", "--python-env"),
    SettingSpec::plain("gpu_memory_utilization", "--gpu-memory-utilization"),
    SettingSpec {
        unit: Some("GiB"),
        ..SettingSpec::plain("cpu_offload_gb", "--cpu-offload-gb")
    },
    SettingSpec {
        unit: Some("tokens"),
        ..SettingSpec::plain("max_model_len", "--max-model-len")
    },
    SettingSpec::plain("tensor_parallel_size", "--tensor-parallel-size"),
    SettingSpec::plain("quantization", "--quantization"),
    SettingSpec::plain("dtype", "--dtype"),
    SettingSpec::plain("enforce_eager", "--enforce-eager"),
    SettingSpec::plain("enable_prefix_caching", "--prefix-cache"),
    // Distributed (docs/distributed.md); the Ray address is an environment variable, recorded in
    // the engine's details (`parallel.ray_address`).
    SettingSpec::plain("pipeline_parallel_size", "--pipeline-parallel-size"),
    SettingSpec::plain(
        "distributed_executor_backend",
        "--distributed-executor-backend",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::vllm::VllmSettings;

    #[test]
    fn every_engine_argument_recorded_is_in_the_table() {
        let s = VllmSettings {
            model: "m".into(),
            python_env: None,
            threads: 1,
            gpu_memory_utilization: 0.9,
            cpu_offload_gb: 0.0,
            max_model_len: Some(1024),
            tensor_parallel_size: 1,
            quantization: Some("awq".into()),
            dtype: "auto".into(),
            enforce_eager: true,
            enable_prefix_caching: false,
            verbose: false,
            distributed: crate::engine::vllm::Distributed {
                executor_backend: Some("ray".into()),
                pipeline_parallel_size: 2,
                ray_address: Some("10.0.0.1:6379".into()),
            },
        };
        for k in s.engine_args().keys() {
            assert!(TABLE.iter().any(|t| t.key == k), "{k} is not in the table");
        }
    }
}
