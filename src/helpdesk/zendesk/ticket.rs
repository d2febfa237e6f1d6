//! A Zendesk ticket as the Support API returns it (with its requester and organization
//! sideloaded), read and mapped to the normalised escalation: what the tickets role, the record
//! read-back and the survey desk all start from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::api::ZendeskApi;
use super::config::{PartnerSource, ValidZendesk};
use crate::escalation::{Escalation, Requester};
use crate::helpdesk::HelpdeskError;
use crate::helpdesk::mapping::{partner_or_unknown, time_at};
use crate::helpdesk::records::Prechecked;

/// The record in the snapshot's sideloaded `list` (`users`, `organizations`) whose id the
/// ticket's `key` (`requester_id`, ...) names.
pub fn sideloaded<'a>(snapshot: &'a Value, list: &str, key: &str) -> Option<&'a Value> {
    let want = snapshot["ticket"].get(key)?.as_u64()?;
    snapshot
        .get(list)?
        .as_array()?
        .iter()
        .find(|x| x.get("id").and_then(Value::as_u64) == Some(want))
}

/// The ticket with its requester and organization; a ticket that does not exist is unusable.
pub async fn read_ticket(api: &ZendeskApi, id: &str) -> Result<Value, HelpdeskError> {
    api.ticket(id)
        .await?
        .ok_or_else(|| HelpdeskError::Unusable(format!("ticket {id} does not exist")))
}

/// A ticket's custom field values by field id.
fn custom_fields(ticket: &Value) -> BTreeMap<u64, &Value> {
    ticket
        .get("custom_fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("id")?.as_u64()?, f.get("value")?)))
        .collect()
}

/// What the check before escalating said, as `ticket` records it: the Guide snippet's value in
/// `[helpdesk] precheck_field`, or the sidebar app's tags.
pub fn prechecked(cfg: &ValidZendesk, ticket: &Value) -> Option<Prechecked> {
    let field = cfg
        .precheck_field
        .and_then(|id| custom_fields(ticket).get(&id).copied());
    cfg.tags.prechecked_on(ticket, field)
}

/// Maps `{"ticket": {...}, "users": [...], "organizations": [...]}` (the ticket API's answer
/// with sideloads) to an escalation.
pub fn map_ticket(
    connector: &str,
    cfg: &ValidZendesk,
    snapshot: &Value,
    escalated_at: DateTime<Utc>,
) -> Result<Escalation, HelpdeskError> {
    let unusable = |m: &str| HelpdeskError::Unusable(m.to_string());
    let t = snapshot
        .get("ticket")
        .filter(|t| t.is_object())
        .ok_or_else(|| unusable("no `ticket` object"))?;
    let id = match t.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err(unusable("the ticket has no id")),
    };
    let text = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let opened_at =
        time_at(t, "created_at").ok_or_else(|| unusable("the ticket has no valid `created_at`"))?;
    let by_id = custom_fields(t);
    let mapped = cfg.mapping.read(|id| by_id.get(id).copied());
    let partner = partner_or_unknown(match &cfg.partner {
        PartnerSource::Organization => sideloaded(snapshot, "organizations", "organization_id")
            .and_then(|o| o.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string),
        PartnerSource::Field { field } => mapped.field(field),
    });
    let requester = sideloaded(snapshot, "users", "requester_id");
    let url = match &cfg.base_url {
        Some(base) => format!("{}/agent/tickets/{id}", base.as_str().trim_end_matches('/')),
        None => text("url"),
    };
    Ok(Escalation {
        connector: connector.to_string(),
        ticket_id: id,
        partner,
        subject: text("subject"),
        description: text("description"),
        requester: Requester {
            email: requester
                .and_then(|u| u.get("email"))
                .and_then(Value::as_str)
                .map(str::to_string),
            locale: requester
                .and_then(|u| u.get("locale"))
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase),
        },
        product: mapped.product,
        version: mapped.version,
        channel: t
            .get("via")
            .and_then(|v| v.get("channel"))
            .and_then(Value::as_str)
            .map(str::to_string),
        issue_type: t.get("type").and_then(Value::as_str).map(str::to_string),
        opened_at,
        escalated_at,
        escalated_at_unknown: false,
        tried_articles: mapped.tried_articles,
        handoff: mapped.handoff,
        url,
    })
}
