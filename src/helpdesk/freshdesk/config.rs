//! The `[helpdesk]` table of a Freshdesk connector.

use crate::helpdesk::HttpFile;
use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use crate::checks::typed::{self, Tagged};
use crate::checks::{Credentials, Problem, shared_secret, upstream_url};
use crate::helpdesk::mapping::{FieldMapping, MappingFile};
use crate::helpdesk::tags::TagsFile;
use crate::http::RetrySettings;

/// The header the automation rule's webhook carries the shared secret in, unless the file names
/// another.
pub const DEFAULT_SECRET_HEADER: &str = "X-Escalation-Gate-Secret";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshdeskConfig {
    /// `https://{domain}.freshdesk.com`, or a local server in tests.
    pub base_url: String,
    /// The API key of the agent the service acts as (HTTP Basic `{key}:X`).
    pub api_key: SecretString,
    /// Secrets the automation rule's webhook sends (in `secret_header`, or as the Basic auth
    /// password); more than one while rotating.
    pub webhook_secrets: Vec<SecretString>,
    pub secret_header: Option<String>,
    /// Custom field name (`cf_...`) → hand-off field name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "typed::tagged")]
    pub partner: PartnerSource,
    pub product_field: Option<String>,
    pub version_field: Option<String>,
    pub tried_articles_field: Option<String>,
    /// The name (`cf_...`) of a text custom field that records what the check before
    /// escalating said (the sidebar app sets it).
    pub precheck_field: Option<String>,
    #[serde(default)]
    pub tags: TagsFile,
    #[serde(default)]
    pub http: HttpFile,
}

impl Tagged for PartnerSource {
    const TAG: &'static str = "from";
}

#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PartnerSource {
    /// The ticket's company name.
    #[default]
    Company,
    /// A mapped custom field (its name from `fields`).
    Field { field: String },
}

/// A Freshdesk connector after validation.
#[derive(Debug)]
pub struct ValidFreshdesk {
    pub base_url: reqwest::Url,
    pub api_key: SecretString,
    pub webhook_secrets: Vec<SecretString>,
    pub secret_header: axum::http::HeaderName,
    /// Custom field (`cf_...`) → hand-off field name, and the fields that hold product,
    /// version, tried articles.
    pub mapping: FieldMapping<String>,
    pub partner: PartnerSource,
    /// The custom field (`cf_...`) that records what the check before escalating said.
    pub precheck_field: Option<String>,
    pub tags: TagsFile,
    pub retry: RetrySettings,
}

impl FreshdeskConfig {
    pub fn validate(
        self,
        known_fields: &mut Vec<String>,
        problems: &mut Vec<Problem>,
    ) -> Option<ValidFreshdesk> {
        let start = problems.len();
        let key = |k: &str| format!("helpdesk.{k}");
        let partner_field = match &self.partner {
            PartnerSource::Field { field } => Some(field.as_str()),
            PartnerSource::Company => None,
        };
        let mapping = FieldMapping::validate(
            MappingFile {
                fields: &self.fields,
                product_field: &self.product_field,
                version_field: &self.version_field,
                tried_articles_field: &self.tried_articles_field,
                partner_field,
            },
            |field| match field.starts_with("cf_") {
                true => Ok(field.to_string()),
                false => Err(
                    "keys are Freshdesk custom field names (`cf_...`, as the API names them)"
                        .to_string(),
                ),
            },
            known_fields,
            problems,
        );
        if let Some(field) = self
            .precheck_field
            .as_deref()
            .filter(|f| !f.starts_with("cf_"))
        {
            problems.push(Problem::new(
                key("precheck_field"),
                format!(
                    "`{field}` is not a Freshdesk custom field name (`cf_...`, as the API names it)"
                ),
            ));
        }
        let base_url = upstream_url(
            key("base_url"),
            &self.base_url,
            Credentials::Key("helpdesk.api_key"),
            problems,
        );
        if self.webhook_secrets.is_empty() {
            problems.push(Problem::new(
                key("webhook_secrets"),
                "at least one secret is needed: Freshdesk does not sign webhooks, so the automation rule sends one",
            ));
        }
        for (i, s) in self.webhook_secrets.iter().enumerate() {
            shared_secret(key(&format!("webhook_secrets[{i}]")), s, problems);
        }
        let header = self
            .secret_header
            .as_deref()
            .unwrap_or(DEFAULT_SECRET_HEADER);
        let secret_header = match axum::http::HeaderName::try_from(header) {
            Ok(h) if h != axum::http::header::AUTHORIZATION => Some(h),
            _ => {
                problems.push(Problem::new(
                    key("secret_header"),
                    format!("`{header}` is not a usable header name (letters, digits and `-`; not `Authorization`, which carries Basic auth)"),
                ));
                None
            }
        };
        self.tags.validate(
            "a Freshdesk tag must be non-empty and contain no spaces",
            problems,
        );
        let retry = self.http.retry(problems);
        (problems.len() == start).then_some(ValidFreshdesk {
            base_url: base_url?,
            api_key: self.api_key,
            webhook_secrets: self.webhook_secrets,
            secret_header: secret_header?,
            mapping,
            partner: self.partner,
            precheck_field: self.precheck_field,
            tags: self.tags,
            retry,
        })
    }
}
