//! The internal note that explains a verdict from its evidence alone.

use std::fmt::Write;

use super::kb::tried::TriedBy;
use super::kb::{Excluded, KbMatch};
use super::{Outcome, Reason, Verdict};
use crate::escalation::Escalation;

/// The first line of every note; also how a person finds it on the ticket.
pub const HEADING: &str = "escalation-gate verdict";

/// Renders the note as plain text.
/// The note's line on the check before escalating, for a ticket on which the sidebar app
/// recorded what the check said (`said`): whether the partner sent it as the check found it or
/// fixed it first.
fn prechecked(said: Outcome, verdict: Outcome) -> String {
    let word = |o: Outcome| match o {
        Outcome::Good => "GOOD",
        Outcome::Bad => "BAD",
        Outcome::Review => "REVIEW",
    };
    let what = match (said, verdict) {
        (Outcome::Bad, Outcome::Bad) => "it was sent as it was".to_string(),
        (Outcome::Bad, Outcome::Good) => {
            "the partner fixed it before sending: what was sent is GOOD".to_string()
        }
        (s, v) if s == v => "the verdict agrees".to_string(),
        (_, v) => format!("what was sent is {}", word(v)),
    };
    format!(
        "\nChecked before escalating: the check said {}; {what}.\n",
        word(said)
    )
}

pub fn render(esc: &Escalation, v: &Verdict) -> String {
    render_prechecked(esc, v, None)
}

/// [`render`], with the line on what the check before escalating said (`said`) before the
/// closing line, when the ticket records it.
pub fn render_prechecked(esc: &Escalation, v: &Verdict, said: Option<Outcome>) -> String {
    let mut s = String::new();
    let reasons: Vec<&str> = v.reasons.iter().map(Reason::name).collect();
    match v.outcome {
        Outcome::Good => {
            let _ = writeln!(s, "{HEADING}: GOOD escalation");
            let _ = writeln!(
                s,
                "\nThe hand-off fields meet the rules and no published article answers this case."
            );
        }
        Outcome::Bad => {
            let _ = writeln!(s, "{HEADING}: BAD escalation ({})", reasons.join(", "));
        }
        Outcome::Review => {
            let _ = writeln!(s, "{HEADING}: REVIEW (a person decides)");
            let _ = writeln!(
                s,
                "\nThe hand-off fields meet the rules. This article may answer the case, but the \
                 judge is not sure enough to count it (between the review bound {:.2} and the \
                 threshold {:.2}). Please read it against the case and decide: good escalation \
                 (the article does not answer it) or bad (it does).",
                v.kb.review_bound, v.kb.threshold
            );
            if let Some(m) = &v.kb.review {
                write_match(&mut s, m, v.kb.threshold);
            }
        }
    }
    for reason in &v.reasons {
        match reason {
            Reason::MissingHandoff { failures } => {
                let _ = writeln!(s, "\nHand-off fields that do not meet the rules:");
                for f in failures {
                    let _ = writeln!(s, "- {}", f.message());
                }
            }
            Reason::KbResolvable { article } => {
                let _ = writeln!(
                    s,
                    "\nA knowledge-base article published before the escalation answers this case:"
                );
                write_match(&mut s, article, v.kb.threshold);
            }
        }
    }
    // The hand-off made the case bad; an article the judge was not sure of still teaches.
    if v.outcome == Outcome::Bad
        && let Some(m) = &v.kb.review
    {
        let _ = writeln!(
            s,
            "\nAn article that may also answer this (not counted: between the review bound {:.2} \
             and the threshold {:.2}):",
            v.kb.review_bound, v.kb.threshold
        );
        write_match(&mut s, m, v.kb.threshold);
    }
    let tried: Vec<_> = v.kb.tried_answers().collect();
    if !tried.is_empty() {
        let _ = writeln!(
            s,
            "\nArticles the partner already tried (not held against the partner):"
        );
        for t in tried {
            write_match(&mut s, &t.article, v.kb.threshold);
            write_tried_by(&mut s, &t.by);
        }
    }
    if v.outcome == Outcome::Good
        && let Some(m) = &v.kb.best_other
    {
        let _ = writeln!(
            s,
            "\nClosest article, below the threshold {:.2}: \"{}\" {} (confidence {:.2}).",
            v.kb.threshold, m.title, m.url, m.confidence
        );
    }
    let related: Vec<_> =
        v.kb.related
            .iter()
            .filter(|r| r.article.confidence >= v.kb.review_bound)
            .collect();
    if !related.is_empty() {
        let _ = writeln!(
            s,
            "\nRelated, not counted (about a neighbouring problem: the case names {}, the article \
             names none of them but other identifiers of the same kind):",
            related[0].near_miss.case_ids.join(", ")
        );
        for r in related {
            let _ = writeln!(
                s,
                "- \"{}\" {} (confidence {:.2}; names {}).",
                r.article.title,
                r.article.url,
                r.article.confidence,
                r.near_miss.article_ids.join(", ")
            );
        }
    }
    if let Some(why) = &v.kb.mirror_fallback {
        let _ = writeln!(
            s,
            "\nKnowledge base: searched through the helpdesk's own search, not the local mirror \
             ({why}); the candidates may differ from the mirror's."
        );
    }
    if !v.kb.excluded.is_empty() {
        let _ = writeln!(s, "\nArticles not counted:");
        for e in &v.kb.excluded {
            let why = match &e.why {
                Excluded::Draft => "a draft".to_string(),
                Excluded::OtherLocale { locale } => format!("in another locale ({locale})"),
                Excluded::PublishedAfterEscalation { published_at } => format!(
                    "published {} UTC, after the {}",
                    published_at.format("%Y-%m-%d %H:%M"),
                    if esc.escalated_at_unknown {
                        "ticket was opened"
                    } else {
                        "escalation"
                    }
                ),
                Excluded::NoPublicationDate => "no publication date".to_string(),
            };
            let _ = writeln!(s, "- \"{}\" ({}): {}.", e.title, e.article_id, why);
        }
    }
    let mut flags = Vec::new();
    if v.flags.late {
        flags.push(format!(
            "late (escalated {} hours after opening)",
            v.hours_to_escalation
        ));
    }
    if v.flags.kb_gap {
        flags.push(if v.kb.tried_answers().next().is_some() {
            "kb_gap (the article already tried does not solve this case: the knowledge team \
             could fix it)"
                .into()
        } else {
            "kb_gap (no article answers this case: the knowledge team could write one)".into()
        });
    }
    if !flags.is_empty() {
        let _ = writeln!(s, "\nFlags: {}.", flags.join("; "));
    }
    if let Some(file) = &v.kb.calibration {
        let _ = writeln!(
            s,
            "\nConfidences from this vendor's calibration ({file}), fitted on its reviewed cases."
        );
    }
    let when = if esc.escalated_at_unknown {
        format!(
            "escalation time unknown (found by the sweep), so the opening {} UTC stands in",
            esc.opened_at.format("%Y-%m-%d %H:%M")
        )
    } else {
        format!(
            "escalated {} UTC",
            esc.escalated_at.format("%Y-%m-%d %H:%M")
        )
    };
    if let Some(said) = said {
        s.push_str(&prechecked(said, v.outcome));
    }
    let _ = write!(
        s,
        "\nPartner: {} · {when} · escalation-gate {}",
        esc.partner,
        env!("CARGO_PKG_VERSION")
    );
    s
}

fn write_match(s: &mut String, m: &KbMatch, threshold: f64) {
    let _ = writeln!(s, "- \"{}\" {}", m.title, m.url);
    let _ = writeln!(
        s,
        "  Confidence {:.2} (threshold {:.2}){}.",
        m.confidence,
        threshold,
        explain(&m.signals)
    );
    let _ = writeln!(
        s,
        "  Matching passage: \"{}\"",
        m.passage.replace('\n', " ")
    );
}

/// What says a tried article was tried, when the case says so (the tried-articles field needs
/// no words).
fn write_tried_by(s: &mut String, by: &TriedBy) {
    match by {
        TriedBy::Listed => {}
        TriedBy::Steps { steps } => {
            let _ = writeln!(
                s,
                "  The case says these steps of the article were done without success:"
            );
            for d in steps {
                let _ = writeln!(s, "  - \"{}\" (the case: \"{}\")", d.step, d.said);
            }
        }
        TriedBy::Named { said } => {
            let _ = writeln!(
                s,
                "  The case names this article as done without success: \"{said}\""
            );
        }
    }
}

/// The re-score's signals a person can read, in words. The verdict's JSON keeps all of them.
const EXPLAINED: &[(&str, &str)] = &[
    (
        "cov_g",
        "of the case's distinctive words appear in the article",
    ),
    ("pass_g", "in the matching passage"),
    (
        "title_rec",
        "of the article title's words appear in the case",
    ),
    (
        "code_frac",
        "of the case's error codes and identifiers appear in the article",
    ),
];

fn explain(signals: &[(String, f64)]) -> String {
    let get = |name: &str| signals.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let has_codes = get("code_frac").unwrap_or(0.0) + get("code_miss").unwrap_or(0.0) > 0.0;
    let mut parts: Vec<String> = EXPLAINED
        .iter()
        .filter(|(name, _)| *name != "code_frac" || has_codes)
        .filter_map(|(name, words)| {
            get(name).map(|v| format!("{:.0}% {words}", (v * 100.0).clamp(0.0, 100.0)))
        })
        .collect();
    if let Some(margin) = get("margin") {
        parts.push(format!("lead over the next article {margin:.1}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::handoff::HandoffFailure;
    use super::super::kb::{ExcludedArticle, KbFindings};
    use super::super::{Flags, Outcome, Reason, Verdict};
    use super::*;
    use crate::assess::tests::escalation;

    #[test]
    fn explained_signals_are_the_re_scores_own() {
        for (name, _) in EXPLAINED {
            assert!(
                crate::assess::kb::rescore::FEATURES.contains(name),
                "{name} is not a signal of the re-score"
            );
        }
    }

    #[test]
    fn bad_note_carries_all_evidence() {
        let m = KbMatch {
            article_id: "kb-1".into(),
            title: "Fix sync".into(),
            url: "https://kb/1".into(),
            passage: "re-authorise the\nconnection".into(),
            confidence: 0.91,
            signals: vec![
                ("cov_g".into(), 0.8),
                ("pass_g".into(), 0.5),
                ("code_frac".into(), 0.0),
                ("code_miss".into(), 0.0),
                ("margin".into(), 2.345),
                ("bm25_g".into(), 1.7),
            ],
        };
        let v = Verdict {
            outcome: Outcome::Bad,
            reasons: vec![
                Reason::MissingHandoff {
                    failures: vec![HandoffFailure {
                        field: "steps".into(),
                        rule: "needs at least 10 characters".into(),
                        found: "3 characters".into(),
                    }],
                },
                Reason::KbResolvable { article: m },
            ],
            flags: Flags {
                late: true,
                kb_gap: false,
            },
            hours_to_escalation: 50,
            kb: KbFindings {
                excluded: vec![ExcludedArticle {
                    article_id: "kb-2".into(),
                    title: "Draft".into(),
                    why: Excluded::Draft,
                }],
                threshold: 0.6,
                ..KbFindings::default()
            },
        };
        let note = render(&escalation(), &v);
        for want in [
            "escalation-gate verdict: BAD escalation (missing_handoff, kb_resolvable)",
            "- steps: needs at least 10 characters; found 3 characters.",
            "- \"Fix sync\" https://kb/1",
            "Confidence 0.91 (threshold 0.60): 80% of the case's distinctive words appear in the \
             article; 50% in the matching passage; lead over the next article 2.3.",
            "Matching passage: \"re-authorise the connection\"",
            "- \"Draft\" (kb-2): a draft.",
            "late (escalated 50 hours after opening)",
            "Partner: Acme · escalated 2024-05-02 09:00 UTC",
        ] {
            assert!(note.contains(want), "missing {want:?} in\n{note}");
        }
    }
}
