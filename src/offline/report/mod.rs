//! The partner scorecard (`escalation-gate report`): every ticket of a period read back from
//! the helpdesk (the record) and aggregated as it streams in, per partner and month, into the
//! figures partner contracts pay on: escalation rate, the good-escalation ratio with its 95 %
//! Wilson interval against the target, bad escalations by reason, the blind survey's CSAT and
//! CES (ratings about the product kept apart from the support score), the tier reached, and a
//! knowledge view. Memory grows with partners, months and vocabulary, not with tickets (the
//! partner edition also lists that partner's bad escalations and comments, which it shows).

pub mod articles;
pub mod render;
pub mod stats;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;
use serde::Serialize;

use self::articles::Articles;
use self::stats::{Estimate, Position, Scores, wilson};
use crate::assess::{Outcome, ReasonKind};
use crate::config::contracts::{Contracts, Tier};
use crate::helpdesk::records::{CaseRecord, Period, Prechecked, RecordSink};
use crate::helpdesk::{HelpdeskError, Record};
use crate::kb::ArticleLink;
use crate::runtime::connector::{Connector, Kb};
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

/// What a scorecard is read from: a connector's id, its helpdesk's record, survey names,
/// contracts, and where the articles the tickets name by id are looked up.
pub struct Source<'a> {
    pub connector: &'a str,
    pub record: &'a dyn Record,
    pub survey: Option<&'a SurveyFields>,
    pub contracts: &'a Contracts,
    pub articles: Articles<'a>,
}

impl<'a> Source<'a> {
    /// Where `connector`'s records are read from, and its articles looked up (the embedded
    /// index once it serves, else the search API); `None` when its helpdesk cannot read a
    /// period back.
    pub fn of(connector: &'a Connector) -> Option<Source<'a>> {
        Some(Source {
            connector: &connector.id,
            record: connector.helpdesk.record.as_deref()?,
            survey: connector.survey.as_ref().map(|s| &s.settings.fields),
            contracts: &connector.contracts,
            articles: match &connector.kb {
                Kb::Local(kb) => kb.index().map_or(Articles::Unnamed, Articles::Index),
                Kb::Remote(kb) => Articles::Backend(kb.as_ref()),
                Kb::Mirror { mirror, fallback } => match (mirror.index(), fallback) {
                    (Some(index), _) => Articles::Index(index),
                    (None, Some(kb)) => Articles::Backend(kb.as_ref()),
                    (None, None) => Articles::Unnamed,
                },
            },
        })
    }
}

/// Why a scorecard cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Helpdesk(#[from] HelpdeskError),
    /// `--partner` names no partner of the period or of the contracts: its edition would be
    /// empty.
    #[error(
        "no partner `{partner}` in the period's tickets or in `[report.partners]` (names are matched exactly, as the connector writes them); {}",
        known_partners(known)
    )]
    UnknownPartner { partner: String, known: Vec<String> },
}

fn known_partners(known: &[String]) -> String {
    if known.is_empty() {
        "no ticket of the period names a partner".to_string()
    } else {
        format!("known partners: {}", known.join(", "))
    }
}

/// Reads the period from the connector's helpdesk and builds its scorecard; `progress` is told
/// the total when the helpdesk says it, and each record as it arrives. The articles the
/// scorecard counts are then looked up by id for their titles and links.
pub async fn build(
    source: Source<'_>,
    options: &Options,
    progress: &indicatif::ProgressBar,
) -> Result<Scorecard, ReportError> {
    let mut agg = Aggregator::new(options, progress.clone());
    source
        .record
        .records(&options.period, source.survey, &mut agg)
        .await?;
    let mut card = agg.finish(source.connector, source.contracts)?;
    card.read_comments(source.survey.is_some_and(|s| s.comment.is_some()));
    card.articles = source.articles.links(&card.article_ids()).await;
    Ok(card)
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
    prechecks: Prechecks,
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
        if let Some(checked) = r.prechecked {
            self.prechecks.add(checked, r);
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
                let reasons = bad_reasons(r);
                if reasons.contains(&ReasonKind::MissingHandoff) {
                    self.missing_handoff += 1;
                }
                if reasons.contains(&ReasonKind::KbResolvable) {
                    self.kb_resolvable += 1;
                }
                // The fields and the article are the judge's findings: a person's "bad" over
                // the judge's "good" has none.
                if r.verdict == Some(Outcome::Bad) {
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

/// Why a bad escalation counts as bad: the judge's reasons where the judge said bad, else the
/// reason a person gave for deciding bad (its overturn reason, when that is a reason of a bad
/// verdict).
fn bad_reasons(r: &CaseRecord) -> Vec<ReasonKind> {
    if r.verdict == Some(Outcome::Bad) {
        return r.reasons.clone();
    }
    ReasonKind::ALL
        .into_iter()
        .filter(|k| r.overturn.as_deref() == Some(k.as_str()))
        .collect()
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
    /// Escalations flagged late (escalated long after opening), good or bad: not a reason of a
    /// bad verdict.
    pub late: u64,
    /// Good over good + bad with its 95 % Wilson interval; `None` below the minimum sample
    /// ("not enough data": never a number to pay on).
    pub good_ratio: Option<Estimate>,
    pub target: f64,
    /// Where the interval lies against the target.
    pub against_target: Option<Position>,
    pub bad_reasons: BadReasons,
    /// What the check before escalating prevented, from the cases whose ticket records what it
    /// said (the Zendesk sidebar app's tags, or the request form's `precheck_field`).
    pub prechecks: Prechecks,
    pub surveys: SurveyFigures,
}

/// Escalations checked before they were sent, and what became of what the check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prechecks {
    /// Escalations whose ticket records a check before escalating.
    pub checked: u64,
    /// The check said bad; the verdict that counts is good: fixed before sending.
    pub fixed_before_sending: u64,
    /// The check said bad; the verdict that counts is bad: sent despite the check.
    pub sent_despite_check: u64,
    /// Cases whose check listed an article, solved without being escalated: drafts abandoned
    /// after an article was shown (escalations avoided).
    pub abandoned_after_article: u64,
}

impl Prechecks {
    /// A case `r` whose ticket records a check before escalating (`checked`).
    fn add(&mut self, checked: Prechecked, r: &CaseRecord) {
        if !r.escalated {
            if checked.article_shown && r.solved {
                self.abandoned_after_article += 1;
            }
            return;
        }
        self.checked += 1;
        match (checked.said, r.counted()) {
            (Outcome::Bad, Some(Outcome::Good)) => self.fixed_before_sending += 1,
            (Outcome::Bad, Some(Outcome::Bad)) => self.sent_despite_check += 1,
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadReasons {
    pub missing_handoff: u64,
    pub kb_resolvable: u64,
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
            late: c.late,
            good_ratio,
            target,
            against_target: good_ratio.map(|e| e.against(target)),
            bad_reasons: BadReasons {
                missing_handoff: c.missing_handoff,
                kb_resolvable: c.kb_resolvable,
                missing_fields: top(&c.fields, TOP),
                articles: top(&c.articles, TOP),
            },
            prechecks: c.prechecks,
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
    /// A figure that could change the tier has an interval that straddles its threshold: the
    /// sample cannot tell, and `notes` says which.
    pub uncertain: bool,
    /// No tier reached because a figure the next tier needs is below its minimum sample (and
    /// nothing else rules that tier out): not a miss, too few cases to say.
    pub not_enough_data: bool,
    pub notes: Vec<String>,
    /// The next better tier and what it was missed by.
    pub next: Option<String>,
    pub missed_by: Vec<String>,
}

/// One condition of a tier, checked.
struct Check {
    /// `None`: the figure is below its minimum sample.
    position: Option<Position>,
    met: bool,
    note: Option<String>,
    missed: Option<String>,
}

impl Check {
    /// Missed whatever more cases would show: the whole interval is below the threshold.
    fn ruled_out(&self) -> bool {
        self.position == Some(Position::Below)
    }
}

fn check(what: &str, figure: Option<Estimate>, min: f64, digits: usize) -> Check {
    let Some(e) = figure else {
        return Check {
            position: None,
            met: false,
            note: None,
            missed: Some(format!("{what}: not enough data")),
        };
    };
    let met = e.value >= min;
    let position = e.against(min);
    let note = (position == Position::Straddles).then(|| {
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
    Check {
        position: Some(position),
        met,
        note,
        missed,
    }
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
    // Every condition of the tier reached is met: one whose interval straddles it may not be.
    let mut notes: Vec<String> = reached
        .map(|i| {
            checks(&tiers[i], f)
                .into_iter()
                .filter_map(|c| c.note)
                .collect()
        })
        .unwrap_or_default();
    let next_i = match reached {
        Some(0) => None,
        Some(i) => Some(i - 1),
        None => Some(tiers.len() - 1),
    };
    let mut not_enough_data = false;
    let (next, missed_by) = match next_i {
        Some(i) => {
            let c = checks(&tiers[i], f);
            // A tier one figure rules out stays missed whatever the others do: their notes
            // would be noise. Without a figure, more cases are needed before anything is said.
            if !c.iter().any(Check::ruled_out) {
                if c.iter().any(|c| c.position.is_none()) {
                    not_enough_data = reached.is_none();
                } else {
                    notes.extend(c.iter().filter_map(|c| c.note.clone()));
                }
            }
            (
                Some(tiers[i].name.clone()),
                c.into_iter().filter_map(|c| c.missed).collect(),
            )
        }
        None => (None, Vec::new()),
    };
    Some(TierResult {
        reached: reached.map(|i| tiers[i].name.clone()),
        label: reached.map(|i| tiers[i].label.clone()),
        uncertain: !notes.is_empty(),
        not_enough_data,
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
    /// What the title calls the vendor (`[report] display_name`, else the survey's `company`,
    /// else the connector id).
    pub name: String,
    pub audience: Audience,
    /// Tickets created from `from` (inclusive) to `to` (exclusive).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The last day of the period, included (UTC).
    pub last_day: NaiveDate,
    /// Computed from a backfill file: the judge's verdicts on past escalations, before any
    /// survey or review.
    pub baseline: bool,
    /// Whether customers' comments are read (the survey maps a `comment_field`).
    pub comments_read: bool,
    pub contracts: Contracts,
    /// Tickets read back (the partner edition: the partner's cases).
    pub tickets: u64,
    /// Vendor edition: tickets that name no partner (not in any partner's figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_partner: Option<u64>,
    pub partners: Vec<PartnerCard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<Knowledge>,
    /// The title and link of each article the scorecard names, by the id the tickets record
    /// (an article the knowledge base could not show is named by its id only).
    pub articles: BTreeMap<String, ArticleLink>,
}

impl Scorecard {
    /// Says whether customers' comments are read at all: without, a partner edition shows no
    /// comment section (rather than "no comments").
    pub fn read_comments(&mut self, read: bool) {
        self.comments_read = read;
        if !read {
            for p in &mut self.partners {
                p.comments = None;
            }
        }
    }

    /// Every article id the scorecard names.
    pub fn article_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for p in &self.partners {
            ids.extend(p.period.bad_reasons.articles.iter().map(|c| c.name.clone()));
            for b in p.bad_escalations.iter().flatten() {
                ids.extend(b.articles.iter().cloned());
            }
        }
        if let Some(k) = &self.knowledge {
            ids.extend(k.missed_articles.iter().map(|c| c.name.clone()));
            for e in &k.enablement {
                ids.extend(e.articles.iter().map(|c| c.name.clone()));
            }
        }
        ids
    }
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

    /// Builds the scorecard from what was read; refuses a partner that neither the period's
    /// tickets nor the contracts name.
    pub fn finish(self, connector: &str, contracts: &Contracts) -> Result<Scorecard, ReportError> {
        let partner_edition = self.partner_edition();
        let mut cards = Vec::new();
        let mut all_articles: BTreeMap<String, u64> = BTreeMap::new();
        let mut enablement = Vec::new();
        let mut names = self.names;
        names.extend(contracts.partner_targets.keys().cloned());
        let wanted = self.options.partner.clone();
        let partners: Vec<(String, PartnerSums)> = match &wanted {
            Some(p) if !names.contains(p) => {
                return Err(ReportError::UnknownPartner {
                    partner: p.clone(),
                    known: names.into_iter().collect(),
                });
            }
            // A partner of the contracts has a card even when it had no case in the period.
            Some(p) => {
                let mut map = self.partners;
                vec![(p.clone(), map.remove(p).unwrap_or_default())]
            }
            None => self.partners.into_iter().collect(),
        };
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
        let period = self.options.period;
        Ok(Scorecard {
            connector: connector.to_string(),
            name: if contracts.display_name.is_empty() {
                connector.to_string()
            } else {
                contracts.display_name.clone()
            },
            audience: self.options.audience,
            from: period.from,
            to: period.to,
            last_day: (period.to - chrono::Duration::nanoseconds(1)).date_naive(),
            baseline: false,
            comments_read: false,
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
            articles: BTreeMap::new(),
        })
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
/// Greetings, salutations, sign-offs and introductions, in English and the common European
/// languages: the capitalised words that follow one are a name.
const OPENERS: &[&str] = &[
    // greetings and salutations
    "hi",
    "hello",
    "hey",
    "hiya",
    "dear",
    "greetings",
    "good morning",
    "good afternoon",
    "good evening",
    "morning",
    "hallo",
    "guten tag",
    "guten morgen",
    "moin",
    "servus",
    "liebe",
    "lieber",
    "sehr geehrte",
    "sehr geehrter",
    "bonjour",
    "bonsoir",
    "salut",
    "cher",
    "chère",
    "hola",
    "buenos días",
    "buenas tardes",
    "estimado",
    "estimada",
    "querido",
    "querida",
    "olá",
    "ola",
    "ciao",
    "buongiorno",
    "buonasera",
    "gentile",
    "caro",
    "cara",
    "hej",
    "hei",
    "hoi",
    "goedemorgen",
    "beste",
    // sign-offs and introductions
    "regards",
    "best",
    "cheers",
    "thanks",
    "thank you",
    "many thanks",
    "sincerely",
    "yours",
    "br",
    "gruß",
    "grüße",
    "gruss",
    "grüsse",
    "danke",
    "merci",
    "cordialement",
    "gracias",
    "saludos",
    "atentamente",
    "grazie",
    "saluti",
    "obrigado",
    "obrigada",
    "tack",
    "hälsningar",
    "mvh",
    "groeten",
    "my name is",
    "i am",
    "i'm",
    "this is",
];

/// Capitalised words after an opener that are not names ("Hi There", "Thanks Again", "Hello
/// Team"); an opener itself ("Best Regards, Jane") is not one either.
const NOT_NAMES: &[&str] = &[
    "there",
    "all",
    "everyone",
    "everybody",
    "team",
    "guys",
    "folks",
    "again",
    "so",
    "for",
    "a",
    "the",
    "you",
    "very",
    "much",
    "support",
    "sir",
    "madam",
    "zusammen",
    "tout",
    "todos",
    "tutti",
    "alle",
    "i",
    "we",
    "it",
    "this",
    "that",
    "and",
];

/// An opener with the punctuation after it and an optional title (Mr, Frau, Mme, Dr, ...).
static OPENER: LazyLock<Regex> = LazyLock::new(|| {
    let title =
        r"(?:(?i:mr|mrs|ms|miss|mx|dr|prof|herr|frau|m|mme|mlle|sr|sra|srta|sig|sig\.ra)\.?\s+)?";
    Regex::new(&format!(r"\b(?i:{})[,:;!.]?\s+{title}", OPENERS.join("|"))).expect("valid regex")
});
/// One or two capitalised words on one line, at the start.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    let word = r"\p{Lu}[\p{L}'’\-]+";
    Regex::new(&format!(r"^{word}(?:[ \t]+{word})?")).expect("valid regex")
});

/// `text` with the name after each opener replaced by `[name]`.
fn redact_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(m) = OPENER.find_at(text, pos) {
        out.push_str(&text[pos..m.end()]);
        pos = m.end();
        let Some(name) = NAME.find(&text[pos..]) else {
            continue;
        };
        let first = name.as_str().split_whitespace().next().unwrap_or("");
        let first = first.to_lowercase();
        if NOT_NAMES.contains(&first.as_str()) || OPENERS.contains(&first.as_str()) {
            continue;
        }
        out.push_str("[name]");
        pos += name.end();
    }
    out.push_str(&text[pos..]);
    out
}

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
/// names that follow a greeting, salutation or sign-off ("Hi Ottilie", "Dear Mr Smith",
/// "Regards, Jane Doe", "Hallo Jörg", ...) removed, and any other partner's name too (`others`,
/// from [`partner_patterns`]).
pub fn redact(comment: &str, others: &[Regex]) -> String {
    let mut s = EMAIL.replace_all(comment, "[address]").into_owned();
    s = URL.replace_all(&s, "[link]").into_owned();
    s = NUMBER.replace_all(&s, "[number]").into_owned();
    s = redact_names(&s);
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
                    reasons: bad_reasons(&r),
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
