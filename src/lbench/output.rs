//! llama-bench's output formats for [`Record`]s: Markdown (its table columns), CSV and SQL (its
//! fields, no samples), JSON (an array) and JSONL (one object a line), plus the ratio table of a
//! comparison.

use serde_json::Value;

use super::against::Ratio;
use super::{Record, FIELDS};

/// An output format, by llama-bench's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Md,
    Csv,
    Json,
    Jsonl,
    Sql,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "md" => Self::Md,
            "csv" => Self::Csv,
            "json" => Self::Json,
            "jsonl" => Self::Jsonl,
            "sql" => Self::Sql,
            _ => {
                return Err(format!(
                    "unknown output format '{s}': use md, csv, json, jsonl or sql"
                ))
            }
        })
    }
}

fn field(r: &Record, name: &str) -> Value {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.get(name).cloned())
        .unwrap_or(Value::Null)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => u8::from(*b).to_string(),
        other => other.to_string(),
    }
}

/// Renders the records (and, for a comparison, the ratios) in `format`.
pub fn render(format: Format, records: &[Record], ratios: &[Ratio]) -> String {
    match format {
        Format::Md => markdown(records, ratios),
        Format::Csv => csv(records),
        Format::Json => {
            let mut all: Vec<Value> = records
                .iter()
                .filter_map(|r| serde_json::to_value(r).ok())
                .collect();
            all.extend(ratios.iter().filter_map(|r| serde_json::to_value(r).ok()));
            serde_json::to_string_pretty(&all).unwrap_or_default() + "\n"
        }
        Format::Jsonl => {
            let mut out = String::new();
            for v in records.iter().filter_map(|r| serde_json::to_string(r).ok()) {
                out.push_str(&v);
                out.push('\n');
            }
            for v in ratios.iter().filter_map(|r| serde_json::to_string(r).ok()) {
                out.push_str(&v);
                out.push('\n');
            }
            out
        }
        Format::Sql => sql(records),
    }
}

fn csv(records: &[Record]) -> String {
    let mut out = FIELDS.join(",") + "\n";
    for r in records {
        let row: Vec<String> = FIELDS
            .iter()
            .map(|f| format!("\"{}\"", text(&field(r, f)).replace('"', "\"\"")))
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn sql(records: &[Record]) -> String {
    let kind = |f: &str| match f {
        "avg_ts" | "stddev_ts" => "REAL",
        "build_number" | "model_size" | "model_n_params" | "n_batch" | "n_ubatch" | "n_threads"
        | "n_gpu_layers" | "flash_attn" | "n_prompt" | "n_gen" | "n_depth" | "avg_ns"
        | "stddev_ns" => "INTEGER",
        _ => "TEXT",
    };
    let cols: Vec<String> = FIELDS
        .iter()
        .map(|f| format!("  {f} {}", kind(f)))
        .collect();
    let mut out = format!(
        "CREATE TABLE IF NOT EXISTS llama_bench (\n{}\n);\n\n",
        cols.join(",\n")
    );
    for r in records {
        let vals: Vec<String> = FIELDS
            .iter()
            .map(|f| match (kind(f), field(r, f)) {
                ("TEXT", v) => format!("'{}'", text(&v).replace('\'', "''")),
                (_, v) => text(&v),
            })
            .collect();
        out.push_str(&format!(
            "INSERT INTO llama_bench ({}) VALUES ({});\n",
            FIELDS.join(", "),
            vals.join(", ")
        ));
    }
    out
}

fn markdown(records: &[Record], ratios: &[Ratio]) -> String {
    let nondefault_kv = records
        .iter()
        .any(|r| r.type_k != "f16" || r.type_v != "f16");
    let nondefault_fa = records.iter().any(|r| r.flash_attn != -1);
    let two_sides = records.iter().any(|r| r.runner != records[0].runner);
    let mut head = vec!["model", "size", "params", "backend", "threads"];
    if nondefault_kv {
        head.extend(["type_k", "type_v"]);
    }
    if nondefault_fa {
        head.push("fa");
    }
    if two_sides {
        head.push("runner");
    }
    head.extend(["test", "t/s"]);
    let mut out = format!("| {} |\n|", head.join(" | "));
    for h in &head {
        out.push_str(
            if matches!(*h, "model" | "backend" | "runner" | "type_k" | "type_v") {
                " --- |"
            } else {
                " ---: |"
            },
        );
    }
    out.push('\n');
    for r in records {
        let mut row = vec![
            r.model_type.clone(),
            format!("{:.2} MiB", r.model_size as f64 / (1u64 << 20) as f64),
            format!("{:.2} M", r.model_n_params as f64 / 1e6),
            r.backends.clone(),
            r.n_threads.to_string(),
        ];
        if nondefault_kv {
            row.extend([r.type_k.clone(), r.type_v.clone()]);
        }
        if nondefault_fa {
            row.push(r.flash_attn.to_string());
        }
        if two_sides {
            row.push(r.runner.clone());
        }
        row.extend([
            r.test_name(),
            format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts),
        ]);
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    if let Some(r) = records.first() {
        out.push_str(&format!(
            "\nbuild: {} ({})\n",
            r.build_commit, r.build_number
        ));
    }
    if !ratios.is_empty() {
        out.push('\n');
        out.push_str(&ratio_table(ratios));
    }
    out
}

/// The ratio per test of a comparison, as a Markdown table.
pub fn ratio_table(ratios: &[Ratio]) -> String {
    let mut out = String::new();
    {
        out.push_str("| test | in-process t/s | llama-bench t/s | ratio (median) | 95% CI | pairs |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
        for q in ratios {
            out.push_str(&format!(
                "| {} | {:.2} | {:.2} | {:.4} | {} | {} |\n",
                q.test,
                q.inproc_median_ts,
                q.llama_bench_median_ts,
                q.ratio_median,
                match (q.ci_low, q.ci_high) {
                    (Some(l), Some(h)) => format!("{l:.4} – {h:.4}"),
                    _ => "n/a (one pair)".into(),
                },
                q.pairs
            ));
        }
    }
    out
}
