//! `kb sync`: brings a connector's knowledge-base mirror up to date now and prints what it did.

use std::process::ExitCode;

use anyhow::Context;

use super::args::{ConnectorsDir, IndexDir, one_connector, runtime};
use crate::config::ConnectorId;

#[derive(clap::Subcommand)]
pub enum KbCommand {
    /// Sync a connector's knowledge-base mirror (`backend = "mirror"`) now and print what the
    /// pass did as JSON: pages read, articles added, changed and removed.
    ///
    /// A pass cut short earlier goes on where it stopped; otherwise it lists the changes since
    /// the last sync, or every article when the mirror is empty, `--full` is given, or the
    /// connector's `full_every_hours` has passed. The mirror is kept in the index folder, where
    /// a running `serve` with the same folder takes it up at its next sync.
    Sync(SyncArgs),
}

#[derive(clap::Args)]
pub struct SyncArgs {
    /// The connector whose mirror to sync.
    #[arg(long)]
    connector: ConnectorId,
    /// List every article (a full pass), which also drops articles deleted or archived in the
    /// helpdesk.
    #[arg(long)]
    full: bool,
    #[command(flatten)]
    dir: ConnectorsDir,
    #[command(flatten)]
    index: IndexDir,
}

pub fn run(command: KbCommand) -> anyhow::Result<ExitCode> {
    let KbCommand::Sync(args) = command;
    let name = &args.connector;
    if args.index.runtime().index_dir.is_none() {
        anyhow::bail!(
            "`kb sync` keeps the mirror in the index folder; with --index-in-memory it would keep nothing"
        );
    }
    let connector = one_connector(&args.dir.connectors, name, &args.index)?;
    let mirror = connector.mirror().with_context(|| {
        format!("connector `{name}` does not mirror its knowledge base: set `[knowledge_base] backend = \"mirror\"`")
    })?;
    let report = runtime()?
        .block_on(mirror.sync(args.full))
        .with_context(|| {
            format!("connector `{name}`: the mirror was not synced (the last good one is kept)")
        })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
