//! The `[helpdesk]` table of a Salesforce Service Cloud connector.

use crate::helpdesk::HttpFile;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use regex::Regex;
use ring::signature::RsaKeyPair;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::checks::typed::{self, Tagged};
use crate::checks::{Credentials, Problem, shared_secret, upstream_url};
use crate::helpdesk::mapping::{FieldMapping, MappingFile};
use crate::http::RetrySettings;
use crate::http::standard_webhooks;

pub const DEFAULT_API_VERSION: &str = "62.0";
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// Salesforce's token answers carry no lifetime; the org's session timeout (2 hours by default)
/// decides. A token older than this is replaced before use.
pub const DEFAULT_TOKEN_MAX_AGE_SECS: u64 = 1800;
pub const DEFAULT_AUDIENCE: &str = "https://login.salesforce.com";

static API_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9_]{0,79}$").expect("valid regex"));
static API_VERSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{2}\.0$").expect("valid regex"));
static ORG_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$").expect("valid regex"));

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceConfig {
    /// `https://{MyDomain}.my.salesforce.com`: the token endpoint and the REST API.
    pub my_domain: Option<String>,
    pub api_version: Option<String>,
    /// The org's id (15 or 18 characters). Outbound messages from any other org are refused;
    /// without it the connector takes no outbound messages.
    pub organization_id: Option<String>,
    /// A shared token the outbound message's endpoint URL carries as `?token=...`.
    pub endpoint_token: Option<SecretString>,
    /// Standard Webhooks secrets (`whsec_...`) for signed JSON from a Flow or Apex callout; more
    /// than one while rotating. Without them the connector takes no signed JSON.
    #[serde(default)]
    pub signing_secrets: Vec<SecretString>,
    pub timestamp_tolerance_secs: Option<u64>,
    #[serde(default, deserialize_with = "typed::optional")]
    pub auth: Option<AuthFile>,
    pub token_max_age_secs: Option<u64>,
    #[serde(default)]
    pub write_back: WriteBackMode,
    #[serde(default)]
    pub verdict_fields: VerdictFields,
    #[serde(default)]
    pub survey_fields: SurveyCaseFields,
    /// Case field API name → hand-off field name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "typed::tagged")]
    pub partner: PartnerSource,
    pub product_field: Option<String>,
    pub version_field: Option<String>,
    pub tried_articles_field: Option<String>,
    /// A Case field (API name) holding the customer's language, e.g. `en_US`.
    pub locale_field: Option<String>,
    #[serde(default)]
    pub knowledge: KnowledgeFile,
    #[serde(default)]
    pub http: HttpFile,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthFile {
    /// OAuth 2.0 client credentials of an External Client App / Connected App.
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
    },
    /// OAuth 2.0 JWT bearer: an RS256 assertion signed with the app's private key.
    JwtBearer {
        client_id: String,
        username: String,
        /// PEM text (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
        private_key: Option<SecretString>,
        /// A PEM file, relative to the connectors folder.
        private_key_file: Option<PathBuf>,
        /// `https://login.salesforce.com`, `https://test.salesforce.com` or the My Domain URL.
        audience: Option<String>,
    },
}

impl Tagged for AuthFile {
    const TAG: &'static str = "grant";
}

impl Tagged for PartnerSource {
    const TAG: &'static str = "from";
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WriteBackMode {
    /// The verdict fields and one internal CaseComment through the REST API.
    #[default]
    Api,
    /// Log what would be written; write nothing.
    Log,
}

/// The Case fields the verdict is written to.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictFields {
    /// A picklist (or text) field: the verdict, also read to skip judged cases.
    pub verdict: String,
    /// A text field (255) for the reasons and flags; empty: not written.
    pub reason: String,
    pub good: String,
    pub bad: String,
    /// The verdict field's value for a case a person must decide (the judge's `review`).
    pub review: String,
    /// A picklist holding a person's final decision (`good`/`bad` values); reports count it over
    /// the verdict. Empty: the org has none.
    pub reviewed: String,
    /// A text field (255) for what the reasons point at: `missing=field,field; kb_article=id`
    /// (reports read it). Empty (the default): not written.
    pub detail: String,
    /// A picklist a reviewer sets with the reason of an overturn (`kb_not_applicable`,
    /// `handoff_complete`, `kb_resolvable`, `missing_handoff`); read by calibration. Empty (the
    /// default): the org has none.
    pub overturn: String,
    /// A picklist (`good`, `bad`, `review`) the Experience Cloud precheck component sets on the
    /// Case it creates: what the check before escalating said. Empty (the default): not read.
    pub precheck: String,
}

impl Default for VerdictFields {
    fn default() -> Self {
        VerdictFields {
            verdict: "Escalation_Quality__c".into(),
            reason: "Escalation_Quality_Reason__c".into(),
            good: "Good".into(),
            bad: "Bad".into(),
            review: "Review".into(),
            reviewed: "Escalation_Reviewed_Quality__c".into(),
            detail: String::new(),
            overturn: String::new(),
            precheck: String::new(),
        }
    }
}

/// The Case fields the blind survey (`[survey]`) records what happened in: the Case is the
/// survey's state, as tags are on Zendesk.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct SurveyCaseFields {
    /// A Text field: `csat_blind_pending`, `_sending`, `_sent`, `_skipped_<reason>` or
    /// `_answered` (the `[survey.tags]` names). Read first, so a redelivery sends nothing twice.
    pub status: String,
    /// A Date/Time field: when the survey went out; the throttle searches it with SOQL.
    pub sent_at: String,
}

impl Default for SurveyCaseFields {
    fn default() -> Self {
        SurveyCaseFields {
            status: "Blind_Survey_Status__c".into(),
            sent_at: "Blind_Survey_Sent_At__c".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PartnerSource {
    /// The Case's Account name.
    #[default]
    Account,
    /// A mapped Case field (its name from `fields`).
    Field { field: String },
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeFile {
    /// The channel articles are searched in (`App`, `Pkb`, `Csp`, `Prm`); Salesforce's default
    /// when absent.
    pub channel: Option<String>,
    /// How an article is linked in the note: `{id}`, `{urlName}` and `{articleNumber}` are
    /// replaced. Default: `{my_domain}/{id}`.
    pub article_url: Option<String>,
}

/// A parsed RSA private key; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SigningKey(pub Arc<RsaKeyPair>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

#[derive(Debug)]
pub enum Auth {
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
    },
    JwtBearer {
        client_id: String,
        username: String,
        key: SigningKey,
        audience: String,
    },
}

/// A Salesforce connector after validation.
#[derive(Debug)]
pub struct ValidSalesforce {
    pub base: Option<reqwest::Url>,
    pub api_version: String,
    /// The first 15 characters of the org id (the case-sensitive id; the 3 more are a checksum).
    pub org_id: Option<String>,
    pub endpoint_token: Option<SecretString>,
    pub signing_secrets: Vec<SecretString>,
    pub tolerance: chrono::Duration,
    pub auth: Option<Auth>,
    pub token_max_age: std::time::Duration,
    pub write_back: WriteBackMode,
    pub verdict_fields: VerdictFields,
    pub survey_fields: SurveyCaseFields,
    /// Case field API name → hand-off field name, and the fields that hold product, version,
    /// tried articles.
    pub mapping: FieldMapping<String>,
    pub partner: PartnerSource,
    pub locale_field: Option<String>,
    pub knowledge: KnowledgeFile,
    pub retry: RetrySettings,
    /// The connector has a `[survey]`: the Case's survey status is read with it, and the
    /// escalation's pending mark goes into the verdict write.
    pub survey: bool,
}

/// Checks the field names and picklist values of `[helpdesk.verdict_fields]` and
/// `[helpdesk.survey_fields]`.
fn check_names(vf: &VerdictFields, sf: &SurveyCaseFields, problems: &mut Vec<Problem>) {
    let key = |k: &str| format!("helpdesk.{k}");
    let api_name = |k: String, v: &str, problems: &mut Vec<Problem>| {
        if !API_NAME.is_match(v) {
            problems.push(Problem::new(
                k,
                format!("`{v}` is not a Salesforce field API name (e.g. `Steps__c`)"),
            ));
        }
    };
    api_name(key("verdict_fields.verdict"), &vf.verdict, problems);
    for (k, v) in [
        ("verdict_fields.reason", &vf.reason),
        ("verdict_fields.reviewed", &vf.reviewed),
        ("verdict_fields.detail", &vf.detail),
        ("verdict_fields.overturn", &vf.overturn),
        ("verdict_fields.precheck", &vf.precheck),
    ] {
        if !v.is_empty() {
            api_name(key(k), v, problems);
        }
    }
    api_name(key("survey_fields.status"), &sf.status, problems);
    api_name(key("survey_fields.sent_at"), &sf.sent_at, problems);
    let values = [&vf.good, &vf.bad, &vf.review];
    if values.iter().any(|v| v.trim().is_empty())
        || vf.good == vf.bad
        || vf.review == vf.good
        || vf.review == vf.bad
    {
        problems.push(Problem::new(
            key("verdict_fields"),
            "`good`, `bad` and `review` must be three different, non-empty picklist values",
        ));
    }
}

/// The part of a connector file `install salesforce` reads.
#[derive(Deserialize)]
struct InstallFile {
    helpdesk: InstallHelpdesk,
    #[serde(default)]
    handoff: InstallHandoff,
}

#[derive(Deserialize)]
struct InstallHelpdesk {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    verdict_fields: VerdictFields,
    #[serde(default)]
    survey_fields: SurveyCaseFields,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    partner: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
struct InstallHandoff {
    #[serde(default)]
    rules: Vec<InstallRule>,
}

#[derive(Deserialize)]
struct InstallRule {
    field: String,
}

/// What `install salesforce` generates metadata for.
pub struct InstallNames {
    pub verdict_fields: VerdictFields,
    pub survey_fields: SurveyCaseFields,
    /// The Case fields a partner fills in for the hand-off, as (API name, hand-off name): each
    /// field a `[[handoff.rules]]` names that `[helpdesk.fields]` maps, in the rules' order.
    pub handoff: Vec<(String, String)>,
    /// The partner is the Case's Account (`[helpdesk.partner] from = "account"`, the default).
    pub partner_from_account: bool,
}

/// The names `install salesforce` generates metadata for, from a connector file's text: it
/// must be a Salesforce connector. Its `${VAR}`s are not expanded (the org's credentials need
/// not be set to generate files), and the names are checked as `validate` checks them.
pub fn install_names(text: &str) -> Result<InstallNames, Vec<Problem>> {
    let file: InstallFile = toml::from_str(text)
        .map_err(|e| vec![Problem::new("helpdesk", e.message().to_string())])?;
    let h = file.helpdesk;
    if h.kind != "salesforce" {
        return Err(vec![Problem::new(
            "helpdesk.type",
            format!(
                "is `{}`: `install salesforce` sets up Salesforce connectors{}",
                h.kind,
                if h.kind == "zendesk" {
                    " (for this one: `install zendesk`)"
                } else {
                    ""
                }
            ),
        )]);
    }
    let mut problems = Vec::new();
    check_names(&h.verdict_fields, &h.survey_fields, &mut problems);
    let mut handoff: Vec<(String, String)> = Vec::new();
    for rule in &file.handoff.rules {
        let mapped = h.fields.iter().find(|(_, name)| **name == rule.field);
        if let Some((api, name)) = mapped
            && !handoff.iter().any(|(a, _)| a == api)
        {
            if !API_NAME.is_match(api) {
                problems.push(Problem::new(
                    format!("helpdesk.fields.{api}"),
                    format!("`{api}` is not a Salesforce field API name (e.g. `Steps__c`)"),
                ));
            }
            handoff.push((api.clone(), name.clone()));
        }
    }
    if problems.is_empty() {
        Ok(InstallNames {
            verdict_fields: h.verdict_fields,
            survey_fields: h.survey_fields,
            handoff,
            partner_from_account: h
                .partner
                .as_ref()
                .and_then(|p| p.get("from"))
                .is_none_or(|from| from.as_str() == Some("account")),
        })
    } else {
        Err(problems)
    }
}

impl SalesforceConfig {
    pub fn validate(
        self,
        known_fields: &mut Vec<String>,
        problems: &mut Vec<Problem>,
    ) -> Option<ValidSalesforce> {
        let start = problems.len();
        let key = |k: &str| format!("helpdesk.{k}");
        let api_name = |k: String, v: &str, problems: &mut Vec<Problem>| {
            if !API_NAME.is_match(v) {
                problems.push(Problem::new(
                    k,
                    format!("`{v}` is not a Salesforce field API name (e.g. `Steps__c`)"),
                ));
            }
        };
        let partner_field = match &self.partner {
            PartnerSource::Field { field } => Some(field.as_str()),
            PartnerSource::Account => None,
        };
        let mapping = FieldMapping::validate(
            MappingFile {
                fields: &self.fields,
                product_field: &self.product_field,
                version_field: &self.version_field,
                tried_articles_field: &self.tried_articles_field,
                partner_field,
            },
            |api| {
                if API_NAME.is_match(api) {
                    Ok(api.to_string())
                } else {
                    Err(format!(
                        "`{api}` is not a Salesforce field API name (e.g. `Steps__c`)"
                    ))
                }
            },
            known_fields,
            problems,
        );
        if let Some(f) = &self.locale_field {
            api_name(key("locale_field"), f, problems);
        }
        check_names(&self.verdict_fields, &self.survey_fields, problems);
        let api_version = self
            .api_version
            .clone()
            .unwrap_or_else(|| DEFAULT_API_VERSION.into());
        if !API_VERSION.is_match(&api_version) {
            problems.push(Problem::new(
                key("api_version"),
                format!("`{api_version}` is not an API version like `62.0`"),
            ));
        }
        let org_id = match &self.organization_id {
            Some(id) if ORG_ID.is_match(id) => Some(id[..15].to_string()),
            Some(id) => {
                problems.push(Problem::new(
                    key("organization_id"),
                    format!("`{id}` is not an org id (15 or 18 characters starting with 00D)"),
                ));
                None
            }
            None => None,
        };
        if self.organization_id.is_none() && self.signing_secrets.is_empty() {
            problems.push(Problem::new(
                key("organization_id"),
                "set `organization_id` (outbound messages) or `signing_secrets` (signed JSON), or both",
            ));
        }
        match (&self.endpoint_token, &self.organization_id) {
            (Some(_), None) => problems.push(Problem::new(
                key("endpoint_token"),
                "only outbound messages use it: set `organization_id` too",
            )),
            (None, Some(_)) => problems.push(Problem::new(
                key("endpoint_token"),
                "is required with `organization_id`: outbound messages carry no signature, so \
                 the endpoint URL's `?token=` authenticates them. Set `endpoint_token = \
                 \"${SF_ENDPOINT_TOKEN}\"` (at least 32 random characters, e.g. `openssl rand \
                 -hex 32`), or remove `organization_id` to take signed JSON only",
            )),
            (Some(token), Some(_)) => shared_secret(key("endpoint_token"), token, problems),
            (None, None) => {}
        }
        for (i, s) in self.signing_secrets.iter().enumerate() {
            if let Err(e) = standard_webhooks::decode_secret(s.expose_secret()) {
                problems.push(Problem::new(key(&format!("signing_secrets[{i}]")), e));
            }
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
        let max_age = self
            .token_max_age_secs
            .unwrap_or(DEFAULT_TOKEN_MAX_AGE_SECS);
        if !(60..=86_400).contains(&max_age) {
            problems.push(Problem::new(
                key("token_max_age_secs"),
                format!("must be 60 to 86400 seconds, found {max_age}"),
            ));
        }
        let base = match &self.my_domain {
            Some(u) => upstream_url(
                key("my_domain"),
                u,
                Credentials::Key("helpdesk.auth"),
                problems,
            ),
            None => {
                problems.push(Problem::new(
                    key("my_domain"),
                    "is required: the connector reads Cases through the REST API",
                ));
                None
            }
        };
        let auth = match self.auth {
            Some(AuthFile::ClientCredentials {
                client_id,
                client_secret,
            }) => Some(Auth::ClientCredentials {
                client_id,
                client_secret,
            }),
            Some(AuthFile::JwtBearer {
                client_id,
                username,
                private_key,
                private_key_file,
                audience,
            }) => {
                let pem = match (private_key, private_key_file) {
                    (Some(k), None) => Some(k.expose_secret().to_string()),
                    (None, Some(path)) => match std::fs::read_to_string(&path) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            problems.push(Problem::new(
                                key("auth.private_key_file"),
                                format!("cannot read `{}`: {e}", path.display()),
                            ));
                            None
                        }
                    },
                    _ => {
                        problems.push(Problem::new(
                            key("auth"),
                            "the jwt_bearer grant needs exactly one of `private_key` or `private_key_file`",
                        ));
                        None
                    }
                };
                let key_pair = pem.and_then(|p| match parse_rsa_pem(&p) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        problems.push(Problem::new(key("auth.private_key"), e));
                        None
                    }
                });
                if !username.contains('@') {
                    problems.push(Problem::new(
                        key("auth.username"),
                        format!("`{username}` is not a Salesforce username (an e-mail form)"),
                    ));
                }
                key_pair.map(|k| Auth::JwtBearer {
                    client_id,
                    username,
                    key: SigningKey(Arc::new(k)),
                    audience: audience.unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
                })
            }
            None => {
                problems.push(Problem::new(
                    key("auth"),
                    "is required: the connector reads Cases through the REST API",
                ));
                None
            }
        };
        let retry = self.http.retry(problems);
        (problems.len() == start).then_some(ValidSalesforce {
            base,
            api_version,
            org_id,
            endpoint_token: self.endpoint_token,
            signing_secrets: self.signing_secrets,
            tolerance: chrono::Duration::seconds(tolerance as i64),
            auth,
            token_max_age: std::time::Duration::from_secs(max_age),
            write_back: self.write_back,
            verdict_fields: self.verdict_fields,
            survey_fields: self.survey_fields,
            mapping,
            partner: self.partner,
            locale_field: self.locale_field,
            knowledge: self.knowledge,
            retry,
            survey: false,
        })
    }
}

impl ValidSalesforce {
    /// Takes the `[survey]` in: checks the names a Salesforce connector writes (the opt-out is
    /// a Contact field).
    pub fn with_survey(
        &mut self,
        fields: &crate::survey::config::SurveyFields,
        problems: &mut Vec<Problem>,
    ) {
        self.survey = true;
        if let Some(f) = &fields.opt_out
            && !API_NAME.is_match(f)
        {
            problems.push(Problem::new(
                "survey.opt_out_field",
                format!("`{f}` is not a Contact field API name (e.g. `HasOptedOutOfEmail`)"),
            ));
        }
    }
}

/// An RSA private key from PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE
/// KEY`). Literal `\n` (as env files often hold them) count as line breaks.
pub fn parse_rsa_pem(pem: &str) -> Result<RsaKeyPair, String> {
    let pem = pem.replace("\\n", "\n");
    let (label, b64) = {
        let begin = pem
            .find("-----BEGIN ")
            .ok_or("not a PEM key (no `-----BEGIN` line)")?;
        let rest = &pem[begin + 11..];
        let label_end = rest.find("-----").ok_or("not a PEM key")?;
        let label = &rest[..label_end];
        let body = &rest[label_end + 5..];
        let end = body
            .find("-----END ")
            .ok_or("not a PEM key (no `-----END` line)")?;
        (label.to_string(), &body[..end])
    };
    let der = BASE64
        .decode(b64.split_whitespace().collect::<String>())
        .map_err(|_| "the PEM body is not base64".to_string())?;
    match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        other => {
            return Err(format!(
                "a `{other}` PEM is not an RSA private key (want PRIVATE KEY or RSA PRIVATE KEY)"
            ));
        }
    }
    .map_err(|e| format!("not a usable RSA private key: {e}"))
}
