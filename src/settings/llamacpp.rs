//! The llama.cpp engine's settings table (in-process and the llama-server `--compare-http` starts),
//! in the order of the CSV columns.

use serde_json::Value;

use super::{plain, ServerArg, SettingSpec};

/// `-1` as llama-bench's readers know it: `all (-1)`.
fn layers_text(v: &Value) -> String {
    match v.as_i64() {
        Some(-1) => "all (-1)".into(),
        _ => plain(v),
    }
}

/// llama-server's spelling of a layer count: `all` for -1.
fn layers_server(v: &Value) -> String {
    match v.as_i64() {
        Some(n) if n < 0 => "all".into(),
        _ => plain(v),
    }
}

/// A number or word setting that the sweep expands and every report shows in its own column.
const fn swept(
    key: &'static str,
    column: &'static str,
    unit: Option<&'static str>,
    flag: &'static str,
    server: &'static [&'static str],
) -> SettingSpec {
    SettingSpec {
        key,
        column,
        unit,
        flag,
        display: plain,
        sweepable: true,
        report_column: true,
        always_shown: false,
        server: ServerArg::Value {
            flags: server,
            value: plain,
        },
    }
}

/// The GGUF file; a list sweeps models.
pub const MODEL: SettingSpec = SettingSpec {
    sweepable: true,
    server: ServerArg::Value {
        flags: &["--model"],
        value: plain,
    },
    ..SettingSpec::plain("model", "--model")
};

/// Layers offloaded to the GPU; -1 is all.
pub const N_GPU_LAYERS: SettingSpec = SettingSpec {
    display: layers_text,
    always_shown: true,
    server: ServerArg::Value {
        flags: &["--n-gpu-layers"],
        value: layers_server,
    },
    ..swept("n_gpu_layers", "ngl", Some("layers"), "--n-gpu-layers", &[])
};

/// Threads for generation and prompt evaluation.
pub const THREADS: SettingSpec = SettingSpec {
    always_shown: true,
    ..swept(
        "threads",
        "threads",
        None,
        "--threads",
        &["--threads", "--threads-batch"],
    )
};

/// Context size.
pub const CTX_SIZE: SettingSpec = swept(
    "ctx_size",
    "n_ctx",
    Some("tokens"),
    "--ctx-size",
    &["--ctx-size"],
);

/// Logical batch size for prompt evaluation.
pub const BATCH_SIZE: SettingSpec = swept(
    "batch_size",
    "n_batch",
    Some("tokens"),
    "--batch-size",
    &["--batch-size"],
);

/// Physical batch size (at most the logical one).
pub const UBATCH_SIZE: SettingSpec = swept(
    "ubatch_size",
    "n_ubatch",
    Some("tokens"),
    "--ubatch-size",
    &["--ubatch-size"],
);

/// Flash attention: on, off or auto (llama.cpp decides per device).
pub const FLASH_ATTN: SettingSpec =
    swept("flash_attn", "fa", None, "--flash-attn", &["--flash-attn"]);

/// Full-size KV cache for sliding-window attention layers.
pub const SWA_FULL: SettingSpec = SettingSpec {
    server: ServerArg::Switch("--swa-full"),
    ..SettingSpec::plain("swa_full", "--swa-full")
};

/// A device-split setting as llama-bench names it: a comma list sweeps it; llama-server is not
/// given it (`--compare-http` refuses values other than the default, docs/distributed.md).
const fn split(
    key: &'static str,
    column: &'static str,
    flag: &'static str,
    sweepable: bool,
) -> SettingSpec {
    SettingSpec {
        column,
        sweepable,
        ..SettingSpec::plain(key, flag)
    }
}

/// RPC workers (`ggml-rpc-server`) whose devices take layers, `host:port` joined by `,`
/// (llama-bench's `-rpc`); empty without workers.
pub const RPC: SettingSpec = split("rpc", "rpc", "--rpc", false);

/// How the model is split over devices: none, layer, row or tensor (llama-bench's `-sm`).
pub const SPLIT_MODE: SettingSpec = split("split_mode", "sm", "--split-mode", true);

/// Devices by name joined by `/` (`RPC0/RPC1`), `auto` or `none` (llama-bench's `-dev`).
pub const DEVICE: SettingSpec = split("device", "dev", "--device", true);

/// Share of the model per device joined by `/` (`3/1`), `0` by free memory (llama-bench's `-ts`).
pub const TENSOR_SPLIT: SettingSpec = split("tensor_split", "ts", "--tensor-split", true);

/// Every llama.cpp setting, each once.
pub const TABLE: &[SettingSpec] = &[
    MODEL,
    N_GPU_LAYERS,
    THREADS,
    CTX_SIZE,
    BATCH_SIZE,
    UBATCH_SIZE,
    FLASH_ATTN,
    SWA_FULL,
    RPC,
    SPLIT_MODE,
    DEVICE,
    TENSOR_SPLIT,
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_flags_follow_the_table() {
        let m = json!({"model": "m.gguf", "n_gpu_layers": -1, "threads": 2, "ctx_size": 4096,
            "batch_size": 2048, "ubatch_size": 512, "flash_attn": "auto", "swa_full": true,
            "rpc": "", "split_mode": "layer", "device": "auto", "tensor_split": "0"});
        let Value::Object(m) = m else { panic!() };
        assert_eq!(
            super::super::server_args(TABLE, &m).join(" "),
            "--model m.gguf --n-gpu-layers all --threads 2 --threads-batch 2 --ctx-size 4096 \
             --batch-size 2048 --ubatch-size 512 --flash-attn auto --swa-full"
        );
    }
}
