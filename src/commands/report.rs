//! `inproc-bench report`: results files printed again in any format, and plotted.

use std::process::ExitCode;

use crate::cli::ReportArgs;
use crate::report::files::{render_files, write_plot};
use crate::results::{read, write, ResultsFile};

/// Runs `inproc-bench report`.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = run_load_report(args)? {
        return Ok(code);
    }
    if let Some(plot) = &args.plot {
        write::check_writable(plot)?;
    }
    let files: Vec<ResultsFile> = args
        .files
        .iter()
        .map(|p| read::read(p))
        .collect::<Result<_, _>>()?;
    let text = render_files(&files, args.format.into())?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    if let Some(path) = &args.plot {
        write_plot(path, &args.files, &files)?;
        eprintln!("plot: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `inproc-bench report` on load files: their levels in the format asked, and the curve with
/// `--plot`. `None` when any file is a single-stream one (the usual report then runs).
fn run_load_report(args: &ReportArgs) -> anyhow::Result<Option<std::process::ExitCode>> {
    let mut files = Vec::new();
    for p in &args.files {
        match crate::results::load::read(p)? {
            Some(f) => files.push(f),
            None => return Ok(None),
        }
    }
    if let Some(plot) = &args.plot {
        crate::results::write::check_writable(plot)?;
    }
    for f in &files {
        println!("{}", crate::report::load::render(f, args.format.into()));
    }
    if let (Some(plot), Some(first)) = (&args.plot, files.first_mut()) {
        let mut merged = first.clone();
        for f in files.iter().skip(1) {
            merged
                .load
                .levels
                .extend(f.load.levels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        crate::results::write::write_text_atomic(plot, &crate::report::load_plot::svg(&merged))?;
        eprintln!("plot: {}", plot.display());
    }
    Ok(Some(std::process::ExitCode::SUCCESS))
}
