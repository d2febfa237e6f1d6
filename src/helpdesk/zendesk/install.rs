//! `escalation-gate install zendesk` and `uninstall zendesk`: the webhook, the escalation
//! trigger, the blind survey's automation and re-arm trigger, the reviewer macros and the
//! survey's opt-out user field, set up through the Zendesk API with the connector's credentials.
//!
//! Every resource is found again by its name (`escalation-gate: {connector}: ...`, the macros
//! `Escalation review [{connector}]::...`, the user field by its key) and by the marker sentence in
//! its description, or for the automation (Zendesk keeps no description for one) by its call to
//! the connector's webhook: a second run changes nothing, and `uninstall` removes exactly what
//! carries both, nothing an admin made by hand.

use std::fmt::Write as _;

use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use super::api::ZendeskApi;
use super::config::{Condition, Conditions, InstallFile, TagsFile, conditions_from_sweep_query};
use crate::helpdesk::records::OVERTURNS;
use crate::helpdesk::records::Overturn;
use crate::http::UpstreamError;
use crate::survey::config::SurveyTags;

pub mod app;

/// What the survey automation adds so that it fires once per solve (the re-arm trigger removes it
/// when the ticket is re-opened).
pub const SURVEY_REQUESTED_TAG: &str = "csat_blind_requested";

/// Hours after the solve at which the survey automation calls the webhook.
const SURVEY_AFTER_HOURS: &str = "23";

/// What to install for one connector.
#[derive(Debug, Clone)]
pub struct Setup {
    pub connector: String,
    /// `{url}/hooks/{connector}`.
    pub endpoint: String,
    pub tags: TagsFile,
    pub trigger: Conditions,
    pub survey: Option<SurveySetup>,
}

#[derive(Debug, Clone)]
pub struct SurveySetup {
    pub tags: SurveyTags,
    pub conditions: Conditions,
    /// The checkbox user field that keeps a person's opt-out.
    pub opt_out_field: String,
}

/// The webhook endpoint for `connector` at `url`: https, or http on a loopback address only.
pub fn endpoint(url: &str, connector: &str) -> Result<String, String> {
    let parsed = Url::parse(url).map_err(|e| format!("--url `{url}` is not a URL: {e}"))?;
    let loopback = parsed.host_str().is_some_and(|h| {
        h == "localhost"
            || h.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if parsed.host_str().is_none_or(str::is_empty)
        || !(parsed.scheme() == "https" || parsed.scheme() == "http" && loopback)
    {
        return Err(format!(
            "--url `{url}` must be an https:// URL where Zendesk reaches escalation-gate \
             (e.g. https://escalation-gate.example.com)"
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("--url `{url}` must have no query or fragment"));
    }
    Ok(format!(
        "{}/hooks/{connector}",
        parsed.as_str().trim_end_matches('/')
    ))
}

/// The kinds of resource, in the order they are installed (the webhook first: the trigger and
/// automation name its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Webhook,
    UserField,
    Trigger,
    Automation,
    Macro,
    /// The sidebar app (`install zendesk --app`, through the Apps API: see [`app`]).
    App,
    /// The sidebar app's installation.
    AppInstallation,
}

impl Kind {
    fn collection(self) -> &'static str {
        match self {
            Kind::Webhook => "webhooks",
            Kind::UserField => "user_fields",
            Kind::Trigger => "triggers",
            Kind::Automation => "automations",
            Kind::Macro => "macros",
            Kind::App => "apps",
            Kind::AppInstallation => "apps/installations",
        }
    }

    /// Where the account's records of this kind are listed, and the key of the list: the
    /// collection itself, but for the Apps API's own lists.
    fn listing(self) -> (&'static str, &'static str) {
        match self {
            Kind::App => ("apps/owned", "apps"),
            Kind::AppInstallation => ("apps/installations", "installations"),
            _ => (self.collection(), self.collection()),
        }
    }

    /// The key the API wraps one record in, for the resources install creates and updates.
    /// The Apps API wraps none; `install::app` sends its bodies as they are, so the app kinds'
    /// names here only keep the match whole.
    fn wrapper(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::UserField => "user_field",
            Kind::Trigger => "trigger",
            Kind::Automation => "automation",
            Kind::Macro => "macro",
            Kind::App => "app",
            Kind::AppInstallation => "installation",
        }
    }

    /// The property a resource is found by.
    fn name_key(self) -> &'static str {
        match self {
            Kind::Webhook | Kind::App => "name",
            Kind::UserField => "key",
            _ => "title",
        }
    }

    /// Whether Zendesk keeps a description (where the marker goes) for this kind.
    fn has_description(self) -> bool {
        !matches!(self, Kind::Automation | Kind::App | Kind::AppInstallation)
    }

    /// What the account's plan must include for this kind.
    fn plan(self) -> String {
        match self {
            Kind::App | Kind::AppInstallation => {
                "private apps (Suite Growth, Support Professional or above)".into()
            }
            _ => format!(
                "{} (webhooks need Support Team or above)",
                self.collection().replace('_', " ")
            ),
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::UserField => "user field",
            Kind::Trigger => "trigger",
            Kind::Automation => "automation",
            Kind::Macro => "macro",
            Kind::App => "app",
            Kind::AppInstallation => "app installation",
        }
    }
}

/// One resource as it should be: its kind, its name and the record sent to Zendesk.
#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: Kind,
    pub name: String,
    pub body: Value,
}

/// The sentence in the description of everything install creates; uninstall removes only what
/// carries it.
pub fn marker(connector: &str) -> String {
    format!(
        "Managed by escalation-gate for connector `{connector}`: \
         `escalation-gate uninstall zendesk --connector {connector}` removes it."
    )
}

/// The webhook's name.
pub fn webhook_name(connector: &str) -> String {
    format!("escalation-gate: {connector}")
}

fn trigger_title(connector: &str) -> String {
    format!("escalation-gate: {connector}: judge escalations")
}

fn rearm_title(connector: &str) -> String {
    format!("escalation-gate: {connector}: re-arm the blind survey on reopen")
}

fn automation_title(connector: &str) -> String {
    format!("escalation-gate: {connector}: blind survey after solve")
}

/// What a reviewer macro records: a plain decision, or an overturn with its reason.
#[derive(Clone, Copy)]
enum Records {
    Decision { good: bool },
    Overturn(&'static Overturn),
}

/// A reviewer macro: what it records and the internal note it adds.
struct ReviewMacro {
    records: Records,
    note: &'static str,
}

impl ReviewMacro {
    /// The decision it records.
    fn good(&self) -> bool {
        match self.records {
            Records::Decision { good } => good,
            Records::Overturn(o) => o.to_good,
        }
    }

    /// The overturn reason it records.
    fn overturn(&self) -> Option<&'static str> {
        match self.records {
            Records::Decision { .. } => None,
            Records::Overturn(o) => Some(o.reason),
        }
    }

    /// Its title after the category: `Good`, or `Overturn to good: the article does not
    /// answer the case`.
    fn title(&self) -> String {
        match self.records {
            Records::Decision { good: true } => "Good".into(),
            Records::Decision { good: false } => "Bad".into(),
            Records::Overturn(o) => format!("Overturn to {}: {}", o.to(), o.says),
        }
    }
}

/// The reasons an overturn may record, as `{reason_prefix}overturn_{reason}`.
pub use crate::helpdesk::records::OVERTURN_REASONS;

const REVIEW_MACROS: [ReviewMacro; 6] = [
    ReviewMacro {
        records: Records::Decision { good: true },
        note: "Escalation review: a person judged this escalation good.",
    },
    ReviewMacro {
        records: Records::Decision { good: false },
        note: "Escalation review: a person judged this escalation bad.",
    },
    ReviewMacro {
        records: Records::Overturn(&OVERTURNS[0]),
        note: "Escalation review: overturned to good. The article the verdict names does not answer this case.",
    },
    ReviewMacro {
        records: Records::Overturn(&OVERTURNS[1]),
        note: "Escalation review: overturned to good. The hand-off fields were complete.",
    },
    ReviewMacro {
        records: Records::Overturn(&OVERTURNS[2]),
        note: "Escalation review: overturned to bad. An existing article answers this case.",
    },
    ReviewMacro {
        records: Records::Overturn(&OVERTURNS[3]),
        note: "Escalation review: overturned to bad. The hand-off is missing what support needs.",
    },
];

/// The internal note of the reviewer macro that records `good` with `overturn` (`None` for a
/// plain decision), if there is one.
pub fn review_note(good: bool, overturn: Option<&str>) -> Option<&'static str> {
    REVIEW_MACROS
        .iter()
        .find(|m| m.good() == good && m.overturn() == overturn)
        .map(|m| m.note)
}

fn macro_title(connector: &str, m: &ReviewMacro) -> String {
    format!("Escalation review [{connector}]::{}", m.title())
}

/// The names of everything install may create for `connector`, by kind (uninstall looks for
/// these whatever the connector file says today). The user field is found by its key.
fn managed_names(connector: &str, opt_out_field: Option<&str>) -> Vec<(Kind, String)> {
    let mut names = vec![
        (Kind::Webhook, webhook_name(connector)),
        (Kind::Trigger, trigger_title(connector)),
        (Kind::Trigger, rearm_title(connector)),
        (Kind::Automation, automation_title(connector)),
    ];
    names.extend(
        REVIEW_MACROS
            .iter()
            .map(|m| (Kind::Macro, macro_title(connector, m))),
    );
    if let Some(key) = opt_out_field {
        names.push((Kind::UserField, key.to_string()));
    }
    names
}

/// The body of the webhook call a trigger or automation sends.
fn call_body(event: &str) -> String {
    format!(r#"{{"ticket_id": "{{{{ticket.id}}}}", "event": "{event}"}}"#)
}

fn conditions_json(all: &[Condition], any: &[Condition]) -> Value {
    json!({
        "all": all.iter().map(Condition::json).collect::<Vec<_>>(),
        "any": any.iter().map(Condition::json).collect::<Vec<_>>(),
    })
}

impl Setup {
    /// The webhook as it should be.
    pub fn webhook(&self) -> Resource {
        let name = webhook_name(&self.connector);
        Resource {
            kind: Kind::Webhook,
            body: json!({
                "name": name,
                "description": marker(&self.connector),
                "status": "active",
                "endpoint": self.endpoint,
                "http_method": "POST",
                "request_format": "json",
                "subscriptions": ["conditional_ticket_events"],
            }),
            name,
        }
    }

    /// Everything but the webhook, as it should be, calling the webhook `webhook_id`.
    pub fn resources(&self, webhook_id: &str) -> Vec<Resource> {
        let c = &self.connector;
        let description = marker(c);
        let t = &self.tags;
        let mut out = Vec::new();
        if let Some(s) = &self.survey {
            out.push(Resource {
                kind: Kind::UserField,
                name: s.opt_out_field.clone(),
                body: json!({
                    "key": s.opt_out_field,
                    "type": "checkbox",
                    "title": "Blind survey opt-out",
                    "description": format!("Checked: this person is never sent escalation-gate's blind survey. {description}"),
                    "active": true,
                }),
            });
        }
        let mut all = self.trigger.all.clone();
        all.push(Condition::new(
            "current_tags",
            "not_includes",
            format!("{} {} {}review", t.good, t.bad, t.reason_prefix),
        ));
        out.push(Resource {
            kind: Kind::Trigger,
            name: trigger_title(c),
            body: json!({
                "title": trigger_title(c),
                "description": format!("Calls escalation-gate to judge an escalation. {description}"),
                "active": true,
                "conditions": conditions_json(&all, &self.trigger.any),
                "actions": [{
                    "field": "notification_webhook",
                    "value": [webhook_id, call_body("escalated")],
                }],
            }),
        });
        if let Some(s) = &self.survey {
            let mut all = vec![
                Condition::new("status", "is", "solved"),
                Condition::new("SOLVED", "greater_than", SURVEY_AFTER_HOURS),
                Condition::new(
                    "current_tags",
                    "not_includes",
                    format!("{SURVEY_REQUESTED_TAG} {} {}", s.tags.sent, s.tags.skipped),
                ),
            ];
            all.extend(s.conditions.all.iter().cloned());
            let rearm = [
                Condition::new("status", "value_previous", "solved"),
                Condition::new(
                    "current_tags",
                    "not_includes",
                    format!("{} {}", s.tags.sent, s.tags.skipped),
                ),
            ];
            out.push(Resource {
                kind: Kind::Trigger,
                name: rearm_title(c),
                body: json!({
                    "title": rearm_title(c),
                    "description": format!("A case re-opened before its blind survey went out is asked after its next solve. {description}"),
                    "active": true,
                    "conditions": conditions_json(&rearm, &[]),
                    "actions": [{ "field": "remove_tags", "value": SURVEY_REQUESTED_TAG }],
                }),
            });
            out.push(Resource {
                kind: Kind::Automation,
                name: automation_title(c),
                body: json!({
                    "title": automation_title(c),
                    "active": true,
                    "conditions": conditions_json(&all, &s.conditions.any),
                    "actions": [
                        {
                            "field": "notification_webhook",
                            "value": [webhook_id, call_body("solved")],
                        },
                        { "field": "current_tags", "value": SURVEY_REQUESTED_TAG },
                    ],
                }),
            });
        }
        for m in &REVIEW_MACROS {
            out.push(self.review_macro(m, &description));
        }
        out
    }

    fn review_macro(&self, m: &ReviewMacro, description: &str) -> Resource {
        let (add, remove) = decision_tags(&self.tags.reason_prefix, m);
        let title = macro_title(&self.connector, m);
        Resource {
            kind: Kind::Macro,
            body: json!({
                "title": title,
                "description": format!("Records a reviewer's decision on escalation-gate's verdict. {description}"),
                "active": true,
                "actions": [
                    { "field": "remove_tags", "value": remove.join(" ") },
                    { "field": "current_tags", "value": add.join(" ") },
                    { "field": "comment_mode_is_public", "value": "false" },
                    { "field": "comment_value", "value": m.note },
                ],
            }),
            name: title,
        }
    }
}

/// The tags a reviewer decision adds and removes (the other decision, the other overturns).
fn decision_tags(p: &str, m: &ReviewMacro) -> (Vec<String>, Vec<String>) {
    let (mine, other) = if m.good() {
        ("reviewed_good", "reviewed_bad")
    } else {
        ("reviewed_bad", "reviewed_good")
    };
    let mut add = vec![format!("{p}{mine}")];
    add.extend(m.overturn().map(|r| format!("{p}overturn_{r}")));
    let mut remove = vec![format!("{p}{other}")];
    remove.extend(
        OVERTURN_REASONS
            .iter()
            .filter(|r| Some(**r) != m.overturn())
            .map(|r| format!("{p}overturn_{r}")),
    );
    (add, remove)
}

/// A reviewer decision as the macros record it: title, tags added and removed, internal note.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    pub title: String,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    pub note: &'static str,
}

/// The six reviewer decisions, with the tags of `reason_prefix`: what the macros and the app
/// record.
pub fn decisions(reason_prefix: &str) -> Vec<Decision> {
    REVIEW_MACROS
        .iter()
        .map(|m| {
            let (add, remove) = decision_tags(reason_prefix, m);
            Decision {
                title: m.title(),
                add,
                remove,
                note: m.note,
            }
        })
        .collect()
}

/// Stands in for the webhook signing secret while install loads a connector whose secret
/// variable is not set yet (install is what prints the secret).
pub const UNSET_SECRET: &str = "unset-until-install-zendesk-prints-the-webhook-signing-secret";

/// The environment variables a connector file's `[helpdesk] signing_secrets` reference.
pub fn signing_secret_vars(text: &str) -> Vec<String> {
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    table
        .get("helpdesk")
        .and_then(|h| h.get("signing_secrets"))
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_str)
        .filter_map(|s| s.strip_prefix("${")?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

/// One connector's Zendesk account and what install needs from its file.
pub struct Target {
    pub api: ZendeskApi,
    pub connector: String,
    pub base_url: Url,
    pub known_secrets: Vec<secrecy::SecretString>,
    tags: TagsFile,
    install: InstallFile,
    sweep_query: Option<String>,
    survey: Option<crate::survey::config::SurveyFields>,
}

impl Target {
    /// The connector's API client (patient with rate limits: a `Retry-After` of up to two
    /// minutes is waited for) and its settings. Fails for a connector that is not Zendesk or has
    /// no API configured. `sweep_query` and `survey` are the connector's sweep terms and survey
    /// names.
    pub fn from_connector(
        id: String,
        helpdesk: crate::helpdesk::registry::ValidHelpdesk,
        sweep_query: Option<String>,
        survey: Option<crate::survey::config::SurveyFields>,
    ) -> Result<Target, String> {
        let crate::helpdesk::registry::ValidHelpdesk::Zendesk(mut z) = helpdesk else {
            return Err(format!(
                "connector `{id}` is not a Zendesk connector ([helpdesk] type)"
            ));
        };
        let (Some(base_url), Some(auth)) = (z.base_url.clone(), z.auth.take()) else {
            return Err(format!(
                "connector `{id}` needs [helpdesk] base_url and [helpdesk.auth] to install through the Zendesk API"
            ));
        };
        let retry = crate::http::RetrySettings {
            max_retries: z.retry.max_retries.max(5),
            max_wait: z.retry.max_wait.max(std::time::Duration::from_secs(120)),
            ..z.retry
        };
        let upstream = crate::http::Upstream::new("zendesk", retry)
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Target {
            api: ZendeskApi::new(upstream, base_url.clone(), auth),
            connector: id,
            base_url,
            known_secrets: z.signing_secrets,
            tags: z.tags,
            install: z.install.unwrap_or_default(),
            sweep_query,
            survey,
        })
    }

    /// The opt-out user field's key, when the connector surveys.
    pub fn opt_out_field(&self) -> Option<String> {
        self.survey.as_ref().map(|f| {
            f.opt_out
                .clone()
                .unwrap_or_else(|| crate::survey::config::DEFAULT_OPT_OUT_FIELD.into())
        })
    }

    /// What to install with escalation-gate reachable at `url`.
    pub fn setup(&self, url: &str) -> Result<Setup, String> {
        let trigger = match (&self.install.trigger, &self.sweep_query) {
            (Some(c), _) => c.clone(),
            (None, Some(q)) => conditions_from_sweep_query(q).ok_or_else(|| {
                format!(
                    "[sweep] query `{q}` is not only `tags:` terms: give the escalation trigger's \
                     conditions in [helpdesk.install.trigger], e.g. \
                     all = [{{ field = \"current_tags\", operator = \"includes\", value = \"partner_escalated\" }}]"
                )
            })?,
            (None, None) => {
                return Err("say what marks an escalation: [helpdesk.install.trigger], e.g. \
                     all = [{ field = \"current_tags\", operator = \"includes\", value = \"partner_escalated\" }] \
                     (or a [sweep] query of `tags:` terms)"
                    .into());
            }
        };
        let survey = self.survey.as_ref().map(|f| SurveySetup {
            tags: f.tags.clone(),
            conditions: self.install.survey.clone().unwrap_or_else(|| Conditions {
                all: vec![Condition::new(
                    "current_tags",
                    "includes",
                    f.tags.pending.as_str(),
                )],
                any: Vec::new(),
            }),
            opt_out_field: self.opt_out_field().unwrap_or_default(),
        });
        Ok(Setup {
            connector: self.connector.clone(),
            endpoint: endpoint(url, &self.connector)?,
            tags: self.tags.clone(),
            trigger,
            survey,
        })
    }
}

/// An install or uninstall that could not finish; each names what to change.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{action}: {source}")]
    Unavailable {
        action: String,
        source: UpstreamError,
    },
    #[error("{action}: Zendesk answered HTTP {status}{detail}. {fix}")]
    Refused {
        action: String,
        status: StatusCode,
        detail: String,
        fix: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// Zendesk's build of the sidebar app failed or did not finish.
    #[error("{0}")]
    Build(String),
    #[error("{action}: unexpected answer: {detail}")]
    Invalid { action: String, detail: String },
}

/// What an admin must change for a refusal, by status; `written` is what the same run wrote
/// before it (a 403 then is not about being an admin).
fn fix_for(kind: Kind, status: StatusCode, written: &[String]) -> String {
    match status.as_u16() {
        403 if !written.is_empty() => format!(
            "This run already {} with the same credentials, so the API user can change admin \
             settings: Zendesk refused this {} for the reason in parentheses (e.g. the plan \
             lacks {} or the account reached a limit). Fix that and run install again: it \
             keeps what is there and creates the rest.",
            written.join(", "),
            kind.noun(),
            kind.plan()
        ),
        401 => "Check [helpdesk.auth]: the agent's e-mail and API token (Admin Center > Apps and \
                integrations > Zendesk API), or renew the OAuth access token."
            .into(),
        403 => format!(
            "The API user must be a Zendesk admin ({}s are admin settings), an OAuth token needs \
             the `read` and `write` scopes, and the plan must include {}.",
            kind.noun(),
            kind.plan()
        ),
        404 => format!(
            "Check [helpdesk] base_url (https://<subdomain>.zendesk.com): this account does not \
             serve /api/v2/{}.",
            kind.collection()
        ),
        422 if matches!(kind, Kind::App | Kind::AppInstallation) => format!(
            "Zendesk did not accept the {}: its words are in parentheses (`install zendesk-app \
             --out FILE` writes the same package to look at).",
            kind.noun()
        ),
        422 => format!(
            "Zendesk did not accept the {}: check the conditions in [helpdesk.install] and the \
             tags in [helpdesk.tags] against Zendesk's conditions and actions reference.",
            kind.noun()
        ),
        _ => "Zendesk's own words are in parentheses.".into(),
    }
}

/// Zendesk's own words from an error body: `{"error","description","details"}` (Support API),
/// `{"errors":[{"title","detail"}]}` (Webhooks API) or `{"error":{"title","message"}}`.
fn error_detail(body: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut parts = Vec::new();
    match body.get("error") {
        Some(Value::Object(e)) => parts.extend(
            ["title", "message"]
                .iter()
                .filter_map(|k| e.get(*k))
                .map(text),
        ),
        Some(e) => parts.push(text(e)),
        None => {}
    }
    if let Some(d) = body.get("description") {
        parts.push(text(d));
    }
    if let Some(Value::Object(details)) = body.get("details") {
        for (field, list) in details {
            for d in list.as_array().into_iter().flatten() {
                let what = d.get("description").map(text).unwrap_or_else(|| text(d));
                parts.push(format!("{field}: {what}"));
            }
        }
    }
    for e in body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let line = ["code", "title", "detail"]
            .iter()
            .filter_map(|k| e.get(*k))
            .map(text)
            .collect::<Vec<_>>()
            .join(": ");
        parts.push(line);
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// A resource as found in Zendesk.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    record: Value,
}

impl Found {
    /// Whether this app installation is of the app `app_id`.
    fn of_app(&self, app_id: &str) -> bool {
        id_of(self.record.get("app_id")).as_deref() == Some(app_id)
    }

    /// Whether install made it for `connector`: the marker in its description, or for an
    /// automation (Zendesk keeps no description for one) a call to one of `webhooks`, the
    /// connector's webhooks, which carry the marker.
    fn owned(&self, kind: Kind, connector: &str, webhooks: &[String]) -> bool {
        if kind.has_description() {
            return self
                .record
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| d.contains(&marker(connector)));
        }
        webhook_calls(&self.record).any(|id| webhooks.iter().any(|w| w == id))
    }
}

/// The webhooks a trigger's or automation's `notification_webhook` actions call.
fn webhook_calls(record: &Value) -> impl Iterator<Item = &str> {
    record
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a["field"] == "notification_webhook")
        .filter_map(|a| a["value"][0].as_str())
}

/// A record's id, a string (webhooks) or a number (the rest).
fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether `found` already says everything `want` says (properties Zendesk adds are ignored).
fn same(want: &Value, found: &Value) -> bool {
    let Value::Object(want) = want else {
        return want == found;
    };
    want.iter().all(|(k, v)| {
        let f = found.get(k).unwrap_or(&Value::Null);
        match (k.as_str(), v, f) {
            ("conditions", Value::Object(_), Value::Object(_)) => ["all", "any"].iter().all(|p| {
                let empty = json!([]);
                let a = v.get(*p).filter(|x| !x.is_null()).unwrap_or(&empty);
                let b = f.get(*p).filter(|x| !x.is_null()).unwrap_or(&empty);
                a == b
            }),
            _ => v == f,
        }
    })
}

/// What a run did (or, with `--dry-run`, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deleted: usize,
    /// Resources left alone: same name, but not made by install.
    pub kept: usize,
}

/// Runs install or uninstall against one Zendesk account, writing what it does to `out`.
pub struct Installer<'a> {
    api: &'a ZendeskApi,
    connector: &'a str,
    dry_run: bool,
    out: &'a mut String,
    /// The ids of the connector's webhooks (what makes its automation its own).
    webhooks: Vec<String>,
    /// What this run wrote so far, as `created the webhook `name``, for a refusal's advice.
    written: Vec<String>,
}

const DRY_RUN_WEBHOOK_ID: &str = "<id of the new webhook>";

/// How often one create is sent at most: after a failed or timed-out one the list is read
/// again, and the create is sent again only when it did not land.
const CREATE_ATTEMPTS: u32 = 3;

/// The webhook's signing secret after an install.
#[derive(Debug)]
pub enum SigningSecret {
    /// The webhook was created in this run: its secret, to be shown once.
    Created(secrecy::SecretString),
    /// The connector's signing secrets, as set here, do not include the webhook's: its secret.
    Differs(secrecy::SecretString),
    /// The connector holds it.
    Held,
    /// The webhook existed and no signing secret is set in this environment to compare it
    /// with: it is not read, nor shown again.
    NotSet,
    /// A dry run reads no secret.
    DryRun,
}

impl<'a> Installer<'a> {
    pub fn new(
        api: &'a ZendeskApi,
        connector: &'a str,
        dry_run: bool,
        out: &'a mut String,
    ) -> Installer<'a> {
        Installer {
            api,
            connector,
            dry_run,
            out,
            webhooks: Vec::new(),
            written: Vec::new(),
        }
    }

    fn say(&mut self, line: impl AsRef<str>) {
        self.out.push_str(line.as_ref());
        self.out.push('\n');
    }

    /// One line of what happened to a resource: `created`, `updated`, `deleted` (`would create`,
    /// ... on a dry run), `unchanged` or `kept`, then why when there is more to say.
    fn report(&mut self, verb: &str, kind: Kind, name: &str, id: &str, why: &str) {
        if matches!(verb, "created" | "updated" | "deleted") && !self.dry_run {
            self.written
                .push(format!("{verb} the {} `{name}`", kind.noun()));
        }
        let verb = match (self.dry_run, verb) {
            (true, "created") => "would create",
            (true, "updated") => "would update",
            (true, "deleted") => "would delete",
            (_, v) => v,
        };
        let id = if id == DRY_RUN_WEBHOOK_ID { "new" } else { id };
        let line = format!("{verb:<9} {} `{name}` ({id}){why}", kind.noun());
        self.say(line);
    }

    fn owned(&self, found: &Found, kind: Kind) -> bool {
        found.owned(kind, self.connector, &self.webhooks)
    }

    async fn call(
        &self,
        kind: Kind,
        action: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Value, InstallError> {
        let call = match method {
            Method::GET => "install_read",
            Method::POST => "install_create",
            Method::PUT => "install_update",
            _ => "install_delete",
        };
        let resp = self
            .api
            .send_admin(call, method, path, query, body)
            .await
            .map_err(|source| InstallError::Unavailable {
                action: action.to_string(),
                source,
            })?;
        self.answer(kind, action, resp).await
    }

    /// The body of a successful answer, or the refusal with Zendesk's words and what to change.
    async fn answer(
        &self,
        kind: Kind,
        action: &str,
        resp: reqwest::Response,
    ) -> Result<Value, InstallError> {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        Err(InstallError::Refused {
            action: action.to_string(),
            status,
            detail: error_detail(&json),
            fix: fix_for(kind, status, &self.written),
        })
    }

    /// Every record of a kind (all pages).
    async fn list(&self, kind: Kind) -> Result<Vec<Found>, InstallError> {
        let (collection, key) = kind.listing();
        let path = format!("/api/v2/{collection}");
        let action = format!("listing the {}s", kind.noun());
        let mut found = Vec::new();
        let mut page = 1u32;
        let mut after: Option<String> = None;
        loop {
            let query: Vec<(String, String)> = if kind == Kind::Webhook {
                let mut q = vec![("page[size]".to_string(), "100".to_string())];
                q.extend(after.clone().map(|a| ("page[after]".to_string(), a)));
                q
            } else {
                vec![
                    ("page".to_string(), page.to_string()),
                    ("per_page".to_string(), "100".to_string()),
                ]
            };
            let body = self
                .call(kind, &action, Method::GET, &path, &query, None)
                .await?;
            let records =
                body.get(key)
                    .and_then(Value::as_array)
                    .ok_or_else(|| InstallError::Invalid {
                        action: action.clone(),
                        detail: format!("no `{key}` array"),
                    })?;
            for r in records {
                let Some(id) = id_of(r.get("id")) else {
                    continue;
                };
                found.push(Found {
                    id,
                    record: r.clone(),
                });
            }
            if kind == Kind::Webhook {
                let more = body
                    .pointer("/meta/has_more")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                after = body
                    .pointer("/meta/after_cursor")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if !more || after.is_none() {
                    break;
                }
            } else {
                if body.get("next_page").is_none_or(Value::is_null) || records.is_empty() {
                    break;
                }
                page += 1;
            }
        }
        Ok(found)
    }

    fn named<'f>(kind: Kind, name: &str, all: &'f [Found]) -> Vec<&'f Found> {
        all.iter()
            .filter(|f| f.record.get(kind.name_key()).and_then(Value::as_str) == Some(name))
            .collect()
    }

    async fn write(
        &mut self,
        kind: Kind,
        method: Method,
        path: String,
        name: &str,
        body: Option<Value>,
    ) -> Result<Value, InstallError> {
        if self.dry_run {
            let mut line = format!("would send: {method} {path}");
            if let Some(b) = &body {
                let _ = write!(
                    line,
                    "\n{}",
                    serde_json::to_string_pretty(b).unwrap_or_default()
                );
            }
            self.say(line);
            return Ok(Value::Null);
        }
        let action = format!(
            "{} the {} `{name}`",
            match method {
                Method::POST => "creating",
                Method::PUT => "updating",
                _ => "deleting",
            },
            kind.noun()
        );
        self.call(kind, &action, method, &path, &[], body.as_ref())
            .await
    }

    /// Why `want` cannot be installed next to what exists: a resource of its name that install
    /// did not make (for the user field: one that is not a checkbox).
    fn conflict(&self, want: &Resource, existing: &[Found]) -> Option<InstallError> {
        let kind = want.kind;
        let named = Self::named(kind, &want.name, existing);
        if named.iter().any(|f| self.owned(f, kind)) {
            return None;
        }
        let first = named.first()?;
        if kind == Kind::UserField {
            let ty = first.record.get("type").and_then(Value::as_str);
            return (ty != Some("checkbox")).then(|| {
                InstallError::Conflict(format!(
                    "the user field `{}` exists with type {}; the survey's opt-out needs a \
                     checkbox: change [survey] opt_out_field or the field",
                    want.name,
                    ty.unwrap_or("unknown")
                ))
            });
        }
        Some(InstallError::Conflict(format!(
            "a {} named `{}` ({}) exists but was not made by escalation-gate install: rename or \
             delete it, then run install again",
            kind.noun(),
            want.name,
            first.id
        )))
    }

    /// Creates `want`. A create that failed or timed out may still have landed: the list is
    /// read again, and the create is sent again only when it is not there.
    async fn create(
        &mut self,
        want: &Resource,
        summary: &mut Summary,
    ) -> Result<String, InstallError> {
        let kind = want.kind;
        let path = format!("/api/v2/{}", kind.collection());
        let action = format!("creating the {} `{}`", kind.noun(), want.name);
        let wrapped = json!({ kind.wrapper(): want.body });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = self
                .write(
                    kind,
                    Method::POST,
                    path.clone(),
                    &want.name,
                    Some(wrapped.clone()),
                )
                .await;
            let lost = match answer {
                Ok(body) => match id_of(body.pointer(&format!("/{}/id", kind.wrapper()))) {
                    Some(id) => {
                        summary.created += 1;
                        self.report("created", kind, &want.name, &id, "");
                        return Ok(id);
                    }
                    None if self.dry_run => {
                        summary.created += 1;
                        self.report("created", kind, &want.name, DRY_RUN_WEBHOOK_ID, "");
                        return Ok(DRY_RUN_WEBHOOK_ID.to_string());
                    }
                    None => InstallError::Invalid {
                        action: action.clone(),
                        detail: "no id in the answer".into(),
                    },
                },
                Err(e @ InstallError::Unavailable { .. }) => e,
                Err(e) => return Err(e),
            };
            let found = self.list(kind).await?;
            let landed = Self::named(kind, &want.name, &found)
                .into_iter()
                .find(|f| self.owned(f, kind))
                .map(|f| f.id.clone());
            if let Some(id) = landed {
                summary.created += 1;
                self.report(
                    "created",
                    kind,
                    &want.name,
                    &id,
                    ": its answer was lost; found on reading the list again",
                );
                return Ok(id);
            }
            if attempt >= CREATE_ATTEMPTS {
                return Err(lost);
            }
            let wait = match &lost {
                InstallError::Unavailable { source, .. } => source.retry_after(),
                _ => None,
            };
            tokio::time::sleep(wait.unwrap_or(std::time::Duration::from_secs(attempt.into())))
                .await;
        }
    }

    /// Creates `want` or brings the one found up to date; returns its id. Of several copies
    /// install made, the first in `prefer` is kept (the webhook the rules call), else the
    /// first; the ids of the others are returned for the caller to delete.
    async fn reconcile(
        &mut self,
        want: &Resource,
        existing: &[Found],
        prefer: &[String],
        summary: &mut Summary,
    ) -> Result<(String, Vec<String>), InstallError> {
        let kind = want.kind;
        let named = Self::named(kind, &want.name, existing);
        let (mut mine, theirs): (Vec<&Found>, Vec<&Found>) =
            named.into_iter().partition(|f| self.owned(f, kind));
        if let Some(e) = self.conflict(want, existing) {
            return Err(e);
        }
        if mine.is_empty()
            && let Some(first) = theirs.first()
        {
            // Only a user field gets here (see `conflict`): the admin's own opt-out field.
            summary.kept += 1;
            self.report(
                "kept",
                kind,
                &want.name,
                &first.id,
                ": made by an admin, used as it is",
            );
            return Ok((first.id.clone(), Vec::new()));
        }
        for other in &theirs {
            summary.kept += 1;
            self.report(
                "kept",
                kind,
                &want.name,
                &other.id,
                ": same name, not made by escalation-gate install",
            );
        }
        mine.sort_by_key(|f| !prefer.contains(&f.id));
        let Some((keep, extra)) = mine.split_first() else {
            return Ok((self.create(want, summary).await?, Vec::new()));
        };
        if same(&want.body, &keep.record) {
            summary.unchanged += 1;
            self.report("unchanged", kind, &want.name, &keep.id, "");
        } else {
            self.write(
                kind,
                Method::PUT,
                format!("/api/v2/{}/{}", kind.collection(), keep.id),
                &want.name,
                Some(json!({ kind.wrapper(): want.body })),
            )
            .await?;
            summary.updated += 1;
            self.report("updated", kind, &want.name, &keep.id, "");
        }
        Ok((
            keep.id.clone(),
            extra.iter().map(|f| f.id.clone()).collect(),
        ))
    }

    /// Deletes the extra copies of a resource install made more than once.
    async fn delete_copies(
        &mut self,
        kind: Kind,
        name: &str,
        ids: &[String],
        summary: &mut Summary,
    ) -> Result<(), InstallError> {
        for id in ids {
            self.delete(kind, name, id, ": a duplicate", summary)
                .await?;
        }
        Ok(())
    }

    /// Creates or updates everything `setup` asks for, and says where the webhook's signing
    /// secret stands against `known_secrets` (the connector's, as set in this environment;
    /// [`UNSET_SECRET`] stands for one that is not).
    pub async fn install(
        &mut self,
        setup: &Setup,
        known_secrets: &[secrecy::SecretString],
    ) -> Result<(Summary, SigningSecret), InstallError> {
        use secrecy::ExposeSecret;
        let mut summary = Summary::default();
        let webhook = setup.webhook();
        // Everything is read and checked before anything is written.
        let planned = setup.resources(DRY_RUN_WEBHOOK_ID);
        let mut existing = Vec::new();
        for kind in [
            Kind::Webhook,
            Kind::UserField,
            Kind::Trigger,
            Kind::Automation,
            Kind::Macro,
        ] {
            if kind == Kind::Webhook || planned.iter().any(|r| r.kind == kind) {
                existing.push((kind, self.list(kind).await?));
            }
        }
        let of = |kind: Kind| -> &[Found] {
            existing
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(&[], |(_, found)| found.as_slice())
        };
        self.webhooks = Self::named(Kind::Webhook, &webhook.name, of(Kind::Webhook))
            .into_iter()
            .filter(|f| self.owned(f, Kind::Webhook))
            .map(|f| f.id.clone())
            .collect();
        if let Some(e) = std::iter::once(&webhook)
            .chain(&planned)
            .find_map(|r| self.conflict(r, of(r.kind)))
        {
            return Err(e);
        }
        // The webhook the connector's rules call is the one to keep (its secret was shown).
        let mut called = Vec::new();
        for r in planned
            .iter()
            .filter(|r| matches!(r.kind, Kind::Trigger | Kind::Automation))
        {
            for f in Self::named(r.kind, &r.name, of(r.kind)) {
                if self.owned(f, r.kind) {
                    called.extend(webhook_calls(&f.record).map(str::to_string));
                }
            }
        }
        let created_before = summary.created;
        let (webhook_id, orphans) = self
            .reconcile(&webhook, of(Kind::Webhook), &called, &mut summary)
            .await?;
        let webhook_created = summary.created > created_before;
        if !self.webhooks.contains(&webhook_id) {
            self.webhooks.push(webhook_id.clone());
        }
        for r in &setup.resources(&webhook_id) {
            let (_, copies) = self.reconcile(r, of(r.kind), &[], &mut summary).await?;
            self.delete_copies(r.kind, &r.name, &copies, &mut summary)
                .await?;
        }
        // Other copies of the webhook go last, once no rule calls them.
        self.delete_copies(Kind::Webhook, &webhook.name, &orphans, &mut summary)
            .await?;
        if self.dry_run {
            return Ok((summary, SigningSecret::DryRun));
        }
        let known: Vec<&str> = known_secrets
            .iter()
            .map(|s| s.expose_secret())
            .filter(|s| *s != UNSET_SECRET)
            .collect();
        if !webhook_created && known.is_empty() {
            return Ok((summary, SigningSecret::NotSet));
        }
        let body = self
            .call(
                Kind::Webhook,
                "reading the webhook's signing secret",
                Method::GET,
                &format!("/api/v2/webhooks/{webhook_id}/signing_secret"),
                &[],
                None,
            )
            .await?;
        let secret = body
            .pointer("/signing_secret/secret")
            .and_then(Value::as_str)
            .ok_or_else(|| InstallError::Invalid {
                action: "reading the webhook's signing secret".into(),
                detail: "no `signing_secret.secret`".into(),
            })?;
        // A secret the connector already holds is not shown, even for a webhook created now
        // (the sandbox hands out the secret its connector file references).
        let state = if known.iter().any(|k| k.as_bytes() == secret.as_bytes()) {
            SigningSecret::Held
        } else if webhook_created {
            SigningSecret::Created(secret.to_string().into())
        } else {
            SigningSecret::Differs(secret.to_string().into())
        };
        Ok((summary, state))
    }

    /// Deletes the `kind` named `name` whose id is `id`, and counts and reports it (`why`
    /// after the report's name, as `: a duplicate`).
    async fn delete(
        &mut self,
        kind: Kind,
        name: &str,
        id: &str,
        why: &str,
        summary: &mut Summary,
    ) -> Result<(), InstallError> {
        self.write(
            kind,
            Method::DELETE,
            format!("/api/v2/{}/{id}", kind.collection()),
            name,
            None,
        )
        .await?;
        summary.deleted += 1;
        self.report("deleted", kind, name, id, why);
        Ok(())
    }

    /// Deletes what install made for this connector: the sidebar app of `--app` (named
    /// `app`), then the triggers and automation (they call the webhook), the webhook last. The
    /// opt-out user field (`opt_out_field`) only when given: it holds people's opt-outs.
    pub async fn uninstall(
        &mut self,
        app: &str,
        opt_out_field: Option<&str>,
    ) -> Result<Summary, InstallError> {
        let mut summary = Summary::default();
        self.uninstall_app(app, &mut summary).await?;
        let names = managed_names(self.connector, opt_out_field);
        let webhooks = self.list(Kind::Webhook).await?;
        self.webhooks = Self::named(Kind::Webhook, &webhook_name(self.connector), &webhooks)
            .into_iter()
            .filter(|f| self.owned(f, Kind::Webhook))
            .map(|f| f.id.clone())
            .collect();
        let order = [
            Kind::Trigger,
            Kind::Automation,
            Kind::Macro,
            Kind::UserField,
            Kind::Webhook,
        ];
        for kind in order {
            let wanted: Vec<&String> = names
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, n)| n)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let existing = if kind == Kind::Webhook {
                webhooks.clone()
            } else {
                self.list(kind).await?
            };
            for name in wanted {
                for f in Self::named(kind, name, &existing) {
                    if !self.owned(f, kind) {
                        summary.kept += 1;
                        self.report(
                            "kept",
                            kind,
                            name,
                            &f.id,
                            ": not made by escalation-gate install",
                        );
                        continue;
                    }
                    self.delete(kind, name, &f.id, "", &mut summary).await?;
                }
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(survey: bool) -> Setup {
        Setup {
            connector: "acme".into(),
            endpoint: "https://eg.example.com/hooks/acme".into(),
            tags: TagsFile::default(),
            trigger: conditions_from_sweep_query("tags:partner_escalated").unwrap(),
            survey: survey.then(|| SurveySetup {
                tags: SurveyTags::default(),
                conditions: Conditions {
                    all: vec![Condition::new(
                        "current_tags",
                        "includes",
                        "csat_blind_pending",
                    )],
                    any: vec![],
                },
                opt_out_field: "csat_blind_opt_out".into(),
            }),
        }
    }

    #[test]
    fn endpoints_are_https_or_loopback() {
        assert_eq!(
            endpoint("https://eg.example.com/", "acme").unwrap(),
            "https://eg.example.com/hooks/acme"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9/base", "acme").unwrap(),
            "http://127.0.0.1:9/base/hooks/acme"
        );
        assert!(endpoint("http://eg.example.com", "acme").is_err());
        assert!(endpoint("eg.example.com", "acme").is_err());
        assert!(endpoint("https://eg.example.com/?a=1", "acme").is_err());
    }

    #[test]
    fn the_trigger_skips_judged_and_reviewed_tickets() {
        let r = setup(false).resources("01WH");
        let trigger = r.iter().find(|r| r.kind == Kind::Trigger).unwrap();
        let all = &trigger.body["conditions"]["all"];
        assert_eq!(all[0]["value"], "partner_escalated");
        assert_eq!(
            all[1]["value"],
            "escalation_good escalation_bad escalation_review"
        );
        assert_eq!(trigger.body["actions"][0]["value"][0], "01WH");
        let body: Value =
            serde_json::from_str(trigger.body["actions"][0]["value"][1].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"ticket_id": "{{ticket.id}}", "event": "escalated"})
        );
        assert!(!r.iter().any(|r| r.kind == Kind::Automation));
    }

    #[test]
    fn macros_set_one_decision_and_clear_the_other() {
        let r = setup(true).resources("01WH");
        let macros: Vec<_> = r.iter().filter(|r| r.kind == Kind::Macro).collect();
        assert_eq!(macros.len(), 6);
        let tags = |m: &Resource, field: &str| -> Vec<String> {
            m.body["actions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["field"] == field)
                .flat_map(|a| a["value"].as_str().unwrap().split(' ').map(str::to_string))
                .collect()
        };
        let overturn = macros
            .iter()
            .find(|m| m.name.ends_with("the article does not answer the case"))
            .unwrap();
        assert_eq!(
            tags(overturn, "current_tags"),
            [
                "escalation_reviewed_good",
                "escalation_overturn_kb_not_applicable"
            ]
        );
        let removed = tags(overturn, "remove_tags");
        assert!(removed.contains(&"escalation_reviewed_bad".to_string()));
        assert!(!removed.contains(&"escalation_overturn_kb_not_applicable".to_string()));
        assert_eq!(removed.len(), 4);
    }

    #[test]
    fn same_ignores_what_zendesk_adds_and_empty_condition_lists() {
        let want = json!({"title": "t", "conditions": {"all": [{"field": "a"}], "any": []}});
        let found =
            json!({"id": 5, "url": "u", "title": "t", "conditions": {"all": [{"field": "a"}]}});
        assert!(same(&want, &found));
        assert!(!same(
            &want,
            &json!({"title": "t2", "conditions": {"all": [{"field": "a"}]}})
        ));
    }

    #[test]
    fn error_details_read_every_zendesk_error_shape() {
        assert_eq!(
            error_detail(
                &json!({"error": "RecordInvalid", "description": "Record validation errors",
                "details": {"base": [{"description": "Conditions: bad"}]}})
            ),
            " (RecordInvalid; Record validation errors; base: Conditions: bad)"
        );
        assert_eq!(
            error_detail(
                &json!({"errors": [{"code": "Forbidden", "title": "No access", "detail": "plan"}]})
            ),
            " (Forbidden: No access: plan)"
        );
        assert_eq!(
            error_detail(&json!({"error": {"title": "Forbidden", "message": "scope"}})),
            " (Forbidden; scope)"
        );
        assert_eq!(error_detail(&Value::Null), "");
    }
}
