//! `--compare-http`: an in-process engine against the same engine served over HTTP (llama.cpp
//! against llama-server of the same build; vLLM against `vllm serve` from the same environment),
//! interleaved run by run, and the report of what the serving layer costs and where it goes.
//!
//! Both sides evaluate identical tokens: the in-process engine applies the chat template (or takes
//! the raw prompt), and the HTTP side sends that same text to `/v1/completions`, so the server adds
//! no template of its own. llama-server gets the in-process settings (model, context, threads, batch
//! sizes, GPU layers, flash attention), one slot and no prompt cache; requests ask for the
//! in-process sampler chain (greedy by default), the same max tokens and ignore-eos. `vllm serve`
//! gets the in-process engine arguments (prefix caching off, the same KV cache size and threads).

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;

use crate::engine::http::{Api, Flavor, HttpEngine, HttpSettings};
use crate::engine::llamacpp::{LlamaCppEngine, LlamaCppSettings};
use crate::engine::vllm::{self, VllmSettings};
use crate::engine::VllmEngine;
use crate::engine::{Engine, Outcome, PreparedPrompt};
use crate::measure::significance::{welch, Moments};
use crate::measure::{RunMetrics, StopFlag, Summary};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::results::http_comparison::{
    ComparedServer, HttpComparison, HttpSplit, MetricComparison, PromptComparison, Split, Spread,
    TextDifference,
};
use crate::server::{self, ServerProcess, ServerSettings};
use crate::suite::{self, EngineRuns, PromptRuns, SuiteEnd};

/// Results key of llama-server's side; the in-process side keeps `llamacpp`.
pub const HTTP_KEY: &str = "llamacpp-http";

/// Results key of `vllm serve`'s side; the in-process side keeps `vllm`.
pub const VLLM_HTTP_KEY: &str = "vllm-http";

/// Confidence level of the intervals.
pub const CONFIDENCE: f64 = 0.95;

const METHOD: &str = "in-process and HTTP runs interleaved run by run; the in-process prompt text \
(after the chat template) sent as is to llama-server's /v1/completions; same model and settings, \
one server slot, prompt cache off, the in-process sampler chain (temperature, then the seeded draw), \
same max tokens and ignore-eos";

const VLLM_METHOD: &str = "in-process and HTTP runs interleaved run by run; the in-process prompt \
text (after the chat template) sent as is to vllm serve's /v1/completions; the same model, engine \
arguments, KV cache size and threads, prefix caching off; greedy unless a temperature is given, \
same max tokens and ignore-eos";

/// What a comparison run came to.
pub struct Compared {
    /// In-process runs, then HTTP runs.
    pub runs: Vec<EngineRuns>,
    /// How the suite ended.
    pub end: SuiteEnd,
    /// An error that spoiled the runs after they started (the server died).
    pub fatal: Option<anyhow::Error>,
    /// The comparison, when both sides ran.
    pub comparison: Option<HttpComparison>,
}

/// Loads the model in-process, starts llama-server with the same settings, runs the plan on both
/// interleaved, stops the server and compares.
pub fn measure(
    settings: &LlamaCppSettings,
    llama_server: Option<&Path>,
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Compared> {
    let binary = server::find_binary(llama_server)?;
    progress.status(&format!("loading {}", settings.model.display()));
    let mut inproc = LlamaCppEngine::load(settings.clone())?;
    let prepared = suite::prepare_all(&mut [&mut inproc], &plan.prompts, &plan.suite.mode)?
        .pop()
        .context("no prompts were prepared")?;
    progress.status("starting llama-server");
    let started = ServerProcess::start(&ServerSettings::matching(settings, binary), stop)?;
    if let Some(build) = started.build_mismatch() {
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
        ..HttpSettings::new(HTTP_KEY, started.url(), "--llama-server", Api::Completions)
    };
    let http = HttpEngine::with_server(http_settings, started)?;
    Ok(run_pair(
        &mut inproc,
        prepared,
        http,
        METHOD,
        plan,
        stop,
        progress,
    ))
}

/// Loads vLLM in-process, starts `vllm serve` from the same environment with the same engine
/// arguments, runs the plan on both interleaved, stops the server and compares.
pub fn measure_vllm(
    settings: &VllmSettings,
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> anyhow::Result<Compared> {
    progress.status(&format!(
        "loading vLLM and {} (a first start takes a minute)",
        settings.model.display()
    ));
    let mut inproc = VllmEngine::load(settings.clone())?;
    let prepared = suite::prepare_all(&mut [&mut inproc], &plan.prompts, &plan.suite.mode)?
        .pop()
        .context("no prompts were prepared")?;
    let launch = vllm::serve_launch(settings, inproc.python_env(), &inproc.info());
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
        ..HttpSettings::new(
            VLLM_HTTP_KEY,
            started.url(),
            "--compare-http",
            Api::Completions,
        )
    };
    let http = HttpEngine::with_server(http_settings, started)?;
    Ok(run_pair(
        &mut inproc,
        prepared,
        http,
        VLLM_METHOD,
        plan,
        stop,
        progress,
    ))
}

/// Runs the prepared prompts on the in-process engine and on the server, interleaved, then stops
/// the server and compares.
fn run_pair(
    inproc: &mut dyn Engine,
    prepared: Vec<PreparedPrompt>,
    mut http: HttpEngine,
    method: &str,
    plan: &Plan,
    stop: &StopFlag,
    progress: &Progress,
) -> Compared {
    let server_info = http.server().map(|s| ComparedServer {
        name: Some(s.name().to_string()),
        binary: s.binary().display().to_string(),
        build: s.build(),
        url: s.url().to_string(),
        endpoint: Api::Completions.path().to_string(),
        args: s.args().to_vec(),
        ready_ms: s.ready_ms(),
    });
    let (runs, end) = {
        let mut engines: [&mut dyn Engine; 2] = [inproc, &mut http];
        let both = vec![prepared.clone(), prepared];
        suite::run(&mut engines, both, &plan.suite, stop, progress)
    };
    // A dead server stops the suite (the engine says `Stopped`); that is an error, not a Ctrl-C.
    let fatal = http
        .server_exit(std::time::Duration::ZERO)
        .map(anyhow::Error::msg)
        .or_else(|| prompt_tokens_differ(&runs, server_info.as_ref()));
    let end = match (&fatal, stop.is_raised()) {
        (Some(_), false) => SuiteEnd::Complete,
        _ => end,
    };
    drop(http); // stops the server
    let comparison = match (runs.as_slice(), server_info) {
        ([a, b], Some(info)) => Some(build(a, b, info, method)),
        _ => None,
    };
    Compared {
        runs,
        end,
        fatal,
        comparison,
    }
}

/// An error when the server evaluated another number of prompt tokens than the in-process engine
/// for some prompt: the two did not run the same thing, so the comparison would mislead.
fn prompt_tokens_differ(
    runs: &[EngineRuns],
    server: Option<&ComparedServer>,
) -> Option<anyhow::Error> {
    let [a, b] = runs else { return None };
    let name = server.and_then(|s| s.name.clone()).unwrap_or_default();
    let fix = if name == "llama-server" {
        "use llama-server of the in-process build (vendor/build-llama-tools.sh), or pass another with --llama-server PATH"
    } else {
        "use a server of the same version and settings as the in-process engine"
    };
    let first = |p: &PromptRuns| successes(p).first().map(|(m, _)| m.prompt_tokens);
    a.prompts.iter().zip(&b.prompts).find_map(|(pa, pb)| {
        match (first(pa), first(pb)) {
            (Some(ours), Some(theirs)) if ours != theirs => Some(anyhow::anyhow!(
                "{name} evaluated {theirs} prompt tokens of '{}' where the in-process engine evaluated {ours}: the two did not run the same prompt, so they cannot be compared; {fix}",
                pa.prepared.name
            )),
            _ => None,
        }
    })
}

fn spread(xs: &[f64]) -> Option<Spread> {
    let m = Moments::of(xs)?;
    Some(Spread {
        mean: m.mean,
        std: m.std,
        n: m.n,
    })
}

fn mean(xs: &[f64]) -> Option<f64> {
    Summary::of(xs).map(|s| s.mean)
}

type Successes<'a> = Vec<&'a (RunMetrics, Outcome)>;

fn successes(p: &PromptRuns) -> Successes<'_> {
    p.runs.iter().filter_map(|r| r.as_ref().ok()).collect()
}

fn metric(
    a: &Successes<'_>,
    b: &Successes<'_>,
    f: impl Fn(&RunMetrics) -> Option<f64>,
) -> Option<MetricComparison> {
    let xa: Vec<f64> = a.iter().filter_map(|(m, _)| f(m)).collect();
    let xb: Vec<f64> = b.iter().filter_map(|(m, _)| f(m)).collect();
    let (ma, mb) = (Moments::of(&xa)?, Moments::of(&xb)?);
    Some(MetricComparison {
        inprocess: spread(&xa)?,
        http: spread(&xb)?,
        welch: welch(ma, mb, CONFIDENCE),
    })
}

/// Character offset where `a` and `b` part, if they do.
fn first_difference(a: &str, b: &str) -> Option<(usize, usize)> {
    let mut chars = 0;
    for ((i, ca), cb) in a.char_indices().zip(b.chars()) {
        if ca != cb {
            return Some((chars, i));
        }
        chars += 1;
    }
    (a.len() != b.len()).then(|| (chars, a.len().min(b.len())))
}

fn excerpt(s: &str, byte: usize) -> String {
    let start = s[..byte.min(s.len())]
        .char_indices()
        .rev()
        .nth(19)
        .map_or(0, |(i, _)| i);
    s[start..].chars().take(60).collect()
}

fn split(inprocess: &[f64], server: &[f64], http: &[f64]) -> Option<Split> {
    let (i, s, h) = (mean(inprocess)?, mean(server)?, mean(http)?);
    Some(Split {
        inprocess_ms: i,
        server_ms: s,
        http_ms: h,
        server_minus_inprocess_ms: s - i,
        client_overhead_ms: h - s,
    })
}

fn http_split(a: &Successes<'_>, b: &Successes<'_>) -> Option<HttpSplit> {
    let server = |f: &dyn Fn(&crate::engine::ServerTimings) -> Option<f64>| -> Vec<f64> {
        b.iter()
            .filter_map(|(_, o)| o.server.as_ref().and_then(f))
            .collect()
    };
    let prompt_ms = server(&|s| s.prompt_ms);
    let predicted_ms = server(&|s| s.predicted_ms);
    let per_token = server(&|s| match (s.predicted_ms, s.predicted_n) {
        (Some(ms), Some(n)) if n > 1 => Some(ms / (n - 1) as f64),
        _ => None,
    });
    let ttft = |r: &Successes<'_>| r.iter().map(|(m, _)| m.ttft_ms).collect::<Vec<_>>();
    let itl = |r: &Successes<'_>| {
        r.iter()
            .filter_map(|(m, _)| m.itl_mean_ms)
            .collect::<Vec<_>>()
    };
    Some(HttpSplit {
        ttft: split(&ttft(a), &prompt_ms, &ttft(b))?,
        per_token: split(&itl(a), &per_token, &itl(b))?,
        headers_ms: spread(&server(&|s| s.headers_ms)),
        first_byte_ms: spread(&server(&|s| s.first_byte_ms)),
        stream_tail_ms: spread(
            &b.iter()
                .map(|(m, _)| m.total_ms - m.e2e_latency_ms)
                .collect::<Vec<_>>(),
        ),
        server_prompt_ms: spread(&prompt_ms)?,
        server_predicted_ms: spread(&predicted_ms)?,
    })
}

fn prompt_comparison(pa: &PromptRuns, pb: &PromptRuns) -> PromptComparison {
    let (a, b) = (successes(pa), successes(pb));
    let reference = a.first().map(|(_, o)| o.text.as_str());
    let mut first = None;
    let mut matching = [0u32; 2];
    for (side, runs, name) in [(0, &pa.runs, "inprocess"), (1, &pb.runs, "http")] {
        for (i, r) in runs.iter().enumerate() {
            let (Ok((_, o)), Some(reference)) = (r, reference) else {
                continue;
            };
            match first_difference(reference, &o.text) {
                None => matching[side] += 1,
                Some((at_char, byte)) if first.is_none() => {
                    first = Some(TextDifference {
                        run: format!("{name} run {}", i + 1),
                        at_char,
                        inprocess: excerpt(reference, byte),
                        other: excerpt(&o.text, byte),
                    });
                }
                Some(_) => {}
            }
        }
    }
    let metrics = [
        ("ttft_ms", metric(&a, &b, |m| Some(m.ttft_ms))),
        ("itl_mean_ms", metric(&a, &b, |m| m.itl_mean_ms)),
        ("tps", metric(&a, &b, |m| m.tps)),
        ("e2e_latency_ms", metric(&a, &b, |m| Some(m.e2e_latency_ms))),
        ("total_ms", metric(&a, &b, |m| Some(m.total_ms))),
        (
            "tokens_generated",
            metric(&a, &b, |m| Some(m.tokens_generated as f64)),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
    .collect();
    let prompt_tokens = |r: &Successes<'_>| r.first().map(|(m, _)| m.prompt_tokens);
    let compared = [a.len() as u32, b.len() as u32];
    PromptComparison {
        same_text: reference.is_some() && matching == compared && !b.is_empty(),
        http_runs_matching: matching[1],
        inprocess_runs_matching: matching[0],
        runs_compared: compared,
        first_difference: first,
        prompt_tokens: [prompt_tokens(&a), prompt_tokens(&b)],
        metrics,
        http_split: http_split(&a, &b),
    }
}

/// Compares the in-process runs `a` with the HTTP runs `b`, prompt by prompt.
pub fn build(
    a: &EngineRuns,
    b: &EngineRuns,
    server: ComparedServer,
    method: &str,
) -> HttpComparison {
    HttpComparison {
        inprocess_key: a.info.key.clone(),
        http_key: b.info.key.clone(),
        method: method.into(),
        server,
        confidence: CONFIDENCE,
        prompts: a
            .prompts
            .iter()
            .filter_map(|pa| {
                let pb = b
                    .prompts
                    .iter()
                    .find(|p| p.prepared.name == pa.prepared.name)?;
                Some((pa.prepared.name.clone(), prompt_comparison(pa, pb)))
            })
            .collect(),
    }
}

fn signed(x: f64, digits: usize) -> String {
    format!("{x:+.digits$}")
}

/// The printed report: per prompt, both sides, the difference with its interval, the HTTP side
/// taken apart, and whether the texts match.
pub fn render(c: &HttpComparison) -> String {
    let mut out = String::new();
    let rule = "=".repeat(100);
    let pct = (c.confidence * 100.0).round();
    let _ = writeln!(out, "{rule}");
    let engine = if c.inprocess_key == "vllm" {
        "vLLM"
    } else {
        "llama.cpp"
    };
    let _ = writeln!(
        out,
        "IN-PROCESS vs HTTP · {engine} in-process ({}) vs {}{} {}{}",
        c.inprocess_key,
        c.server.name.as_deref().unwrap_or("llama-server"),
        c.server.build.map(|b| format!(" b{b}")).unwrap_or_default(),
        c.server.url,
        c.server.endpoint
    );
    let _ = writeln!(
        out,
        "difference = HTTP − in-process with its {pct}% confidence interval (Welch); ratio = HTTP / in-process"
    );
    let _ = writeln!(out, "{rule}");
    let rows = [
        ("ttft_ms", "TTFT ms", 2),
        ("itl_mean_ms", "ITL ms", 3),
        ("tps", "TPS tok/s", 1),
        ("e2e_latency_ms", "E2E ms", 1),
        ("total_ms", "total ms", 1),
    ];
    for (name, p) in &c.prompts {
        let tokens = p
            .metrics
            .get("tokens_generated")
            .map(|m| (m.inprocess.mean, m.http.mean));
        let _ = writeln!(
            out,
            "{name}: {} generated tokens; prompt tokens {}",
            tokens.map_or("-".into(), |(a, b)| if a == b {
                format!("{a:.0}")
            } else {
                format!("{a:.1} in-process / {b:.1} HTTP")
            }),
            match p.prompt_tokens {
                [Some(a), Some(b)] if a == b => format!("{a}, the same both ways"),
                [a, b] => format!(
                    "{} in-process / {} HTTP",
                    a.map_or("-".into(), |x| x.to_string()),
                    b.map_or("-".into(), |x| x.to_string())
                ),
            }
        );
        let _ = writeln!(
            out,
            "  {:<10} {:>18} {:>18} {:>30} {:>8}",
            "metric",
            "in-process",
            "HTTP",
            format!("difference [{pct}% CI]"),
            "ratio"
        );
        for (key, label, d) in rows {
            let Some(m) = p.metrics.get(key) else {
                continue;
            };
            let (diff, ratio) = match &m.welch {
                Some(w) => (
                    format!(
                        "{} [{}, {}]{}",
                        signed(w.difference, d),
                        signed(w.difference_ci_low, d),
                        signed(w.difference_ci_high, d),
                        if w.within_noise { " ~" } else { "  " }
                    ),
                    format!("{:.3}", w.ratio),
                ),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "  {:<10} {:>18} {:>18} {:>30} {:>8}",
                label,
                format!("{:.d$} ± {:.d$}", m.inprocess.mean, m.inprocess.std),
                format!("{:.d$} ± {:.d$}", m.http.mean, m.http.std),
                diff,
                ratio
            );
        }
        if let Some(s) = &p.http_split {
            let _ = writeln!(out, "  HTTP taken apart (means):");
            let _ = writeln!(
                out,
                "    first token  in-process {:.2} ms · server prompt_ms {:.2} ({}) · client {:.2} ({} on top of the server)",
                s.ttft.inprocess_ms,
                s.ttft.server_ms,
                signed(s.ttft.server_minus_inprocess_ms, 2),
                s.ttft.http_ms,
                signed(s.ttft.client_overhead_ms, 2)
            );
            let _ = writeln!(
                out,
                "    per token    in-process {:.3} ms · server predicted_ms/(n−1) {:.3} ({}) · client {:.3} ({} on top of the server)",
                s.per_token.inprocess_ms,
                s.per_token.server_ms,
                signed(s.per_token.server_minus_inprocess_ms, 3),
                s.per_token.http_ms,
                signed(s.per_token.client_overhead_ms, 3)
            );
            let f = |x: &Option<Spread>| x.map_or("-".into(), |s| format!("{:.2} ms", s.mean));
            let _ = writeln!(
                out,
                "    response headers at {} · first byte at {} · stream end {} after the last token",
                f(&s.headers_ms),
                f(&s.first_byte_ms),
                f(&s.stream_tail_ms)
            );
        }
        let [na, nb] = p.runs_compared;
        if p.same_text {
            let _ = writeln!(
                out,
                "  text: identical both ways ({nb}/{nb} HTTP runs, {na}/{na} in-process runs)"
            );
        } else {
            let _ = writeln!(
                out,
                "  text: DIFFERS ({}/{nb} HTTP runs and {}/{na} in-process runs match the first in-process run)",
                p.http_runs_matching, p.inprocess_runs_matching
            );
            if let Some(d) = &p.first_difference {
                let _ = writeln!(
                    out,
                    "    {} parts at character {}: in-process {:?} vs {:?}",
                    d.run, d.at_char, d.inprocess, d.other
                );
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "~ marks a difference within noise (the interval contains 0). Results keys: {} (in-process), {} (HTTP).",
        c.inprocess_key, c.http_key
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_differences_are_located_by_character() {
        assert_eq!(first_difference("abc", "abc"), None);
        assert_eq!(first_difference("abc", "abd"), Some((2, 2)));
        assert_eq!(first_difference("ab", "abc"), Some((2, 2)));
        assert_eq!(first_difference("héllo", "hello"), Some((1, 1)));
        assert_eq!(first_difference("ééa", "ééb"), Some((2, 4)));
        assert_eq!(
            excerpt("0123456789012345678901234567890", 25),
            "56789012345678901234567890"
        );
    }

    #[test]
    fn splits_add_up() {
        let s = split(&[10.0, 12.0], &[10.5, 12.5], &[12.0, 14.0]).unwrap();
        assert!(
            (s.server_minus_inprocess_ms + s.client_overhead_ms - (s.http_ms - s.inprocess_ms))
                .abs()
                < 1e-12
        );
        assert_eq!(
            (s.server_minus_inprocess_ms, s.client_overhead_ms),
            (0.5, 1.5)
        );
        assert_eq!(split(&[], &[1.0], &[1.0]), None);
    }
}
