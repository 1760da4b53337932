//! `--compare-http`: an in-process engine against the same engine served over HTTP (llama.cpp
//! against llama-server of the same build; vLLM against `vllm serve` from the same environment),
//! interleaved run by run, and the report of what the serving layer costs and where it goes.
//!
//! Both sides evaluate identical tokens: the in-process engine applies the chat template (or takes
//! the raw prompt), and the HTTP side sends that same text to `/v1/completions`, so the server adds
//! no template of its own; with `--api chat` both take the same messages and the server's rendering
//! is checked against the in-process one before the runs (`chat`). llama-server gets the in-process settings (model, context, threads, batch
//! sizes, GPU layers, flash attention), one slot and no prompt cache; requests ask for the
//! in-process sampler chain (greedy by default), the same max tokens and ignore-eos. `vllm serve`
//! gets the in-process engine arguments (prefix caching off, the same KV cache size and threads).

mod analysis;
pub mod chat;
pub mod llama_server;
pub mod load;
mod pairing;
pub mod vllm_serve;

pub use analysis::build;
pub use pairing::{choose, DeviceNeed};

use std::path::Path;

use anyhow::Context;

use crate::engine::http::{Api, Flavor, HttpEngine, HttpSettings};
use crate::engine::llamacpp::{LlamaCppEngine, LlamaCppSettings};
use crate::engine::vllm::VllmSettings;
use crate::engine::VllmEngine;
use crate::engine::{Engine, EngineInfo, PreparedPrompt, PromptMode};
use crate::measure::{self, StopFlag};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::results::http_comparison::{ComparedServer, HttpComparison, PairingRecord};
use crate::server::{Launch, ServerProcess};
use crate::suite::{self, Measured, Pairing, SuiteEnd};
use llama_server::ServerSettings;

/// Results key of llama-server's side; the in-process side keeps `llamacpp`.
pub const HTTP_KEY: &str = "llamacpp-http";

/// Results key of `vllm serve`'s side; the in-process side keeps `vllm`.
pub const VLLM_HTTP_KEY: &str = "vllm-http";

/// Confidence level of the intervals.
pub const CONFIDENCE: f64 = 0.95;

const METHOD: &str = "the in-process prompt text (after the chat template) sent as is to \
llama-server's /v1/completions; same model and settings (swa_full included), one server slot, \
the same llama.cpp sampler chain on both sides (EOG bias when ignoring EOS, temperature, seeded \
draw; greedy at temperature 0), same max tokens and ignore-eos, the end-of-generation token \
counted on both sides";

const NO_CACHE: &str = "prompt cache off on both sides (in-process: the sequence's KV cells \
dropped at the request start, metadata only, as llama-server does)";

const CACHE: &str = "--prefix-cache on: both sides keep the KV cells of the prefix a prompt \
shares with the previous request and evaluate only the rest (in-process: the sequence's cells \
kept; llama-server: cache_prompt)";

const CHAT_METHOD: &str = "one user message per prompt sent to llama-server's \
/v1/chat/completions, which renders the model's template (--jinja) with the same \
chat_template_kwargs; the in-process engine renders the same template with minijinja, and the \
server's rendering (/apply-template) is compared with it byte for byte before the runs; same \
model and settings (swa_full included), one server slot, the same llama.cpp sampler chain on both \
sides, same max tokens and ignore-eos, the end-of-generation token counted on both sides";

const VLLM_CHAT_METHOD: &str = "one user message per prompt sent to vllm serve's \
/v1/chat/completions, which renders the tokenizer's template with the same chat_template_kwargs; \
the in-process engine renders it with the same tokenizer, and the token ids of the server's \
rendering (/tokenize of the messages) are compared with the in-process prompt's before the runs; \
the same model, engine arguments, KV cache size and threads, prefix caching off; greedy unless a \
temperature is given, same max tokens and ignore-eos";

const VLLM_METHOD: &str = "the in-process prompt text (after the chat template) sent as is to \
vllm serve's /v1/completions; the same model, engine arguments, KV cache size and threads, prefix \
caching off; greedy unless a temperature is given, same max tokens and ignore-eos";

/// What each GPU must hold for one copy of the llama.cpp engine (weights, KV cache, compute
/// buffers off the CPU), from llama.cpp's load report and its device list.
fn llamacpp_needs(engine: &LlamaCppEngine) -> Vec<DeviceNeed> {
    let info = engine.info();
    let total = |device: &str| {
        info.details
            .get("backend_devices")
            .and_then(|d| d.as_array())
            .and_then(|devs| {
                devs.iter()
                    .find(|d| d.get("name").and_then(|n| n.as_str()) == Some(device))
            })
            .and_then(|d| d.get("memory_total_bytes"))
            .and_then(|m| m.as_u64())
    };
    let mut needs: Vec<DeviceNeed> = Vec::new();
    for b in &engine.load_report().buffers {
        let device = crate::engine::llamacpp::device_of(&b.name);
        if device == "CPU" {
            continue;
        }
        match needs.iter_mut().find(|n| n.device == device) {
            Some(n) => n.one_copy_bytes += b.bytes,
            None => needs.push(DeviceNeed {
                total_bytes: total(&device),
                device,
                one_copy_bytes: b.bytes,
            }),
        }
    }
    needs
}

/// What vLLM needs per GPU: on the CPU nothing; on a GPU its `--gpu-memory-utilization` share of
/// the device (both copies take that share).
fn vllm_needs(settings: &VllmSettings, info: &EngineInfo) -> Vec<DeviceNeed> {
    let device = info
        .details
        .get("device")
        .and_then(|d| d.as_str())
        .unwrap_or("cpu");
    if device.starts_with("cpu") {
        return Vec::new();
    }
    const SHARE: u64 = 1 << 40;
    vec![DeviceNeed {
        device: device.to_string(),
        one_copy_bytes: (settings.gpu_memory_utilization * SHARE as f64) as u64,
        total_bytes: Some(SHARE),
    }]
}

/// Loads the model in-process, starts llama-server with the same settings, runs the plan on both
/// (interleaved in ABBA order, or in blocks when two copies do not fit), stops the server and
/// compares.
pub fn measure(
    settings: &LlamaCppSettings,
    llama_server: Option<&Path>,
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    let binary = llama_server::find_binary(llama_server)?;
    let api = plan.compare_api;
    if api == Api::Chat {
        chat::check_mode(&plan.suite.mode)?;
    }
    progress.status(&format!("loading {}", settings.model.display()));
    let mut inproc = measure::time_load(|_| LlamaCppEngine::load(settings.clone()))?;
    if let Some(w) = inproc.offload_warning() {
        progress.println(&w);
    }
    let prepared = suite::prepare_all(&mut [&mut inproc], &plan.prompts, &plan.suite.mode)?
        .pop()
        .context("no prompts were prepared")?;
    let chat_side = (api == Api::Chat)
        .then(|| chat_side(chat::Renderer::LlamaServer, plan, &prepared, |_| Ok(None)))
        .transpose()?;
    let (mode, reason) = choose(plan.pairing, &llamacpp_needs(&inproc));
    let pairing = PairingRecord {
        mode: mode.name().into(),
        requested: plan.pairing.name().into(),
        reason,
    };
    let mut launch = ServerSettings {
        prefix_cache: plan.suite.sampling.prefix_cache,
        ..ServerSettings::matching(settings, binary)
    }
    .launch();
    if let (Api::Chat, Some(file)) = (api, template_file(plan)) {
        launch.args.extend(["--chat-template-file".into(), file]);
    }
    let start = |progress: &Progress| -> anyhow::Result<HttpEngine> {
        progress.status("starting llama-server");
        let started = ServerProcess::launch(&launch, stop)?;
        if let Some(build) = llama_server::build_mismatch(&started) {
            eprintln!(
                "warning: llama-server is build {build} but the in-process engine is b{}: the comparison mixes builds",
                crate::engine::llamacpp::LLAMA_CPP_BUILD
            );
        }
        eprintln!(
            "llama-server{} ready on {} (pid {}) after {:.0} ms",
            started
                .build()
                .map(|b| format!(" b{b}"))
                .unwrap_or_default(),
            started.url(),
            started.pid(),
            started.ready_ms()
        );
        let http_settings = HttpSettings {
            flavor: Some(Flavor::LlamaServer),
            inprocess_sampling: true,
            prefix_cache: plan.suite.sampling.prefix_cache,
            ..HttpSettings::new(HTTP_KEY, started.url(), "--llama-server", api)
        };
        Ok(measure::time_load(|_| {
            HttpEngine::with_server(http_settings, started)
        })?)
    };
    run_sides(
        Box::new(inproc),
        prepared,
        &start,
        (
            &format!(
                "{}; {}",
                if api == Api::Chat {
                    CHAT_METHOD
                } else {
                    METHOD
                },
                if plan.suite.sampling.prefix_cache {
                    CACHE
                } else {
                    NO_CACHE
                }
            ),
            pairing,
            chat_side.as_ref(),
        ),
        plan,
        stop,
        progress,
    )
}

/// `--chat-template-file`, as a server flag's value.
fn template_file(plan: &Plan) -> Option<String> {
    match &plan.suite.mode {
        PromptMode::Chat { options, .. } => options
            .template_file
            .as_ref()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
            .map(|p| p.display().to_string()),
        PromptMode::Raw => None,
    }
}

/// The chat side of the comparison: the in-process prompts (with their token ids from `ids`)
/// and the messages the server gets.
fn chat_side(
    renderer: chat::Renderer,
    plan: &Plan,
    prepared: &[PreparedPrompt],
    ids: impl FnMut(&str) -> Result<Option<Vec<i64>>, crate::engine::EngineError>,
) -> anyhow::Result<chat::ChatSide> {
    Ok(chat::ChatSide {
        renderer,
        prompts: chat::inprocess_prompts(&plan.prompts, prepared, ids)?,
        http_prepared: chat::http_prompts(&plan.prompts, prepared),
        kwargs: chat::kwargs(&plan.suite.mode),
    })
}

/// Loads vLLM in-process, starts `vllm serve` from the same environment with the same engine
/// arguments, runs the plan on both, stops the server and compares.
pub fn measure_vllm(
    settings: &VllmSettings,
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    let api = plan.compare_api;
    if api == Api::Chat {
        chat::check_mode(&plan.suite.mode)?;
    }
    progress.status(&format!(
        "loading vLLM and {} (a first start takes a minute)",
        settings.model.display()
    ));
    let mut inproc = measure::time_load(|clock| VllmEngine::load(settings.clone(), clock))?;
    let prepared = suite::prepare_all(&mut [&mut inproc], &plan.prompts, &plan.suite.mode)?
        .pop()
        .context("no prompts were prepared")?;
    let chat_side = (api == Api::Chat)
        .then(|| {
            chat_side(chat::Renderer::VllmServe, plan, &prepared, |text| {
                inproc.prompt_token_ids(text).map(Some)
            })
        })
        .transpose()?;
    let info = inproc.info();
    let mut launch: Launch = vllm_serve::serve_launch(settings, inproc.python_env(), &info);
    if let (Api::Chat, Some(file)) = (api, template_file(plan)) {
        launch.args.extend(["--chat-template".into(), file]);
    }
    let (mode, reason) = choose(plan.pairing, &vllm_needs(settings, &info));
    let pairing = PairingRecord {
        mode: mode.name().into(),
        requested: plan.pairing.name().into(),
        reason,
    };
    let start = |progress: &Progress| -> anyhow::Result<HttpEngine> {
        progress.status("starting vllm serve (it loads the model again; a minute or more)");
        let started = ServerProcess::launch(&launch, stop)?;
        eprintln!(
            "vllm serve ready on {} (pid {}) after {:.0} ms",
            started.url(),
            started.pid(),
            started.ready_ms()
        );
        let http_settings = HttpSettings {
            flavor: Some(Flavor::Vllm),
            prefix_cache: plan.suite.sampling.prefix_cache,
            ..HttpSettings::new(VLLM_HTTP_KEY, started.url(), "--compare-http", api)
        };
        Ok(measure::time_load(|_| {
            HttpEngine::with_server(http_settings, started)
        })?)
    };
    run_sides(
        Box::new(inproc),
        prepared,
        &start,
        (
            if api == Api::Chat {
                VLLM_CHAT_METHOD
            } else {
                VLLM_METHOD
            },
            pairing,
            chat_side.as_ref(),
        ),
        plan,
        stop,
        progress,
    )
}

fn server_info(http: &HttpEngine, api: Api) -> Option<ComparedServer> {
    http.server().map(|s| ComparedServer {
        name: Some(s.name().to_string()),
        binary: s.binary().display().to_string(),
        build: s.build(),
        url: s.url().to_string(),
        endpoint: api.path().to_string(),
        args: s.args().to_vec(),
        ready_ms: s.ready_ms(),
    })
}

/// Runs the prepared prompts on the in-process engine and on the server, interleaved or in
/// blocks as `pairing` says, then stops the server and compares.
fn run_sides<'a>(
    mut inproc: Box<dyn Engine + 'a>,
    prepared: Vec<PreparedPrompt>,
    start: &dyn Fn(&Progress) -> anyhow::Result<HttpEngine>,
    (method, pairing, chat): (&str, PairingRecord, Option<&chat::ChatSide>),
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    let blocks = pairing.mode == Pairing::Blocks.name();
    let http_prepared = chat.map_or_else(|| prepared.clone(), |c| c.http_prepared.clone());
    let mut checks = Vec::new();
    let mut started = |progress: &Progress| -> anyhow::Result<HttpEngine> {
        let mut http = start(progress)?;
        if let Some(c) = chat {
            checks = c.check(&mut http);
        }
        Ok(http)
    };
    let (runs, mut end, mut http) = if blocks {
        eprintln!(
            "pairing: blocks ({}): every in-process run, then the model is unloaded and the server started",
            pairing.reason
        );
        let (runs, end) = suite::run(
            &mut [inproc.as_mut()],
            vec![prepared],
            &plan.suite,
            stop,
            progress,
        );
        drop(inproc); // one copy of the model at a time
        if end == SuiteEnd::Interrupted {
            return Ok(Measured {
                runs,
                end,
                fatal: None,
                comparison: None,
            });
        }
        let mut http = started(progress)?;
        let (http_runs, end) = suite::run(
            &mut [&mut http as &mut dyn Engine],
            vec![http_prepared],
            &plan.suite,
            stop,
            progress,
        );
        (
            runs.into_iter().chain(http_runs).collect::<Vec<_>>(),
            end,
            http,
        )
    } else {
        let mut http = started(progress)?;
        let (runs, end) = {
            let mut engines: [&mut dyn Engine; 2] = [inproc.as_mut(), &mut http];
            suite::run(
                &mut engines,
                vec![prepared, http_prepared],
                &plan.suite,
                stop,
                progress,
            )
        };
        (runs, end, http)
    };
    let info = server_info(&http, plan.compare_api);
    // A dead server stops the suite (the engine says `Stopped`); that is an error, not a Ctrl-C.
    let fatal = http
        .server_exit(std::time::Duration::ZERO)
        .map(anyhow::Error::msg)
        .or_else(|| analysis::prompt_tokens_differ(&runs, info.as_ref()));
    let fatal = match fatal {
        Some(e) if checks.iter().any(|(_, c)| !c.equal) => Some(e.context(
            "with --api chat the server rendered another prompt from the same messages (warned before the runs): use --api completions to send the in-process prompt text as is",
        )),
        other => other,
    };
    if fatal.is_some() && !stop.is_raised() {
        end = SuiteEnd::Complete;
    }
    drop(http); // stops the server
    let mut comparison: Option<HttpComparison> = match (runs.as_slice(), info) {
        ([a, b], Some(info)) => Some(build(a, b, info, method, pairing)),
        _ => None,
    };
    if let Some(c) = comparison.as_mut() {
        for (name, check) in checks {
            if let Some(p) = c.prompts.get_mut(&name) {
                p.chat_prompt = Some(check);
            }
        }
    }
    Ok(Measured {
        runs,
        end,
        fatal,
        comparison,
    })
}
