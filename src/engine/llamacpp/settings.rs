//! The llama.cpp engine's settings, one value each (sweeps expand before this), named as
//! llama-server and llama-bench name them.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::settings::{self, llamacpp::TABLE};

/// Flash attention policy, as llama-server's `-fa on|off|auto` (llama-bench's `-fa 1|0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlashAttn {
    /// Let llama.cpp decide per device.
    Auto,
    /// Always on.
    On,
    /// Always off.
    Off,
}

impl std::str::FromStr for FlashAttn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" | "-1" => Ok(Self::Auto),
            "on" | "1" | "true" => Ok(Self::On),
            "off" | "0" | "false" => Ok(Self::Off),
            _ => Err(format!(
                "invalid flash-attn value '{s}': use on, off or auto (1, 0)"
            )),
        }
    }
}

impl std::fmt::Display for FlashAttn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::On => "on",
            Self::Off => "off",
        })
    }
}

/// Every llama.cpp setting the tool exposes; one value each (sweeps expand before this).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LlamaCppSettings {
    /// Path of the GGUF file.
    #[serde(serialize_with = "path_text")]
    pub model: PathBuf,
    /// Layers offloaded to the GPU; -1 is all.
    pub n_gpu_layers: i32,
    /// Context size in tokens.
    pub ctx_size: u32,
    /// Threads for generation and prompt evaluation.
    pub threads: u32,
    /// Logical batch size for prompt evaluation.
    pub batch_size: u32,
    /// Physical batch size.
    pub ubatch_size: u32,
    /// Flash attention policy.
    pub flash_attn: FlashAttn,
    /// Full-size KV cache for sliding-window attention layers (llama.cpp's library default is on,
    /// llama-server's is off; the tool follows llama-server so both sides hold the same cache).
    pub swa_full: bool,
    /// Let llama.cpp print its own logs.
    #[serde(skip)]
    pub verbose: bool,
}

/// A path as text, never failing (a name that is not UTF-8 is shown lossily).
fn path_text<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.display().to_string())
}

impl LlamaCppSettings {
    /// The settings recorded with the results, one entry per row of the settings table.
    pub fn record(&self) -> Map<String, Value> {
        settings::record(TABLE, self)
    }

    /// The llama-server flags that give a server these settings, as the table spells them.
    pub fn server_args(&self) -> Vec<String> {
        settings::server_args(TABLE, &self.record())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_lists_every_field_of_the_table() {
        let s = LlamaCppSettings {
            model: PathBuf::from("m/x.gguf"),
            n_gpu_layers: -1,
            ctx_size: 4096,
            threads: 2,
            batch_size: 2048,
            ubatch_size: 512,
            flash_attn: FlashAttn::Auto,
            swa_full: false,
            verbose: true,
        };
        let r = s.record();
        let keys: Vec<&str> = TABLE.iter().map(|t| t.key).collect();
        assert_eq!(r.keys().map(String::as_str).collect::<Vec<_>>(), {
            let mut k = keys.clone();
            k.sort_unstable();
            k
        });
        assert_eq!(
            serde_json::Value::Object(r).to_string(),
            r#"{"batch_size":2048,"ctx_size":4096,"flash_attn":"auto","model":"m/x.gguf","n_gpu_layers":-1,"swa_full":false,"threads":2,"ubatch_size":512}"#
        );
        // Every serialized field is in the table, so nothing is recorded by accident or missed.
        let Ok(Value::Object(all)) = serde_json::to_value(&s) else {
            panic!()
        };
        assert!(all.keys().all(|k| keys.contains(&k.as_str())));
    }

    #[test]
    fn flash_attn_parses_llama_server_and_llama_bench_spellings() {
        assert_eq!("1".parse::<FlashAttn>(), Ok(FlashAttn::On));
        assert_eq!("off".parse::<FlashAttn>(), Ok(FlashAttn::Off));
        assert_eq!("auto".parse::<FlashAttn>(), Ok(FlashAttn::Auto));
        assert!("maybe"
            .parse::<FlashAttn>()
            .unwrap_err()
            .contains("on, off or auto"));
    }
}
