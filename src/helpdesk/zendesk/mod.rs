//! Zendesk Support: a webhook from a trigger in, the ticket through the Support API, the verdict
//! back as tags and one internal note, and the Help Center as a knowledge base.

pub mod api;
pub mod app;
pub mod config;
pub mod history;
pub mod install;
pub mod records;
pub mod sandbox;
pub mod survey;
pub mod ticket;
pub mod webhook;

use crate::helpdesk::mapping::time_at;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use self::api::{HelpCenter, Update, ZendeskApi};
use self::config::{ValidZendesk, WriteBackMode};
use self::ticket::{map_ticket, read_ticket};
use super::records::{Period, RecordSink};
use super::{
    Helpdesk, HelpdeskError, Loaded, Record, SearchTerms, TicketRef, Tickets, ValidHelpdeskFile,
    Written,
};
use crate::assess::{Outcome, Verdict};
use crate::escalation::Escalation;
use crate::http::{Upstream, UpstreamError};
use crate::kb::KnowledgeBase;
use crate::survey::SurveyDesk;
use crate::survey::config::SurveyFields;

/// Escalated tickets are found with the search terms the connector gives.
const SEARCH_TERMS: SearchTerms = SearchTerms::Taken {
    helpdesk: "Zendesk",
    example: "tags:partner_escalation",
};

/// How often a write that lost a `safe_update` race is re-read and tried again.
const CONFLICT_ATTEMPTS: usize = 3;

impl super::HelpdeskFile for config::ZendeskConfig {
    type Valid = ValidZendesk;

    fn validate(
        self,
        kb: &crate::kb::KbBackend,
        known_fields: &mut Vec<String>,
        problems: &mut Vec<crate::checks::Problem>,
    ) -> Option<ValidZendesk> {
        config::ZendeskConfig::validate(self, kb, known_fields, problems)
    }
}

impl ValidHelpdeskFile for ValidZendesk {
    fn has_api(&self) -> bool {
        self.base_url.is_some() && self.auth.is_some()
    }

    fn search_terms(&self) -> SearchTerms {
        SEARCH_TERMS
    }

    fn reads_back(&self) -> Result<(), &'static str> {
        Ok(())
    }

    fn build(
        self,
        connector: &str,
        survey: Option<&SurveyFields>,
    ) -> Result<Helpdesk, reqwest::Error> {
        let zendesk = Arc::new(Zendesk::new(connector, self)?);
        Ok(Helpdesk {
            kind: "zendesk",
            search_terms: SEARCH_TERMS,
            kb_source: zendesk.kb_source(),
            knowledge_base: zendesk.knowledge_base(),
            survey_desk: survey.and_then(|f| zendesk.survey_desk(f)),
            inbound: zendesk.clone(),
            record: Some(zendesk.clone()),
            tickets: zendesk,
        })
    }
}

pub struct Zendesk {
    connector: String,
    cfg: Arc<ValidZendesk>,
    api: Option<Arc<ZendeskApi>>,
}

impl Zendesk {
    pub fn new(connector: &str, mut cfg: ValidZendesk) -> Result<Zendesk, reqwest::Error> {
        let api = match (cfg.base_url.clone(), cfg.auth.take()) {
            (Some(base), Some(auth)) => Some(Arc::new(ZendeskApi::new(
                Upstream::new("zendesk", cfg.retry)?,
                base,
                auth,
            ))),
            _ => None,
        };
        Ok(Zendesk {
            connector: connector.to_string(),
            cfg: Arc::new(cfg),
            api,
        })
    }

    fn api(&self) -> Result<&ZendeskApi, HelpdeskError> {
        self.api.as_deref().ok_or_else(|| {
            HelpdeskError::Unusable("the connector has no Zendesk API configured".into())
        })
    }

    /// What makes a ticket an escalation: `[helpdesk.install.trigger]`, else the search terms.
    fn escalation_rule(&self, query: Option<&str>) -> Result<history::Rule, HelpdeskError> {
        let trigger = self.cfg.install.as_ref().and_then(|i| i.trigger.as_ref());
        history::Rule::new(trigger, query)
    }

    fn judged(&self, ticket: &Value) -> Option<Outcome> {
        self.cfg.tags.judged_on(ticket)
    }

    fn loaded(
        &self,
        snapshot: &Value,
        escalated_at: DateTime<Utc>,
    ) -> Result<Loaded, HelpdeskError> {
        let escalation = map_ticket(&self.connector, &self.cfg, snapshot, escalated_at)?;
        let ticket = &snapshot["ticket"];
        Ok(Loaded {
            escalation,
            judged: self.judged(ticket),
            version: ticket
                .get("updated_at")
                .and_then(Value::as_str)
                .map(str::to_string),
            survey_recorded: false,
            prechecked: ticket::prechecked(&self.cfg, ticket),
        })
    }

    async fn read(&self, id: &str) -> Result<Value, HelpdeskError> {
        read_ticket(self.api()?, id).await
    }

    /// A 422 on the write: a closed ticket takes no update, ever (a fact about the ticket, not
    /// worth a redelivery); any other 422 may pass once an admin fixes what Zendesk refused.
    async fn closed_or(&self, id: &str, refused: UpstreamError) -> HelpdeskError {
        match self.read(id).await {
            Ok(t) if t["ticket"]["status"] == "closed" => HelpdeskError::Unusable(format!(
                "ticket {id} is closed: Zendesk takes no update on a closed ticket"
            )),
            _ => refused.into(),
        }
    }
}

#[async_trait]
impl Tickets for Zendesk {
    async fn load(&self, t: &TicketRef) -> Result<Loaded, HelpdeskError> {
        match &t.snapshot {
            Some(snapshot) => self.loaded(snapshot, t.escalated_at),
            None => self.loaded(&self.read(&t.id).await?, t.escalated_at),
        }
    }

    /// Without `escalated_at`, the ticket's `updated_at`: the trigger's change is its last.
    fn escalation_from_snapshot(
        &self,
        snapshot: &Value,
        escalated_at: Option<DateTime<Utc>>,
    ) -> Result<Escalation, HelpdeskError> {
        let escalated_at = escalated_at
            .or_else(|| time_at(&snapshot["ticket"], "updated_at"))
            .ok_or_else(|| {
                HelpdeskError::Unusable(
                    "the ticket has no `updated_at` to take as its escalation time".into(),
                )
            })?;
        map_ticket(&self.connector, &self.cfg, snapshot, escalated_at)
    }

    async fn write_back(
        &self,
        loaded: &Loaded,
        verdict: &Verdict,
        note: &str,
        survey_pending: Option<&str>,
    ) -> Result<Written, HelpdeskError> {
        let mut tags = self.cfg.tags.for_verdict(verdict);
        tags.extend(survey_pending.map(str::to_string));
        let id = &loaded.escalation.ticket_id;
        if self.cfg.write_back == WriteBackMode::Log {
            tracing::info!(
                connector = %self.connector,
                ticket = %id,
                tags = ?tags,
                note = %note,
                "Would write the verdict (write_back = \"log\")"
            );
            return Ok(Written::Logged);
        }
        let api = self.api()?;
        let mut version = loaded.version.clone().unwrap_or_default();
        // Marks this write in the ticket's audit: when an answer is lost (a timeout, a reset)
        // and the ticket then carries a verdict, the audit tells whether it is this write (to
        // be counted) or another delivery's (counted where it was made).
        let write_id = uuid::Uuid::new_v4().simple().to_string();
        for _ in 0..CONFLICT_ATTEMPTS {
            let update = api
                .add_note_and_tags(id, note, &tags, &version, &write_id)
                .await;
            let lost = match update {
                Ok(Update::Applied) => return Ok(Written::Now),
                Ok(Update::Conflict) => None,
                Err(e @ UpstreamError::Unavailable { .. }) => Some(e),
                Err(e @ UpstreamError::Rejected { status, .. })
                    if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY =>
                {
                    return Err(self.closed_or(id, e).await);
                }
                Err(e) => return Err(e.into()),
            };
            tracing::info!(connector = %self.connector, ticket = %id, answer_lost = lost.is_some(), "Ticket changed while writing, or the answer was lost; reading it again");
            let fresh = match self.read(id).await {
                Ok(fresh) => fresh,
                Err(read) => return Err(lost.map_or(read, HelpdeskError::from)),
            };
            if self.judged(&fresh["ticket"]).is_some() {
                return if api.has_write(id, &write_id).await? {
                    tracing::info!(connector = %self.connector, ticket = %id, "The verdict write landed though its answer was lost");
                    Ok(Written::Now)
                } else {
                    Ok(Written::Already)
                };
            }
            if let Some(e) = lost {
                return Err(e.into());
            }
            version = fresh["ticket"]["updated_at"]
                .as_str()
                .unwrap_or("")
                .to_string();
        }
        Err(HelpdeskError::Upstream(UpstreamError::Unavailable {
            call: "update_ticket",
            attempts: CONFLICT_ATTEMPTS as u32,
            last: "the ticket kept changing while writing".into(),
            retry_after: None,
        }))
    }

    async fn unjudged(
        &self,
        query: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<TicketRef>, HelpdeskError> {
        let t = &self.cfg.tags;
        let q = format!(
            "type:ticket {} updated>{} -tags:{} -tags:{} -tags:{}",
            query.unwrap_or_default(),
            since.to_rfc3339_opts(SecondsFormat::Secs, true),
            t.good,
            t.bad,
            t.review()
        );
        let found = self
            .api()?
            .search_tickets(&q, &[("sort_by", "updated_at"), ("sort_order", "asc")])
            .await?;
        Ok(found
            .iter()
            .filter_map(|r| {
                Some(TicketRef {
                    id: r.get("id")?.as_u64()?.to_string(),
                    escalated_at: time_at(r, "created_at")?,
                    escalated_at_unknown: true,
                    snapshot: None,
                })
            })
            .collect())
    }
}

#[async_trait]
impl Record for Zendesk {
    async fn records(
        &self,
        period: &Period,
        survey: Option<&SurveyFields>,
        sink: &mut (dyn RecordSink + Send),
    ) -> Result<(), HelpdeskError> {
        records::read(
            &self.connector,
            &self.cfg,
            self.api()?,
            period,
            survey,
            sink,
        )
        .await
    }
    async fn escalations(
        &self,
        period: &Period,
        query: Option<&str>,
        sink: &mut (dyn FnMut(TicketRef) + Send),
    ) -> Result<(), HelpdeskError> {
        history::escalations(self.api()?, &self.escalation_rule(query)?, period, sink).await
    }
    async fn escalation_time(
        &self,
        id: &str,
        query: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, HelpdeskError> {
        history::escalation_time(self.api()?, &self.escalation_rule(query)?, id).await
    }
}

impl Zendesk {
    /// The Help Center, when the API is configured.
    fn knowledge_base(&self) -> Option<Arc<dyn KnowledgeBase>> {
        self.api
            .clone()
            .map(|api| Arc::new(HelpCenter(api)) as Arc<dyn KnowledgeBase>)
    }

    /// The Help Center's incremental export, when the API is configured.
    fn kb_source(&self) -> Option<Arc<dyn crate::kb::mirror::KbSource>> {
        self.api
            .clone()
            .map(|api| Arc::new(HelpCenter(api)) as Arc<dyn crate::kb::mirror::KbSource>)
    }

    /// The survey's reads and writes, when the API is configured.
    fn survey_desk(&self, fields: &SurveyFields) -> Option<Arc<dyn SurveyDesk>> {
        let api = self.api.clone()?;
        Some(Arc::new(survey::ZendeskSurvey {
            connector: self.connector.clone(),
            cfg: Arc::clone(&self.cfg),
            api,
            fields: fields.clone(),
        }))
    }
}
