//! The blind survey's reads and writes on Zendesk: the case with its requester, the customer's
//! user record (opt-out in a user field), earlier surveys through the Search API, and tags, a
//! note and custom fields on the ticket.

use crate::helpdesk::mapping::truthy;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::api::{Update, ZendeskApi};
use super::config::ValidZendesk;
use super::install::SURVEY_REQUESTED_TAG;
use super::ticket::{map_ticket, read_ticket, sideloaded};
use crate::helpdesk::tags::{survey_case, tag_list};
use crate::survey::config::SurveyFields;
use crate::survey::rules::{Person, SurveyCase};
use crate::survey::{Answer, SurveyDesk, SurveyError, Tagged};

pub struct ZendeskSurvey {
    pub(super) connector: String,
    pub(super) cfg: Arc<ValidZendesk>,
    pub(super) api: Arc<ZendeskApi>,
    pub(super) fields: SurveyFields,
}

impl ZendeskSurvey {
    /// The custom field id mapped to `name` in `[helpdesk.fields]`.
    fn field_id(&self, name: &Option<String>) -> Option<u64> {
        self.cfg.mapping.key_of(name.as_deref()?).copied()
    }

    fn person(&self, user: &Value) -> Person {
        let text = |k: &str| user.get(k).and_then(Value::as_str).map(str::to_string);
        Person {
            id: match user.get("id") {
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            },
            email: text("email"),
            name: text("name"),
            locale: text("locale").map(|l| l.to_ascii_lowercase()),
            is_agent: matches!(
                user.get("role").and_then(Value::as_str),
                Some("agent" | "admin")
            ),
            opted_out: user
                .get("user_fields")
                .and_then(|f| f.get(self.fields.opt_out_field()))
                .is_some_and(truthy),
        }
    }

    /// The tags of the follow-up tickets of a closed ticket (at most [`MAX_FOLLOWUPS`]).
    async fn followup_tags(&self, closed: &Value) -> Result<Vec<Vec<String>>, SurveyError> {
        let ids = closed
            .get("followup_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .take(MAX_FOLLOWUPS);
        let mut all = Vec::new();
        for id in ids {
            if let Some(snap) = self.api.ticket(&id.to_string()).await? {
                all.push(tag_list(&snap["ticket"]));
            }
        }
        Ok(all)
    }

    /// A closed ticket takes no update (Zendesk answers 422), so a late answer goes into a
    /// follow-up ticket (`via_followup_source_id`): solved at once, the answer as its only,
    /// internal comment, the answer's tags and fields. The tags given replace the ones a
    /// follow-up would inherit, so the verdict is never counted twice.
    ///
    /// The creation's `Idempotency-Key` names the answer and the closed ticket's latest
    /// follow-up: a resent create and the same answer written twice at once make one
    /// follow-up, while an answer that changes back after another is a follow-up of its own.
    async fn record_late_answer(
        &self,
        ticket: &str,
        closed: &Value,
        answer_id: &str,
        tags: Vec<String>,
        custom: Vec<Value>,
        note: &str,
    ) -> Result<bool, SurveyError> {
        let answered = &self.fields.tags.answered;
        let earlier = self.followup_tags(closed).await?;
        let first =
            !tag_list(closed).contains(answered) && !earlier.iter().any(|t| t.contains(answered));
        let id: u64 = ticket
            .parse()
            .map_err(|_| SurveyError::Unusable(format!("`{ticket}` is not a ticket id")))?;
        let mut follow_up = json!({
            "via_followup_source_id": id,
            "subject": format!("Blind CSAT survey answer for closed ticket #{id}"),
            "comment": {"body": note, "public": false},
            "status": "solved",
            "tags": tags,
        });
        if !custom.is_empty() {
            follow_up["custom_fields"] = json!(custom);
        }
        let after = closed
            .get("followup_ids")
            .and_then(Value::as_array)
            .and_then(|ids| ids.last())
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let key = format!("escalation-gate-csat-{ticket}-{answer_id}-after-{after}");
        let created = self.api.create_ticket(follow_up, &key).await?;
        tracing::info!(ticket = %ticket, follow_up = created, "Ticket closed: the survey answer is kept in a follow-up ticket");
        Ok(first)
    }
}

/// Follow-ups of a closed ticket read to find its earlier survey answers.
const MAX_FOLLOWUPS: usize = 10;

#[async_trait]
impl SurveyDesk for ZendeskSurvey {
    async fn read_case(&self, ticket: &str) -> Result<Option<SurveyCase>, SurveyError> {
        let Some(snap) = self.api.ticket(ticket).await? else {
            return Ok(None);
        };
        let esc = map_ticket(&self.connector, &self.cfg, &snap, Utc::now())?;
        let t = &snap["ticket"];
        let requester = sideloaded(&snap, "users", "requester_id")
            .map(|u| self.person(u))
            .unwrap_or_default();
        let solved = t.get("status").and_then(Value::as_str) == Some("solved");
        Ok(Some(survey_case(
            &self.cfg.tags,
            &self.fields,
            esc,
            t,
            solved,
            requester,
        )))
    }

    async fn find_customer(&self, email: &str) -> Result<Option<Person>, SurveyError> {
        let users = self.api.users_by_email(email).await?;
        Ok(users
            .iter()
            .find(|u| {
                u.get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|u| self.person(u)))
    }

    async fn surveyed_recently(
        &self,
        email: &str,
        days: u32,
        except_ticket: &str,
    ) -> Result<bool, SurveyError> {
        let t = &self.fields.tags;
        let base = format!(
            "type:ticket tags:{} tags:{} updated>{days}days",
            t.sent, t.sending
        );
        let email = email.replace('"', "");
        let mut queries = vec![format!("{base} requester:\"{email}\"")];
        if let Some(id) = self.field_id(&self.fields.end_customer) {
            queries.push(format!("{base} custom_field_{id}:\"{email}\""));
        }
        for q in queries {
            let found = self.api.search_tickets(&q, &[]).await?;
            if found.iter().any(|r| {
                let id = match r.get("id") {
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                id != except_ticket
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn tag(
        &self,
        ticket: &str,
        add: &[String],
        remove: &[String],
        version: Option<&str>,
    ) -> Result<Tagged, SurveyError> {
        let mut body = json!({});
        if !add.is_empty() {
            body["additional_tags"] = json!(add);
        }
        if !remove.is_empty() {
            body["remove_tags"] = json!(remove);
        }
        Ok(match self.api.update_ticket(ticket, body, version).await? {
            Update::Applied => Tagged::Applied,
            Update::Conflict => Tagged::Conflict,
        })
    }

    async fn answered_with(&self, ticket: &str, answer_id: &str) -> Result<bool, SurveyError> {
        let snap = read_ticket(&self.api, ticket).await?;
        let t = &snap["ticket"];
        let tag = self.fields.tags.answer_tag(answer_id);
        // On a closed ticket, the latest follow-up holding an answer is the one that counts.
        let latest = if t.get("status").and_then(Value::as_str) == Some("closed") {
            self.followup_tags(t)
                .await?
                .into_iter()
                .rev()
                .find(|tags| tags.contains(&self.fields.tags.answered))
        } else {
            None
        };
        Ok(latest.unwrap_or_else(|| tag_list(t)).contains(&tag))
    }

    async fn record_answer(
        &self,
        ticket: &str,
        answer: &Answer,
        answer_id: &str,
        note: &str,
    ) -> Result<bool, SurveyError> {
        let snap = read_ticket(&self.api, ticket).await?;
        let current = &snap["ticket"];
        let tags = tag_list(current);
        let first = !tags.contains(&self.fields.tags.answered);
        let mut custom = Vec::new();
        if let Some(id) = self.field_id(&self.fields.csat) {
            custom.push(json!({"id": id, "value": answer.csat}));
        }
        if let Some(id) = self.field_id(&self.fields.ces) {
            custom.push(json!({"id": id, "value": answer.ces}));
        }
        if let Some(id) = self.field_id(&self.fields.about) {
            custom.push(json!({"id": id, "value": answer.about.map(|a| a.as_str())}));
        }
        if let Some(id) = self.field_id(&self.fields.comment) {
            custom.push(json!({"id": id, "value": answer.comment}));
        }
        let (add, remove) = self.fields.tags.answer_tags(answer, answer_id, &tags);
        if current.get("status").and_then(Value::as_str) == Some("closed") {
            return self
                .record_late_answer(ticket, current, answer_id, add, custom, note)
                .await;
        }
        let mut body = json!({
            "comment": {"body": note, "public": false},
            "additional_tags": add,
            "remove_tags": remove,
        });
        if !custom.is_empty() {
            body["custom_fields"] = json!(custom);
        }
        self.api.update_ticket(ticket, body, None).await?;
        Ok(first)
    }

    async fn mark_answered(&self, ticket: &str, answer_id: &str) -> Result<bool, SurveyError> {
        let snap = read_ticket(&self.api, ticket).await?;
        let current = &snap["ticket"];
        let tags = tag_list(current);
        let answered = &self.fields.tags.answered;
        let first = !tags.contains(answered);
        if current.get("status").and_then(Value::as_str) == Some("closed") {
            // The answer is in the sink; a closed ticket takes no tag.
            tracing::info!(ticket = %ticket, "Ticket closed: the answer went to the sink and the ticket stays untagged");
            return Ok(first);
        }
        let answer_tag = self.fields.tags.answer_tag(answer_id);
        let remove = self.fields.tags.other_answer_tags(&tags, &answer_tag);
        self.tag(ticket, &[answered.clone(), answer_tag], &remove, None)
            .await?;
        Ok(first)
    }

    async fn opt_out(&self, customer: &str) -> Result<(), SurveyError> {
        if customer.is_empty() || !customer.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SurveyError::Unusable("not a Zendesk user id".into()));
        }
        self.api
            .update_user(
                customer,
                json!({"user_fields": {self.fields.opt_out_field(): true}}),
            )
            .await?;
        Ok(())
    }

    /// Solved tickets tagged by the survey automation (`csat_blind_requested`, added with its
    /// call) with no sent, sending or skipped tag, last changed between `since` and `before`.
    async fn lost_calls(
        &self,
        since: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<String>, SurveyError> {
        let t = &self.fields.tags;
        let at = |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Secs, true);
        let q = format!(
            "type:ticket status:solved tags:{SURVEY_REQUESTED_TAG} -tags:{} -tags:{} -tags:{} \
             updated>{} updated<{}",
            t.sent,
            t.sending,
            t.skipped,
            at(since),
            at(before)
        );
        let found = self
            .api
            .search_tickets(&q, &[("sort_by", "updated_at"), ("sort_order", "asc")])
            .await?;
        Ok(found
            .iter()
            .filter_map(|r| r.get("id").and_then(Value::as_u64))
            .map(|id| id.to_string())
            .collect())
    }
}
