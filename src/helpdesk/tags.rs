//! The verdict as ticket tags, for the helpdesks that record it in tags (Zendesk, Freshdesk): the
//! `[helpdesk.tags]` table, the tags a verdict is written as, and the verdict a ticket's tags
//! record.

use serde::Deserialize;
use serde_json::Value;

use super::records::{Prechecked, details, recorded_confidence};
use crate::assess::{Outcome, Verdict};
use crate::checks::Problem;
use crate::escalation::Escalation;
use crate::survey::config::SurveyFields;
use crate::survey::rules::{Person, SurveyCase};

/// After the prefix: a hand-off field that failed its rule.
pub const MISSING: &str = "missing_";
/// After the prefix: the article that made the case resolvable.
pub const KB_ARTICLE: &str = "kb_article_";
/// After the prefix: the judge's confidence in its best counted article, in whole percent.
pub const KB_CONF: &str = "kb_conf_";
/// After the prefix: a check before escalating listed an article (the sidebar app's tag).
pub const PRECHECK_ARTICLE: &str = "precheck_article";

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct TagsFile {
    pub good: String,
    pub bad: String,
    /// Prefix of the reason and flag tags: `{prefix}missing_handoff`, `{prefix}kb_resolvable`,
    /// `{prefix}late`, `{prefix}kb_gap`, and of the review outcome's `{prefix}review`.
    pub reason_prefix: String,
}

impl TagsFile {
    /// The tag of the outcome `review` (a person decides): `{prefix}review`.
    pub fn review(&self) -> String {
        format!("{}review", self.reason_prefix)
    }

    /// Each tag must be non-empty and hold no whitespace; `refusal` says so in the helpdesk's
    /// words, under `helpdesk.tags.*`.
    pub fn validate(&self, refusal: &str, problems: &mut Vec<Problem>) {
        for (k, v) in [
            ("tags.good", &self.good),
            ("tags.bad", &self.bad),
            ("tags.reason_prefix", &self.reason_prefix),
        ] {
            if v.is_empty() || v.contains(char::is_whitespace) {
                problems.push(Problem::new(format!("helpdesk.{k}"), refusal));
            }
        }
    }

    /// The tags a verdict is written as: its outcome, reasons and flags, the failed hand-off
    /// fields, the article that made it resolvable and the recorded confidence.
    pub fn for_verdict(&self, v: &Verdict) -> Vec<String> {
        let prefix = &self.reason_prefix;
        let mut tags = vec![match v.outcome {
            Outcome::Good => self.good.clone(),
            Outcome::Bad => self.bad.clone(),
            Outcome::Review => self.review(),
        }];
        tags.extend(v.reasons.iter().map(|r| format!("{prefix}{}", r.name())));
        tags.extend(v.flags.names().map(|flag| format!("{prefix}{flag}")));
        let (fields, articles) = details(v);
        tags.extend(
            fields
                .iter()
                .map(|f| format!("{prefix}{MISSING}{}", tag_safe(f))),
        );
        tags.extend(
            articles
                .iter()
                .map(|a| format!("{prefix}{KB_ARTICLE}{}", tag_safe(a))),
        );
        tags.extend(recorded_confidence(v).map(|p| format!("{prefix}{KB_CONF}{p:02}")));
        tags
    }

    /// The verdict `tags` record, if any (bad over good over review).
    pub fn judged<'a>(&self, tags: impl IntoIterator<Item = &'a str>) -> Option<Outcome> {
        let tags: Vec<&str> = tags.into_iter().collect();
        let has = |tag: &str| tags.contains(&tag);
        if has(&self.bad) {
            Some(Outcome::Bad)
        } else if has(&self.good) {
            Some(Outcome::Good)
        } else if has(&self.review()) {
            Some(Outcome::Review)
        } else {
            None
        }
    }

    /// The tag the sidebar app puts on a ticket whose check before escalating said `outcome`:
    /// `{prefix}precheck_good`, `_bad` or `_review`.
    pub fn precheck(&self, outcome: Outcome) -> String {
        format!("{}precheck_{}", self.reason_prefix, outcome.as_str())
    }

    /// What the check before escalating said, as `ticket` records it: `field`, the value of the
    /// connector's `precheck_field` (the request form's or the app's: `bad`, `bad+article`), or
    /// else the sidebar app's tags (the last check it ran, one outcome tag, and
    /// `{prefix}precheck_article` once a check listed an article).
    pub fn prechecked_on(&self, ticket: &Value, field: Option<&Value>) -> Option<Prechecked> {
        let tags = tag_list(ticket);
        let has = |tag: &str| tags.iter().any(|t| t == tag);
        let tagged = [Outcome::Bad, Outcome::Review, Outcome::Good]
            .into_iter()
            .find(|o| has(&self.precheck(*o)))
            .map(|said| Prechecked {
                said,
                article_shown: has(&format!("{}{PRECHECK_ARTICLE}", self.reason_prefix)),
            });
        field
            .and_then(Value::as_str)
            .and_then(Prechecked::parse)
            .or(tagged)
    }

    /// The verdict the tags of `ticket` (its API answer, with a `tags` array) record, if any.
    pub fn judged_on(&self, ticket: &Value) -> Option<Outcome> {
        let tags = ticket.get("tags")?.as_array()?;
        self.judged(tags.iter().filter_map(Value::as_str))
    }
}

impl Default for TagsFile {
    fn default() -> Self {
        TagsFile {
            good: "escalation_good".into(),
            bad: "escalation_bad".into(),
            reason_prefix: "escalation_".into(),
        }
    }
}

/// A ticket's tags (its `tags` array of strings, as Zendesk and Freshdesk answer it).
pub fn tag_list(ticket: &Value) -> Vec<String> {
    ticket
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The blind survey's view of a case on a helpdesk that keeps the verdict in tags: `ticket` as
/// its API answers it (its `tags`, `type` and `updated_at`), mapped to `esc`. It counts as
/// escalated when it carries a good or bad verdict or the survey's pending mark.
pub fn survey_case(
    verdict: &TagsFile,
    fields: &SurveyFields,
    esc: Escalation,
    ticket: &Value,
    solved: bool,
    requester: Person,
) -> SurveyCase {
    let tags = tag_list(ticket);
    let text = |k: &str| ticket.get(k).and_then(Value::as_str);
    let marked = [&verdict.good, &verdict.bad, &fields.tags.pending];
    SurveyCase {
        number: None,
        solved,
        escalated: marked.iter().any(|m| tags.contains(m)),
        ticket_type: text("type").map(str::to_ascii_lowercase),
        subject: esc.subject.clone(),
        end_customer_email: fields.end_customer_of(&esc),
        version: text("updated_at").map(str::to_string),
        ticket_id: esc.ticket_id,
        partner: esc.partner,
        tags,
        requester,
    }
}

/// A tag or value made safe as a tag suffix: lower case, runs of anything but letters, digits,
/// `-` and `_` as one `_`.
pub fn tag_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}
