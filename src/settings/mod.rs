//! Every engine setting described once, as llama-bench's parameter structs list their fields:
//! results key, short column, unit, flag, how to print it and what -1 or "auto" means. One table
//! per engine; the plan's sweep, the engines' recorded settings, the CSV and Markdown columns, the
//! plot axes, the roofline and the llama-server command line of `--compare-http` all read them.
//!
//! A leaf: it knows no engine, command line or report, only names and JSON values.

pub mod http;
pub mod llamacpp;
pub mod vllm;

use serde::Serialize;
use serde_json::{Map, Value};

/// How a setting goes on a llama-server command line.
#[derive(Debug, Clone, Copy)]
pub enum ServerArg {
    /// The server is not given this setting.
    None,
    /// Each flag followed by the value as `value` spells it (`--threads 4 --threads-batch 4`).
    Value {
        /// The flags, in order.
        flags: &'static [&'static str],
        /// The value as the server spells it.
        value: fn(&Value) -> String,
    },
    /// A flag given alone when the value is `true`.
    Switch(&'static str),
}

/// One setting of one engine.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    /// Key in the results file's `settings` and `sweep` maps (`n_gpu_layers`).
    pub key: &'static str,
    /// Short column name in tables and Markdown (`ngl`, llama-bench's where it has one).
    pub column: &'static str,
    /// Unit of the value, when it has one.
    pub unit: Option<&'static str>,
    /// The command-line flag that sets it (`--n-gpu-layers`); empty when the tool sets it itself.
    pub flag: &'static str,
    /// The value as text for people (`-1` is `all (-1)` for `n_gpu_layers`).
    pub display: fn(&Value) -> String,
    /// Whether the flag takes a comma list or range that the sweep expands.
    pub sweepable: bool,
    /// Whether CSV gives it a column of its own and the plot may draw the decode rate against it.
    pub report_column: bool,
    /// Whether tables show it whenever an entry has it, varying or not (llama-bench's `ngl`, `threads`).
    pub always_shown: bool,
    /// How llama-server takes it (`--compare-http` starts the server with the same settings).
    pub server: ServerArg,
}

impl SettingSpec {
    /// The llama-server flag that takes this setting (the first, when it takes several).
    pub fn server_flag(&self) -> Option<&'static str> {
        match self.server {
            ServerArg::None => None,
            ServerArg::Value { flags, .. } => flags.first().copied(),
            ServerArg::Switch(f) => Some(f),
        }
    }

    /// A setting with a plain display, not swept, not a column of its own, not for llama-server.
    pub const fn plain(key: &'static str, flag: &'static str) -> Self {
        Self {
            key,
            column: key,
            unit: None,
            flag,
            display: plain,
            sweepable: false,
            report_column: false,
            always_shown: false,
            server: ServerArg::None,
        }
    }
}

/// A value as text: strings without quotes, everything else as JSON.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The layers that `n_gpu_layers` asks for out of `total`: -1 (any negative) is all of them.
pub fn gpu_layers(n_gpu_layers: i64, total: u64) -> u64 {
    u64::try_from(n_gpu_layers).map_or(total, |n| n.min(total))
}

/// Every engine's table.
pub const TABLES: [&[SettingSpec]; 3] = [llamacpp::TABLE, vllm::TABLE, http::TABLE];

/// The description of results key `key`, from whichever engine's table lists it first.
pub fn spec(key: &str) -> Option<&'static SettingSpec> {
    TABLES.iter().flat_map(|t| t.iter()).find(|s| s.key == key)
}

/// The short column name of results key `key` (the key itself for a setting no table lists).
pub fn column(key: &str) -> &str {
    spec(key).map_or(key, |s| s.column)
}

/// The value of results key `key` as text for people.
pub fn display(key: &str, v: &Value) -> String {
    spec(key).map_or_else(|| plain(v), |s| (s.display)(v))
}

/// The keys of `table` that have a CSV column and a plot axis of their own, in table order.
pub fn report_columns(table: &'static [SettingSpec]) -> impl Iterator<Item = &'static str> {
    table.iter().filter(|s| s.report_column).map(|s| s.key)
}

/// The settings map recorded with the results: the fields of `settings` (serialized with serde,
/// whose field names are the results keys) that `table` lists, every one of them.
pub fn record<T: Serialize>(table: &[SettingSpec], settings: &T) -> Map<String, Value> {
    let fields = match serde_json::to_value(settings) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    table
        .iter()
        .filter_map(|s| fields.get(s.key).map(|v| (s.key.to_string(), v.clone())))
        .collect()
}

/// The llama-server flags for `settings` (a map as [`record`] makes it), in table order.
pub fn server_args(table: &[SettingSpec], settings: &Map<String, Value>) -> Vec<String> {
    let mut args = Vec::new();
    for s in table {
        let Some(v) = settings.get(s.key) else {
            continue;
        };
        match s.server {
            ServerArg::None => {}
            ServerArg::Value { flags, value } => {
                for f in flags {
                    args.push((*f).to_string());
                    args.push(value(v));
                }
            }
            ServerArg::Switch(f) => {
                if v == &Value::Bool(true) {
                    args.push(f.to_string());
                }
            }
        }
    }
    args
}

/// Label of a sweep combination, e.g. `threads=2,n_gpu_layers=0`; empty without a sweep.
pub fn sweep_label(sweep: &Map<String, Value>) -> String {
    sweep
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_key_is_listed_once_per_table_with_one_column_across_tables() {
        for t in TABLES {
            for (i, s) in t.iter().enumerate() {
                assert!(!t[..i].iter().any(|o| o.key == s.key), "{} twice", s.key);
                assert_eq!(column(s.key), s.column, "{} has two columns", s.key);
            }
        }
    }

    #[test]
    fn minus_one_means_all_layers() {
        assert_eq!(gpu_layers(-1, 31), 31);
        assert_eq!(gpu_layers(10, 31), 10);
        assert_eq!(gpu_layers(99, 31), 31);
        assert_eq!(display("n_gpu_layers", &json!(-1)), "all (-1)");
        assert_eq!(display("n_gpu_layers", &json!(0)), "0");
        assert_eq!(display("flash_attn", &json!("auto")), "auto");
        assert_eq!(display("no_such_setting", &json!(true)), "true");
    }

    #[test]
    fn columns_are_llama_benchs_and_unknown_keys_keep_their_name() {
        assert_eq!(column("n_gpu_layers"), "ngl");
        assert_eq!(column("ubatch_size"), "n_ubatch");
        assert_eq!(column("threads"), "threads");
        assert_eq!(column("ttft_ms"), "ttft_ms");
        assert_eq!(
            report_columns(llamacpp::TABLE).collect::<Vec<_>>(),
            [
                "n_gpu_layers",
                "threads",
                "ctx_size",
                "batch_size",
                "ubatch_size",
                "flash_attn"
            ]
        );
    }
}
