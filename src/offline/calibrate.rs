//! The `calibrate` command: how far a connector's reviewers agree with the judge, and the
//! threshold and review bound that keep precision of "bad" at a target on the vendor's own
//! reviewed cases.
//!
//! It reads the period's tickets back through [`Record::records`](crate::helpdesk::Record::records)
//! and keeps counts only (per recorded confidence percent), so memory stays flat however many
//! tickets there are. A reviewed case tells the threshold something when its verdict records the
//! judge's confidence and no hand-off field made it bad (the threshold cannot change those).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::assess::kb::KbSettings;
use crate::assess::{Outcome, ReasonKind};
use crate::helpdesk::HelpdeskError;
use crate::helpdesk::records::{CaseRecord, Period, RecordSink, floor_percent};
use crate::offline::report::Source;
use crate::offline::report::stats::{Estimate, wilson};

/// The share of review-band cases a person must find bad for the band to be worth a person's
/// time: the rule the default review bound was chosen with on dev.
const REVIEW_PRECISION: f64 = 0.5;

/// What `calibrate` is asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub period: Period,
    /// The precision of "bad" the proposal keeps (0–1).
    pub target: f64,
    /// Fewer reviewed cases with a recorded confidence than this: the proposal is shown, but
    /// the sample is too small to move the connector's values.
    pub min_reviewed: u64,
}

/// A person's decisions on one group of the judge's verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Agreement {
    /// Verdicts of the group a person decided.
    pub reviewed: u64,
    /// Of those, how many the person decided bad.
    pub bad: u64,
}

impl Agreement {
    fn add(&mut self, bad: bool) {
        self.reviewed += 1;
        self.bad += u64::from(bad);
    }

    /// The share a person decided bad, with its 95 % Wilson interval.
    pub fn precision(&self) -> Option<Estimate> {
        wilson(self.bad, self.reviewed)
    }
}

/// Reviewed cases by the judge's recorded confidence, in whole percent (index 0–100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ByConfidence([Agreement; 101]);

impl Default for ByConfidence {
    fn default() -> Self {
        ByConfidence([Agreement::default(); 101])
    }
}

impl ByConfidence {
    /// One reviewed case at a confidence of `percent`, decided bad or not.
    pub(crate) fn add(&mut self, percent: u8, bad: bool) {
        self.0[usize::from(percent.min(100))].add(bad);
    }

    /// The cases at or above `percent`.
    fn at_or_above(&self, percent: usize) -> Agreement {
        self.0[percent.min(100)..]
            .iter()
            .fold(Agreement::default(), |a, b| Agreement {
                reviewed: a.reviewed + b.reviewed,
                bad: a.bad + b.bad,
            })
    }

    fn total(&self) -> u64 {
        self.at_or_above(0).reviewed
    }

    /// The lowest recorded percent at and above which every cut keeps precision ≥ `target`;
    /// `None` when even the highest does not (no article should make a case bad).
    pub(crate) fn lowest_threshold(&self, target: f64) -> Option<usize> {
        let (mut best, mut above) = (None, Agreement::default());
        for p in (0..=100).rev() {
            above.reviewed += self.0[p].reviewed;
            above.bad += self.0[p].bad;
            if self.0[p].reviewed == 0 {
                continue;
            }
            if (above.bad as f64) < target * above.reviewed as f64 {
                break;
            }
            best = Some(p);
        }
        best
    }

    /// The lowest percent below `threshold` whose band up to the threshold a person still finds
    /// bad at least half the time; `threshold` itself when none (no review lane).
    pub(crate) fn review_bound(&self, threshold: usize) -> usize {
        let (mut bound, mut band) = (threshold, Agreement::default());
        for p in (0..threshold.min(101)).rev() {
            band.reviewed += self.0[p].reviewed;
            band.bad += self.0[p].bad;
            if self.0[p].reviewed > 0 && band.bad as f64 >= REVIEW_PRECISION * band.reviewed as f64
            {
                bound = p;
            }
        }
        bound
    }
}

/// Streams the records in and counts what calibration needs.
#[derive(Debug, Default)]
pub struct Tally {
    /// Tickets carrying a verdict of the judge.
    judged: u64,
    /// Of those, sent to a person by the judge (outcome `review`).
    sent_to_review: u64,
    /// Tickets carrying a person's decision.
    reviewed: u64,
    /// Decisions that went against the judge's good or bad.
    overturned: u64,
    /// The judge's bad verdicts a person decided, overall and by reason.
    bad: Agreement,
    missing_handoff: Agreement,
    kb_resolvable: Agreement,
    /// The judge's good verdicts a person decided (`bad`: overturned to bad).
    good: Agreement,
    /// The judge's review verdicts a person decided.
    review: Agreement,
    overturns: BTreeMap<String, u64>,
    /// Reviewed cases whose bad verdict rests on missing hand-off fields: bad at any threshold.
    handoff: Agreement,
    /// Reviewed cases the threshold decides, by recorded confidence.
    by_confidence: ByConfidence,
    /// Reviewed cases the threshold decides whose verdict records no confidence.
    without_confidence: u64,
}

impl RecordSink for Tally {
    fn record(&mut self, r: CaseRecord) {
        let Some(verdict) = r.verdict else {
            return;
        };
        self.judged += 1;
        self.sent_to_review += u64::from(verdict == Outcome::Review);
        let Some(decision) = r.reviewed else {
            return;
        };
        self.reviewed += 1;
        let bad = decision == Outcome::Bad;
        if r.overturned() {
            self.overturned += 1;
        }
        if let Some(reason) = &r.overturn {
            *self.overturns.entry(reason.clone()).or_default() += 1;
        }
        let reason = |kind: ReasonKind| r.reasons.contains(&kind);
        match verdict {
            Outcome::Bad => {
                self.bad.add(bad);
                if reason(ReasonKind::MissingHandoff) {
                    self.missing_handoff.add(bad);
                }
                if reason(ReasonKind::KbResolvable) {
                    self.kb_resolvable.add(bad);
                }
            }
            Outcome::Good => self.good.add(bad),
            Outcome::Review => self.review.add(bad),
        }
        if reason(ReasonKind::MissingHandoff) {
            self.handoff.add(bad);
            return;
        }
        match r.kb_confidence {
            Some(c) => self.by_confidence.add(floor_percent(c), bad),
            None => self.without_confidence += 1,
        }
    }
}

/// Precision of "bad" at one threshold, on the reviewed cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AtThreshold {
    pub threshold: f64,
    /// Cases the knowledge base would make bad at this threshold.
    pub kb: Agreement,
    pub kb_precision: Option<Estimate>,
    /// Together with the cases that missing hand-off fields make bad.
    pub all: Agreement,
    pub all_precision: Option<Estimate>,
}

/// What `calibrate` found and proposes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub connector: String,
    pub from: String,
    pub to: String,
    pub target: f64,
    pub judged: u64,
    pub sent_to_review: u64,
    /// Share of judged verdicts the judge sent to a person.
    pub review_share: Option<Estimate>,
    pub reviewed: u64,
    /// Share of judged verdicts a person decided.
    pub review_rate: Option<Estimate>,
    pub overturned: u64,
    /// Precision of the judge's "bad": the share of its reviewed bad verdicts a person kept bad.
    pub bad: Agreement,
    pub bad_precision: Option<Estimate>,
    pub missing_handoff: Agreement,
    pub missing_handoff_precision: Option<Estimate>,
    pub kb_resolvable: Agreement,
    pub kb_resolvable_precision: Option<Estimate>,
    /// The judge's good and review verdicts a person decided, and how many of them bad.
    pub good: Agreement,
    pub review: Agreement,
    pub overturn_reasons: BTreeMap<String, u64>,
    /// The connector's current threshold and review bound.
    pub current_threshold: f64,
    pub current_review_bound: f64,
    /// Reviewed cases the threshold decides that record a confidence (the proposal's sample),
    /// and those that record none (judged before confidences were recorded).
    pub calibration_cases: u64,
    pub without_confidence: u64,
    /// `None`: no threshold keeps the target (even the highest recorded confidence does not).
    pub proposed_threshold: Option<f64>,
    pub proposed_review_bound: Option<f64>,
    /// Precision at the proposed threshold, on the same reviewed cases.
    pub at_proposed: Option<AtThreshold>,
    /// Whether the sample is large enough to move the connector's values.
    pub enough: bool,
    pub min_reviewed: u64,
}

impl Tally {
    /// Precision at a threshold given in whole percent.
    fn at(&self, percent: usize) -> AtThreshold {
        let kb = self.by_confidence.at_or_above(percent);
        let all = Agreement {
            reviewed: kb.reviewed + self.handoff.reviewed,
            bad: kb.bad + self.handoff.bad,
        };
        AtThreshold {
            threshold: percent as f64 / 100.0,
            kb,
            kb_precision: kb.precision(),
            all,
            all_precision: all.precision(),
        }
    }

    /// The figures and the proposal for `connector`.
    pub fn finish(self, connector: &str, kb: &KbSettings, options: &Options) -> Calibration {
        let threshold = self.by_confidence.lowest_threshold(options.target);
        let bound = threshold.map(|t| self.by_confidence.review_bound(t));
        let (from, to) = options.period.rfc3339();
        let cases = self.by_confidence.total();
        Calibration {
            connector: connector.to_string(),
            from,
            to,
            target: options.target,
            judged: self.judged,
            sent_to_review: self.sent_to_review,
            review_share: wilson(self.sent_to_review, self.judged),
            reviewed: self.reviewed,
            review_rate: wilson(self.reviewed, self.judged),
            overturned: self.overturned,
            bad: self.bad,
            bad_precision: self.bad.precision(),
            missing_handoff: self.missing_handoff,
            missing_handoff_precision: self.missing_handoff.precision(),
            kb_resolvable: self.kb_resolvable,
            kb_resolvable_precision: self.kb_resolvable.precision(),
            good: self.good,
            review: self.review,
            current_threshold: kb.threshold,
            // The connector file refuses a review bound above the threshold.
            current_review_bound: kb.review_bound,
            calibration_cases: cases,
            without_confidence: self.without_confidence,
            proposed_threshold: threshold.map(|t| t as f64 / 100.0),
            proposed_review_bound: bound.map(|b| b as f64 / 100.0),
            at_proposed: threshold.map(|t| self.at(t)),
            enough: cases >= options.min_reviewed,
            min_reviewed: options.min_reviewed,
            overturn_reasons: self.overturns,
        }
    }
}

/// Reads the period back from the connector's helpdesk (`source`) and calibrates the judge's
/// current settings `kb`.
pub async fn calibrate(
    source: Source<'_>,
    kb: &KbSettings,
    options: &Options,
) -> Result<Calibration, HelpdeskError> {
    let mut tally = Tally::default();
    source
        .record
        .records(&options.period, source.survey, &mut tally)
        .await?;
    Ok(tally.finish(source.connector, kb, options))
}

fn share(a: &Agreement) -> String {
    match a.precision() {
        Some(e) => format!(
            "{:.3} ({} of {}; 95 % interval {:.3} – {:.3})",
            e.value, a.bad, a.reviewed, e.low, e.high
        ),
        None => "no reviewed case".into(),
    }
}

fn rate(k: u64, n: u64, e: Option<Estimate>) -> String {
    e.map_or_else(
        || "no judged case".into(),
        |e| format!("{:.3} ({k} of {n}; {:.3} – {:.3})", e.value, e.low, e.high),
    )
}

/// The calibration as text: the agreement figures, then the TOML lines to paste.
pub fn render_text(c: &Calibration) -> String {
    let mut out = format!(
        "Calibration of connector `{}`, tickets created {} to {}\n\n",
        c.connector, c.from, c.to
    );
    out += &format!("judged: {}\n", c.judged);
    out += &format!(
        "sent to review by the judge: {}\n",
        rate(c.sent_to_review, c.judged, c.review_share)
    );
    out += &format!(
        "decided by a person (review rate): {}\n",
        rate(c.reviewed, c.judged, c.review_rate)
    );
    out += &format!(
        "overturned (a person's decision against the judge's good or bad): {}\n\n",
        c.overturned
    );
    out += "precision of \"bad\" (the judge's bad verdicts a person kept bad):\n";
    out += &format!("  overall          {}\n", share(&c.bad));
    out += &format!("  missing_handoff  {}\n", share(&c.missing_handoff));
    out += &format!("  kb_resolvable    {}\n", share(&c.kb_resolvable));
    out += &format!(
        "good verdicts decided by a person: {}, of them bad: {}\nreview verdicts decided by a person: {}, of them bad: {}\n",
        c.good.reviewed, c.good.bad, c.review.reviewed, c.review.bad
    );
    if c.overturn_reasons.is_empty() {
        out += "overturn reasons: none recorded\n";
    } else {
        out += "overturn reasons:\n";
        for (reason, n) in &c.overturn_reasons {
            out += &format!("  {reason}: {n}\n");
        }
    }
    out += &format!(
        "\ncurrent: threshold {:.4}, review bound {:.4}\n",
        c.current_threshold, c.current_review_bound
    );
    out += &format!(
        "reviewed cases the threshold decides, with a recorded confidence: {} ({} without one)\n",
        c.calibration_cases, c.without_confidence
    );
    let too_small = format!(
        "\nThe sample is too small to move the connector's values: {} reviewed cases with a recorded confidence, {} needed. Keep the current threshold and review bound",
        c.calibration_cases, c.min_reviewed
    );
    let (Some(t), Some(b), Some(at)) =
        (c.proposed_threshold, c.proposed_review_bound, c.at_proposed)
    else {
        if !c.enough {
            out += &too_small;
            out += ".\n";
        }
        out += &format!(
            "\nNo threshold keeps precision of \"bad\" at {:.2} on these cases: even the highest recorded confidence falls short. Keep the current values and look at the overturned cases.\n",
            c.target
        );
        return out;
    };
    out += &format!(
        "at threshold {t:.2}: precision of \"bad\" {} by the knowledge base, {} with missing hand-off fields\n",
        share(&at.kb),
        share(&at.all)
    );
    if c.enough {
        out += &format!(
            "\nProposed for precision of \"bad\" >= {:.2} (paste into the connector file):\n\n",
            c.target
        );
        out += &format!("[knowledge_base]\nthreshold = {t:.2}\nreview_bound = {b:.2}\n");
    } else {
        out += &too_small;
        out += "; what the sample points at, for information:\n\n";
        out += &format!("# [knowledge_base]\n# threshold = {t:.2}\n# review_bound = {b:.2}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(cases: &[(usize, u64, u64)]) -> ByConfidence {
        let mut b = ByConfidence::default();
        for &(p, reviewed, bad) in cases {
            b.0[p] = Agreement { reviewed, bad };
        }
        b
    }

    #[test]
    fn the_threshold_is_the_lowest_cut_at_and_above_which_precision_stays_at_the_target() {
        // 95–99: all bad; 90: 8 of 10; 85: 2 of 10; 50: 1 of 4.
        let b = tally(&[
            (99, 10, 10),
            (95, 10, 10),
            (90, 10, 8),
            (85, 10, 2),
            (50, 4, 1),
        ]);
        // At 90: 28 of 30 = 0.933; at 85: 30 of 40 = 0.75.
        assert_eq!(b.lowest_threshold(0.90), Some(90));
        assert_eq!(b.lowest_threshold(0.95), Some(95));
        // The band below 90: 85 gives 2 of 10, then 50 gives 3 of 14: never half.
        assert_eq!(b.review_bound(90), 90);
        let b = tally(&[(95, 10, 10), (80, 10, 6), (60, 10, 4), (40, 10, 1)]);
        assert_eq!(b.lowest_threshold(0.90), Some(95));
        // 80: 6 of 10; with 60: 10 of 20 (half); with 40: 11 of 30.
        assert_eq!(b.review_bound(95), 60);
    }

    #[test]
    fn a_high_cut_that_misses_the_target_stops_the_walk() {
        // The top bucket alone is 1 of 2: no threshold keeps 0.9, however good the rest.
        let b = tally(&[(97, 2, 1), (90, 50, 50)]);
        assert_eq!(b.lowest_threshold(0.90), None);
        assert_eq!(tally(&[]).lowest_threshold(0.90), None);
    }

    fn record(
        verdict: Outcome,
        reviewed: Option<Outcome>,
        reasons: &[ReasonKind],
        conf: Option<f64>,
    ) -> CaseRecord {
        CaseRecord {
            prechecked: None,
            solved: false,
            ticket_id: "1".into(),
            partner: "Acme".into(),
            product: None,
            subject: String::new(),
            opened_at: chrono::DateTime::UNIX_EPOCH,
            escalated: true,
            verdict: Some(verdict),
            reviewed,
            overturn: None,
            reasons: reasons.to_vec(),
            late: false,
            kb_gap: false,
            missing_fields: vec![],
            kb_articles: vec![],
            kb_confidence: conf,
            survey: Default::default(),
        }
    }

    #[test]
    fn hand_off_verdicts_and_unreviewed_ones_stay_out_of_the_threshold() {
        let mut t = Tally::default();
        t.record(record(
            Outcome::Bad,
            Some(Outcome::Good),
            &[ReasonKind::KbResolvable],
            Some(0.87),
        ));
        t.record(record(
            Outcome::Bad,
            Some(Outcome::Bad),
            &[ReasonKind::MissingHandoff],
            Some(0.95),
        ));
        t.record(record(
            Outcome::Bad,
            None,
            &[ReasonKind::KbResolvable],
            Some(0.99),
        ));
        t.record(record(Outcome::Review, Some(Outcome::Bad), &[], Some(0.5)));
        t.record(record(Outcome::Good, Some(Outcome::Bad), &[], None));
        assert_eq!(
            (t.judged, t.sent_to_review, t.reviewed, t.overturned),
            (5, 1, 4, 2)
        );
        assert_eq!(
            t.bad,
            Agreement {
                reviewed: 2,
                bad: 1
            }
        );
        assert_eq!(
            t.kb_resolvable,
            Agreement {
                reviewed: 1,
                bad: 0
            }
        );
        assert_eq!(
            t.missing_handoff,
            Agreement {
                reviewed: 1,
                bad: 1
            }
        );
        assert_eq!(
            t.handoff,
            Agreement {
                reviewed: 1,
                bad: 1
            }
        );
        assert_eq!(
            t.by_confidence.0[87],
            Agreement {
                reviewed: 1,
                bad: 0
            }
        );
        assert_eq!(
            t.by_confidence.0[50],
            Agreement {
                reviewed: 1,
                bad: 1
            }
        );
        assert_eq!(t.by_confidence.total(), 2);
        assert_eq!(t.without_confidence, 1);
        let at = t.at(50);
        assert_eq!(
            at.kb,
            Agreement {
                reviewed: 2,
                bad: 1
            }
        );
        assert_eq!(
            at.all,
            Agreement {
                reviewed: 3,
                bad: 2
            }
        );
    }
}
