//! The blind CSAT survey: the vendor itself asks the end customer of every partner-started case,
//! so the partner cannot pick who is asked.
//!
//! Stateless: the helpdesk does the waiting (an automation calls `POST /hooks/{connector}` with a
//! `solved` event a day after the case was solved), the ticket's tags record what happened, and
//! the links carry sealed tokens. Nothing here names a helpdesk: what is needed from one goes
//! through [`SurveyDesk`].

pub mod answer;
pub mod config;
pub mod email;
pub mod rules;
pub mod token;
pub mod webhooks;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use serde::Serialize;
use serde_json::json;
use tracing::Instrument;

pub use self::answer::{About, Answer};
use self::config::{Delivery, Sink, SurveySettings};
use self::email::{MailError, Mailer};
use self::rules::{Person, Recipient, Skip, SurveyCase};
use self::token::{Claims, Purpose};
use self::webhooks::WebhookTarget;
use crate::http::{Upstream, UpstreamError};
use crate::metrics as m;

/// Why a survey step could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The case cannot be surveyed (not found, unusable): retrying will not help.
    #[error("{0}")]
    Unusable(String),
}

impl SurveyError {
    /// Whether a later delivery may succeed (see [`crate::helpdesk`]'s errors): every upstream
    /// failure; a fact about the case itself is final.
    pub fn retryable(&self) -> bool {
        matches!(self, SurveyError::Upstream(_))
    }

    /// The `reason` label of a retried delivery (see [`UpstreamError::reason`]).
    pub fn reason(&self) -> &'static str {
        match self {
            SurveyError::Upstream(e) => e.reason(),
            SurveyError::Unusable(_) => "unusable",
        }
    }
}

/// How a conditional tag write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    Applied,
    /// The ticket changed since it was read: read it again and decide again.
    Conflict,
}

/// What the survey needs from a helpdesk. Field and tag names come from
/// [`config::SurveyFields`], given when the helpdesk builds it.
#[async_trait]
pub trait SurveyDesk: Send + Sync {
    /// Reads the case (status, partner, requester, end-customer field, tags); `None` when the
    /// ticket does not exist.
    async fn read_case(&self, ticket: &str) -> Result<Option<SurveyCase>, SurveyError>;

    /// The customer's record by e-mail address, when there is one.
    async fn find_customer(&self, email: &str) -> Result<Option<Person>, SurveyError>;

    /// Whether another ticket of this customer was surveyed in the last `days` days (the
    /// helpdesk's own search is the memory).
    async fn surveyed_recently(
        &self,
        email: &str,
        days: u32,
        except_ticket: &str,
    ) -> Result<bool, SurveyError>;

    /// Adds and removes ticket tags; with `version`, only if the ticket has not changed.
    async fn tag(
        &self,
        ticket: &str,
        add: &[String],
        remove: &[String],
        version: Option<&str>,
    ) -> Result<Tagged, SurveyError>;

    /// Whether the ticket's latest recorded answer is the one with this [`answer_id`] (a
    /// replayed or double-clicked answer is then recorded no second time).
    async fn answered_with(&self, ticket: &str, answer_id: &str) -> Result<bool, SurveyError>;

    /// Writes an answer on the ticket: an internal note, the configured fields, the answered
    /// and score tags (a later answer replaces the score), and `answer_id` for
    /// [`Self::answered_with`]. A ticket that no longer takes writes (Zendesk: closed) keeps
    /// the answer in a record linked to it. Returns whether it is the first.
    async fn record_answer(
        &self,
        ticket: &str,
        answer: &Answer,
        answer_id: &str,
        note: &str,
    ) -> Result<bool, SurveyError>;

    /// Marks the ticket answered with `answer_id` (no score: the answer went elsewhere).
    /// Returns whether it is the first answer.
    async fn mark_answered(&self, ticket: &str, answer_id: &str) -> Result<bool, SurveyError>;

    /// Writes an opt-out on the customer's record.
    async fn opt_out(&self, customer: &str) -> Result<(), SurveyError>;

    /// Solved cases the helpdesk marked as asked (it made the `solved` call) between `since`
    /// and `before` and that still record no survey (none sent, under way or skipped): their
    /// call was lost beyond the helpdesk's retries. Default: none, for a helpdesk whose
    /// `solved` call marks nothing on the case (Salesforce retries an outbound message that is
    /// not acknowledged for a day).
    async fn lost_calls(
        &self,
        since: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<String>, SurveyError> {
        let _ = (since, before);
        Ok(Vec::new())
    }
}

/// How long after a case was marked asked a survey still not recorded counts as lost: longer
/// than a helpdesk retries the call (Zendesk: minutes).
pub const LOST_CALL_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// What one sweep did for the blind survey: the solved cases whose call was lost, and how
/// each ended.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SurveySweep {
    pub found: usize,
    pub sent: usize,
    pub skipped: usize,
    /// Recorded meanwhile (a late call, another instance).
    pub already: usize,
    /// Could not be surveyed now (the next sweep tries again).
    pub failed: usize,
}

/// How a `solved` event ended for one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurveyResult {
    Sent,
    Skipped(Skip),
    /// The ticket already records a survey (sent, under way or skipped): nothing done.
    Already,
}

impl SurveyResult {
    pub fn label(&self) -> String {
        match self {
            SurveyResult::Sent => "sent".into(),
            SurveyResult::Skipped(s) => format!("skipped:{}", s.name()),
            SurveyResult::Already => "already".into(),
        }
    }
}

enum Channel {
    Email(Box<Mailer>),
    Webhook(WebhookTarget),
}

/// A connector's survey at run time.
pub struct Survey {
    pub connector: String,
    pub settings: SurveySettings,
    channel: Channel,
    desk: Arc<dyn SurveyDesk>,
    upstream: Upstream,
}

/// How often a write that lost a race is re-read and decided again.
const ATTEMPTS: usize = 3;
/// Comments longer than this are cut.
pub const MAX_COMMENT_CHARS: usize = 2000;

impl Survey {
    pub fn build(
        connector: &str,
        mut settings: SurveySettings,
        desk: Arc<dyn SurveyDesk>,
    ) -> anyhow::Result<Survey> {
        let delivery = settings
            .delivery
            .take()
            .expect("a validated survey has a delivery");
        let channel = match delivery {
            Delivery::Email(e) => Channel::Email(Box::new(Mailer::new(e)?)),
            Delivery::Webhook(t) => Channel::Webhook(t),
        };
        Ok(Survey {
            connector: connector.to_string(),
            upstream: Upstream::new("survey_webhook", settings.retry)?,
            settings,
            channel,
            desk,
        })
    }

    /// The pending mark the escalation's verdict write carries, when the survey applies to
    /// this partner's cases (a redelivery adds nothing: the verdict and its mark are one write).
    pub fn pending_mark(&self, partner: &str) -> Option<&str> {
        self.settings
            .rules
            .surveys(partner, true)
            .then_some(self.settings.fields.tags.pending.as_str())
    }

    /// The `solved` event: re-read the case, apply the rules, send at most once, record it.
    pub async fn on_solved(
        &self,
        ticket: &str,
        now: DateTime<Utc>,
    ) -> Result<SurveyResult, SurveyError> {
        let span = tracing::info_span!("survey", ticket = %ticket, partner = tracing::field::Empty);
        async {
            let _turn = crate::ticket_lock::lock(&self.connector, ticket).await;
            let mut requested = false;
            for _ in 0..ATTEMPTS {
                let case = self.desk.read_case(ticket).await?.ok_or_else(|| {
                    SurveyError::Unusable(format!("ticket {ticket} does not exist"))
                })?;
                tracing::Span::current().record("partner", case.partner.as_str());
                let t = &self.settings.fields.tags;
                if [&t.sent, &t.sending, &t.skipped]
                    .iter()
                    .any(|tag| case.tags.contains(tag))
                {
                    tracing::info!("Ticket already records a survey; nothing sent");
                    return Ok(SurveyResult::Already);
                }
                if !requested {
                    m::survey_requested(&self.connector, &case.partner);
                    requested = true;
                }
                match self.attempt(&case, now).await? {
                    Some(result) => return Ok(result),
                    None => {
                        tracing::info!(
                            "Ticket changed while recording the survey; reading it again"
                        )
                    }
                }
            }
            Err(SurveyError::Upstream(UpstreamError::Unavailable {
                call: "survey_record",
                attempts: ATTEMPTS as u32,
                last: "the ticket kept changing".into(),
                retry_after: None,
            }))
        }
        .instrument(span)
        .await
    }

    /// One decision on one read of the case; `None` when the ticket changed under it.
    async fn attempt(
        &self,
        case: &SurveyCase,
        now: DateTime<Utc>,
    ) -> Result<Option<SurveyResult>, SurveyError> {
        let recipient = match self.settings.rules.check(case) {
            Ok(r) => r,
            Err(skip) => return self.skip(case, skip).await,
        };
        let person = match recipient {
            Recipient::Requester => case.requester.clone(),
            Recipient::EndCustomer(email) => match self.desk.find_customer(&email).await? {
                Some(p) if p.is_agent => return self.skip(case, Skip::PartnerAgent).await,
                Some(p) => p,
                None => Person {
                    email: Some(email),
                    ..Person::default()
                },
            },
        };
        let email = person.email.clone().unwrap_or_default();
        if person.opted_out {
            return self.skip(case, Skip::OptedOut).await;
        }
        let days = self.settings.rules.throttle_days;
        if days > 0
            && self
                .desk
                .surveyed_recently(&email, days, &case.ticket_id)
                .await?
        {
            return self.skip(case, Skip::Throttled).await;
        }
        let t = &self.settings.fields.tags;
        // Claim the ticket first: a concurrent delivery meets a conflict and then this tag.
        if self
            .desk
            .tag(
                &case.ticket_id,
                std::slice::from_ref(&t.sending),
                &[],
                case.version.as_deref(),
            )
            .await?
            == Tagged::Conflict
        {
            return Ok(None);
        }
        match self.deliver(case, &person, now).await {
            Ok(()) => {
                if let Err(e) = self
                    .desk
                    .tag(
                        &case.ticket_id,
                        std::slice::from_ref(&t.sent),
                        std::slice::from_ref(&t.sending),
                        None,
                    )
                    .await
                {
                    // The survey is out; the claim tag keeps redeliveries from sending again.
                    tracing::error!(error = %e, "Survey sent but not tagged sent; the claim tag stays");
                }
                m::survey_sent(&self.connector, &case.partner, self.channel_name());
                tracing::info!(channel = self.channel_name(), "Survey sent");
                Ok(Some(SurveyResult::Sent))
            }
            Err(Delivered::Rejected(detail)) => {
                tracing::warn!(detail = %detail, "Survey refused by the receiver for good");
                self.desk
                    .tag(
                        &case.ticket_id,
                        &self.skip_tags(Skip::Rejected),
                        std::slice::from_ref(&t.sending),
                        None,
                    )
                    .await?;
                self.count_skip(case, Skip::Rejected);
                Ok(Some(SurveyResult::Skipped(Skip::Rejected)))
            }
            Err(Delivered::Later(detail)) => {
                tracing::warn!(detail = %detail, "Survey not sent now; the claim is released for a redelivery");
                if let Err(e) = self
                    .desk
                    .tag(&case.ticket_id, &[], std::slice::from_ref(&t.sending), None)
                    .await
                {
                    tracing::error!(error = %e, "Could not release the claim tag");
                }
                Err(SurveyError::Upstream(UpstreamError::Unavailable {
                    call: self.channel_name(),
                    attempts: 1,
                    last: detail,
                    retry_after: None,
                }))
            }
        }
    }

    fn channel_name(&self) -> &'static str {
        match self.channel {
            Channel::Email(_) => "smtp",
            Channel::Webhook(_) => "webhook",
        }
    }

    fn skip_tags(&self, skip: Skip) -> Vec<String> {
        let s = &self.settings.fields.tags.skipped;
        vec![s.clone(), format!("{s}_{}", skip.name())]
    }

    fn count_skip(&self, case: &SurveyCase, skip: Skip) {
        m::survey_skipped(&self.connector, &case.partner, skip.name());
    }

    async fn skip(
        &self,
        case: &SurveyCase,
        skip: Skip,
    ) -> Result<Option<SurveyResult>, SurveyError> {
        if skip.is_final() {
            let written = self
                .desk
                .tag(
                    &case.ticket_id,
                    &self.skip_tags(skip),
                    &[],
                    case.version.as_deref(),
                )
                .await?;
            if written == Tagged::Conflict {
                return Ok(None);
            }
        }
        self.count_skip(case, skip);
        tracing::info!(reason = skip.name(), "Survey skipped");
        Ok(Some(SurveyResult::Skipped(skip)))
    }

    /// The sealed links of one survey.
    pub fn links(
        &self,
        case: &SurveyCase,
        person: &Person,
        now: DateTime<Utc>,
    ) -> (Vec<String>, String) {
        let claims = |purpose, score| Claims {
            purpose,
            connector: self.connector.clone(),
            ticket: case.ticket_id.clone(),
            partner: case.partner.clone(),
            score,
            expires: (now + self.settings.link_valid).timestamp(),
            escalated: case.escalated,
            customer: person.id.clone(),
            issued: None,
        };
        let url = |path: &str, token: String| {
            let mut u = crate::http::join_path(
                &self.settings.public_url,
                &format!("/survey/{}/{path}", self.connector),
            );
            u.query_pairs_mut().append_pair("t", &token);
            u.to_string()
        };
        let rate = (1..=5)
            .map(|s| url("r", self.settings.keys.seal(&claims(Purpose::Rate, s))))
            .collect();
        let unsubscribe = url(
            "unsubscribe",
            self.settings.keys.seal(&claims(Purpose::Unsubscribe, 0)),
        );
        (rate, unsubscribe)
    }

    async fn deliver(
        &self,
        case: &SurveyCase,
        person: &Person,
        now: DateTime<Utc>,
    ) -> Result<(), Delivered> {
        let (links, unsubscribe) = self.links(case, person, now);
        match &self.channel {
            Channel::Email(mailer) => {
                let email = person.email.as_deref().unwrap_or_default();
                let to = Mailbox::new(
                    person.name.as_deref().map(|n| email::one_line(n, 80)),
                    email
                        .parse()
                        .map_err(|_| Delivered::Rejected("not an address".into()))?,
                );
                let mut values: BTreeMap<&str, String> = BTreeMap::from([
                    ("company", self.settings.company.clone()),
                    (
                        "customer_name",
                        person
                            .name
                            .as_deref()
                            .map(|n| email::one_line(n, 80))
                            .unwrap_or_else(|| "there".into()),
                    ),
                    (
                        "ticket_id",
                        case.number
                            .clone()
                            .unwrap_or_else(|| case.ticket_id.clone()),
                    ),
                    ("subject", email::one_line(&case.subject, 120)),
                    ("unsubscribe_url", unsubscribe.clone()),
                ]);
                for (i, l) in links.iter().enumerate() {
                    values.insert(
                        ["link_1", "link_2", "link_3", "link_4", "link_5"][i],
                        l.clone(),
                    );
                }
                let wording = mailer.templates.for_locale(person.locale.as_deref());
                let rendered = email::render_all(wording, &values);
                let domain = mailer.from.email.domain().to_string();
                let message_id = format!(
                    "<csat.{}.{}.{}@{domain}>",
                    self.connector,
                    case.ticket_id,
                    uuid::Uuid::new_v4().simple()
                );
                mailer
                    .send(to, &rendered, &unsubscribe, &message_id)
                    .await
                    .map_err(|e| match e {
                        MailError::Permanent(d) => Delivered::Rejected(d),
                        MailError::Transient(d) => Delivered::Later(d),
                    })
            }
            Channel::Webhook(target) => {
                let body = json!({
                    "type": "survey.requested",
                    "timestamp": now.to_rfc3339(),
                    "data": {
                        "connector": self.connector,
                        "ticket": case.ticket_id,
                        "partner": case.partner,
                        "escalated": case.escalated,
                        "subject": case.subject,
                        "recipient": {
                            "email": person.email,
                            "name": person.name,
                            "locale": person.locale,
                        },
                        "links": {
                            "1": links[0], "2": links[1], "3": links[2], "4": links[3], "5": links[4],
                        },
                        "unsubscribe_url": unsubscribe,
                    }
                });
                let id = format!("survey_{}_{}", self.connector, case.ticket_id);
                webhooks::post(&self.upstream, "survey_request", target, &id, &body)
                    .await
                    .map_err(|e| match e {
                        UpstreamError::Rejected { status, .. } if status.is_client_error() => {
                            Delivered::Rejected(e.to_string())
                        }
                        other => Delivered::Later(other.to_string()),
                    })
            }
        }
    }

    /// Surveys the solved cases whose `solved` call was lost (marked asked between `since` and
    /// [`LOST_CALL_AFTER`] before `now`, and no survey recorded), as the call would have.
    pub async fn sweep(
        &self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<SurveySweep, SurveyError> {
        let lost = self.desk.lost_calls(since, now - LOST_CALL_AFTER).await?;
        let mut report = SurveySweep {
            found: lost.len(),
            ..SurveySweep::default()
        };
        for ticket in &lost {
            tracing::info!(ticket = %ticket, "Survey call lost beyond the helpdesk's retries; surveying now");
            match self.on_solved(ticket, now).await {
                Ok(SurveyResult::Sent) => report.sent += 1,
                Ok(SurveyResult::Skipped(_)) => report.skipped += 1,
                Ok(SurveyResult::Already) => report.already += 1,
                Err(e) => {
                    tracing::warn!(ticket = %ticket, error = %e, "Sweep could not survey the case; the next sweep tries again");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Records an answer in the configured sink and counts it.
    pub async fn record(&self, claims: &Claims, answer: &Answer) -> Result<(), SurveyError> {
        let _turn = crate::ticket_lock::lock(&self.connector, &claims.ticket).await;
        let id = answer_id(&self.connector, &claims.ticket, answer);
        if self.desk.answered_with(&claims.ticket, &id).await? {
            tracing::info!(ticket = %claims.ticket, answer = %id, "The same survey answer again; nothing recorded");
            return Ok(());
        }
        let first = match &self.settings.sink {
            Sink::Ticket => {
                let note = answer_note(answer, &id);
                self.desk
                    .record_answer(&claims.ticket, answer, &id, &note)
                    .await?
            }
            Sink::Webhook(target) => {
                let body = json!({
                    "type": "survey.answered",
                    "timestamp": Utc::now().to_rfc3339(),
                    "data": {
                        "connector": self.connector,
                        "ticket": claims.ticket,
                        "partner": claims.partner,
                        "escalated": claims.escalated,
                        "csat": answer.csat,
                        "ces": answer.ces,
                        "about": answer.about,
                        "comment": answer.comment,
                    }
                });
                // The same id for every delivery of this answer: receivers drop duplicates.
                let message = format!("msg_answer_{id}");
                webhooks::post(&self.upstream, "survey_sink", target, &message, &body).await?;
                self.desk.mark_answered(&claims.ticket, &id).await?
            }
        };
        m::survey_answered(
            &self.connector,
            &claims.partner,
            claims.escalated,
            (
                answer.csat,
                answer.ces,
                answer.about.map_or("unsaid", |a| a.as_str()),
            ),
            first,
        );
        tracing::info!(ticket = %claims.ticket, partner = %claims.partner, first, "Survey answer recorded");
        Ok(())
    }

    /// Writes the customer's opt-out.
    pub async fn unsubscribe(&self, claims: &Claims) -> Result<bool, SurveyError> {
        let Some(customer) = &claims.customer else {
            return Ok(false);
        };
        self.desk.opt_out(customer).await?;
        m::survey_opt_out(&self.connector);
        tracing::info!(ticket = %claims.ticket, "Customer opted out of surveys");
        Ok(true)
    }
}

enum Delivered {
    /// Refused for good.
    Rejected(String),
    /// Try again later.
    Later(String),
}

/// The id of one answer to one ticket: the same for the same answer (a replay, a double
/// click), different for a changed one. 16 hex digits of SHA-256 over connector, ticket and
/// the answer's content.
pub fn answer_id(connector: &str, ticket: &str, a: &Answer) -> String {
    use sha2::Digest;
    let about = a.about.map_or("", |x| x.as_str());
    let ces = a.ces.map(|c| c.to_string()).unwrap_or_default();
    let comment = a.comment.as_deref().unwrap_or_default();
    let digest = sha2::Sha256::new()
        .chain_update([connector, ticket, &a.csat.to_string(), &ces, about, comment].join("\u{0}"))
        .finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The line of an answer's note that carries its [`answer_id`].
pub const ANSWER_ID_LINE: &str = "Answer id: ";

/// The first line of every answer's note.
pub const ANSWER_NOTE_HEADING: &str =
    "Blind CSAT survey answer (asked by the vendor, not the partner)";

/// The internal note of an answer (ticket sink). The comment is the customer's own text, last
/// (a helpdesk that caps comment length cuts it, never the answer id).
pub fn answer_note(a: &Answer, id: &str) -> String {
    let mut s = format!("{ANSWER_NOTE_HEADING}\nCSAT: {}/5", a.csat);
    if let Some(c) = a.ces {
        s.push_str(&format!(
            "\nCustomer effort (\"The company made it easy to handle my issue\"): {c}/7"
        ));
    }
    if let Some(about) = a.about {
        s.push_str(&format!("\nThe rating is mostly about: {}", about.as_str()));
    }
    s.push_str(&format!("\n{ANSWER_ID_LINE}{id}"));
    if let Some(c) = &a.comment {
        s.push_str(&format!("\nComment: {c}"));
    }
    s
}
