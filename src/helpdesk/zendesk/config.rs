//! The `[helpdesk]` table of a Zendesk connector, with its `[helpdesk.install]` conditions
//! (which `install zendesk` sets up and the escalation rule of `backfill` reads).

use crate::helpdesk::HttpFile;
use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::checks::typed::{self, Tagged};
use crate::checks::{Credentials, Problem, shared_secret, upstream_url};
use crate::helpdesk::mapping::{FieldMapping, MappingFile};
pub use crate::helpdesk::tags::TagsFile;
use crate::http::RetrySettings;
use crate::kb::KbBackend;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskConfig {
    /// `https://{subdomain}.zendesk.com`, or a local server in tests.
    pub base_url: Option<String>,
    #[serde(default, deserialize_with = "typed::optional")]
    pub auth: Option<AuthFile>,
    /// Webhook signing secrets; more than one while rotating.
    pub signing_secrets: Vec<SecretString>,
    pub timestamp_tolerance_secs: Option<u64>,
    #[serde(default)]
    pub ticket_source: TicketSource,
    #[serde(default)]
    pub write_back: WriteBackMode,
    /// Custom field id → hand-off field name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "typed::tagged")]
    pub partner: PartnerSource,
    pub product_field: Option<String>,
    pub version_field: Option<String>,
    pub tried_articles_field: Option<String>,
    /// The id of a text custom field that records what the check before escalating said (the
    /// Guide snippet fills it on the request form).
    pub precheck_field: Option<String>,
    #[serde(default)]
    pub tags: TagsFile,
    #[serde(default)]
    pub http: HttpFile,
    /// What `install zendesk` sets up beyond what the rest of the file says.
    pub install: Option<InstallFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthFile {
    /// HTTP Basic `{email}/token:{token}`.
    ApiToken { email: String, token: SecretString },
    /// `Authorization: Bearer {token}` with an OAuth access token.
    OauthBearer { token: SecretString },
}

impl Tagged for AuthFile {
    const TAG: &'static str = "kind";
}

impl Tagged for PartnerSource {
    const TAG: &'static str = "from";
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TicketSource {
    /// Read the ticket through the Support API (production).
    #[default]
    Api,
    /// The signed webhook body carries the ticket as the API returns it (demo, offline).
    WebhookBody,
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WriteBackMode {
    /// Tags and an internal note through the Support API.
    #[default]
    Api,
    /// Log what would be written; write nothing (demo).
    Log,
}

#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PartnerSource {
    /// The ticket's organization name.
    #[default]
    Organization,
    /// A mapped custom field (its name from `fields`).
    Field { field: String },
}

#[derive(Debug)]
pub enum Auth {
    ApiToken { email: String, token: SecretString },
    Bearer(SecretString),
}

/// A Zendesk connector after validation.
#[derive(Debug)]
pub struct ValidZendesk {
    pub base_url: Option<reqwest::Url>,
    pub auth: Option<Auth>,
    pub signing_secrets: Vec<SecretString>,
    pub tolerance: chrono::Duration,
    pub ticket_source: TicketSource,
    pub write_back: WriteBackMode,
    /// Custom field id → hand-off field name, and the fields that hold product, version, tried
    /// articles.
    pub mapping: FieldMapping<u64>,
    pub partner: PartnerSource,
    /// The custom field that records what the check before escalating said.
    pub precheck_field: Option<u64>,
    pub tags: TagsFile,
    pub retry: RetrySettings,
    pub install: Option<InstallFile>,
}

pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

impl ZendeskConfig {
    pub fn validate(
        self,
        kb: &KbBackend,
        known_fields: &mut Vec<String>,
        problems: &mut Vec<Problem>,
    ) -> Option<ValidZendesk> {
        let start = problems.len();
        let key = |k: &str| format!("helpdesk.{k}");
        let partner_field = match &self.partner {
            PartnerSource::Field { field } => Some(field.as_str()),
            PartnerSource::Organization => None,
        };
        let mapping = FieldMapping::validate(
            MappingFile {
                fields: &self.fields,
                product_field: &self.product_field,
                version_field: &self.version_field,
                tried_articles_field: &self.tried_articles_field,
                partner_field,
            },
            |id| {
                id.parse::<u64>()
                    .map_err(|_| "keys are Zendesk custom field ids (numbers)".to_string())
            },
            known_fields,
            problems,
        );
        let precheck_field = self.precheck_field.as_deref().and_then(|id| {
            let parsed = id.trim().parse::<u64>().ok();
            if parsed.is_none() {
                problems.push(Problem::new(
                    key("precheck_field"),
                    format!("`{id}` is not a Zendesk custom field id (a number)"),
                ));
            }
            parsed
        });
        if self.signing_secrets.is_empty() {
            problems.push(Problem::new(
                key("signing_secrets"),
                "at least one webhook signing secret is needed",
            ));
        }
        for (i, s) in self.signing_secrets.iter().enumerate() {
            shared_secret(key(&format!("signing_secrets[{i}]")), s, problems);
        }
        let tolerance = self
            .timestamp_tolerance_secs
            .unwrap_or(DEFAULT_TOLERANCE_SECS);
        if !(1..=3600).contains(&tolerance) {
            problems.push(Problem::new(
                key("timestamp_tolerance_secs"),
                format!("must be 1 to 3600 seconds, found {tolerance}"),
            ));
        }
        let help_center = kb.is_helpdesks();
        let needs_api = self.ticket_source == TicketSource::Api
            || self.write_back == WriteBackMode::Api
            || help_center;
        let base_url = match &self.base_url {
            Some(u) => upstream_url(
                key("base_url"),
                u,
                Credentials::Key("helpdesk.auth"),
                problems,
            ),
            None if needs_api => {
                problems.push(Problem::new(
                    key("base_url"),
                    "is required: the connector reads tickets, writes back or searches the Help Center through the API",
                ));
                None
            }
            None => None,
        };
        let auth = match self.auth {
            Some(AuthFile::ApiToken { email, token }) => {
                if !email.contains('@') {
                    problems.push(Problem::new(
                        key("auth.email"),
                        format!("`{email}` is not an e-mail address"),
                    ));
                }
                Some(Auth::ApiToken { email, token })
            }
            Some(AuthFile::OauthBearer { token }) => Some(Auth::Bearer(token)),
            None if needs_api => {
                problems.push(Problem::new(
                    key("auth"),
                    "is required: the connector calls the Zendesk API",
                ));
                None
            }
            None => None,
        };
        self.tags.validate(
            "a Zendesk tag must be non-empty and contain no spaces",
            problems,
        );
        if let Some(install) = &self.install {
            install.validate(problems);
        }
        let retry = self.http.retry(problems);
        (problems.len() == start).then_some(ValidZendesk {
            base_url,
            auth,
            signing_secrets: self.signing_secrets,
            tolerance: chrono::Duration::seconds(tolerance as i64),
            ticket_source: self.ticket_source,
            write_back: self.write_back,
            mapping,
            partner: self.partner,
            precheck_field,
            tags: self.tags,
            retry,
            install: self.install,
        })
    }
}

/// The `[helpdesk.install]` table: what `install zendesk` cannot guess.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct InstallFile {
    /// What marks a ticket as escalated to the vendor: the escalation trigger's conditions.
    /// Default: derived from `[sweep] query` when that is only `tags:` terms.
    pub trigger: Option<Conditions>,
    /// Which solved tickets the survey automation considers. Default: those carrying the
    /// survey's `pending` tag (escalated cases the service judged).
    pub survey: Option<Conditions>,
}

/// Zendesk trigger/automation conditions, as the API takes them.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default)]
    pub all: Vec<Condition>,
    #[serde(default)]
    pub any: Vec<Condition>,
}

/// One condition (`field`, `operator`, `value`), e.g. `current_tags` `includes` `partner_escalated`.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    pub operator: String,
    #[serde(default)]
    pub value: Value,
}

impl Condition {
    pub fn new(field: &str, operator: &str, value: impl Into<Value>) -> Condition {
        Condition {
            field: field.into(),
            operator: operator.into(),
            value: value.into(),
        }
    }

    /// The condition as the API takes it (no `value` when it has none).
    pub fn json(&self) -> Value {
        let mut c = json!({ "field": self.field, "operator": self.operator });
        if !self.value.is_null() {
            c["value"] = self.value.clone();
        }
        c
    }
}

impl InstallFile {
    /// Checks the table (no network); problems are reported under `helpdesk.install`.
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        for (name, c) in [("trigger", &self.trigger), ("survey", &self.survey)] {
            let Some(c) = c else { continue };
            let key = format!("helpdesk.install.{name}");
            if c.all.is_empty() && c.any.is_empty() {
                problems.push(Problem::new(
                    &key,
                    "give at least one condition in `all` or `any`",
                ));
            }
            for (i, cond) in c.all.iter().chain(&c.any).enumerate() {
                if cond.field.trim().is_empty() || cond.operator.trim().is_empty() {
                    problems.push(Problem::new(
                        format!("{key}[{i}]"),
                        "a condition needs a `field` and an `operator` (Zendesk's conditions reference)",
                    ));
                }
            }
        }
    }
}

/// The escalation trigger's conditions from `[sweep] query` when it is only `tags:X` terms
/// (`current_tags` `includes` X, all of them).
pub fn conditions_from_sweep_query(query: &str) -> Option<Conditions> {
    let tags: Option<Vec<&str>> = query
        .split_whitespace()
        .map(|t| {
            t.strip_prefix("tags:")
                .or_else(|| t.strip_prefix("tag:"))
                .filter(|v| !v.is_empty())
        })
        .collect();
    let tags = tags.filter(|t| !t.is_empty())?;
    Some(Conditions {
        all: tags
            .into_iter()
            .map(|t| Condition::new("current_tags", "includes", t))
            .collect(),
        any: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_install_table_needs_conditions_with_field_and_operator() {
        let file: InstallFile = toml::from_str(
            "[trigger]\nall = []\n[survey]\nany = [{ field = \"status\", operator = \"\" }]",
        )
        .unwrap();
        let mut problems = Vec::new();
        file.validate(&mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["helpdesk.install.trigger", "helpdesk.install.survey[0]"]
        );
        assert!(toml::from_str::<InstallFile>("[trigger]\nal = []").is_err());
    }

    #[test]
    fn sweep_queries_of_tags_only_become_trigger_conditions() {
        let c = conditions_from_sweep_query("tags:a tag:b").unwrap();
        assert_eq!(
            c.all,
            [
                Condition::new("current_tags", "includes", "a"),
                Condition::new("current_tags", "includes", "b")
            ]
        );
        assert!(conditions_from_sweep_query("tags:a group:5").is_none());
        assert!(conditions_from_sweep_query("").is_none());
        assert!(conditions_from_sweep_query("tags:").is_none());
    }
}
