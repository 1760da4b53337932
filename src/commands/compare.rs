//! `inproc-bench compare`: reads the files, picks the entries, prints the comparison, draws it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::CompareArgs;
use crate::compare::select::{self, Picks};
use crate::compare::{compare, render};
use crate::report::Format;
use crate::results::{read, write, ResultsFile};

/// Runs `inproc-bench compare`.
pub fn run_compare(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    if !(args.confidence > 0.5 && args.confidence < 1.0) {
        anyhow::bail!(
            "--confidence: {} is not a level between 0.5 and 1 (e.g. 0.95)",
            args.confidence
        );
    }
    if let Some(plot) = &args.plot {
        write::check_writable(plot)?;
    }
    if let Some(loads) = super::compare_load::load_files(&args.files)? {
        return super::compare_load::run(args, &loads);
    }
    let files: Vec<(PathBuf, ResultsFile)> = args
        .files
        .iter()
        .map(|p| read::read(p).map(|f| (p.clone(), f)))
        .collect::<Result<_, _>>()?;
    let picks = Picks {
        backend1: args.backend1.clone(),
        backend2: args.backend2.clone(),
        backend: args.backend.clone(),
    };
    let sides = select::select(&files, &picks)?;
    let cmp = compare(&sides, args.confidence);
    let format: Format = args.format.into();
    // Table and Markdown carry the warnings in the report; CSV and JSON stay machine-readable.
    if matches!(format, Format::Csv | Format::Json) {
        for w in &cmp.warnings {
            eprintln!("warning: {w}");
        }
    }
    let text = render::render(&cmp, &sides, format)?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    if let Some(path) = &args.plot {
        let seed_defs = sides.iter().any(|s| s.file.schema_version == 0)
            && sides.iter().any(|s| s.file.schema_version > 0);
        let series: Vec<crate::report::plot::Series<'_>> = sides
            .iter()
            .map(|s| crate::report::plot::Series {
                label: format!("{} {}", s.tag(), s.key),
                result: s.result,
                seed_tps: seed_defs,
            })
            .collect();
        crate::report::plot::write(path, &series, "inproc-bench compare")
            .with_context(|| format!("writing the plot {}", path.display()))?;
        eprintln!("plot: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
