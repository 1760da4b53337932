//! `inproc-bench compare` on load results files (docs/load.md): pairs their levels and prints the
//! differences; a load file beside a single-stream file is refused in one line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::cli::CompareArgs;
use crate::compare::load::{compare_load, LoadInput};
use crate::compare::load_render;
use crate::report::Format;
use crate::results::load::LoadFile;

/// Reads the `load` section of every file: `None` when none is a load file, the files when all
/// are, and an error naming both kinds when they are mixed.
pub fn load_files(files: &[PathBuf]) -> anyhow::Result<Option<Vec<LoadFile>>> {
    let read: Vec<Option<LoadFile>> = files
        .iter()
        .map(|p| crate::results::load::read(p))
        .collect::<Result<_, _>>()?;
    let load = read.iter().position(Option::is_some);
    let single = read.iter().position(Option::is_none);
    match (load, single) {
        (None, _) => Ok(None),
        (Some(_), None) => Ok(Some(read.into_iter().flatten().collect())),
        (Some(l), Some(s)) => bail!(
            "{} is a load results file (--concurrency/--request-rate) and {} a single-stream one: compare load files with load files, and single-stream files with single-stream files",
            files[l].display(),
            files[s].display()
        ),
    }
}

/// Compares load files (baseline first) as `args` ask.
pub fn run(args: &CompareArgs, files: &[LoadFile]) -> anyhow::Result<ExitCode> {
    if files.len() < 2 {
        bail!(
            "nothing to compare: {} is one load file; pass a second (e.g. the same levels on another engine)",
            args.files[0].display()
        );
    }
    if args.plot.is_some() {
        bail!("--plot: a comparison of load files draws no plot; drop --plot (`inproc-bench report FILE --plot curve.svg` draws a load file's curve)");
    }
    let inputs: Vec<LoadInput<'_>> = files
        .iter()
        .zip(&args.files)
        .enumerate()
        .map(|(i, (file, path))| LoadInput {
            path,
            file,
            pick: match i {
                0 => args.backend1.as_deref(),
                1 => args.backend2.as_deref(),
                _ => None,
            }
            .or(args.backend.as_deref()),
        })
        .collect();
    let cmp = compare_load(&inputs, args.confidence)?;
    let format: Format = args.format.into();
    if matches!(format, Format::Csv | Format::Json) {
        for w in &cmp.warnings {
            eprintln!("warning: {w}");
        }
    }
    let text = load_render::render(&cmp, format)?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
