//! Freshdesk (API v2): an automation rule's "Trigger webhook" action in (the inbound role, in
//! `webhook.rs`), the ticket with its requester and company through the API, the verdict back as
//! one private note and tags (the tickets role, here), Freshdesk Solutions as a knowledge base
//! (`api.rs`) and the survey desk (`survey.rs`). No record role: Freshdesk's ticket search
//! returns at most 300 tickets, so a whole period cannot be read back (`report`, `calibrate` and
//! `backfill` refuse a Freshdesk connector, and `validate` refuses its `[report]`).
//!
//! Write order and redelivery: the note is written first and the tags last. The verdict tag is
//! what `load` reads to skip a judged ticket, so it appears only once the evidence is there. If
//! the tag write fails after the note was added, Freshdesk's retry (or the next rule run)
//! judges the ticket again; a private note that already states the same verdict is not written
//! a second time. Freshdesk's update replaces the whole tag list, so the ticket is read again
//! right before it and the verdict's tags are merged into the tags it has then: a tag someone
//! added after the service first read the ticket is kept. Freshdesk has no conditional update,
//! so two instances judging one ticket at the same instant could each add a note.

pub mod api;
pub mod config;
pub mod sandbox;
pub mod survey;
pub mod webhook;

use crate::helpdesk::mapping::time_at;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use self::api::{FreshdeskApi, Solutions};
use self::config::{PartnerSource, ValidFreshdesk};
use super::mapping::partner_or_unknown;
use super::tags::tag_list;
use super::{
    Helpdesk, HelpdeskError, Loaded, SearchTerms, TicketRef, Tickets, ValidHelpdeskFile, Written,
};
use crate::assess::note::HEADING;
use crate::assess::{Outcome, Verdict};
use crate::escalation::{Escalation, Requester};
use crate::http::Upstream;
use crate::kb::html_to_text;
use crate::survey::SurveyDesk;
use crate::survey::config::SurveyFields;

/// Escalated tickets are found with the filter-query terms the connector gives.
const SEARCH_TERMS: SearchTerms = SearchTerms::Taken {
    helpdesk: "Freshdesk",
    example: "tag:'partner_escalated'",
};

impl super::HelpdeskFile for config::FreshdeskConfig {
    type Valid = ValidFreshdesk;

    fn validate(
        self,
        _kb: &crate::kb::KbBackend,
        known_fields: &mut Vec<String>,
        problems: &mut Vec<crate::checks::Problem>,
    ) -> Option<ValidFreshdesk> {
        config::FreshdeskConfig::validate(self, known_fields, problems)
    }
}

impl ValidHelpdeskFile for ValidFreshdesk {
    /// The API key and the URL are required: always configured.
    fn has_api(&self) -> bool {
        true
    }

    fn search_terms(&self) -> SearchTerms {
        SEARCH_TERMS
    }

    fn reads_back(&self) -> Result<(), &'static str> {
        Err("Freshdesk's ticket search returns at most 300 tickets")
    }

    fn build(
        self,
        connector: &str,
        survey: Option<&SurveyFields>,
    ) -> Result<Helpdesk, reqwest::Error> {
        let freshdesk = Arc::new(Freshdesk::new(connector, self)?);
        Ok(Helpdesk {
            kind: "freshdesk",
            search_terms: SEARCH_TERMS,
            knowledge_base: Some(Arc::new(Solutions(Arc::clone(&freshdesk.api)))),
            survey_desk: survey.map(|f| freshdesk.survey_desk(f)),
            inbound: freshdesk.clone(),
            record: None,
            tickets: freshdesk,
        })
    }
}

pub struct Freshdesk {
    connector: String,
    cfg: Arc<ValidFreshdesk>,
    api: Arc<FreshdeskApi>,
}

impl Freshdesk {
    pub fn new(connector: &str, cfg: ValidFreshdesk) -> Result<Freshdesk, reqwest::Error> {
        let api = Arc::new(FreshdeskApi::new(
            Upstream::new("freshdesk", cfg.retry)?,
            cfg.base_url.clone(),
            cfg.api_key.clone(),
        ));
        Ok(Freshdesk {
            connector: connector.to_string(),
            cfg: Arc::new(cfg),
            api,
        })
    }

    /// The verdict a ticket's tags record, if any.
    fn judged(&self, ticket: &Value) -> Option<Outcome> {
        self.cfg.tags.judged_on(ticket)
    }

    async fn read(&self, id: &str) -> Result<Value, HelpdeskError> {
        read_ticket(&self.api, id).await
    }

    /// Whether one of the ticket's private notes already states this verdict: its text starts
    /// with the note's first line (however Freshdesk's `body_text` renders the line breaks).
    async fn has_note(&self, id: &str, note: &str) -> Result<bool, HelpdeskError> {
        let heading = note.lines().next().unwrap_or(HEADING).trim();
        Ok(self.api.conversations(id).await?.iter().any(|c| {
            c.get("private").and_then(Value::as_bool) == Some(true)
                && c.get("body_text")
                    .and_then(Value::as_str)
                    .and_then(|b| b.trim_start().strip_prefix(heading))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
        }))
    }
}

/// The ticket with its requester and company; a ticket that does not exist is unusable.
pub async fn read_ticket(api: &FreshdeskApi, id: &str) -> Result<Value, HelpdeskError> {
    api.ticket(id)
        .await?
        .ok_or_else(|| HelpdeskError::Unusable(format!("ticket {id} does not exist")))
}

/// `current` with `add` appended (each once) and `remove` taken out, in their order.
pub fn merged_tags(current: &[String], add: &[String], remove: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(current.len() + add.len());
    for t in current.iter().chain(add) {
        if !remove.contains(t) && !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

#[async_trait]
impl Tickets for Freshdesk {
    async fn load(&self, t: &TicketRef) -> Result<Loaded, HelpdeskError> {
        let ticket = self.read(&t.id).await?;
        let contact = self.api.requester_contact(&ticket).await?;
        let escalation = map_ticket(
            &self.connector,
            &self.cfg,
            &ticket,
            contact.as_ref(),
            t.escalated_at,
        )?;
        Ok(Loaded {
            escalation,
            judged: self.judged(&ticket),
            version: ticket
                .get("updated_at")
                .and_then(Value::as_str)
                .map(str::to_string),
            survey_recorded: false,
        })
    }

    /// A ticket as `GET /api/v2/tickets/{id}?include=requester,company` returns it. Without
    /// `escalated_at`, its `updated_at`: the rule's change is its last.
    fn escalation_from_snapshot(
        &self,
        snapshot: &Value,
        escalated_at: Option<DateTime<Utc>>,
    ) -> Result<Escalation, HelpdeskError> {
        let escalated_at = escalated_at
            .or_else(|| time_at(snapshot, "updated_at"))
            .ok_or_else(|| {
                HelpdeskError::Unusable(
                    "the ticket has no `updated_at` to take as its escalation time".into(),
                )
            })?;
        map_ticket(&self.connector, &self.cfg, snapshot, None, escalated_at)
    }

    async fn write_back(
        &self,
        loaded: &Loaded,
        verdict: &Verdict,
        note: &str,
        survey_pending: Option<&str>,
    ) -> Result<Written, HelpdeskError> {
        let id = &loaded.escalation.ticket_id;
        let mut tags = self.cfg.tags.for_verdict(verdict);
        tags.extend(survey_pending.map(str::to_string));
        if !self.has_note(id, note).await? {
            self.api.add_private_note(id, note).await?;
        }
        // The update replaces the whole list: merge into the tags the ticket has right now.
        let fresh = self.read(id).await?;
        if self.judged(&fresh).is_some() {
            return Ok(Written::Already);
        }
        let merged = merged_tags(&tag_list(&fresh), &tags, &[]);
        self.api
            .update_ticket(id, &json!({ "tags": merged }))
            .await?;
        Ok(Written::Now)
    }

    /// The filter query `({query}) AND updated_at:>'{day before since}'`, every page (at most
    /// 300 tickets: Freshdesk's search goes no further), without the judged ones, oldest change
    /// first.
    async fn unjudged(
        &self,
        query: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<TicketRef>, HelpdeskError> {
        let query = query
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .ok_or_else(|| {
                HelpdeskError::Unusable(
                    "the Freshdesk sweep needs the filter-query terms that find escalated tickets"
                        .into(),
                )
            })?;
        let day = (since - chrono::Duration::days(1)).format("%Y-%m-%d");
        let q = format!("({query}) AND updated_at:>'{day}'");
        let mut found: Vec<(DateTime<Utc>, TicketRef)> = Vec::new();
        for page in 1..=api::SEARCH_PAGES {
            let tickets = self.api.search_tickets(&q, page).await?;
            for t in &tickets {
                let (Some(id), Some(created), Some(updated)) = (
                    t.get("id").and_then(Value::as_u64),
                    time_at(t, "created_at"),
                    time_at(t, "updated_at"),
                ) else {
                    continue;
                };
                if updated >= since && self.judged(t).is_none() {
                    found.push((
                        updated,
                        TicketRef {
                            id: id.to_string(),
                            escalated_at: created,
                            escalated_at_unknown: true,
                            snapshot: None,
                        },
                    ));
                }
            }
            if tickets.len() < api::SEARCH_PAGE_SIZE {
                break;
            }
        }
        found.sort_by_key(|(updated, _)| *updated);
        Ok(found.into_iter().map(|(_, t)| t).collect())
    }
}

impl Freshdesk {
    /// The survey's reads and writes.
    fn survey_desk(&self, fields: &SurveyFields) -> Arc<dyn SurveyDesk> {
        Arc::new(survey::FreshdeskSurvey {
            connector: self.connector.clone(),
            cfg: Arc::clone(&self.cfg),
            api: Arc::clone(&self.api),
            fields: fields.clone(),
        })
    }
}

/// Freshdesk's `source` codes as channel names.
fn channel(source: u64) -> Option<&'static str> {
    Some(match source {
        1 => "email",
        2 => "portal",
        3 => "phone",
        7 => "chat",
        9 => "feedback_widget",
        10 => "outbound_email",
        _ => return None,
    })
}

/// Maps a ticket as `GET /api/v2/tickets/{id}?include=requester,company` returns it (and the
/// requester's contact record, for its language) to an escalation.
pub fn map_ticket(
    connector: &str,
    cfg: &ValidFreshdesk,
    t: &Value,
    contact: Option<&Value>,
    escalated_at: DateTime<Utc>,
) -> Result<Escalation, HelpdeskError> {
    let unusable = |m: &str| HelpdeskError::Unusable(m.to_string());
    if !t.is_object() {
        return Err(unusable("the ticket is not a JSON object"));
    }
    let id = match t.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(unusable("the ticket has no id")),
    };
    let text = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let opened_at =
        time_at(t, "created_at").ok_or_else(|| unusable("the ticket has no valid `created_at`"))?;
    let custom = t.get("custom_fields");
    let mapped = cfg.mapping.read(|field| custom.and_then(|c| c.get(field)));
    let partner = partner_or_unknown(match &cfg.partner {
        PartnerSource::Company => t
            .pointer("/company/name")
            .and_then(Value::as_str)
            .map(str::to_string),
        PartnerSource::Field { field } => mapped.field(field),
    });
    let description = match t.get("description_text").and_then(Value::as_str) {
        Some(plain) => plain.to_string(),
        None => html_to_text(&text("description")),
    };
    Ok(Escalation {
        connector: connector.to_string(),
        ticket_id: id.clone(),
        partner,
        subject: text("subject"),
        description,
        requester: Requester {
            email: t
                .pointer("/requester/email")
                .and_then(Value::as_str)
                .map(str::to_string),
            locale: contact
                .and_then(|c| c.get("language"))
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase),
        },
        product: mapped.product,
        version: mapped.version,
        channel: t
            .get("source")
            .and_then(Value::as_u64)
            .and_then(channel)
            .map(str::to_string),
        issue_type: t.get("type").and_then(Value::as_str).map(str::to_string),
        opened_at,
        escalated_at,
        escalated_at_unknown: false,
        tried_articles: mapped.tried_articles,
        handoff: mapped.handoff,
        url: crate::http::join_path(&cfg.base_url, &format!("/a/tickets/{id}")).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(partner: &str) -> ValidFreshdesk {
        let text = format!(
            r#"
base_url = "https://acme.freshdesk.com"
api_key = "key"
webhook_secrets = ["fd-webhook-secret-3c9a71e05b2d48f6"]
{partner}
product_field = "product"
[fields]
cf_steps = "steps"
cf_product = "product"
cf_partner = "partner"
"#
        );
        let file: config::FreshdeskConfig = toml::from_str(&text).unwrap();
        let mut problems = Vec::new();
        file.validate(&mut Vec::new(), &mut problems)
            .unwrap_or_else(|| panic!("{problems:?}"))
    }

    #[test]
    fn a_ticket_maps_to_the_escalation() {
        let t = json!({
            "id": 42, "subject": "Export fails", "description": "<p>HTML</p>",
            "description_text": "Plain text", "source": 7, "type": "Problem",
            "created_at": "2024-05-03T09:00:00Z",
            "custom_fields": {"cf_steps": " 1. Open ", "cf_product": "Ledgerly", "cf_partner": "Northwind Support", "cf_other": "x"},
            "requester": {"id": 9, "email": "dana@example.com"},
            "company": {"id": 5, "name": "Acme IT Services"}
        });
        let contact = json!({"id": 9, "language": "pt-BR"});
        let at = Utc::now();
        let esc = map_ticket("fd", &valid(""), &t, Some(&contact), at).unwrap();
        assert_eq!(esc.ticket_id, "42");
        assert_eq!(esc.partner, "Acme IT Services");
        assert_eq!(esc.description, "Plain text");
        assert_eq!(esc.channel.as_deref(), Some("chat"));
        assert_eq!(esc.requester.email.as_deref(), Some("dana@example.com"));
        assert_eq!(esc.requester.locale.as_deref(), Some("pt-br"));
        assert_eq!(esc.product.as_deref(), Some("Ledgerly"));
        assert_eq!(esc.handoff["steps"], "1. Open");
        assert_eq!(esc.url, "https://acme.freshdesk.com/a/tickets/42");
        let by_field = valid(r#"partner = { from = "field", field = "partner" }"#);
        let esc = map_ticket("fd", &by_field, &t, None, at).unwrap();
        assert_eq!(esc.partner, "Northwind Support");
        assert_eq!(esc.requester.locale, None);
        let no_company = json!({"id": 1, "created_at": "2024-05-03T09:00:00Z"});
        let esc = map_ticket("fd", &valid(""), &no_company, None, at).unwrap();
        assert_eq!(esc.partner, crate::escalation::UNKNOWN_PARTNER);
        assert!(map_ticket("fd", &valid(""), &json!({"id": 1}), None, at).is_err());
    }

    #[test]
    fn merging_keeps_every_tag_once() {
        let s = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            merged_tags(
                &s(&["vip", "escalated"]),
                &s(&["escalated", "escalation_good"]),
                &[]
            ),
            s(&["vip", "escalated", "escalation_good"])
        );
        assert_eq!(
            merged_tags(&s(&["a", "b"]), &s(&["c"]), &s(&["a"])),
            s(&["b", "c"])
        );
    }
}
