//! `backfill`: judges a past period's escalations, each as of its own escalation time; a dry
//! run prints the verdicts as JSON lines, `--write` writes them as the webhook would.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};

use super::args::{ConnectorsDir, IndexDir, PeriodArgs, load_recorded, runtime, terminal_bar};
use crate::helpdesk::SearchTerms;
use crate::offline::backfill;
use crate::runtime::connector::Connector;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    period: PeriodArgs,
    /// Write the verdicts to the tickets (tags or fields and the note, as the webhook does).
    #[arg(long, conflicts_with = "dry_run")]
    write: bool,
    /// Judge and print only; nothing is written to a ticket. The default.
    #[arg(long)]
    dry_run: bool,
    /// Zendesk search terms that find escalated tickets (e.g. `tags:partner_escalation`),
    /// instead of the connector's `[sweep] query` or its escalation trigger's tags.
    #[arg(long)]
    query: Option<String>,
    #[command(flatten)]
    index: IndexDir,
    /// Write the JSON lines to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    dir: ConnectorsDir,
}

/// Shows a bar on a terminal and writes each line as it comes.
struct Progress {
    bar: indicatif::ProgressBar,
    out: Box<dyn Write>,
}

impl backfill::Progress for Progress {
    fn found(&mut self, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
    }

    fn done(&mut self, line: Option<&backfill::Line>) -> std::io::Result<()> {
        self.bar.inc(1);
        if let Some(line) = line {
            serde_json::to_writer(&mut self.out, line)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (name, period) = (&args.period.connector, args.period.period()?);
    let Args {
        write, query, out, ..
    } = &args;
    if query.as_deref().is_some_and(|q| q.trim().is_empty()) {
        bail!("--query is empty");
    }
    let valid = load_recorded(&args.dir.connectors, name, "backfill")?;
    let connector = Connector::build_with(valid, &args.index.runtime())?;
    if query.is_some()
        && let SearchTerms::Refused { how } = connector.helpdesk.search_terms
    {
        bail!("--query is not taken: {how}");
    }
    let options = backfill::Options {
        period,
        query: query.clone(),
        mode: if *write {
            backfill::Mode::Write
        } else {
            backfill::Mode::DryRun
        },
    };
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let bar = terminal_bar("{spinner} {pos}/{len} escalations judged ({per_sec}, eta {eta})");
    let mut progress = Progress {
        bar: bar.clone(),
        out: sink,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = runtime()?;
    let summary = runtime.block_on(async {
        let flag = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
        let stopping = || stop.load(Ordering::SeqCst);
        backfill::run(&connector, &options, &mut progress, &stopping).await
    });
    bar.finish_and_clear();
    progress.out.flush()?;
    let summary = summary.with_context(|| format!("backfilling connector `{name}`"))?;
    let mode = if *write {
        "written"
    } else {
        "dry run, nothing written"
    };
    eprintln!("backfill ({mode}): {summary}");
    if let Some(path) = out {
        eprintln!("wrote {}", path.display());
    }
    Ok(if summary.failed == 0 && !summary.stopped {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
