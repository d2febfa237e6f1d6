//! The HTTP side: routes, middleware (request id, tracing, body limit, time limit), health and
//! metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Instrument;

use crate::connector::Connectors;
use crate::helpdesk::{Event, Inbound, TicketOutcome, json_error};
use crate::metrics as m;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Limits of the HTTP side.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    pub max_body_bytes: usize,
    /// Longest time a webhook waits for its answer. Work still under way then goes on, and the
    /// caller is told to deliver again (the redelivery finds the verdict and writes nothing).
    pub request_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_body_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(9),
        }
    }
}

#[derive(Clone)]
struct AppState {
    connectors: Connectors,
    metrics: PrometheusHandle,
    settings: ServerSettings,
}

impl axum::extract::FromRef<AppState> for Connectors {
    fn from_ref(state: &AppState) -> Connectors {
        Arc::clone(&state.connectors)
    }
}

pub fn router(connectors: Connectors, settings: ServerSettings) -> Router {
    let state = AppState {
        connectors,
        metrics: m::handle(),
        settings,
    };
    Router::new()
        .route("/hooks/{connector}", post(hook))
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/metrics", get(metrics))
        .merge(crate::survey::web::routes())
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
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
        .with_state(state)
}

/// Readiness: 200 `ok` once every connector can judge (its embedded index serves), 503
/// `starting` before, with each embedded knowledge base's state and the judge pool's queue.
async fn healthz(State(state): State<AppState>) -> Response {
    let mut ready = true;
    let mut kbs = serde_json::Map::new();
    for (id, c) in state.connectors.iter() {
        ready &= c.can_judge();
        if let Some(status) = c.kb_status() {
            kbs.insert(id.clone(), serde_json::json!(status));
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
        "judge_pool": judges,
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

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn hook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(connector) = state.connectors.get(&id).cloned() else {
        return json_error(
            StatusCode::NOT_FOUND,
            "unknown_connector",
            &format!(
                "no connector named `{}`",
                id.chars().take(64).collect::<String>()
            ),
        );
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
                return if status == StatusCode::PAYLOAD_TOO_LARGE {
                    json_error(
                        status,
                        "payload_too_large",
                        &format!("the body exceeds {} bytes", state.settings.max_body_bytes),
                    )
                } else {
                    json_error(status, "bad_request", &rejection.body_text())
                };
            }
        };
        let inbound = Inbound {
            headers: &headers,
            query: query.as_deref(),
            body: &body,
            now: Utc::now(),
        };
        let (delivery, solved) = match connector.helpdesk.accept_event(&inbound) {
            Ok(Event::Escalated(d)) => (d, false),
            Ok(Event::Solved(d)) => (d, true),
            Err(e) => {
                m::webhook(&connector.id, "rejected");
                tracing::warn!(error = %e, "Webhook refused");
                return connector.helpdesk.reject(&inbound, &e);
            }
        };
        if let Some(d) = &delivery.delivery_id {
            tracing::Span::current().record("delivery", d.as_str());
        }
        if solved {
            return solved_cases(&state, &connector, &inbound, delivery).await;
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
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(resp) => return resp,
        };
        let all_ok = outcomes.iter().all(|o| o.result.is_ok());
        m::webhook(&connector.id, if all_ok { "ok" } else { "retry" });
        connector.helpdesk.respond(&inbound, &outcomes)
    }
    .instrument(span)
    .await
}

fn retry_later(secs: u64) -> Response {
    let mut resp = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "retry_later",
        "the escalation is not finished; deliver it again later",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
    resp
}

/// A `solved` delivery: the blind survey for each case, in its own task like the escalations.
async fn solved_cases(
    state: &AppState,
    connector: &Arc<crate::connector::Connector>,
    inbound: &Inbound<'_>,
    delivery: crate::helpdesk::Delivery,
) -> Response {
    let Some(survey) = connector.survey.clone() else {
        m::webhook(&connector.id, "rejected");
        tracing::warn!("Solved event for a connector without a survey");
        return json_error(
            StatusCode::BAD_REQUEST,
            "no_survey",
            "this connector has no [survey] table; the `solved` event is not served",
        );
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
    .await;
    match outcomes {
        Ok(outcomes) => {
            let all_ok = outcomes.iter().all(|(_, r)| r.is_ok());
            m::webhook(&connector.id, if all_ok { "ok" } else { "retry" });
            connector.helpdesk.respond_solved(inbound, outcomes)
        }
        Err(resp) => resp,
    }
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
) -> Result<Vec<T>, Response>
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
            Err(retry_later(60))
        }
        Err(_) => {
            tracing::warn!(
                work = what,
                "Still under way at the time limit; asking for redelivery"
            );
            m::webhook(connector, "retry");
            Err(retry_later(30))
        }
    }
}
