//! The distributed flags of `inproc-bench run` (docs/distributed.md): llama.cpp's RPC workers and
//! device split as llama-bench names them, vLLM's executor, pipeline stages and Ray cluster;
//! flattened into `RunArgs`.

use clap::Args;

/// Devices beyond this machine's: llama.cpp RPC workers, vLLM executors.
#[derive(Args, Debug, Clone)]
pub struct DistributedArgs {
    /// llama.cpp RPC workers (`ggml-rpc-server`) whose devices take layers, as llama-bench's
    /// `-rpc`: `host:port[,host:port…]`. The protocol has no authentication: keep workers on
    /// loopback or a private network.
    #[arg(long, value_name = "HOST:PORT[,…]", help_heading = "Distributed")]
    pub rpc: Option<String>,
    /// How llama.cpp splits the model over devices, as llama-bench's `-sm`: none, layer, row or
    /// tensor. A comma list sweeps.
    #[arg(
        long,
        visible_alias = "sm",
        default_value = "layer",
        value_name = "MODE[,…]",
        help_heading = "Distributed"
    )]
    pub split_mode: String,
    /// Devices llama.cpp may use, as llama-bench's `-dev`: `auto`, `none` or names joined by `/`
    /// (`RPC0/RPC1`; RPC devices are numbered in --rpc order). A comma list sweeps.
    #[arg(
        long,
        visible_alias = "dev",
        default_value = "auto",
        value_name = "DEV/DEV[,…]",
        help_heading = "Distributed"
    )]
    pub device: String,
    /// Share of the model per device, as llama-bench's `-ts` (`3/1`; `0` = by free memory). A
    /// comma list sweeps.
    #[arg(
        long,
        visible_alias = "ts",
        default_value = "0",
        value_name = "N/N[,…]",
        help_heading = "Distributed"
    )]
    pub tensor_split: String,
    /// vLLM's executor for its workers: `mp` (processes on this machine) or `ray` (a Ray
    /// cluster; `--ray-address`). Default: vLLM's choice.
    #[arg(long, value_name = "mp|ray", help_heading = "Distributed")]
    pub distributed_executor_backend: Option<String>,
    /// vLLM pipeline-parallel stages (layers split across GPUs or machines).
    #[arg(long, default_value_t = 1, help_heading = "Distributed")]
    pub pipeline_parallel_size: u32,
    /// Address of a running Ray cluster for `--distributed-executor-backend ray` (`host:6379`,
    /// or `auto`); passed as RAY_ADDRESS to the in-process driver and to `vllm serve`.
    #[arg(
        long,
        env = "RAY_ADDRESS",
        value_name = "ADDR",
        help_heading = "Distributed"
    )]
    pub ray_address: Option<String>,
}
