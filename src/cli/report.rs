//! `report`: the partner scorecard of a period, read back from the helpdesk or computed from a
//! `backfill` dry run's lines, as HTML, CSV or JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::args::{ConnectorsDir, PeriodArgs, read_records, runtime, terminal_bar};
use crate::offline::{backfill, report};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    period: PeriodArgs,
    /// Only this partner (as the connector names it); required with `--audience partner`.
    #[arg(long)]
    partner: Option<String>,
    /// `vendor`: every partner side by side and the knowledge view; `partner`: the edition a
    /// partner is shown (its own figures, bad escalations and comments only).
    #[arg(long, value_enum, default_value = "vendor")]
    audience: report::Audience,
    #[arg(long, value_enum, default_value = "html")]
    format: report::render::Format,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compute the scorecard from a `backfill` dry run's JSON lines (its `--out` file) instead
    /// of reading the tickets: escalations only (every case counts as escalated) and no survey.
    #[arg(long, value_name = "FILE")]
    from_jsonl: Option<PathBuf>,
    #[command(flatten)]
    dir: ConnectorsDir,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = &args.period.connector;
    let options = report::Options {
        period: args.period.period()?,
        partner: args.partner.clone(),
        audience: args.audience,
    };
    if let Some(p) = &options.partner
        && p.trim().is_empty()
    {
        bail!("--partner is empty");
    }
    if options.audience == report::Audience::Partner && options.partner.is_none() {
        bail!("--audience partner needs --partner NAME: a partner's edition shows one partner");
    }
    let bar = terminal_bar("{spinner} {human_pos} tickets read ({per_sec}, {elapsed})");
    let card = read_records(
        &args.dir.connectors,
        name,
        "report",
        |source, _| match &args.from_jsonl {
            Some(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                backfill::scorecard(
                    source.connector,
                    source.contracts,
                    &options,
                    std::io::BufReader::new(file),
                    bar.clone(),
                )
                .with_context(|| format!("reading {}", path.display()))
            }
            None => runtime()?
                .block_on(report::build(source, &options, &bar))
                .with_context(|| format!("reading the tickets of connector `{name}`")),
        },
    )?;
    bar.finish_and_clear();
    if card.tickets == 0 {
        let period = format!("from {} to {} (UTC)", args.period.from, args.period.to);
        let what = match (&options.partner, &args.from_jsonl) {
            (Some(p), _) => format!("no case of partner `{p}` {period}"),
            (None, Some(path)) => format!("{} holds no escalation opened {period}", path.display()),
            (None, None) => format!("connector `{name}` has no ticket created {period}"),
        };
        bail!("nothing to report: {what}; no scorecard written");
    }
    let text = report::render::render(&card, args.format)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
