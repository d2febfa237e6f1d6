//! The `[helpdesk]` table of a Zendesk connector.

use crate::helpdesk::HttpFile;
use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

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
    #[serde(default)]
    pub tags: TagsFile,
    #[serde(default)]
    pub http: HttpFile,
    /// What `install zendesk` sets up beyond what the rest of the file says.
    pub install: Option<super::install::InstallFile>,
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
    pub tags: TagsFile,
    pub retry: RetrySettings,
    pub install: Option<super::install::InstallFile>,
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
        let help_center = matches!(kb, KbBackend::Helpdesk);
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
            tags: self.tags,
            retry,
            install: self.install,
        })
    }
}
