//! `backfill`: judges the escalations of a past period, each as of its own escalation time, for
//! a baseline before a partner contract starts.
//!
//! The helpdesk lists the period's escalated tickets (paged; see [`Record::escalations`]); for
//! each one its history says when it was escalated (unknown: its creation, never flagged late),
//! so an article published later never counts against the partner. A dry run reads and judges
//! and writes nothing; `--write` takes the webhook's own path ([`Connector::process`]): a ticket
//! that already carries a verdict (good, bad or review) is left as it is, so a run that was
//! interrupted is resumed by running it again, and nothing is written twice. No state is kept
//! here: the ticket is the state.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::assess::{Outcome, Reason, ReasonKind, Verdict};
use crate::config::contracts::Contracts;
use crate::escalation::Escalation;
use crate::helpdesk::records::{CaseRecord, Period, RecordSink, details, patiently};
use crate::helpdesk::{HelpdeskError, Record, TicketRef, Written};
use crate::kb::ArticleLink;
use crate::offline::report::{Aggregator, Scorecard};
use crate::runtime::connector::{Connector, ProcessError, Processed};

/// Write the verdicts, or only say what they would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Write,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Escalated tickets created in this period.
    pub period: Period,
    /// The Zendesk search terms that find escalated tickets, instead of `[sweep] query`.
    pub query: Option<String>,
    pub mode: Mode,
}

/// Where a line's escalation time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The ticket's history (Zendesk audits, Salesforce `CaseHistory`).
    History,
    /// The history does not say: the ticket's creation stands in for it.
    Created,
}

/// One judged escalation, as a line of the JSON-lines export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub ticket: String,
    pub partner: String,
    pub product: Option<String>,
    pub subject: String,
    pub opened_at: DateTime<Utc>,
    pub escalated_at: DateTime<Utc>,
    pub escalated_at_source: TimeSource,
    pub outcome: Outcome,
    /// `missing_handoff`, `kb_resolvable`.
    pub reasons: Vec<ReasonKind>,
    pub late: bool,
    pub kb_gap: bool,
    /// The hand-off fields that failed their rule.
    pub missing_fields: Vec<String>,
    /// The article a verdict names: the one that answers the case, or the one sent to review.
    pub article: Option<ArticleLink>,
    /// The confidence that `article` answers the case (0 to 1); without an article, the best
    /// eligible article's, which stayed below the review bound.
    pub confidence: Option<f64>,
    /// The verdict the ticket already carried (a dry run judges it again, for the baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_ticket: Option<Outcome>,
}

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Escalated tickets the helpdesk listed.
    pub found: usize,
    /// Judged by this run.
    pub judged: usize,
    pub good: usize,
    pub bad: usize,
    pub review: usize,
    /// Already carrying a verdict: left alone by `--write`, judged again by a dry run.
    pub already: usize,
    /// Could not be read or judged (a rerun tries them again).
    pub failed: usize,
    /// Verdicts written to the helpdesk.
    pub written: usize,
    /// Judged with the creation as escalation time (the history did not say).
    pub time_unknown: usize,
    /// Stopped before the end (interrupted): a rerun finishes the rest.
    pub stopped: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "found {}, judged {} (good {}, bad {}, review {}), already judged {}, failed {}, \
             written {}; escalation time unknown for {}",
            self.found,
            self.judged,
            self.good,
            self.bad,
            self.review,
            self.already,
            self.failed,
            self.written,
            self.time_unknown
        )?;
        if self.stopped {
            write!(f, "; stopped early: run it again to finish")?;
        }
        Ok(())
    }
}

/// How a backfill reports its progress and its lines.
pub trait Progress {
    /// The escalations are listed: this many will be judged.
    fn found(&mut self, total: usize);
    /// One escalation is done; `line` when it was judged by this run.
    fn done(&mut self, line: Option<&Line>) -> std::io::Result<()>;
}

/// Judges (and with [`Mode::Write`] writes) every escalation of the period. `stop` is asked
/// before each ticket (an interruption): the ticket under way is finished, the rest are left
/// for a rerun. A connector whose helpdesk cannot read a period back is refused before any call.
pub async fn run(
    connector: &Connector,
    options: &Options,
    progress: &mut dyn Progress,
    stop: &(dyn Fn() -> bool + Sync),
) -> anyhow::Result<Summary> {
    let record = connector.helpdesk.record.as_deref().with_context(|| {
        format!(
            "connector `{}` cannot read a period back: its helpdesk ({}) has no record role",
            connector.id, connector.helpdesk.kind
        )
    })?;
    // An embedded index is built in the background: judging before it serves would fail every
    // ticket with `KbError::Unavailable`.
    connector.ready().await?;
    let query = options
        .query
        .as_deref()
        .or_else(|| connector.sweep.as_ref().and_then(|s| s.query.as_deref()));
    // Only ids and times are kept while listing, so the list stays small (10,000 escalations
    // are well under a megabyte) and the progress bar knows its length.
    let mut found = Vec::new();
    record
        .escalations(&options.period, query, &mut |t| found.push(t))
        .await?;
    let mut summary = Summary {
        found: found.len(),
        ..Summary::default()
    };
    progress.found(found.len());
    for mut ticket in found {
        if stop() {
            summary.stopped = true;
            break;
        }
        let line = match one(
            connector,
            record,
            options.mode,
            query,
            &mut ticket,
            &mut summary,
        )
        .await
        {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(ticket = %ticket.id, error = %e, "Escalation not judged; a rerun tries it again");
                summary.failed += 1;
                None
            }
        };
        progress.done(line.as_ref())?;
    }
    Ok(summary)
}

/// Dates one escalation from its history, then judges it (and writes the verdict).
async fn one(
    connector: &Connector,
    record: &dyn Record,
    mode: Mode,
    query: Option<&str>,
    ticket: &mut TicketRef,
    summary: &mut Summary,
) -> Result<Option<Line>, ProcessError> {
    let time =
        waited_out(|| async { Ok(record.escalation_time(&ticket.id, query).await?) }).await?;
    match time {
        Some(at) => {
            ticket.escalated_at = at;
            ticket.escalated_at_unknown = false;
        }
        None => summary.time_unknown += 1,
    }
    let ticket = &*ticket;
    let (escalation, verdict, on_ticket) = match mode {
        // The webhook's own path: it reads the ticket under the ticket's lock, so a verdict
        // that is already there (or landed meanwhile) is left alone.
        Mode::Write => match waited_out(|| connector.process(ticket)).await? {
            Processed {
                written: Written::Already,
                ..
            } => {
                summary.already += 1;
                return Ok(None);
            }
            Processed {
                verdict: Some(verdict),
                written,
                escalation,
                ..
            } => {
                summary.written += usize::from(written == Written::Now);
                (escalation, verdict, None)
            }
            Processed { verdict: None, .. } => return Ok(None),
        },
        Mode::DryRun => {
            let mut loaded =
                waited_out(|| async { Ok(connector.helpdesk.tickets.load(ticket).await?) }).await?;
            loaded.escalation.escalated_at_unknown = ticket.escalated_at_unknown;
            if loaded.judged.is_some() {
                summary.already += 1;
            }
            let verdict = connector.judge(&loaded.escalation).await?;
            (loaded.escalation, verdict, loaded.judged)
        }
    };
    summary.judged += 1;
    match verdict.outcome {
        Outcome::Good => summary.good += 1,
        Outcome::Bad => summary.bad += 1,
        Outcome::Review => summary.review += 1,
    }
    Ok(Some(line(&escalation, &verdict, on_ticket)))
}

/// Runs `call` again while the helpdesk asks to wait (429 or 503 beyond the client's own retry
/// budget), as long as its `Retry-After` says, like the paged reads ([`patiently`]).
pub(crate) async fn waited_out<T, F, Fut>(mut call: F) -> Result<T, ProcessError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProcessError>>,
{
    let outcome = patiently(|| {
        let attempt = call();
        async move {
            match attempt.await {
                Err(ProcessError::Helpdesk(HelpdeskError::Upstream(e))) => Err(e),
                other => Ok(other),
            }
        }
    })
    .await;
    outcome.unwrap_or_else(|e| Err(HelpdeskError::Upstream(e).into()))
}

/// The line of a judged escalation.
fn line(esc: &Escalation, verdict: &Verdict, on_ticket: Option<Outcome>) -> Line {
    let (missing_fields, _) = details(verdict);
    let named = verdict
        .kb
        .resolvable_by
        .as_ref()
        .or(verdict.kb.review.as_ref());
    Line {
        ticket: esc.ticket_id.clone(),
        partner: esc.partner.clone(),
        product: esc.product.clone(),
        subject: esc.subject.clone(),
        opened_at: esc.opened_at,
        escalated_at: esc.escalated_at,
        escalated_at_source: if esc.escalated_at_unknown {
            TimeSource::Created
        } else {
            TimeSource::History
        },
        outcome: verdict.outcome,
        reasons: verdict.reasons.iter().map(Reason::kind).collect(),
        late: verdict.flags.late,
        kb_gap: verdict.flags.kb_gap,
        missing_fields,
        article: named.map(|m| ArticleLink {
            id: m.article_id.clone(),
            title: m.title.clone(),
            url: m.url.clone(),
        }),
        confidence: named
            .or(verdict.kb.best_other.as_ref())
            .map(|m| m.confidence),
        on_ticket,
    }
}

impl Line {
    /// The article that makes the case resolvable, if that is a reason.
    fn resolved_by(&self) -> Option<&ArticleLink> {
        self.article
            .as_ref()
            .filter(|_| self.reasons.contains(&ReasonKind::KbResolvable))
    }

    /// The line as the record a ticket would hold once the verdict is written.
    pub fn record(self) -> CaseRecord {
        let kb_articles = self
            .resolved_by()
            .map(|a| a.id.clone())
            .into_iter()
            .collect();
        CaseRecord {
            prechecked: None,
            solved: false,
            ticket_id: self.ticket,
            partner: self.partner,
            product: self.product,
            subject: self.subject,
            opened_at: self.opened_at,
            escalated: true,
            verdict: Some(self.outcome),
            reviewed: None,
            overturn: None,
            reasons: self.reasons,
            late: self.late,
            kb_gap: self.kb_gap,
            missing_fields: self.missing_fields,
            kb_articles,
            kb_confidence: self
                .confidence
                .map(|c| f64::from(crate::helpdesk::records::floor_percent(c)) / 100.0),
            survey: Default::default(),
        }
    }
}

/// The scorecard of the escalations a backfill file (`--out` of a dry run) holds, opened in
/// the report's period, aggregated as the report aggregates the tickets: a baseline, with no
/// survey and no review yet, naming each article by the title and link its line carries.
pub fn scorecard(
    connector: &str,
    contracts: &Contracts,
    options: &crate::offline::report::Options,
    lines: impl std::io::BufRead,
    progress: indicatif::ProgressBar,
) -> anyhow::Result<Scorecard> {
    let mut agg = Aggregator::new(options, progress);
    let mut articles = BTreeMap::new();
    for (n, text) in lines.lines().enumerate() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("line {}: not a backfill line: {e}", n + 1))?;
        let period = &options.period;
        if line.opened_at >= period.from && line.opened_at < period.to {
            if let Some(a) = line.resolved_by() {
                articles.insert(a.id.clone(), a.clone());
            }
            agg.record(line.record());
        }
    }
    let mut card = agg.finish(connector, contracts)?;
    card.baseline = true;
    card.read_comments(false);
    let named = card.article_ids();
    articles.retain(|id, _| named.contains(id));
    card.articles = articles;
    Ok(card)
}
