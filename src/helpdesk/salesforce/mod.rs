//! Salesforce Service Cloud: outbound messages (SOAP) or signed JSON (Flow HTTP Callout, Apex)
//! in, the Case through the REST API, the verdict back into Case fields and one internal
//! CaseComment, and Salesforce Knowledge as a knowledge base (searched, or listed for the
//! mirror in `mirror.rs`).
//!
//! Write order and redelivery: the comment is written first and the verdict field last. The
//! field is what `load` reads to skip a judged Case, so it must only appear once the evidence is
//! there. If the field write fails after the comment was added, Salesforce delivers again; the
//! field is still empty, the Case is judged again, and `write_back` finds the earlier comment by
//! its heading (`escalation-gate verdict`, read with SOQL) and writes only the field, with the
//! outcome that comment states. Salesforce has no conditional insert for comments, so two
//! deliveries of one Case racing each other (a redelivery and a sweep, or the sweeps of instances
//! started together) could both add one: after adding its comment a delivery reads the comments
//! again, and when another verdict comment came first it deletes its own and writes the fields
//! that first comment states.

pub mod api;
pub mod case;
pub mod config;
pub mod history;
pub mod install;
pub mod mirror;
pub mod oauth;
pub mod records;
pub mod sandbox;
pub mod survey;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use self::api::{Knowledge, SalesforceApi, parse_datetime};
use self::case::{map_case, prechecked, read_case, truncate_comment};
use self::config::{ValidSalesforce, WriteBackMode};
use self::oauth::Tokens;
use super::records::{Period, RecordSink};
use super::{
    Helpdesk, HelpdeskError, Loaded, Record, SWEEP_PAGE, SearchTerms, TicketRef, Tickets,
    ValidHelpdeskFile, Written,
};
use crate::assess::note::HEADING;
use crate::assess::{Outcome, Verdict};
use crate::escalation::Escalation;
use crate::http::{Upstream, UpstreamError};
use crate::kb::KnowledgeBase;
use crate::metrics as m;
use crate::survey::SurveyDesk;
use crate::survey::config::SurveyFields;

/// A Text field holds at most 255 characters.
const REASON_MAX_CHARS: usize = 255;

/// Escalated Cases are found by `IsEscalated`, never by search terms.
const SEARCH_TERMS: SearchTerms = SearchTerms::Refused {
    how: "Salesforce Cases are found by `IsEscalated`",
};

impl super::HelpdeskFile for config::SalesforceConfig {
    type Valid = ValidSalesforce;

    fn validate(
        self,
        _kb: &crate::kb::KbBackend,
        known_fields: &mut Vec<String>,
        problems: &mut Vec<crate::checks::Problem>,
    ) -> Option<ValidSalesforce> {
        config::SalesforceConfig::validate(self, known_fields, problems)
    }
}

impl ValidHelpdeskFile for ValidSalesforce {
    fn with_survey(&mut self, fields: &SurveyFields, problems: &mut Vec<crate::checks::Problem>) {
        ValidSalesforce::with_survey(self, fields, problems)
    }

    fn has_api(&self) -> bool {
        self.base.is_some() && self.auth.is_some()
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
        let salesforce = Arc::new(Salesforce::new(connector, self)?);
        let knowledge = salesforce.knowledge();
        Ok(Helpdesk {
            kind: "salesforce",
            search_terms: SEARCH_TERMS,
            kb_source: knowledge.clone().map(|k| {
                Arc::new(mirror::KnowledgeSource(k)) as Arc<dyn crate::kb::mirror::KbSource>
            }),
            knowledge_base: knowledge.map(|k| k as Arc<dyn KnowledgeBase>),
            survey_desk: survey.and_then(|f| salesforce.survey_desk(f)),
            inbound: salesforce.clone(),
            record: Some(salesforce.clone()),
            tickets: salesforce,
        })
    }
}

pub struct Salesforce {
    connector: String,
    cfg: Arc<ValidSalesforce>,
    api: Option<Arc<SalesforceApi>>,
    /// Verdict values the org's verdict picklist lacks, as last read (describe) or refused.
    missing: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Salesforce {
    pub fn new(connector: &str, mut cfg: ValidSalesforce) -> Result<Salesforce, reqwest::Error> {
        let api = match (cfg.base.clone(), cfg.auth.take()) {
            (Some(base), Some(auth)) => {
                let upstream =
                    Upstream::new(api::SERVICE, cfg.retry)?.with_retry_when(api::retry_when);
                let tokens = Tokens::new(upstream.clone(), &base, auth, cfg.token_max_age);
                Some(Arc::new(SalesforceApi::new(
                    upstream,
                    base,
                    cfg.api_version.clone(),
                    tokens,
                )))
            }
            _ => None,
        };
        Ok(Salesforce {
            connector: connector.to_string(),
            cfg: Arc::new(cfg),
            api,
            missing: Default::default(),
        })
    }

    fn missing(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.missing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What an admin must do while the verdict picklist lacks `values`.
    fn picklist_fix(&self, values: &std::collections::BTreeSet<String>) -> String {
        let vf = &self.cfg.verdict_fields;
        let listed: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        format!(
            "Case.{field} is a restricted picklist without {}: Salesforce refuses those \
             verdicts (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST). Deploy the field again from \
             `escalation-gate install salesforce --connector {c} --out DIR` \
             (DIR/objects/Case/fields/{field}.field-meta.xml, with the values `{}`, `{}` and \
             `{}`): `sf project deploy start --manifest DIR/package.xml`",
            listed.join(", "),
            vf.good,
            vf.bad,
            vf.review,
            field = vf.verdict,
            c = self.connector,
        )
    }

    fn api(&self) -> Result<&SalesforceApi, HelpdeskError> {
        self.api.as_deref().ok_or_else(|| {
            HelpdeskError::Unusable("the connector has no Salesforce API configured".into())
        })
    }

    /// After adding comment `ours`: Salesforce has no conditional insert, so another delivery
    /// of the Case may have added its own verdict comment meanwhile. The first one stands; ours,
    /// if it came later, is deleted (a failed delete leaves both, and is logged). Returns the
    /// first comment's outcome and reasons when it is not ours, for the fields to follow.
    async fn first_verdict_comment(
        &self,
        api: &SalesforceApi,
        case: &str,
        ours: &str,
    ) -> Result<Option<(Outcome, String)>, HelpdeskError> {
        let comments = api.comments(case).await?;
        let Some((first, body)) = comments
            .iter()
            .find(|(_, body)| earlier_verdict(body).is_some())
        else {
            return Ok(None);
        };
        if first == ours {
            return Ok(None);
        }
        tracing::info!(ticket = %case, "Another delivery wrote its verdict comment first; deleting ours");
        if let Err(e) = api.delete_comment(ours).await {
            tracing::warn!(ticket = %case, error = %e, "Could not delete the second verdict comment");
        }
        Ok(earlier_verdict(body))
    }

    fn judged(&self, case: &Value) -> Option<Outcome> {
        let v = case.get(&self.cfg.verdict_fields.verdict)?.as_str()?;
        if v == self.cfg.verdict_fields.bad {
            Some(Outcome::Bad)
        } else if v == self.cfg.verdict_fields.good {
            Some(Outcome::Good)
        } else if v == self.cfg.verdict_fields.review {
            Some(Outcome::Review)
        } else {
            None
        }
    }

    /// The reason text field's value: reasons, then flags.
    pub fn reason_text(v: &Verdict) -> String {
        let mut parts: Vec<&str> = v.reasons.iter().map(|r| r.name()).collect();
        parts.extend(v.flags.names());
        parts.join(", ").chars().take(REASON_MAX_CHARS).collect()
    }
}

/// What an earlier verdict comment says: its outcome and its reasons (`a, b`), from its first
/// line `escalation-gate verdict: BAD escalation (a, b)`.
pub fn earlier_verdict(comment: &str) -> Option<(Outcome, String)> {
    let first = comment.lines().next()?;
    let rest = first.strip_prefix(HEADING)?.strip_prefix(": ")?;
    if rest.starts_with("GOOD") {
        Some((Outcome::Good, String::new()))
    } else if rest.starts_with("REVIEW") {
        Some((Outcome::Review, String::new()))
    } else if let Some(r) = rest.strip_prefix("BAD escalation") {
        let reasons = r
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .to_string();
        Some((Outcome::Bad, reasons))
    } else {
        None
    }
}

#[async_trait]
impl Tickets for Salesforce {
    async fn load(&self, t: &TicketRef) -> Result<Loaded, HelpdeskError> {
        let status = &self.cfg.survey_fields.status;
        let extra = if self.cfg.survey {
            std::slice::from_ref(status)
        } else {
            &[]
        };
        let case = read_case(self.api()?, &self.cfg, &t.id, extra)
            .await?
            .ok_or_else(|| HelpdeskError::Unusable(format!("Case {} does not exist", t.id)))?;
        let escalation = map_case(&self.connector, &self.cfg, &case, t.escalated_at)?;
        Ok(Loaded {
            escalation,
            judged: self.judged(&case),
            version: None,
            prechecked: prechecked(&self.cfg.verdict_fields, &case),
            survey_recorded: case
                .get(status)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty()),
        })
    }

    /// Without `escalated_at`, the Case's `LastModifiedDate`: the escalation is its last change.
    fn escalation_from_snapshot(
        &self,
        snapshot: &Value,
        escalated_at: Option<DateTime<Utc>>,
    ) -> Result<Escalation, HelpdeskError> {
        let escalated_at = escalated_at
            .or_else(|| {
                snapshot
                    .get("LastModifiedDate")
                    .and_then(Value::as_str)
                    .and_then(parse_datetime)
            })
            .ok_or_else(|| {
                HelpdeskError::Unusable(
                    "the Case has no `LastModifiedDate` to take as its escalation time".into(),
                )
            })?;
        map_case(&self.connector, &self.cfg, snapshot, escalated_at)
    }

    async fn write_back(
        &self,
        loaded: &Loaded,
        verdict: &Verdict,
        note: &str,
        survey_pending: Option<&str>,
    ) -> Result<Written, HelpdeskError> {
        let id = &loaded.escalation.ticket_id;
        let vf = &self.cfg.verdict_fields;
        let comment = truncate_comment(note);
        if self.cfg.write_back == WriteBackMode::Log {
            tracing::info!(
                connector = %self.connector,
                ticket = %id,
                verdict = verdict.outcome.as_str(),
                reasons = %Self::reason_text(verdict),
                survey_pending = ?survey_pending,
                comment_bytes = comment.len(),
                "Would write the verdict (write_back = \"log\")"
            );
            return Ok(Written::Logged);
        }
        let api = self.api()?;
        let earlier = api
            .comments(id)
            .await?
            .iter()
            .find_map(|(_, body)| earlier_verdict(body));
        let (outcome, reasons) = match earlier {
            Some((outcome, reasons)) => {
                tracing::info!(ticket = %id, "A verdict comment is already on the Case; writing only the fields");
                // The fields follow the comment, the evidence on record.
                if outcome == verdict.outcome {
                    (outcome, Self::reason_text(verdict))
                } else {
                    (outcome, reasons)
                }
            }
            None => {
                let ours = api.add_comment(id, &comment).await?;
                match self.first_verdict_comment(api, id, &ours).await? {
                    Some(first) => first,
                    None => (verdict.outcome, Self::reason_text(verdict)),
                }
            }
        };
        let mut fields = Map::new();
        fields.insert(
            vf.verdict.clone(),
            Value::String(match outcome {
                Outcome::Good => vf.good.clone(),
                Outcome::Bad => vf.bad.clone(),
                Outcome::Review => vf.review.clone(),
            }),
        );
        if !vf.reason.is_empty() {
            fields.insert(vf.reason.clone(), Value::String(reasons));
        }
        if !vf.detail.is_empty() {
            // The details belong to this verdict; under another comment's outcome, none.
            let detail = if outcome == verdict.outcome {
                records::detail_text(verdict)
            } else {
                String::new()
            };
            fields.insert(vf.detail.clone(), Value::String(detail));
        }
        if let Some(mark) = survey_pending.filter(|_| !loaded.survey_recorded) {
            // Marked at escalation: never over a survey already recorded.
            fields.insert(
                self.cfg.survey_fields.status.clone(),
                Value::String(mark.into()),
            );
        }
        let value = match outcome {
            Outcome::Good => &vf.good,
            Outcome::Bad => &vf.bad,
            Outcome::Review => &vf.review,
        };
        match api.update_case(id, &fields).await {
            Ok(()) => {
                self.missing().remove(value);
                Ok(Written::Now)
            }
            Err(UpstreamError::Rejected { detail, .. })
                if detail.contains(&format!(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST [{}]",
                    vf.verdict
                )) =>
            {
                let fix = {
                    let mut missing = self.missing();
                    missing.insert(value.clone());
                    self.picklist_fix(&missing)
                };
                m::admin_fix_needed(&self.connector, &vf.verdict);
                tracing::error!(ticket = %id, field = %vf.verdict, value = %value, fix = %fix, "Verdict refused: the picklist lacks the value");
                Err(HelpdeskError::NeedsAdmin { fix, swept: false })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn preflight(&self) -> Result<Vec<String>, HelpdeskError> {
        let Some(api) = self.api.as_deref() else {
            return Ok(Vec::new());
        };
        if self.cfg.write_back == WriteBackMode::Log {
            return Ok(Vec::new());
        }
        let vf = &self.cfg.verdict_fields;
        if let Some(values) = api.restricted_picklist(&vf.verdict).await? {
            let lacking: std::collections::BTreeSet<String> = [&vf.good, &vf.bad, &vf.review]
                .into_iter()
                .filter(|v| !values.contains(v))
                .cloned()
                .collect();
            *self.missing() = lacking;
        }
        let fixes = self.admin_fixes();
        for fix in &fixes {
            tracing::error!(field = %vf.verdict, fix = %fix, "The verdict picklist lacks values");
        }
        Ok(fixes)
    }

    fn admin_fixes(&self) -> Vec<String> {
        let missing = self.missing();
        if missing.is_empty() {
            Vec::new()
        } else {
            vec![self.picklist_fix(&missing)]
        }
    }

    async fn unjudged(
        &self,
        _query: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<TicketRef>, HelpdeskError> {
        let soql = format!(
            "SELECT Id, CreatedDate FROM Case WHERE IsEscalated = true AND {} = null \
             AND LastModifiedDate > {} ORDER BY LastModifiedDate LIMIT {SWEEP_PAGE}",
            self.cfg.verdict_fields.verdict,
            since.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let found = self.api()?.query("sweep", &soql).await?;
        Ok(found
            .iter()
            .filter_map(|r| {
                Some(TicketRef {
                    id: r.get("Id")?.as_str()?.to_string(),
                    escalated_at: parse_datetime(r.get("CreatedDate")?.as_str()?)?,
                    escalated_at_unknown: true,
                    snapshot: None,
                })
            })
            .collect())
    }
}

#[async_trait]
impl Record for Salesforce {
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
        _query: Option<&str>,
        sink: &mut (dyn FnMut(TicketRef) + Send),
    ) -> Result<(), HelpdeskError> {
        history::escalations(self.api()?, period, sink).await
    }
    async fn escalation_time(
        &self,
        id: &str,
        _query: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, HelpdeskError> {
        history::escalation_time(self.api()?, id).await
    }
}

impl Salesforce {
    /// Salesforce Knowledge, when the API is configured.
    fn knowledge(&self) -> Option<Arc<Knowledge>> {
        let api = self.api.clone()?;
        let base = api.base().as_str().trim_end_matches('/').to_string();
        Some(Arc::new(Knowledge {
            api,
            channel: self.cfg.knowledge.channel.clone(),
            url_template: self
                .cfg
                .knowledge
                .article_url
                .clone()
                .unwrap_or_else(|| format!("{base}/{{id}}")),
            default_locale: crate::assess::kb::DEFAULT_LOCALE.into(),
        }))
    }

    /// The survey's reads and writes, when the API is configured.
    fn survey_desk(&self, fields: &SurveyFields) -> Option<Arc<dyn SurveyDesk>> {
        let api = self.api.clone()?;
        Some(Arc::new(survey::SalesforceSurvey {
            connector: self.connector.clone(),
            cfg: Arc::clone(&self.cfg),
            api,
            fields: fields.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_verdicts_are_read_from_the_heading() {
        assert_eq!(
            earlier_verdict(
                "escalation-gate verdict: BAD escalation (missing_handoff, kb_resolvable)\n\nmore"
            ),
            Some((Outcome::Bad, "missing_handoff, kb_resolvable".into()))
        );
        assert_eq!(
            earlier_verdict("escalation-gate verdict: GOOD escalation\n"),
            Some((Outcome::Good, String::new()))
        );
        assert_eq!(
            earlier_verdict("escalation-gate verdict: REVIEW (a person decides)\n"),
            Some((Outcome::Review, String::new()))
        );
        assert_eq!(earlier_verdict("Customer called back"), None);
    }
}
