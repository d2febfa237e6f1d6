//! The sweep: webhooks can be lost (a helpdesk that gives up retrying, a trigger that misfired),
//! so every `every_minutes` each connector with a `[sweep]` asks its helpdesk for escalated
//! tickets changed in the last `lookback_hours` that carry no verdict, and judges them the way a
//! webhook would have. The helpdesk's search is the queue: no state is kept here. Instances that
//! sweep side by side may judge the same ticket, and still only one verdict lands: the Zendesk
//! write is conditional, and on Salesforce the later verdict comment deletes itself.
//!
//! With a `[survey]`, the same sweep asks for solved cases whose survey call was lost (the
//! helpdesk marked them asked and gave up retrying; see [`crate::survey::Survey::sweep`]) and
//! surveys them: the ticket's claim tag keeps a late call and the sweep from sending twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::helpdesk::{HelpdeskError, Written};
use crate::metrics as m;
use crate::runtime::connector::{Connector, Connectors};
use crate::survey::SurveySweep;

/// What one sweep of one connector did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Escalated tickets without a verdict that the helpdesk returned.
    pub found: usize,
    /// Judged and written now.
    pub judged: usize,
    /// Judged and only logged (`write_back = "log"`): the next sweep finds them again.
    pub logged: usize,
    /// Judged meanwhile by a webhook or another instance.
    pub already: usize,
    /// Could not be judged now (the next sweep tries again).
    pub failed: usize,
    /// With a `[survey]`: the solved cases whose survey call was lost, surveyed now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surveys: Option<SurveySweep>,
}

/// Sweeps `connector` once, as of `now`. `None` when the connector has no `[sweep]`. Before
/// each ticket `stop` is asked whether to end early (the service is shutting down): the ticket
/// under way is finished, the rest wait for the next sweep.
pub async fn sweep_once(
    connector: &Connector,
    now: DateTime<Utc>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<Result<SweepReport, HelpdeskError>> {
    let settings = connector.sweep.as_ref()?;
    let span = tracing::info_span!("sweep", connector = %connector.id);
    Some(
        async {
            let found = match connector
                .helpdesk
                .tickets
                .unjudged(settings.query.as_deref(), now - settings.lookback)
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    m::sweep_run(&connector.id, "error");
                    tracing::warn!(error = %e, "Sweep could not list the escalations without a verdict");
                    return Err(e);
                }
            };
            let mut report = SweepReport {
                found: found.len(),
                ..SweepReport::default()
            };
            for ticket in &found {
                if stop() {
                    tracing::info!("Sweep stopped early: the service is shutting down");
                    break;
                }
                let outcome = match connector.process(ticket).await {
                    Ok(p) if p.written == Written::Already => {
                        report.already += 1;
                        "already"
                    }
                    Ok(p) if p.written == Written::Logged => {
                        report.logged += 1;
                        "logged"
                    }
                    Ok(_) => {
                        report.judged += 1;
                        "judged"
                    }
                    Err(e) => {
                        tracing::warn!(ticket = %ticket.id, error = %e, "Sweep could not judge the ticket; the next sweep tries again");
                        report.failed += 1;
                        "failed"
                    }
                };
                m::sweep_ticket(&connector.id, outcome);
            }
            if let Some(survey) = &connector.survey
                && !stop()
            {
                match survey.sweep(now, now - settings.lookback).await {
                    Ok(done) => report.surveys = Some(done),
                    Err(e) => {
                        m::sweep_run(&connector.id, "error");
                        tracing::warn!(error = %e, "Sweep could not list the solved cases whose survey call was lost");
                        return Err(e.into());
                    }
                }
            }
            m::sweep_run(&connector.id, "ok");
            if report.found > 0 {
                tracing::info!(found = report.found, judged = report.judged, logged = report.logged, already = report.already, failed = report.failed, "Sweep done");
            }
            Ok(report)
        }
        .instrument(span)
        .await,
    )
}

/// Starts one sweep loop per connector with a `[sweep]`: the first sweep at once, then every
/// `every_minutes`. Each loop ends when `stop` turns true (a sweep under way finishes first).
pub fn spawn(connectors: &Connectors, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    connectors
        .values()
        .filter(|c| c.sweep.is_some())
        .map(|c| {
            let connector = Arc::clone(c);
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let every = connector
                    .sweep
                    .as_ref()
                    .map(|s| s.every)
                    .unwrap_or_default();
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                // The first sweep waits for the knowledge base's index.
                tokio::select! {
                    _ = connector.ready() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    let stopping = || *stop.borrow();
                    let _ = sweep_once(&connector, Utc::now(), &stopping).await;
                }
            })
        })
        .collect()
}
