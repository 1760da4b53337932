//! `inproc-bench report`: results files printed again in any format, and plotted.

use std::process::ExitCode;

use crate::cli::ReportArgs;
use crate::report::files::{render_files, write_plot};
use crate::results::{read, write, ResultsFile};

/// Runs `inproc-bench report`.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
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
