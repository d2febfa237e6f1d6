//! The sandbox's pages, under `/sandbox` on the sample Zendesk's port: the commands to try, the
//! recent escalations with a button for a new one and one to solve each (the survey
//! automation then runs as Zendesk's hourly run would a day later), each ticket with its tags
//! and internal notes, the webhook calls the triggers and automations made, and the mail
//! catcher's messages. Every value is escaped; an e-mail's HTML is shown in a sandboxed frame
//! without scripts, and the pages allow no script at all (`Content-Security-Policy`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::catalog::PARTNERS;
use super::connector::ESCALATED_TAG;
use super::mail::Mailbox;
use super::sample::Arrivals;
use crate::helpdesk::zendesk::sandbox::Handle;
use crate::survey::email::escape_html as esc;

/// Escalations listed on the home page.
const LISTED: usize = 25;
/// Hours the survey automation's clock is moved on after a solve: its hourly run a day later.
pub const SURVEY_AFTER_HOURS: i64 = 25;

/// What the pages read and change.
pub struct Pages {
    pub zendesk: Handle,
    pub mailbox: Arc<Mailbox>,
    pub arrivals: Arc<Mutex<Arrivals>>,
    /// The commands to try, once the connector folder is written.
    pub guide: Arc<OnceLock<String>>,
}

/// A new escalation arrives on `zendesk`. Returns its id.
pub fn arrive(arrivals: &Mutex<Arrivals>, zendesk: &Handle) -> u64 {
    arrivals
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .arrive(zendesk)
}

pub fn router(pages: Pages) -> Router {
    Router::new()
        .route("/sandbox", get(home))
        .route("/sandbox/escalations", post(new_escalation))
        .route("/sandbox/tickets/{id}", get(ticket))
        .route("/sandbox/tickets/{id}/solve", post(solve))
        .route("/sandbox/mail", get(mail_list))
        .route("/sandbox/mail/{id}", get(mail_message))
        .route("/sandbox/mail/{id}/raw", get(mail_raw))
        .with_state(Arc::new(pages))
}

type Shared = State<Arc<Pages>>;

/// An HTML page with the pages' security headers.
fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · \
         escalation-gate sandbox</title><style>{STYLE}</style></head><body>\n<nav><a \
         href=\"/sandbox\">Sandbox</a> · <a href=\"/sandbox/mail\">Mail catcher</a></nav>\n\
         <h1>{}</h1>\n{body}</body></html>\n",
        esc(title),
        esc(title)
    );
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;\
text-align:left;vertical-align:top}pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}\
.internal{background:#fff8e1}iframe{width:100%;height:28em;border:1px solid #ccc}\
nav{margin-bottom:1em}form{display:inline}";

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page("Not found", &format!("<p>{}</p>", esc(what))),
    )
        .into_response()
}

async fn home(State(p): Shared) -> Response {
    let mut body = String::new();
    if let Some(guide) = p.guide.get() {
        let _ = write!(body, "<h2>Try it</h2>\n<pre>{}</pre>\n", esc(guide));
    }
    body.push_str(
        "<h2>Escalations</h2>\n<form method=\"post\" action=\"/sandbox/escalations\">\
         <button>New escalation</button></form> a partner's agent hands a case over; with \
         <code>install zendesk</code> done, the trigger calls <code>serve</code>.\n\
         <table><tr><th>ticket</th><th>partner</th><th>subject</th><th>status</th>\
         <th>tags</th><th></th></tr>\n",
    );
    for id in p.zendesk.tagged(ESCALATED_TAG, LISTED) {
        let Some(t) = p.zendesk.ticket(id) else {
            continue;
        };
        let status = t["status"].as_str().unwrap_or("");
        let solve = if matches!(status, "solved" | "closed") {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"/sandbox/tickets/{id}/solve\"><button>Solve\
                 </button></form>"
            )
        };
        let _ = writeln!(
            body,
            "<tr><td><a href=\"/sandbox/tickets/{id}\">#{id}</a></td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{solve}</td></tr>",
            esc(partner_of(&t)),
            esc(t["subject"].as_str().unwrap_or("")),
            esc(status),
            esc(&tags_of(&t).join(" ")),
        );
    }
    body.push_str(
        "</table>\n<p>Solve runs the survey automation as Zendesk's hourly run would a day \
         later: for a judged escalation it calls <code>serve</code>, which sends the blind \
         survey to the <a href=\"/sandbox/mail\">mail catcher</a>.</p>\n\
         <h2>Webhook calls</h2>\n<table><tr><th>at</th><th>rule</th><th>ticket</th>\
         <th>endpoint</th><th>answer</th></tr>\n",
    );
    for i in p.zendesk.invocations().iter().rev().take(LISTED) {
        let answer = match (i.status, &i.error) {
            (Some(s), _) => format!("HTTP {s} ({} attempt(s))", i.attempts),
            (None, Some(e)) => e.clone(),
            (None, None) => "under way".into(),
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td><a href=\"/sandbox/tickets/{t}\">#{t}</a></td>\
             <td>{}</td><td>{}</td></tr>",
            esc(&i.at),
            esc(&i.rule),
            esc(&i.endpoint),
            esc(&answer),
            t = i.ticket_id,
        );
    }
    body.push_str("</table>\n");
    page("escalation-gate sandbox", &body)
}

fn partner_of(ticket: &Value) -> &'static str {
    let org = ticket["organization_id"].as_u64();
    PARTNERS
        .iter()
        .find(|p| Some(p.org_id) == org)
        .map_or("(none)", |p| p.name)
}

fn tags_of(ticket: &Value) -> Vec<String> {
    crate::helpdesk::tags::tag_list(ticket)
}

async fn new_escalation(State(p): Shared) -> Redirect {
    let id = arrive(&p.arrivals, &p.zendesk);
    tracing::info!(ticket = id, "New escalation in the sandbox");
    Redirect::to("/sandbox")
}

async fn solve(State(p): Shared, Path(id): Path<u64>) -> Response {
    if !p.zendesk.solve(id) {
        return not_found(&format!("Ticket {id} does not exist or is closed."));
    }
    p.zendesk.run_automations(SURVEY_AFTER_HOURS);
    Redirect::to("/sandbox").into_response()
}

async fn ticket(State(p): Shared, Path(id): Path<u64>) -> Response {
    let Some(t) = p.zendesk.ticket(id) else {
        return not_found(&format!("There is no ticket {id}."));
    };
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<table><tr><th>subject</th><td>{}</td></tr><tr><th>partner</th><td>{}</td></tr>\
         <tr><th>status</th><td>{}</td></tr><tr><th>created</th><td>{}</td></tr>\
         <tr><th>tags</th><td>{}</td></tr>",
        esc(t["subject"].as_str().unwrap_or("")),
        esc(partner_of(&t)),
        esc(t["status"].as_str().unwrap_or("")),
        esc(t["created_at"].as_str().unwrap_or("")),
        esc(&tags_of(&t).join(" ")),
    );
    for f in t["custom_fields"].as_array().into_iter().flatten() {
        let name = super::connector::FIELDS
            .iter()
            .find(|(fid, _)| f["id"].as_u64() == Some(*fid))
            .map_or("field", |(_, n)| *n);
        let value = match &f["value"] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(
            body,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(name),
            esc(&value)
        );
    }
    body.push_str("</table>\n<h2>Conversation</h2>\n");
    for c in t["comments"].as_array().into_iter().flatten() {
        let internal = c["public"] == Value::Bool(false);
        let _ = writeln!(
            body,
            "<p>{} · {}</p><pre{}>{}</pre>",
            esc(c["created_at"].as_str().unwrap_or("")),
            if internal { "internal note" } else { "public" },
            if internal { " class=\"internal\"" } else { "" },
            esc(c["body"].as_str().unwrap_or("")),
        );
    }
    page(&format!("Ticket #{id}"), &body)
}

async fn mail_list(State(p): Shared) -> Response {
    let mut body = String::from(
        "<p>Every message sent to the sandbox's SMTP server, newest first.</p>\n<table><tr>\
         <th>received</th><th>from</th><th>to</th><th>subject</th></tr>\n",
    );
    for m in p.mailbox.messages().iter().rev() {
        let parsed = m.parsed();
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"/sandbox/mail/{}\">{}</a></td></tr>",
            m.received_at.format("%Y-%m-%d %H:%M:%S UTC"),
            esc(&parsed.from),
            esc(&m.rcpt_to.join(", ")),
            m.id,
            esc(if parsed.subject.is_empty() {
                "(no subject)"
            } else {
                &parsed.subject
            }),
        );
    }
    body.push_str("</table>\n");
    page("Mail catcher", &body)
}

async fn mail_message(State(p): Shared, Path(id): Path<u64>) -> Response {
    let Some(m) = p.mailbox.get(id) else {
        return not_found(&format!("There is no message {id}."));
    };
    let parsed = m.parsed();
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<table><tr><th>from</th><td>{}</td></tr><tr><th>to</th><td>{}</td></tr>\
         <tr><th>envelope</th><td>MAIL FROM &lt;{}&gt; RCPT TO {}</td></tr>\
         <tr><th>date</th><td>{}</td></tr></table>\n<p><a href=\"/sandbox/mail/{id}/raw\">\
         The message as received</a></p>",
        esc(&parsed.from),
        esc(&parsed.to),
        esc(&m.mail_from),
        esc(&m.rcpt_to.join(", ")),
        esc(&parsed.date),
    );
    if let Some(text) = &parsed.text {
        let _ = writeln!(body, "<h2>Text</h2>\n<pre>{}</pre>", esc(text));
    }
    if let Some(html) = &parsed.html {
        // Links open in a new tab (the frame may not navigate elsewhere); no script runs.
        let doc = format!("<base target=\"_blank\">{html}");
        let _ = writeln!(
            body,
            "<h2>HTML</h2>\n<iframe sandbox=\"allow-popups allow-popups-to-escape-sandbox\" \
             srcdoc=\"{}\" title=\"The message's HTML part\"></iframe>",
            esc(&doc)
        );
    }
    page(&parsed.subject, &body)
}

async fn mail_raw(State(p): Shared, Path(id): Path<u64>) -> Response {
    match p.mailbox.get(id) {
        Some(m) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            m.raw,
        )
            .into_response(),
        None => not_found(&format!("There is no message {id}.")),
    }
}
