//! `POST /precheck/{connector}`: what the judge would decide about a draft escalation (or a
//! ticket as it stands), and why, before it is sent. The same judge, policy and publication
//! rules as the webhook; nothing is written and no verdict is counted. And
//! `POST /precheck/{connector}/abandoned`: the request form's word that a draft was left after
//! a check showed an article, counted and nothing else.

pub mod auth;
mod limit;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::HttpError;
use crate::assess::kb::KbMatch;
use crate::assess::{Verdict, note};
use crate::config::precheck::PrecheckSettings;
use crate::escalation::{Escalation, Requester, UNKNOWN_PARTNER, locale_of};
use crate::helpdesk::mapping::{ticket_number, value_text};
use crate::helpdesk::{HelpdeskError, HookError, ReplyFormat, TicketRef};
use crate::metrics as m;
use crate::runtime::connector::{Connector, Connectors, ProcessError};
use auth::{Caller, Refusal};
use limit::Limiter;

/// The ticket id of a draft's escalation (it has none yet).
const DRAFT_TICKET: &str = "draft";

/// The largest body an abandoned draft's beacon may carry (`{"articles": n}`).
const ABANDONED_MAX_BYTES: usize = 64;

/// What the precheck's handlers share.
#[derive(Clone)]
struct Shared {
    connectors: Connectors,
    /// The per-client rate limit.
    limiter: Arc<Limiter>,
    /// The server's body limit (413 above it).
    max_body_bytes: usize,
    /// Longest time a precheck waits for the judge (503 after it).
    request_timeout: Duration,
}

/// `POST` and `OPTIONS /precheck/{connector}`, and `POST /precheck/{connector}/abandoned`, for
/// `connectors`.
pub fn routes<S: Clone + Send + Sync + 'static>(
    connectors: Connectors,
    max_body_bytes: usize,
    request_timeout: Duration,
) -> Router<S> {
    Router::new()
        .route("/precheck/{connector}", post(precheck).options(preflight))
        .route(
            "/precheck/{connector}/abandoned",
            post(abandoned).layer(DefaultBodyLimit::max(ABANDONED_MAX_BYTES)),
        )
        .with_state(Shared {
            connectors,
            limiter: Arc::default(),
            max_body_bytes,
            request_timeout,
        })
}

/// A draft escalation as the form or app sends it, or a ticket to check as it stands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Draft {
    subject: Option<String>,
    description: Option<String>,
    /// Hand-off fields by the names the connector maps them to.
    #[serde(default)]
    fields: BTreeMap<String, Value>,
    partner: Option<String>,
    /// The requester's locale (`en-US`, `de`): the articles searched first.
    locale: Option<String>,
    /// The product, for the hand-off rules' product overrides.
    product: Option<String>,
    version: Option<String>,
    /// Article ids or URLs the partner already tried.
    #[serde(default)]
    tried_articles: Vec<String>,
    /// A ticket of the helpdesk to check as it stands (a credential is needed).
    ticket_id: Option<Value>,
}

impl Draft {
    fn escalation(self, connector: &str, now: DateTime<Utc>) -> Escalation {
        let mut esc = Escalation::from_text(connector, DRAFT_TICKET, "", now);
        esc.subject = self.subject.unwrap_or_default().trim().to_string();
        esc.description = self.description.unwrap_or_default();
        esc.handoff = self
            .fields
            .iter()
            .map(|(name, v)| (name.clone(), value_text(Some(v))))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        esc.partner = self
            .partner
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| UNKNOWN_PARTNER.into());
        esc.requester = Requester {
            email: None,
            locale: self.locale.as_deref().map(locale_of),
        };
        esc.product = self.product.filter(|p| !p.trim().is_empty());
        esc.version = self.version.filter(|v| !v.trim().is_empty());
        esc.tried_articles = self.tried_articles;
        esc
    }

    /// Whether it has a subject or a description to judge.
    fn is_draft(&self) -> bool {
        [&self.subject, &self.description]
            .into_iter()
            .any(|t| t.as_deref().is_some_and(|t| !t.trim().is_empty()))
    }

    /// Whether it gives anything of a draft (which a `ticket_id` check would not read).
    fn has_draft_keys(&self) -> bool {
        [
            &self.subject,
            &self.description,
            &self.partner,
            &self.locale,
            &self.product,
            &self.version,
        ]
        .into_iter()
        .any(Option::is_some)
            || !self.fields.is_empty()
            || !self.tried_articles.is_empty()
    }
}

fn bad_request(detail: impl Into<String>) -> HttpError {
    HttpError::BadBody(StatusCode::BAD_REQUEST, detail.into())
}

fn refused(err: HookError) -> HttpError {
    HttpError::Refused {
        format: ReplyFormat::Json,
        err,
    }
}

impl From<Refusal> for HttpError {
    fn from(r: Refusal) -> HttpError {
        refused(match r {
            Refusal::Unauthorized(why) => HookError::Unauthorized(why),
            Refusal::Forbidden(why) => HookError::Forbidden(why),
        })
    }
}

/// The connector and its `[precheck]`; 404 when either is missing.
fn served(state: &Shared, id: &str) -> Result<(Arc<Connector>, PrecheckSettings), HttpError> {
    let connector = state
        .connectors
        .get(id)
        .cloned()
        .ok_or_else(|| HttpError::UnknownConnector(id.chars().take(64).collect()))?;
    let settings = connector
        .precheck
        .clone()
        .ok_or_else(|| HttpError::NoPrecheck(connector.id.to_string()))?;
    Ok((connector, settings))
}

/// Answers from an allowed origin name it (`Access-Control-Allow-Origin`, never `*`).
fn with_cors(mut resp: Response, origin: Option<&str>) -> Response {
    let headers = resp.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    resp
}

/// The CORS preflight of a page of an allowed origin.
async fn preflight(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (_, settings) = served(&state, &id)?;
    let origin = auth::allowed(&settings, auth::origin(&headers))
        .ok_or_else(|| HttpError::from(Refusal::origin_not_allowed()))?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    Ok(with_cors(resp, Some(origin)))
}

/// The allowed origin a page of `id`'s connector calls from, which its answer names (CORS).
fn cors_origin(state: &Shared, id: &str, headers: &HeaderMap) -> Option<String> {
    state
        .connectors
        .get(id)
        .and_then(|c| c.precheck.as_ref())
        .and_then(|s| auth::allowed(s, auth::origin(headers)))
        .map(str::to_string)
}

/// The caller's address, for a public form's rate limit.
fn peer(extensions: &Extensions) -> String {
    extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// `POST /precheck/{connector}`: a check, answered with CORS for an allowed origin.
async fn precheck(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let resp = answer(&state, &id, &headers, &peer(&extensions), body)
        .await
        .map(|json| axum::Json(json).into_response());
    reply(&state, &id, &headers, resp)
}

/// `POST /precheck/{connector}/abandoned`: the request form's beacon, answered with CORS for an
/// allowed origin.
async fn abandoned(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let resp = count_abandoned(&state, &id, &headers, &peer(&extensions), body)
        .map(|()| StatusCode::NO_CONTENT.into_response());
    reply(&state, &id, &headers, resp)
}

/// The answer or the refusal, with CORS for an allowed origin.
fn reply(
    state: &Shared,
    id: &str,
    headers: &HeaderMap,
    resp: Result<Response, HttpError>,
) -> Response {
    with_cors(
        resp.unwrap_or_else(IntoResponse::into_response),
        cors_origin(state, id, headers).as_deref(),
    )
}

/// The caller of `connector`, authenticated and within its rate limit.
fn admit(
    state: &Shared,
    connector: &Connector,
    settings: &PrecheckSettings,
    headers: &HeaderMap,
    peer: &str,
) -> Result<Caller, HttpError> {
    let caller = auth::authenticate(settings, headers, Utc::now()).inspect_err(|_| {
        tracing::warn!(connector = %connector.id, "Precheck refused: no or wrong credential, or origin");
    })?;
    let client = match &caller {
        Caller::Trusted { client } => client.clone(),
        Caller::Public { origin } => format!("{origin} {peer}"),
    };
    state
        .limiter
        .take(
            connector.id.as_str(),
            &client,
            settings.per_client_per_minute,
            Instant::now(),
        )
        .map_err(HttpError::TooManyRequests)?;
    Ok(caller)
}

/// The body, or 413 above `limit` bytes.
fn body_of(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, HttpError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HttpError::PayloadTooLarge(limit),
        status => HttpError::BadBody(status, rejection.body_text()),
    })
}

async fn answer(
    state: &Shared,
    id: &str,
    headers: &HeaderMap,
    peer: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, HttpError> {
    let (connector, settings) = served(state, id)?;
    let now = Utc::now();
    let caller = admit(state, &connector, &settings, headers, peer)?;
    let body = body_of(body, state.max_body_bytes)?;
    let draft: Draft = serde_json::from_slice(&body).map_err(|e| {
        bad_request(format!(
            "the body is not a draft escalation (JSON with `subject`, `description`, `fields`, \
             `partner`, `locale`, `tried_articles`; or `ticket_id`): {e}"
        ))
    })?;
    let esc = match (&draft.ticket_id, &caller) {
        (Some(_), _) if draft.has_draft_keys() => {
            return Err(bad_request(
                "give either `ticket_id` or a draft (`subject`, `description`, `fields`, ...), \
                 not both",
            ));
        }
        (Some(_), Caller::Public { .. }) => {
            return Err(refused(HookError::Forbidden(
                "checking a ticket needs a credential; a public form checks drafts only".into(),
            )));
        }
        (Some(raw), Caller::Trusted { .. }) => {
            let ticket = ticket_number(raw)
                .ok_or_else(|| bad_request("`ticket_id` must be a ticket number"))?;
            load(&connector, ticket, now).await?
        }
        (None, _) if draft.is_draft() => draft.escalation(connector.id.as_str(), now),
        (None, _) => {
            return Err(bad_request(
                "a draft needs a `subject` or a `description` (or give `ticket_id`)",
            ));
        }
    };
    let verdict = tokio::time::timeout(state.request_timeout, connector.judge(&esc))
        .await
        .map_err(|_| HttpError::RetryLater(30))?
        .map_err(|e| unfinished(&connector, e))?;
    m::precheck(&connector.id, verdict.outcome.as_str());
    for r in &verdict.reasons {
        m::precheck_problem(&connector.id, r.name());
    }
    if answering(&verdict).next().is_some() {
        m::precheck_articles_shown(&connector.id);
    }
    tracing::info!(
        connector = %connector.id,
        outcome = verdict.outcome.as_str(),
        reasons = ?verdict.reasons.iter().map(|r| r.name()).collect::<Vec<_>>(),
        public = matches!(caller, Caller::Public { .. }),
        "Precheck answered"
    );
    Ok(match caller {
        Caller::Trusted { .. } => trusted_answer(&esc, &verdict),
        Caller::Public { .. } => public_answer(&verdict),
    })
}

/// The request form's beacon: its page was left after a check listed `articles` articles,
/// without the draft being sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Abandoned {
    articles: u32,
}

/// Counts a draft abandoned on the request form after a check listed an article; nothing is
/// read or written elsewhere.
fn count_abandoned(
    state: &Shared,
    id: &str,
    headers: &HeaderMap,
    peer: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<(), HttpError> {
    let (connector, settings) = served(state, id)?;
    admit(state, &connector, &settings, headers, peer)?;
    let body = body_of(body, ABANDONED_MAX_BYTES)?;
    let beacon: Abandoned = serde_json::from_slice(&body).map_err(|e| {
        bad_request(format!(
            "the body is not `{{\"articles\": n}}`, the number of articles the check showed: {e}"
        ))
    })?;
    if beacon.articles == 0 {
        return Err(bad_request(
            "`articles` must be at least 1: a draft counts as abandoned only after the check showed an article",
        ));
    }
    m::precheck_abandoned(&connector.id, "form");
    tracing::info!(connector = %connector.id, "Draft abandoned after the check showed an article");
    Ok(())
}

/// Reads a ticket through the tickets role (a read, never a write), as escalated now.
async fn load(
    connector: &Connector,
    ticket: String,
    now: DateTime<Utc>,
) -> Result<Escalation, HttpError> {
    let t = TicketRef {
        id: ticket,
        escalated_at: now,
        escalated_at_unknown: false,
        snapshot: None,
    };
    match connector.helpdesk.tickets.load(&t).await {
        Ok(loaded) => Ok(loaded.escalation),
        Err(HelpdeskError::Unusable(why)) => Err(HttpError::UnusableTicket(why)),
        Err(e) => Err(unfinished(connector, e.into())),
    }
}

/// A precheck the knowledge base, the judge or the helpdesk could not finish now: 503 with
/// `Retry-After`; the detail goes to the log.
fn unfinished(connector: &Connector, e: ProcessError) -> HttpError {
    tracing::warn!(connector = %connector.id, error = %e, reason = e.reason(), "Precheck not finished");
    HttpError::RetryLater(e.retry_after_secs())
}

/// The articles that answer the escalation: the one that makes it bad, or the one left to
/// review.
fn answering(verdict: &Verdict) -> impl Iterator<Item = &KbMatch> {
    verdict
        .kb
        .resolvable_by
        .iter()
        .chain(verdict.kb.review.iter())
}

fn handoff(verdict: &Verdict) -> Vec<Value> {
    verdict
        .reasons
        .iter()
        .filter_map(|r| match r {
            crate::assess::Reason::MissingHandoff { failures } => Some(failures),
            crate::assess::Reason::KbResolvable { .. } => None,
        })
        .flatten()
        .map(
            |f| json!({"field": f.field, "rule": f.rule, "found": f.found, "message": f.message()}),
        )
        .collect()
}

fn reasons(verdict: &Verdict) -> Vec<&'static str> {
    verdict.reasons.iter().map(|r| r.name()).collect()
}

/// The whole answer, for an app or server with a credential.
fn trusted_answer(esc: &Escalation, verdict: &Verdict) -> Value {
    json!({
        "outcome": verdict.outcome,
        "reasons": reasons(verdict),
        "handoff": handoff(verdict),
        "articles": answering(verdict).map(|a| json!({
            "id": a.article_id,
            "title": a.title,
            "url": a.url,
            "passage": a.passage,
            "confidence": a.confidence,
        })).collect::<Vec<_>>(),
        "threshold": verdict.kb.threshold,
        "review_bound": verdict.kb.review_bound,
        "ticket": (esc.ticket_id != DRAFT_TICKET).then_some(&esc.ticket_id),
        "note": note::render(esc, verdict),
    })
}

/// The answer for a public form: published article facts and the field rules' messages.
fn public_answer(verdict: &Verdict) -> Value {
    json!({
        "outcome": verdict.outcome,
        "reasons": reasons(verdict),
        "handoff": handoff(verdict),
        "articles": answering(verdict).map(|a| json!({
            "title": a.title,
            "url": a.url,
            "passage": a.passage,
        })).collect::<Vec<_>>(),
    })
}
