//! The command line's own checks: flags parse into what the commands expect.

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("inproc-bench").chain(args.iter().copied()))
}

#[test]
fn top_level_flags_work_without_a_subcommand() {
    let cli = parse(&[
        "--engine",
        "llamacpp",
        "--model",
        "m.gguf",
        "--n-gpu-layers",
        "30",
    ])
    .unwrap();
    let run = cli.run_args().unwrap();
    assert_eq!(run.engine, EngineArg::Llamacpp);
    assert_eq!(run.n_gpu_layers, "30");
    assert_eq!(
        (run.warmup, run.runs, run.scenario.as_str()),
        (5, 20, "custom")
    );
    assert!(run.ignore_eos);
    assert_eq!(run.temperature, 0.0);
}

#[test]
fn run_subcommand_takes_the_same_flags() {
    let cli = parse(&[
        "run", "--model", "m.gguf", "--prompt", "short", "--warmup", "2", "--runs", "10",
    ])
    .unwrap();
    let run = cli.run_args().unwrap();
    assert_eq!(
        (run.prompt.as_str(), run.warmup, run.runs),
        ("short", 2, 10)
    );
}

#[test]
fn llama_style_aliases_and_bool_flags() {
    let cli = parse(&["--n-gpu-layers", "-1", "--model", "m.gguf"]).unwrap();
    assert_eq!(cli.run_args().unwrap().n_gpu_layers, "-1");
    let cli = parse(&[
        "--ngl",
        "0",
        "--fa",
        "on",
        "--ub",
        "128",
        "--ignore-eos",
        "false",
        "--temp",
        "0.7",
    ])
    .unwrap();
    let run = cli.run_args().unwrap();
    assert_eq!(
        (
            run.n_gpu_layers.as_str(),
            run.flash_attn.as_str(),
            run.ubatch_size.as_str()
        ),
        ("0", "on", "128")
    );
    assert!(!run.ignore_eos);
    assert!((run.temperature - 0.7).abs() < 1e-6);
}

#[test]
fn bad_flags_are_rejected() {
    assert!(parse(&["--engine", "tensorrt"]).is_err());
    assert!(parse(&["--runs", "-3"]).is_err());
    assert!(parse(&["--raw-prompt", "--chat-template", "chatml"]).is_err());
}
