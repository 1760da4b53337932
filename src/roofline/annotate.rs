//! Fills in the `roofline` figures of a results file after the runs: for each entry, the bytes a
//! generated token reads (from the model's tensors and the entry's settings), the peaks of the
//! devices they live on (the CPU probe once per thread count, the GPU once), and per run the
//! achieved bandwidth and how close it came to the peaks.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::model::{self, llamacpp_cells_read};
use super::probe::{self, ProbeOptions, ProbeResult};
use super::resolve::{resolve, Resolved};
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

/// Per-token bytes of one entry, by device.
struct Bytes {
    weights: model::DeviceBytes,
    kv_per_position: Option<model::DeviceBytes>,
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

/// Whether `part` of `total` bytes is more than a thousandth: a device holding less (the token
/// embedding row on the CPU of a fully offloaded run) is not timed against a peak.
fn significant(part: f64, total: f64) -> bool {
    part > total * 1e-3
}

/// Seconds per token at the peaks (GB/s of CPU and GPU memory): Σ bytes on a device ÷ its peak.
/// `None` when a device holding a significant share of the bytes has no peak.
fn time_at_peak(bytes: &model::DeviceBytes, cpu: Option<f64>, gpu: Option<f64>) -> Option<f64> {
    let total = bytes.total();
    let part = |b: f64, p: Option<f64>| match p.filter(|&p| p > 0.0) {
        Some(p) => Some(b / (p * 1e9)),
        None if !significant(b, total) => Some(0.0),
        None => None,
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
                min_time: std::time::Duration::ZERO,
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
    // A device counts when it holds a significant share of the bytes: on a GPU run the one
    // embedding row read from CPU memory is counted in the bytes but needs no CPU peak.
    let kv = b.kv_per_position.unwrap_or_default();
    let total = b.weights.total() + kv.total();
    let has_cpu = significant(b.weights.cpu + kv.cpu, total);
    let has_gpu = significant(b.weights.gpu + kv.gpu, total);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::ggml_type::GgmlType;
    use crate::roofline::model::ModelBytes;

    #[test]
    fn time_at_the_peaks_adds_the_devices() {
        let b = |cpu, gpu| model::DeviceBytes { cpu, gpu };
        assert_eq!(time_at_peak(&b(10e9, 0.0), Some(5.0), None), Some(2.0));
        assert_eq!(
            time_at_peak(&b(10e9, 40e9), Some(5.0), Some(20.0)),
            Some(4.0)
        );
        assert_eq!(time_at_peak(&b(10e9, 40e9), None, Some(20.0)), None);
        // A few bytes on the CPU of a GPU run need no CPU peak.
        assert_eq!(time_at_peak(&b(600.0, 40e9), None, Some(20.0)), Some(2.0));
    }

    #[test]
    fn positions_read_average_over_the_decoded_tokens() {
        let r = |cells| Resolved {
            model: ModelBytes {
                source: "gguf",
                architecture: None,
                n_layer: 1,
                model_bytes: 0,
                tied_output: false,
                reads: Vec::new(),
                kv: None,
                notes: Vec::new(),
            },
            model_file: String::new(),
            placement: model::Placement::CPU,
            placement_note: None,
            n_gpu_layers: None,
            kv_types: (
                GgmlType::from_id(1).expect("f16"),
                GgmlType::from_id(1).expect("f16"),
            ),
            llamacpp_cache_cells: cells,
            threads: 1,
        };
        // Unpadded: tokens 2..=N decode with P+1 ..= P+N-1 cells in use: the mean is P + N/2.
        assert_eq!(mean_positions_read(&r(None), 16, 100), 66.0);
        // llama.cpp: 254..=256 cells read 256 each, 257..=300 read 512.
        let mean = (3.0 * 256.0 + 44.0 * 512.0) / 47.0;
        assert_eq!(mean_positions_read(&r(Some(4096)), 253, 48), mean);
    }
}
