//! Freshdesk (API v2): an automation rule's "Trigger webhook" action in (the inbound role, in
//! `webhook.rs`), the ticket with its requester and company through the API, the verdict back as
//! one private note and tags (the tickets role, here), Freshdesk Solutions as a knowledge base
//! (searched in `api.rs`, listed for the mirror in `mirror.rs`) and the survey desk
//! (`survey.rs`). No record role: Freshdesk's ticket search returns at most 300 tickets, so a
//! whole period cannot be read back (`report`, `calibrate` and `backfill` refuse a Freshdesk
//! connector, and `validate` refuses its `[report]`).
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
pub mod app;
pub mod config;
pub mod mirror;
pub mod sandbox;
pub mod survey;
pub mod ticket;
pub mod webhook;

use crate::helpdesk::mapping::time_at;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use self::api::{FreshdeskApi, Solutions};
use self::config::ValidFreshdesk;
use self::ticket::{map_ticket, merged_tags, read_ticket};
use super::tags::tag_list;
use super::{
    Helpdesk, HelpdeskError, Loaded, SearchTerms, TicketRef, Tickets, ValidHelpdeskFile, Written,
};
use crate::assess::note::HEADING;
use crate::assess::{Outcome, Verdict};
use crate::escalation::Escalation;
use crate::http::Upstream;
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
            kb_source: Some(Arc::new(mirror::SolutionsSource(Arc::clone(
                &freshdesk.api,
            )))),
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
            prechecked: ticket::prechecked(&self.cfg, &ticket),
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
