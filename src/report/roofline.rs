//! The roofline figures in the printed reports: achieved memory bandwidth and how close it came
//! to the peak, per engine entry and prompt (see `results::roofline`).

use crate::results::roofline::Figures;
use crate::results::EngineResult;

use super::rows::Entry;

/// Whether any entry has roofline figures worth a column.
pub fn any(entries: &[Entry<'_>]) -> bool {
    entries.iter().any(|e| figures(e.result, None).is_some())
}

/// The figures of `prompt` (or of the whole entry), when they were computed.
fn figures<'a>(e: &'a EngineResult, prompt: Option<&str>) -> Option<&'a Figures> {
    let r = e.roofline.as_ref()?;
    let f = match prompt {
        Some(p) => r.prompts.get(p)?,
        None => &r.all,
    };
    f.achieved_gbps.is_some().then_some(f)
}

/// The Markdown cells `mem GB/s` (mean ± std) and `% peak` (of the measured peak, with the
/// specified one when there is one); `-` where there is no figure.
pub fn cells(e: &EngineResult, prompt: &str) -> [String; 2] {
    let Some(f) = figures(e, Some(prompt)) else {
        return ["-".into(), "-".into()];
    };
    let gbps = f
        .achieved_gbps
        .map_or("-".into(), |s| format!("{:.2} ± {:.2}", s.mean, s.std));
    let pct = match (f.pct_of_measured_peak, f.pct_of_spec_peak) {
        (Some(m), Some(s)) => format!("{:.1} (spec {:.1})", m.mean, s.mean),
        (Some(m), None) => format!("{:.1}", m.mean),
        (None, Some(s)) => format!("spec {:.1}", s.mean),
        (None, None) => "-".into(),
    };
    [gbps, pct]
}

/// The terminal table's line for `prompt`: bytes per token, achieved bandwidth, % of the peak.
pub fn line(e: &EngineResult, prompt: &str) -> Option<String> {
    let f = figures(e, Some(prompt))?;
    let r = e.roofline.as_ref()?;
    let mut s = String::new();
    if let Some(b) = f.bytes_per_token {
        s.push_str(&format!(
            "{:.1} MB/token ({:.1} weights + {:.1} KV)",
            b.total / 1e6,
            b.weights / 1e6,
            b.kv / 1e6
        ));
    }
    if let Some(g) = f.achieved_gbps {
        s.push_str(&format!(" · {:.2} GB/s", g.mean));
    }
    let peak = |d: Option<&crate::results::roofline::DevicePeak>| d.and_then(|d| d.measured_gbps);
    if let Some(p) = f.pct_of_measured_peak {
        let peaks: Vec<String> = [
            ("CPU", peak(r.peak.cpu.as_ref())),
            ("GPU", peak(r.peak.gpu.as_ref())),
        ]
        .iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n} {v:.1} GB/s")))
        .collect();
        s.push_str(&format!(
            " · {:.1}% of the measured peak ({})",
            p.mean,
            peaks.join(", ")
        ));
    }
    if let Some(p) = f.pct_of_spec_peak {
        s.push_str(&format!(" · {:.1}% of the specified peak", p.mean));
    }
    if let Some(t) = f.roofline_tps {
        s.push_str(&format!(" · roofline {t:.1} tok/s"));
    }
    Some(s)
}
