//! The HTTP side: routes, middleware (request id, tracing, body limit, time limit), health and
//! metrics.

mod error;
mod page;
pub mod precheck;
pub mod reply;
mod survey;

pub use self::error::HttpError;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Instrument;

use crate::helpdesk::{Call, Event, ReplyFormat};
use crate::metrics as m;
use crate::runtime::connector::{Connectors, TicketOutcome};
use crate::runtime::serve;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Limits of the HTTP side.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    pub max_body_bytes: usize,
    /// Longest time a webhook waits for its answer. Work still under way then goes on, and the
    /// caller is told to deliver again (the redelivery finds the verdict and writes nothing).
    pub request_timeout: Duration,
    /// Longest time a client may take to send a request's headers. The timer runs whenever a
    /// connection waits for a request, so it also closes idle keep-alive connections.
    pub header_read_timeout: Duration,
    /// Longest time a client may take to send a request's whole body (408 after it).
    pub body_read_timeout: Duration,
    /// Most connections open at once; further clients wait in the listen queue.
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_body_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(9),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

impl From<&ServerSettings> for serve::Limits {
    fn from(s: &ServerSettings) -> serve::Limits {
        serve::Limits {
            header_read_timeout: s.header_read_timeout,
            max_connections: s.max_connections,
        }
    }
}

#[derive(Clone)]
struct AppState {
    connectors: Connectors,
    settings: ServerSettings,
}

impl axum::extract::FromRef<AppState> for Connectors {
    fn from_ref(state: &AppState) -> Connectors {
        Arc::clone(&state.connectors)
    }
}

pub fn router(connectors: Connectors, settings: ServerSettings) -> Router {
    let state = AppState {
        connectors: Arc::clone(&connectors),
        settings,
    };
    Router::new()
        .route("/hooks/{connector}", post(hook))
        .merge(health_routes())
        .merge(survey::routes())
        .merge(precheck::routes(
            connectors,
            settings.max_body_bytes,
            settings.request_timeout,
        ))
        .fallback(|| async { HttpError::NoRoute })
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(settings, read_body))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(drop_unsafe_request_id))
        .with_state(state)
}

/// `/healthz` and `/livez`.
fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
}

/// What a connection beyond `--max-connections` is served ([`crate::runtime::serve::serve`]'s
/// reserve): `/healthz` and `/livez`, so health checks answer while webhooks hold every
/// connection; anything else is answered 503 `busy` with `Retry-After` and the connection
/// closed, so the helpdesk delivers again.
pub fn overflow_router(connectors: Connectors, settings: ServerSettings) -> Router {
    health_routes()
        .fallback(|| async { HttpError::Busy })
        .with_state(AppState {
            connectors,
            settings,
        })
}

/// The longest client-sent request id kept.
pub const MAX_REQUEST_ID_CHARS: usize = 64;

/// Whether a client-sent request id may go into logs as it is: 1 to
/// [`MAX_REQUEST_ID_CHARS`] of `[A-Za-z0-9._-]`, so it cannot pass for other log fields.
pub fn safe_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Removes an `x-request-id` of any other shape (and every one when several are sent), so a
/// fresh id is generated in its place.
fn drop_unsafe_request_id<B>(mut req: Request<B>) -> Request<B> {
    let ids = req.headers().get_all(REQUEST_ID);
    let mut ids = ids.iter();
    let keep =
        matches!((ids.next(), ids.next()), (Some(id), None) if safe_request_id(id.as_bytes()));
    if !keep {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// Readiness: 200 `ok` once every connector can judge (its embedded index serves; a mirror, or
/// until its first sync the helpdesk's search), 503 `starting` before, with each embedded
/// knowledge base's state, each mirror's (`mirrors`), the judge pool's queue, and
/// by connector what an admin must fix in its helpdesk before some verdicts can be written
/// (`admin_fixes`; they do not make the service unready).
async fn healthz(State(state): State<AppState>) -> Response {
    let mut ready = true;
    let mut kbs = serde_json::Map::new();
    let mut fixes = serde_json::Map::new();
    let mut mirrors = serde_json::Map::new();
    let now = chrono::Utc::now();
    for (id, c) in state.connectors.iter() {
        ready &= c.can_judge();
        if let Some(status) = c.kb_status() {
            kbs.insert(id.to_string(), serde_json::json!(status));
        }
        if let Some(mirror) = c.mirror() {
            mirrors.insert(id.to_string(), serde_json::json!(mirror.status(now)));
        }
        let needed = c.helpdesk.tickets.admin_fixes();
        if !needed.is_empty() {
            fixes.insert(id.to_string(), serde_json::json!(needed));
        }
    }
    let judges = state.connectors.values().next().map(|c| {
        serde_json::json!({
            "threads": c.judges.threads(),
            "queued": c.judges.queued(),
            "queue_capacity": c.judges.queue_capacity(),
        })
    });
    let body = axum::Json(serde_json::json!({
        "status": if ready { "ok" } else { "starting" },
        "version": env!("CARGO_PKG_VERSION"),
        "knowledge_bases": kbs,
        "mirrors": mirrors,
        "judge_pool": judges,
        "admin_fixes": fixes,
    }));
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body).into_response()
}

/// Liveness: the process answers, whatever its knowledge bases are doing.
async fn livez() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "alive", "version": env!("CARGO_PKG_VERSION")}))
}

/// The metrics router, served on its own listen address only (never next to the webhooks).
pub fn metrics_router() -> Router {
    let handle = m::handle();
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
            }),
        )
        .fallback(|| async { HttpError::NoRoute })
}

/// Reads the whole request body within the body-read time limit before routing, so a client
/// that sends headers and then trickles or withholds the body is answered 408 and its
/// connection closed, instead of holding a connection and a task. A body whose declared
/// `Content-Length` is over the limit is answered 413 at once, unread, and its connection
/// closed.
async fn read_body(
    State(settings): State<ServerSettings>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(declared) = declared
        && declared > settings.max_body_bytes as u64
    {
        tracing::warn!(
            declared,
            limit = settings.max_body_bytes,
            "Request body declared over the limit; refused unread"
        );
        let mut resp = HttpError::PayloadTooLarge(settings.max_body_bytes).into_response();
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    let (parts, body) = req.into_parts();
    // One byte more than the limit, so the extractor still answers 413 for too large a body.
    let limit = settings.max_body_bytes.saturating_add(1);
    let read = tokio::time::timeout(
        settings.body_read_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e))
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) =>
        {
            return HttpError::PayloadTooLarge(settings.max_body_bytes).into_response();
        }
        Ok(Err(_)) => {
            return HttpError::BadBody(
                StatusCode::BAD_REQUEST,
                "the body could not be read".into(),
            )
            .into_response();
        }
        Err(_) => {
            tracing::warn!(
                limit_secs = settings.body_read_timeout.as_secs_f64(),
                "Request body not received in time"
            );
            return HttpError::BodyTimeout(settings.body_read_timeout.as_secs_f64())
                .into_response();
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

async fn hook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let Some(connector) = state.connectors.get(id.as_str()).cloned() else {
        return Err(HttpError::UnknownConnector(id.chars().take(64).collect()));
    };
    let span =
        tracing::info_span!("hook", connector = %connector.id, delivery = tracing::field::Empty);
    async move {
        let body = match body {
            Ok(b) => b,
            Err(rejection) => {
                let status = rejection.status();
                m::webhook(&connector.id, "rejected");
                tracing::warn!(status = status.as_u16(), "Webhook body refused");
                return Err(if status == StatusCode::PAYLOAD_TOO_LARGE {
                    HttpError::PayloadTooLarge(state.settings.max_body_bytes)
                } else {
                    HttpError::BadBody(status, rejection.body_text())
                });
            }
        };
        let call = Call {
            headers: &headers,
            query: query.as_deref(),
            body: &body,
            now: Utc::now(),
        };
        let format = connector.helpdesk.inbound.reply_format(&call);
        let (delivery, solved) = match connector.helpdesk.inbound.accept_event(&call) {
            Ok(Event::Escalated(d)) => (d, false),
            Ok(Event::Solved(d)) => (d, true),
            Err(e) => {
                m::webhook(&connector.id, "rejected");
                tracing::warn!(error = %e, "Webhook refused");
                return Err(HttpError::Refused { format, err: e });
            }
        };
        if let Some(d) = &delivery.delivery_id {
            tracing::Span::current().record("delivery", d.as_str());
        }
        if solved {
            return solved_cases(&state, &connector, format, delivery).await;
        }
        let outcomes = {
            let connector = Arc::clone(&connector);
            run_tickets(&state, &connector.id.clone(), "Escalation", delivery, move |t| {
                let connector = Arc::clone(&connector);
                async move {
                    let result = connector.process(&t).await;
                    if let Err(e) = &result {
                        tracing::error!(ticket = %t.id, error = %e, retryable = e.retryable(), "Escalation not finished");
                    }
                    TicketOutcome {
                        ticket: t.id.clone(),
                        result,
                    }
                }
            })
            .await
        };
        let outcomes = outcomes?;
        count_outcome(
            &connector.id,
            outcomes
                .iter()
                .filter_map(|o| o.result.as_ref().err())
                .map(|e| (e.retryable(), e.reason())),
        );
        Ok(reply::escalations(format, &outcomes))
    }
    .instrument(span)
    .await
}

/// Counts how a delivery ended from its tickets' errors (retryable, reason): `ok` without
/// any, `retry` (and the first retryable one's reason) when a later delivery may succeed,
/// `rejected` when every error is final.
fn count_outcome(connector: &str, mut errors: impl Iterator<Item = (bool, &'static str)>) {
    let Some(first) = errors.next() else {
        m::webhook(connector, "ok");
        return;
    };
    match std::iter::once(first)
        .chain(errors)
        .find(|(retry, _)| *retry)
    {
        Some((_, reason)) => {
            m::webhook(connector, "retry");
            m::webhook_retry(connector, reason);
        }
        None => m::webhook(connector, "rejected"),
    }
}

/// A `solved` delivery: the blind survey for each case, in its own task like the escalations.
async fn solved_cases(
    state: &AppState,
    connector: &Arc<crate::runtime::connector::Connector>,
    format: ReplyFormat,
    delivery: crate::helpdesk::Delivery,
) -> Result<Response, HttpError> {
    let Some(survey) = connector.survey.clone() else {
        m::webhook(&connector.id, "rejected");
        tracing::warn!("Solved event for a connector without a survey");
        return Err(HttpError::NoSurvey);
    };
    let outcomes = run_tickets(state, &connector.id, "Survey", delivery, move |t| {
        let survey = Arc::clone(&survey);
        async move {
            let result = survey.on_solved(&t.id, Utc::now()).await;
            if let Err(e) = &result {
                tracing::error!(ticket = %t.id, error = %e, retryable = e.retryable(), "Survey not finished");
            }
            (t.id.clone(), result)
        }
    })
    .await?;
    count_outcome(
        &connector.id,
        outcomes
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .map(|e| (e.retryable(), e.reason())),
    );
    Ok(reply::solved(format, outcomes))
}

/// Runs `each` for every ticket of the delivery, one after the other, in a task of its own (a
/// caller that hangs up does not cut a write-back short) and within the request time limit. When
/// the work fails or is still under way at the limit, the `Err` is the answer that asks the
/// caller to deliver again (the work goes on; the redelivery finds it done).
async fn run_tickets<T, Fut>(
    state: &AppState,
    connector: &str,
    what: &'static str,
    delivery: crate::helpdesk::Delivery,
    each: impl Fn(crate::helpdesk::TicketRef) -> Fut + Send + 'static,
) -> Result<Vec<T>, HttpError>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let work = tokio::spawn(
        async move {
            let mut outcomes = Vec::with_capacity(delivery.tickets.len());
            for t in delivery.tickets {
                outcomes.push(each(t).await);
            }
            outcomes
        }
        .in_current_span(),
    );
    match tokio::time::timeout(state.settings.request_timeout, work).await {
        Ok(Ok(outcomes)) => Ok(outcomes),
        Ok(Err(join)) => {
            tracing::error!(error = %join, work = what, "Task failed");
            m::webhook(connector, "retry");
            m::webhook_retry(connector, "failed");
            Err(HttpError::RetryLater(60))
        }
        Err(_) => {
            tracing::warn!(
                work = what,
                "Still under way at the time limit; asking for redelivery"
            );
            m::webhook(connector, "retry");
            m::webhook_retry(connector, "time_limit");
            Err(HttpError::RetryLater(30))
        }
    }
}
