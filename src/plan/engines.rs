//! Each engine's settings from the run flags: llama.cpp's sweep combinations, vLLM's settings,
//! the HTTP targets and their client options.

use std::path::PathBuf;

use serde_json::json;

use super::options::{Backend, RunOptions};
use super::parse::{no_duplicates, parse_fa_list, parse_list, seconds};
use super::sweep::{self, Axis};
use super::{default_threads, flag_err, Combination, PlanError};
use crate::engine::http::client::{self as http_client, ClientOptions};
use crate::engine::http::{Api, Flavor, HttpSettings};
use crate::engine::llamacpp::LlamaCppSettings;
use crate::engine::vllm::VllmSettings;
use crate::settings::llamacpp as set;

pub(super) fn llamacpp_combinations(
    a: &RunOptions,
) -> Result<Vec<Combination<LlamaCppSettings>>, PlanError> {
    let models: Vec<PathBuf> = a
        .model
        .as_deref()
        .ok_or_else(|| {
            flag_err(
                set::MODEL.flag,
                "required for --engine llamacpp: pass a .gguf file (scripts/fetch-model.sh fetches models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf)",
            )
        })?
        .split(',')
        .map(|m| PathBuf::from(m.trim()))
        .collect();
    if models.iter().any(|m| m.as_os_str().is_empty()) {
        return Err(flag_err(set::MODEL.flag, "empty item in the list"));
    }
    // Sweep keys name a model by its file name, unless two models share one.
    let file_names: Vec<String> = models
        .iter()
        .map(|m| {
            m.file_name().map_or_else(
                || m.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let short_names = (1..file_names.len()).all(|i| !file_names[..i].contains(&file_names[i]));
    let model_labels: Vec<String> = models
        .iter()
        .zip(file_names)
        .map(|(m, f)| {
            if short_names {
                f
            } else {
                m.display().to_string()
            }
        })
        .collect();
    let ngl: Vec<i32> = parse_list(set::N_GPU_LAYERS.flag, &a.n_gpu_layers)?;
    if let Some(bad) = ngl.iter().find(|&&n| n < -1) {
        return Err(flag_err(
            set::N_GPU_LAYERS.flag,
            format!("{bad} is not a layer count: use -1 (all), 0 (none) or a positive number"),
        ));
    }
    let ctx: Vec<u32> = parse_list(set::CTX_SIZE.flag, &a.ctx_size)?;
    let threads: Vec<u32> = match &a.threads {
        Some(t) => parse_list(set::THREADS.flag, t)?,
        None => vec![default_threads()],
    };
    let batch: Vec<u32> = parse_list(set::BATCH_SIZE.flag, &a.batch_size)?;
    let ubatch: Vec<u32> = parse_list(set::UBATCH_SIZE.flag, &a.ubatch_size)?;
    let fa = parse_fa_list(&a.flash_attn)?;
    no_duplicates(
        set::MODEL.flag,
        &models
            .iter()
            .map(|m| m.display().to_string())
            .collect::<Vec<_>>(),
    )?;
    no_duplicates(set::N_GPU_LAYERS.flag, &ngl)?;
    for (spec, list) in [
        (set::CTX_SIZE, &ctx),
        (set::THREADS, &threads),
        (set::BATCH_SIZE, &batch),
        (set::UBATCH_SIZE, &ubatch),
    ] {
        no_duplicates(spec.flag, list)?;
    }
    no_duplicates(set::FLASH_ATTN.flag, &fa)?;
    for (spec, list) in [
        (set::CTX_SIZE, &ctx),
        (set::THREADS, &threads),
        (set::BATCH_SIZE, &batch),
        (set::UBATCH_SIZE, &ubatch),
    ] {
        if list.contains(&0) {
            return Err(flag_err(spec.flag, "must be at least 1"));
        }
    }
    let split = super::distributed::split_lists(a)?;
    // The sweep's order: models slowest, then what needs a new model load (layers on the GPU,
    // the device split), then as llama-bench nests its loops.
    let axes = [
        Axis::new(set::MODEL.key, &model_labels, |m| json!(m)),
        Axis::new(set::N_GPU_LAYERS.key, &ngl, |v| json!(v)),
        Axis::new(set::SPLIT_MODE.key, &split.modes, |v| json!(v.to_string())),
        Axis::new(set::DEVICE.key, &split.devices, |v| {
            json!(if v.is_empty() {
                "auto".into()
            } else {
                v.join("/")
            })
        }),
        Axis::new(set::TENSOR_SPLIT.key, &split.splits, |v| {
            json!(if v.is_empty() {
                "0".into()
            } else {
                v.iter().map(f32::to_string).collect::<Vec<_>>().join("/")
            })
        }),
        Axis::new(set::CTX_SIZE.key, &ctx, |v| json!(v)),
        Axis::new(set::THREADS.key, &threads, |v| json!(v)),
        Axis::new(set::BATCH_SIZE.key, &batch, |v| json!(v)),
        Axis::new(set::UBATCH_SIZE.key, &ubatch, |v| json!(v)),
        Axis::new(set::FLASH_ATTN.key, &fa, |v| json!(v.to_string())),
    ];
    Ok(sweep::expand(&axes)
        .into_iter()
        .map(|([m, g, sm, dev, ts, c, t, b, u, f], sweep)| Combination {
            settings: LlamaCppSettings {
                model: models[m].clone(),
                n_gpu_layers: ngl[g],
                ctx_size: ctx[c],
                threads: threads[t],
                batch_size: batch[b],
                ubatch_size: ubatch[u].min(batch[b]),
                flash_attn: fa[f],
                swa_full: a.swa_full,
                verbose: a.verbose,
                split: split.pick(sm, dev, ts),
            },
            sweep,
        })
        .collect())
}

/// `--prefix-cache on`, or vLLM's own `--enable-prefix-caching`.
pub fn prefix_cache(a: &RunOptions) -> bool {
    a.prefix_cache || a.enable_prefix_caching
}

/// TLS, credentials and timeouts of the HTTP client; the secrets are registered for redaction
/// before anything can print them.
pub(super) fn client_options(a: &RunOptions) -> Result<ClientOptions, PlanError> {
    let headers = a
        .headers
        .iter()
        .map(|h| http_client::parse_header(h).map_err(|m| flag_err("--header", m)))
        .collect::<Result<Vec<_>, _>>()?;
    let api_key = a.api_key.clone().filter(|k| !k.trim().is_empty());
    let opts = ClientOptions {
        api_key,
        headers,
        ca_cert: a.ca_cert.clone(),
        connect_timeout: seconds("--connect-timeout", a.connect_timeout)?,
        request_timeout: a
            .request_timeout
            .map(|s| seconds("--request-timeout", s))
            .transpose()?,
    };
    Ok(opts)
}

/// Registers the API key and credential header values for redaction, first thing, so that no
/// message can show them.
pub(super) fn register_secrets(a: &RunOptions) {
    if let Some(k) = &a.api_key {
        crate::redact::register(k);
    }
    // A password in a URL (`https://user:pass@host`).
    for url in a.url.iter().chain([&a.llamacpp_url, &a.vllm_url]) {
        if let Some(p) = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.password().map(str::to_string))
        {
            crate::redact::register(&p);
        }
    }
    for h in &a.headers {
        if let Some((k, v)) = h.split_once(':') {
            if crate::redact::is_sensitive_header(k) {
                crate::redact::register(v);
            }
        }
    }
}

/// The HTTP targets: `--url` for `--engine http`, or the seed's `--backend` with its URLs.
pub(super) fn http_targets(a: &RunOptions) -> Result<Vec<HttpSettings>, PlanError> {
    let api = a.api.unwrap_or(Api::Chat);
    if api == Api::Completions && !a.raw_prompt {
        return Err(flag_err(
            "--api",
            "completions sends the prompt text as is: add --raw-prompt, or use --api chat to let the server apply its chat template",
        ));
    }
    let client = client_options(a)?;
    let target = |key: &str, url: &str, flag: &str, flavor: Option<Flavor>| HttpSettings {
        flavor,
        prefix_cache: prefix_cache(a),
        client: client.clone(),
        ..HttpSettings::new(key, url, flag, api)
    };
    match (a.backend, &a.url) {
        (Some(_), Some(_)) => Err(flag_err(
            "--backend",
            "pass --url or --backend, not both (--backend uses --llamacpp-url and --vllm-url)",
        )),
        (Some(b), None) => {
            let llama = || target("llamacpp", &a.llamacpp_url, "--llamacpp-url", Some(Flavor::LlamaServer));
            let vllm = || target("vllm", &a.vllm_url, "--vllm-url", Some(Flavor::Vllm));
            Ok(match b {
                Backend::Llamacpp => vec![llama()],
                Backend::Vllm => vec![vllm()],
                Backend::Both => vec![vllm(), llama()],
            })
        }
        (None, Some(url)) => Ok(vec![target("http", url, "--url", None)]),
        (None, None) => Err(flag_err(
            "--url",
            "required for --engine http: pass the server's base URL (e.g. http://127.0.0.1:8001), or --backend llamacpp|vllm|both",
        )),
    }
}

pub(super) fn vllm_settings(a: &RunOptions) -> Result<VllmSettings, PlanError> {
    let model = a.model.as_deref().ok_or_else(|| {
        flag_err(
            "--model",
            "required for --engine vllm: pass a Hugging Face model folder (python/make_smollm2_hf.py makes models/hf/SmolLM2-135M-Instruct)",
        )
    })?;
    if model.contains(',') {
        return Err(flag_err(
            "--model",
            "--engine vllm measures one model per run: give one folder",
        ));
    }
    let threads = match &a.threads {
        None => default_threads(),
        Some(t) => match parse_list::<u32>("--threads", t)?.as_slice() {
            [n] if *n > 0 => *n,
            [_] => return Err(flag_err("--threads", "must be at least 1")),
            _ => {
                return Err(flag_err(
                    "--threads",
                    "--engine vllm takes one thread count, not a list",
                ))
            }
        },
    };
    if !(a.gpu_memory_utilization > 0.0 && a.gpu_memory_utilization <= 1.0) {
        return Err(flag_err(
            "--gpu-memory-utilization",
            "must be a fraction in (0, 1]",
        ));
    }
    if !(a.cpu_offload_gb >= 0.0 && a.cpu_offload_gb.is_finite()) {
        return Err(flag_err("--cpu-offload-gb", "must be 0 or more GiB"));
    }
    if a.tensor_parallel_size == 0 {
        return Err(flag_err("--tensor-parallel-size", "must be at least 1"));
    }
    Ok(VllmSettings {
        model: PathBuf::from(model.trim()),
        python_env: a.python_env.clone(),
        threads,
        gpu_memory_utilization: a.gpu_memory_utilization,
        cpu_offload_gb: a.cpu_offload_gb,
        max_model_len: a.max_model_len,
        tensor_parallel_size: a.tensor_parallel_size,
        quantization: a.quantization.clone(),
        dtype: a.dtype.clone(),
        enforce_eager: a.enforce_eager,
        enable_prefix_caching: prefix_cache(a),
        verbose: a.verbose,
        distributed: super::distributed::vllm(a)?,
    })
}
