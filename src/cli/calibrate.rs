//! `calibrate`: the agreement between the judge and the reviewers over a period, and the
//! `[knowledge_base]` values that keep the precision of "bad" at the target.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::args::{
    ConnectorsDir, IndexDir, PeriodArgs, load_recorded, read_records, runtime, terminal_bar,
};
use crate::offline::{calibrate, fit};
use crate::runtime::connector::Connector;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    period: PeriodArgs,
    /// The precision of "bad" the proposed threshold keeps, between 0.5 and 1.
    #[arg(long, default_value_t = 0.90)]
    target: f64,
    /// The fewest reviewed cases with a recorded confidence that may move the connector's values.
    #[arg(long, default_value_t = 30)]
    min_reviewed: u64,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Refit the judge's calibration weights on the period's reviewed cases (each ticket read
    /// again and judged as of its escalation) and write them to `--out`.
    #[arg(long, requires = "out")]
    fit: bool,
    /// The weights file `--fit` writes; the connector file names it in
    /// `[knowledge_base] calibration`.
    #[arg(long, value_name = "FILE", requires = "fit")]
    out: Option<PathBuf>,
    /// The fewest reviewed cases `--fit` takes.
    #[arg(long, default_value_t = fit::DEFAULT_MIN_SAMPLE, requires = "fit")]
    min_sample: usize,
    /// The fewest cases of each decision (bad, good) among them.
    #[arg(long, default_value_t = fit::DEFAULT_MIN_EACH, requires = "fit")]
    min_each: usize,
    #[command(flatten)]
    index: IndexDir,
    #[command(flatten)]
    dir: ConnectorsDir,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(0.5..=1.0).contains(&args.target) {
        bail!("--target {} is not between 0.5 and 1", args.target);
    }
    if let Some(out) = &args.out {
        return fitted(&args, out);
    }
    let options = calibrate::Options {
        period: args.period.period()?,
        target: args.target,
        min_reviewed: args.min_reviewed,
    };
    let name = &args.period.connector;
    let calibration = read_records(&args.dir.connectors, name, "calibrate", |source, kb| {
        runtime()?
            .block_on(calibrate::calibrate(source, kb, &options))
            .with_context(|| format!("reading the tickets of connector `{name}`"))
    })?;
    match args.format {
        Format::Text => print!("{}", calibrate::render_text(&calibration)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&calibration)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// `calibrate --fit`: reads the reviewed cases again, refits and writes the weights file.
fn fitted(args: &Args, out: &Path) -> anyhow::Result<ExitCode> {
    let (name, period) = (&args.period.connector, args.period.period()?);
    let valid = load_recorded(&args.dir.connectors, name, "calibrate --fit")?;
    let connector = Connector::build_with(valid, &args.index.runtime())?;
    let bar = terminal_bar("{spinner} reading the reviewed cases again ({elapsed})");
    let read = runtime()?.block_on(fit::reviewed_samples(&connector, &period));
    bar.finish_and_clear();
    let (samples, skipped) =
        read.with_context(|| format!("reading the reviewed cases of connector `{name}`"))?;
    let (from, to) = period.rfc3339();
    let options = fit::FitOptions {
        min_sample: args.min_sample,
        min_each: args.min_each,
        target: args.target,
        ..fit::FitOptions::default()
    };
    let provenance = fit::Provenance {
        source: name.to_string(),
        from: Some(from),
        to: Some(to),
        skipped,
    };
    let file = fit::fit_file(&samples, &options, provenance)
        .with_context(|| format!("fitting connector `{name}`"))?;
    std::fs::write(out, file.to_text()).with_context(|| format!("writing {}", out.display()))?;
    match args.format {
        Format::Text => {
            print!("{}", fit::render_text(&file));
            // The connector file names the weights relative to the connectors folder.
            let named = out
                .strip_prefix(&args.dir.connectors)
                .unwrap_or(out)
                .display();
            println!(
                "\nwrote {}; to judge with it (paste into the connector file):\n\n[knowledge_base]\ncalibration = \"{named}\"",
                out.display()
            );
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&file)?),
    }
    Ok(ExitCode::SUCCESS)
}
