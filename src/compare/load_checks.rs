//! What may make a comparison of load files unfair: the files differ in workload, seed, schedule,
//! limits, model, bound, hardware or tool version, or a file or level is incomplete.

use super::load::{LevelComparison, LoadInput};

/// `[1] a; [2] b` when the files do not all agree on `value`; `None` when they do.
fn disagreement(values: &[(usize, String)]) -> Option<String> {
    let first = &values.first()?.1;
    values.iter().any(|(_, v)| v != first).then(|| {
        values
            .iter()
            .map(|(i, v)| format!("[{i}] {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn per_file(
    inputs: &[LoadInput<'_>],
    f: impl Fn(&LoadInput<'_>) -> String,
) -> Vec<(usize, String)> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, x)| (i + 1, f(x)))
        .collect()
}

/// Warnings about `inputs` and their paired `levels`, one line each.
pub fn warnings(inputs: &[LoadInput<'_>], levels: &[LevelComparison]) -> Vec<String> {
    let mut out = Vec::new();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    let checks: [(&str, Vec<(usize, String)>); 6] = [
        (
            "workloads",
            per_file(inputs, |x| x.file.load.workload.clone()),
        ),
        (
            "load seeds",
            per_file(inputs, |x| x.file.load.seed.to_string()),
        ),
        (
            "burstiness",
            per_file(inputs, |x| x.file.load.burstiness.to_string()),
        ),
        (
            "--max-concurrency",
            per_file(inputs, |x| {
                opt(x.file.load.max_concurrency.map(|m| m.to_string()))
            }),
        ),
        (
            "SLOs",
            per_file(inputs, |x| {
                opt(x.file.load.slo.and_then(|s| serde_json::to_string(&s).ok()))
            }),
        ),
        (
            "hardware (CPU)",
            per_file(inputs, |x| {
                opt(x.file.base.system.as_ref().map(|s| s.cpu_model.clone()))
            }),
        ),
    ];
    for (name, values) in checks {
        if let Some(d) = disagreement(&values) {
            out.push(format!("{name} differ: {d}"));
        }
    }
    let tool = per_file(inputs, |x| {
        opt(x.file.base.tool.as_ref().map(|t| {
            format!(
                "{} {}{}",
                t.version,
                t.git_commit.chars().take(12).collect::<String>(),
                if t.git_dirty { "-dirty" } else { "" }
            )
        }))
    });
    if let Some(d) = disagreement(&tool) {
        out.push(format!("tool versions differ: {d}"));
    }
    for l in levels {
        let models: Vec<(usize, String)> = l
            .entries
            .iter()
            .map(|e| (e.entry, e.model.clone()))
            .collect();
        if let Some(d) = disagreement(&models) {
            out.push(format!("{}: models differ: {d}", l.level));
        }
    }
    for (i, x) in inputs.iter().enumerate() {
        if !x.file.base.complete {
            let why = x
                .file
                .base
                .incomplete_reason
                .as_deref()
                .unwrap_or("no reason recorded");
            out.push(format!(
                "[{}] {} is incomplete ({why})",
                i + 1,
                x.path.display()
            ));
        }
    }
    out
}
