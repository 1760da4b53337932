//! The `inproc-bench` command: parse the flags, call the library, print errors on one line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli =
        inproc_bench::cli::Cli::parse_from(inproc_bench::cli::normalize_args(std::env::args_os()));
    match inproc_bench::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", inproc_bench::redact::text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
