//! The blind survey's reads and writes on Freshdesk: the case with its requester's contact
//! (opt-out in a contact checkbox field), earlier surveys through the ticket search, and tags, a
//! private note and custom fields on the ticket. Freshdesk replaces the whole tag list on an
//! update, so every tag change reads the ticket first and merges.

use crate::helpdesk::mapping::truthy;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::api::FreshdeskApi;
use super::config::ValidFreshdesk;
use super::ticket::{map_ticket, merged_tags, read_ticket};
use crate::helpdesk::tags::{survey_case, tag_list};
use crate::survey::config::SurveyFields;
use crate::survey::rules::{Person, SurveyCase};
use crate::survey::{Answer, SurveyDesk, SurveyError, Tagged};

/// Ticket statuses: 4 resolved, 5 closed.
const RESOLVED: u64 = 4;
const CLOSED: u64 = 5;

pub struct FreshdeskSurvey {
    pub(super) connector: String,
    pub(super) cfg: Arc<ValidFreshdesk>,
    pub(super) api: Arc<FreshdeskApi>,
    pub(super) fields: SurveyFields,
}

impl FreshdeskSurvey {
    /// The ticket custom field (`cf_...`) mapped to `name` in `[helpdesk.fields]`.
    fn field_key(&self, name: &Option<String>) -> Option<&str> {
        self.cfg.mapping.key_of(name.as_ref()?).map(String::as_str)
    }

    fn person(&self, contact: &Value) -> Person {
        let text = |k: &str| contact.get(k).and_then(Value::as_str).map(str::to_string);
        Person {
            id: contact
                .get("id")
                .and_then(Value::as_u64)
                .map(|n| n.to_string()),
            email: text("email"),
            name: text("name"),
            locale: text("language").map(|l| l.to_ascii_lowercase()),
            // Contacts are end customers; agents are a separate record in Freshdesk.
            is_agent: false,
            opted_out: contact
                .get("custom_fields")
                .and_then(|f| f.get(self.fields.opt_out_field()))
                .is_some_and(truthy),
        }
    }

    /// Writes `current` tags merged with `add` and without `remove`, and any `more` fields, in
    /// one update.
    async fn write_tags(
        &self,
        ticket: &str,
        current: &[String],
        add: &[String],
        remove: &[String],
        more: Map<String, Value>,
    ) -> Result<(), SurveyError> {
        let mut body = more;
        body.insert("tags".into(), json!(merged_tags(current, add, remove)));
        self.api.update_ticket(ticket, &Value::Object(body)).await?;
        Ok(())
    }
}

/// A value safe inside a quoted filter-query string.
fn quoted(s: &str) -> String {
    s.replace(['\'', '"', '\\'], "")
}

#[async_trait]
impl SurveyDesk for FreshdeskSurvey {
    async fn read_case(&self, ticket: &str) -> Result<Option<SurveyCase>, SurveyError> {
        let Some(t) = self.api.ticket(ticket).await? else {
            return Ok(None);
        };
        let contact = self.api.requester_contact(&t).await?;
        let esc = map_ticket(&self.connector, &self.cfg, &t, contact.as_ref(), Utc::now())?;
        let requester = contact.map(|c| self.person(&c)).unwrap_or_default();
        let status = t.get("status").and_then(Value::as_u64);
        let solved = matches!(status, Some(RESOLVED | CLOSED));
        Ok(Some(survey_case(
            &self.cfg.tags,
            &self.fields,
            esc,
            &t,
            solved,
            requester,
        )))
    }

    async fn find_customer(&self, email: &str) -> Result<Option<Person>, SurveyError> {
        let contacts = self.api.contacts_by_email(email).await?;
        Ok(contacts
            .iter()
            .find(|c| {
                c.get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|c| self.person(c)))
    }

    async fn surveyed_recently(
        &self,
        email: &str,
        days: u32,
        except_ticket: &str,
    ) -> Result<bool, SurveyError> {
        let t = &self.fields.tags;
        let since = Utc::now() - chrono::Duration::days(i64::from(days));
        let surveyed = |found: &[Value]| {
            found.iter().any(|r| {
                let tags = tag_list(r);
                (tags.contains(&t.sent) || tags.contains(&t.sending))
                    && r.get("id")
                        .and_then(Value::as_u64)
                        .is_some_and(|id| id.to_string() != except_ticket)
            })
        };
        // The customer's own tickets: the ticket list filtered by requester e-mail.
        if surveyed(&self.api.tickets_of_requester(email, since).await?) {
            return Ok(true);
        }
        // Tickets that name the customer in the end-customer field: the filter query.
        let Some(key) = self.field_key(&self.fields.end_customer) else {
            return Ok(false);
        };
        let q = format!(
            "(tag:'{}' OR tag:'{}') AND updated_at:>'{}' AND {}:'{}'",
            quoted(&t.sent),
            quoted(&t.sending),
            since.format("%Y-%m-%d"),
            key.trim_start_matches("cf_"),
            quoted(email)
        );
        Ok(surveyed(&self.api.search_tickets(&q, 1).await?))
    }

    async fn tag(
        &self,
        ticket: &str,
        add: &[String],
        remove: &[String],
        version: Option<&str>,
    ) -> Result<Tagged, SurveyError> {
        // No conditional update on Freshdesk: the version is compared on a fresh read.
        let current = read_ticket(&self.api, ticket).await?;
        if let Some(v) = version
            && current.get("updated_at").and_then(Value::as_str) != Some(v)
        {
            return Ok(Tagged::Conflict);
        }
        self.write_tags(ticket, &tag_list(&current), add, remove, Map::new())
            .await?;
        Ok(Tagged::Applied)
    }

    async fn answered_with(&self, ticket: &str, answer_id: &str) -> Result<bool, SurveyError> {
        let t = read_ticket(&self.api, ticket).await?;
        Ok(tag_list(&t).contains(&self.fields.tags.answer_tag(answer_id)))
    }

    async fn record_answer(
        &self,
        ticket: &str,
        answer: &Answer,
        answer_id: &str,
        note: &str,
    ) -> Result<bool, SurveyError> {
        let t = &self.fields.tags;
        let mut custom = Map::new();
        let mut set = |name: &Option<String>, value: Value| {
            if let Some(k) = self.field_key(name) {
                custom.insert(k.to_string(), value);
            }
        };
        set(&self.fields.csat, json!(answer.csat));
        set(&self.fields.ces, json!(answer.ces));
        set(&self.fields.about, json!(answer.about.map(|a| a.as_str())));
        set(&self.fields.comment, json!(answer.comment));
        self.api.add_private_note(ticket, note).await?;
        let current = tag_list(&read_ticket(&self.api, ticket).await?);
        let (add, remove) = t.answer_tags(answer, answer_id, &current);
        let mut more = Map::new();
        if !custom.is_empty() {
            more.insert("custom_fields".into(), Value::Object(custom));
        }
        self.write_tags(ticket, &current, &add, &remove, more)
            .await?;
        Ok(!current.contains(&t.answered))
    }

    async fn mark_answered(&self, ticket: &str, answer_id: &str) -> Result<bool, SurveyError> {
        let current = tag_list(&read_ticket(&self.api, ticket).await?);
        let answered = &self.fields.tags.answered;
        let answer_tag = self.fields.tags.answer_tag(answer_id);
        let remove = self.fields.tags.other_answer_tags(&current, &answer_tag);
        self.write_tags(
            ticket,
            &current,
            &[answered.clone(), answer_tag],
            &remove,
            Map::new(),
        )
        .await?;
        Ok(!current.contains(answered))
    }

    async fn opt_out(&self, customer: &str) -> Result<(), SurveyError> {
        if customer.is_empty() || !customer.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SurveyError::Unusable("not a Freshdesk contact id".into()));
        }
        self.api
            .update_contact(
                customer,
                &json!({"custom_fields": {self.fields.opt_out_field(): true}}),
            )
            .await?;
        Ok(())
    }
}
