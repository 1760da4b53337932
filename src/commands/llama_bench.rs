//! `inproc-bench llama-bench`: maps llama-bench's flags onto the tests of
//! [`crate::engine::llamacpp::bench_tests`], runs each test's repetitions (interleaved ABBA with
//! the llama-bench binary under `--against llama-bench`) and prints [`crate::lbench`]'s records.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::cli::LlamaBenchArgs;
use crate::engine::llamacpp::bench_tests::{BenchModel, CacheType, ModelFacts, TestParams};
use crate::engine::llamacpp::{FlashAttn, LLAMA_CPP_BUILD};
use crate::lbench::against::{self, Ratio};
use crate::lbench::output::{render, Format};
use crate::lbench::Record;
use crate::plan::parse_list;

/// The tests of one sweep point: (n_prompt, n_gen), pp first, then tg, then pg (as llama-bench).
fn tests(a: &LlamaBenchArgs) -> anyhow::Result<Vec<(u32, u32)>> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    out.extend(
        parse_list::<u32>("-p", &a.n_prompt)?
            .into_iter()
            .filter(|&p| p > 0)
            .map(|p| (p, 0)),
    );
    out.extend(
        parse_list::<u32>("-n", &a.n_gen)?
            .into_iter()
            .filter(|&g| g > 0)
            .map(|g| (0, g)),
    );
    for pg in &a.pg {
        match parse_list::<u32>("-pg", pg)?.as_slice() {
            [p, g] if *p > 0 || *g > 0 => out.push((*p, *g)),
            _ => bail!("-pg {pg}: give two numbers, prompt and generated tokens, e.g. -pg 512,128"),
        }
    }
    if out.is_empty() {
        bail!("nothing to measure: -p and -n are 0 and no -pg is given: pass -p 512, -n 128 or -pg 512,128");
    }
    Ok(out)
}

fn positive(flag: &'static str, s: &str) -> anyhow::Result<Vec<u32>> {
    let v = parse_list::<u32>(flag, s)?;
    if v.contains(&0) {
        bail!("{flag}: 0 is not allowed: pass a value of at least 1");
    }
    Ok(v)
}

fn fa_code(fa: FlashAttn) -> i32 {
    match fa {
        FlashAttn::Auto => -1,
        FlashAttn::On => 1,
        FlashAttn::Off => 0,
    }
}

/// The in-process record of one test, before its samples.
fn base_record(
    facts: &ModelFacts,
    ngl: i32,
    p: &TestParams,
    cpu: &str,
    provenance: Value,
) -> Record {
    let mut backends: Vec<String> = llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .map(|d| d.backend)
        .collect();
    backends.dedup();
    Record {
        build_commit: "llama-cpp-2-0.1.160".into(),
        build_number: LLAMA_CPP_BUILD,
        cpu_info: cpu.to_string(),
        gpu_info: String::new(),
        backends: backends.join(","),
        model_filename: facts.filename.display().to_string(),
        model_type: facts.model_type.clone(),
        model_size: facts.size,
        model_n_params: facts.n_params,
        n_batch: p.n_batch,
        n_ubatch: p.n_ubatch,
        n_threads: p.threads,
        type_k: p.type_k.0.into(),
        type_v: p.type_v.0.into(),
        n_gpu_layers: ngl,
        flash_attn: fa_code(p.flash_attn),
        n_prompt: p.n_prompt,
        n_gen: p.n_gen,
        n_depth: p.n_depth,
        test_time: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        avg_ns: 0,
        stddev_ns: 0,
        avg_ts: 0.0,
        stddev_ts: 0.0,
        samples_ns: Vec::new(),
        samples_ts: Vec::new(),
        runner: "inproc-bench".into(),
        kv_tokens_before_test: None,
        provenance,
    }
}

/// Runs `inproc-bench llama-bench`.
pub fn run_llama_bench(a: &LlamaBenchArgs) -> anyhow::Result<ExitCode> {
    let format: Format = a.output.parse().map_err(|e: String| anyhow!("-o: {e}"))?;
    let tests = tests(a)?;
    let depths = parse_list::<u32>("-d", &a.n_depth)?;
    let threads = match &a.threads {
        Some(t) => positive("-t", t)?,
        None => vec![crate::plan::default_threads()],
    };
    let batches = positive("-b", &a.batch_size)?;
    let ubatches = positive("-ub", &a.ubatch_size)?;
    let ngls = parse_list::<i32>("-ngl", &a.n_gpu_layers)?;
    let ctks = parse_list::<CacheType>("-ctk", &a.cache_type_k)?;
    let ctvs = parse_list::<CacheType>("-ctv", &a.cache_type_v)?;
    let fas = a
        .flash_attn
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<FlashAttn>()
                .map_err(|e| anyhow!("-fa: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let binary = match a.against.as_deref() {
        None => None,
        Some("llama-bench") => Some(against::find_binary(a.llama_bench.as_deref())?),
        Some(other) => bail!("--against {other}: only llama-bench can be compared against: pass --against llama-bench"),
    };
    let warmup = !a.no_warmup;
    let system = crate::telemetry::system::system_info();
    let provenance = json!({
        "tool": crate::telemetry::system::tool_info(),
        "system": system,
        "engine": format!("llama.cpp b{LLAMA_CPP_BUILD}, in-process (llama-cpp-2 0.1.160)"),
        "settings": {"repetitions": a.repetitions, "warmup": warmup,
                     "tokens": "random ids for prompts and depth, BOS then random ids for generation (as llama-bench)",
                     "kv_clear": "metadata only, before every repetition (as llama-bench)"},
        "against": binary.as_ref().map(|b| b.display().to_string()),
    });
    let mut records = Vec::new();
    let mut ratios = Vec::new();
    for &ngl in &ngls {
        let model = BenchModel::load(&a.model, ngl)?;
        for &t in &threads {
            for &b in &batches {
                for &ub in &ubatches {
                    for &ctk in &ctks {
                        for &ctv in &ctvs {
                            for &fa in &fas {
                                for &d in &depths {
                                    for &(p, g) in &tests {
                                        let params = TestParams {
                                            n_prompt: p,
                                            n_gen: g,
                                            n_depth: d,
                                            n_batch: b,
                                            n_ubatch: ub,
                                            threads: t,
                                            type_k: ctk,
                                            type_v: ctv,
                                            flash_attn: fa,
                                        };
                                        let base = base_record(
                                            &model.facts,
                                            ngl,
                                            &params,
                                            &system.cpu_model,
                                            provenance.clone(),
                                        );
                                        let (ours, theirs) = run_test(
                                            &model,
                                            a,
                                            ngl,
                                            &params,
                                            warmup,
                                            binary.as_deref(),
                                            base,
                                        )?;
                                        if let Some(theirs) = theirs {
                                            ratios.push(against::ratio(
                                                ours.test_name(),
                                                &ours.samples_ts,
                                                &theirs.samples_ts,
                                            ));
                                            records.push(ours);
                                            records.push(theirs);
                                        } else {
                                            records.push(ours);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    print(format, &records, &ratios);
    Ok(ExitCode::SUCCESS)
}

/// One test's repetitions; with `binary`, each interleaved with one llama-bench run, the order
/// alternating (ABBA).
fn run_test(
    model: &BenchModel,
    a: &LlamaBenchArgs,
    ngl: i32,
    p: &TestParams,
    warmup: bool,
    binary: Option<&Path>,
    mut ours: Record,
) -> anyhow::Result<(Record, Option<Record>)> {
    let mut test = model.test(p, warmup)?;
    let args = against::args(&a.model, ngl, p, warmup);
    let mut samples = Vec::new();
    let mut filled = Vec::new();
    let mut theirs: Vec<Record> = Vec::new();
    for rep in 0..a.repetitions {
        let them_first = rep % 2 == 1;
        if let (Some(bin), true) = (binary, them_first) {
            theirs.push(against::run_once(bin, &args, p)?);
        }
        let s = test
            .repetition()
            .with_context(|| format!("test {}", ours.test_name()))?;
        samples.push(s.ns);
        filled.push(s.depth_filled);
        if let (Some(bin), false) = (binary, them_first) {
            theirs.push(against::run_once(bin, &args, p)?);
        }
    }
    ours.set_samples(samples);
    ours.kv_tokens_before_test = Some(filled);
    let theirs = match (binary, theirs.first().cloned()) {
        (Some(bin), Some(mut first)) => {
            let ns: Vec<u64> = theirs.iter().flat_map(|r| r.samples_ns.clone()).collect();
            first.set_samples(ns);
            first.provenance = json!({"binary": bin.display().to_string(), "args": args,
                                      "runs": "one process per repetition, -r 1"});
            Some(first)
        }
        _ => None,
    };
    Ok((ours, theirs))
}

fn print(format: Format, records: &[Record], ratios: &[Ratio]) {
    let text = render(format, records, ratios);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    if !ratios.is_empty() && matches!(format, Format::Csv | Format::Sql) {
        eprint!("{}", crate::lbench::output::ratio_table(ratios));
    }
}
