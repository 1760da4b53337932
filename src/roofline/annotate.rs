//! Fills in the `roofline` figures of a results file after the runs: for each entry, the bytes a
//! generated token reads (from the model's tensors and the entry's settings), the peaks of the
//! devices they live on (the CPU probe once per thread count, the GPU once), and per run the
//! achieved bandwidth and how close it came to the peaks.

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use super::ggml_type::GgmlType;
use super::gguf::GgufFile;
use super::model::{self, llamacpp_cells_read, ModelBytes};
use super::probe::{self, ProbeOptions, ProbeResult};
use super::safetensors;
use crate::measure::Summary;
use crate::results::roofline::{
    DeviceBytes, DevicePeak, Figures, Peaks, Placement, Roofline, RunRoofline, TokenBytes,
};
use crate::results::{EngineResult, ResultsFile};

/// Timed repetitions of the probe a run makes (the command's default is more).
pub const RUN_PROBE_REPS: u32 = 5;

/// Why the CPU has no specified peak.
pub const CPU_SPEC_REASON: &str = "a process cannot see the memory's channels and speed reliably; the measured peak (inproc-bench probe) stands in";

/// How to annotate.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Measure the CPU's bandwidth with the probe (and the GPU's with a copy) where needed.
    pub probe: bool,
    /// Say nothing on stderr.
    pub quiet: bool,
}

/// One entry's model and settings, resolved.
struct Resolved {
    model: ModelBytes,
    model_file: String,
    placement: model::Placement,
    placement_note: Option<String>,
    n_gpu_layers: Option<i64>,
    kv_types: (GgmlType, GgmlType),
    /// KV cache cells, when llama.cpp pads the positions it reads.
    llamacpp_cache_cells: Option<u64>,
    threads: usize,
}

/// Per-token bytes of one entry, by device.
struct Bytes {
    weights: model::DeviceBytes,
    kv_per_position: Option<model::DeviceBytes>,
}

fn setting<'a>(e: &'a EngineResult, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|k| e.settings.get(*k).filter(|v| !v.is_null()))
}

/// The value after `flag` in a server's recorded command line.
fn server_arg<'a>(e: &'a EngineResult, flag: &str) -> Option<&'a str> {
    let args = e.details.get("server_args")?.as_array()?;
    let i = args.iter().position(|a| a.as_str() == Some(flag))?;
    args.get(i + 1)?.as_str()
}

fn kv_type(e: &EngineResult, keys: &[&str]) -> Result<GgmlType, String> {
    match setting(e, keys).and_then(Value::as_str) {
        None => GgmlType::from_name("f16").ok_or_else(|| "f16 unknown".into()),
        Some(name) => {
            GgmlType::from_name(name).ok_or_else(|| format!("KV cache type {name} is not known"))
        }
    }
}

fn resolve(
    e: &EngineResult,
    gpu_on_system: bool,
    cache: &mut HashMap<String, Result<ModelBytes, String>>,
) -> Result<Resolved, String> {
    let path = Path::new(&e.model);
    let http = e.engine.as_deref().is_some_and(|n| n.contains("HTTP"));
    let is_dir = path.is_dir();
    if !path.is_file() && !is_dir {
        return Err(format!(
            "the model {} is not a file here (a server's model name?): its tensors cannot be read",
            e.model
        ));
    }
    let vllm_dtype = e.details.get("dtype").and_then(Value::as_str);
    let model = cache
        .entry(e.model.clone())
        .or_insert_with(|| {
            if is_dir {
                let runtime = vllm_dtype.and_then(safetensors::torch_dtype_bytes);
                safetensors::from_hf_folder(path, runtime).map_err(|err| err.to_string())
            } else {
                GgufFile::open(path)
                    .map_err(|err| format!("{}: {err}", e.model))
                    .and_then(|g| ModelBytes::from_gguf(&g).map_err(|err| err.to_string()))
            }
        })
        .clone()?;
    let threads = setting(e, &["threads"])
        .and_then(Value::as_u64)
        .or_else(|| e.details.get("torch_threads").and_then(Value::as_u64))
        .or_else(|| server_arg(e, "--threads").and_then(|t| t.parse().ok()))
        .map_or_else(|| crate::plan::default_threads() as usize, |t| t as usize);
    if is_dir {
        // vLLM: everything on its device; the KV cache in the model's dtype (cache dtype auto).
        let on_gpu = match e.details.get("device").and_then(Value::as_str) {
            Some(d) => d.starts_with("cuda"),
            None => http && gpu_on_system,
        };
        let note = (http && e.details.get("device").is_none())
            .then(|| "the server's device is assumed from this machine's GPUs".to_string());
        let t = match vllm_dtype.and_then(safetensors::torch_dtype_bytes) {
            Some(4) => "f32",
            _ if vllm_dtype.is_some_and(|d| d.ends_with("bfloat16")) => "bf16",
            _ => "f16",
        };
        let kv = GgmlType::from_name(t).ok_or("no dtype")?;
        return Ok(Resolved {
            model,
            model_file: e.model.clone(),
            placement: if on_gpu {
                model::Placement::GPU
            } else {
                model::Placement::CPU
            },
            placement_note: note,
            n_gpu_layers: None,
            kv_types: (kv, kv),
            llamacpp_cache_cells: None,
            threads,
        });
    }
    let ngl = setting(e, &["n_gpu_layers"])
        .and_then(Value::as_i64)
        .or_else(|| server_arg(e, "--n-gpu-layers").and_then(|v| v.parse().ok()))
        .unwrap_or(-1);
    let (gpu_available, note) = if http {
        (
            gpu_on_system,
            Some("the server's offload is assumed from this machine's GPUs".to_string()),
        )
    } else {
        let offload = e
            .details
            .get("gpu_offload_supported")
            .and_then(Value::as_bool);
        let gpu_device = e
            .details
            .get("backend_devices")
            .and_then(Value::as_array)
            .is_some_and(|d| {
                d.iter().any(|d| {
                    d.get("backend")
                        .and_then(Value::as_str)
                        .is_some_and(|b| !b.eq_ignore_ascii_case("cpu"))
                })
            });
        let note = (offload == Some(false) && ngl != 0).then(|| {
            "this llama.cpp build cannot offload: everything is in CPU memory".to_string()
        });
        (offload != Some(false) && gpu_device, note)
    };
    let cache_cells = setting(e, &["ctx_size"])
        .and_then(Value::as_u64)
        .or_else(|| server_arg(e, "--ctx-size").and_then(|v| v.parse().ok()));
    Ok(Resolved {
        model,
        model_file: e.model.clone(),
        placement: model::Placement::llamacpp(gpu_available, ngl),
        placement_note: note,
        n_gpu_layers: Some(ngl),
        kv_types: (
            kv_type(e, &["cache_type_k", "type_k"])?,
            kv_type(e, &["cache_type_v", "type_v"])?,
        ),
        llamacpp_cache_cells: Some(cache_cells.unwrap_or(4096)),
        threads,
    })
}

fn device_bytes(b: &model::DeviceBytes) -> DeviceBytes {
    DeviceBytes {
        cpu: b.cpu,
        gpu: b.gpu,
        total: b.total(),
    }
}

/// KV positions a decoded token reads, averaged over the tokens the decode rate counts (the 2nd
/// to the last generated: `used` = prompt + 1 … prompt + generated − 1 cells hold positions).
fn mean_positions_read(r: &Resolved, prompt: u64, generated: u64) -> f64 {
    let first = prompt + 1;
    let last = (prompt + generated.max(2) - 1).max(first);
    match r.llamacpp_cache_cells {
        Some(cells) => {
            let sum: u64 = (first..=last).map(|u| llamacpp_cells_read(u, cells)).sum();
            sum as f64 / (last - first + 1) as f64
        }
        None => (first + last) as f64 / 2.0,
    }
}

/// Seconds per token at the peaks `peak_of(device)`: Σ bytes on a device ÷ its peak. `None`
/// when a device holding bytes has no peak.
fn time_at_peak(bytes: &model::DeviceBytes, cpu: Option<f64>, gpu: Option<f64>) -> Option<f64> {
    let part = |b: f64, p: Option<f64>| {
        if b <= 0.0 {
            Some(0.0)
        } else {
            p.filter(|&p| p > 0.0).map(|p| b / (p * 1e9))
        }
    };
    Some(part(bytes.cpu, cpu)? + part(bytes.gpu, gpu)?)
}

fn peak_figures(p: &Peaks) -> [(Option<f64>, Option<f64>); 2] {
    let m = |d: &Option<DevicePeak>| d.as_ref().and_then(|d| d.measured_gbps);
    let s = |d: &Option<DevicePeak>| d.as_ref().and_then(|d| d.spec_gbps);
    [(m(&p.cpu), m(&p.gpu)), (s(&p.cpu), s(&p.gpu))]
}

fn run_figures(
    r: &Resolved,
    b: &Bytes,
    peaks: &Peaks,
    prompt: u64,
    generated: u64,
    tps: Option<f64>,
) -> (RunRoofline, model::DeviceBytes) {
    let positions = mean_positions_read(r, prompt, generated);
    let kv = b
        .kv_per_position
        .map_or_else(model::DeviceBytes::default, |k| k.scaled(positions));
    let total = model::DeviceBytes {
        cpu: b.weights.cpu + kv.cpu,
        gpu: b.weights.gpu + kv.gpu,
    };
    let [measured, spec] = peak_figures(peaks);
    let pct = |(cpu, gpu): (Option<f64>, Option<f64>)| {
        Some(tps? * time_at_peak(&total, cpu, gpu)? * 100.0)
    };
    let run = RunRoofline {
        mean_depth: prompt as f64 + generated as f64 / 2.0,
        bytes_per_token: TokenBytes {
            weights: b.weights.total(),
            kv: kv.total(),
            total: total.total(),
        },
        achieved_gbps: tps.map(|t| total.total() * t / 1e9),
        pct_of_measured_peak: pct(measured),
        pct_of_spec_peak: pct(spec),
    };
    (run, total)
}

/// Pools run figures into a prompt's (or the entry's) figures.
fn pool(runs: &[(RunRoofline, model::DeviceBytes)], peaks: &Peaks) -> Figures {
    if runs.is_empty() {
        return Figures::default();
    }
    let n = runs.len() as f64;
    let mean = |f: &dyn Fn(&RunRoofline) -> f64| runs.iter().map(|(r, _)| f(r)).sum::<f64>() / n;
    let summary = |f: &dyn Fn(&RunRoofline) -> Option<f64>| {
        Summary::of(&runs.iter().filter_map(|(r, _)| f(r)).collect::<Vec<_>>())
    };
    let bytes = model::DeviceBytes {
        cpu: runs.iter().map(|(_, b)| b.cpu).sum::<f64>() / n,
        gpu: runs.iter().map(|(_, b)| b.gpu).sum::<f64>() / n,
    };
    let [(cpu, gpu), _] = peak_figures(peaks);
    Figures {
        mean_depth: Some(mean(&|r| r.mean_depth)),
        bytes_per_token: Some(TokenBytes {
            weights: mean(&|r| r.bytes_per_token.weights),
            kv: mean(&|r| r.bytes_per_token.kv),
            total: mean(&|r| r.bytes_per_token.total),
        }),
        achieved_gbps: summary(&|r| r.achieved_gbps),
        roofline_tps: time_at_peak(&bytes, cpu, gpu)
            .filter(|&t| t > 0.0)
            .map(|t| 1.0 / t),
        pct_of_measured_peak: summary(&|r| r.pct_of_measured_peak),
        pct_of_spec_peak: summary(&|r| r.pct_of_spec_peak),
    }
}

/// The peaks an entry needs, measuring each once per file.
struct PeakCache {
    opts: Options,
    cpu: HashMap<usize, Result<ProbeResult, String>>,
    gpu: Option<DevicePeak>,
}

impl PeakCache {
    fn cpu(&mut self, threads: usize) -> DevicePeak {
        let mut peak = DevicePeak {
            spec_reason: Some(CPU_SPEC_REASON.into()),
            ..DevicePeak::default()
        };
        if !self.opts.probe {
            peak.measured_reason = Some(format!(
                "not measured (--roofline-probe false): `inproc-bench probe --threads {threads}` measures it"
            ));
            return peak;
        }
        let quiet = self.opts.quiet;
        let result = self.cpu.entry(threads).or_insert_with(|| {
            if !quiet {
                eprintln!("roofline: probing memory bandwidth on {threads} thread(s)");
            }
            let opts = ProbeOptions {
                threads,
                buffer_bytes: probe::default_buffer_bytes(
                    probe::last_level_cache(),
                    probe::available_memory(),
                ),
                reps: RUN_PROBE_REPS,
            };
            probe::run(opts).map_err(|e| e.to_string())
        });
        match result {
            Ok(p) => {
                peak.measured_gbps = Some(p.best_gbps);
                peak.measured_source = Some(super::probe_source(p));
            }
            Err(e) => peak.measured_reason = Some(e.clone()),
        }
        peak
    }

    fn gpu(&mut self) -> DevicePeak {
        let probe = self.opts.probe;
        self.gpu
            .get_or_insert_with(|| crate::telemetry::gpu_peak::peak(0, probe))
            .clone()
    }
}

fn entry_roofline(
    e: &mut EngineResult,
    r: Result<Resolved, String>,
    peaks: &mut PeakCache,
) -> Roofline {
    let r = match r {
        Ok(r) => r,
        Err(reason) => {
            return Roofline {
                reason: Some(reason),
                ..Roofline::default()
            }
        }
    };
    let b = Bytes {
        weights: r.model.weights(&r.placement),
        kv_per_position: r
            .model
            .kv_per_position(&r.placement, r.kv_types.0, r.kv_types.1),
    };
    let on = |d: f64, kv: Option<f64>| d > 0.0 || kv.is_some_and(|k| k > 0.0);
    let has_cpu = on(b.weights.cpu, b.kv_per_position.map(|k| k.cpu));
    let has_gpu = on(b.weights.gpu, b.kv_per_position.map(|k| k.gpu));
    let peak = Peaks {
        cpu: has_cpu.then(|| peaks.cpu(r.threads)),
        gpu: has_gpu.then(|| peaks.gpu()),
    };
    let mut notes = r.model.notes.clone();
    if b.kv_per_position.is_none() {
        notes.push("KV cache bytes unknown: the figures count the weights alone".into());
    }
    let mut prompts = IndexMap::new();
    let mut all = Vec::new();
    for (name, p) in e.prompts.iter_mut() {
        let mut figures = Vec::new();
        for run in p.runs.iter_mut().filter(|run| run.error.is_none()) {
            let f = run_figures(
                &r,
                &b,
                &peak,
                run.prompt_tokens,
                run.tokens_generated,
                run.tps,
            );
            run.roofline = Some(f.0);
            figures.push(f);
        }
        prompts.insert(name.clone(), pool(&figures, &peak));
        all.extend(figures);
    }
    let device = match (has_cpu, has_gpu) {
        (true, true) => "cpu+gpu",
        (false, true) => "gpu",
        _ => "cpu",
    };
    Roofline {
        reason: None,
        source: Some(r.model.source.into()),
        model_file: Some(r.model_file.clone()),
        model_bytes: Some(r.model.model_bytes),
        tied_output: Some(r.model.tied_output),
        placement: Some(Placement {
            device: device.into(),
            n_gpu_layers: r.n_gpu_layers,
            gpu_layers: r.n_gpu_layers.map(|_| r.placement.gpu_layers(r.model.n_layer)),
            n_layer: r.model.n_layer,
            note: r.placement_note.clone(),
        }),
        weights_bytes_per_token: Some(device_bytes(&b.weights)),
        kv_bytes_per_position: b.kv_per_position.as_ref().map(device_bytes),
        kv_cache_type: Some(format!("{}/{}", r.kv_types.0.name, r.kv_types.1.name)),
        kv_positions_read: Some(match r.llamacpp_cache_cells {
            Some(_) => "llama.cpp: the cells in use rounded up to a multiple of 256, at least 256, at most the context".into(),
            None => "the positions in use".into(),
        }),
        all: pool(&all, &peak),
        peak,
        prompts,
        notes,
    }
}

/// Computes every entry's `roofline` and every run's figures, probing the peaks as `opts` says.
pub fn annotate(file: &mut ResultsFile, opts: Options) {
    let gpu_on_system = file
        .system
        .as_ref()
        .and_then(|s| s.gpu.as_ref())
        .is_some_and(|g| g.available);
    let mut models = HashMap::new();
    let mut peaks = PeakCache {
        opts,
        cpu: HashMap::new(),
        gpu: None,
    };
    for e in file.results.values_mut() {
        let resolved = resolve(e, gpu_on_system, &mut models);
        e.roofline = Some(entry_roofline(e, resolved, &mut peaks));
    }
}
