//! The `[survey]` table of a connector file, and its validation (no network).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Duration;
use secrecy::SecretString;
use serde::Deserialize;

use super::answer::{About, Answer};
use super::email::{EmailSettings, Templates, TlsMode};
use super::rules::{CaseKind, Rules};
use super::token::Keys;
use super::webhooks::{WebhookSecret, WebhookTarget};
use crate::checks::typed::{self, Tagged};
use crate::checks::{Credentials, Problem, require_mapped, shared_secret, upstream_url};
use crate::checks::{is_loopback_host, within};
use crate::http::RetrySettings;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyFile {
    /// Base URL of this service as customers reach it; links point to `{public_url}/survey/...`.
    pub public_url: String,
    /// Keys that sign the links (`${ENV}` references); the first signs, all verify.
    pub link_secrets: Vec<SecretString>,
    /// The vendor's name, as the customer knows it (the e-mail and page say "{company}").
    pub company: String,
    /// Partners surveyed (as the connector names them); empty: every named partner.
    #[serde(default)]
    pub partners: Vec<String>,
    /// Which cases: `escalated` (the partner escalated to the vendor), `not_escalated` (the partner
    /// solved it alone).
    #[serde(default = "default_cases")]
    pub cases: Vec<CaseKind>,
    /// Ticket types surveyed (`question`, `incident`, ...); empty: all.
    #[serde(default)]
    pub ticket_types: Vec<String>,
    /// A customer is asked at most once in this many days.
    pub throttle_days: Option<u32>,
    pub link_valid_days: Option<u32>,
    /// An answer posted sooner after the page was shown is taken for a bot.
    pub min_seconds_on_page: Option<u64>,
    /// Partner → its own e-mail domains: never surveyed (for any partner).
    #[serde(default)]
    pub partner_domains: BTreeMap<String, Vec<String>>,
    /// A field (a name mapped in `[helpdesk.fields]`) holding the end customer's e-mail address,
    /// for cases whose requester is the partner's agent.
    pub end_customer_field: Option<String>,
    /// The customer record's field that keeps an opt-out (Zendesk: a checkbox user field key).
    pub opt_out_field: Option<String>,
    #[serde(default)]
    pub tags: SurveyTags,
    #[serde(deserialize_with = "typed::tagged")]
    pub delivery: DeliveryFile,
    #[serde(deserialize_with = "typed::tagged")]
    pub sink: SinkFile,
}

fn default_cases() -> Vec<CaseKind> {
    vec![CaseKind::Escalated, CaseKind::NotEscalated]
}

/// Tags the ticket carries; the ticket is the survey's state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveyTags {
    /// Added when an escalation is judged: the case is to be surveyed once solved.
    pub pending: String,
    /// Set while the survey goes out (a claim against a concurrent delivery).
    pub sending: String,
    pub sent: String,
    /// `{skipped}` plus `{skipped}_{reason}`.
    pub skipped: String,
    pub answered: String,
    /// `{score_prefix}{1..5}` (ticket sink only).
    pub score_prefix: String,
    /// `{ces_prefix}{1..7}` (ticket sink only).
    pub ces_prefix: String,
    /// `{about_prefix}product`, `_support` or `_both` (ticket sink only).
    pub about_prefix: String,
}

impl Default for SurveyTags {
    fn default() -> Self {
        SurveyTags {
            pending: "csat_blind_pending".into(),
            sending: "csat_blind_sending".into(),
            sent: "csat_blind_sent".into(),
            skipped: "csat_blind_skipped".into(),
            answered: "csat_blind_answered".into(),
            score_prefix: "csat_blind_score_".into(),
            ces_prefix: "csat_blind_ces_".into(),
            about_prefix: "csat_blind_about_".into(),
        }
    }
}

impl SurveyTags {
    /// The tag that records which answer a ticket holds: `{answered}_{answer id}`.
    pub fn answer_tag(&self, answer_id: &str) -> String {
        format!("{}_{answer_id}", self.answered)
    }

    /// The answer tags among `tags` other than `keep`, to be removed when a new answer lands.
    pub fn other_answer_tags(&self, tags: &[String], keep: &str) -> Vec<String> {
        let prefix = format!("{}_", self.answered);
        tags.iter()
            .filter(|t| t.starts_with(&prefix) && *t != keep)
            .cloned()
            .collect()
    }

    /// The tags an answer adds to a ticket (answered, its answer tag, its scores and what the
    /// rating is about, so reports read them without fields) and the ones it takes off a ticket
    /// tagged `current` (an earlier answer's: a later answer replaces them).
    pub fn answer_tags(
        &self,
        answer: &Answer,
        answer_id: &str,
        current: &[String],
    ) -> (Vec<String>, Vec<String>) {
        let score_tag = |s: u8| format!("{}{s}", self.score_prefix);
        let ces_tag = |s: u8| format!("{}{s}", self.ces_prefix);
        let about_tag = |a: About| format!("{}{}", self.about_prefix, a.as_str());
        let answer_tag = self.answer_tag(answer_id);
        let mut add = vec![
            self.answered.clone(),
            score_tag(answer.csat),
            answer_tag.clone(),
        ];
        add.extend(answer.ces.map(ces_tag));
        add.extend(answer.about.map(about_tag));
        let mut remove: Vec<String> = (1..=5).map(score_tag).collect();
        remove.extend((1..=7).map(ces_tag));
        remove.extend([About::Product, About::Support, About::Both].map(about_tag));
        remove.extend(self.other_answer_tags(current, &answer_tag));
        remove.retain(|r| !add.contains(r));
        (add, remove)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DeliveryFile {
    /// An e-mail from the vendor over SMTP.
    Email {
        /// `Name <address>`.
        from: String,
        reply_to: Option<String>,
        smtp_host: String,
        smtp_port: Option<u16>,
        /// `starttls` (default, port 587), `tls` (port 465) or `none` (a local relay only).
        #[serde(default)]
        tls: TlsMode,
        /// PEM file (relative to the connectors folder) of root certificates to trust for the
        /// mail server besides the public ones: a relay whose certificate a private CA signed.
        ca_file: Option<String>,
        username: Option<String>,
        password: Option<SecretString>,
        timeout_secs: Option<u64>,
        /// Folder (relative to the connectors folder) with `{locale}.subject.txt`,
        /// `{locale}.txt` and `{locale}.html` overriding the built-in wording.
        templates: Option<String>,
    },
    /// A Standard Webhooks-signed POST to the team's own survey tool.
    Webhook {
        url: String,
        /// `whsec_...` (`${ENV}` reference).
        secret: SecretString,
    },
}

impl Tagged for DeliveryFile {
    const TAG: &'static str = "kind";
}

impl Tagged for SinkFile {
    const TAG: &'static str = "kind";
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkFile {
    /// An internal note plus fields and tags on the ticket.
    Ticket {
        /// Names mapped in `[helpdesk.fields]` that receive the scores.
        csat_field: Option<String>,
        ces_field: Option<String>,
        about_field: Option<String>,
        /// A text field that receives the customer's comment (reports quote it).
        comment_field: Option<String>,
    },
    /// A Standard Webhooks-signed POST to a vendor-only system (partners never see the answer).
    Webhook { url: String, secret: SecretString },
}

/// A validated `[survey]` table.
#[derive(Debug)]
pub struct SurveySettings {
    pub public_url: reqwest::Url,
    pub keys: Keys,
    pub company: String,
    pub rules: Rules,
    pub link_valid: Duration,
    pub min_on_page: Duration,
    pub fields: SurveyFields,
    /// Always set after validation; taken when the survey is built.
    pub delivery: Option<Delivery>,
    pub sink: Sink,
    pub retry: RetrySettings,
}

/// What the helpdesk side needs to know to read and write survey data: names, not ids.
#[derive(Debug, Clone, Default)]
pub struct SurveyFields {
    pub end_customer: Option<String>,
    /// The customer record's opt-out field; `None`: the helpdesk's default (Zendesk and
    /// Freshdesk: [`DEFAULT_OPT_OUT_FIELD`], Salesforce: the Contact's `HasOptedOutOfEmail`).
    pub opt_out: Option<String>,
    pub csat: Option<String>,
    pub ces: Option<String>,
    pub about: Option<String>,
    pub comment: Option<String>,
    pub tags: SurveyTags,
}

impl SurveyFields {
    /// The customer record's opt-out field: `opt_out`, else [`DEFAULT_OPT_OUT_FIELD`] (the default
    /// of Zendesk's user field and Freshdesk's contact field; Salesforce has its own).
    pub fn opt_out_field(&self) -> &str {
        self.opt_out.as_deref().unwrap_or(DEFAULT_OPT_OUT_FIELD)
    }

    /// The end customer's address from the configured hand-off field, if the case has one.
    pub fn end_customer_of(&self, esc: &crate::escalation::Escalation) -> Option<String> {
        self.end_customer
            .as_ref()
            .and_then(|n| esc.handoff.get(n))
            .cloned()
    }
}

#[derive(Debug)]
pub enum Delivery {
    Email(EmailSettings),
    Webhook(WebhookTarget),
}

#[derive(Debug)]
pub enum Sink {
    Ticket,
    Webhook(WebhookTarget),
}

pub const DEFAULT_THROTTLE_DAYS: u32 = 30;
pub const DEFAULT_LINK_VALID_DAYS: u32 = 30;
pub const DEFAULT_MIN_SECONDS_ON_PAGE: u64 = 3;
/// Zendesk's default opt-out user field.
pub const DEFAULT_OPT_OUT_FIELD: &str = "csat_blind_opt_out";

impl SurveyFile {
    /// `known_fields` are the names `[helpdesk.fields]` maps; `base` resolves template folders.
    pub fn validate(
        self,
        known_fields: &[String],
        base: &Path,
        problems: &mut Vec<Problem>,
    ) -> Option<SurveySettings> {
        let start = problems.len();
        let key = |k: &str| format!("survey.{k}");
        let public_url = upstream_url(
            key("public_url"),
            &self.public_url,
            Credentials::None("the survey links carry their own sealed token"),
            problems,
        );
        if self.link_secrets.is_empty() {
            problems.push(Problem::new(
                key("link_secrets"),
                "at least one key is needed to sign the survey links",
            ));
        }
        for (i, k) in self.link_secrets.iter().enumerate() {
            shared_secret(key(&format!("link_secrets[{i}]")), k, problems);
        }
        if self.company.trim().is_empty() {
            problems.push(Problem::new(key("company"), "must not be empty"));
        }
        if self.cases.is_empty() {
            problems.push(Problem::new(
                key("cases"),
                "name at least one of `escalated`, `not_escalated`",
            ));
        }
        let throttle = within(
            key("throttle_days"),
            self.throttle_days.unwrap_or(DEFAULT_THROTTLE_DAYS),
            0..=3650,
            problems,
        );
        let valid = within(
            key("link_valid_days"),
            self.link_valid_days.unwrap_or(DEFAULT_LINK_VALID_DAYS),
            1..=365,
            problems,
        );
        let min_on_page = within(
            key("min_seconds_on_page"),
            self.min_seconds_on_page
                .unwrap_or(DEFAULT_MIN_SECONDS_ON_PAGE),
            0..=600,
            problems,
        );
        let mut domains = Vec::new();
        for (partner, list) in &self.partner_domains {
            for (i, d) in list.iter().enumerate() {
                let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
                if d.is_empty() || !d.contains('.') || d.contains(['@', ' ', '/']) {
                    problems.push(Problem::new(
                        format!("survey.partner_domains.{partner}[{i}]"),
                        format!("`{d}` is not a domain such as `partner.example`"),
                    ));
                }
                domains.push(d);
            }
        }
        let mapped = |k: &str, v: &Option<String>, problems: &mut Vec<Problem>| {
            require_mapped(key(k), v.as_deref(), known_fields, problems)
        };
        mapped("end_customer_field", &self.end_customer_field, problems);
        let tags = &self.tags;
        for (k, v) in [
            ("tags.pending", &tags.pending),
            ("tags.sending", &tags.sending),
            ("tags.sent", &tags.sent),
            ("tags.skipped", &tags.skipped),
            ("tags.answered", &tags.answered),
            ("tags.score_prefix", &tags.score_prefix),
        ] {
            if v.is_empty() || v.contains(char::is_whitespace) {
                problems.push(Problem::new(
                    key(k),
                    "a tag must be non-empty and contain no spaces",
                ));
            }
        }
        let delivery = match self.delivery {
            DeliveryFile::Email {
                from,
                reply_to,
                smtp_host,
                smtp_port,
                tls,
                ca_file,
                username,
                password,
                timeout_secs,
                templates,
            } => {
                let mailbox = |k: &str, v: &str, problems: &mut Vec<Problem>| match v.parse() {
                    Ok(m) => Some(m),
                    Err(_) => {
                        problems.push(Problem::new(
                            format!("survey.delivery.{k}"),
                            format!("`{v}` is not an address like `Name <survey@vendor.example>`"),
                        ));
                        None
                    }
                };
                let from = mailbox("from", &from, problems);
                let reply_to = reply_to.and_then(|r| mailbox("reply_to", &r, problems));
                if smtp_host.trim().is_empty() {
                    problems.push(Problem::new(
                        "survey.delivery.smtp_host",
                        "must not be empty",
                    ));
                } else if tls == TlsMode::None && !is_loopback_host(smtp_host.trim()) {
                    problems.push(Problem::new(
                        "survey.delivery.tls",
                        "`none` would send the mail and the SMTP password in clear text: it is \
                         accepted only for a relay on loopback (127.0.0.0/8, ::1, localhost); \
                         use `starttls` or `tls`",
                    ));
                }
                let credentials = match (username, password) {
                    (Some(u), Some(p)) => Some((u, p)),
                    (None, None) => None,
                    _ => {
                        problems.push(Problem::new(
                            "survey.delivery.password",
                            "give both `username` and `password`, or neither",
                        ));
                        None
                    }
                };
                let ca_pem = ca_file.and_then(|f| match read_ca_file(&base.join(&f), tls) {
                    Ok(pem) => Some(pem),
                    Err(e) => {
                        problems.push(Problem::new("survey.delivery.ca_file", e));
                        None
                    }
                });
                let timeout = within(
                    "survey.delivery.timeout_secs".into(),
                    timeout_secs.unwrap_or(10),
                    1..=60,
                    problems,
                );
                let templates = match templates {
                    None => Templates::builtin(),
                    Some(dir) => Templates::load(&base.join(&dir))
                        .map_err(|e| {
                            problems.push(Problem::new("survey.delivery.templates", e));
                        })
                        .unwrap_or_else(|_| Templates::builtin()),
                };
                from.map(|from| {
                    Delivery::Email(EmailSettings {
                        from,
                        reply_to,
                        host: smtp_host,
                        port: smtp_port.unwrap_or(match tls {
                            TlsMode::Starttls => 587,
                            TlsMode::Tls => 465,
                            TlsMode::None => 25,
                        }),
                        tls,
                        ca_pem,
                        credentials,
                        timeout: std::time::Duration::from_secs(timeout),
                        templates,
                    })
                })
            }
            DeliveryFile::Webhook { url, secret } => {
                webhook_target("survey.delivery", &url, secret, problems).map(Delivery::Webhook)
            }
        };
        let (sink, csat, ces, about, comment) = match self.sink {
            SinkFile::Ticket {
                csat_field,
                ces_field,
                about_field,
                comment_field,
            } => {
                mapped("sink.csat_field", &csat_field, problems);
                mapped("sink.ces_field", &ces_field, problems);
                mapped("sink.about_field", &about_field, problems);
                mapped("sink.comment_field", &comment_field, problems);
                (
                    Some(Sink::Ticket),
                    csat_field,
                    ces_field,
                    about_field,
                    comment_field,
                )
            }
            SinkFile::Webhook { url, secret } => (
                webhook_target("survey.sink", &url, secret, problems).map(Sink::Webhook),
                None,
                None,
                None,
                None,
            ),
        };
        if problems.len() != start {
            return None;
        }
        Some(SurveySettings {
            public_url: public_url?,
            keys: Keys::new(self.link_secrets),
            company: self.company.trim().to_string(),
            rules: Rules {
                partners: self.partners,
                cases: self.cases,
                ticket_types: self
                    .ticket_types
                    .iter()
                    .map(|t| t.to_ascii_lowercase())
                    .collect(),
                throttle_days: throttle,
                partner_domains: domains,
            },
            link_valid: Duration::days(valid as i64),
            min_on_page: Duration::seconds(min_on_page as i64),
            fields: SurveyFields {
                end_customer: self.end_customer_field,
                opt_out: self.opt_out_field,
                csat,
                ces,
                about,
                comment,
                tags: self.tags,
            },
            delivery: Some(delivery?),
            sink: sink?,
            retry: RetrySettings::from_file(Some(5), Some(2), Some(3), "survey", problems),
        })
    }
}

fn webhook_target(
    key: &str,
    url: &str,
    secret: SecretString,
    problems: &mut Vec<Problem>,
) -> Option<WebhookTarget> {
    let url = upstream_url(
        format!("{key}.url"),
        url,
        Credentials::None(
            "the receiver checks the message's Standard Webhooks signature (`secret`)",
        ),
        problems,
    );
    let secret = match WebhookSecret::parse(&secret) {
        Ok(s) => Some(s),
        Err(e) => {
            problems.push(Problem::new(format!("{key}.secret"), e));
            None
        }
    };
    Some(WebhookTarget {
        url: url?,
        secret: secret?,
    })
}

/// Reads a `ca_file`: it must hold at least one PEM certificate, for a mode that uses TLS.
fn read_ca_file(path: &std::path::Path, tls: TlsMode) -> Result<Vec<u8>, String> {
    if tls == TlsMode::None {
        return Err(
            "needs `tls = \"starttls\"` or `tls = \"tls\"`: with `none` nothing is verified".into(),
        );
    }
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let has_certificate = String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----");
    if !has_certificate || lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
        return Err(format!(
            "{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    Ok(pem)
}
