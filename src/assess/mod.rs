//! The judgement: pure functions from an escalation and knowledge-base candidates to a verdict.
//! No I/O and no clock: the same input always gives the same verdict.

pub mod handoff;
pub mod kb;
pub mod note;

use chrono::Duration;
use serde::Serialize;

use crate::escalation::Escalation;
use crate::kb::ArticleView;
use handoff::{HandoffFailure, HandoffRules};
use kb::{KbFindings, KbMatch, KbSettings};

/// Everything a connector says about how to judge.
#[derive(Debug, Clone)]
pub struct Policy {
    pub handoff: HandoffRules,
    pub kb: KbSettings,
    /// Escalated later than this after opening: flagged `late`.
    pub late_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Good,
    Bad,
    /// An article between the review bound and the threshold: a person decides.
    Review,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Good => "good",
            Outcome::Bad => "bad",
            Outcome::Review => "review",
        }
    }
}

/// Why an escalation is bad, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    MissingHandoff { failures: Vec<HandoffFailure> },
    KbResolvable { article: KbMatch },
}

impl Reason {
    pub fn kind(&self) -> ReasonKind {
        match self {
            Reason::MissingHandoff { .. } => ReasonKind::MissingHandoff,
            Reason::KbResolvable { .. } => ReasonKind::KbResolvable,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// A reason without its evidence: what a ticket records of it (a tag, a field value) and
/// reports count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    MissingHandoff,
    KbResolvable,
}

impl ReasonKind {
    pub const ALL: [ReasonKind; 2] = [ReasonKind::MissingHandoff, ReasonKind::KbResolvable];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::MissingHandoff => "missing_handoff",
            ReasonKind::KbResolvable => "kb_resolvable",
        }
    }
}

/// Flags that are not a verdict on their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Flags {
    /// Escalated long after the case was opened.
    pub late: bool,
    /// A good escalation that no article answers (or that a tried article did not solve):
    /// the knowledge team should write or fix one.
    pub kb_gap: bool,
}

impl Flags {
    /// The names of the flags that are set (`late`, `kb_gap`), as tags, fields and metrics
    /// spell them.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        [("late", self.late), ("kb_gap", self.kb_gap)]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
    pub flags: Flags,
    /// Hours from opening to escalation.
    pub hours_to_escalation: i64,
    pub kb: KbFindings,
}

/// Judges one escalation against the candidates its knowledge base returned.
pub fn assess<A: ArticleView>(esc: &Escalation, policy: &Policy, candidates: &[A]) -> Verdict {
    let mut reasons = Vec::new();
    let failures = policy.handoff.check(esc);
    if !failures.is_empty() {
        reasons.push(Reason::MissingHandoff { failures });
    }
    let kb = kb::judge(esc, candidates, &policy.kb);
    if let Some(article) = &kb.resolvable_by {
        reasons.push(Reason::KbResolvable {
            article: article.clone(),
        });
    }
    let outcome = if !reasons.is_empty() {
        Outcome::Bad
    } else if kb.review.is_some() {
        Outcome::Review
    } else {
        Outcome::Good
    };
    let waited = esc.escalated_at - esc.opened_at;
    let best = kb.best_other.as_ref().map_or(0.0, |m| m.confidence);
    let flags = Flags {
        late: waited > policy.late_after,
        kb_gap: outcome == Outcome::Good
            && (best < policy.kb.gap_below || kb.tried_answers().next().is_some()),
    };
    Verdict {
        outcome,
        reasons,
        flags,
        hours_to_escalation: waited.num_hours(),
        kb,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};

    use super::handoff::{FieldRule, Rule};
    use super::*;
    use crate::escalation::Requester;
    use crate::kb::Article;

    pub fn escalation() -> Escalation {
        Escalation {
            connector: "test".into(),
            ticket_id: "42".into(),
            partner: "Acme".into(),
            subject: "Calendar sync fails with error E1234".into(),
            description: "Since the update, calendar sync fails with error E1234 for all users."
                .into(),
            handoff: BTreeMap::new(),
            requester: Requester {
                email: None,
                locale: Some("en-us".into()),
            },
            product: None,
            version: None,
            channel: None,
            issue_type: None,
            opened_at: Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap(),
            escalated_at: Utc.with_ymd_and_hms(2024, 5, 2, 9, 0, 0).unwrap(),
            escalated_at_unknown: false,
            tried_articles: vec![],
            url: "https://acme.zendesk.com/agent/tickets/42".into(),
        }
    }

    pub fn article(id: &str, title: &str, body: &str) -> Article {
        Article {
            withdrawn_at: None,
            id: id.into(),
            title: title.into(),
            body: body.into(),
            url: format!("https://kb.example/{id}"),
            locale: "en-us".into(),
            published_at: Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
            draft: false,
        }
    }

    fn policy() -> Policy {
        Policy {
            handoff: HandoffRules {
                rules: vec![FieldRule {
                    field: "steps".into(),
                    rule: Rule::MinLength(10),
                }],
                overrides: vec![],
            },
            kb: KbSettings {
                threshold: 0.5,
                review_bound: 0.5,
                gap_below: 0.2,
                default_locale: "en-us".into(),
                calibration: crate::assess::kb::rescore::Calibration::global(),
            },
            late_after: Duration::hours(48),
        }
    }

    fn answer() -> Article {
        article(
            "kb-1",
            "Calendar sync fails with error E1234",
            "When calendar sync fails with error E1234 for all users after the update, re-authorise the calendar connection.",
        )
    }

    fn printing() -> Article {
        article("x", "Printing invoices", "Open billing and press print.")
    }

    #[test]
    fn good_when_handed_over_and_unknown() {
        let mut esc = escalation();
        esc.handoff
            .insert("steps".into(), "Open, sync, see error".into());
        let v = assess(&esc, &policy(), &[printing()]);
        assert_eq!(v.outcome, Outcome::Good);
        assert!(v.reasons.is_empty());
        assert!(v.flags.kb_gap && !v.flags.late);
        assert_eq!(v.hours_to_escalation, 24);
    }

    #[test]
    fn bad_for_both_reasons() {
        let mut esc = escalation();
        esc.escalated_at = esc.opened_at + Duration::hours(49);
        let v = assess(&esc, &policy(), &[answer(), printing()]);
        assert_eq!(v.outcome, Outcome::Bad);
        let names: Vec<_> = v.reasons.iter().map(Reason::name).collect();
        assert_eq!(names, ["missing_handoff", "kb_resolvable"]);
        assert!(v.flags.late && !v.flags.kb_gap);
    }

    #[test]
    fn a_tried_article_never_makes_it_bad() {
        let mut esc = escalation();
        esc.handoff
            .insert("steps".into(), "Open, sync, see error".into());
        esc.tried_articles = vec!["kb-1".into()];
        let v = assess(&esc, &policy(), &[answer(), printing()]);
        assert_eq!(v.outcome, Outcome::Good);
        assert_eq!(v.kb.tried.len(), 1);
        assert!(v.flags.kb_gap);
    }

    /// An article whose resolution is two steps.
    fn renew() -> Article {
        article(
            "kb-7",
            "Sign-in fails with error T401 after the token expires",
            "Sign-in fails with error T401 token expired for every user after the token \
             expires.\n\nResolution\n1. Run the renew command in the admin console.\n2. Sign out \
             and sign in again.",
        )
    }

    /// The case `renew` answers, with `said` added to its description.
    fn token_case(said: &str) -> Escalation {
        let mut esc = escalation();
        esc.subject = "Sign-in fails with error T401".into();
        esc.description = format!(
            "Since this morning sign-in fails with error T401 token expired for every user. {said}"
        );
        esc.handoff
            .insert("steps".into(), "Open the app, sign in, see T401".into());
        esc
    }

    #[test]
    fn an_article_whose_fix_the_case_says_was_tried_never_makes_it_bad() {
        // Without a word of what was done, the article answers the case.
        let plain = assess(&token_case(""), &policy(), &[renew(), printing()]);
        assert_eq!(plain.outcome, Outcome::Bad);
        let esc = token_case(
            "We ran the renew command and signed out and in, as the article says; the error \
             comes back after a minute.",
        );
        let v = assess(&esc, &policy(), &[renew(), printing()]);
        assert_eq!(v.outcome, Outcome::Good);
        assert!(v.reasons.is_empty());
        assert!(v.flags.kb_gap);
        assert!(v.kb.resolvable_without_tried_fix_rule());
        assert_eq!(v.kb.tried.len(), 1);
        let note = note::render(&esc, &v);
        for want in [
            "Articles the partner already tried (not held against the partner):",
            "- \"Sign-in fails with error T401 after the token expires\" https://kb.example/kb-7",
            "The case says these steps of the article were done without success:",
            "- \"Run the renew command in the admin console.\" (the case: \"We ran the renew \
             command and signed out and in, as the article says;\")",
            "- \"Sign out and sign in again.\" (the case: \"We ran the renew command",
            "kb_gap (the article already tried does not solve this case",
        ] {
            assert!(note.contains(want), "missing {want:?} in\n{note}");
        }
    }

    #[test]
    fn a_mention_without_failure_or_a_different_fix_is_still_bad() {
        for said in [
            "Should we run the renew command in the admin console?",
            "We ran the renew command in the admin console yesterday.",
            "We restarted the server and cleared the cache, but the error is still there.",
        ] {
            let v = assess(&token_case(said), &policy(), &[renew(), printing()]);
            assert_eq!(v.outcome, Outcome::Bad, "{said}");
            assert!(v.kb.tried.is_empty(), "{said}");
        }
    }

    #[test]
    fn another_untried_article_still_makes_it_bad() {
        let cookies = article(
            "kb-9",
            "Sign-in fails with error T401 token expired for every user",
            "Since an update, sign-in fails with error T401 token expired for every user. Clear \
             the browser cookies of the sign-in page.",
        );
        let esc = token_case("We ran the renew command and signed out and in; still T401.");
        assert_eq!(
            assess(&esc, &policy(), &[renew(), printing()]).outcome,
            Outcome::Good
        );
        let v = assess(&esc, &policy(), &[renew(), cookies, printing()]);
        assert_eq!(v.outcome, Outcome::Bad);
        let Some(Reason::KbResolvable { article }) = v.reasons.last() else {
            panic!("{:?}", v.reasons)
        };
        assert_eq!(article.article_id, "kb-9");
    }

    #[test]
    fn a_lone_candidate_is_never_decisive() {
        let mut esc = escalation();
        esc.handoff
            .insert("steps".into(), "Open, sync, see error".into());
        let mut policy = policy();
        policy.kb.threshold = kb::rescore::DEFAULT_THRESHOLD;
        policy.kb.review_bound = kb::rescore::DEFAULT_THRESHOLD;
        let lone = assess(&esc, &policy, &[answer()]);
        assert_eq!(lone.outcome, Outcome::Good);
        let pair = assess(&esc, &policy, &[answer(), printing()]);
        let best = |v: &Verdict| {
            let kb = &v.kb;
            let m = kb.resolvable_by.as_ref().or(kb.review.as_ref());
            m.or(kb.best_other.as_ref()).unwrap().confidence
        };
        // Next to an unrelated article the same answer stands out: the confidence rises past
        // where the lone candidate stayed, and a threshold between the two makes the case bad.
        assert!(
            best(&pair) > best(&lone) + 0.1,
            "{} {}",
            best(&pair),
            best(&lone)
        );
        policy.kb.threshold = (best(&pair) + best(&lone)) / 2.0;
        policy.kb.review_bound = policy.kb.threshold;
        assert_eq!(assess(&esc, &policy, &[answer()]).outcome, Outcome::Good);
        assert_eq!(
            assess(&esc, &policy, &[answer(), printing()]).outcome,
            Outcome::Bad
        );
    }

    #[test]
    fn a_review_article_is_named_in_the_note_of_a_case_the_handoff_makes_bad() {
        let esc = escalation();
        let mut policy = policy();
        let confidence = assess(&esc, &policy, &[answer(), printing()])
            .kb
            .resolvable_by
            .unwrap()
            .confidence;
        // The same article, now between the review bound and the threshold.
        policy.kb.threshold = confidence + 0.01;
        policy.kb.review_bound = confidence - 0.01;
        let v = assess(&esc, &policy, &[answer(), printing()]);
        assert_eq!(v.outcome, Outcome::Bad);
        let names: Vec<_> = v.reasons.iter().map(Reason::name).collect();
        assert_eq!(names, ["missing_handoff"]);
        let note = note::render(&esc, &v);
        let at = note
            .find("may also answer this")
            .unwrap_or_else(|| panic!("no review article in\n{note}"));
        let listed = &note[at..];
        assert!(
            listed.contains("\"Calendar sync fails with error E1234\" https://kb.example/kb-1"),
            "{note}"
        );
        assert!(
            listed.contains(&format!("Confidence {confidence:.2}")),
            "{note}"
        );
        assert!(!listed.contains("Printing invoices"), "{note}");
    }

    #[test]
    fn repeatable() {
        let esc = escalation();
        let cands = [answer(), article("x", "Printing", "Press print.")];
        assert_eq!(
            assess(&esc, &policy(), &cands),
            assess(&esc, &policy(), &cands)
        );
    }
}
