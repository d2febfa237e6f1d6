//! Past escalations, for `backfill`: the escalated tickets of a period (Export Search Results,
//! cursor pagination) and, from each ticket's audits, when it became an escalation.
//!
//! What makes a ticket an escalation is the connector's escalation rule: the conditions of
//! `[helpdesk.install.trigger]` when given, else the `tags:` terms of the search terms
//! (`--query` or `[sweep] query`). The audits are replayed oldest first (the `Create` and
//! `Change` events of `tags` and `group_id`, as Zendesk's audit events reference describes
//! them); the escalation time is the first audit after which the rule holds. A rule with other
//! conditions (a custom field, the status, ...) is not replayed: the time is then unknown and
//! the ticket's creation stands in for it.

use crate::helpdesk::mapping::time_at;
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::api::ZendeskApi;
use super::config::{Condition, Conditions, conditions_from_sweep_query};
use crate::helpdesk::records::{Period, patiently};
use crate::helpdesk::{HelpdeskError, TicketRef};

/// One condition the audits can be replayed against.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// At least one of these tags is on the ticket (`current_tags` `includes`).
    TagsInclude(Vec<String>),
    /// None of these tags is on the ticket (`current_tags` `not_includes`).
    TagsExclude(Vec<String>),
    GroupIs(String),
    GroupIsNot(String),
}

/// The ticket's state as the audits so far leave it.
#[derive(Debug, Default)]
struct State {
    tags: BTreeSet<String>,
    group: Option<String>,
}

impl Test {
    fn of(c: &Condition) -> Option<Test> {
        let words = || -> Vec<String> {
            value_text(&c.value)
                .split_whitespace()
                .map(str::to_lowercase)
                .collect()
        };
        match (c.field.as_str(), c.operator.as_str()) {
            ("current_tags", "includes") => Some(Test::TagsInclude(words())),
            ("current_tags", "not_includes") => Some(Test::TagsExclude(words())),
            ("group_id", "is") => Some(Test::GroupIs(value_text(&c.value))),
            ("group_id", "is_not") => Some(Test::GroupIsNot(value_text(&c.value))),
            _ => None,
        }
    }

    fn holds(&self, s: &State) -> bool {
        match self {
            Test::TagsInclude(t) => t.iter().any(|t| s.tags.contains(t)),
            Test::TagsExclude(t) => !t.iter().any(|t| s.tags.contains(t)),
            Test::GroupIs(g) => s.group.as_deref() == Some(g.as_str()),
            Test::GroupIsNot(g) => s.group.as_deref() != Some(g.as_str()),
        }
    }

    /// The search terms that find tickets for which the test holds now.
    fn terms(&self) -> String {
        match self {
            Test::TagsInclude(t) => t.iter().map(|t| format!("tags:{t}")).collect::<Vec<_>>(),
            Test::TagsExclude(t) => t.iter().map(|t| format!("-tags:{t}")).collect(),
            Test::GroupIs(g) => vec![format!("group:{g}")],
            Test::GroupIsNot(g) => vec![format!("-group:{g}")],
        }
        .join(" ")
    }
}

/// The connector's escalation rule, as far as the audits can replay it.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The search terms that find the escalated tickets (without `type:ticket`).
    pub terms: String,
    all: Vec<Test>,
    any: Vec<Test>,
    /// Every condition is one the audits show (tags, group).
    replayable: bool,
}

impl Rule {
    /// The rule from the trigger's conditions, else from the search terms' `tags:` terms.
    pub fn new(trigger: Option<&Conditions>, query: Option<&str>) -> Result<Rule, HelpdeskError> {
        let query = query
            .map(|q| {
                q.split_whitespace()
                    .filter(|t| !t.eq_ignore_ascii_case("type:ticket"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|q| !q.is_empty());
        let derived = query.as_deref().and_then(conditions_from_sweep_query);
        let Some(conditions) = trigger.or(derived.as_ref()) else {
            return match query {
                // Search terms that are not only tags: found by them, times unknown.
                Some(terms) => Ok(Rule {
                    terms,
                    all: Vec::new(),
                    any: Vec::new(),
                    replayable: false,
                }),
                None => Err(HelpdeskError::Unusable(
                    "say what marks an escalation: [helpdesk.install.trigger] (e.g. all = [{ field = \
                     \"current_tags\", operator = \"includes\", value = \"partner_escalated\" }]), \
                     a [sweep] query, or --query with the Zendesk search terms"
                        .into(),
                )),
            };
        };
        let all: Vec<Option<Test>> = conditions.all.iter().map(Test::of).collect();
        let any: Vec<Option<Test>> = conditions.any.iter().map(Test::of).collect();
        let replayable = all.iter().chain(&any).all(Option::is_some);
        let all: Vec<Test> = all.into_iter().flatten().collect();
        let any: Vec<Test> = any.into_iter().flatten().collect();
        let terms = query.unwrap_or_else(|| {
            all.iter()
                .map(Test::terms)
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        });
        if terms.is_empty() {
            return Err(HelpdeskError::Unusable(
                "the escalation trigger names no tag or group to search for: give --query with \
                 the Zendesk search terms that find escalated tickets"
                    .into(),
            ));
        }
        Ok(Rule {
            terms,
            all,
            any,
            replayable,
        })
    }

    fn holds(&self, s: &State) -> bool {
        self.all.iter().all(|t| t.holds(s))
            && (self.any.is_empty() || self.any.iter().any(|t| t.holds(s)))
    }

    /// The time of the first audit after which the rule holds; `None` when the rule cannot be
    /// replayed or the audits never satisfy it. `audits` come oldest first.
    fn first_holding<'a>(&self, audits: impl Iterator<Item = &'a Value>) -> Option<DateTime<Utc>> {
        if !self.replayable {
            return None;
        }
        let mut state = State::default();
        for audit in audits {
            for event in audit["events"].as_array().into_iter().flatten() {
                if !matches!(event["type"].as_str(), Some("Create" | "Change")) {
                    continue;
                }
                match event["field_name"].as_str() {
                    Some("tags") => {
                        state.tags = match &event["value"] {
                            Value::Array(tags) => tags
                                .iter()
                                .filter_map(Value::as_str)
                                .map(str::to_lowercase)
                                .collect(),
                            other => value_text(other)
                                .split_whitespace()
                                .map(str::to_lowercase)
                                .collect(),
                        }
                    }
                    Some("group_id") => {
                        state.group = Some(value_text(&event["value"])).filter(|g| !g.is_empty())
                    }
                    _ => {}
                }
            }
            if self.holds(&state) {
                return time_at(audit, "created_at");
            }
        }
        None
    }
}

/// A JSON value as text: strings as they are, numbers written out, null empty.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Hands every ticket created in `period` that `rule`'s terms find to `sink`, oldest first;
/// each with its creation as the escalation time, marked unknown.
pub async fn escalations(
    api: &ZendeskApi,
    rule: &Rule,
    period: &Period,
    sink: &mut (dyn FnMut(TicketRef) + Send),
) -> Result<(), HelpdeskError> {
    let (from, to) = period.rfc3339();
    let query = format!("{} created>={from} created<{to}", rule.terms);
    let mut after: Option<String> = None;
    loop {
        let page = patiently(|| api.export_tickets(&query, None, after.as_deref())).await?;
        let Some(tickets) = page["results"].as_array() else {
            return Err(HelpdeskError::Unusable(
                "search_export: the answer has no `results` array".into(),
            ));
        };
        for t in tickets {
            match (t["id"].as_u64(), time_at(t, "created_at")) {
                (Some(id), Some(created)) => sink(TicketRef {
                    id: id.to_string(),
                    escalated_at: created,
                    escalated_at_unknown: true,
                    snapshot: None,
                }),
                _ => tracing::warn!("Ticket skipped: the export names no id or creation time"),
            }
        }
        let more = page["meta"]["has_more"].as_bool().unwrap_or(false);
        match page["meta"]["after_cursor"].as_str() {
            Some(cursor) if more => after = Some(cursor.to_string()),
            _ => return Ok(()),
        }
    }
}

/// When ticket `id` became an escalation, from its audits; `None` when they do not say.
pub async fn escalation_time(
    api: &ZendeskApi,
    rule: &Rule,
    id: &str,
) -> Result<Option<DateTime<Utc>>, HelpdeskError> {
    if !rule.replayable {
        return Ok(None);
    }
    let mut audits = Vec::new();
    for page in 1.. {
        let answer = patiently(|| api.audits_page(id, page)).await?;
        audits.extend(answer["audits"].as_array().into_iter().flatten().cloned());
        if answer["next_page"].is_null() {
            break;
        }
    }
    Ok(rule.first_holding(audits.iter()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn audit(at: &str, events: Value) -> Value {
        json!({"created_at": at, "events": events})
    }

    #[test]
    fn the_escalation_is_the_audit_that_adds_the_tag() {
        let rule = Rule::new(None, Some("type:ticket tags:partner_escalation")).unwrap();
        assert_eq!(rule.terms, "tags:partner_escalation");
        let audits = [
            audit(
                "2026-03-01T08:00:00Z",
                json!([{"type": "Create", "field_name": "tags", "value": ["billing"]}]),
            ),
            audit(
                "2026-03-02T09:30:00Z",
                json!([{"type": "Change", "field_name": "tags",
                        "value": ["billing", "partner_escalation"], "previous_value": ["billing"]}]),
            ),
        ];
        assert_eq!(
            rule.first_holding(audits.iter()),
            Some("2026-03-02T09:30:00Z".parse().unwrap())
        );
        assert_eq!(rule.first_holding(audits[..1].iter()), None);
    }

    #[test]
    fn a_trigger_on_the_group_is_replayed_and_other_fields_are_not() {
        let trigger = Conditions {
            all: vec![Condition {
                field: "group_id".into(),
                operator: "is".into(),
                value: json!(4400),
            }],
            any: Vec::new(),
        };
        let rule = Rule::new(Some(&trigger), None).unwrap();
        assert_eq!(rule.terms, "group:4400");
        let audits = [
            audit(
                "2026-03-01T08:00:00Z",
                json!([{"type": "Create", "field_name": "group_id", "value": "100"}]),
            ),
            audit(
                "2026-03-03T10:00:00Z",
                json!([{"type": "Change", "field_name": "group_id", "value": "4400", "previous_value": "100"}]),
            ),
        ];
        assert_eq!(
            rule.first_holding(audits.iter()),
            Some("2026-03-03T10:00:00Z".parse().unwrap())
        );
        let custom = Conditions {
            all: vec![Condition {
                field: "custom_fields_360001".into(),
                operator: "is".into(),
                value: json!("vendor"),
            }],
            any: Vec::new(),
        };
        let rule = Rule::new(Some(&custom), Some("tags:partner_escalation")).unwrap();
        assert_eq!(rule.first_holding(audits.iter()), None);
        assert!(Rule::new(None, None).is_err());
    }
}
