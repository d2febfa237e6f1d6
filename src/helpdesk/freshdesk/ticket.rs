//! A Freshdesk ticket as the API returns it (with its requester and company): read, mapped to
//! the normalised escalation, and its tags merged for an update. What the tickets role and the
//! survey desk share.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::api::FreshdeskApi;
use super::config::{PartnerSource, ValidFreshdesk};
use crate::escalation::{Escalation, Requester};
use crate::helpdesk::HelpdeskError;
use crate::helpdesk::mapping::{partner_or_unknown, time_at};
use crate::helpdesk::records::Prechecked;
use crate::kb::html_to_text;

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

/// What the check before escalating said, as `ticket` records it: the sidebar app's value in
/// `[helpdesk] precheck_field`, or tags.
pub fn prechecked(cfg: &ValidFreshdesk, ticket: &Value) -> Option<Prechecked> {
    let field = cfg
        .precheck_field
        .as_ref()
        .and_then(|name| ticket.get("custom_fields")?.get(name));
    cfg.tags.prechecked_on(ticket, field)
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
    use serde_json::json;

    use super::*;
    use crate::helpdesk::freshdesk::config::FreshdeskConfig;

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
        let file: FreshdeskConfig = toml::from_str(&text).unwrap();
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

    #[test]
    fn the_precheck_field_records_the_check_over_the_tags() {
        use crate::assess::Outcome;
        use crate::helpdesk::records::Prechecked;
        let cfg = valid(r#"precheck_field = "cf_check""#);
        let t = |check: Value, tags: &[&str]| json!({"custom_fields": {"cf_check": check}, "tags": tags});
        let said = |said, article_shown| {
            Some(Prechecked {
                said,
                article_shown,
            })
        };
        assert_eq!(
            prechecked(&cfg, &t(json!("bad+article"), &[])),
            said(Outcome::Bad, true)
        );
        assert_eq!(
            prechecked(&cfg, &t(json!(" Review "), &["escalation_precheck_bad"])),
            said(Outcome::Review, false)
        );
        assert_eq!(
            prechecked(
                &cfg,
                &t(
                    Value::Null,
                    &["escalation_precheck_good", "escalation_precheck_article"]
                )
            ),
            said(Outcome::Good, true)
        );
        assert_eq!(prechecked(&cfg, &t(json!("maybe"), &[])), None);
        assert_eq!(prechecked(&valid(""), &t(json!("bad"), &[])), None);
        let file: FreshdeskConfig = toml::from_str(
            "base_url = \"https://acme.freshdesk.com\"\napi_key = \"key\"\n\
             webhook_secrets = [\"fd-webhook-secret-3c9a71e05b2d48f6\"]\n\
             precheck_field = \"check\"\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        assert!(file.validate(&mut Vec::new(), &mut problems).is_none());
        assert_eq!(problems[0].key, "helpdesk.precheck_field");
    }
}
