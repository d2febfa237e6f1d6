//! Is the case resolvable by an existing article? Candidate filtering and our own re-score,
//! independent of which backend found the candidates.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::escalation::Escalation;
use crate::kb::{ArticleRef, ArticleView};

pub mod ident;
pub mod query;
pub mod rescore;
pub mod tried;
pub mod weights_file;

use ident::NearMiss;
use tried::{Statements, TriedBy};

pub const DEFAULT_GAP_BELOW: f64 = 0.3;
/// The judge's weights were fitted on 20 candidates a case.
pub const DEFAULT_MAX_CANDIDATES: usize = 20;
pub const DEFAULT_LOCALE: &str = "en-us";

/// Per-connector knobs of the knowledge-base judgement.
#[derive(Debug, Clone)]
pub struct KbSettings {
    /// Confidence at or above which an untried article makes the case `kb_resolvable`.
    pub threshold: f64,
    /// Confidence at or above which (and below `threshold`) an untried article sends the case to
    /// a person: outcome `review`. Equal to `threshold`: no review.
    pub review_bound: f64,
    /// A good escalation whose best eligible article stays below this confidence is a `kb_gap`.
    pub gap_below: f64,
    /// Locale used when the requester has none.
    pub default_locale: String,
    /// The stage-2 weights confidences are computed with: the global ones, or the vendor's
    /// (`[knowledge_base] calibration`).
    pub calibration: Arc<rescore::Calibration>,
}

/// An article that met the case, with what our re-score found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KbMatch {
    pub article_id: String,
    pub title: String,
    pub url: String,
    /// The passage of the article that matched the case best.
    pub passage: String,
    /// Our confidence that the article answers the case, 0 to 1.
    pub confidence: f64,
    /// The named signals the confidence was computed from.
    pub signals: Vec<(String, f64)>,
}

/// Why a candidate could not count against the partner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Excluded {
    Draft,
    OtherLocale { locale: String },
    PublishedAfterEscalation { published_at: DateTime<Utc> },
    NoPublicationDate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExcludedArticle {
    pub article_id: String,
    pub title: String,
    #[serde(flatten)]
    pub why: Excluded,
}

/// An article about a neighbouring problem: it names other identifiers of a family the case
/// names, and none of the case's. Listed, never counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Related {
    pub article: KbMatch,
    #[serde(flatten)]
    pub near_miss: NearMiss,
}

/// An article that was already tried, and how that is known. Never counted against the partner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriedArticle {
    #[serde(flatten)]
    pub article: KbMatch,
    #[serde(flatten)]
    pub by: TriedBy,
}

/// Everything the knowledge-base step found, kept as evidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KbFindings {
    /// The best untried eligible article at or above the threshold: the case was resolvable.
    pub resolvable_by: Option<KbMatch>,
    /// The best untried article between the review bound and the threshold, when none made the
    /// case resolvable: a person decides.
    pub review: Option<KbMatch>,
    /// The best eligible article (tried or not) when none made the case resolvable.
    pub best_other: Option<KbMatch>,
    /// Articles already tried: listed by the partner (those at or above the threshold), or said
    /// by the case to have been tried without success (any confidence), best first.
    pub tried: Vec<TriedArticle>,
    /// Near misses, best first: related, not counted.
    pub related: Vec<Related>,
    pub excluded: Vec<ExcludedArticle>,
    pub threshold: f64,
    pub review_bound: f64,
    /// The vendor's weights file the confidences come from; `None`: the global weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    /// Why the helpdesk's own search found the candidates instead of the connector's mirror
    /// (it has not completed a first sync); `None`: the connector's own backend did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_fallback: Option<String>,
}

impl KbFindings {
    /// Whether the case would have been `kb_resolvable` without the near-miss rule.
    pub fn resolvable_without_near_miss_rule(&self) -> bool {
        self.resolvable_by.is_some()
            || self
                .related
                .iter()
                .any(|r| r.article.confidence >= self.threshold)
    }

    /// Whether the case would have been `kb_resolvable` if only the tried-articles field made an
    /// article tried, not what the case says was done.
    pub fn resolvable_without_tried_fix_rule(&self) -> bool {
        self.resolvable_by.is_some()
            || self
                .tried
                .iter()
                .any(|t| t.by != TriedBy::Listed && t.article.confidence >= self.threshold)
    }

    /// The tried articles that would otherwise have counted (at or above the review bound): they
    /// do not solve the case.
    pub fn tried_answers(&self) -> impl Iterator<Item = &TriedArticle> {
        self.tried
            .iter()
            .filter(|t| t.article.confidence >= self.review_bound)
    }
}

/// Filters and re-scores the backend's candidates for one escalation. The candidates are read
/// where they are ([`crate::kb::Article`]s, or borrowed views of the embedded index's store).
pub fn judge<A: ArticleView>(
    esc: &Escalation,
    candidates: &[A],
    settings: &KbSettings,
) -> KbFindings {
    let locale = query::case_locale(esc, &settings.default_locale);
    let mut excluded = Vec::new();
    let mut eligible: Vec<ArticleRef> = Vec::new();
    for a in candidates.iter().map(ArticleView::view) {
        let why = if a.draft {
            Some(Excluded::Draft)
        } else if !same_locale(a.locale, &locale) {
            Some(Excluded::OtherLocale {
                locale: a.locale.to_string(),
            })
        } else {
            match a.published_at {
                None => Some(Excluded::NoPublicationDate),
                Some(t) if t > esc.escalated_at => {
                    Some(Excluded::PublishedAfterEscalation { published_at: t })
                }
                Some(_) => None,
            }
        };
        match why {
            Some(why) => excluded.push(ExcludedArticle {
                article_id: a.id.to_string(),
                title: a.title.to_string(),
                why,
            }),
            None => eligible.push(a),
        }
    }
    let query = rescore::clean_query(&esc.case_text());
    let case_ids = ident::identifiers(&query);
    let mut shapes: Vec<ident::Shape> = case_ids.iter().map(|i| i.shape).collect();
    shapes.dedup();
    let scored = rescore::rescore_query(
        &query,
        &eligible
            .iter()
            .map(|a| rescore::Candidate {
                title: a.title,
                body: a.body,
            })
            .collect::<Vec<_>>(),
        &settings.calibration,
    );
    // What the case says was done without success; most cases say nothing of it.
    let said = Statements::of(esc);
    let mut findings = KbFindings {
        excluded,
        threshold: settings.threshold,
        review_bound: settings.review_bound.min(settings.threshold),
        calibration: settings.calibration.vendor.clone(),
        ..KbFindings::default()
    };
    // The article text the near-miss rule reads, one buffer for every candidate.
    let mut text = String::new();
    for s in scored {
        let a = eligible[s.index];
        let above = s.confidence >= findings.threshold;
        let in_review = s.confidence >= findings.review_bound;
        // Only the candidates kept as evidence are copied out of the knowledge base.
        if was_tried(&a, &esc.tried_articles) {
            if above {
                findings.tried.push(TriedArticle {
                    article: matched(&a, s),
                    by: TriedBy::Listed,
                });
            } else if findings.best_other.is_none() && findings.resolvable_by.is_none() {
                findings.best_other = Some(matched(&a, s));
            }
            continue;
        }
        let near_miss = if case_ids.is_empty() {
            None
        } else {
            text.clear();
            text.push_str(a.title);
            text.push('\n');
            text.push_str(a.body);
            ident::near_miss(&case_ids, &ident::identifiers_of(&text, &shapes))
        };
        if let Some(near_miss) = near_miss {
            findings.related.push(Related {
                article: matched(&a, s),
                near_miss,
            });
            continue;
        }
        if findings.resolvable_by.is_some() {
            continue;
        }
        if let Some(by) = (!said.is_empty()).then(|| said.tried(&a)).flatten() {
            findings.tried.push(TriedArticle {
                article: matched(&a, s),
                by,
            });
            continue;
        }
        if above {
            findings.resolvable_by = Some(matched(&a, s));
            continue;
        }
        if in_review && findings.review.is_none() {
            let m = matched(&a, s);
            if findings.best_other.is_none() {
                findings.best_other = Some(m.clone());
            }
            findings.review = Some(m);
            continue;
        }
        if findings.best_other.is_none() {
            findings.best_other = Some(matched(&a, s));
        }
    }
    if findings.resolvable_by.is_some() {
        findings.best_other = None;
        findings.review = None;
    }
    findings
}

fn matched(a: &ArticleRef, s: rescore::Scored) -> KbMatch {
    KbMatch {
        article_id: a.id.to_string(),
        title: a.title.to_string(),
        url: a.url.to_string(),
        passage: s.passage,
        confidence: s.confidence,
        signals: s
            .signals
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

/// Locales match when equal, or when one of them names only the language of the other.
fn same_locale(article: &str, case: &str) -> bool {
    let (a, c) = (article.to_ascii_lowercase(), case.to_ascii_lowercase());
    if a == c {
        return true;
    }
    let lang = |s: &str| s.split(['-', '_']).next().unwrap_or("").to_string();
    (!a.contains(['-', '_']) || !c.contains(['-', '_'])) && lang(&a) == lang(&c)
}

/// Whether the partner listed this article as tried, by id, by URL, or by a URL whose path
/// names the id (`.../articles/360001-Reset-a-password`).
pub fn was_tried(article: &impl ArticleView, tried: &[String]) -> bool {
    let article = article.view();
    tried.iter().any(|t| {
        let t = t.trim();
        t.eq_ignore_ascii_case(article.id)
            || t.eq_ignore_ascii_case(article.url)
            || t.split(['/', '?', '#']).any(|segment| {
                segment == article.id
                    || segment
                        .strip_prefix(article.id)
                        .is_some_and(|rest| rest.starts_with('-'))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::tests::{article, escalation};

    #[test]
    fn tried_matches_ids_urls_and_slugs() {
        let a = article("360001", "Reset", "body");
        assert!(was_tried(&a, &["360001".into()]));
        assert!(was_tried(
            &a,
            &["https://acme.zendesk.com/hc/en-us/articles/360001-Reset-a-password".into()]
        ));
        assert!(was_tried(&a, std::slice::from_ref(&a.url)));
        assert!(!was_tried(
            &a,
            &["3600012".into(), "articles/13600011-x".into()]
        ));
    }

    #[test]
    fn locales() {
        assert!(same_locale("en-us", "EN-US"));
        assert!(same_locale("en", "en-us"));
        assert!(!same_locale("en-gb", "en-us"));
        assert!(!same_locale("de", "en-us"));
    }

    #[test]
    fn ineligible_articles_are_excluded_with_the_reason() {
        let esc = escalation();
        let mut draft = article("d", "Draft", "x");
        draft.draft = true;
        let mut german = article("g", "German", "x");
        german.locale = "de".into();
        let mut later = article("l", "Later", "x");
        later.published_at = Some(esc.escalated_at + chrono::Duration::seconds(1));
        let mut undated = article("u", "Undated", "x");
        undated.published_at = None;
        let settings = KbSettings {
            threshold: 0.5,
            review_bound: 0.5,
            gap_below: 0.2,
            default_locale: "en-us".into(),
            calibration: rescore::Calibration::global(),
        };
        let f = judge(&esc, &[draft, german, later, undated], &settings);
        let whys: Vec<_> = f.excluded.iter().map(|e| e.why.clone()).collect();
        assert_eq!(
            whys,
            vec![
                Excluded::Draft,
                Excluded::OtherLocale {
                    locale: "de".into()
                },
                Excluded::PublishedAfterEscalation {
                    published_at: esc.escalated_at + chrono::Duration::seconds(1)
                },
                Excluded::NoPublicationDate,
            ]
        );
        assert!(f.resolvable_by.is_none() && f.best_other.is_none());
    }

    /// A case that quotes an error code and its symptom, and an article whose title names the
    /// same code and symptom and whose body gives the fix: bad at the default threshold in a
    /// knowledge base of a handful of articles, as in one of thousands. The same case against
    /// the unrelated articles alone is not bad.
    #[test]
    fn a_code_matched_answer_is_bad_at_the_default_in_a_small_knowledge_base() {
        let mut esc = escalation();
        esc.description = "Customer reports that calendar sync stopped this morning. The sync log \
            shows error E1234 authorization expired. The user changed her mailbox password \
            yesterday. Can you check the sync service?"
            .into();
        let answer = article(
            "kb-1001",
            "Calendar sync stops with error E1234 after a password change",
            "Symptoms: calendar sync stops for a user and the sync log shows error E1234 \
             \"authorization expired\". It usually starts right after the user changed their \
             mailbox password.\nCause: the stored OAuth grant for the mailbox is revoked when \
             the password changes.\nResolution: 1. Open Settings > Integrations > Calendar. \
             2. Click Disconnect, then Connect and sign in to the mailbox again. 3. Wait up to \
             five minutes; the next sync clears error E1234.",
        );
        let others = [
            article(
                "kb-1003",
                "Bank feed transactions arrive one day late",
                "Bank feeds are fetched once a night. Transactions booked after the cut-off \
                 time appear the following day; use Refresh feed in Banking to fetch on demand.",
            ),
            article(
                "kb-1002",
                "Invoice PDFs show empty boxes instead of characters",
                "The invoice template uses a font without the glyphs. Choose a Unicode font in \
                 Settings > Invoices > Template and save the template again.",
            ),
            article(
                "kb-1004",
                "SAML single sign-on fails with assertion not yet valid",
                "The identity provider's clock is ahead of ours. Synchronise the identity \
                 provider's clock with NTP; a skew above three minutes fails the sign-on.",
            ),
        ];
        let settings = KbSettings {
            threshold: rescore::DEFAULT_THRESHOLD,
            review_bound: rescore::DEFAULT_REVIEW_BOUND,
            gap_below: 0.2,
            default_locale: "en-us".into(),
            calibration: rescore::Calibration::global(),
        };
        let mut kb = vec![answer];
        kb.extend(others.iter().cloned());
        let f = judge(&esc, &kb, &settings);
        let bad = f.resolvable_by.expect("judged bad");
        assert_eq!(bad.article_id, "kb-1001");
        let f = judge(&esc, &others, &settings);
        assert!(f.resolvable_by.is_none(), "{:?}", f.resolvable_by);
    }
}
