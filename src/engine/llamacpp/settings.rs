//! The llama.cpp engine's settings, one value each (sweeps expand before this), named as
//! llama-server and llama-bench name them.

use std::path::PathBuf;

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

#[cfg(test)]
mod tests {
    use super::*;

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
