//! A Case as the REST API returns it: the fields read, the Case read (with its Account's name
//! when the partner is the Account) and mapped to the normalised escalation, and a note cut to
//! fit a CaseComment. What the tickets role, the record read-back and the survey desk share.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::api::{SalesforceApi, parse_datetime};
use super::config::{PartnerSource, ValidSalesforce, VerdictFields};
use crate::escalation::{Escalation, Requester, locale_of};
use crate::helpdesk::HelpdeskError;
use crate::helpdesk::mapping::partner_or_unknown;
use crate::helpdesk::records::Prechecked;

/// A CaseComment holds at most 4,000 bytes.
pub const COMMENT_MAX_BYTES: usize = 4000;
pub const TRUNCATED: &str = "\n[… truncated by escalation-gate to fit 4,000 bytes]";

/// Standard Case fields the mapping reads.
const CASE_FIELDS: &[&str] = &[
    "Id",
    "CaseNumber",
    "Subject",
    "Description",
    "CreatedDate",
    "Origin",
    "Type",
    "ContactEmail",
    "SuppliedEmail",
    "AccountId",
];

/// The Case fields to read: the standard ones, every mapped one, the locale, the verdict, what
/// the check before escalating said (when the connector names its field) and `extra`.
pub fn case_fields(cfg: &ValidSalesforce, extra: &[String]) -> Vec<String> {
    let mut f: Vec<String> = CASE_FIELDS.iter().map(|s| s.to_string()).collect();
    f.extend(cfg.mapping.fields.keys().cloned());
    f.extend(cfg.locale_field.clone());
    f.push(cfg.verdict_fields.verdict.clone());
    f.extend(
        Some(&cfg.verdict_fields.precheck)
            .filter(|n| !n.is_empty())
            .cloned(),
    );
    f.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    f.retain(|x| seen.insert(x.clone()));
    f
}

/// Reads a Case with [`case_fields`], and its Account's name as `Account.Name` when the
/// partner is the Account; `None` when there is no such Case.
pub async fn read_case(
    api: &SalesforceApi,
    cfg: &ValidSalesforce,
    id: &str,
    extra: &[String],
) -> Result<Option<Value>, HelpdeskError> {
    let Some(mut case) = api.case(id, &case_fields(cfg, extra)).await? else {
        return Ok(None);
    };
    if cfg.partner == PartnerSource::Account
        && let Some(account) = case.get("AccountId").and_then(Value::as_str)
        && !account.is_empty()
        && account.bytes().all(|b| b.is_ascii_alphanumeric())
        && let Some(name) = api.account_name(account).await?
        && let Some(obj) = case.as_object_mut()
    {
        obj.insert("Account".into(), serde_json::json!({ "Name": name }));
    }
    Ok(Some(case))
}

/// What the check before escalating said, as the Case's precheck field (`good`, `bad` or
/// `review`, set by the Experience Cloud precheck component) records it.
pub fn prechecked(vf: &VerdictFields, case: &Value) -> Option<Prechecked> {
    Prechecked::parse(case.get(&vf.precheck)?.as_str()?)
}

/// The note cut to fit a CaseComment: at a character boundary, with a marker.
pub fn truncate_comment(note: &str) -> String {
    if note.len() <= COMMENT_MAX_BYTES {
        return note.to_string();
    }
    let mut end = COMMENT_MAX_BYTES - TRUNCATED.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &note[..end])
}

/// Maps a Case (as `GET /sobjects/Case/{id}` returns it, with `Account.Name` added when the
/// partner is the Account) to an escalation.
pub fn map_case(
    connector: &str,
    cfg: &ValidSalesforce,
    case: &Value,
    escalated_at: DateTime<Utc>,
) -> Result<Escalation, HelpdeskError> {
    let unusable = |m: &str| HelpdeskError::Unusable(m.to_string());
    let s = |k: &str| case.get(k).and_then(Value::as_str);
    let id = s("Id")
        .filter(|i| !i.is_empty())
        .ok_or_else(|| unusable("the Case has no Id"))?
        .to_string();
    let opened_at = s("CreatedDate")
        .and_then(parse_datetime)
        .ok_or_else(|| unusable("the Case has no valid CreatedDate"))?;
    let mapped = cfg.mapping.read(|api_name| case.get(api_name));
    let partner = partner_or_unknown(match &cfg.partner {
        PartnerSource::Account => case
            .get("Account")
            .and_then(|a| a.get("Name"))
            .and_then(Value::as_str)
            .map(str::to_string),
        PartnerSource::Field { field } => mapped.field(field),
    });
    let url = match &cfg.base {
        Some(base) => format!(
            "{}/lightning/r/Case/{id}/view",
            base.as_str().trim_end_matches('/')
        ),
        None => String::new(),
    };
    Ok(Escalation {
        connector: connector.to_string(),
        ticket_id: id,
        partner,
        subject: s("Subject").unwrap_or("").to_string(),
        description: s("Description").unwrap_or("").to_string(),
        requester: Requester {
            email: s("ContactEmail")
                .or_else(|| s("SuppliedEmail"))
                .map(str::to_string),
            locale: cfg
                .locale_field
                .as_deref()
                .and_then(s)
                .filter(|l| !l.is_empty())
                .map(locale_of),
        },
        product: mapped.product,
        version: mapped.version,
        channel: s("Origin").map(str::to_string),
        issue_type: s("Type").map(str::to_string),
        opened_at,
        escalated_at,
        escalated_at_unknown: false,
        tried_articles: mapped.tried_articles,
        handoff: mapped.handoff,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_cut_at_a_char_boundary() {
        let short = "escalation-gate verdict: GOOD escalation";
        assert_eq!(truncate_comment(short), short);
        let long = "é".repeat(3000); // 6,000 bytes
        let cut = truncate_comment(&long);
        assert!(cut.len() <= COMMENT_MAX_BYTES, "{}", cut.len());
        assert!(cut.ends_with(TRUNCATED));
        assert!(cut.len() > COMMENT_MAX_BYTES - 4 - TRUNCATED.len());
        let exact = "a".repeat(COMMENT_MAX_BYTES);
        assert_eq!(truncate_comment(&exact), exact);
    }
}
