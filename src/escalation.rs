//! The normalized escalation: what every helpdesk's ticket is mapped to before it is judged.
//! Nothing here names a helpdesk.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One case a partner handed over to the vendor.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    /// The connector (file name) the escalation came through.
    pub connector: String,
    /// The helpdesk's own ticket id.
    pub ticket_id: String,
    /// The partner that handled the case first; `unknown` when the ticket does not say.
    pub partner: String,
    pub subject: String,
    pub description: String,
    /// Hand-off fields by their configured name (empty values are left out).
    pub handoff: BTreeMap<String, String>,
    pub requester: Requester,
    pub product: Option<String>,
    pub version: Option<String>,
    pub channel: Option<String>,
    pub issue_type: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub escalated_at: DateTime<Utc>,
    /// Nothing said when it was escalated (the sweep found it): `escalated_at` is the opening.
    pub escalated_at_unknown: bool,
    /// Knowledge-base article ids or URLs the partner says it already tried.
    pub tried_articles: Vec<String>,
    /// The ticket as a person opens it in the helpdesk.
    pub url: String,
}

/// The articles a partner lists as tried: ids or URLs separated by spaces, commas or semicolons.
pub fn tried_articles(list: &str) -> Vec<String> {
    list.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// A locale as the normalized model keeps it: lower case, `-` between language and region
/// (Salesforce's `en_US` and Zendesk's `en-US` both become `en-us`).
pub fn locale_of(tag: &str) -> String {
    tag.replace('_', "-").to_ascii_lowercase()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Requester {
    pub email: Option<String>,
    /// Lower-case locale such as `en-us`.
    pub locale: Option<String>,
}

/// The partner label used when a ticket names none.
pub const UNKNOWN_PARTNER: &str = "unknown";

impl Escalation {
    /// A case known only by its text (a labelled case, a made-up one): the subject is its first
    /// line that is not blank, the description the whole text; escalated when it was opened,
    /// by an unknown partner, with no hand-off field.
    pub fn from_text(
        connector: &str,
        ticket_id: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Escalation {
        let subject = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string();
        Escalation {
            connector: connector.to_string(),
            ticket_id: ticket_id.to_string(),
            partner: UNKNOWN_PARTNER.into(),
            subject,
            description: text.to_string(),
            handoff: BTreeMap::new(),
            requester: Requester::default(),
            product: None,
            version: None,
            channel: None,
            issue_type: None,
            opened_at: at,
            escalated_at: at,
            escalated_at_unknown: false,
            tried_articles: Vec::new(),
            url: String::new(),
        }
    }

    /// The text the knowledge base is searched with and candidates are re-scored against.
    pub fn case_text(&self) -> String {
        if self.description.trim().starts_with(self.subject.trim()) {
            self.description.clone()
        } else {
            format!("{}\n\n{}", self.subject, self.description)
        }
    }
}
