//! `report`: the partner scorecard of a period, read back from the helpdesk or computed from a
//! `backfill` dry run's lines, as HTML, CSV or JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};

use super::args::{ConnectorsDir, PeriodArgs, parse_day, read_records, runtime, terminal_bar};
use crate::offline::{backfill, report};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    period: Option<PeriodArgs>,
    /// The scorecard of the sandbox's sample account instead (`escalation-gate sandbox`): it is
    /// started in this process on free ports and read for its two quarters; no helpdesk account,
    /// no connector file.
    #[arg(long, conflicts_with_all = ["PeriodArgs", "from_jsonl"])]
    sandbox: bool,
    /// With --sandbox: the sample account as it stands on this day (YYYY-MM-DD), for output that
    /// is the same at every run. Default: today.
    #[arg(long, requires = "sandbox", value_parser = parse_day)]
    sandbox_today: Option<NaiveDate>,
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
    let sandbox_today = args
        .sandbox_today
        .unwrap_or_else(|| Utc::now().date_naive());
    let options = report::Options {
        period: match &args.period {
            Some(p) => p.period()?,
            None => crate::sandbox::report_period(sandbox_today),
        },
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
    let Some(PeriodArgs {
        connector: name,
        from,
        to,
    }) = &args.period
    else {
        let card = runtime()?
            .block_on(crate::sandbox::scorecard(sandbox_today, &options, &bar))
            .context("reading the sandbox's sample account")?;
        bar.finish_and_clear();
        return write_report(&card, &args);
    };
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
        let period = format!("from {from} to {to} (UTC)");
        let what = match (&options.partner, &args.from_jsonl) {
            (Some(p), _) => format!("no case of partner `{p}` {period}"),
            (None, Some(path)) => format!("{} holds no escalation opened {period}", path.display()),
            (None, None) => format!("connector `{name}` has no ticket created {period}"),
        };
        bail!("nothing to report: {what}; no scorecard written");
    }
    write_report(&card, &args)
}

/// Renders the scorecard in the asked format to `--out` or standard output.
fn write_report(card: &report::Scorecard, args: &Args) -> anyhow::Result<ExitCode> {
    let text = report::render::render(card, args.format)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
