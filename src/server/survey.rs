//! The customer-facing pages. Mail scanners follow every link in a message, so **a GET never
//! records anything**: a rating link opens a small form with the clicked score pre-selected, and
//! only its POST records (after a honeypot and a minimum time on the page). Works without
//! JavaScript; every value shown is escaped.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::HttpError;
use super::page::{message, page};
use crate::metrics as m;
use crate::runtime::connector::Connectors;
use crate::survey::email::escape_html;
use crate::survey::token::{Claims, Purpose, TokenError};
use crate::survey::{About, Answer, MAX_COMMENT_CHARS, Survey};

/// The survey routes; the state must give the connectors.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Connectors: FromRef<S>,
{
    Router::new()
        .route(
            "/survey/{connector}/r",
            axum::routing::get(rating_page).post(answer),
        )
        .route(
            "/survey/{connector}/unsubscribe",
            axum::routing::get(unsubscribe_page).post(unsubscribe),
        )
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    t: Option<String>,
}

/// The answer form as posted.
#[derive(Debug, Default, Deserialize)]
pub struct AnswerForm {
    /// The rating link's token.
    t: Option<String>,
    /// The page token (when the page was issued).
    p: Option<String>,
    csat: Option<String>,
    ces: Option<String>,
    about: Option<String>,
    comment: Option<String>,
    /// Honeypot: people never see it; bots fill it.
    website: Option<String>,
}

/// The survey of connector `id`: a "not found" page when there is none.
fn survey_of(connectors: &Connectors, id: &str) -> Result<Arc<Survey>, HttpError> {
    connectors
        .get(id)
        .and_then(|c| c.survey.clone())
        .ok_or(HttpError::Page {
            status: StatusCode::NOT_FOUND,
            company: String::new(),
            title: "Not found",
            text: "There is no survey here.",
            retry_after: None,
        })
}

async fn rating_page(
    State(connectors): State<Connectors>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, HttpError> {
    let survey = survey_of(&connectors, &id)?;
    let now = Utc::now();
    let claims = match verify(&survey, q.t.as_deref(), Purpose::Rate, now) {
        Ok(c) => c,
        Err(e) => return Err(refused(&survey, e)),
    };
    let token = q.t.unwrap_or_default();
    let form = FormState {
        csat: Some(claims.score),
        ..FormState::default()
    };
    Ok(page(
        StatusCode::OK,
        &survey.settings.company,
        "How did we do?",
        &form_html(&survey, &claims, &token, &form, None, now),
    ))
}

async fn answer(
    State(connectors): State<Connectors>,
    Path(id): Path<String>,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let survey = survey_of(&connectors, &id)?;
    let company = &survey.settings.company;
    let Ok(Form(f)) = form else {
        return Err(HttpError::Page {
            status: StatusCode::BAD_REQUEST,
            company: company.clone(),
            title: "Something went wrong",
            text: "The answer could not be read. Please open the link in the e-mail again.",
            retry_after: None,
        });
    };
    let now = Utc::now();
    let claims = match verify(&survey, f.t.as_deref(), Purpose::Rate, now) {
        Ok(c) => c,
        Err(e) => return Err(refused(&survey, e)),
    };
    let token = f.t.clone().unwrap_or_default();
    let state = FormState::from(&f);
    // The form again, as the customer filled it, with what to change.
    let again = |status: StatusCode, problem: &str| {
        page(
            status,
            company,
            "How did we do?",
            &form_html(&survey, &claims, &token, &state, Some(problem), now),
        )
    };
    // A bot that fills the hidden field is thanked and ignored.
    if f.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
        m::survey_refused(&survey.connector, "honeypot");
        tracing::info!(ticket = %claims.ticket, "Survey answer ignored: honeypot filled");
        return Ok(thanks(company));
    }
    let on_page =
        f.p.as_deref()
            .and_then(|p| {
                survey
                    .settings
                    .keys
                    .verify(p, Purpose::Page, &survey.connector, now)
                    .ok()
            })
            .filter(|p| p.ticket == claims.ticket)
            .and_then(|p| p.issued)
            .and_then(|i| DateTime::from_timestamp(i, 0));
    let Some(issued) = on_page else {
        m::survey_refused(&survey.connector, "no_page");
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "Please send your answer from this page.",
        ));
    };
    if now - issued < survey.settings.min_on_page {
        m::survey_refused(&survey.connector, "too_fast");
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "That was quick! Please check your answer and send it again.",
        ));
    }
    let answer = match state.answer() {
        Ok(a) => a,
        Err(problem) => return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, problem)),
    };
    match survey.record(&claims, &answer).await {
        Ok(()) => Ok(thanks(company)),
        Err(e) => {
            tracing::error!(ticket = %claims.ticket, error = %e, "Survey answer not recorded");
            let mut resp = page(
                StatusCode::SERVICE_UNAVAILABLE,
                company,
                "Please try again",
                &format!(
                    "<p>Your answer could not be saved just now. Please try again in a minute.</p>{}",
                    form_html(&survey, &claims, &token, &state, None, now)
                ),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            Ok(resp)
        }
    }
}

async fn unsubscribe_page(
    State(connectors): State<Connectors>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, HttpError> {
    let survey = survey_of(&connectors, &id)?;
    if let Err(e) = verify(&survey, q.t.as_deref(), Purpose::Unsubscribe, Utc::now()) {
        return Err(refused(&survey, e));
    }
    let company = escape_html(&survey.settings.company);
    let token = escape_html(q.t.as_deref().unwrap_or_default());
    Ok(page(
        StatusCode::OK,
        &survey.settings.company,
        "Unsubscribe",
        &format!(
            "<p>Do you want to stop receiving satisfaction surveys from {company}?</p>\
             <form method=\"post\" action=\"unsubscribe?t={token}\">\
             <input type=\"hidden\" name=\"t\" value=\"{token}\">\
             <button type=\"submit\">Yes, unsubscribe me</button></form>"
        ),
    ))
}

/// The unsubscribe POST: from the confirmation page, or a mail client's one-click
/// `List-Unsubscribe=One-Click` (RFC 8058), the token in the query.
async fn unsubscribe(
    State(connectors): State<Connectors>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, HttpError> {
    let survey = survey_of(&connectors, &id)?;
    let from_form = form.ok().and_then(|Form(f)| f.get("t").cloned());
    let token = q.t.or(from_form);
    let claims = match verify(&survey, token.as_deref(), Purpose::Unsubscribe, Utc::now()) {
        Ok(c) => c,
        Err(e) => return Err(refused(&survey, e)),
    };
    match survey.unsubscribe(&claims).await {
        Ok(true) => Ok(message(
            StatusCode::OK,
            &survey.settings.company,
            "You are unsubscribed",
            "You will not receive satisfaction surveys from us any more.",
        )),
        Ok(false) => Ok(message(
            StatusCode::OK,
            &survey.settings.company,
            "Nothing to unsubscribe",
            "We keep no record for this address, so no more surveys will reach it from this case.",
        )),
        Err(e) => {
            tracing::error!(ticket = %claims.ticket, error = %e, "Opt-out not recorded");
            Err(HttpError::Page {
                status: StatusCode::SERVICE_UNAVAILABLE,
                company: survey.settings.company.clone(),
                title: "Please try again",
                text: "We could not record this just now. Please try again in a minute.",
                retry_after: Some(60),
            })
        }
    }
}

fn verify(
    survey: &Survey,
    token: Option<&str>,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    survey
        .settings
        .keys
        .verify(token.unwrap_or_default(), purpose, &survey.connector, now)
}

fn refused(survey: &Survey, e: TokenError) -> HttpError {
    m::survey_refused(&survey.connector, e.reason());
    tracing::info!(reason = e.reason(), "Survey link refused");
    let (status, title, text) = match e {
        TokenError::Expired => (
            StatusCode::GONE,
            "This survey has closed",
            "Thank you for following the link. This survey is no longer open for answers.",
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "This link does not work",
            "Sorry, this link is not valid. Please use the link exactly as it is in the e-mail.",
        ),
    };
    HttpError::Page {
        status,
        company: survey.settings.company.clone(),
        title,
        text,
        retry_after: None,
    }
}

/// What the form shows (pre-selected or as posted).
#[derive(Debug, Default)]
struct FormState {
    csat: Option<u8>,
    ces: Option<u8>,
    about: Option<About>,
    comment: String,
    csat_invalid: bool,
    ces_invalid: bool,
}

impl From<&AnswerForm> for FormState {
    fn from(f: &AnswerForm) -> Self {
        let score = |v: &Option<String>, max: u8| -> (Option<u8>, bool) {
            match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => (None, false),
                Some(s) => match s.parse::<u8>() {
                    Ok(n) if (1..=max).contains(&n) => (Some(n), false),
                    _ => (None, true),
                },
            }
        };
        let (csat, csat_invalid) = score(&f.csat, 5);
        let (ces, ces_invalid) = score(&f.ces, 7);
        FormState {
            csat,
            ces,
            about: f.about.as_deref().and_then(About::parse),
            comment: f
                .comment
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(MAX_COMMENT_CHARS)
                .collect(),
            csat_invalid,
            ces_invalid,
        }
    }
}

impl FormState {
    fn answer(&self) -> Result<Answer, &'static str> {
        if self.csat_invalid || self.ces_invalid {
            return Err("Please choose one of the given answers.");
        }
        let csat = self
            .csat
            .ok_or("Please choose how satisfied you are (1 to 5).")?;
        let comment = self.comment.trim();
        Ok(Answer {
            csat,
            ces: self.ces,
            about: self.about,
            comment: (!comment.is_empty()).then(|| comment.to_string()),
        })
    }
}

const CSAT_LABELS: [&str; 5] = [
    "Very dissatisfied",
    "Dissatisfied",
    "Neutral",
    "Satisfied",
    "Very satisfied",
];
const CES_LABELS: [&str; 7] = [
    "Strongly disagree",
    "Disagree",
    "Somewhat disagree",
    "Neither agree nor disagree",
    "Somewhat agree",
    "Agree",
    "Strongly agree",
];

fn form_html(
    survey: &Survey,
    claims: &Claims,
    token: &str,
    s: &FormState,
    problem: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    let page_token = survey.settings.keys.seal(&Claims {
        purpose: Purpose::Page,
        score: 0,
        expires: (now + chrono::Duration::days(1)).timestamp(),
        issued: Some(now.timestamp()),
        ..claims.clone()
    });
    let radios = |name: &str, labels: &[&str], chosen: Option<u8>| -> String {
        labels
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let v = i + 1;
                let checked = if chosen == Some(v as u8) { " checked" } else { "" };
                format!(
                    "<div class=\"opt\"><input type=\"radio\" id=\"{name}-{v}\" name=\"{name}\" value=\"{v}\"{checked}>\
                     <label for=\"{name}-{v}\">{v} &ndash; {label}</label></div>"
                )
            })
            .collect()
    };
    let about = [
        (About::Product, "The product"),
        (About::Support, "The support I got"),
        (About::Both, "Both equally"),
    ]
    .iter()
    .map(|(a, label)| {
        let v = a.as_str();
        let checked = if s.about == Some(*a) { " checked" } else { "" };
        format!(
            "<div class=\"opt\"><input type=\"radio\" id=\"about-{v}\" name=\"about\" value=\"{v}\"{checked}>\
             <label for=\"about-{v}\">{label}</label></div>"
        )
    })
    .collect::<String>();
    let problem = problem
        .map(|p| format!("<p class=\"problem\" role=\"alert\">{}</p>", escape_html(p)))
        .unwrap_or_default();
    format!(
        r#"{problem}<p>Thank you for taking a moment. Your answer about case #{ticket} goes to {company} only.</p>
<form method="post" action="r">
<input type="hidden" name="t" value="{token}">
<input type="hidden" name="p" value="{page_token}">
<fieldset><legend>How satisfied are you with the support you received?</legend>
{csat}</fieldset>
<fieldset><legend>&ldquo;{company} made it easy to handle my issue.&rdquo; (optional)</legend>
{ces}</fieldset>
<fieldset><legend>Was this rating mostly about the product or about the support you got? (optional)</legend>
{about}</fieldset>
<p><label for="comment">Anything you would like to add? (optional)</label><br>
<textarea id="comment" name="comment" rows="4" maxlength="{max}">{comment}</textarea></p>
<div class="hp" aria-hidden="true"><label for="website">Leave this field empty</label>
<input type="text" id="website" name="website" tabindex="-1" autocomplete="off"></div>
<p><button type="submit">Send my answer</button></p>
</form>"#,
        ticket = escape_html(&claims.ticket),
        company = escape_html(&survey.settings.company),
        token = escape_html(token),
        page_token = escape_html(&page_token),
        csat = radios("csat", &CSAT_LABELS, s.csat),
        ces = radios("ces", &CES_LABELS, s.ces),
        max = MAX_COMMENT_CHARS,
        comment = escape_html(&s.comment),
    )
}

fn thanks(company: &str) -> Response {
    message(
        StatusCode::OK,
        company,
        "Thank you!",
        "Your answer was received. If you change your mind, open the link in the e-mail again: a later answer replaces this one.",
    )
}
