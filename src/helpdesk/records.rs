//! What a ticket records of the service's work, and how it is read back: the verdict's details
//! and confidence as a write records them, the reasons a person may give for overturning it,
//! the [`CaseRecord`] that the [`Record`](super::Record) role reads back for reports,
//! calibration and backfill (the book's "What the ticket records"), and the patience those
//! paged reads have with rate limits. Nothing here names a helpdesk.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use crate::assess::{Outcome, ReasonKind, Verdict};
use crate::http::UpstreamError;
use crate::survey::About;
use crate::survey::config::SurveyFields;

/// A reason a person may give for overturning a verdict: its value (Zendesk: the tag
/// `{reason_prefix}overturn_{reason}`; Salesforce: a value of `[helpdesk.verdict_fields]
/// overturn`), the verdict it overturns to, and what it says of the case.
pub struct Overturn {
    pub reason: &'static str,
    pub to_good: bool,
    pub says: &'static str,
}

impl Overturn {
    /// The verdict it overturns to: `good` or `bad`.
    pub fn to(&self) -> &'static str {
        if self.to_good { "good" } else { "bad" }
    }

    /// What a person picks: `Good: the article does not answer the case`.
    pub fn label(&self) -> String {
        let to = if self.to_good { "Good" } else { "Bad" };
        format!("{to}: {}", self.says)
    }
}

pub const OVERTURNS: [Overturn; 4] = [
    Overturn {
        reason: "kb_not_applicable",
        to_good: true,
        says: "the article does not answer the case",
    },
    Overturn {
        reason: "handoff_complete",
        to_good: true,
        says: "the hand-off was complete",
    },
    Overturn {
        reason: "kb_resolvable",
        to_good: false,
        says: "an article answers the case",
    },
    Overturn {
        reason: "missing_handoff",
        to_good: false,
        says: "the hand-off is incomplete",
    },
];

/// The overturn reasons' values.
pub const OVERTURN_REASONS: [&str; 4] = [
    OVERTURNS[0].reason,
    OVERTURNS[1].reason,
    OVERTURNS[2].reason,
    OVERTURNS[3].reason,
];

/// The hand-off fields that failed and the article that made the case resolvable, the details a
/// verdict records besides its reasons.
pub fn details(v: &Verdict) -> (Vec<String>, Vec<String>) {
    let mut fields = Vec::new();
    let mut articles = Vec::new();
    for r in &v.reasons {
        match r {
            crate::assess::Reason::MissingHandoff { failures } => {
                fields.extend(failures.iter().map(|f| f.field.clone()))
            }
            crate::assess::Reason::KbResolvable { article } => {
                articles.push(article.article_id.clone())
            }
        }
    }
    (fields, articles)
}

/// The confidence a verdict records, in whole percent (floored, so a recorded `p` means the
/// confidence was at least `p / 100`): the best counted article's, the one that made the case
/// `kb_resolvable`, sent it to review or, for a good case, came closest. `None` without a
/// candidate. Calibration reads it back to place each reviewed case against a threshold.
pub fn recorded_confidence(v: &Verdict) -> Option<u8> {
    let kb = &v.kb;
    kb.resolvable_by
        .as_ref()
        .or(kb.review.as_ref())
        .or(kb.best_other.as_ref())
        .map(|m| floor_percent(m.confidence))
}

/// A confidence (0 to 1) in whole percent, floored as a ticket records it.
pub fn floor_percent(confidence: f64) -> u8 {
    (confidence.clamp(0.0, 1.0) * 100.0 + 1e-9).floor() as u8
}

/// The survey as a ticket records it: `marks` are its tags (Zendesk) or its status (Salesforce),
/// `fields` the mapped fields by name (the ticket sink's scores and comment; a field's value wins
/// over a score tag).
pub fn survey_record(
    f: &SurveyFields,
    tags: &[&str],
    fields: &std::collections::BTreeMap<String, String>,
) -> SurveyRecord {
    let t = &f.tags;
    let has = |tag: &str| tags.contains(&tag);
    let tagged = |prefix: &str| {
        tags.iter()
            .find_map(|tag| tag.strip_prefix(prefix))
            .map(str::to_string)
    };
    let field = |name: &Option<String>| name.as_ref().and_then(|n| fields.get(n)).cloned();
    // Salesforce Number fields read back as `4.0`.
    let score = |v: Option<String>| {
        v.and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x <= 255.0)
            .map(|x| x as u8)
    };
    SurveyRecord {
        sent: has(&t.sent) || has(&t.answered),
        answered: has(&t.answered),
        csat: score(field(&f.csat).or_else(|| tagged(&t.score_prefix)))
            .filter(|s| (1..=5).contains(s)),
        ces: score(field(&f.ces).or_else(|| tagged(&t.ces_prefix))).filter(|s| (1..=7).contains(s)),
        about: field(&f.about)
            .or_else(|| tagged(&t.about_prefix))
            .and_then(|a| About::parse(&a)),
        comment: field(&f.comment).filter(|c| !c.trim().is_empty()),
    }
}

/// Tickets created from `from` (inclusive) to `to` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    /// The tickets created from day `first` to day `last`, both included (UTC).
    pub fn days(first: NaiveDate, last: NaiveDate) -> Period {
        Period {
            from: first.and_time(NaiveTime::MIN).and_utc(),
            to: (last + chrono::Days::new(1))
                .and_time(NaiveTime::MIN)
                .and_utc(),
        }
    }

    /// `from` and `to` as RFC 3339 instants to the second (`2026-01-01T00:00:00Z`), as search
    /// and SOQL take them.
    pub fn rfc3339(&self) -> (String, String) {
        let instant = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        (instant(self.from), instant(self.to))
    }
}

/// What a ticket records of the service's work, read back from the helpdesk (the book's
/// "What the ticket records"). Nothing here names a helpdesk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseRecord {
    pub ticket_id: String,
    pub partner: String,
    pub product: Option<String>,
    pub subject: String,
    pub opened_at: DateTime<Utc>,
    /// The partner handed the case to the vendor (it carries a verdict, or the helpdesk says so).
    pub escalated: bool,
    pub verdict: Option<Outcome>,
    /// A person's final decision, which counts over `verdict`.
    pub reviewed: Option<Outcome>,
    /// The reason a person gave for overturning the verdict, when it says.
    pub overturn: Option<String>,
    pub reasons: Vec<ReasonKind>,
    pub late: bool,
    pub kb_gap: bool,
    /// The hand-off fields that failed their rule.
    pub missing_fields: Vec<String>,
    /// The article that made the case resolvable.
    pub kb_articles: Vec<String>,
    /// The judge's confidence in its best counted article (the one that made the case bad, sent
    /// it to review, or came closest), floored to the percent as the ticket records it; `None`
    /// when no article was a candidate or the verdict predates the record.
    pub kb_confidence: Option<f64>,
    /// What the check before escalating said, when the ticket records it.
    pub prechecked: Option<Prechecked>,
    /// The ticket is solved or closed.
    pub solved: bool,
    pub survey: SurveyRecord,
}

/// What the check before escalating said, as a ticket records it: the sidebar app's tags
/// (`{prefix}precheck_{outcome}`, `{prefix}precheck_article`), or the value the request form or
/// app put in the connector's `precheck_field` (`bad`, `bad+article`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Prechecked {
    /// What the last check said.
    pub said: Outcome,
    /// A check listed an article: the partner was shown one.
    pub article_shown: bool,
}

/// After the outcome in a `precheck_field` value: a check listed an article.
pub const ARTICLE_SHOWN: &str = "+article";

impl Prechecked {
    /// A `precheck_field` value: `good`, `bad` or `review`, with [`ARTICLE_SHOWN`] after it when
    /// a check listed an article; anything else records no check.
    pub fn parse(value: &str) -> Option<Prechecked> {
        let value = value.trim().to_ascii_lowercase();
        let (said, article_shown) = match value.strip_suffix(ARTICLE_SHOWN) {
            Some(said) => (said, true),
            None => (value.as_str(), false),
        };
        [Outcome::Good, Outcome::Bad, Outcome::Review]
            .into_iter()
            .find(|o| o.as_str() == said)
            .map(|said| Prechecked {
                said,
                article_shown,
            })
    }
}

impl CaseRecord {
    /// The verdict that counts: a person's decision where there is one, else the judge's good or
    /// bad; `None` while in review or never judged.
    pub fn counted(&self) -> Option<Outcome> {
        self.reviewed
            .or(self.verdict.filter(|v| *v != Outcome::Review))
    }

    /// Whether a person decided against the judge's good or bad (a review verdict is decided by
    /// a person, not overturned).
    pub fn overturned(&self) -> bool {
        matches!((self.verdict, self.reviewed), (Some(v), Some(r)) if v != Outcome::Review && v != r)
    }
}

/// The blind survey as the ticket records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SurveyRecord {
    pub sent: bool,
    pub answered: bool,
    /// 1–5.
    pub csat: Option<u8>,
    /// 1–7.
    pub ces: Option<u8>,
    pub about: Option<About>,
    pub comment: Option<String>,
}

/// Takes the records of [`Record::records`](super::Record::records) as they stream in.
pub trait RecordSink {
    /// How many records the period holds, when the helpdesk says (for a progress bar).
    fn total(&mut self, _total: u64) {}
    fn record(&mut self, record: CaseRecord);
}

/// How many times a read waits out a rate limit before it gives up.
const PATIENT_ATTEMPTS: u32 = 10;
/// The longest `Retry-After` a read waits out; a helpdesk that asks for more fails the read.
const PATIENT_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `call` (a page of a paged read, one ticket of a backfill) again when the helpdesk asked
/// for a longer wait than the client's own budget allows (429, or 503 with `Retry-After`):
/// after as long as it asks, up to [`PATIENT_MAX_WAIT`], at most [`PATIENT_ATTEMPTS`] times,
/// logging each wait at `warn` (the offline commands' standard error). Every other failure is
/// returned at once: 5xx, timeouts, resets and unreadable answers were already retried within
/// the `[helpdesk.http]` budget, and an unreachable host is a wrong address.
pub async fn patiently<T, F, Fut>(mut call: F) -> Result<T, UpstreamError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, UpstreamError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(UpstreamError::Unavailable {
                call: name,
                retry_after: Some(wait),
                last,
                ..
            }) if attempt < PATIENT_ATTEMPTS && wait <= PATIENT_MAX_WAIT => {
                tracing::warn!(
                    call = name,
                    wait_secs = crate::http::whole_secs(wait),
                    attempt,
                    last = %last,
                    "Waiting as the helpdesk asks, then asking again"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}
