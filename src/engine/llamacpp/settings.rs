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
    /// Devices beyond this machine's: RPC workers, split mode, device list, tensor split
    /// (recorded as the settings `rpc`, `split_mode`, `device`, `tensor_split`).
    #[serde(flatten)]
    pub split: DeviceSplit,
}

/// How the model is spread over devices, named as llama-bench names it (`-rpc`, `-sm`, `-dev`,
/// `-ts`). The default is llama.cpp's: no workers, layer split over every GPU-like device.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DeviceSplit {
    /// RPC workers (`host:port`) whose devices are registered before the model loads; recorded as
    /// `--rpc` takes them (`h:p,h:p`, empty without workers).
    #[serde(serialize_with = "comma_list")]
    pub rpc: Vec<String>,
    /// How layers and KV cache are split across devices.
    pub split_mode: SplitMode,
    /// Devices by name (`RPC0`, `CUDA0`); empty: llama.cpp's choice (`auto`); `["none"]`: none.
    /// Recorded as `device`, llama-bench's spelling (`auto`, `RPC0/RPC1`).
    #[serde(rename = "device", serialize_with = "devices_text")]
    pub devices: Vec<String>,
    /// Share of the model per device (`3/1`); empty: in proportion to free memory. Recorded as
    /// llama-bench writes it (`0`, `3/1`).
    #[serde(serialize_with = "tensor_split_text")]
    pub tensor_split: Vec<f32>,
}

/// llama.cpp's split mode (`-sm none|layer|row|tensor`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitMode {
    /// One device (the first of the list).
    None,
    /// Whole layers per device (llama.cpp's default).
    #[default]
    Layer,
    /// Rows of each weight matrix across devices (tensor parallelism where the backend has it).
    Row,
    /// llama.cpp's experimental tensor parallelism over a meta device.
    Tensor,
}

impl std::str::FromStr for SplitMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "layer" => Ok(Self::Layer),
            "row" => Ok(Self::Row),
            "tensor" => Ok(Self::Tensor),
            _ => Err(format!(
                "invalid split mode '{s}': use none, layer, row or tensor"
            )),
        }
    }
}

impl std::fmt::Display for SplitMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Layer => "layer",
            Self::Row => "row",
            Self::Tensor => "tensor",
        })
    }
}

fn comma_list<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.join(","))
}

fn devices_text<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&DeviceSplit::label(v, "auto", String::clone))
}

fn tensor_split_text<S: serde::Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&DeviceSplit::label(v, "0", f32::to_string))
}

impl DeviceSplit {
    /// `empty` for an empty list, else the items joined by `/`, as llama-bench writes lists.
    fn label<T>(v: &[T], empty: &str, text: impl Fn(&T) -> String) -> String {
        if v.is_empty() {
            empty.into()
        } else {
            v.iter().map(text).collect::<Vec<_>>().join("/")
        }
    }

    /// `--device` as llama-bench writes it: `auto`, `none` or `RPC0/RPC1`.
    pub fn devices_label(&self) -> String {
        Self::label(&self.devices, "auto", String::clone)
    }

    /// `--tensor-split` as llama-bench writes it: `0` (by free memory) or `3/1`.
    pub fn tensor_split_label(&self) -> String {
        Self::label(&self.tensor_split, "0", f32::to_string)
    }
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
            split: DeviceSplit {
                rpc: vec!["127.0.0.1:50052".into(), "127.0.0.1:50053".into()],
                ..DeviceSplit::default()
            },
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
            r#"{"batch_size":2048,"ctx_size":4096,"device":"auto","flash_attn":"auto","model":"m/x.gguf","n_gpu_layers":-1,"rpc":"127.0.0.1:50052,127.0.0.1:50053","split_mode":"layer","swa_full":false,"tensor_split":"0","threads":2,"ubatch_size":512}"#
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

    #[test]
    fn split_settings_use_llama_bench_spellings() {
        assert_eq!("row".parse::<SplitMode>(), Ok(SplitMode::Row));
        assert!("rows"
            .parse::<SplitMode>()
            .unwrap_err()
            .contains("none, layer"));
        let mut s = DeviceSplit::default();
        assert_eq!(
            (s.devices_label(), s.tensor_split_label()),
            ("auto".into(), "0".into())
        );
        s.devices = vec!["RPC0".into(), "RPC1".into()];
        s.tensor_split = vec![3.0, 1.0];
        assert_eq!(s.devices_label(), "RPC0/RPC1");
        assert_eq!(s.tensor_split_label(), "3/1");
    }
}
