//! The blind survey's reads and writes on Salesforce: the Case (`IsClosed`, its Contact or
//! `SuppliedEmail`, the Account as partner, the verdict field for "escalated"), the Contact's
//! opt-out (`HasOptedOutOfEmail` by default), earlier surveys through SOQL, and what happened in
//! two Case fields (`[helpdesk.survey_fields]`) plus an internal CaseComment for each answer.
//!
//! Salesforce has no tags: the survey's tags map to one status field holding the latest of them
//! (`csat_blind_pending`, `_sending`, `_sent`, `_skipped_<reason>`, `_answered`). The claim
//! (`_sending`) is a conditional `PATCH` (`If-Unmodified-Since` the `LastModifiedDate` read), so
//! a concurrent delivery of the same Case meets a 412, reads again and finds the claim. The
//! header has whole seconds: a change in the same second as the read goes unseen, which takes two
//! deliveries of one Case within one second of its last change.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::api::{SalesforceApi, Update, is_id_of, parse_datetime, soql_quote};
use super::case::{map_case, read_case, truncate_comment};
use super::config::{PartnerSource, ValidSalesforce};
use crate::escalation::locale_of;
use crate::survey::config::SurveyFields;
use crate::survey::rules::{Person, SurveyCase};
use crate::survey::{ANSWER_ID_LINE, ANSWER_NOTE_HEADING, Answer, SurveyDesk, SurveyError, Tagged};

/// The standard Contact checkbox "Email Opt Out".
pub const DEFAULT_OPT_OUT_FIELD: &str = "HasOptedOutOfEmail";
/// The most Contacts or Cases one look-up reads.
const LOOKUP_LIMIT: usize = 10;

pub struct SalesforceSurvey {
    pub(super) connector: String,
    pub(super) cfg: Arc<ValidSalesforce>,
    pub(super) api: Arc<SalesforceApi>,
    pub(super) fields: SurveyFields,
}

/// Whether two record ids name the same record (15-character ids are the case-sensitive
/// prefix of 18-character ones).
fn same_id(a: &str, b: &str) -> bool {
    a.len() >= 15 && b.len() >= 15 && a[..15] == b[..15]
}

fn text<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl SalesforceSurvey {
    fn status_field(&self) -> &str {
        &self.cfg.survey_fields.status
    }

    fn sent_at_field(&self) -> &str {
        &self.cfg.survey_fields.sent_at
    }

    fn opt_out_field(&self) -> &str {
        self.fields
            .opt_out
            .as_deref()
            .unwrap_or(DEFAULT_OPT_OUT_FIELD)
    }

    /// The Case field (API name) mapped to the hand-off name in `[helpdesk.fields]`.
    fn api_field(&self, name: &Option<String>) -> Option<&str> {
        self.cfg
            .mapping
            .key_of(name.as_deref()?)
            .map(String::as_str)
    }

    fn contact_fields(&self) -> Vec<&str> {
        let mut f = vec!["Id", "Email", "Name", "AccountId"];
        if !f.contains(&self.opt_out_field()) {
            f.push(self.opt_out_field());
        }
        f
    }

    /// A Contact as a person. A Contact of the partner's own Account (when the partner is the
    /// Case's Account) is the partner's person, not the end customer.
    fn person(&self, contact: &Value, partner_account: Option<&str>) -> Person {
        Person {
            id: text(contact, "Id").map(str::to_string),
            email: text(contact, "Email").map(str::to_string),
            name: text(contact, "Name").map(str::to_string),
            locale: None,
            is_agent: partner_account
                .zip(text(contact, "AccountId"))
                .is_some_and(|(a, b)| same_id(a, b)),
            opted_out: contact.get(self.opt_out_field()) == Some(&Value::Bool(true)),
        }
    }

    /// The survey tags a status value stands for.
    fn tags_of(&self, status: Option<&str>) -> Vec<String> {
        let t = &self.fields.tags;
        let Some(s) = status.map(str::trim).filter(|s| !s.is_empty()) else {
            return Vec::new();
        };
        let mut tags = vec![s.to_string()];
        if s.starts_with(&format!("{}_", t.skipped)) {
            tags.push(t.skipped.clone());
        }
        if s == t.answered {
            tags.push(t.sent.clone());
        }
        tags
    }

    /// The status field's value now.
    async fn status(&self, ticket: &str) -> Result<Option<String>, SurveyError> {
        let case = self
            .api
            .case(ticket, &[self.status_field().to_string()])
            .await?
            .ok_or_else(|| SurveyError::Unusable(format!("Case {ticket} does not exist")))?;
        Ok(text(&case, self.status_field()).map(str::to_string))
    }

    async fn set_status(&self, ticket: &str, value: &str) -> Result<(), SurveyError> {
        let mut fields = Map::new();
        fields.insert(self.status_field().into(), json!(value));
        self.api.update_case(ticket, &fields).await?;
        Ok(())
    }
}

#[async_trait]
impl SurveyDesk for SalesforceSurvey {
    async fn read_case(&self, ticket: &str) -> Result<Option<SurveyCase>, SurveyError> {
        let extra: Vec<String> = [
            "IsClosed",
            "ContactId",
            "LastModifiedDate",
            self.status_field(),
            self.sent_at_field(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let Some(case) = read_case(&self.api, &self.cfg, ticket, &extra).await? else {
            return Ok(None);
        };
        let esc = map_case(&self.connector, &self.cfg, &case, Utc::now())?;
        let tags = self.tags_of(text(&case, self.status_field()));
        let partner_account = match self.cfg.partner {
            PartnerSource::Account => text(&case, "AccountId"),
            PartnerSource::Field { .. } => None,
        };
        let contact = match text(&case, "ContactId").filter(|id| is_id_of(id, "003")) {
            Some(id) => self.api.contact(id, &self.contact_fields()).await?,
            None => None,
        };
        let mut requester = match (&contact, text(&case, "SuppliedEmail")) {
            (Some(c), _) => self.person(c, partner_account),
            // Web-to-Case and Email-to-Case without a Contact: the address the customer gave,
            // and the Contact of that address when there is one (for its opt-out).
            (None, Some(email)) => match self.find_customer(email).await? {
                Some(p) => p,
                None => Person {
                    email: Some(email.to_string()),
                    ..Person::default()
                },
            },
            (None, None) => Person::default(),
        };
        requester.locale = self
            .cfg
            .locale_field
            .as_ref()
            .and_then(|f| text(&case, f))
            .map(locale_of);
        Ok(Some(SurveyCase {
            ticket_id: esc.ticket_id.clone(),
            number: text(&case, "CaseNumber").map(str::to_string),
            solved: case.get("IsClosed") == Some(&Value::Bool(true)),
            escalated: text(&case, &self.cfg.verdict_fields.verdict).is_some()
                || tags.contains(&self.fields.tags.pending),
            ticket_type: text(&case, "Type").map(str::to_ascii_lowercase),
            subject: esc.subject.clone(),
            end_customer_email: self.fields.end_customer_of(&esc),
            version: text(&case, "LastModifiedDate").map(str::to_string),
            partner: esc.partner,
            tags,
            requester,
        }))
    }

    async fn find_customer(&self, email: &str) -> Result<Option<Person>, SurveyError> {
        let soql = format!(
            "SELECT {} FROM Contact WHERE Email = {} LIMIT {LOOKUP_LIMIT}",
            self.contact_fields().join(", "),
            soql_quote(email)
        );
        let found = self.api.query("query_contacts", &soql).await?;
        let Some(first) = found.first() else {
            return Ok(None);
        };
        let mut person = self.person(first, None);
        // Several Contacts with one address: an opt-out on any of them counts.
        person.opted_out = found
            .iter()
            .any(|c| c.get(self.opt_out_field()) == Some(&Value::Bool(true)));
        Ok(Some(person))
    }

    async fn surveyed_recently(
        &self,
        email: &str,
        days: u32,
        except_ticket: &str,
    ) -> Result<bool, SurveyError> {
        let t = &self.fields.tags;
        let email = soql_quote(email);
        let mut who = vec![
            format!("ContactEmail = {email}"),
            format!("SuppliedEmail = {email}"),
        ];
        if let Some(f) = self.api_field(&self.fields.end_customer) {
            who.push(format!("{f} = {email}"));
        }
        let soql = format!(
            "SELECT Id FROM Case WHERE {status} IN ({}, {}, {}) AND {sent_at} = LAST_N_DAYS:{days} AND ({}) LIMIT {LOOKUP_LIMIT}",
            soql_quote(&t.sent),
            soql_quote(&t.sending),
            soql_quote(&t.answered),
            who.join(" OR "),
            status = self.status_field(),
            sent_at = self.sent_at_field(),
        );
        let found = self.api.query("query_surveyed", &soql).await?;
        Ok(found
            .iter()
            .filter_map(|c| text(c, "Id"))
            .any(|id| !same_id(id, except_ticket)))
    }

    async fn tag(
        &self,
        ticket: &str,
        add: &[String],
        remove: &[String],
        version: Option<&str>,
    ) -> Result<Tagged, SurveyError> {
        let t = &self.fields.tags;
        let mut fields = Map::new();
        if let Some(first) = add.first() {
            let skipped = format!("{}_", t.skipped);
            let value = add
                .iter()
                .find(|a| a.starts_with(&skipped))
                .unwrap_or(first);
            fields.insert(self.status_field().into(), json!(value));
            if *value == t.sending {
                fields.insert(
                    self.sent_at_field().into(),
                    json!(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
                );
            }
        } else if !remove.is_empty() {
            // A claim released: the Case records no survey again.
            fields.insert(self.status_field().into(), Value::Null);
            fields.insert(self.sent_at_field().into(), Value::Null);
        } else {
            return Ok(Tagged::Applied);
        }
        match version.and_then(parse_datetime) {
            Some(since) => Ok(
                match self
                    .api
                    .update_case_if_unmodified(ticket, &fields, since)
                    .await?
                {
                    Update::Applied => Tagged::Applied,
                    Update::Conflict => Tagged::Conflict,
                },
            ),
            None => {
                self.api.update_case(ticket, &fields).await?;
                Ok(Tagged::Applied)
            }
        }
    }

    async fn answered_with(&self, ticket: &str, answer_id: &str) -> Result<bool, SurveyError> {
        let comments = self.api.comments(ticket).await?;
        let latest = comments
            .iter()
            .rev()
            .find(|(_, body)| body.starts_with(ANSWER_NOTE_HEADING));
        Ok(latest.is_some_and(|(_, body)| {
            body.lines()
                .any(|l| l.strip_prefix(ANSWER_ID_LINE) == Some(answer_id))
        }))
    }

    /// The answer id is in the note (a Case has no field for it); a closed Case still takes
    /// comments and field updates.
    async fn record_answer(
        &self,
        ticket: &str,
        answer: &Answer,
        _answer_id: &str,
        note: &str,
    ) -> Result<bool, SurveyError> {
        let answered = &self.fields.tags.answered;
        let first = self.status(ticket).await?.as_ref() != Some(answered);
        // The comment first: if the fields fail, the customer's retry adds a second comment,
        // never an answer without its comment.
        self.api
            .add_comment(ticket, &truncate_comment(note))
            .await?;
        let mut fields = Map::new();
        fields.insert(self.status_field().into(), json!(answered));
        for (name, value) in [
            (&self.fields.csat, json!(answer.csat)),
            (&self.fields.ces, json!(answer.ces)),
            (&self.fields.about, json!(answer.about.map(|a| a.as_str()))),
            (&self.fields.comment, json!(answer.comment)),
        ] {
            if let Some(f) = self.api_field(name) {
                fields.insert(f.into(), value);
            }
        }
        self.api.update_case(ticket, &fields).await?;
        Ok(first)
    }

    /// Without a note the answer id is not kept: a replayed answer goes to the sink again, with
    /// the same `webhook-id`, for the receiver to drop.
    async fn mark_answered(&self, ticket: &str, _answer_id: &str) -> Result<bool, SurveyError> {
        let answered = &self.fields.tags.answered;
        if self.status(ticket).await?.as_ref() == Some(answered) {
            return Ok(false);
        }
        self.set_status(ticket, answered).await?;
        Ok(true)
    }

    async fn opt_out(&self, customer: &str) -> Result<(), SurveyError> {
        if !is_id_of(customer, "003") {
            return Err(SurveyError::Unusable("not a Salesforce Contact id".into()));
        }
        let mut fields = Map::new();
        fields.insert(self.opt_out_field().into(), Value::Bool(true));
        self.api.update_contact(customer, &fields).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(same_id("003000000000001", "003000000000001AAA"));
        assert!(!same_id("003000000000001AAA", "003000000000002AAA"));
        assert!(!same_id("", ""));
        assert!(is_id_of("003000000000001AAA", "003"));
        assert!(!is_id_of("500000000000001AAA", "003"));
        assert!(!is_id_of("003000000000001'OR", "003"));
    }
}
