//! From flags to a checked plan: prompt set, run counts, sampling, and the engine settings with
//! every sweep combination expanded (llama-bench style comma lists and ranges).

use std::path::PathBuf;
use std::str::FromStr;

use serde_json::{json, Map, Value};

use crate::cli::{Backend, EngineKind, HttpApi, PairingArg, RunArgs};
use crate::engine::http::{Api, Flavor, HttpSettings};
use crate::engine::http_client::{self, ClientOptions};
use crate::engine::llamacpp::{FlashAttn, LlamaCppSettings};
use crate::engine::mock::MockSettings;
use crate::engine::vllm::VllmSettings;
use crate::engine::{PromptMode, Sampling};
use crate::prompts::{self, PromptError, PromptSpec};
use crate::suite::{Pairing, SuiteOptions};

/// Bad flags, caught before anything is loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A flag's value is out of range or malformed.
    #[error("{flag}: {msg}")]
    Flag {
        /// The flag, as typed.
        flag: &'static str,
        /// What is wrong and what to pass instead.
        msg: String,
    },
    /// The prompt set or selection is wrong.
    #[error(transparent)]
    Prompt(#[from] PromptError),
}

fn flag_err(flag: &'static str, msg: impl Into<String>) -> PlanError {
    PlanError::Flag {
        flag,
        msg: msg.into(),
    }
}

/// Parses a comma list of values; integer items may be ranges `first-last` or `first-last+step`
/// (as llama-bench), e.g. `0-30+10` is 0,10,20,30.
pub fn parse_list<T>(flag: &'static str, s: &str) -> Result<Vec<T>, PlanError>
where
    T: FromStr + TryFrom<i64>,
    T::Err: std::fmt::Display,
{
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(flag_err(flag, format!("empty item in list '{s}'")));
        }
        match item.parse::<T>() {
            Ok(v) => out.push(v),
            Err(e) => match parse_range(item) {
                Some(Err(too_many)) => return Err(flag_err(flag, too_many)),
                Some(Ok(range)) => {
                    for v in range {
                        out.push(T::try_from(v).map_err(|_| {
                            flag_err(flag, format!("{v} is out of range in '{item}'"))
                        })?);
                    }
                }
                None => return Err(flag_err(flag, format!("invalid value '{item}': {e}"))),
            },
        }
    }
    Ok(out)
}

/// The most values one range may expand to: a sweep larger than this is a typo, not a plan.
pub const MAX_RANGE_ITEMS: i64 = 4096;

/// `first-last[+step]` expanded, `None` when `item` is not a range, an error when it is too long.
fn parse_range(item: &str) -> Option<Result<Vec<i64>, String>> {
    let (range, step) = match item.split_once('+') {
        Some((r, s)) => (r, s.parse::<i64>().ok()?),
        None => (item, 1),
    };
    // The first number may be negative: split at a '-' that is not the first character.
    let cut = range.get(1..)?.find('-')? + 1;
    let first: i64 = range[..cut].parse().ok()?;
    let last: i64 = range[cut + 1..].parse().ok()?;
    if step <= 0 || last < first {
        return None;
    }
    let count = (last.checked_sub(first)? / step).checked_add(1)?;
    if count > MAX_RANGE_ITEMS {
        return Some(Err(format!(
            "'{item}' expands to {count} values, more than {MAX_RANGE_ITEMS}: give a larger step"
        )));
    }
    Some(Ok((first..=last)
        .step_by(usize::try_from(step).ok()?)
        .collect()))
}

/// Refuses a list that names a value twice: both combinations would get the same results key.
fn no_duplicates<T: PartialEq + std::fmt::Display>(
    flag: &'static str,
    items: &[T],
) -> Result<(), PlanError> {
    for (i, v) in items.iter().enumerate() {
        if items[..i].contains(v) {
            return Err(flag_err(flag, format!("{v} is listed twice")));
        }
    }
    Ok(())
}

/// A flash-attention list: on/off/auto or 1/0 items.
fn parse_fa_list(s: &str) -> Result<Vec<FlashAttn>, PlanError> {
    s.split(',')
        .map(|i| {
            i.trim()
                .parse::<FlashAttn>()
                .map_err(|e| flag_err("--flash-attn", e))
        })
        .collect()
}

/// Physical cores, falling back to logical CPUs.
pub fn default_threads() -> u32 {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    sysinfo::System::physical_core_count()
        .unwrap_or(logical)
        .clamp(1, logical) as u32
}

/// One combination of engine settings.
#[derive(Debug, Clone)]
pub struct Combination<S> {
    /// The settings.
    pub settings: S,
    /// The settings that vary across the sweep, with this combination's values.
    pub sweep: Map<String, Value>,
}

/// What to measure and how.
#[derive(Debug, Clone)]
pub enum EnginePlan {
    /// llama.cpp in-process, one entry per sweep combination.
    LlamaCpp(Vec<Combination<LlamaCppSettings>>),
    /// The scripted engine.
    Mock(MockSettings),
    /// OpenAI-compatible servers over HTTP (`--engine http --url`, or the seed's `--backend`),
    /// interleaved run by run.
    Http(Vec<HttpSettings>),
    /// llama.cpp in-process against the same build served by llama-server (`--compare-http`).
    CompareHttp {
        /// The in-process settings, which the server gets too.
        settings: LlamaCppSettings,
        /// `--llama-server` (or `INPROC_LLAMA_SERVER`); `None` looks in vendor/.
        llama_server: Option<PathBuf>,
    },
    /// vLLM in-process.
    Vllm(VllmSettings),
    /// vLLM in-process against `vllm serve` from the same environment (`--compare-http`).
    CompareHttpVllm(VllmSettings),
}

/// A checked plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Prompts to run, in order.
    pub prompts: Vec<PromptSpec>,
    /// Runs, prompt mode and sampling.
    pub suite: SuiteOptions,
    /// The engine and its combinations.
    pub engine: EnginePlan,
    /// How `--compare-http` orders its two sides.
    pub pairing: Pairing,
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

fn llamacpp_combinations(a: &RunArgs) -> Result<Vec<Combination<LlamaCppSettings>>, PlanError> {
    let models: Vec<PathBuf> = a
        .model
        .as_deref()
        .ok_or_else(|| {
            flag_err(
                "--model",
                "required for --engine llamacpp: pass a .gguf file (scripts/fetch-model.sh fetches models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf)",
            )
        })?
        .split(',')
        .map(|m| PathBuf::from(m.trim()))
        .collect();
    if models.iter().any(|m| m.as_os_str().is_empty()) {
        return Err(flag_err("--model", "empty item in the list"));
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
    let ngl: Vec<i32> = parse_list("--n-gpu-layers", &a.n_gpu_layers)?;
    if let Some(bad) = ngl.iter().find(|&&n| n < -1) {
        return Err(flag_err(
            "--n-gpu-layers",
            format!("{bad} is not a layer count: use -1 (all), 0 (none) or a positive number"),
        ));
    }
    let ctx: Vec<u32> = parse_list("--ctx-size", &a.ctx_size)?;
    let threads: Vec<u32> = match &a.threads {
        Some(t) => parse_list("--threads", t)?,
        None => vec![default_threads()],
    };
    let batch: Vec<u32> = parse_list("--batch-size", &a.batch_size)?;
    let ubatch: Vec<u32> = parse_list("--ubatch-size", &a.ubatch_size)?;
    let fa = parse_fa_list(&a.flash_attn)?;
    no_duplicates(
        "--model",
        &models
            .iter()
            .map(|m| m.display().to_string())
            .collect::<Vec<_>>(),
    )?;
    no_duplicates("--n-gpu-layers", &ngl)?;
    no_duplicates("--ctx-size", &ctx)?;
    no_duplicates("--threads", &threads)?;
    no_duplicates("--batch-size", &batch)?;
    no_duplicates("--ubatch-size", &ubatch)?;
    no_duplicates("--flash-attn", &fa)?;
    for (flag, zero) in [
        ("--ctx-size", ctx.contains(&0)),
        ("--threads", threads.contains(&0)),
        ("--batch-size", batch.contains(&0)),
        ("--ubatch-size", ubatch.contains(&0)),
    ] {
        if zero {
            return Err(flag_err(flag, "must be at least 1"));
        }
    }
    let mut out = Vec::new();
    for (model, file_name) in models.iter().zip(&file_names) {
        let model_label = if short_names {
            file_name.clone()
        } else {
            model.display().to_string()
        };
        for &n_gpu_layers in &ngl {
            for &ctx_size in &ctx {
                for &threads_n in &threads {
                    for &batch_size in &batch {
                        for &ubatch_size in &ubatch {
                            for &flash_attn in &fa {
                                let mut sweep = Map::new();
                                let mut vary = |name: &str, n: usize, v: Value| {
                                    if n > 1 {
                                        sweep.insert(name.to_string(), v);
                                    }
                                };
                                vary("model", models.len(), json!(model_label));
                                vary("n_gpu_layers", ngl.len(), json!(n_gpu_layers));
                                vary("ctx_size", ctx.len(), json!(ctx_size));
                                vary("threads", threads.len(), json!(threads_n));
                                vary("batch_size", batch.len(), json!(batch_size));
                                vary("ubatch_size", ubatch.len(), json!(ubatch_size));
                                vary("flash_attn", fa.len(), json!(flash_attn.to_string()));
                                out.push(Combination {
                                    settings: LlamaCppSettings {
                                        model: model.clone(),
                                        n_gpu_layers,
                                        ctx_size,
                                        threads: threads_n,
                                        batch_size,
                                        ubatch_size: ubatch_size.min(batch_size),
                                        flash_attn,
                                        swa_full: a.swa_full,
                                        verbose: a.verbose,
                                    },
                                    sweep,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `--prefix-cache on`, or vLLM's own `--enable-prefix-caching`.
pub fn prefix_cache(a: &RunArgs) -> bool {
    a.prefix_cache.is_on() || a.enable_prefix_caching
}

/// A timeout flag in seconds: positive and finite.
fn seconds(flag: &'static str, secs: f64) -> Result<std::time::Duration, PlanError> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| flag_err(flag, format!("{secs} is not a number of seconds above 0")))
}

/// TLS, credentials and timeouts of the HTTP client; the secrets are registered for redaction
/// before anything can print them.
fn client_options(a: &RunArgs) -> Result<ClientOptions, PlanError> {
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
fn register_secrets(a: &RunArgs) {
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
fn http_targets(a: &RunArgs) -> Result<Vec<HttpSettings>, PlanError> {
    let api = match a.api {
        HttpApi::Chat => Api::Chat,
        HttpApi::Completions => Api::Completions,
    };
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

fn vllm_settings(a: &RunArgs) -> Result<VllmSettings, PlanError> {
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
    })
}

fn engine_plan(a: &RunArgs) -> Result<EnginePlan, PlanError> {
    if a.compare_http {
        if a.engine == EngineKind::Vllm && a.backend.is_none() && a.url.is_none() {
            return Ok(EnginePlan::CompareHttpVllm(vllm_settings(a)?));
        }
        if a.engine != EngineKind::Llamacpp || a.backend.is_some() || a.url.is_some() {
            return Err(flag_err(
                "--compare-http",
                "compares an in-process engine (--engine llamacpp or vllm) with the server it starts itself: drop --url and --backend",
            ));
        }
        let mut combos = llamacpp_combinations(a)?;
        if combos.len() != 1 {
            return Err(flag_err(
                "--compare-http",
                format!(
                    "measures one setting, and these flags make {} combinations: give single values instead of lists",
                    combos.len()
                ),
            ));
        }
        return Ok(EnginePlan::CompareHttp {
            settings: combos.remove(0).settings,
            llama_server: a.llama_server.clone(),
        });
    }
    Ok(match a.engine {
        EngineKind::Http => EnginePlan::Http(http_targets(a)?),
        EngineKind::Llamacpp if a.backend.is_some() => EnginePlan::Http(http_targets(a)?),
        _ if a.backend.is_some() => {
            return Err(flag_err(
                "--backend",
                "measures servers over HTTP: drop --engine",
            ))
        }
        EngineKind::Llamacpp => EnginePlan::LlamaCpp(llamacpp_combinations(a)?),
        EngineKind::Vllm => EnginePlan::Vllm(vllm_settings(a)?),
        EngineKind::Mock => EnginePlan::Mock(MockSettings {
            ttft_ms: a.mock_ttft_ms,
            itl_ms: a.mock_itl_ms,
            chunk: a.mock_chunk,
            fail_every: a.mock_fail_every,
            reasoning_tokens: a.mock_reasoning_tokens,
        }),
    })
}

impl Plan {
    /// Checks the flags and builds the plan.
    pub fn from_args(a: &RunArgs) -> Result<Self, PlanError> {
        register_secrets(a);
        if a.runs == 0 {
            return Err(flag_err(
                "--runs",
                "must be at least 1 (the statistics need measured runs)",
            ));
        }
        if a.max_tokens == Some(0) {
            return Err(flag_err("--max-tokens", "must be at least 1"));
        }
        if !(a.temperature >= 0.0 && a.temperature.is_finite()) {
            return Err(flag_err("--temperature", "must be 0 (greedy) or positive"));
        }
        let set = match &a.prompt_file {
            Some(path) => prompts::load_file(path)?,
            None => prompts::builtin(),
        };
        let mut prompts = prompts::select(set, &a.prompt)?;
        if let Some(n) = a.max_tokens {
            for p in &mut prompts {
                p.max_tokens = n;
            }
        }
        let mode = if a.raw_prompt {
            PromptMode::Raw
        } else {
            PromptMode::Chat {
                template: a.chat_template.clone(),
                options: crate::template::ChatOptions::from_flags(
                    a.chat_template_file.clone(),
                    a.chat_template_kwargs.as_deref(),
                    a.thinking.map(|t| t.is_on()),
                )
                .map_err(|e| match e {
                    crate::template::TemplateError::Kwargs(m) => {
                        flag_err("--chat-template-kwargs", m)
                    }
                    other => flag_err("--chat-template-kwargs", other.to_string()),
                })?,
            }
        };
        let engine = engine_plan(a)?;
        Ok(Self {
            prompts,
            suite: SuiteOptions {
                warmup: a.warmup,
                runs: a.runs,
                mode,
                sampling: Sampling {
                    temperature: a.temperature,
                    seed: a.seed,
                    ignore_eos: a.ignore_eos,
                    prefix_cache: prefix_cache(a),
                },
            },
            engine,
            pairing: match a.pairing {
                PairingArg::Auto => Pairing::Auto,
                PairingArg::Interleaved => Pairing::Interleaved,
                PairingArg::Blocks => Pairing::Blocks,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<Plan, PlanError> {
        let cli = Cli::try_parse_from(std::iter::once("inproc-bench").chain(args.iter().copied()))
            .unwrap();
        Plan::from_args(cli.run_args().unwrap())
    }

    #[test]
    fn lists_and_ranges() {
        assert_eq!(parse_list::<i32>("f", "0,10,-1").unwrap(), vec![0, 10, -1]);
        assert_eq!(
            parse_list::<i32>("f", "0-30+10").unwrap(),
            vec![0, 10, 20, 30]
        );
        assert_eq!(parse_list::<u32>("f", "1-3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_list::<i32>("f", "-1").unwrap(), vec![-1]);
        let e = parse_list::<u32>("--threads", "1,,2")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--threads: empty item"));
        let e = parse_list::<u32>("--threads", "two")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid value 'two'"));
        assert!(parse_list::<u32>("f", "5-1").is_err());
        assert!(parse_list::<u32>("f", "-1").is_err());
    }

    #[test]
    fn a_sweep_expands_every_combination_and_labels_what_varies() {
        let p = plan(&["--model", "a.gguf,b.gguf", "--threads", "1,2", "--ngl", "0"]).unwrap();
        let EnginePlan::LlamaCpp(combos) = p.engine else {
            panic!()
        };
        assert_eq!(combos.len(), 4);
        assert_eq!(sweep_label(&combos[0].sweep), "model=a.gguf,threads=1");
        assert_eq!(sweep_label(&combos[3].sweep), "model=b.gguf,threads=2");
        assert!(combos.iter().all(|c| c.settings.n_gpu_layers == 0));
    }

    #[test]
    fn sweep_keys_name_models_by_file_and_lists_refuse_repeats() {
        let p = plan(&[
            "--model",
            "m/a-Q4_K_M.gguf,m/a-Q8_0.gguf",
            "--ngl",
            "0-20+10",
        ])
        .unwrap();
        let EnginePlan::LlamaCpp(c) = p.engine else {
            panic!()
        };
        let labels: Vec<String> = c.iter().map(|c| sweep_label(&c.sweep)).collect();
        assert_eq!(labels[0], "model=a-Q4_K_M.gguf,n_gpu_layers=0");
        assert_eq!(labels[5], "model=a-Q8_0.gguf,n_gpu_layers=20");
        assert_eq!(c[5].settings.model, PathBuf::from("m/a-Q8_0.gguf"));
        // Two models with one file name keep their paths, so that keys stay distinct.
        let p = plan(&["--model", "x/m.gguf,y/m.gguf"]).unwrap();
        let EnginePlan::LlamaCpp(c) = p.engine else {
            panic!()
        };
        assert_eq!(sweep_label(&c[1].sweep), "model=y/m.gguf");
        let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
        assert_eq!(
            msg(&["--model", "m", "--threads", "1,2,1"]),
            "--threads: 1 is listed twice"
        );
        assert_eq!(
            msg(&["--model", "m", "--ngl", "0-20+10,10"]),
            "--n-gpu-layers: 10 is listed twice"
        );
        assert_eq!(
            msg(&["--model", "m", "--fa", "on,1"]),
            "--flash-attn: on is listed twice"
        );
        assert_eq!(msg(&["--model", "a,a"]), "--model: a is listed twice");
        assert_eq!(msg(&["--model", "a,"]), "--model: empty item in the list");
    }

    #[test]
    fn defaults_and_overrides() {
        let p = plan(&[
            "--model",
            "m.gguf",
            "--prompt",
            "short",
            "--max-tokens",
            "7",
        ])
        .unwrap();
        assert_eq!(p.prompts.len(), 1);
        assert_eq!(p.prompts[0].max_tokens, 7);
        let EnginePlan::LlamaCpp(c) = p.engine else {
            panic!()
        };
        assert_eq!(c.len(), 1);
        assert!(c[0].sweep.is_empty());
        assert_eq!(c[0].settings.n_gpu_layers, -1);
        assert_eq!(c[0].settings.ctx_size, 4096);
        assert!(c[0].settings.threads >= 1);
    }

    #[test]
    fn the_seeds_backend_flags_map_onto_http_engines() {
        let p = plan(&["--backend", "both"]).unwrap();
        let EnginePlan::Http(t) = p.engine else {
            panic!()
        };
        let keys: Vec<(&str, &str)> = t.iter().map(|s| (s.key.as_str(), s.url.as_str())).collect();
        assert_eq!(
            keys,
            [
                ("vllm", "http://localhost:8000"),
                ("llamacpp", "http://localhost:8001")
            ]
        );
        assert!(t.iter().all(|s| s.api == Api::Chat));
        let p = plan(&[
            "--engine",
            "http",
            "--url",
            "http://127.0.0.1:9",
            "--api",
            "completions",
            "--raw-prompt",
        ])
        .unwrap();
        let EnginePlan::Http(t) = p.engine else {
            panic!()
        };
        assert_eq!(
            (t[0].key.as_str(), t[0].api, t[0].flavor),
            ("http", Api::Completions, None)
        );
        let p = plan(&[
            "--model",
            "m.gguf",
            "--compare-http",
            "--llama-server",
            "/x/llama-server",
        ])
        .unwrap();
        let EnginePlan::CompareHttp {
            settings,
            llama_server,
        } = p.engine
        else {
            panic!()
        };
        assert_eq!(settings.model, PathBuf::from("m.gguf"));
        assert_eq!(llama_server, Some(PathBuf::from("/x/llama-server")));
    }

    #[test]
    fn prefix_cache_reaches_requests_and_vllm_and_is_off_by_default() {
        let off = plan(&["--engine", "vllm", "--model", "m"]).unwrap();
        assert!(!off.suite.sampling.prefix_cache);
        let on = plan(&["--engine", "vllm", "--model", "m", "--prefix-cache", "on"]).unwrap();
        assert!(on.suite.sampling.prefix_cache);
        let EnginePlan::Vllm(s) = on.engine else {
            panic!("not a vLLM plan")
        };
        assert!(s.enable_prefix_caching);
        let old = plan(&[
            "--engine",
            "vllm",
            "--model",
            "m",
            "--enable-prefix-caching",
        ])
        .unwrap();
        assert!(old.suite.sampling.prefix_cache);
        let llama = plan(&["--model", "m.gguf", "--prefix-cache", "on"]).unwrap();
        assert!(llama.suite.sampling.prefix_cache);
        let http = plan(&[
            "--engine",
            "http",
            "--backend",
            "vllm",
            "--prefix-cache",
            "on",
        ])
        .unwrap();
        let EnginePlan::Http(targets) = http.engine else {
            panic!("not an HTTP plan")
        };
        assert!(targets[0].prefix_cache);
        assert!(Cli::try_parse_from(["inproc-bench", "--prefix-cache", "maybe"]).is_err());
    }

    #[test]
    fn vllm_flags_become_engine_settings_and_bad_ones_name_the_flag() {
        let p = plan(&[
            "--engine",
            "vllm",
            "--model",
            "models/hf/m",
            "--threads",
            "3",
            "--max-model-len",
            "2048",
            "--enforce-eager",
        ])
        .unwrap();
        let EnginePlan::Vllm(s) = p.engine else {
            panic!("not a vLLM plan")
        };
        assert_eq!(s.model, PathBuf::from("models/hf/m"));
        assert_eq!(s.threads, 3);
        assert_eq!(s.max_model_len, Some(2048));
        assert!(s.enforce_eager && !s.enable_prefix_caching);
        let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
        assert!(msg(&["--engine", "vllm"]).starts_with("--model: required for --engine vllm"));
        assert!(msg(&["--engine", "vllm", "--model", "a,b"]).contains("one model"));
        assert!(
            msg(&["--engine", "vllm", "--model", "a", "--threads", "1,2"]).contains("not a list")
        );
        assert!(msg(&[
            "--engine",
            "vllm",
            "--model",
            "a",
            "--gpu-memory-utilization",
            "1.5"
        ])
        .starts_with("--gpu-memory-utilization"));
    }

    #[test]
    fn bad_http_flags_name_the_flag() {
        let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
        assert!(msg(&["--engine", "http"]).starts_with("--url: required"));
        assert!(msg(&[
            "--engine",
            "http",
            "--url",
            "http://h:1",
            "--api",
            "completions"
        ])
        .contains("--raw-prompt"));
        assert!(msg(&["--backend", "vllm", "--url", "http://h:1"]).starts_with("--backend"));
        assert!(
            msg(&["--model", "m", "--compare-http", "--threads", "1,2"]).contains("2 combinations")
        );
        assert!(msg(&["--engine", "mock", "--compare-http"]).starts_with("--compare-http"));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let msg = |args: &[&str]| plan(args).unwrap_err().to_string();
        assert!(msg(&["--model", "m", "--runs", "0"]).starts_with("--runs: must be at least 1"));
        assert!(msg(&["--engine", "llamacpp"]).starts_with("--model: required"));
        assert!(msg(&["--model", "m", "--prompt", "huge"]).contains("unknown prompt 'huge'"));
        assert!(msg(&["--model", "m", "--fa", "maybe"]).starts_with("--flash-attn"));
        assert!(msg(&["--model", "m", "--ngl", "-5"]).starts_with("--n-gpu-layers"));
        assert!(msg(&["--model", "m", "--threads", "0"]).starts_with("--threads"));
    }
}
