//! The server's one error type: every way a request ends without its normal answer, and the
//! HTTP answer each one is. JSON errors are `{"error": ..., "detail": ...}`; a refused helpdesk
//! call takes the helpdesk's own form ([`ReplyFormat`]); the survey's customer-facing pages
//! answer with a page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::reply;
use crate::helpdesk::{HookError, ReplyFormat};

/// `Retry-After` of a [`HttpError::Busy`] answer: connections free up within seconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No such route.
    #[error("no such route")]
    NoRoute,
    #[error("no connector named `{0}`")]
    UnknownConnector(String),
    #[error("the body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// The body could not be read (its rejection's status and text).
    #[error("{1}")]
    BadBody(StatusCode, String),
    /// The whole body did not arrive within the body-read time limit (seconds); the connection
    /// is closed.
    #[error("the body did not arrive within {0} s")]
    BodyTimeout(f64),
    /// The helpdesk's call was refused (signature, secret, origin, body).
    #[error("{err}")]
    Refused {
        format: ReplyFormat,
        #[source]
        err: HookError,
    },
    #[error("this connector has no [survey] table; the `solved` event is not served")]
    NoSurvey,
    #[error("connector `{0}` has no [precheck] table (or it is not enabled)")]
    NoPrecheck(String),
    /// The caller made more requests than its limit allows; it may try again after
    /// `Retry-After` seconds.
    #[error("too many requests from this client; try again in {0} s")]
    TooManyRequests(u64),
    /// The ticket asked about cannot be read as an escalation (not found, unusable).
    #[error("{0}")]
    UnusableTicket(String),
    /// Every connection is taken (`--max-connections`): the caller delivers again after
    /// [`BUSY_RETRY_AFTER_SECS`]; the connection is closed.
    #[error("every connection is taken; deliver it again later")]
    Busy,
    /// The work goes on; the caller delivers again after `Retry-After` seconds.
    #[error("the escalation is not finished; deliver it again later")]
    RetryLater(u64),
    /// A survey page that cannot be answered as asked (a link that does not work, an answer
    /// that could not be read or recorded): a page of its own for the customer.
    #[error("{title}")]
    Page {
        status: StatusCode,
        company: String,
        title: &'static str,
        text: &'static str,
        /// `Retry-After` seconds, when trying again later helps.
        retry_after: Option<u64>,
    },
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        let json = |status: StatusCode, error: &str| reply::json_error(status, error, &detail);
        match self {
            HttpError::NoRoute => json(StatusCode::NOT_FOUND, "not_found"),
            HttpError::UnknownConnector(_) => json(StatusCode::NOT_FOUND, "unknown_connector"),
            HttpError::PayloadTooLarge(_) => {
                json(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            HttpError::BadBody(status, _) => json(status, "bad_request"),
            HttpError::BodyTimeout(_) => {
                let mut resp = json(StatusCode::REQUEST_TIMEOUT, "body_timeout");
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                resp
            }
            HttpError::Refused { format, err } => reply::refused(format, &err),
            HttpError::NoSurvey => json(StatusCode::BAD_REQUEST, "no_survey"),
            HttpError::NoPrecheck(_) => json(StatusCode::NOT_FOUND, "no_precheck"),
            HttpError::UnusableTicket(_) => json(StatusCode::NOT_FOUND, "unusable_ticket"),
            HttpError::TooManyRequests(secs) => {
                let mut resp = json(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                resp
            }
            HttpError::Busy => {
                let mut resp = json(StatusCode::SERVICE_UNAVAILABLE, "busy");
                let headers = resp.headers_mut();
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(BUSY_RETRY_AFTER_SECS),
                );
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                resp
            }
            HttpError::RetryLater(secs) => {
                let mut resp = json(StatusCode::SERVICE_UNAVAILABLE, "retry_later");
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                resp
            }
            HttpError::Page {
                status,
                company,
                title,
                text,
                retry_after,
            } => {
                let mut resp = super::page::message(status, &company, title, text);
                if let Some(secs) = retry_after {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                resp
            }
        }
    }
}
