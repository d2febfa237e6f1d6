//! The field mapping every helpdesk's `[helpdesk]` table shares: which ticket fields are the
//! hand-off fields (and under which names), which of those hold the product, the version, the
//! articles the partner tried and the partner, how the mapping is validated, and how a ticket's
//! values become the normalised escalation's parts (ticket numbers and times included).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::checks::{Problem, map_field_name, require_mapped};
use crate::escalation::UNKNOWN_PARTNER;

/// A validated mapping; `K` is the helpdesk's key of a field (a Zendesk custom field id, a
/// Salesforce field API name).
#[derive(Debug, Clone)]
pub struct FieldMapping<K> {
    /// Helpdesk field → hand-off field name.
    pub fields: BTreeMap<K, String>,
    pub product_field: Option<String>,
    pub version_field: Option<String>,
    pub tried_articles_field: Option<String>,
}

/// The mapping's keys as a connector file writes them (under `helpdesk.`).
pub struct MappingFile<'a> {
    pub fields: &'a BTreeMap<String, String>,
    pub product_field: &'a Option<String>,
    pub version_field: &'a Option<String>,
    pub tried_articles_field: &'a Option<String>,
    /// The hand-off field that names the partner, when the partner comes from one.
    pub partner_field: Option<&'a str>,
}

impl<K: Ord> FieldMapping<K> {
    /// Checks the mapping: every key is one of the helpdesk's (`parse_key` says why not), every
    /// name is mapped once (`known` receives each), and every setting that names a hand-off field
    /// names a mapped one. Problems are reported under `helpdesk.`.
    pub fn validate(
        file: MappingFile<'_>,
        parse_key: impl Fn(&str) -> Result<K, String>,
        known: &mut Vec<String>,
        problems: &mut Vec<Problem>,
    ) -> FieldMapping<K> {
        let key = |k: &str| format!("helpdesk.{k}");
        let mut fields = BTreeMap::new();
        for (helpdesk_key, name) in file.fields {
            match parse_key(helpdesk_key) {
                Ok(k) => {
                    fields.insert(k, name.clone());
                }
                Err(message) => problems.push(Problem::new(
                    key(&format!("fields.{helpdesk_key}")),
                    message,
                )),
            }
            map_field_name(
                key(&format!("fields.{helpdesk_key}")),
                name,
                known,
                problems,
            );
        }
        for (k, v) in [
            ("product_field", file.product_field.as_deref()),
            ("version_field", file.version_field.as_deref()),
            ("tried_articles_field", file.tried_articles_field.as_deref()),
            ("partner.field", file.partner_field),
        ] {
            require_mapped(key(k), v, known, problems);
        }
        FieldMapping {
            fields,
            product_field: file.product_field.clone(),
            version_field: file.version_field.clone(),
            tried_articles_field: file.tried_articles_field.clone(),
        }
    }

    /// The helpdesk's key of the field mapped as `name`.
    pub fn key_of(&self, name: &str) -> Option<&K> {
        self.fields.iter().find(|(_, n)| *n == name).map(|(k, _)| k)
    }

    /// A ticket's mapped values: `value` reads one helpdesk field (`None` when the ticket does
    /// not have it); empty values count as not given.
    pub fn read<'v>(&self, value: impl Fn(&K) -> Option<&'v Value>) -> Mapped {
        let handoff: BTreeMap<String, String> = self
            .fields
            .iter()
            .map(|(k, name)| (name.clone(), value_text(value(k))))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let field = |name: &Option<String>| name.as_ref().and_then(|n| handoff.get(n)).cloned();
        Mapped {
            product: field(&self.product_field),
            version: field(&self.version_field),
            tried_articles: field(&self.tried_articles_field)
                .map(|s| crate::escalation::tried_articles(&s))
                .unwrap_or_default(),
            handoff,
        }
    }
}

/// The escalation's parts a ticket's mapped fields give.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// Hand-off field name → value.
    pub handoff: BTreeMap<String, String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub tried_articles: Vec<String>,
}

impl Mapped {
    /// The value of a mapped hand-off field (e.g. the partner's).
    pub fn field(&self, name: &str) -> Option<String> {
        self.handoff.get(name).cloned()
    }
}

/// The partner, or [`UNKNOWN_PARTNER`] when the ticket names none.
pub fn partner_or_unknown(partner: Option<String>) -> String {
    partner
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| UNKNOWN_PARTNER.to_string())
}

/// A field value as text: strings trimmed, numbers and booleans written out, a list of strings
/// (a multi-select) joined with `, `; anything else is empty.
pub fn value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// Whether a field value says yes: `true`, a non-zero number, or the text `true`, `1` or `yes`.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.as_str(), "true" | "1" | "yes"),
        Value::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

/// A webhook's `ticket_id` as a ticket number: a JSON number, or a string of digits (spaces
/// around it allowed), that fits in 64 bits as the helpdesks' ticket ids do; `None` for anything
/// else, so a malformed id is refused before any call.
pub fn ticket_number(raw: &serde_json::Value) -> Option<String> {
    match raw {
        serde_json::Value::Number(n) if n.is_u64() => Some(n.to_string()),
        serde_json::Value::String(s) => {
            let s = s.trim();
            (s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok())
                .then(|| s.to_string())
        }
        _ => None,
    }
}

/// The RFC 3339 time under `key` of a helpdesk's JSON answer (UTC), if it has a valid one.
pub fn time_at(v: &serde_json::Value, key: &str) -> Option<DateTime<Utc>> {
    let text = v.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file<'a>(
        fields: &'a BTreeMap<String, String>,
        product: &'a Option<String>,
        none: &'a Option<String>,
        partner: Option<&'a str>,
    ) -> MappingFile<'a> {
        MappingFile {
            fields,
            product_field: product,
            version_field: none,
            tried_articles_field: none,
            partner_field: partner,
        }
    }

    #[test]
    fn a_mapping_is_checked_once_for_every_helpdesk() {
        let fields = BTreeMap::from([
            ("12".to_string(), "steps".to_string()),
            ("x".to_string(), "steps".to_string()),
        ]);
        let product = Some("product".to_string());
        let mut known = Vec::new();
        let mut problems = Vec::new();
        let m = FieldMapping::validate(
            file(&fields, &product, &None, Some("partner")),
            |k| k.parse::<u64>().map_err(|_| "keys are numbers".to_string()),
            &mut known,
            &mut problems,
        );
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "helpdesk.fields.x",
                "helpdesk.fields.x",
                "helpdesk.product_field",
                "helpdesk.partner.field"
            ],
            "{problems:?}"
        );
        assert_eq!(m.fields, BTreeMap::from([(12, "steps".to_string())]));
    }

    #[test]
    fn a_ticket_s_values_become_the_escalation_s_parts() {
        let m = FieldMapping {
            fields: BTreeMap::from([
                ("a", "steps".to_string()),
                ("b", "product".to_string()),
                ("c", "tried".to_string()),
                ("d", "empty".to_string()),
            ]),
            product_field: Some("product".into()),
            version_field: Some("version".into()),
            tried_articles_field: Some("tried".into()),
        };
        let ticket = json!({"a": " rebooted ", "b": ["Mail", "Sync"], "c": "kb-1, kb-2", "d": ""});
        let got = m.read(|k| ticket.get(*k));
        assert_eq!(got.product.as_deref(), Some("Mail, Sync"));
        assert_eq!(got.version, None);
        assert_eq!(got.field("steps").as_deref(), Some("rebooted"));
        assert!(!got.handoff.contains_key("empty"));
        assert_eq!(
            got.tried_articles,
            crate::escalation::tried_articles("kb-1, kb-2")
        );
        assert_eq!(partner_or_unknown(Some("  ".into())), UNKNOWN_PARTNER);
    }
}
