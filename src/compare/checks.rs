//! What may make a comparison unfair: the entries differ in model, settings, plan, hardware or
//! tool version, a file is incomplete, or a file comes from the original benchmark.

use serde_json::Value;

use super::select::Side;

/// `[1] a; [2] [3] b` when the sides do not all agree on `value`; `None` when they do.
fn disagreement(sides: &[Side<'_>], value: impl Fn(&Side<'_>) -> Option<String>) -> Option<String> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for s in sides {
        let v = value(s).unwrap_or_else(|| "unknown".into());
        match groups.iter_mut().find(|(g, _)| *g == v) {
            Some((_, tags)) => tags.push(s.tag()),
            None => groups.push((v, vec![s.tag()])),
        }
    }
    (groups.len() > 1).then(|| {
        groups
            .iter()
            .map(|(v, tags)| format!("{} {v}", tags.join(" ")))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_seed(s: &Side<'_>) -> bool {
    s.file.schema_version == 0
}

/// Settings that differ, except those a single sweep file varies on purpose.
fn settings_warnings(sides: &[Side<'_>], out: &mut Vec<String>) {
    let one_file = sides.iter().all(|s| std::ptr::eq(s.file, sides[0].file));
    let mut keys: Vec<&String> = Vec::new();
    for s in sides {
        for k in s.result.settings.keys() {
            if k != "model" && !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    for k in keys {
        let having: Vec<Side<'_>> = sides
            .iter()
            .filter(|s| s.result.settings.contains_key(k))
            .cloned()
            .collect();
        if having.len() < 2 {
            continue;
        }
        let swept = one_file && having.iter().all(|s| s.result.sweep.contains_key(k));
        if swept {
            continue;
        }
        if let Some(d) = disagreement(&having, |s| s.result.settings.get(k).map(text)) {
            out.push(format!("setting {k} differs: {d}"));
        }
    }
}

/// Warnings about `sides`, one line each.
pub fn warnings(sides: &[Side<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    let one_file = sides.iter().all(|s| std::ptr::eq(s.file, sides[0].file));
    let model_swept = one_file && sides.iter().all(|s| s.result.sweep.contains_key("model"));
    if !model_swept {
        if let Some(d) = disagreement(sides, |s| Some(s.result.model.clone())) {
            out.push(format!("models differ: {d}"));
        }
    }
    settings_warnings(sides, &mut out);
    let c = |f: fn(&crate::results::schema::RunConfig) -> Option<String>| {
        move |s: &Side<'_>| f(&s.file.config)
    };
    for (name, get) in [
        ("warmup runs", c(|c| Some(c.warmup_runs.to_string()))),
        ("measured runs", c(|c| Some(c.measurement_runs.to_string()))),
        ("max tokens", c(|c| c.max_tokens.map(|v| v.to_string()))),
        ("ignore-eos", c(|c| c.ignore_eos.map(|v| v.to_string()))),
        ("temperature", c(|c| c.temperature.map(|v| v.to_string()))),
        ("prompt mode", c(|c| c.prompt_mode.clone())),
    ] {
        let known: Vec<Side<'_>> = sides.iter().filter(|s| get(s).is_some()).cloned().collect();
        if let Some(d) = disagreement(&known, get) {
            out.push(format!("{name} differ: {d}"));
        }
    }
    let known = |f: &dyn Fn(&Side<'_>) -> Option<String>| -> Vec<Side<'_>> {
        sides.iter().filter(|s| f(s).is_some()).cloned().collect()
    };
    let cpu = |s: &Side<'_>| s.file.system.as_ref().map(|h| h.cpu_model.clone());
    let gpu = |s: &Side<'_>| {
        s.file
            .system
            .as_ref()
            .and_then(|h| h.gpu.as_ref())
            .map(|g| {
                let names: Vec<&str> = g.devices.iter().map(|d| d.name.as_str()).collect();
                if names.is_empty() {
                    "no GPU".into()
                } else {
                    names.join(" + ")
                }
            })
    };
    if let Some(d) = disagreement(&known(&cpu), cpu) {
        out.push(format!("hardware differs (CPU): {d}"));
    }
    if let Some(d) = disagreement(&known(&gpu), gpu) {
        out.push(format!("hardware differs (GPU): {d}"));
    }
    let tool = |s: &Side<'_>| {
        s.file.tool.as_ref().map(|t| {
            format!(
                "{} {}{}",
                t.version,
                t.git_commit.chars().take(12).collect::<String>(),
                if t.git_dirty { "-dirty" } else { "" }
            )
        })
    };
    if let Some(d) = disagreement(&known(&tool), tool) {
        out.push(format!("tool versions differ: {d}"));
    }
    if let Some(d) = disagreement(&known(&|s| s.result.engine_version.clone()), |s| {
        s.result.engine_version.clone()
    }) {
        out.push(format!("engine versions differ: {d}"));
    }
    let unrecorded: Vec<String> = sides
        .iter()
        .filter(|s| s.file.system.is_none() || s.file.tool.is_none())
        .map(Side::tag)
        .collect();
    if !unrecorded.is_empty() && !one_file {
        out.push(format!(
            "{} {} no hardware or tool version (the original benchmark's files do not): the entries may come from different machines",
            unrecorded.join(" "),
            if unrecorded.len() == 1 { "records" } else { "record" }
        ));
    }
    for s in sides {
        if !s.file.complete {
            let why = s
                .file
                .incomplete_reason
                .as_deref()
                .unwrap_or("no reason recorded");
            out.push(format!(
                "{} {} is incomplete ({why})",
                s.tag(),
                s.file_name()
            ));
        }
    }
    out
}

/// Notes on definitions, when an original-benchmark file takes part.
pub fn notes(sides: &[Side<'_>]) -> Vec<String> {
    if !sides.iter().any(is_seed) {
        return Vec::new();
    }
    let mut out = vec![
        "the original benchmark's definitions are used for every entry: TPS = tokens/(E2E − TTFT) (our seed_tps) and E2E to the end of the response (our total_ms)".to_string(),
        "original-benchmark files hold no per-run samples: tests use their mean, std and successful_runs; their tokens are SSE chunks and their percentiles nearest-rank (p95 = p99 = max with 20 runs)".to_string(),
    ];
    if sides.iter().all(is_seed) {
        out.truncate(0);
        out.push("original-benchmark files hold no per-run samples: tests use their mean, std and successful_runs; their percentiles are nearest-rank (p95 = p99 = max with 20 runs)".into());
    }
    out
}
