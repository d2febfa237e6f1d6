//! Helpdesks: one folder each with the same files (config, webhook, api, mod). A helpdesk turns a
//! verified inbound call into tickets, a ticket into an escalation, and a verdict into a
//! write-back. It knows nothing of how escalations are judged.

pub mod freshdesk;
pub mod mapping;
pub mod salesforce;
pub mod zendesk;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::assess::{Outcome, ReasonKind, Verdict};
use crate::checks::Problem;
use crate::escalation::Escalation;
use crate::http::UpstreamError;
use crate::kb::{KbBackend, KnowledgeBase};
use crate::survey::{SurveyError, SurveyResult};

/// The `[helpdesk]` table, by its `type`. Built once at start-up: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelpdeskConfig {
    Zendesk(zendesk::config::ZendeskConfig),
    Salesforce(salesforce::config::SalesforceConfig),
    Freshdesk(freshdesk::config::FreshdeskConfig),
}

impl crate::checks::typed::Tagged for HelpdeskConfig {
    const TAG: &'static str = "type";
}

/// A validated `[helpdesk]` table: nothing built, no network touched.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ValidHelpdesk {
    Zendesk(zendesk::config::ValidZendesk),
    Salesforce(salesforce::config::ValidSalesforce),
    Freshdesk(freshdesk::config::ValidFreshdesk),
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
            HelpdeskConfig::Freshdesk(c) => c
                .validate(known_fields, problems)
                .map(ValidHelpdesk::Freshdesk),
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
            ValidHelpdesk::Zendesk(_) | ValidHelpdesk::Freshdesk(_) => {}
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
            ValidHelpdesk::Freshdesk(_) => {
                return Err(Problem::new(
                    "sweep",
                    "Freshdesk connectors are not swept: Freshdesk's ticket search returns at most 300 tickets and cannot exclude the judged ones",
                ));
            }
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
            ValidHelpdesk::Freshdesk(c) => Ok(Arc::new(freshdesk::Freshdesk::new(connector, c)?)),
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

/// The reasons a person may give for overturning a verdict (Zendesk: the tag
/// `{reason_prefix}overturn_{reason}`; Salesforce: a value of `[helpdesk.verdict_fields] overturn`).
pub const OVERTURN_REASONS: [&str; 4] = [
    "kb_not_applicable",
    "handoff_complete",
    "kb_resolvable",
    "missing_handoff",
];

/// How many Cases one sweep takes at most (one SOQL page).
pub const SWEEP_PAGE: usize = 200;

/// A ticket read from the helpdesk, ready to judge.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub escalation: Escalation,
    /// The verdict already on the ticket, if any: nothing is written again.
    pub judged: Option<Outcome>,
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
    /// Whether a later delivery may succeed: every upstream failure (outages, timeouts,
    /// unreadable answers, and refusals such as 401/403/422 that an admin can fix). Only a fact
    /// about the ticket itself (it does not exist, it cannot be judged) is final.
    pub fn retryable(&self) -> bool {
        matches!(self, HelpdeskError::Upstream(_))
    }

    /// The `reason` label of a retried delivery (see [`UpstreamError::reason`]).
    pub fn reason(&self) -> &'static str {
        match self {
            HelpdeskError::Upstream(e) => e.reason(),
            HelpdeskError::Unusable(_) => "unusable",
        }
    }
}

impl From<SurveyError> for HelpdeskError {
    fn from(e: SurveyError) -> HelpdeskError {
        match e {
            SurveyError::Upstream(e) => HelpdeskError::Upstream(e),
            SurveyError::Unusable(m) => HelpdeskError::Unusable(m),
        }
    }
}

impl From<HelpdeskError> for SurveyError {
    fn from(e: HelpdeskError) -> SurveyError {
        match e {
            HelpdeskError::Upstream(e) => SurveyError::Upstream(e),
            HelpdeskError::Unusable(m) => SurveyError::Unusable(m),
        }
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
    pub outcome: Outcome,
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

    /// The `reason` label of a retried delivery (see [`UpstreamError::reason`]; `kb`: the
    /// knowledge base).
    pub fn reason(&self) -> &'static str {
        match self {
            ProcessError::Helpdesk(e) => e.reason(),
            ProcessError::Kb(_) => "kb",
            ProcessError::Judge(crate::judge_pool::PoolError::Busy) => "busy",
            ProcessError::Judge(crate::judge_pool::PoolError::Failed) => "failed",
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

    /// Every ticket created in `period`, read back page by page as the service recorded it
    /// (Zendesk Export Search Results, Salesforce SOQL with `nextRecordsUrl`), each handed to
    /// `sink` as soon as its page arrives, so memory stays flat however many there are. Rate
    /// limits are waited out ([`patiently`]). `survey` names the blind survey's tags and fields,
    /// when the connector has one. Reports, calibration and backfill read through this.
    async fn records(
        &self,
        period: &Period,
        survey: Option<&crate::survey::config::SurveyFields>,
        sink: &mut (dyn RecordSink + Send),
    ) -> Result<(), HelpdeskError>;

    /// Every escalated ticket created in `period`, oldest first, handed to `sink` page by page
    /// (Zendesk Export Search Results with the escalation rule's search terms, `query` when
    /// given; Salesforce SOQL `IsEscalated = true` with `nextRecordsUrl`); rate limits are
    /// waited out. Each one's `escalated_at` is its creation, marked unknown:
    /// [`Helpdesk::escalation_time`] reads the real one.
    async fn escalations(
        &self,
        period: &Period,
        query: Option<&str>,
        sink: &mut (dyn FnMut(TicketRef) + Send),
    ) -> Result<(), HelpdeskError>;

    /// When ticket `id` became an escalation, from its history (Zendesk audits, Salesforce
    /// `CaseHistory`); `None` when the history does not say.
    async fn escalation_time(
        &self,
        id: &str,
        query: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, HelpdeskError>;

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
    /// [`default_respond_solved`]); helpdesks that take several kinds of call answer each in
    /// its own form.
    fn respond_solved(
        &self,
        inbound: &Inbound<'_>,
        outcomes: Vec<(String, Result<SurveyResult, SurveyError>)>,
    ) -> Response {
        let _ = inbound;
        default_respond_solved(outcomes)
    }
}

/// Tickets created from `from` (inclusive) to `to` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    /// `from` and `to` as RFC 3339 instants to the second (`2026-01-01T00:00:00Z`), as search
    /// and SOQL take them.
    pub fn rfc3339(&self) -> (String, String) {
        let instant = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        (instant(self.from), instant(self.to))
    }
}

/// What a ticket records of the service's work, read back from the helpdesk (the README's
/// "What the ticket records"). Nothing here names a helpdesk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseRecord {
    pub ticket_id: String,
    pub partner: String,
    pub product: Option<String>,
    pub subject: String,
    pub opened_at: DateTime<Utc>,
    /// The partner handed the case to the vendor (it carries a verdict, or the helpdesk says so).
    pub escalated: bool,
    pub verdict: Option<Outcome>,
    /// A person's final decision, which counts over `verdict`.
    pub reviewed: Option<Outcome>,
    /// The reason a person gave for overturning the verdict, when it says.
    pub overturn: Option<String>,
    pub reasons: Vec<ReasonKind>,
    pub late: bool,
    pub kb_gap: bool,
    /// The hand-off fields that failed their rule.
    pub missing_fields: Vec<String>,
    /// The article that made the case resolvable.
    pub kb_articles: Vec<String>,
    /// The judge's confidence in its best counted article (the one that made the case bad, sent
    /// it to review, or came closest), floored to the percent as the ticket records it; `None`
    /// when no article was a candidate or the verdict predates the record.
    pub kb_confidence: Option<f64>,
    pub survey: SurveyRecord,
}

impl CaseRecord {
    /// The verdict that counts: a person's decision where there is one, else the judge's good or
    /// bad; `None` while in review or never judged.
    pub fn counted(&self) -> Option<Outcome> {
        self.reviewed
            .or(self.verdict.filter(|v| *v != Outcome::Review))
    }
}

/// The blind survey as the ticket records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SurveyRecord {
    pub sent: bool,
    pub answered: bool,
    /// 1–5.
    pub csat: Option<u8>,
    /// 1–7.
    pub ces: Option<u8>,
    pub about: Option<crate::survey::About>,
    pub comment: Option<String>,
}

/// Takes the records of [`Helpdesk::records`] as they stream in.
pub trait RecordSink {
    /// How many records the period holds, when the helpdesk says (for a progress bar).
    fn total(&mut self, _total: u64) {}
    fn record(&mut self, record: CaseRecord);
}

/// How many times a page read waits out a rate limit before it gives up.
const PATIENT_ATTEMPTS: u32 = 10;
/// The longest wait for one page when the helpdesk names none.
const PATIENT_DEFAULT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `call` (one page of a paged read) until it succeeds, waiting out rate limits and
/// unavailability for as long as the helpdesk's `Retry-After` asks (a batch read, unlike a
/// webhook, has no client waiting), at most [`PATIENT_ATTEMPTS`] times.
pub async fn patiently<T, F, Fut>(mut call: F) -> Result<T, UpstreamError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, UpstreamError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(UpstreamError::Unavailable {
                call: name,
                retry_after,
                ..
            }) if attempt < PATIENT_ATTEMPTS => {
                let wait = retry_after.unwrap_or(PATIENT_DEFAULT_WAIT);
                tracing::info!(
                    call = name,
                    wait_secs = wait.as_secs_f64(),
                    attempt,
                    "Helpdesk asks to wait; reading the page again after it"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A tag or value made safe as a tag suffix: lower case, runs of anything but letters, digits,
/// `-` and `_` as one `_`.
pub fn tag_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The hand-off fields that failed and the article that made the case resolvable, the details a
/// verdict records besides its reasons.
pub fn details(v: &Verdict) -> (Vec<String>, Vec<String>) {
    let mut fields = Vec::new();
    let mut articles = Vec::new();
    for r in &v.reasons {
        match r {
            crate::assess::Reason::MissingHandoff { failures } => {
                fields.extend(failures.iter().map(|f| f.field.clone()))
            }
            crate::assess::Reason::KbResolvable { article } => {
                articles.push(article.article_id.clone())
            }
        }
    }
    (fields, articles)
}

/// The confidence a verdict records, in whole percent (floored, so a recorded `p` means the
/// confidence was at least `p / 100`): the best counted article's, the one that made the case
/// `kb_resolvable`, sent it to review or, for a good case, came closest. `None` without a
/// candidate. Calibration reads it back to place each reviewed case against a threshold.
pub fn recorded_confidence(v: &Verdict) -> Option<u8> {
    let kb = &v.kb;
    kb.resolvable_by
        .as_ref()
        .or(kb.review.as_ref())
        .or(kb.best_other.as_ref())
        .map(|m| floor_percent(m.confidence))
}

/// A confidence (0 to 1) in whole percent, floored as a ticket records it.
pub fn floor_percent(confidence: f64) -> u8 {
    (confidence.clamp(0.0, 1.0) * 100.0 + 1e-9).floor() as u8
}

/// The survey as a ticket records it: `marks` are its tags (Zendesk) or its status (Salesforce),
/// `fields` the mapped fields by name (the ticket sink's scores and comment; a field's value wins
/// over a score tag).
pub fn survey_record(
    f: &crate::survey::config::SurveyFields,
    tags: &[&str],
    fields: &std::collections::BTreeMap<String, String>,
) -> SurveyRecord {
    let t = &f.tags;
    let has = |tag: &str| tags.contains(&tag);
    let tagged = |prefix: &str| {
        tags.iter()
            .find_map(|tag| tag.strip_prefix(prefix))
            .map(str::to_string)
    };
    let field = |name: &Option<String>| name.as_ref().and_then(|n| fields.get(n)).cloned();
    // Salesforce Number fields read back as `4.0`.
    let score = |v: Option<String>| {
        v.and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x <= 255.0)
            .map(|x| x as u8)
    };
    SurveyRecord {
        sent: has(&t.sent) || has(&t.answered),
        answered: has(&t.answered),
        csat: score(field(&f.csat).or_else(|| tagged(&t.score_prefix)))
            .filter(|s| (1..=5).contains(s)),
        ces: score(field(&f.ces).or_else(|| tagged(&t.ces_prefix))).filter(|s| (1..=7).contains(s)),
        about: field(&f.about)
            .or_else(|| tagged(&t.about_prefix))
            .and_then(|a| crate::survey::About::parse(&a)),
        comment: field(&f.comment).filter(|c| !c.trim().is_empty()),
    }
}

/// JSON refusal: 401, 403 or 400 with `{"error", "detail"}`.
pub fn default_reject(err: &HookError) -> Response {
    let (status, code) = err.status();
    json_error(status, code, &err.to_string())
}

/// The most of an upstream error's text an answer's `detail` carries.
const DETAIL_CHARS: usize = 300;

/// JSON answer: 200 with each ticket's verdict; 503 + `Retry-After` when any ticket must be
/// retried (the `detail` names the upstream host and the cause); 422 when a ticket cannot be
/// judged at all.
pub fn default_respond(outcomes: &[TicketOutcome]) -> Response {
    let retry = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .filter(|e| e.retryable());
    let secs = retry.clone().map(ProcessError::retry_after_secs).max();
    if let (Some(secs), Some(first)) = (secs, retry.clone().next()) {
        let busy = retry
            .clone()
            .any(|e| matches!(e, ProcessError::Judge(crate::judge_pool::PoolError::Busy)));
        let detail: String = first.to_string().chars().take(DETAIL_CHARS).collect();
        let mut resp = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            if busy { "busy" } else { "upstream_unavailable" },
            &format!("the escalation could not be finished now; deliver it again later: {detail}"),
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

/// The answer to a `solved` delivery: 200 with each ticket's outcome; errors as the
/// escalation path answers them (503 + `Retry-After` when retrying helps).
pub fn default_respond_solved(
    outcomes: Vec<(String, Result<SurveyResult, SurveyError>)>,
) -> Response {
    let mut errors = Vec::new();
    let mut results = Vec::new();
    for (ticket, r) in outcomes {
        match r {
            Ok(res) => results.push(json!({"ticket": ticket, "survey": res.label()})),
            Err(e) => errors.push(TicketOutcome {
                ticket,
                result: Err(ProcessError::Helpdesk(e.into())),
            }),
        }
    }
    if !errors.is_empty() {
        return default_respond(&errors);
    }
    (StatusCode::OK, axum::Json(json!({ "results": results }))).into_response()
}
