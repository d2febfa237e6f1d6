//! The command line: one file per command, each with its clap arguments and its `run`, and in
//! [`args`] what several commands share (the connectors folder, the index folder, a period,
//! loading connectors). `main.rs` parses the [`Cli`], starts the logs the command wants and
//! calls [`Command::run`]. The commands' engines live elsewhere (`runtime/`, `offline/`,
//! `helpdesk/`): a command parses, calls, and prints.

pub mod args;
pub mod backfill;
pub mod calibrate;
pub mod check;
pub mod eval;
pub mod install;
pub mod kb;
pub mod report;
pub mod sandbox;
pub mod send;
pub mod serve;
pub mod sweep;
pub mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::telemetry;

/// Judges partner escalations and writes the verdict back to the helpdesk.
///
/// Each file `*.toml` in the connectors folder is one connector, served at
/// `POST /hooks/{file name}`. Secrets in connector files are `${ENV_VAR}` references.
#[derive(Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the webhooks, /healthz and /metrics.
    Serve(serve::Args),
    /// Judge one saved ticket offline and print the verdict as JSON. Writes nothing.
    ///
    /// FILE is the ticket as the helpdesk's API returns it (Zendesk:
    /// `GET /api/v2/tickets/{id}.json?include=users,organizations`). The knowledge base is the
    /// connector's own (searched read-only).
    Check(check::Args),
    /// Measure the knowledge-base judgement on labelled cases, through the service's own path.
    ///
    /// Builds the embedded index from ARTICLES (JSON lines `{id, title, body, locale}`), judges
    /// every case of CASES (JSON lines `{id, text, label, article_ids, split}`) and prints the
    /// search's P@1 and MRR and the judge's precision/recall figures.
    Eval(eval::Args),
    /// Run a connector's `[sweep]` once now and print what it did as JSON: the escalated
    /// tickets without a verdict it found, and how many it judged (and wrote back).
    ///
    /// `serve` sweeps on its own every `every_minutes`; this is for a first catch-up after
    /// installing, or a scheduler of your own.
    Sweep(sweep::Args),
    /// The partner scorecard: read every ticket of a period back from the helpdesk and write,
    /// per partner and month, the escalation rate, the good-escalation ratio with its 95 % Wilson
    /// interval against the contract target, bad escalations by reason, the blind CSAT and CES,
    /// the tier reached, and the knowledge view.
    ///
    /// Contract terms (target, minimum samples, tiers) come from the connector's `[report]`
    /// table. Zendesk is read with Export Search Results, Salesforce with SOQL; rate limits are
    /// waited out.
    Report(report::Args),
    /// Agreement between the judge and the reviewers, and the threshold and review bound that
    /// keep precision of "bad" at the target on the connector's own reviewed cases.
    ///
    /// Reads every ticket created in the period back from the helpdesk (Zendesk Export Search
    /// Results, Salesforce SOQL; rate limits are waited out) and prints: the review rate, the
    /// precision of the judge's "bad" overall and by reason (the share of its reviewed bad
    /// verdicts a person kept bad) with a 95 % Wilson interval, the overturn reasons, and the
    /// `[knowledge_base]` lines to paste. The proposal rests on reviewed cases whose verdict
    /// records the judge's confidence (Zendesk tag `escalation_kb_conf_NN`; Salesforce `conf=`
    /// in `[helpdesk.verdict_fields] detail`); below `--min-reviewed` of them it says the sample
    /// is too small to move the connector's values.
    Calibrate(calibrate::Args),
    /// Judge a past period's escalations, each as of its own escalation time, for a baseline
    /// before a partner contract starts: a dry run (the default) prints the verdicts as JSON
    /// lines and writes nothing; `--write` writes them to the tickets as the webhook would.
    ///
    /// Escalated tickets are found through the helpdesk (Zendesk Export Search Results with the
    /// connector's escalation rule or --query; Salesforce Cases with `IsEscalated`), paged, by
    /// creation in the period. The escalation time comes from each ticket's history (Zendesk
    /// audits, Salesforce CaseHistory); articles published after it never count. A ticket that
    /// already carries a verdict is never written again: after an interruption, run the same
    /// command again to finish. Rate limits are waited out.
    Backfill(backfill::Args),
    /// Load every connector file and report each problem as file: key: what is wrong.
    Validate(validate::Args),
    /// The knowledge-base mirror of a connector with `backend = "mirror"`.
    Kb {
        #[command(subcommand)]
        command: kb::KbCommand,
    },
    /// Set a helpdesk up for a connector: Salesforce metadata to deploy, or Zendesk through its API.
    Install {
        #[command(subcommand)]
        helpdesk: install::InstallTarget,
    },
    /// Remove what `install` set up in a helpdesk for a connector.
    Uninstall {
        #[command(subcommand)]
        helpdesk: install::UninstallTarget,
    },
    /// A sample Zendesk account on this machine, with a mail catcher: every command tried
    /// without a helpdesk account.
    ///
    /// Starts on 127.0.0.1 the fake Zendesk the integration tests run against, seeded with
    /// partners, a few hundred tickets over the last two full quarters, a Help Center, reviews
    /// and survey answers; writes a connector folder pointing at it; prints the commands to try.
    /// New escalations arrive while it runs. Ctrl-C stops it.
    Sandbox(sandbox::Args),
    /// Sign a JSON body as the connector's helpdesk signs its calls and POST it (try the demo
    /// with it).
    Send(send::Args),
}

impl Command {
    /// Starts the logs the command wants, on standard error: `serve` logs in its
    /// `--log-format`; the one-shot commands that call a helpdesk, whose result goes to standard
    /// output, warnings and errors only; the others nothing.
    pub fn start_logs(&self) {
        match self {
            Command::Serve(args) => telemetry::init(args.log_format),
            Command::Check(_)
            | Command::Sweep(_)
            | Command::Report(_)
            | Command::Calibrate(_)
            | Command::Backfill(_)
            | Command::Kb { .. }
            | Command::Install {
                helpdesk: install::InstallTarget::Zendesk { .. },
            }
            | Command::Uninstall { .. } => telemetry::init_quiet(),
            Command::Eval(_)
            | Command::Validate(_)
            | Command::Install {
                helpdesk:
                    install::InstallTarget::Salesforce { .. }
                    | install::InstallTarget::ZendeskApp { .. }
                    | install::InstallTarget::FreshdeskApp { .. },
            }
            | Command::Sandbox(_)
            | Command::Send(_) => {}
        }
    }

    /// Runs the command; its exit code, or the error that stopped it.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Serve(args) => serve::run(args),
            Command::Check(args) => check::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Sweep(args) => sweep::run(args),
            Command::Report(args) => report::run(args),
            Command::Calibrate(args) => calibrate::run(args),
            Command::Backfill(args) => backfill::run(args),
            Command::Validate(args) => validate::run(args),
            Command::Kb { command } => kb::run(command),
            Command::Install { helpdesk } => install::install(helpdesk),
            Command::Uninstall { helpdesk } => install::uninstall(helpdesk),
            Command::Sandbox(args) => sandbox::run(args),
            Command::Send(args) => send::run(args),
        }
    }
}

/// An error and its causes on one line, `outer: cause: cause`, leaving out a cause whose text
/// the line already holds (an error that prints its source as part of its own message).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("data.jsonl: cannot read: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Read {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        })
        .context("loading the cases");
        assert_eq!(
            error_line(&e),
            "loading the cases: data.jsonl: cannot read: No such file"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&plain), "outer: inner");
    }
}
