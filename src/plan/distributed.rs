//! The distributed settings of a plan: llama.cpp's RPC workers, split mode, devices and tensor
//! split (sweepable as llama-bench sweeps them), and vLLM's executor, pipeline stages and Ray
//! address, checked before anything loads.

use super::parse::no_duplicates;
use super::{flag_err, EnginePlan, Plan, PlanError, RunOptions};
use crate::engine::llamacpp::{DeviceSplit, SplitMode};
use crate::engine::vllm::Distributed;
use crate::settings::llamacpp as set;

/// `--rpc host:port,…`: the workers, checked for form (whether they answer is checked at load).
fn rpc_endpoints(a: &RunOptions) -> Result<Vec<String>, PlanError> {
    let Some(list) = a.rpc.as_deref() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = Vec::new();
    for item in list.split(',').map(str::trim) {
        let ok = item
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(flag_err(
                set::RPC.flag,
                format!("'{item}' is not host:port (e.g. 127.0.0.1:50052)"),
            ));
        }
        if out.iter().any(|o| o == item) {
            return Err(flag_err(set::RPC.flag, format!("{item} is listed twice")));
        }
        out.push(item.to_string());
    }
    if out.len() > 16 {
        return Err(flag_err(
            set::RPC.flag,
            "llama.cpp takes at most 16 RPC workers",
        ));
    }
    Ok(out)
}

fn split_modes(s: &str) -> Result<Vec<SplitMode>, PlanError> {
    s.split(',')
        .map(|m| {
            m.trim()
                .parse()
                .map_err(|e| flag_err(set::SPLIT_MODE.flag, e))
        })
        .collect()
}

fn device_lists(s: &str) -> Result<Vec<Vec<String>>, PlanError> {
    s.split(',')
        .map(|item| {
            let item = item.trim();
            if item == "auto" {
                return Ok(Vec::new());
            }
            let names: Vec<String> = item.split('/').map(|n| n.trim().to_string()).collect();
            if names.iter().any(String::is_empty) {
                return Err(flag_err(
                    set::DEVICE.flag,
                    format!("'{item}': use auto, none or names joined by / (RPC0/RPC1)"),
                ));
            }
            if names.len() > 1 && names.iter().any(|n| n == "none") {
                return Err(flag_err(set::DEVICE.flag, "none stands alone"));
            }
            Ok(names)
        })
        .collect()
}

fn tensor_splits(s: &str) -> Result<Vec<Vec<f32>>, PlanError> {
    s.split(',')
        .map(|item| {
            let item = item.trim();
            if item == "0" {
                return Ok(Vec::new());
            }
            item.split('/')
                .map(|x| {
                    x.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .ok_or_else(|| {
                            flag_err(
                                set::TENSOR_SPLIT.flag,
                                format!("'{item}': use shares joined by / (3/1), or 0"),
                            )
                        })
                })
                .collect()
        })
        .collect()
}

/// The device-split lists of a llama.cpp plan, each checked; the sweep takes one value of each
/// per combination (a list of more than one value sweeps, as llama-bench's `-sm`, `-dev`, `-ts`).
pub(super) struct SplitLists {
    /// `--rpc`: the same workers for every combination.
    pub rpc: Vec<String>,
    /// `--split-mode`.
    pub modes: Vec<SplitMode>,
    /// `--device`: empty is `auto`.
    pub devices: Vec<Vec<String>>,
    /// `--tensor-split`: empty is `0`.
    pub splits: Vec<Vec<f32>>,
}

impl SplitLists {
    /// The settings of one combination.
    pub fn pick(&self, mode: usize, devices: usize, split: usize) -> DeviceSplit {
        DeviceSplit {
            rpc: self.rpc.clone(),
            split_mode: self.modes[mode],
            devices: self.devices[devices].clone(),
            tensor_split: self.splits[split].clone(),
        }
    }
}

/// Reads `--rpc`, `--split-mode`, `--device` and `--tensor-split`; a value listed twice is refused,
/// and so is anything but the defaults with `--compare-http` (llama-server is not given them).
pub(super) fn split_lists(a: &RunOptions) -> Result<SplitLists, PlanError> {
    let rpc = rpc_endpoints(a)?;
    let modes = split_modes(&a.split_mode)?;
    let devices = device_lists(&a.device)?;
    let splits = tensor_splits(&a.tensor_split)?;
    no_duplicates(set::SPLIT_MODE.flag, &modes)?;
    let device_labels: Vec<String> = devices
        .iter()
        .map(|d| {
            DeviceSplit {
                devices: d.clone(),
                ..DeviceSplit::default()
            }
            .devices_label()
        })
        .collect();
    no_duplicates(set::DEVICE.flag, &device_labels)?;
    let split_labels: Vec<String> = splits
        .iter()
        .map(|t| {
            DeviceSplit {
                tensor_split: t.clone(),
                ..DeviceSplit::default()
            }
            .tensor_split_label()
        })
        .collect();
    no_duplicates(set::TENSOR_SPLIT.flag, &split_labels)?;
    if a.compare_http && !rpc.is_empty() {
        return Err(flag_err(
            set::RPC.flag,
            "an RPC worker serves one client at a time, so the in-process engine and llama-server cannot share workers: compare with `scripts/bench-rpc.sh` (in-process against llama-bench -rpc) instead of --compare-http",
        ));
    }
    let default = DeviceSplit::default();
    if a.compare_http
        && (modes != [default.split_mode]
            || devices != [Vec::<String>::new()]
            || splits != [Vec::<f32>::new()])
    {
        return Err(flag_err(
            "--compare-http",
            "starts llama-server with llama.cpp's default device split: drop --split-mode, --device and --tensor-split",
        ));
    }
    Ok(SplitLists {
        rpc,
        modes,
        devices,
        splits,
    })
}

/// Whether a plan runs llama.cpp with RPC workers.
pub fn uses_rpc(plan: &Plan) -> bool {
    match &plan.engine {
        EnginePlan::LlamaCpp(combos) => combos.iter().any(|c| !c.settings.split.rpc.is_empty()),
        _ => false,
    }
}

/// vLLM's distributed settings: executor backend, pipeline stages and Ray address.
pub(super) fn vllm(a: &RunOptions) -> Result<Distributed, PlanError> {
    let backend = match a.distributed_executor_backend.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(b @ ("mp" | "ray")) => Some(b.to_string()),
        Some(other) => {
            return Err(flag_err(
                "--distributed-executor-backend",
                format!("'{other}': use mp (processes on this machine) or ray (a Ray cluster)"),
            ))
        }
    };
    if a.pipeline_parallel_size == 0 {
        return Err(flag_err("--pipeline-parallel-size", "must be at least 1"));
    }
    let ray_address = a.ray_address.clone().filter(|r| !r.trim().is_empty());
    if ray_address.is_some() && backend.as_deref() == Some("mp") {
        return Err(flag_err(
            "--ray-address",
            "is for --distributed-executor-backend ray; drop it with mp",
        ));
    }
    Ok(Distributed {
        executor_backend: backend,
        pipeline_parallel_size: a.pipeline_parallel_size,
        ray_address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_llama_bench_writes_them() {
        assert_eq!(
            device_lists("auto,RPC0/RPC1,none").unwrap(),
            vec![
                vec![],
                vec!["RPC0".to_string(), "RPC1".into()],
                vec!["none".into()]
            ]
        );
        assert!(device_lists("RPC0//RPC1").is_err());
        assert_eq!(
            tensor_splits("0,3/1").unwrap(),
            vec![vec![], vec![3.0, 1.0]]
        );
        assert!(tensor_splits("3/x")
            .unwrap_err()
            .to_string()
            .contains("--tensor-split"));
        assert_eq!(
            split_modes("layer,row").unwrap(),
            vec![SplitMode::Layer, SplitMode::Row]
        );
    }

    fn plan(args: &[&str]) -> Result<Plan, PlanError> {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(
            std::iter::once("inproc-bench").chain(args.iter().copied()),
        )
        .unwrap();
        Plan::from_args(&crate::commands::run::run_options(cli.run_args().unwrap()))
    }

    #[test]
    fn split_settings_sweep_as_table_axes_and_the_workers_go_to_every_combination() {
        let p = plan(&[
            "--model",
            "m.gguf",
            "--rpc",
            "127.0.0.1:50052,127.0.0.1:50053",
            "--sm",
            "layer,row",
            "--dev",
            "auto,RPC0/RPC1",
            "--threads",
            "1,2",
        ])
        .unwrap();
        assert!(uses_rpc(&p));
        let EnginePlan::LlamaCpp(c) = p.engine else {
            panic!()
        };
        assert_eq!(c.len(), 8);
        let labels: Vec<String> = c
            .iter()
            .map(|c| super::super::sweep_label(&c.sweep))
            .collect();
        // What needs a new model load varies slower than the context's settings.
        assert_eq!(labels[0], "device=auto,split_mode=layer,threads=1");
        assert_eq!(labels[1], "device=auto,split_mode=layer,threads=2");
        assert_eq!(labels[7], "device=RPC0/RPC1,split_mode=row,threads=2");
        assert!(c.iter().all(|c| c.settings.split.rpc.len() == 2));
        let r = c[7].settings.record();
        assert_eq!(r["rpc"], "127.0.0.1:50052,127.0.0.1:50053");
        assert_eq!(r["split_mode"], "row");
        assert_eq!(r["device"], "RPC0/RPC1");
        assert_eq!(r["tensor_split"], "0");
        assert!(!uses_rpc(&plan(&["--model", "m.gguf"]).unwrap()));
    }

    #[test]
    fn bad_distributed_flags_name_their_flag() {
        let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
        assert!(msg(&["--model", "m", "--rpc", "localhost"]).starts_with("--rpc: "));
        assert!(msg(&["--model", "m", "--sm", "rows"]).starts_with("--split-mode: "));
        assert_eq!(
            msg(&["--model", "m", "--sm", "row,row"]),
            "--split-mode: row is listed twice"
        );
        assert_eq!(
            msg(&["--model", "m", "--dev", "RPC0,RPC0"]),
            "--device: RPC0 is listed twice"
        );
        assert!(msg(&["--model", "m", "--ts", "3/x"]).starts_with("--tensor-split: "));
        assert!(
            msg(&["--model", "m", "--compare-http", "--rpc", "127.0.0.1:1"])
                .contains("scripts/bench-rpc.sh")
        );
        assert!(
            msg(&["--model", "m", "--compare-http", "--sm", "row"]).starts_with("--compare-http: ")
        );
        let vllm = |extra: &[&str]| {
            let mut a = vec!["--engine", "vllm", "--model", "m"];
            a.extend_from_slice(extra);
            plan(&a)
        };
        let e = vllm(&["--distributed-executor-backend", "slurm"]).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--distributed-executor-backend: "));
        let e = vllm(&[
            "--distributed-executor-backend",
            "mp",
            "--ray-address",
            "h:6379",
        ]);
        assert!(e.unwrap_err().to_string().starts_with("--ray-address: "));
        let e = vllm(&["--pipeline-parallel-size", "0"]).unwrap_err();
        assert!(e.to_string().starts_with("--pipeline-parallel-size: "));
        let p = vllm(&[
            "--distributed-executor-backend",
            "ray",
            "--pipeline-parallel-size",
            "2",
        ]);
        let EnginePlan::Vllm(s) = p.unwrap().engine else {
            panic!()
        };
        assert_eq!(s.distributed.executor_backend.as_deref(), Some("ray"));
        assert_eq!(s.engine_args()["pipeline_parallel_size"], 2);
    }
}
