//! Reading the record back: every ticket of a period through Export Search Results (cursor
//! pagination, never the plain search and its 1,000-result cap), mapped to [`CaseRecord`]s from
//! its tags and fields.
//!
//! What a judged ticket carries (all tags start with `[helpdesk.tags] reason_prefix`, default
//! `escalation_`): the verdict tag (`good`, `bad`, or `{prefix}review`), one tag a reason
//! (`{prefix}missing_handoff`, `{prefix}kb_resolvable`) and a flag (`{prefix}late`,
//! `{prefix}kb_gap`), `{prefix}missing_{field}` for each hand-off field that failed and
//! `{prefix}kb_article_{id}` for the article that answers the case, `{prefix}kb_conf_{NN}` for the
//! judge's confidence in its best counted article (whole percent, floored); a person's decision is
//! `{prefix}reviewed_good` / `{prefix}reviewed_bad` (with at most one `{prefix}overturn_{reason}`).
//! The survey adds its own tags (`[survey.tags]`) and, with a ticket sink, its fields.

use std::collections::{BTreeMap, BTreeSet};

use crate::helpdesk::mapping::time_at;
use serde_json::{Value, json};

use super::api::ZendeskApi;
use super::config::{PartnerSource, ValidZendesk};
use super::ticket::{map_ticket, prechecked};
use crate::assess::{Outcome, ReasonKind};
use crate::helpdesk::HelpdeskError;
use crate::helpdesk::records::{CaseRecord, Period, RecordSink, patiently, survey_record};
use crate::helpdesk::tags::tag_safe;
use crate::survey::config::SurveyFields;

pub use crate::helpdesk::tags::{KB_ARTICLE, KB_CONF, MISSING};
/// After the prefix: a person's decisions.
pub const REVIEWED_GOOD: &str = "reviewed_good";
pub const REVIEWED_BAD: &str = "reviewed_bad";
pub const OVERTURN: &str = "overturn_";

/// Streams every ticket created in `period` into `sink`.
pub async fn read(
    connector: &str,
    cfg: &ValidZendesk,
    api: &ZendeskApi,
    period: &Period,
    survey: Option<&SurveyFields>,
    sink: &mut (dyn RecordSink + Send),
) -> Result<(), HelpdeskError> {
    let (from, to) = period.rfc3339();
    let query = format!("created>={from} created<{to}");
    let by_organization = cfg.partner == PartnerSource::Organization;
    let include = by_organization.then_some("organizations");
    let mut organizations = Organizations::default();
    let mut after: Option<String> = None;
    loop {
        let mut page = patiently(|| api.export_tickets(&query, include, after.as_deref())).await?;
        let Some(Value::Array(tickets)) = page.get_mut("results").map(Value::take) else {
            return Err(HelpdeskError::Unusable(
                "search_export: the answer has no `results` array".into(),
            ));
        };
        if by_organization {
            organizations.add_sideloaded(page.get_mut("organizations").map(Value::take));
            organizations.complete(api, &tickets).await?;
        }
        let mut snapshot = json!({
            "ticket": Value::Null,
            "organizations": organizations.of(&tickets),
        });
        for ticket in tickets {
            snapshot["ticket"] = ticket;
            match record(connector, cfg, &snapshot, survey) {
                Ok(r) => sink.record(r),
                Err(e) => tracing::warn!(error = %e, "Ticket skipped: it cannot be read back"),
            }
        }
        let more = page["meta"]["has_more"].as_bool().unwrap_or(false);
        match page["meta"]["after_cursor"].as_str() {
            Some(cursor) if more => after = Some(cursor.to_string()),
            _ => return Ok(()),
        }
    }
}

/// The tickets' organizations (their id and name: the partner), as the export pages sideload
/// them; those a page names without sideloading them (Zendesk does not document which
/// sideloads Export Search Results honours) are read with Show Many Organizations, once each.
/// Memory grows with the organizations, not with the tickets.
#[derive(Default)]
struct Organizations {
    by_id: BTreeMap<u64, Value>,
    /// Asked for and not found (deleted): not asked again.
    missing: BTreeSet<u64>,
    warned: bool,
}

impl Organizations {
    fn add_sideloaded(&mut self, sideload: Option<Value>) {
        if let Some(Value::Array(orgs)) = sideload {
            for org in orgs {
                if let Some(id) = org.get("id").and_then(Value::as_u64) {
                    self.by_id
                        .insert(id, json!({"id": id, "name": org.get("name")}));
                }
            }
        }
    }

    /// Reads the organizations `tickets` name that no page sideloaded.
    async fn complete(&mut self, api: &ZendeskApi, tickets: &[Value]) -> Result<(), HelpdeskError> {
        let wanted: BTreeSet<u64> = tickets
            .iter()
            .filter_map(|t| t.get("organization_id").and_then(Value::as_u64))
            .filter(|id| !self.by_id.contains_key(id) && !self.missing.contains(id))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        if !self.warned {
            tracing::warn!(
                organizations = wanted.len(),
                "Export Search Results did not sideload the tickets' organizations; reading them with Show Many Organizations"
            );
            self.warned = true;
        }
        let wanted: Vec<u64> = wanted.into_iter().collect();
        for ids in wanted.chunks(SHOW_MANY) {
            self.add_sideloaded(Some(Value::Array(
                patiently(|| api.organizations(ids)).await?,
            )));
        }
        self.missing
            .extend(wanted.into_iter().filter(|id| !self.by_id.contains_key(id)));
        Ok(())
    }

    /// The organizations `tickets` name, as a ticket snapshot's sideload.
    fn of(&self, tickets: &[Value]) -> Value {
        let ids: BTreeSet<u64> = tickets
            .iter()
            .filter_map(|t| t.get("organization_id").and_then(Value::as_u64))
            .collect();
        Value::Array(
            ids.iter()
                .filter_map(|id| self.by_id.get(id).cloned())
                .collect(),
        )
    }
}

/// Ids one Show Many Organizations call takes at most.
const SHOW_MANY: usize = 100;

/// One ticket (`{"ticket": {..}, "organizations": [..]}`) as a record.
pub fn record(
    connector: &str,
    cfg: &ValidZendesk,
    snapshot: &Value,
    survey: Option<&SurveyFields>,
) -> Result<CaseRecord, HelpdeskError> {
    let t = &snapshot["ticket"];
    let created = time_at(t, "created_at").unwrap_or_default();
    let esc = map_ticket(connector, cfg, snapshot, created)?;
    let tags: Vec<&str> = t
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let has = |tag: &str| tags.contains(&tag);
    let prefix = cfg.tags.reason_prefix.as_str();
    let ours = |name: &str| has(&format!("{prefix}{name}"));
    let verdict = cfg.tags.judged(tags.iter().copied());
    let reviewed = if ours(REVIEWED_BAD) {
        Some(Outcome::Bad)
    } else if ours(REVIEWED_GOOD) {
        Some(Outcome::Good)
    } else {
        None
    };
    let suffixes = |after: &str| -> Vec<String> {
        let start = format!("{prefix}{after}");
        tags.iter()
            .filter_map(|t| t.strip_prefix(start.as_str()))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let field_name = |suffix: String| {
        cfg.mapping
            .fields
            .values()
            .find(|n| tag_safe(n) == suffix)
            .cloned()
            .unwrap_or(suffix)
    };
    let missing_fields = suffixes(MISSING)
        .into_iter()
        .filter(|s| format!("{MISSING}{s}") != ReasonKind::MissingHandoff.as_str())
        .map(field_name)
        .collect();
    Ok(CaseRecord {
        ticket_id: esc.ticket_id.clone(),
        partner: esc.partner.clone(),
        product: esc.product.clone(),
        subject: esc.subject.clone(),
        opened_at: esc.opened_at,
        escalated: verdict.is_some() || reviewed.is_some(),
        verdict,
        reviewed,
        overturn: suffixes(OVERTURN).into_iter().next(),
        reasons: ReasonKind::ALL
            .into_iter()
            .filter(|r| ours(r.as_str()))
            .collect(),
        late: ours("late"),
        kb_gap: ours("kb_gap"),
        missing_fields,
        kb_articles: suffixes(KB_ARTICLE),
        kb_confidence: suffixes(KB_CONF)
            .iter()
            .find_map(|p| p.parse::<u8>().ok().filter(|p| *p <= 100))
            .map(|p| f64::from(p) / 100.0),
        prechecked: prechecked(cfg, t),
        solved: matches!(
            t.get("status").and_then(Value::as_str),
            Some("solved" | "closed")
        ),
        survey: survey
            .map(|f| survey_record(f, &tags, &esc.handoff))
            .unwrap_or_default(),
    })
}
