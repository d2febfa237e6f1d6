//! Every answer the webhook gives, in the form the connector's helpdesk takes
//! ([`ReplyFormat`]): JSON, or a SOAP outbound message's `Ack` and faults.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::helpdesk::{HookError, ReplyFormat, Written};
use crate::runtime::connector::{ProcessError, TicketOutcome};
use crate::survey::{SurveyError, SurveyResult};

/// The answer that removes a SOAP outbound message from the sender's queue.
pub const SOAP_ACK: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#;

const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// The most of an upstream error's text an answer's `detail` carries.
const DETAIL_CHARS: usize = 300;

/// A JSON error answer: `{"error": ..., "detail": ...}`.
pub fn json_error(status: StatusCode, error: &str, detail: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "detail": detail})),
    )
        .into_response()
}

/// A refused call: JSON 401, 403 or 400 with `{"error", "detail"}`, or a `soapenv:Client`
/// fault with the same status.
pub fn refused(format: ReplyFormat, err: &HookError) -> Response {
    let (status, code) = err.status();
    match format {
        ReplyFormat::Json => json_error(status, code, &err.to_string()),
        ReplyFormat::SoapAck => soap_fault(status, true, &err.to_string()),
    }
}

/// The answer once every ticket of an escalation delivery was tried: 2xx only when all are
/// written or deferred to the sweep (see [`ReplyFormat`], [`ProcessError::deferred`]).
pub fn escalations(format: ReplyFormat, outcomes: &[TicketOutcome]) -> Response {
    match format {
        ReplyFormat::Json => json_escalations(outcomes),
        ReplyFormat::SoapAck => {
            let failed: Vec<bool> = outcomes
                .iter()
                .filter_map(|o| o.result.as_ref().err())
                .filter(|e| !e.deferred())
                .map(ProcessError::retryable)
                .collect();
            soap_answer(&failed, outcomes.len(), "notifications")
        }
    }
}

/// The answer to a `solved` delivery once every case was tried: JSON 200 with each ticket's
/// outcome and errors as the escalation path answers them (503 + `Retry-After` when retrying
/// helps), or the `Ack` only when every case's survey was decided and recorded.
pub fn solved(
    format: ReplyFormat,
    outcomes: Vec<(String, Result<SurveyResult, SurveyError>)>,
) -> Response {
    if format == ReplyFormat::SoapAck {
        let failed: Vec<bool> = outcomes
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().map(SurveyError::retryable))
            .collect();
        return soap_answer(&failed, outcomes.len(), "surveys");
    }
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
        return json_escalations(&errors);
    }
    (StatusCode::OK, axum::Json(json!({ "results": results }))).into_response()
}

/// JSON answer: 200 with each ticket's verdict (a ticket left to the sweep until an admin
/// fixes the helpdesk is `"written": "deferred"` with what to fix); 503 + `Retry-After` when
/// any ticket must be retried (the `detail` names the upstream host and the cause); 422 when a
/// ticket cannot be judged at all.
fn json_escalations(outcomes: &[TicketOutcome]) -> Response {
    let retry = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .filter(|e| e.retryable());
    let secs = retry.clone().map(ProcessError::retry_after_secs).max();
    if let (Some(secs), Some(first)) = (secs, retry.clone().next()) {
        let busy = retry.clone().any(|e| {
            matches!(
                e,
                ProcessError::Judge(crate::runtime::judge_pool::PoolError::Busy)
            )
        });
        let detail: String = first.to_string().chars().take(DETAIL_CHARS).collect();
        let mut resp = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            if busy { "busy" } else { "upstream_unavailable" },
            &format!("the escalation could not be finished now; deliver it again later: {detail}"),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return resp;
    }
    if let Some(e) = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .find(|e| !e.deferred())
    {
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unusable_ticket",
            &e.to_string(),
        );
    }
    let results: Vec<_> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(p) => json!({
                "ticket": o.ticket,
                "verdict": p.outcome,
                "written": match p.written {
                    Written::Now => "now",
                    Written::Already => "already",
                    Written::Logged => "logged",
                },
                "assessment": p.verdict,
                "note": p.note,
            }),
            Err(e) => json!({
                "ticket": o.ticket,
                "written": "deferred",
                "detail": e.to_string(),
            }),
        })
        .collect();
    (StatusCode::OK, axum::Json(json!({ "results": results }))).into_response()
}

/// The answer to an outbound message with `total` items, of which the ones in `failed` (each
/// flagged whether it may pass on a retry) could not be finished: the `Ack` when none failed,
/// otherwise a SOAP fault (500; a server fault when any failure may pass on a retry), so the
/// message is delivered again.
fn soap_answer(failed: &[bool], total: usize, what: &str) -> Response {
    if failed.is_empty() {
        return xml_response(StatusCode::OK, SOAP_ACK.to_string());
    }
    let retryable = failed.iter().any(|r| *r);
    soap_fault(
        StatusCode::INTERNAL_SERVER_ERROR,
        !retryable,
        &format!(
            "{} of {total} {what} not finished; deliver the message again",
            failed.len()
        ),
    )
}

/// A SOAP 1.1 fault. `client`: the sender's message is at fault (`soapenv:Client`), else the
/// service (`soapenv:Server`).
fn soap_fault(status: StatusCode, client: bool, text: &str) -> Response {
    let code = if client {
        "soapenv:Client"
    } else {
        "soapenv:Server"
    };
    xml_response(
        status,
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}"><soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode><faultstring>{}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#,
            quick_xml::escape::escape(text)
        ),
    )
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fault_escapes_its_text() {
        let resp = soap_fault(
            StatusCode::INTERNAL_SERVER_ERROR,
            false,
            "a < b & c </faultstring>\"",
        );
        assert_eq!(resp.status(), 500);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/xml; charset=utf-8"
        );
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains("<faultstring>a &lt; b &amp; c &lt;/faultstring&gt;&quot;</faultstring>"),
            "{body}"
        );
        assert_eq!(body.matches("</faultstring>").count(), 1, "{body}");
    }
}
