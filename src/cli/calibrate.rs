//! `calibrate`: the agreement between the judge and the reviewers over a period, and the
//! `[knowledge_base]` values that keep the precision of "bad" at the target.

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::args::{ConnectorsDir, PeriodArgs, read_records, runtime};
use crate::offline::calibrate;

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
