//! The partner scorecard (`escalation-gate report`): every ticket of a period read back from
//! the helpdesk (the record) and aggregated as it streams in, per partner and month, into the
//! figures partner contracts pay on: escalation rate, the good-escalation ratio with its 95 %
//! Wilson interval against the target, bad escalations by reason, the blind survey's CSAT and
//! CES (ratings about the product kept apart from the support score), the tier reached, and a
//! knowledge view. Memory grows with partners, months and vocabulary, not with tickets (the
//! partner edition also lists that partner's bad escalations and comments, which it shows).

pub mod contracts;
pub mod render;
pub mod stats;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;

use self::contracts::{Contracts, Tier};
use self::stats::{Estimate, Position, Scores, wilson};
use crate::assess::{Outcome, ReasonKind};
use crate::helpdesk::{CaseRecord, HelpdeskError, Period, RecordSink, Tickets};
use crate::survey::About;
use crate::survey::config::SurveyFields;

/// Who the scorecard is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The vendor: every partner side by side, and the knowledge view.
    Vendor,
    /// One partner: only its own figures, its bad escalations and its customers' comments
    /// about support, nothing about other partners and no customer names or addresses.
    Partner,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub period: Period,
    /// Only this partner (required for the partner edition).
    pub partner: Option<String>,
    pub audience: Audience,
}

/// How many articles, fields and terms a list shows.
const TOP: usize = 10;
/// Distinctive terms shown for each knowledge gap group.
const GAP_TERMS: usize = 6;

/// What a scorecard is read from: a connector's id, tickets, survey names and contracts.
pub struct Source<'a> {
    pub connector: &'a str,
    pub tickets: &'a dyn Tickets,
    pub survey: Option<&'a SurveyFields>,
    pub contracts: &'a Contracts,
}

/// Reads the period from the connector's helpdesk and builds its scorecard; `progress` is told
/// the total when the helpdesk says it, and each record as it arrives.
pub async fn build(
    source: Source<'_>,
    options: &Options,
    progress: &indicatif::ProgressBar,
) -> Result<Scorecard, HelpdeskError> {
    let mut agg = Aggregator::new(options, progress.clone());
    source
        .tickets
        .records(&options.period, source.survey, &mut agg)
        .await?;
    Ok(agg.finish(source.connector, source.contracts))
}

/// Survey answers of one group of cases.
#[derive(Debug, Clone, Copy, Default)]
struct SurveyCounts {
    sent: u64,
    answered: u64,
    csat: Scores,
}

/// The sums of one partner over one month or the whole period.
#[derive(Debug, Clone, Default)]
struct Counts {
    cases: u64,
    escalations: u64,
    good: u64,
    bad: u64,
    in_review: u64,
    reviewed: u64,
    overturned: u64,
    missing_handoff: u64,
    kb_resolvable: u64,
    late: u64,
    fields: BTreeMap<String, u64>,
    articles: BTreeMap<String, u64>,
    /// All partner cases, escalated ones, not escalated ones.
    surveys: [SurveyCounts; 3],
    support_csat: Scores,
    ces: Scores,
    about: [u64; 4],
}

impl Counts {
    fn add(&mut self, r: &CaseRecord) {
        self.cases += 1;
        if r.escalated {
            self.escalations += 1;
            if r.late {
                self.late += 1;
            }
        }
        if r.verdict == Some(Outcome::Review) && r.reviewed.is_none() {
            self.in_review += 1;
        }
        if r.reviewed.is_some() && r.verdict.is_some() {
            self.reviewed += 1;
            if r.overturned() {
                self.overturned += 1;
            }
        }
        match r.counted() {
            Some(Outcome::Good) => self.good += 1,
            Some(Outcome::Bad) => {
                self.bad += 1;
                // A person's "bad" over the judge's "good" has no reasons of the judge's.
                if r.verdict == Some(Outcome::Bad) {
                    if r.reasons.contains(&ReasonKind::MissingHandoff) {
                        self.missing_handoff += 1;
                    }
                    if r.reasons.contains(&ReasonKind::KbResolvable) {
                        self.kb_resolvable += 1;
                    }
                    for f in &r.missing_fields {
                        *self.fields.entry(f.clone()).or_default() += 1;
                    }
                    for a in &r.kb_articles {
                        *self.articles.entry(a.clone()).or_default() += 1;
                    }
                }
            }
            Some(Outcome::Review) | None => {}
        }
        let s = &r.survey;
        let group = if r.escalated { 1 } else { 2 };
        for g in [0, group] {
            let c = &mut self.surveys[g];
            c.sent += u64::from(s.sent);
            c.answered += u64::from(s.answered);
            if let Some(csat) = s.csat {
                c.csat.add(csat);
            }
        }
        if let Some(csat) = s.csat {
            if s.about != Some(About::Product) {
                self.support_csat.add(csat);
            }
            self.about[match s.about {
                Some(About::Product) => 0,
                Some(About::Support) => 1,
                Some(About::Both) => 2,
                None => 3,
            }] += 1;
        }
        if let Some(ces) = s.ces {
            self.ces.add(ces);
        }
    }
}

/// A name and how often it came up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<Count> {
    let mut v: Vec<Count> = map
        .iter()
        .map(|(name, count)| Count {
            name: name.clone(),
            count: *count,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v.truncate(n);
    v
}

/// The figures of one partner over a month or the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub cases: u64,
    pub escalations: u64,
    /// Escalations over cases.
    pub escalation_rate: Option<f64>,
    pub good: u64,
    pub bad: u64,
    /// Waiting for a person's decision: neither good nor bad yet.
    pub in_review: u64,
    /// Verdicts a person decided, and how many of them went against the judge.
    pub reviewed: u64,
    pub overturned: u64,
    /// Good over good + bad with its 95 % Wilson interval; `None` below the minimum sample
    /// ("not enough data": never a number to pay on).
    pub good_ratio: Option<Estimate>,
    pub target: f64,
    /// Where the interval lies against the target.
    pub against_target: Option<Position>,
    pub bad_reasons: BadReasons,
    pub surveys: SurveyFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadReasons {
    pub missing_handoff: u64,
    pub kb_resolvable: u64,
    /// Escalations flagged late (escalated long after opening), good or bad.
    pub late: u64,
    /// The hand-off fields that were missing, most often first.
    pub missing_fields: Vec<Count>,
    /// The articles that answered bad escalations, most often first.
    pub articles: Vec<Count>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyFigures {
    pub all: Csat,
    pub escalated: Csat,
    pub not_escalated: Csat,
    /// The mean CSAT of ratings not about the product (support, both, or unsaid): the score
    /// the partner's support is measured on.
    pub support_csat: Option<Estimate>,
    pub support_answers: u64,
    /// Customer Effort, 1–7.
    pub ces: Option<Estimate>,
    pub ces_answers: u64,
    /// Ratings by what they were about: product, support, both, unsaid.
    pub about: About4,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct About4 {
    pub product: u64,
    pub support: u64,
    pub both: u64,
    pub unsaid: u64,
}

/// The blind CSAT of one group of cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Csat {
    pub sent: u64,
    pub answered: u64,
    /// Answered over sent, with its Wilson interval.
    pub response_rate: Option<Estimate>,
    /// Ratings with a score (a webhook sink keeps them elsewhere).
    pub rated: u64,
    /// Mean 1–5 with its interval; `None` below the minimum number of answers.
    pub mean: Option<Estimate>,
}

impl Figures {
    fn of(c: &Counts, target: f64, contracts: &Contracts) -> Figures {
        let judged = c.good + c.bad;
        let good_ratio = wilson(c.good, judged).filter(|_| judged >= contracts.min_escalations);
        let min = contracts.min_answers;
        let mean = |s: &Scores, hi: f64| s.mean(1.0, hi).filter(|_| s.n >= min);
        let csat = |s: &SurveyCounts| Csat {
            sent: s.sent,
            answered: s.answered,
            response_rate: wilson(s.answered, s.sent),
            rated: s.csat.n,
            mean: mean(&s.csat, 5.0),
        };
        Figures {
            cases: c.cases,
            escalations: c.escalations,
            escalation_rate: (c.cases > 0).then(|| c.escalations as f64 / c.cases as f64),
            good: c.good,
            bad: c.bad,
            in_review: c.in_review,
            reviewed: c.reviewed,
            overturned: c.overturned,
            good_ratio,
            target,
            against_target: good_ratio.map(|e| e.against(target)),
            bad_reasons: BadReasons {
                missing_handoff: c.missing_handoff,
                kb_resolvable: c.kb_resolvable,
                late: c.late,
                missing_fields: top(&c.fields, TOP),
                articles: top(&c.articles, TOP),
            },
            surveys: SurveyFigures {
                all: csat(&c.surveys[0]),
                escalated: csat(&c.surveys[1]),
                not_escalated: csat(&c.surveys[2]),
                support_csat: mean(&c.support_csat, 5.0),
                support_answers: c.support_csat.n,
                ces: mean(&c.ces, 7.0),
                ces_answers: c.ces.n,
                about: About4 {
                    product: c.about[0],
                    support: c.about[1],
                    both: c.about[2],
                    unsaid: c.about[3],
                },
            },
        }
    }
}

/// The tier a partner reached, and what it missed the next one by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierResult {
    /// `None`: no tier reached (or none defined).
    pub reached: Option<String>,
    pub label: Option<String>,
    /// A figure the decision rests on has an interval that straddles its threshold: the sample
    /// cannot tell, and `notes` says which.
    pub uncertain: bool,
    pub notes: Vec<String>,
    /// The next better tier and what it was missed by.
    pub next: Option<String>,
    pub missed_by: Vec<String>,
}

/// One condition of a tier, checked.
struct Check {
    met: bool,
    note: Option<String>,
    missed: Option<String>,
}

fn check(what: &str, figure: Option<Estimate>, min: f64, digits: usize) -> Check {
    let Some(e) = figure else {
        return Check {
            met: false,
            note: Some(format!("{what}: not enough data")),
            missed: Some(format!("{what}: not enough data")),
        };
    };
    let met = e.value >= min;
    let note = (e.against(min) == Position::Straddles).then(|| {
        format!(
            "{what} {:.d$} (95 % interval {:.d$}–{:.d$}) straddles the threshold {min:.d$}: the sample cannot tell",
            e.value,
            e.low,
            e.high,
            d = digits
        )
    });
    let missed = (!met).then(|| {
        format!(
            "{what} {:.d$} is below {min:.d$} (by {:.d$})",
            e.value,
            min - e.value,
            d = digits
        )
    });
    Check { met, note, missed }
}

fn checks(tier: &Tier, f: &Figures) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(min) = tier.min_good_ratio {
        out.push(check("good-escalation ratio", f.good_ratio, min, 2));
    }
    if let Some(min) = tier.min_support_csat {
        out.push(check("support CSAT", f.surveys.support_csat, min, 2));
    }
    out
}

fn tier_of(tiers: &[Tier], f: &Figures) -> Option<TierResult> {
    if tiers.is_empty() {
        return None;
    }
    let reached = tiers
        .iter()
        .position(|t| checks(t, f).iter().all(|c| c.met));
    let (notes, uncertain) = match reached {
        Some(i) => {
            let notes: Vec<String> = checks(&tiers[i], f)
                .into_iter()
                .filter_map(|c| c.note)
                .collect();
            let uncertain = !notes.is_empty();
            (notes, uncertain)
        }
        None => (Vec::new(), false),
    };
    let next_i = match reached {
        Some(0) => None,
        Some(i) => Some(i - 1),
        None => Some(tiers.len() - 1),
    };
    let (next, missed_by, next_notes) = match next_i {
        Some(i) => {
            let c = checks(&tiers[i], f);
            (
                Some(tiers[i].name.clone()),
                c.iter().filter_map(|c| c.missed.clone()).collect(),
                c.into_iter().filter_map(|c| c.note).collect::<Vec<_>>(),
            )
        }
        None => (None, Vec::new(), Vec::new()),
    };
    // A tier missed on a straddling figure is as undecided as one reached on it.
    let uncertain = uncertain || !next_notes.is_empty();
    let mut notes = notes;
    notes.extend(next_notes);
    Some(TierResult {
        reached: reached.map(|i| tiers[i].name.clone()),
        label: reached.map(|i| tiers[i].label.clone()),
        uncertain,
        notes,
        next,
        missed_by,
    })
}

/// One partner's scorecard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartnerCard {
    pub partner: String,
    pub period: Figures,
    /// `YYYY-MM` (by the ticket's creation) and its figures.
    pub months: Vec<Month>,
    pub tier: Option<TierResult>,
    /// Partner edition: its bad escalations, each with the fields missing and the article that
    /// answers it, so its agents can learn from them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_escalations: Option<Vec<BadCase>>,
    /// Partner edition: its customers' comments about support, with addresses, links, numbers,
    /// names after a greeting or sign-off and other partners' names removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Month {
    pub month: String,
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadCase {
    pub ticket: String,
    pub opened: String,
    pub reasons: Vec<ReasonKind>,
    pub missing_fields: Vec<String>,
    pub articles: Vec<String>,
    pub late: bool,
    /// A person decided it was bad.
    pub reviewed: bool,
}

/// Bad escalations gauge the knowledge base too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Knowledge {
    /// The articles partners most often missed, over all partners.
    pub missed_articles: Vec<Count>,
    /// Per partner: the articles it missed (its enablement list).
    pub enablement: Vec<Enablement>,
    /// Good escalations flagged `kb_gap`, by product, with their most distinctive terms: what
    /// to write an article about.
    pub gaps: Vec<Gap>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enablement {
    pub partner: String,
    pub articles: Vec<Count>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    pub product: String,
    pub escalations: u64,
    pub terms: Vec<String>,
}

/// The scorecard of a connector over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    pub connector: String,
    pub audience: Audience,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub contracts: Contracts,
    /// Tickets read back (the partner edition: the partner's cases).
    pub tickets: u64,
    /// Vendor edition: tickets that name no partner (not in any partner's figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_partner: Option<u64>,
    pub partners: Vec<PartnerCard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<Knowledge>,
}

#[derive(Default)]
struct PartnerSums {
    period: Counts,
    months: BTreeMap<String, Counts>,
    bad: Vec<BadCase>,
    comments: Vec<String>,
}

/// Aggregates records as they stream in.
pub struct Aggregator {
    options: Options,
    progress: indicatif::ProgressBar,
    tickets: u64,
    without_partner: u64,
    partners: BTreeMap<String, PartnerSums>,
    /// Every partner name seen, to keep them out of another partner's edition.
    names: BTreeSet<String>,
    /// Escalations read, and in how many subjects each term appears (for distinctiveness).
    subjects: u64,
    df: HashMap<String, u64>,
    /// Per product: the kb_gap escalations and their terms' counts.
    gaps: BTreeMap<String, (u64, HashMap<String, u64>)>,
}

impl Aggregator {
    pub fn new(options: &Options, progress: indicatif::ProgressBar) -> Aggregator {
        Aggregator {
            options: options.clone(),
            progress,
            tickets: 0,
            without_partner: 0,
            partners: BTreeMap::new(),
            names: BTreeSet::new(),
            subjects: 0,
            df: HashMap::new(),
            gaps: BTreeMap::new(),
        }
    }

    fn partner_edition(&self) -> bool {
        self.options.audience == Audience::Partner
    }

    /// Builds the scorecard from what was read.
    pub fn finish(self, connector: &str, contracts: &Contracts) -> Scorecard {
        let partner_edition = self.partner_edition();
        let mut cards = Vec::new();
        let mut all_articles: BTreeMap<String, u64> = BTreeMap::new();
        let mut enablement = Vec::new();
        let wanted = self.options.partner.clone();
        let partners: Vec<(String, PartnerSums)> = match &wanted {
            // The partner asked for has a card even when it had no case in the period.
            Some(p) => {
                let mut map = self.partners;
                vec![(p.clone(), map.remove(p).unwrap_or_default())]
            }
            None => self.partners.into_iter().collect(),
        };
        let mut names = self.names;
        names.extend(contracts.partner_targets.keys().cloned());
        for (name, sums) in partners {
            names.remove(&name);
            let comments = partner_edition.then(|| {
                let others = partner_patterns(&names);
                sums.comments.iter().map(|c| redact(c, &others)).collect()
            });
            names.insert(name.clone());
            let target = contracts.target_of(&name);
            let period = Figures::of(&sums.period, target, contracts);
            for (a, n) in &sums.period.articles {
                *all_articles.entry(a.clone()).or_default() += n;
            }
            if !sums.period.articles.is_empty() {
                enablement.push(Enablement {
                    partner: name.clone(),
                    articles: top(&sums.period.articles, TOP),
                });
            }
            cards.push(PartnerCard {
                tier: tier_of(&contracts.tiers, &period),
                period,
                months: sums
                    .months
                    .iter()
                    .map(|(m, c)| Month {
                        month: m.clone(),
                        figures: Figures::of(c, target, contracts),
                    })
                    .collect(),
                bad_escalations: partner_edition.then_some(sums.bad),
                comments,
                partner: name,
            });
        }
        let knowledge = (!partner_edition).then(|| Knowledge {
            missed_articles: top(&all_articles, TOP),
            enablement,
            gaps: gaps(self.subjects, &self.df, &self.gaps),
        });
        let (tickets, without_partner) = if partner_edition {
            (cards.iter().map(|c| c.period.cases).sum(), None)
        } else {
            (self.tickets, Some(self.without_partner))
        };
        Scorecard {
            connector: connector.to_string(),
            audience: self.options.audience,
            from: self.options.period.from,
            to: self.options.period.to,
            contracts: if partner_edition {
                // Other partners' contract terms are not this partner's business.
                Contracts {
                    partner_targets: BTreeMap::new(),
                    ..contracts.clone()
                }
            } else {
                contracts.clone()
            },
            tickets,
            without_partner,
            partners: cards,
            knowledge,
        }
    }
}

/// Words of a subject as the knowledge view counts them: lower case, letters and digits, three
/// characters or more, no common words, each once.
fn terms(subject: &str) -> BTreeSet<String> {
    const STOP: &[&str] = &[
        "the", "and", "for", "with", "not", "does", "doesn", "can", "cannot", "after", "from",
        "when", "our", "your", "you", "are", "was", "but", "all", "any", "how", "why", "what",
        "this", "that", "have", "has", "get", "into", "out", "please", "help", "issue", "problem",
        "error", "since", "still", "again", "will", "won", "isn", "don", "there",
    ];
    subject
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
        .collect()
}

fn gaps(
    subjects: u64,
    df: &HashMap<String, u64>,
    groups: &BTreeMap<String, (u64, HashMap<String, u64>)>,
) -> Vec<Gap> {
    let mut out: Vec<Gap> = groups
        .iter()
        .map(|(product, (n, tf))| {
            let mut scored: Vec<(f64, &String)> = tf
                .iter()
                .filter(|(_, c)| **c >= 2 || *n < 4)
                .map(|(t, c)| {
                    let idf = (subjects as f64 / *df.get(t).unwrap_or(&1) as f64).ln();
                    (*c as f64 * idf, t)
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            Gap {
                product: product.clone(),
                escalations: *n,
                terms: scored
                    .into_iter()
                    .take(GAP_TERMS)
                    .map(|(_, t)| t.clone())
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.escalations
            .cmp(&a.escalations)
            .then_with(|| a.product.cmp(&b.product))
    });
    out
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^\s@<>()]+@[^\s@<>()]+\.[A-Za-z]{2,}").expect("valid regex"));
static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:https?://|www\.)\S+").expect("valid regex"));
/// Phone numbers, postcodes with numbers, account and card numbers: runs of 4+ digits, with
/// the separators such numbers are written with.
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\d[\d\s().\-/]{3,}\d").expect("valid regex"));
/// A greeting or sign-off followed by a name.
static NAMED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b((?i:my name is|i am|i'm|this is|regards|thanks|thank you|cheers|best|sincerely|mr\.?|mrs\.?|ms\.?|dr\.?))([,:]?\s+)(\p{Lu}[\p{L}'\-]+)(\s+\p{Lu}[\p{L}'\-]+)?")
        .expect("valid regex")
});

/// The patterns [`redact`] removes the `others` partners' names with: each name as a literal in
/// any case, in the set's order.
pub fn partner_patterns(others: &BTreeSet<String>) -> Vec<Regex> {
    others
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| Regex::new(&format!(r"(?i){}", regex::escape(o))).expect("escaped literal"))
        .collect()
}

/// A customer's comment as the partner edition quotes it: addresses, links, numbers and the
/// names that follow a greeting or sign-off removed, and any other partner's name too
/// (`others`, from [`partner_patterns`]).
pub fn redact(comment: &str, others: &[Regex]) -> String {
    let mut s = EMAIL.replace_all(comment, "[address]").into_owned();
    s = URL.replace_all(&s, "[link]").into_owned();
    s = NUMBER.replace_all(&s, "[number]").into_owned();
    s = NAMED.replace_all(&s, "$1$2[name]").into_owned();
    for re in others {
        s = re.replace_all(&s, "[another partner]").into_owned();
    }
    s.trim().to_string()
}

impl RecordSink for Aggregator {
    fn total(&mut self, total: u64) {
        self.progress.set_length(total);
    }

    fn record(&mut self, r: CaseRecord) {
        self.progress.inc(1);
        self.tickets += 1;
        if r.partner == crate::escalation::UNKNOWN_PARTNER {
            self.without_partner += 1;
            return;
        }
        if !self.names.contains(&r.partner) {
            self.names.insert(r.partner.clone());
        }
        if self
            .options
            .partner
            .as_ref()
            .is_some_and(|p| *p != r.partner)
        {
            return;
        }
        if r.escalated && !self.partner_edition() {
            let t = terms(&r.subject);
            self.subjects += 1;
            for w in &t {
                *self.df.entry(w.clone()).or_default() += 1;
            }
            if r.kb_gap && r.counted() == Some(Outcome::Good) {
                let product = r.product.clone().unwrap_or_else(|| "(no product)".into());
                let (n, tf) = self.gaps.entry(product).or_default();
                *n += 1;
                for w in t {
                    *tf.entry(w).or_default() += 1;
                }
            }
        }
        let month = r.opened_at.format("%Y-%m").to_string();
        let partner_edition = self.partner_edition();
        let sums = self.partners.entry(r.partner.clone()).or_default();
        sums.period.add(&r);
        sums.months.entry(month).or_default().add(&r);
        if partner_edition {
            if r.counted() == Some(Outcome::Bad) {
                sums.bad.push(BadCase {
                    ticket: r.ticket_id.clone(),
                    opened: r.opened_at.format("%Y-%m-%d").to_string(),
                    reasons: r.reasons.clone(),
                    missing_fields: r.missing_fields.clone(),
                    articles: r.kb_articles.clone(),
                    late: r.late,
                    reviewed: r.reviewed == Some(Outcome::Bad),
                });
            }
            if let Some(c) = &r.survey.comment
                && matches!(r.survey.about, Some(About::Support | About::Both))
            {
                // Redacted once every partner name is known.
                sums.comments.push(c.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_lose_addresses_numbers_names_and_other_partners() {
        let others: BTreeSet<String> = ["Northwind Support".to_string()].into();
        let c = redact(
            "Thanks for the help! Better than northwind support. Mail jane.doe@customer.example, \
             call +44 20 7946 0958, see https://portal.example/t/5. Best regards, Jane Doe",
            &partner_patterns(&others),
        );
        assert_eq!(
            c,
            "Thanks for the help! Better than [another partner]. Mail [address], call [number], \
             see [link] Best regards, [name]"
        );
    }

    #[test]
    fn gap_terms_are_the_distinctive_ones() {
        let mut df = HashMap::new();
        for (t, n) in [("export", 50), ("overtime", 3), ("payslip", 3)] {
            df.insert(t.to_string(), n);
        }
        let tf: HashMap<String, u64> = [("export", 3), ("overtime", 3), ("payslip", 2)]
            .into_iter()
            .map(|(t, n)| (t.to_string(), n))
            .collect();
        let groups = BTreeMap::from([("Payroll".to_string(), (3, tf))]);
        let g = gaps(100, &df, &groups);
        assert_eq!(g[0].terms, ["overtime", "payslip", "export"]);
        assert_eq!(
            terms("The Export of the PDF fails"),
            BTreeSet::from(["export".into(), "pdf".into(), "fails".into()])
        );
    }
}
