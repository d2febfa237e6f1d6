//! Helpdesks: one folder each, listed once in [`registry`] (whose `HelpdeskConfig` is the
//! `[helpdesk]` table of a connector file). A helpdesk folder implements small roles, each with
//! one job:
//! - its `[helpdesk]` table ([`HelpdeskFile`], validated into a [`ValidHelpdeskFile`]), which
//!   builds the roles of a [`Helpdesk`];
//! - [`Inbound`]: verify a call, parse it into ticket references and an event, choose the reply
//!   format (pure: bytes and headers in, no I/O);
//! - [`Tickets`]: load a ticket into the normalised [`Escalation`] (through the shared field
//!   [`mapping`]), write the verdict back, and list the sweep's unjudged tickets;
//! - [`Record`]: read a whole period back, page by page, for reports, calibration and backfill,
//!   where the helpdesk's search can (Freshdesk's stops at 300 tickets: it has none);
//! - a [`KnowledgeBase`] (its own article search) and a [`SurveyDesk`] (the blind survey's reads
//!   and writes), where the helpdesk has them.
//!
//! This file holds the roles and the types they take and give. What the helpdesks share beside
//! them has a file each: the field [`mapping`], what a ticket [`records`] of the service's work
//! (and how it is read back), and the verdict as [`tags`].
//!
//! It knows nothing of how escalations are judged, and builds no HTTP answer: the server renders
//! them in the [`ReplyFormat`] the inbound role chooses.

pub mod freshdesk;
pub mod mapping;
pub mod records;
pub mod registry;
pub mod salesforce;
pub mod sandbox;
pub mod sidebar;
pub mod tags;
pub mod zendesk;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use self::records::{Period, RecordSink};
use crate::assess::{Outcome, Verdict};
use crate::checks::Problem;
use crate::escalation::Escalation;
use crate::http::UpstreamError;
use crate::kb::{KbBackend, KnowledgeBase};
use crate::survey::config::SurveyFields;
use crate::survey::{SurveyDesk, SurveyError};

/// A helpdesk as a connector holds it at run time: one object for each of its roles, built by
/// the registry from the connector's validated `[helpdesk]` table.
#[derive(Clone)]
pub struct Helpdesk {
    /// `zendesk`, `salesforce`, ...: the `type` of its `[helpdesk]` table, and the `helpdesk`
    /// label of upstream metrics.
    pub kind: &'static str,
    /// Whether its tickets role takes search terms to find escalated tickets.
    pub search_terms: SearchTerms,
    pub inbound: Arc<dyn Inbound>,
    pub tickets: Arc<dyn Tickets>,
    /// The period read back of reports, calibration and backfill; `None` when the helpdesk
    /// cannot read a whole period ([`ValidHelpdeskFile::reads_back`] says why).
    pub record: Option<Arc<dyn Record>>,
    /// The helpdesk's own knowledge base (for `backend = "helpdesk"`), when its API is
    /// configured.
    pub knowledge_base: Option<Arc<dyn KnowledgeBase>>,
    /// The helpdesk's knowledge base listed whole or by changes (for `backend = "mirror"`),
    /// when its API is configured.
    pub kb_source: Option<Arc<dyn crate::kb::mirror::KbSource>>,
    /// What the blind survey reads and writes through the helpdesk, when the connector has a
    /// `[survey]` and the helpdesk supports it.
    pub survey_desk: Option<Arc<dyn SurveyDesk>>,
}

/// The `[helpdesk.http]` table every helpdesk's connector file may have.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    pub timeout_secs: Option<u64>,
    pub max_retries: Option<u32>,
    pub max_retry_wait_secs: Option<u64>,
}

impl HttpFile {
    /// The retry policy it sets; problems are reported under `helpdesk.http`.
    pub fn retry(&self, problems: &mut Vec<Problem>) -> crate::http::RetrySettings {
        crate::http::RetrySettings::from_file(
            self.timeout_secs,
            self.max_retries,
            self.max_retry_wait_secs,
            "helpdesk.http",
            problems,
        )
    }
}

/// A helpdesk's `[helpdesk]` table as its connector file writes it (`type = "..."` picks the
/// helpdesk in the registry). Each helpdesk folder implements it on its own table type.
pub trait HelpdeskFile: serde::de::DeserializeOwned + std::fmt::Debug {
    /// The validated table.
    type Valid: ValidHelpdeskFile;

    /// Checks the table without touching the network and collects every problem (keys under
    /// `helpdesk.`). `known_fields` receives every hand-off field name the helpdesk maps (its
    /// `[helpdesk.fields]`, see [`mapping::FieldMapping::validate`]); `kb` is the connector's
    /// knowledge-base choice. `None` when the table has problems.
    fn validate(
        self,
        kb: &KbBackend,
        known_fields: &mut Vec<String>,
        problems: &mut Vec<Problem>,
    ) -> Option<Self::Valid>;
}

/// A helpdesk's validated `[helpdesk]` table: nothing built, no network touched yet.
pub trait ValidHelpdeskFile: std::fmt::Debug + Send {
    /// Takes the connector's `[survey]` in and checks the names this helpdesk reads and writes
    /// for it (no network); problems are reported under `survey.`. Default: nothing to check.
    fn with_survey(&mut self, fields: &SurveyFields, problems: &mut Vec<Problem>) {
        let _ = (fields, problems);
    }

    /// Whether the helpdesk's API is configured (URL and credentials): the sweep, reports,
    /// calibration and backfill read through it.
    fn has_api(&self) -> bool;

    /// Whether the tickets role finds escalated tickets with search terms the connector gives
    /// (`[sweep] query`, `backfill --query`); see [`SearchTerms`].
    fn search_terms(&self) -> SearchTerms;

    /// Whether the helpdesk reads a whole period back (it builds a [`Record`] role, which
    /// `report`, `calibrate` and `backfill` read through); `Err` says why it cannot.
    fn reads_back(&self) -> Result<(), &'static str>;

    /// Builds the roles: HTTP clients and the like, no call made yet. `connector` is the
    /// connector's id (it goes into each escalation); `survey` the connector's survey names
    /// when it has a `[survey]` (leave [`Helpdesk::survey_desk`] `None` when the helpdesk does
    /// not support the survey: the connector then refuses to start).
    fn build(
        self,
        connector: &str,
        survey: Option<&SurveyFields>,
    ) -> Result<Helpdesk, reqwest::Error>;
}

/// How a helpdesk's tickets role finds escalated tickets in a search (sweep, backfill).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchTerms {
    /// By search terms the connector gives; the sweep needs them (backfill may find them
    /// elsewhere, e.g. Zendesk's escalation trigger). `example` goes into error messages.
    Taken {
        helpdesk: &'static str,
        example: &'static str,
    },
    /// By a rule of its own; given terms are refused with `how` (e.g. "Salesforce Cases are
    /// found by `IsEscalated`").
    Refused { how: &'static str },
}

/// One inbound call, as the server hands it to the helpdesk's inbound role.
pub struct Call<'a> {
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
    /// The verdict already on the ticket, if any: nothing is written again.
    pub judged: Option<Outcome>,
    /// The helpdesk's version of the ticket, for a conditional write.
    pub version: Option<String>,
    /// The ticket already records a survey in a single status (Salesforce): the pending mark
    /// is not written over it. Tags (Zendesk) sit side by side, so there it is always false.
    pub survey_recorded: bool,
    /// What the check before escalating said, when the ticket records it.
    pub prechecked: Option<records::Prechecked>,
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
    /// The helpdesk refused the verdict write for its own configuration (a restricted
    /// picklist without the verdict's value): no delivery passes until an admin fixes it, as
    /// `fix` says. `swept`: the connector's sweep finds the ticket again (no verdict on it), so
    /// the delivery is answered as done instead of being retried.
    #[error("{fix}")]
    NeedsAdmin { fix: String, swept: bool },
}

impl HelpdeskError {
    /// Whether a later delivery may succeed: every upstream failure (outages, timeouts,
    /// unreadable answers, and refusals such as 401/403/422 that an admin can fix), and a
    /// configuration an admin must fix when no sweep will find the ticket again. Only a fact
    /// about the ticket itself (it does not exist, it cannot be judged) is final.
    pub fn retryable(&self) -> bool {
        match self {
            HelpdeskError::Upstream(_) => true,
            HelpdeskError::NeedsAdmin { swept, .. } => !swept,
            HelpdeskError::Unusable(_) => false,
        }
    }

    /// Whether the delivery is answered as done although the ticket is not: the sweep takes
    /// it up again (see [`HelpdeskError::NeedsAdmin`]).
    pub fn deferred(&self) -> bool {
        matches!(self, HelpdeskError::NeedsAdmin { swept: true, .. })
    }

    /// The `reason` label of a retried delivery (see [`UpstreamError::reason`]; `admin_fix`:
    /// [`HelpdeskError::NeedsAdmin`]).
    pub fn reason(&self) -> &'static str {
        match self {
            HelpdeskError::Upstream(e) => e.reason(),
            HelpdeskError::Unusable(_) => "unusable",
            HelpdeskError::NeedsAdmin { .. } => "admin_fix",
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
            HelpdeskError::Unusable(m) | HelpdeskError::NeedsAdmin { fix: m, .. } => {
                SurveyError::Unusable(m)
            }
        }
    }
}

/// The form a helpdesk takes its answers in. The server renders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFormat {
    /// JSON: `{"results": [...]}` with 200; `{"error", "detail"}` with 4xx, 422 for a ticket
    /// that cannot be judged, 503 + `Retry-After` when a later delivery may succeed.
    Json,
    /// A SOAP outbound message (Salesforce): the `Ack` document once every item of the message
    /// is finished, otherwise a SOAP fault (500) so the message is delivered again; a refused
    /// call is a `soapenv:Client` fault with the refusal's status.
    SoapAck,
}

/// The inbound role: verifies a call from the helpdesk, says what it asks for, and chooses the
/// form of the answer. Pure: bytes and headers in, no I/O, no clock read (the call carries
/// `now`).
pub trait Inbound: Send + Sync {
    /// Verifies the call (signature, shared secret, origin; constant-time comparisons) before
    /// parsing anything, then parses it: the tickets it escalates ([`Event::Escalated`]) or the
    /// cases solved, for the blind survey ([`Event::Solved`]). Every ticket carries the time it
    /// was escalated, from the verified call. Refusals are [`HookError`]s (4xx: the caller must
    /// not retry unchanged).
    fn accept_event(&self, call: &Call<'_>) -> Result<Event, HookError>;

    /// The form of every answer to `call` (refusals included). Default: JSON.
    fn reply_format(&self, call: &Call<'_>) -> ReplyFormat {
        let _ = call;
        ReplyFormat::Json
    }

    /// The headers that make `body`, sent at `now`, a call this connector accepts (its own
    /// signature with its first secret), for `send` (trying a connector out). `Err` says why
    /// this connector cannot sign (e.g. it authenticates calls another way).
    fn sign(&self, body: &[u8], now: DateTime<Utc>) -> Result<Vec<(String, String)>, String>;
}

/// The tickets role: reads tickets into the normalised [`Escalation`], writes verdicts back,
/// and lists the sweep's unjudged tickets. Every call goes through the helpdesk's API client,
/// which retries within its budget and then reports an [`UpstreamError`]; only a fact about the
/// ticket itself (it does not exist, it cannot be judged) is [`HelpdeskError::Unusable`].
#[async_trait]
pub trait Tickets: Send + Sync {
    /// Reads a ticket (or takes [`TicketRef::snapshot`] when the inbound call carried it) and
    /// maps it to an escalation through the connector's field mapping
    /// ([`mapping::FieldMapping::read`]), with the verdict already on it, if any, and its version
    /// for a conditional write.
    async fn load(&self, ticket: &TicketRef) -> Result<Loaded, HelpdeskError>;

    /// Maps a saved ticket (as the helpdesk's API returns it) to an escalation, offline
    /// (`check`). Without `escalated_at`, the ticket's own best guess (Zendesk: its
    /// `updated_at`); `Unusable` when it has none.
    fn escalation_from_snapshot(
        &self,
        snapshot: &serde_json::Value,
        escalated_at: Option<DateTime<Utc>>,
    ) -> Result<Escalation, HelpdeskError>;

    /// Writes the verdict's tags or fields and one internal note, unless the ticket already
    /// carries a verdict (another delivery wrote it first: [`Written::Already`]); conditional
    /// on [`Loaded::version`] where the helpdesk has versions, so two writers never both land.
    /// With `survey_pending` (the survey's pending mark, e.g. `csat_blind_pending`), the same
    /// write marks the ticket for the blind survey, so a verdict never lands without its mark.
    /// Tags someone else added in between are kept.
    async fn write_back(
        &self,
        loaded: &Loaded,
        verdict: &Verdict,
        note: &str,
        survey_pending: Option<&str>,
    ) -> Result<Written, HelpdeskError>;

    /// Reads what the helpdesk's own configuration must hold for the verdict writes
    /// (Salesforce: the verdict picklist's values) and returns what an admin must fix, as
    /// [`Tickets::admin_fixes`] then says too. Default: a helpdesk that takes any verdict
    /// value (Zendesk and Freshdesk tags) has nothing to read.
    async fn preflight(&self) -> Result<Vec<String>, HelpdeskError> {
        Ok(Vec::new())
    }

    /// What an admin must fix, as last seen by [`Tickets::preflight`] or a refused verdict
    /// write, for `/healthz`. Default: nothing.
    fn admin_fixes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Escalated tickets changed since `since` that carry no verdict, oldest change first (at
    /// most one page, e.g. [`SWEEP_PAGE`]); `query` narrows them when the helpdesk takes search
    /// terms ([`SearchTerms`]). Their escalation time is unknown: each one's `escalated_at` is
    /// its creation and `escalated_at_unknown` is set.
    async fn unjudged(
        &self,
        query: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<TicketRef>, HelpdeskError>;
}

/// The record role: the helpdesk is the service's record (no database), and this reads a whole
/// period of it back, page by page, for reports, calibration and backfill. Only a helpdesk whose
/// search can list every ticket of a period has it ([`Helpdesk::record`]).
#[async_trait]
pub trait Record: Send + Sync {
    /// Every ticket created in `period`, read back page by page as the service recorded it
    /// (Zendesk Export Search Results, Salesforce SOQL with `nextRecordsUrl`), each handed to
    /// `sink` as soon as its page arrives, so memory stays flat however many there are. Rate
    /// limits are waited out ([`records::patiently`]). `survey` names the blind survey's tags
    /// and fields, when the connector has one.
    async fn records(
        &self,
        period: &Period,
        survey: Option<&SurveyFields>,
        sink: &mut (dyn RecordSink + Send),
    ) -> Result<(), HelpdeskError>;

    /// Every escalated ticket created in `period`, oldest first, handed to `sink` page by page
    /// (Zendesk Export Search Results with the escalation rule's search terms, `query` when
    /// given; Salesforce SOQL `IsEscalated = true` with `nextRecordsUrl`); rate limits are
    /// waited out. Each one's `escalated_at` is its creation, marked unknown:
    /// [`Record::escalation_time`] reads the real one.
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
}
