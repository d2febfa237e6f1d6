//! `sweep`: runs a connector's `[sweep]` once now and prints what it did as JSON.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use super::args::{ConnectorsDir, IndexDir, one_connector, runtime};
use crate::config::ConnectorId;
use crate::runtime::sweep::sweep_once;

#[derive(clap::Args)]
pub struct Args {
    /// The connector to sweep.
    #[arg(long)]
    connector: ConnectorId,
    #[command(flatten)]
    dir: ConnectorsDir,
    #[command(flatten)]
    index: IndexDir,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = &args.connector;
    let connector = one_connector(&args.dir.connectors, name, &args.index)?;
    let report = runtime()?
        .block_on(async {
            connector.ready().await?;
            anyhow::Ok(sweep_once(&connector, Utc::now(), &|| false).await)
        })?
        .with_context(|| format!("connector `{name}` has no [sweep] table"))??;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
