//! Past escalations, for `backfill`: the escalated Cases of a period (SOQL, page by page with
//! `nextRecordsUrl`) and, from each Case's `CaseHistory`, when it became one.
//!
//! Salesforce documents no escalation time on the Case itself. `CaseHistory` records a change
//! of `IsEscalated` (its `Field` is the field's name) when field history tracking is on for
//! Escalated, and an owner change made by an escalation rule as `ownerEscalated`; the first such
//! row that escalates the Case gives the time. Without either (tracking off, or the history
//! kept no longer), the time is unknown and the Case's creation stands in for it.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::api::{SalesforceApi, next_records_url, parse_datetime, soql_quote};
use crate::helpdesk::records::{Period, patiently};
use crate::helpdesk::{HelpdeskError, TicketRef};

/// Hands every escalated Case created in `period` to `sink`, oldest first; each with its
/// creation as the escalation time, marked unknown.
pub async fn escalations(
    api: &SalesforceApi,
    period: &Period,
    sink: &mut (dyn FnMut(TicketRef) + Send),
) -> Result<(), HelpdeskError> {
    let (from, to) = period.rfc3339();
    let soql = format!(
        "SELECT Id, CreatedDate FROM Case WHERE IsEscalated = true AND CreatedDate >= {from} \
         AND CreatedDate < {to} ORDER BY CreatedDate, Id"
    );
    let mut page = patiently(|| api.query_page("query_escalations", &soql)).await?;
    loop {
        let Some(cases) = page["records"].as_array() else {
            return Err(HelpdeskError::Unusable(
                "query_escalations: the answer has no `records` array".into(),
            ));
        };
        for case in cases {
            let id = case["Id"].as_str();
            let created = case["CreatedDate"].as_str().and_then(parse_datetime);
            match (id, created) {
                (Some(id), Some(created)) => sink(TicketRef {
                    id: id.to_string(),
                    escalated_at: created,
                    escalated_at_unknown: true,
                    snapshot: None,
                }),
                _ => tracing::warn!("Case skipped: the query names no Id or CreatedDate"),
            }
        }
        let Some(next) = next_records_url(&page) else {
            return Ok(());
        };
        page = patiently(|| api.query_more("query_escalations", &next)).await?;
    }
}

/// When Case `id` was escalated, from its `CaseHistory`; `None` when the history does not say.
pub async fn escalation_time(
    api: &SalesforceApi,
    id: &str,
) -> Result<Option<DateTime<Utc>>, HelpdeskError> {
    let soql = format!(
        "SELECT Field, NewValue, CreatedDate FROM CaseHistory WHERE CaseId = {} AND Field IN \
         ('IsEscalated', 'ownerEscalated') ORDER BY CreatedDate",
        soql_quote(id)
    );
    let mut page = patiently(|| api.query_page("query_case_history", &soql)).await?;
    loop {
        let rows = page["records"].as_array().cloned().unwrap_or_default();
        if let Some(at) = rows.iter().find_map(escalated_at) {
            return Ok(Some(at));
        }
        let Some(next) = next_records_url(&page) else {
            return Ok(None);
        };
        page = patiently(|| api.query_more("query_case_history", &next)).await?;
    }
}

/// The time of a history row that escalates the Case.
fn escalated_at(row: &Value) -> Option<DateTime<Utc>> {
    let escalates = match row["Field"].as_str()? {
        "ownerEscalated" => true,
        "IsEscalated" => {
            matches!(&row["NewValue"], Value::Bool(true))
                || row["NewValue"].as_str() == Some("true")
        }
        _ => false,
    };
    escalates
        .then(|| row["CreatedDate"].as_str().and_then(parse_datetime))
        .flatten()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_row_that_escalates_gives_the_time() {
        let at = |f: &str, v: Value| {
            escalated_at(&json!({"Field": f, "NewValue": v,
                "CreatedDate": "2026-03-02T09:30:00.000+0000"}))
        };
        let time = Some("2026-03-02T09:30:00Z".parse().unwrap());
        assert_eq!(at("IsEscalated", json!(true)), time);
        assert_eq!(at("ownerEscalated", Value::Null), time);
        assert_eq!(at("IsEscalated", json!(false)), None);
        assert_eq!(at("Status", json!("Escalated")), None);
    }
}
