//! `check`: judges one saved ticket offline and prints the verdict as JSON; writes nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::args::{ConnectorsDir, IndexDir, one_connector, parse_instant, runtime};
use crate::assess::note;
use crate::config::ConnectorId;

#[derive(clap::Args)]
pub struct Args {
    /// The connector whose rules and knowledge base judge the ticket.
    #[arg(long)]
    connector: ConnectorId,
    /// The saved ticket: a JSON file as the helpdesk's API returns it (see above).
    file: PathBuf,
    #[command(flatten)]
    dir: ConnectorsDir,
    /// When the ticket was escalated: RFC 3339 (2024-05-01T09:30:00Z), YYYY-MM-DDTHH:MM in
    /// UTC, or a day YYYY-MM-DD (its start, UTC); default: what the ticket says (its last
    /// update).
    #[arg(long, value_parser = parse_instant)]
    escalated_at: Option<DateTime<Utc>>,
    #[command(flatten)]
    index: IndexDir,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = &args.file;
    let connector = one_connector(&args.dir.connectors, &args.connector, &args.index)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let snapshot: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let esc = connector
        .helpdesk
        .tickets
        .escalation_from_snapshot(&snapshot, args.escalated_at)
        .with_context(|| format!("judging {} (give --escalated-at when the ticket does not say when it was escalated)", file.display()))?;
    let (verdict, admin_fixes) = runtime()?.block_on(async {
        connector.ready().await?;
        let verdict = connector.judge(&esc).await?;
        // What the helpdesk takes for a verdict (a Salesforce picklist without `Review`, ...):
        // the verdict above could not be written until an admin fixes it.
        let fixes = connector
            .helpdesk
            .tickets
            .preflight()
            .await
            .unwrap_or_else(|e| {
                eprintln!("warning: could not read which verdict values the helpdesk takes: {e}");
                Vec::new()
            });
        anyhow::Ok((verdict, fixes))
    })?;
    for fix in &admin_fixes {
        eprintln!("warning: {fix}");
    }
    let out = serde_json::json!({
        "connector": esc.connector,
        "ticket": esc.ticket_id,
        "partner": esc.partner,
        "verdict": verdict,
        "note": note::render(&esc, &verdict),
        "admin_fixes": admin_fixes,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
