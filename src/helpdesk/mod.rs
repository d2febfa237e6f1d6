//! Helpdesks: one folder each with the same files (config, webhook, api, mod). A helpdesk turns a
//! verified inbound call into tickets, a ticket into an escalation, and a verdict into a
//! write-back. It knows nothing of how escalations are judged.

pub mod salesforce;
pub mod zendesk;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::assess::Verdict;
use crate::config::{KbBackend, Problem};
use crate::escalation::Escalation;
use crate::http::UpstreamError;
use crate::kb::KnowledgeBase;

/// The `[helpdesk]` table, by its `type`. Built once at start-up: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HelpdeskConfig {
    Zendesk(zendesk::config::ZendeskConfig),
    Salesforce(salesforce::config::SalesforceConfig),
}

/// A validated `[helpdesk]` table: nothing built, no network touched.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ValidHelpdesk {
    Zendesk(zendesk::config::ValidZendesk),
    Salesforce(salesforce::config::ValidSalesforce),
}

impl HelpdeskConfig {
    /// Validates the table; `known_fields` receives every hand-off field name the helpdesk maps.
    pub fn validate(
        self,
        kb: &KbBackend,
        known_fields: &mut Vec<String>,
        problems: &mut Vec<Problem>,
    ) -> Option<ValidHelpdesk> {
        match self {
            HelpdeskConfig::Zendesk(c) => c
                .validate(kb, known_fields, problems)
                .map(ValidHelpdesk::Zendesk),
            HelpdeskConfig::Salesforce(c) => c
                .validate(known_fields, problems)
                .map(ValidHelpdesk::Salesforce),
        }
    }
}

impl ValidHelpdesk {
    /// Takes the connector's `[survey]` in and checks the names this helpdesk reads and writes
    /// (no network).
    pub fn with_survey(
        &mut self,
        fields: &crate::survey::config::SurveyFields,
        problems: &mut Vec<Problem>,
    ) {
        match self {
            ValidHelpdesk::Zendesk(_) => {}
            ValidHelpdesk::Salesforce(c) => c.with_survey(fields, problems),
        }
    }

    /// Whether this helpdesk can be swept with `query`: it needs its API, and Zendesk needs the
    /// search terms that find escalated tickets.
    pub fn can_sweep(&self, query: Option<&str>) -> Result<(), Problem> {
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        let (api, needs_query) = match self {
            ValidHelpdesk::Zendesk(c) => (c.base_url.is_some() && c.auth.is_some(), true),
            ValidHelpdesk::Salesforce(c) => (c.base.is_some() && c.auth.is_some(), false),
        };
        if !api {
            return Err(Problem::new(
                "sweep",
                "the sweep reads the helpdesk's API: configure its URL and [helpdesk.auth]",
            ));
        }
        match (needs_query, query) {
            (true, None) => Err(Problem::new(
                "sweep.query",
                "give the Zendesk search terms that find escalated tickets, e.g. `tags:partner_escalation`",
            )),
            (false, Some(_)) => Err(Problem::new(
                "sweep.query",
                "Salesforce Cases are found by `IsEscalated`; remove `query`",
            )),
            _ => Ok(()),
        }
    }

    /// Builds the runtime helpdesk (HTTP clients; no call is made yet).
    pub fn build(self, connector: &str) -> Result<Arc<dyn Helpdesk>, reqwest::Error> {
        match self {
            ValidHelpdesk::Zendesk(c) => Ok(Arc::new(zendesk::Zendesk::new(connector, c)?)),
            ValidHelpdesk::Salesforce(c) => {
                Ok(Arc::new(salesforce::Salesforce::new(connector, c)?))
            }
        }
    }
}

/// One inbound call, as the server hands it to the helpdesk.
pub struct Inbound<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub body: &'a Bytes,
    pub now: DateTime<Utc>,
}

/// What a verified inbound call asks for.
#[derive(Debug)]
pub struct Delivery {
    /// The helpdesk's id of this delivery, for the logs.
    pub delivery_id: Option<String>,
    pub tickets: Vec<TicketRef>,
}

/// What a verified call asks for, by event.
#[derive(Debug)]
pub enum Event {
    /// Judge the escalations (the original path).
    Escalated(Delivery),
    /// The cases were solved: run the blind survey for them.
    Solved(Delivery),
}

/// A ticket named by a verified call.
#[derive(Debug, Clone)]
pub struct TicketRef {
    pub id: String,
    /// When the helpdesk escalated it (from the signed call); the ticket's creation when that
    /// is not known.
    pub escalated_at: DateTime<Utc>,
    /// The sweep found the ticket: nothing says when it was escalated, so `escalated_at` is
    /// its creation (no article published after it counts, and it is never flagged late).
    pub escalated_at_unknown: bool,
    /// The ticket itself, when the connector takes it from the signed body.
    pub snapshot: Option<serde_json::Value>,
}

/// How many Cases one sweep takes at most (one SOQL page).
pub const SWEEP_PAGE: usize = 200;

/// A ticket read from the helpdesk, ready to judge.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub escalation: Escalation,
    /// The verdict already on the ticket (`good`/`bad`), if any: nothing is written again.
    pub judged: Option<String>,
    /// The helpdesk's version of the ticket, for a conditional write.
    pub version: Option<String>,
    /// The ticket already records a survey in a single status (Salesforce): the pending mark
    /// is not written over it. Tags (Zendesk) sit side by side, so there it is always false.
    pub survey_recorded: bool,
}

/// How a write-back ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Tags and note written now.
    Now,
    /// Another delivery wrote the verdict first.
    Already,
    /// The connector only logs what it would write.
    Logged,
}

/// Why an inbound call is refused (4xx): the caller must not retry it unchanged.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known and is not the one this connector serves.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
}

impl HookError {
    /// The HTTP status of the refusal, and its short name for JSON errors.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            HookError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            HookError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            HookError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        }
    }
}

/// Why a ticket could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum HelpdeskError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The ticket cannot be judged (not found, unusable): retrying will not help.
    #[error("{0}")]
    Unusable(String),
}

impl HelpdeskError {
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            HelpdeskError::Upstream(UpstreamError::Unavailable { .. })
        )
    }
}

/// The outcome for one ticket of a delivery.
#[derive(Debug)]
pub struct TicketOutcome {
    pub ticket: String,
    pub result: Result<Processed, ProcessError>,
}

#[derive(Debug, Clone)]
pub struct Processed {
    pub outcome: String,
    pub written: Written,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Helpdesk(#[from] HelpdeskError),
    #[error(transparent)]
    Kb(#[from] crate::kb::KbError),
    #[error(transparent)]
    Judge(#[from] crate::judge_pool::PoolError),
}

impl ProcessError {
    /// Whether the helpdesk should deliver again later.
    pub fn retryable(&self) -> bool {
        match self {
            ProcessError::Helpdesk(e) => e.retryable(),
            ProcessError::Kb(_) | ProcessError::Judge(_) => true,
        }
    }

    pub fn retry_after_secs(&self) -> u64 {
        match self {
            ProcessError::Helpdesk(HelpdeskError::Upstream(e)) => {
                e.retry_after().map_or(60, |d| d.as_secs().max(1))
            }
            // A full queue drains in well under a second.
            ProcessError::Judge(crate::judge_pool::PoolError::Busy) => 5,
            _ => 60,
        }
    }
}

/// A JSON error answer: `{"error": ..., "detail": ...}`.
pub fn json_error(status: StatusCode, error: &str, detail: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "detail": detail})),
    )
        .into_response()
}

#[async_trait]
pub trait Helpdesk: Send + Sync {
    /// `zendesk`, `salesforce`, ...: the `helpdesk` label of upstream metrics.
    fn kind(&self) -> &'static str;

    /// Verifies an inbound call and says what it asks for: the tickets it escalates, or the
    /// cases solved (for the blind survey). No I/O.
    fn accept_event(&self, inbound: &Inbound<'_>) -> Result<Event, HookError>;

    /// Reads a ticket and maps it to an escalation.
    async fn load(&self, ticket: &TicketRef) -> Result<Loaded, HelpdeskError>;

    /// Maps a saved ticket (as the helpdesk's API returns it) to an escalation, offline.
    fn escalation_from_snapshot(
        &self,
        snapshot: &serde_json::Value,
        escalated_at: DateTime<Utc>,
    ) -> Result<Escalation, HelpdeskError>;

    /// Writes the verdict's tags or fields and one internal note, unless already there. With
    /// `survey_pending` (the survey's pending mark, e.g. `csat_blind_pending`), the same write
    /// marks the ticket for the blind survey, so a verdict never lands without its mark.
    async fn write_back(
        &self,
        loaded: &Loaded,
        verdict: &Verdict,
        note: &str,
        survey_pending: Option<&str>,
    ) -> Result<Written, HelpdeskError>;

    /// Escalated tickets changed since `since` that carry no verdict, oldest change first (at
    /// most one page: 100 on Zendesk, [`SWEEP_PAGE`] on Salesforce); `query` narrows them where
    /// the helpdesk needs it (Zendesk search terms). Their escalation time is unknown: each
    /// one's `escalated_at` is its creation.
    async fn unjudged(
        &self,
        query: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<TicketRef>, HelpdeskError>;

    /// The helpdesk's own knowledge base, for `backend = "helpdesk"`.
    fn knowledge_base(&self) -> Option<Arc<dyn KnowledgeBase>>;

    /// What the blind survey reads and writes through this helpdesk; `None`: not supported.
    fn survey_desk(
        &self,
        _fields: &crate::survey::config::SurveyFields,
    ) -> Option<Arc<dyn crate::survey::SurveyDesk>> {
        None
    }

    /// The answer to a refused call. `inbound` tells which kind of call it was, for helpdesks
    /// that take several (Salesforce: SOAP outbound messages and signed JSON).
    fn reject(&self, inbound: &Inbound<'_>, err: &HookError) -> Response {
        let _ = inbound;
        default_reject(err)
    }

    /// The answer once every ticket of the delivery was tried: 2xx only when all are written.
    fn respond(&self, inbound: &Inbound<'_>, outcomes: &[TicketOutcome]) -> Response {
        let _ = inbound;
        default_respond(outcomes)
    }

    /// The answer to a `solved` delivery once every case was tried (see
    /// [`crate::survey::respond`]); helpdesks that take several kinds of call answer each in
    /// its own form.
    fn respond_solved(
        &self,
        inbound: &Inbound<'_>,
        outcomes: Vec<(String, Result<crate::survey::SurveyResult, HelpdeskError>)>,
    ) -> Response {
        let _ = inbound;
        crate::survey::respond(outcomes)
    }
}

/// JSON refusal: 401, 403 or 400 with `{"error", "detail"}`.
pub fn default_reject(err: &HookError) -> Response {
    let (status, code) = err.status();
    json_error(status, code, &err.to_string())
}

/// JSON answer: 200 with each ticket's verdict; 503 + `Retry-After` when any ticket must be
/// retried; 422 when a ticket cannot be judged at all.
pub fn default_respond(outcomes: &[TicketOutcome]) -> Response {
    let retry: Option<u64> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .filter(|e| e.retryable())
        .map(ProcessError::retry_after_secs)
        .max();
    if let Some(secs) = retry {
        let busy = outcomes.iter().any(|o| {
            matches!(
                o.result,
                Err(ProcessError::Judge(crate::judge_pool::PoolError::Busy))
            )
        });
        let mut resp = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            if busy { "busy" } else { "upstream_unavailable" },
            "the escalation could not be finished now; deliver it again later",
        );
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(secs),
        );
        return resp;
    }
    if let Some(e) = outcomes.iter().find_map(|o| o.result.as_ref().err()) {
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unusable_ticket",
            &e.to_string(),
        );
    }
    let results: Vec<_> = outcomes
        .iter()
        .filter_map(|o| {
            o.result.as_ref().ok().map(|p| {
                json!({
                    "ticket": o.ticket,
                    "verdict": p.outcome,
                    "written": match p.written {
                        Written::Now => "now",
                        Written::Already => "already",
                        Written::Logged => "logged",
                    },
                    "assessment": p.verdict,
                })
            })
        })
        .collect();
    (StatusCode::OK, axum::Json(json!({ "results": results }))).into_response()
}
