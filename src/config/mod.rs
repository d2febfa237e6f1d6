//! Connector files: `connectors/*.toml`, one connector each, named by the file. Loading is pure
//! (no network): read, expand `${VAR}`, type, validate, and report every problem found.

pub mod connector_id;
pub mod contracts;
pub mod precheck;
pub mod vars;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::Duration;
use regex::Regex;
use serde::Deserialize;

use crate::assess::Policy;
use crate::assess::handoff::{FieldRule, HandoffRules, Override, Rule, Scope};
use crate::assess::kb::rescore::DEFAULT_REVIEW_BOUND;
use crate::assess::kb::weights_file::{WeightsFile, judge_settings};
use crate::assess::kb::{DEFAULT_GAP_BELOW, DEFAULT_LOCALE, DEFAULT_MAX_CANDIDATES, KbSettings};
use crate::checks::typed;
use crate::checks::{Credentials, Problem, upstream_url, within};
use crate::helpdesk::registry::{HelpdeskConfig, ValidHelpdesk};
use crate::http::RetrySettings;
use crate::kb::{HttpKbSettings, KbBackend, MirrorSettings, Pointers};
pub use connector_id::ConnectorId;
use secrecy::{ExposeSecret, SecretString};
pub use vars::Env;

/// One problem in one connector file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key path, or empty when the problem is the file as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

/// The connector file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorFile {
    #[serde(deserialize_with = "typed::tagged")]
    pub helpdesk: HelpdeskConfig,
    #[serde(default)]
    pub handoff: HandoffFile,
    pub knowledge_base: KnowledgeBaseFile,
    #[serde(default)]
    pub verdict: VerdictFile,
    /// The blind CSAT survey; absent: no survey.
    pub survey: Option<crate::survey::config::SurveyFile>,
    /// The sweep for escalations whose webhook never arrived; absent: no sweep.
    pub sweep: Option<SweepFile>,
    /// What the metrics label; absent: partners named elsewhere in the file only.
    pub metrics: Option<MetricsFile>,
    /// The contract terms `report` measures partners against; absent: the defaults.
    pub report: Option<crate::config::contracts::ReportFile>,
    /// The check of a draft escalation before it is sent; absent: no such endpoint.
    pub precheck: Option<precheck::PrecheckFile>,
}

/// `[metrics]`: `partners` are the partner names that get their own `partner` label (others
/// count as `other`, so a free-text field cannot create series without end).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    #[serde(default)]
    pub partners: Vec<String>,
}

/// `[sweep]`: every `every_minutes`, ask the helpdesk for escalated tickets changed in the last
/// `lookback_hours` that carry no verdict, and judge them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub every_minutes: Option<u64>,
    pub lookback_hours: Option<u64>,
    /// The search terms that find escalated tickets, for a helpdesk whose tickets role takes
    /// them (see `helpdesk::SearchTerms`).
    pub query: Option<String>,
}

/// A validated `[sweep]`.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    pub every: std::time::Duration,
    pub lookback: Duration,
    pub query: Option<String>,
}

pub const DEFAULT_SWEEP_EVERY_MINUTES: u64 = 15;
pub const DEFAULT_SWEEP_LOOKBACK_HOURS: u64 = 24;

impl SweepFile {
    fn validate(
        self,
        helpdesk: &ValidHelpdesk,
        problems: &mut Vec<Problem>,
    ) -> Option<SweepSettings> {
        let start = problems.len();
        let every = within(
            "sweep.every_minutes".into(),
            self.every_minutes.unwrap_or(DEFAULT_SWEEP_EVERY_MINUTES),
            1..=1440,
            problems,
        );
        let lookback = within(
            "sweep.lookback_hours".into(),
            self.lookback_hours.unwrap_or(DEFAULT_SWEEP_LOOKBACK_HOURS),
            1..=720,
            problems,
        );
        if let Err(e) = helpdesk.can_sweep(self.query.as_deref()) {
            problems.push(e);
        }
        (problems.len() == start).then(|| SweepSettings {
            every: std::time::Duration::from_secs(every * 60),
            lookback: Duration::hours(lookback as i64),
            query: self.query.map(|q| q.trim().to_string()),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffFile {
    #[serde(default)]
    pub rules: Vec<RuleFile>,
    #[serde(default)]
    pub overrides: Vec<OverrideFile>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Present,
    MinLength,
    OneOf,
    Regex,
    /// Only in overrides: the field is not required for this partner or product.
    Optional,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub field: String,
    pub rule: RuleKind,
    pub min: Option<usize>,
    pub values: Option<Vec<String>>,
    pub pattern: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideFile {
    pub partner: Option<String>,
    pub product: Option<String>,
    pub rules: Vec<RuleFile>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KbBackendFile {
    /// Markdown articles in the folder `path`, relative to the connectors folder.
    Local,
    /// The helpdesk's own knowledge base (its knowledge-base role).
    Helpdesk,
    /// Any HTTP search API answering JSON, described in `[knowledge_base.http]`.
    Http,
    /// A local mirror of the helpdesk's own knowledge base, synced as `[knowledge_base.mirror]`
    /// says; the helpdesk's search serves until the first sync completes.
    Mirror,
}

/// `[knowledge_base.mirror]`: how often the mirror is synced.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorFile {
    /// Minutes between two syncs (default 15).
    pub every_minutes: Option<u64>,
    /// Hours between two full syncs, which also see deleted and archived articles where the
    /// helpdesk lists only changes (default 24).
    pub full_every_hours: Option<u64>,
    /// Minutes without a successful sync after which `/healthz` says `stale` (default 4 times
    /// `every_minutes`, at least 60).
    pub stale_after_minutes: Option<u64>,
    /// Days an archived or deleted article is kept, for escalations judged as of a time before
    /// (default 400: `backfill` of the last year and a quarter).
    pub history_days: Option<u64>,
}

pub const DEFAULT_MIRROR_EVERY_MINUTES: u64 = 15;
pub const DEFAULT_MIRROR_FULL_EVERY_HOURS: u64 = 24;
pub const DEFAULT_MIRROR_HISTORY_DAYS: u64 = 400;

impl MirrorFile {
    fn validate(&self, problems: &mut Vec<Problem>) -> MirrorSettings {
        let mut ranged = |k: &str, v: u64, range: std::ops::RangeInclusive<u64>| {
            within(format!("knowledge_base.mirror.{k}"), v, range, problems)
        };
        let every = ranged(
            "every_minutes",
            self.every_minutes.unwrap_or(DEFAULT_MIRROR_EVERY_MINUTES),
            1..=1440,
        );
        let full = ranged(
            "full_every_hours",
            self.full_every_hours
                .unwrap_or(DEFAULT_MIRROR_FULL_EVERY_HOURS),
            1..=720,
        );
        let stale = ranged(
            "stale_after_minutes",
            self.stale_after_minutes.unwrap_or((every * 4).max(60)),
            1..=43_200,
        );
        let history = ranged(
            "history_days",
            self.history_days.unwrap_or(DEFAULT_MIRROR_HISTORY_DAYS),
            0..=3650,
        );
        MirrorSettings {
            every: std::time::Duration::from_secs(every * 60),
            full_every: std::time::Duration::from_secs(full * 3600),
            stale_after: std::time::Duration::from_secs(stale * 60),
            history: std::time::Duration::from_secs(history * 86_400),
        }
    }
}

/// `[knowledge_base.http]`: a search API that answers JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpKbFile {
    /// The search endpoint; called with GET.
    pub url: String,
    /// Query-string names of the search text (default `q`), the locale and the limit (neither
    /// sent when absent).
    pub query_param: Option<String>,
    pub locale_param: Option<String>,
    pub limit_param: Option<String>,
    /// A header carrying `auth_scheme` (if any) and `auth_token` (`${ENV}`), e.g.
    /// `Authorization: Bearer …`.
    pub auth_header: Option<String>,
    pub auth_scheme: Option<String>,
    pub auth_token: Option<SecretString>,
    /// JSON pointer to the results array (default `/results`; `""`: the answer is the array).
    pub results: Option<String>,
    pub fields: Pointers,
    pub timeout_secs: Option<u64>,
    pub max_retries: Option<u32>,
    pub max_retry_wait_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeBaseFile {
    pub backend: KbBackendFile,
    pub path: Option<PathBuf>,
    pub http: Option<HttpKbFile>,
    pub mirror: Option<MirrorFile>,
    pub threshold: Option<f64>,
    pub review_bound: Option<f64>,
    pub gap_below: Option<f64>,
    pub max_candidates: Option<usize>,
    pub default_locale: Option<String>,
    /// A vendor's calibration weights file (`calibrate --fit --out`), relative to the
    /// connectors folder.
    pub calibration: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictFile {
    pub late_after_hours: Option<i64>,
}

impl HttpKbFile {
    fn validate(
        &self,
        default_locale: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<HttpKbSettings> {
        let start = problems.len();
        let key = |k: &str| format!("knowledge_base.http.{k}");
        let url = upstream_url(
            key("url"),
            &self.url,
            Credentials::Key("knowledge_base.http.auth_token"),
            problems,
        );
        let auth = match (&self.auth_header, &self.auth_token) {
            (Some(name), Some(token)) => {
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    problems.push(Problem::new(
                        key("auth_header"),
                        format!("`{name}` is not a header name"),
                    ));
                }
                let value = match &self.auth_scheme {
                    Some(scheme) => format!("{scheme} {}", token.expose_secret()),
                    None => token.expose_secret().to_string(),
                };
                Some((name.clone(), SecretString::from(value)))
            }
            (None, None) => None,
            _ => {
                problems.push(Problem::new(
                    key("auth_token"),
                    "give both `auth_header` and `auth_token`, or neither",
                ));
                None
            }
        };
        let results = self.results.clone().unwrap_or_else(|| "/results".into());
        let f = &self.fields;
        let mut pointer = |k: &str, p: &str| {
            if !(p.is_empty() || p.starts_with('/')) {
                problems.push(Problem::new(
                    key(k),
                    format!("`{p}` is not a JSON pointer (like `/title` or `/data/0/name`)"),
                ));
            }
        };
        pointer("results", &results);
        for (k, p) in [
            ("fields.id", Some(&f.id)),
            ("fields.title", Some(&f.title)),
            ("fields.body", Some(&f.body)),
            ("fields.url", Some(&f.url)),
            ("fields.locale", f.locale.as_ref()),
            ("fields.published_at", f.published_at.as_ref()),
            ("fields.draft", f.draft.as_ref()),
        ] {
            if let Some(p) = p {
                pointer(k, p);
            }
        }
        let retry = RetrySettings::from_file(
            self.timeout_secs,
            self.max_retries,
            self.max_retry_wait_secs,
            "knowledge_base.http",
            problems,
        );
        if problems.len() != start {
            return None;
        }
        Some(HttpKbSettings {
            url: url?,
            query_param: self.query_param.clone().unwrap_or_else(|| "q".into()),
            locale_param: self.locale_param.clone(),
            limit_param: self.limit_param.clone(),
            auth,
            results,
            fields: f.clone(),
            default_locale: default_locale.to_string(),
            retry,
        })
    }
}

/// A connector that passed validation: everything needed to build it, nothing built yet.
#[derive(Debug)]
pub struct ValidConnector {
    pub id: ConnectorId,
    pub file: PathBuf,
    pub helpdesk: ValidHelpdesk,
    pub policy: Policy,
    pub kb_backend: KbBackend,
    pub max_candidates: usize,
    pub survey: Option<crate::survey::config::SurveySettings>,
    pub sweep: Option<SweepSettings>,
    /// The partners the metrics label by name (`[metrics] partners`).
    pub metric_partners: Vec<String>,
    pub contracts: crate::config::contracts::Contracts,
    /// `POST /precheck/{connector}`, when `[precheck]` is there and enabled.
    pub precheck: Option<precheck::PrecheckSettings>,
}

pub const DEFAULT_LATE_AFTER_HOURS: i64 = 48;

/// Loads every `*.toml` directly in `dir` (sub-folders hold articles and examples and are not
/// read). Returns every problem in every file, or the connectors sorted by id.
pub fn load_dir(dir: &Path, env: Env) -> Result<Vec<ValidConnector>, Vec<ConfigError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![ConfigError {
            file: dir.to_path_buf(),
            key: String::new(),
            message: format!("cannot read the connectors folder: {e}"),
        }]
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(vec![ConfigError {
            file: dir.to_path_buf(),
            key: String::new(),
            message: "no connector files (*.toml) in this folder".into(),
        }]);
    }
    let mut connectors = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load_file(&path, env) {
            Ok(c) => connectors.push(c),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(connectors)
    } else {
        Err(errors)
    }
}

/// Loads one connector file; its id is the file name without `.toml`.
pub fn load_file(path: &Path, env: Env) -> Result<ValidConnector, Vec<ConfigError>> {
    let at = |problems: Vec<Problem>| -> Vec<ConfigError> {
        problems
            .into_iter()
            .map(|p| ConfigError {
                file: path.to_path_buf(),
                key: p.key,
                message: p.message,
            })
            .collect()
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| at(vec![Problem::new("", format!("cannot read: {e}"))]))?;
    let id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&id, &text, base, env).map_err(at).map(|mut c| {
        c.file = path.to_path_buf();
        c
    })
}

/// Parses and validates a connector's text. `base` resolves relative paths in it.
pub fn parse(id: &str, text: &str, base: &Path, env: Env) -> Result<ValidConnector, Vec<Problem>> {
    let mut problems = Vec::new();
    let id = ConnectorId::parse(id).map_err(|_| {
        problems.push(Problem::new(
            "",
            format!("the file name `{id}` must be a connector id: letters, digits, - and _ only"),
        ))
    });
    let mut table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            problems.push(typed::syntax_problem(text, &e));
            return Err(problems);
        }
    };
    let unset = vars::expand(&mut table, env);
    problems.extend(unset.iter().map(|p| Problem::new(&p.key, &p.message)));
    let (file, untyped) = match typed::typed::<ConnectorFile>(toml::Value::Table(table)) {
        Ok(f) => (f, None),
        Err(mut untyped) => {
            problems.append(&mut untyped.problems);
            match untyped.rest.take() {
                // The values that typed are checked in the same run.
                Some(rest) => (rest, Some(untyped)),
                None => return Err(problems),
            }
        }
    };
    let start = problems.len();
    let validated = validate(id, file, base, &mut problems);
    // A value whose variable is not set is empty: what is wrong with it is the variable; and
    // a value check that may only fail because an entry was set aside is not reported.
    let mut checked = problems.split_off(start);
    checked.retain(|p| {
        !unset.iter().any(|u| u.key == p.key)
            && !untyped
                .as_ref()
                .is_some_and(|u| u.may_come_from_set_aside(&p.key))
    });
    problems.extend(checked);
    match validated {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(problems),
    }
}

fn validate(
    id: Result<ConnectorId, ()>,
    file: ConnectorFile,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Option<ValidConnector> {
    let rules: Vec<FieldRule> =
        validate_rules(&file.handoff.rules, "handoff.rules", false, problems);
    let mut overrides = Vec::new();
    for (i, o) in file.handoff.overrides.iter().enumerate() {
        let key = format!("handoff.overrides[{i}]");
        let scope = match (&o.partner, &o.product) {
            (Some(p), None) => Some(Scope::Partner(p.clone())),
            (None, Some(p)) => Some(Scope::Product(p.clone())),
            _ => {
                problems.push(Problem::new(
                    &key,
                    "name exactly one of `partner` or `product`",
                ));
                None
            }
        };
        let rules = validate_rules(&o.rules, &format!("{key}.rules"), true, problems);
        if let Some(scope) = scope {
            overrides.push(Override { scope, rules });
        }
    }
    let kb = &file.knowledge_base;
    // A vendor's weights come with the threshold and review bound proposed on their confidences.
    let vendor = kb.calibration.as_ref().and_then(|path| {
        WeightsFile::read(&base.join(path), &path.display().to_string())
            .map_err(|e| problems.push(Problem::new("knowledge_base.calibration", e)))
            .ok()
    });
    let (threshold, review_bound, calibration) =
        judge_settings(vendor, kb.threshold, kb.review_bound, |t| {
            DEFAULT_REVIEW_BOUND.min(t)
        });
    let gap_below = kb.gap_below.unwrap_or(DEFAULT_GAP_BELOW);
    for (key, v) in [
        ("threshold", threshold),
        ("review_bound", review_bound),
        ("gap_below", gap_below),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            problems.push(Problem::new(
                format!("knowledge_base.{key}"),
                format!("must be above 0 and at most 1, found {v}"),
            ));
        }
    }
    if review_bound > threshold {
        problems.push(Problem::new(
            "knowledge_base.review_bound",
            format!(
                "must be at most the threshold {threshold} (equal to it: no review), found {review_bound}"
            ),
        ));
    }
    let max_candidates = within(
        "knowledge_base.max_candidates".into(),
        kb.max_candidates.unwrap_or(DEFAULT_MAX_CANDIDATES),
        1..=100,
        problems,
    );
    let default_locale = kb
        .default_locale
        .clone()
        .unwrap_or_else(|| DEFAULT_LOCALE.into())
        .to_ascii_lowercase();
    if kb.http.is_some() && kb.backend != KbBackendFile::Http {
        problems.push(Problem::new(
            "knowledge_base.http",
            "only `backend = \"http\"` reads this table; remove it",
        ));
    }
    let kb_backend = match (kb.backend, &kb.path) {
        (KbBackendFile::Http, path) => {
            if path.is_some() {
                problems.push(Problem::new(
                    "knowledge_base.path",
                    "backend `http` searches an API; remove `path`",
                ));
            }
            match &kb.http {
                Some(h) => h
                    .validate(&default_locale, problems)
                    .map(|s| KbBackend::Http(Box::new(s)))
                    .unwrap_or(KbBackend::Local(PathBuf::new())),
                None => {
                    problems.push(Problem::new(
                        "knowledge_base.http",
                        "backend `http` needs a [knowledge_base.http] table: url and fields",
                    ));
                    KbBackend::Local(PathBuf::new())
                }
            }
        }
        (KbBackendFile::Local, Some(path)) => {
            let full = base.join(path);
            if !full.is_dir() {
                problems.push(Problem::new(
                    "knowledge_base.path",
                    format!("`{}` is not a folder", full.display()),
                ));
            }
            KbBackend::Local(full)
        }
        (KbBackendFile::Local, None) => {
            problems.push(Problem::new(
                "knowledge_base.path",
                "backend `local` needs `path`, the folder of Markdown articles",
            ));
            KbBackend::Local(PathBuf::new())
        }
        (KbBackendFile::Helpdesk, Some(_)) => {
            problems.push(Problem::new(
                "knowledge_base.path",
                "backend `helpdesk` searches the helpdesk's own knowledge base; remove `path`",
            ));
            KbBackend::Helpdesk
        }
        (KbBackendFile::Helpdesk, None) => KbBackend::Helpdesk,
        (KbBackendFile::Mirror, path) => {
            if path.is_some() {
                problems.push(Problem::new(
                    "knowledge_base.path",
                    "backend `mirror` mirrors the helpdesk's own knowledge base; remove `path`",
                ));
            }
            KbBackend::Mirror(
                kb.mirror
                    .as_ref()
                    .unwrap_or(&MirrorFile::default())
                    .validate(problems),
            )
        }
    };
    if kb.mirror.is_some() && kb.backend != KbBackendFile::Mirror {
        problems.push(Problem::new(
            "knowledge_base.mirror",
            "only `backend = \"mirror\"` reads this table; remove it",
        ));
    }
    let late = file
        .verdict
        .late_after_hours
        .unwrap_or(DEFAULT_LATE_AFTER_HOURS);
    if late <= 0 {
        problems.push(Problem::new(
            "verdict.late_after_hours",
            format!("must be a positive number of hours, found {late}"),
        ));
    }
    let mut known_fields = Vec::new();
    let mut helpdesk = file
        .helpdesk
        .validate(&kb_backend, &mut known_fields, problems);
    for (key, field) in rules.iter().map(|r| ("handoff.rules", &r.field)).chain(
        overrides
            .iter()
            .flat_map(|o| o.rules.iter().map(|(f, _)| ("handoff.overrides", f))),
    ) {
        if !known_fields.contains(field) {
            problems.push(Problem::new(
                key,
                format!(
                    "field `{field}` is not mapped in [helpdesk.fields] (mapped: {})",
                    if known_fields.is_empty() {
                        "none".to_string()
                    } else {
                        known_fields.join(", ")
                    }
                ),
            ));
        }
    }
    let survey = file
        .survey
        .and_then(|s| s.validate(&known_fields, base, problems));
    if let (Some(h), Some(s)) = (&mut helpdesk, &survey) {
        h.with_survey(&s.fields, problems);
    }
    if file.report.is_some()
        && let Some(Err(why)) = helpdesk.as_ref().map(ValidHelpdesk::reads_back)
    {
        problems.push(Problem::new(
            "report",
            format!(
                "`report`, `calibrate` and `backfill` read a whole period back, and this \
                 connector's helpdesk cannot: {why}; remove [report]"
            ),
        ));
    }
    let mut contracts = file.report.unwrap_or_default().validate(problems);
    if contracts.display_name.is_empty()
        && let Some(s) = &survey
    {
        contracts.display_name = s.company.clone();
    }
    let precheck = file.precheck.and_then(|p| p.validate(problems));
    let sweep = match (file.sweep, &helpdesk) {
        (Some(s), Some(h)) => s.validate(h, problems),
        _ => None,
    };
    Some(ValidConnector {
        id: id.ok()?,
        file: PathBuf::new(),
        helpdesk: helpdesk?,
        policy: Policy {
            handoff: HandoffRules { rules, overrides },
            kb: KbSettings {
                threshold,
                review_bound,
                gap_below,
                default_locale,
                calibration,
            },
            late_after: Duration::hours(late.max(1)),
        },
        kb_backend,
        max_candidates,
        survey,
        sweep,
        metric_partners: file.metrics.unwrap_or_default().partners,
        contracts,
        precheck,
    })
}

fn validate_rules<T: FromRule>(
    rules: &[RuleFile],
    key: &str,
    in_override: bool,
    problems: &mut Vec<Problem>,
) -> Vec<T> {
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let key = format!("{key}[{i}]");
        let unused = |name: &str, present: bool, problems: &mut Vec<Problem>| {
            if present {
                problems.push(Problem::new(
                    format!("{key}.{name}"),
                    format!("is not used by rule `{:?}`", r.rule).to_lowercase(),
                ));
            }
        };
        let rule = match r.rule {
            RuleKind::Present => Some(Rule::Present),
            RuleKind::MinLength => match r.min {
                Some(n) if n > 0 => Some(Rule::MinLength(n)),
                _ => {
                    problems.push(Problem::new(
                        format!("{key}.min"),
                        "rule `min_length` needs `min`, a number above 0",
                    ));
                    None
                }
            },
            RuleKind::OneOf => match &r.values {
                Some(v) if !v.is_empty() => Some(Rule::OneOf(v.clone())),
                _ => {
                    problems.push(Problem::new(
                        format!("{key}.values"),
                        "rule `one_of` needs `values`, a non-empty list",
                    ));
                    None
                }
            },
            RuleKind::Regex => match r.pattern.as_deref().map(Regex::new) {
                Some(Ok(re)) => Some(Rule::Regex(re)),
                Some(Err(e)) => {
                    problems.push(Problem::new(
                        format!("{key}.pattern"),
                        format!("not a valid regular expression: {e}"),
                    ));
                    None
                }
                None => {
                    problems.push(Problem::new(
                        format!("{key}.pattern"),
                        "rule `regex` needs `pattern`",
                    ));
                    None
                }
            },
            RuleKind::Optional => {
                if !in_override {
                    problems.push(Problem::new(
                        format!("{key}.rule"),
                        "`optional` is only meaningful in an override; leave the field out instead",
                    ));
                }
                None
            }
        };
        unused(
            "min",
            r.rule != RuleKind::MinLength && r.min.is_some(),
            problems,
        );
        unused(
            "values",
            r.rule != RuleKind::OneOf && r.values.is_some(),
            problems,
        );
        unused(
            "pattern",
            r.rule != RuleKind::Regex && r.pattern.is_some(),
            problems,
        );
        if r.field.trim().is_empty() {
            problems.push(Problem::new(format!("{key}.field"), "must not be empty"));
        }
        if let Some(item) = T::from_rule(&r.field, rule, r.rule) {
            out.push(item);
        }
    }
    out
}

/// Rules in the base list are required rules; in overrides they may also be `optional`.
trait FromRule: Sized {
    fn from_rule(field: &str, rule: Option<Rule>, kind: RuleKind) -> Option<Self>;
}

impl FromRule for FieldRule {
    fn from_rule(field: &str, rule: Option<Rule>, _: RuleKind) -> Option<Self> {
        rule.map(|rule| FieldRule {
            field: field.to_string(),
            rule,
        })
    }
}

impl FromRule for (String, Option<Rule>) {
    fn from_rule(field: &str, rule: Option<Rule>, kind: RuleKind) -> Option<Self> {
        match (rule, kind) {
            (Some(r), _) => Some((field.to_string(), Some(r))),
            (None, RuleKind::Optional) => Some((field.to_string(), None)),
            (None, _) => None,
        }
    }
}
