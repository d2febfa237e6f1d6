//! Measures the knowledge-base judgement on labelled cases (the `eval` command).
//!
//! Every case goes through the path the service takes for an escalation: the embedded index
//! ([`LocalIndex`]) built from the articles, the query and locale of [`kb_query`](crate::assess::kb::query::kb_query), the connector's
//! default candidate count, and [`kb::judge`] (candidate filtering, re-score, threshold). Nothing
//! of the judgement is re-implemented here; this module only reads the files, reads the
//! [`KbFindings`](crate::assess::kb::KbFindings) and scores them.
//!
//! Scoring (see the data's README): a case is judged `kb_resolvable` with one article. A true
//! positive is a case judged resolvable with one of its answer articles; anything else judged
//! resolvable is a false positive; recall is true positives over resolvable cases. The curve
//! sweeps the threshold over every distinct confidence of the best eligible article.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use clap::ValueEnum;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::assess::kb::query::kb_query;
use crate::assess::kb::rescore::{Calibration, clean_query, stage2_inputs_of};
use crate::assess::kb::tried::{self, TriedBy};
use crate::assess::kb::{self, KbSettings, ident};
use crate::assess::kb::{DEFAULT_GAP_BELOW, DEFAULT_LOCALE, DEFAULT_MAX_CANDIDATES};
use crate::escalation::Escalation;
use crate::kb::local::{LocalIndex, LocalKbError};
use crate::kb::{Article, ArticleRef, KbError};

/// The precisions the report gives the recall at.
pub const MIN_PRECISIONS: [f64; 3] = [0.80, 0.90, 0.95];

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("building the index: {0}")]
    Index(#[from] LocalKbError),
    #[error("searching the index: {0}")]
    Search(#[from] KbError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Dev,
    Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Resolvable,
    NotResolvable,
}

/// One line of an articles file.
#[derive(Debug, Clone, Deserialize)]
struct ArticleLine {
    id: String,
    title: String,
    body: String,
    locale: String,
}

/// One line of a cases file.
#[derive(Debug, Clone, Deserialize)]
struct CaseLine {
    id: String,
    text: String,
    label: Label,
    #[serde(default)]
    article_ids: Vec<String>,
    split: Split,
}

/// A labelled case, with the line it came from.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub text: String,
    pub label: Label,
    /// The articles that answer the case (empty when it is not resolvable).
    pub article_ids: Vec<String>,
    pub split: Split,
    pub line: usize,
}

/// Articles, cases and withheld ids as read from their files.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub articles: Vec<Article>,
    pub cases: Vec<Case>,
    /// Article ids to remove from the knowledge base (the withheld protocol).
    pub withheld: Vec<String>,
}

/// When every article was published, and when every case was escalated: articles always predate
/// the case, so the judge's publication filter keeps them all.
fn published_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
}

fn escalated_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 2, 0, 0, 0).unwrap()
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Non-blank lines with their 1-based numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

fn line_error(path: &Path, line: usize, message: impl Into<String>) -> EvalError {
    EvalError::Line {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Reads a JSON-lines file of `{id, title, body, locale}` articles.
pub fn read_articles(path: &Path) -> Result<Vec<Article>, EvalError> {
    let text = read(path)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, l) in lines(&text) {
        let a: ArticleLine = serde_json::from_str(l)
            .map_err(|e| line_error(path, n, format!("not an article: {e}")))?;
        if a.id.trim().is_empty() {
            return Err(line_error(path, n, "the article id is empty"));
        }
        if !seen.insert(a.id.clone()) {
            return Err(line_error(path, n, format!("article `{}` again", a.id)));
        }
        out.push(Article {
            withdrawn_at: None,
            url: format!("https://kb.invalid/{}", a.id),
            id: a.id,
            title: a.title,
            body: a.body,
            locale: a.locale.to_ascii_lowercase(),
            published_at: Some(published_at()),
            draft: false,
        });
    }
    if out.is_empty() {
        return Err(EvalError::File {
            path: path.to_path_buf(),
            message: "no articles".into(),
        });
    }
    Ok(out)
}

/// Reads a JSON-lines file of `{id, text, label, article_ids, split}` cases.
pub fn read_cases(path: &Path) -> Result<Vec<Case>, EvalError> {
    let text = read(path)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, l) in lines(&text) {
        let c: CaseLine =
            serde_json::from_str(l).map_err(|e| line_error(path, n, format!("not a case: {e}")))?;
        if !seen.insert(c.id.clone()) {
            return Err(line_error(path, n, format!("case `{}` again", c.id)));
        }
        if c.label == Label::Resolvable && c.article_ids.is_empty() {
            return Err(line_error(
                path,
                n,
                format!("case `{}` is resolvable but names no article", c.id),
            ));
        }
        out.push(Case {
            id: c.id,
            text: c.text,
            label: c.label,
            article_ids: c.article_ids,
            split: c.split,
            line: n,
        });
    }
    if out.is_empty() {
        return Err(EvalError::File {
            path: path.to_path_buf(),
            message: "no cases".into(),
        });
    }
    Ok(out)
}

/// Reads a file of article ids, one a line (`#` starts a comment).
pub fn read_withheld(path: &Path) -> Result<Vec<(usize, String)>, EvalError> {
    let text = read(path)?;
    Ok(lines(&text)
        .filter(|(_, l)| !l.starts_with('#'))
        .map(|(n, l)| (n, l.to_string()))
        .collect())
}

/// Reads the three files and checks that every id they name is an article.
pub fn load(articles: &Path, cases: &Path, withheld: Option<&Path>) -> Result<Dataset, EvalError> {
    let articles_v = read_articles(articles)?;
    let known: HashSet<&str> = articles_v.iter().map(|a| a.id.as_str()).collect();
    let cases_v = read_cases(cases)?;
    for c in &cases_v {
        if let Some(id) = c.article_ids.iter().find(|id| !known.contains(id.as_str())) {
            return Err(line_error(
                cases,
                c.line,
                format!(
                    "case `{}` names article `{id}`, which is not in {}",
                    c.id,
                    articles.display()
                ),
            ));
        }
    }
    let mut withheld_v = Vec::new();
    if let Some(path) = withheld {
        for (n, id) in read_withheld(path)? {
            if !known.contains(id.as_str()) {
                return Err(line_error(
                    path,
                    n,
                    format!("article `{id}` is not in {}", articles.display()),
                ));
            }
            withheld_v.push(id);
        }
    }
    Ok(Dataset {
        articles: articles_v,
        cases: cases_v,
        withheld: withheld_v,
    })
}

/// The escalation a case becomes: its whole text as the description and its first line as the
/// subject, so that [`Escalation::case_text`] gives back exactly the case's text.
pub fn escalation(case: &Case) -> Escalation {
    Escalation::from_text("eval", &case.id, &case.text, escalated_at())
}

/// What the evaluation is run with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only the cases of this split (all cases when `None`).
    pub split: Option<Split>,
    /// The threshold the judge decides with (the connector default unless told otherwise).
    pub threshold: f64,
    /// The review bound (the connector default unless told otherwise).
    pub review_bound: f64,
    /// Candidates asked from the index per case (the connector default).
    pub max_candidates: usize,
    /// The stage-2 weights (the global ones unless a vendor's file is given).
    pub calibration: Arc<Calibration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            split: None,
            threshold: kb::rescore::DEFAULT_THRESHOLD,
            review_bound: kb::rescore::DEFAULT_REVIEW_BOUND,
            max_candidates: DEFAULT_MAX_CANDIDATES,
            calibration: Calibration::global(),
        }
    }
}

impl Options {
    /// The judge's settings of a connector with these threshold and review bound.
    pub fn settings(&self) -> KbSettings {
        KbSettings {
            threshold: self.threshold,
            review_bound: self.review_bound.min(self.threshold),
            gap_below: DEFAULT_GAP_BELOW,
            default_locale: DEFAULT_LOCALE.into(),
            calibration: Arc::clone(&self.calibration),
        }
    }
}

/// What the judge did with one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseOutcome {
    pub id: String,
    pub resolvable: bool,
    /// 1-based rank of the first answer article among the search's candidates (resolvable cases).
    pub search_rank: Option<usize>,
    /// The best eligible article after the re-score, and its confidence.
    pub best: Option<(String, f64)>,
    /// Whether that article answers the case.
    pub correct: bool,
    /// Whether the judge, at the threshold, made the case `kb_resolvable`.
    pub judged_resolvable: bool,
    /// Whether the judge sent the case to a person (outcome `review`).
    pub judged_review: bool,
    /// Whether the case would have been `kb_resolvable` without the near-miss rule.
    pub judged_resolvable_without_near_miss_rule: bool,
    /// The best near miss (related, not counted), its confidence, and whether it answers the
    /// case.
    pub near_miss: Option<(String, f64, bool)>,
    /// The best article the case says was tried without success (not counted), its confidence,
    /// and whether it answers the case.
    pub tried_fix: Option<(String, f64, bool)>,
    /// The stage-2 inputs of the best article (see [`reviews`](crate::offline::fit::reviews)).
    #[serde(skip)]
    pub stage2: Option<Vec<f64>>,
}

/// The best eligible article of one case after the re-score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub confidence: f64,
    /// The article answers the case.
    pub correct: bool,
}

/// One threshold of the sweep: the cases whose best confidence is at or above it are judged
/// resolvable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub threshold: f64,
    pub judged: usize,
    pub correct: usize,
    pub precision: f64,
    pub recall: f64,
}

impl Point {
    pub fn f1(&self) -> f64 {
        if self.precision + self.recall == 0.0 {
            0.0
        } else {
            2.0 * self.precision * self.recall / (self.precision + self.recall)
        }
    }
}

/// The precision/recall curve: one point per distinct confidence, highest threshold first.
/// Cases with equal confidence enter together. `positives` is the number of resolvable cases.
pub fn sweep(predictions: &[Prediction], positives: usize) -> Vec<Point> {
    let mut sorted = predictions.to_vec();
    sorted.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut points = Vec::new();
    let (mut judged, mut correct) = (0usize, 0usize);
    for (i, p) in sorted.iter().enumerate() {
        judged += 1;
        correct += usize::from(p.correct);
        let last_of_tie = sorted
            .get(i + 1)
            .is_none_or(|next| next.confidence != p.confidence);
        if last_of_tie {
            points.push(Point {
                threshold: p.confidence,
                judged,
                correct,
                precision: correct as f64 / judged as f64,
                recall: ratio(correct, positives),
            });
        }
    }
    points
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The point of best F1 (the highest threshold among equals); `None` on an empty curve.
pub fn best_f1(points: &[Point]) -> Option<Point> {
    points
        .iter()
        .fold(None::<Point>, |best, p| match best {
            Some(b) if b.f1() >= p.f1() => Some(b),
            _ => Some(*p),
        })
        .filter(|p| p.f1() > 0.0)
}

/// The point of highest recall whose precision is at least `min_precision` (the highest threshold
/// among equals); `None` when no threshold reaches that precision with any recall.
pub fn recall_at_precision(points: &[Point], min_precision: f64) -> Option<Point> {
    points
        .iter()
        .filter(|p| p.precision >= min_precision && p.correct > 0)
        .fold(None::<Point>, |best, p| match best {
            Some(b) if b.recall >= p.recall => Some(b),
            _ => Some(*p),
        })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallAt {
    pub min_precision: f64,
    pub recall: f64,
    /// The threshold that gives it; `None` when no threshold reaches the precision.
    pub threshold: Option<f64>,
    pub precision: Option<f64>,
}

/// What the judge decided at its own threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtThreshold {
    pub threshold: f64,
    /// Whether it is the connector default (`DEFAULT_THRESHOLD`).
    pub is_default: bool,
    pub judged: usize,
    pub correct: usize,
    /// `None` when no case was judged resolvable.
    pub precision: Option<f64>,
    pub recall: f64,
}

/// The cases the judge sent to a person (outcome `review`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewLane {
    pub review_bound: f64,
    pub cases: usize,
    /// Reviewed cases whose candidate article answers them.
    pub correct: usize,
}

/// Recall at the report's precisions, and what the judge decides at its threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    pub recall_at: Vec<RecallAt>,
    pub at_threshold: AtThreshold,
}

/// Recall at [`MIN_PRECISIONS`] on a curve.
fn recalls(points: &[Point]) -> Vec<RecallAt> {
    MIN_PRECISIONS
        .iter()
        .map(|&min| {
            let p = recall_at_precision(points, min);
            RecallAt {
                min_precision: min,
                recall: p.map_or(0.0, |p| p.recall),
                threshold: p.map(|p| p.threshold),
                precision: p.map(|p| p.precision),
            }
        })
        .collect()
}

/// What was decided at `threshold`: `judged` cases, `correct` of them with a right article.
fn at_threshold(threshold: f64, judged: usize, correct: usize, resolvable: usize) -> AtThreshold {
    AtThreshold {
        threshold,
        is_default: threshold == kb::rescore::DEFAULT_THRESHOLD,
        judged,
        correct,
        precision: (judged > 0).then(|| ratio(correct, judged)),
        recall: ratio(correct, resolvable),
    }
}

/// The figures of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub cases: usize,
    pub resolvable: usize,
    pub articles: usize,
    pub withheld_articles: usize,
    /// Resolvable cases turned `not_resolvable` because all their articles are withheld.
    pub turned_not_resolvable: usize,
    pub max_candidates: usize,
    /// Precision at 1 of the search step, over resolvable cases.
    pub search_p_at_1: f64,
    /// Mean reciprocal rank of the first answer article among the candidates (0 when missing).
    pub search_mrr: f64,
    /// Share of resolvable cases whose best article after the re-score answers them.
    pub judge_p_at_1: f64,
    pub best_f1: Option<f64>,
    pub best_f1_point: Option<Point>,
    pub recall_at: Vec<RecallAt>,
    pub at_threshold: AtThreshold,
    pub review: ReviewLane,
    /// The same figures without the near-miss rule: what the rule costs.
    pub without_near_miss_rule: Curve,
    /// The same figures without the tried-fix rule (only the tried-articles field makes an
    /// article tried): what the rule costs.
    pub without_tried_fix_rule: Curve,
    /// What the judge did with each case, in file order.
    pub per_case: Vec<CaseOutcome>,
}

/// Runs every case (of the split) through the search of `index` (built from [`kept_articles`])
/// and the judge. `progress` is called once per case.
pub fn evaluate(
    data: &Dataset,
    index: &LocalIndex,
    options: &Options,
    mut progress: impl FnMut(),
) -> Result<Report, EvalError> {
    let withheld = withheld_ids(data);
    let n_articles = data
        .articles
        .iter()
        .filter(|a| !withheld.contains(a.id.as_str()))
        .count();
    let settings = options.settings();
    let mut outcomes = Vec::new();
    let mut turned = 0;
    for case in split_cases(data, options) {
        let answers: HashSet<&str> = case
            .article_ids
            .iter()
            .map(String::as_str)
            .filter(|id| !withheld.contains(id))
            .collect();
        let resolvable = case.label == Label::Resolvable && !answers.is_empty();
        if case.label == Label::Resolvable && !resolvable {
            turned += 1;
        }
        let esc = escalation(case);
        let (query, locale) = kb_query(&esc, &settings.default_locale);
        let candidates = index.search(&query, Some(&locale), options.max_candidates)?;
        let findings = kb::judge(&esc, &candidates, &settings);
        // No article is ever listed as tried here, so the best counted article is `resolvable_by`
        // when it reaches the threshold and `best_other` when it does not.
        let best = findings
            .resolvable_by
            .as_ref()
            .or(findings.best_other.as_ref());
        let correct = best.is_some_and(|m| answers.contains(m.article_id.as_str()));
        outcomes.push(CaseOutcome {
            id: case.id.clone(),
            resolvable,
            search_rank: if resolvable {
                candidates
                    .iter()
                    .position(|a| answers.contains(a.id))
                    .map(|i| i + 1)
            } else {
                None
            },
            best: best.map(|m| (m.article_id.clone(), m.confidence)),
            correct,
            judged_resolvable: findings.resolvable_by.is_some(),
            judged_review: findings.review.is_some(),
            judged_resolvable_without_near_miss_rule: findings.resolvable_without_near_miss_rule(),
            near_miss: findings
                .related
                .first()
                .map(|r| set_aside(&r.article, &answers)),
            tried_fix: findings
                .tried
                .iter()
                .find(|t| t.by != TriedBy::Listed)
                .map(|t| set_aside(&t.article, &answers)),
            stage2: best.and_then(|m| stage2_inputs_of(&m.signals)),
        });
        progress();
    }
    Ok(score(
        outcomes,
        options,
        n_articles,
        data.withheld.len(),
        turned,
    ))
}

/// An article a rule kept from counting: its id, confidence and whether it answers the case.
fn set_aside(m: &kb::KbMatch, answers: &HashSet<&str>) -> (String, f64, bool) {
    (
        m.article_id.clone(),
        m.confidence,
        answers.contains(m.article_id.as_str()),
    )
}

/// The curve, and the decision at `threshold`, had the article a rule set aside (`set_aside`:
/// its confidence and whether it is right) competed with each case's best counted article.
fn without_rule(
    outcomes: &[CaseOutcome],
    set_aside: impl Fn(&CaseOutcome) -> Option<&(String, f64, bool)>,
    threshold: f64,
    resolvable: usize,
) -> Curve {
    let before: Vec<Prediction> = outcomes
        .iter()
        .filter_map(|o| {
            let best = o.best.as_ref().map(|(_, c)| (*c, o.correct));
            let other = set_aside(o).map(|(_, c, right)| (*c, *right));
            match (best, other) {
                (Some(b), Some(n)) => Some(if n.0 > b.0 { n } else { b }),
                (b, n) => b.or(n),
            }
        })
        .map(|(confidence, correct)| Prediction {
            confidence,
            correct,
        })
        .collect();
    let judged: Vec<bool> = before
        .iter()
        .filter(|p| p.confidence >= threshold)
        .map(|p| p.correct)
        .collect();
    Curve {
        recall_at: recalls(&sweep(&before, resolvable)),
        at_threshold: at_threshold(
            threshold,
            judged.len(),
            judged.iter().filter(|r| **r).count(),
            resolvable,
        ),
    }
}

/// The figures, from what the judge did with each case.
pub fn score(
    outcomes: Vec<CaseOutcome>,
    options: &Options,
    articles: usize,
    withheld_articles: usize,
    turned_not_resolvable: usize,
) -> Report {
    let resolvable = outcomes.iter().filter(|o| o.resolvable).count();
    let ranks: Vec<Option<usize>> = outcomes
        .iter()
        .filter(|o| o.resolvable)
        .map(|o| o.search_rank)
        .collect();
    let at_1 = ranks.iter().filter(|r| **r == Some(1)).count();
    let rr: f64 = ranks.iter().flatten().map(|r| 1.0 / *r as f64).sum();
    let judge_at_1 = outcomes
        .iter()
        .filter(|o| o.resolvable && o.correct)
        .count();
    let predictions: Vec<Prediction> = outcomes
        .iter()
        .filter_map(|o| {
            o.best.as_ref().map(|(_, confidence)| Prediction {
                confidence: *confidence,
                correct: o.correct,
            })
        })
        .collect();
    let points = sweep(&predictions, resolvable);
    let best = best_f1(&points);
    let judged = outcomes.iter().filter(|o| o.judged_resolvable).count();
    let judged_correct = outcomes
        .iter()
        .filter(|o| o.judged_resolvable && o.correct)
        .count();
    let without_near_miss_rule = without_rule(
        &outcomes,
        |o| o.near_miss.as_ref(),
        options.threshold,
        resolvable,
    );
    let without_tried_fix_rule = without_rule(
        &outcomes,
        |o| o.tried_fix.as_ref(),
        options.threshold,
        resolvable,
    );
    let reviewed: Vec<&CaseOutcome> = outcomes.iter().filter(|o| o.judged_review).collect();
    Report {
        cases: outcomes.len(),
        resolvable,
        articles,
        withheld_articles,
        turned_not_resolvable,
        max_candidates: options.max_candidates,
        search_p_at_1: ratio(at_1, resolvable),
        search_mrr: if resolvable == 0 {
            0.0
        } else {
            rr / resolvable as f64
        },
        judge_p_at_1: ratio(judge_at_1, resolvable),
        best_f1: best.map(|p| p.f1()),
        best_f1_point: best,
        recall_at: recalls(&points),
        at_threshold: at_threshold(options.threshold, judged, judged_correct, resolvable),
        review: ReviewLane {
            review_bound: options.settings().review_bound,
            cases: reviewed.len(),
            correct: reviewed.iter().filter(|o| o.correct).count(),
        },
        without_near_miss_rule,
        without_tried_fix_rule,
        per_case: outcomes,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = 30;
        writeln!(f, "{:w$}{}", "cases", self.cases)?;
        writeln!(f, "{:w$}{}", "resolvable", self.resolvable)?;
        writeln!(
            f,
            "{:w$}{} ({} withheld; {} cases turned not_resolvable)",
            "articles in the index",
            self.articles,
            self.withheld_articles,
            self.turned_not_resolvable
        )?;
        writeln!(
            f,
            "{:w$}{:.3}   (top {} candidates)",
            "search P@1", self.search_p_at_1, self.max_candidates
        )?;
        writeln!(f, "{:w$}{:.3}", "search MRR", self.search_mrr)?;
        writeln!(f, "{:w$}{:.3}", "judge P@1 (re-scored)", self.judge_p_at_1)?;
        match &self.best_f1_point {
            Some(p) => writeln!(
                f,
                "{:w$}{:.3} (P {:.3} / R {:.3}) at confidence >= {:.4}",
                "best F1",
                p.f1(),
                p.precision,
                p.recall,
                p.threshold
            )?,
            None => writeln!(f, "{:w$}{:.3}", "best F1", 0.0)?,
        }
        for r in &self.recall_at {
            let label = format!("recall at P >= {:.2}", r.min_precision);
            match (r.threshold, r.precision) {
                (Some(t), Some(p)) => writeln!(
                    f,
                    "{label:w$}{:.3} (P {p:.3}) at confidence >= {t:.4}",
                    r.recall
                )?,
                _ => writeln!(f, "{label:w$}{:.3} (no threshold reaches it)", r.recall)?,
            }
        }
        let t = &self.at_threshold;
        let label = format!(
            "at threshold {:.4}{}",
            t.threshold,
            if t.is_default { " (default)" } else { "" }
        );
        let precision = t
            .precision
            .map_or_else(|| "n/a".to_string(), |p| format!("{p:.3}"));
        writeln!(
            f,
            "{label:w$}P {precision} / R {:.3} ({} judged kb_resolvable, {} with a right article)",
            t.recall, t.judged, t.correct
        )?;
        let r = &self.review;
        writeln!(
            f,
            "{:w$}{} cases ({:.3} of all), {} with a right article",
            format!("review from {:.4}", r.review_bound),
            r.cases,
            ratio(r.cases, self.cases),
            r.correct
        )?;
        for (label, b) in [
            ("without the near-miss rule", &self.without_near_miss_rule),
            ("without the tried-fix rule", &self.without_tried_fix_rule),
        ] {
            let at = &b.at_threshold;
            writeln!(
                f,
                "{label:w$}R at P >= 0.90 {:.3}; at threshold P {} / R {:.3} ({} judged, {} right)",
                b.recall_at[1].recall,
                at.precision
                    .map_or_else(|| "n/a".to_string(), |p| format!("{p:.3}")),
                at.recall,
                at.judged,
                at.correct
            )?;
        }
        Ok(())
    }
}

/// How many candidates each near-miss pair is judged among: a large knowledge base's full
/// candidate list, and small ones where a neighbouring article stands out.
pub const NEAR_MISS_CANDIDATES: [usize; 3] = [20, 5, 2];

/// The near-miss set of a split: every pair of a case that names identifiers and an article
/// (never one of the case's answers) that names other identifiers of one of their families and
/// none of the case's. Each pair is judged among `candidates` articles: the near miss and the
/// search's best others, the case's answers taken out, so `kb_resolvable` is always wrong there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearMissReport {
    pub candidates: usize,
    /// Cases with at least one pair.
    pub cases: usize,
    pub pairs: usize,
    /// Pairs judged `kb_resolvable` without the near-miss rule.
    pub bad_without_rule: usize,
    /// Pairs judged `kb_resolvable` with it (by some other article).
    pub bad: usize,
    /// Pairs sent to a person with it.
    pub review: usize,
}

impl fmt::Display for NearMissReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "near-miss pairs among {} candidates: {} from {} cases; judged bad without the rule {} ({:.3}), with it {} ({:.3}); review {} ({:.3})",
            self.candidates,
            self.pairs,
            self.cases,
            self.bad_without_rule,
            ratio(self.bad_without_rule, self.pairs),
            self.bad,
            ratio(self.bad, self.pairs),
            self.review,
            ratio(self.review, self.pairs)
        )
    }
}

/// The ids of the withheld articles.
fn withheld_ids(data: &Dataset) -> HashSet<&str> {
    data.withheld.iter().map(String::as_str).collect()
}

/// The articles of the knowledge base (withheld ones left out): what the evaluated index is
/// built from.
pub fn kept_articles(data: &Dataset) -> Vec<Article> {
    let withheld = withheld_ids(data);
    data.articles
        .iter()
        .filter(|a| !withheld.contains(a.id.as_str()))
        .cloned()
        .collect()
}

/// The cases of the split `options` asks for (all without one).
pub fn split_cases<'a>(data: &'a Dataset, options: &'a Options) -> impl Iterator<Item = &'a Case> {
    data.cases
        .iter()
        .filter(|c| options.split.is_none_or(|s| s == c.split))
}

/// Judges the near-miss set of the split among each of [`NEAR_MISS_CANDIDATES`] candidates.
/// `index` is built from [`kept_articles`].
pub fn near_misses(
    data: &Dataset,
    index: &LocalIndex,
    options: &Options,
) -> Result<Vec<NearMissReport>, EvalError> {
    let articles = kept_articles(data);
    let ids: Vec<Vec<ident::Ident>> = articles
        .iter()
        .map(|a| ident::identifiers(&format!("{}\n{}", a.title, a.body)))
        .collect();
    let settings = options.settings();
    let mut reports: Vec<NearMissReport> = NEAR_MISS_CANDIDATES
        .iter()
        .map(|&candidates| NearMissReport {
            candidates,
            cases: 0,
            pairs: 0,
            bad_without_rule: 0,
            bad: 0,
            review: 0,
        })
        .collect();
    for case in split_cases(data, options) {
        let esc = escalation(case);
        let case_ids = ident::identifiers(&clean_query(&esc.case_text()));
        if case_ids.is_empty() {
            continue;
        }
        let (query, locale) = kb_query(&esc, &settings.default_locale);
        let found: Vec<Article> = index
            .search(&query, Some(&locale), options.max_candidates)?
            .iter()
            .filter(|a| !case.article_ids.iter().any(|id| id == a.id))
            .map(ArticleRef::to_article)
            .collect();
        let mut paired = false;
        for (a, a_ids) in articles.iter().zip(&ids) {
            if case.article_ids.contains(&a.id) || ident::near_miss(&case_ids, a_ids).is_none() {
                continue;
            }
            paired = true;
            for report in &mut reports {
                let mut candidates = vec![a.clone()];
                candidates.extend(
                    found
                        .iter()
                        .filter(|c| c.id != a.id)
                        .take(report.candidates - 1)
                        .cloned(),
                );
                let findings = kb::judge(&esc, &candidates, &settings);
                report.pairs += 1;
                report.bad_without_rule +=
                    usize::from(findings.resolvable_without_near_miss_rule());
                report.bad += usize::from(findings.resolvable_by.is_some());
                report.review += usize::from(findings.review.is_some());
            }
        }
        for report in &mut reports {
            report.cases += usize::from(paired);
        }
    }
    Ok(reports)
}

/// How many ways the tried-fix set says the answer's steps were done (see [`tried_fix`]).
pub const TRIED_PHRASINGS: usize = 5;
/// Steps of the answer a rewritten case says were done: a partner names the first few.
const TRIED_STEPS: usize = 2;

/// The tried-fix set of a split: every resolvable case whose answer is in the knowledge base,
/// with a sentence added that says its first answer's resolution steps ([`tried::steps`]) were
/// done and the problem persists, in one of [`TRIED_PHRASINGS`] phrasings by turns (the case's
/// answer's title in quotes when the article has no step). Any `kb_resolvable` by that article is
/// wrong there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriedFixReport {
    pub cases: usize,
    /// Cases whose answer has no step, so the sentence names its title.
    pub by_title: usize,
    /// Judged `kb_resolvable` without the tried-fix rule.
    pub bad_without_rule: usize,
    /// Judged `kb_resolvable` with it, by any article.
    pub bad: usize,
    /// Judged `kb_resolvable` with it by the answer whose steps the case says were done (always
    /// wrong).
    pub bad_by_answer: usize,
    /// Judged `kb_resolvable` with it by another of the case's answers, one it does not say was
    /// tried (right).
    pub bad_by_other_answer: usize,
    /// Cases whose answer the judge took as tried.
    pub answer_tried: usize,
    /// Cases sent to a person with it.
    pub review: usize,
    /// Each case judged `kb_resolvable` with the rule: the case and the article, to read why.
    pub judged_bad: Vec<(String, String)>,
}

impl fmt::Display for TriedFixReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tried-fix set: {} cases ({} name the title); judged bad without the rule {} ({:.3}), with it {} ({:.3}): by the tried answer {} ({:.3}), by another answer {}; answer taken as tried {} ({:.3}); review {} ({:.3})",
            self.cases,
            self.by_title,
            self.bad_without_rule,
            ratio(self.bad_without_rule, self.cases),
            self.bad,
            ratio(self.bad, self.cases),
            self.bad_by_answer,
            ratio(self.bad_by_answer, self.cases),
            self.bad_by_other_answer,
            self.answer_tried,
            ratio(self.answer_tried, self.cases),
            self.review,
            ratio(self.review, self.cases)
        )
    }
}

/// `ran the renew command` for the step `Run the renew command.`; `did this: …` when the step
/// does not start with a verb [`tried::past_tense`] knows.
fn said_done(step: &str) -> String {
    let step = step.trim().trim_end_matches(['.', ':', ';']);
    let (first, rest) = step.split_once(' ').unwrap_or((step, ""));
    match tried::past_tense(first) {
        Some(past) if rest.is_empty() => past.to_string(),
        Some(past) => format!("{past} {rest}"),
        None => format!("did this: {step}"),
    }
}

/// The escalation of a tried-fix case: `case` with a sentence saying the steps of `answer` were
/// done without success, in phrasing `phrasing` (see [`tried_fix`]).
pub fn tried_fix_escalation(case: &Case, answer: &Article, phrasing: usize) -> Escalation {
    let steps: Vec<&str> = tried::steps(&answer.body)
        .into_iter()
        .take(TRIED_STEPS)
        .collect();
    let as_is: Vec<&str> = steps
        .iter()
        .map(|s| s.trim_end_matches(['.', ':', ';']))
        .collect();
    let past: Vec<String> = steps.iter().map(|s| said_done(s)).collect();
    let mut esc = escalation(case);
    let mut field = None;
    let text = match (phrasing % TRIED_PHRASINGS, steps.is_empty()) {
        (_, true) | (4, false) => format!(
            "We followed the article \"{}\" but it did not help.",
            answer.title
        ),
        (0, false) => format!(
            "We already did what the article says: {}. The problem is still there.",
            as_is.join(". ")
        ),
        (1, false) => format!(
            "As the article says, we {}; the error comes back after a minute.",
            past.join(" and we ")
        ),
        (2, false) => format!(
            "Steps done so far:\n- {}\nNo luck, same result.",
            as_is.join("\n- ")
        ),
        _ => {
            let sentences: Vec<String> = past.iter().map(|p| format!("We {p}.")).collect();
            field = Some(sentences.join(" "));
            String::new()
        }
    };
    match field {
        Some(tries) => {
            esc.handoff.insert("troubleshooting".into(), tries);
        }
        None => esc.description = format!("{}\n\n{text}", esc.description),
    }
    esc
}

/// Judges the tried-fix set of the split (see [`TriedFixReport`]). `index` is built from
/// [`kept_articles`].
pub fn tried_fix(
    data: &Dataset,
    index: &LocalIndex,
    options: &Options,
) -> Result<TriedFixReport, EvalError> {
    let articles = kept_articles(data);
    let settings = options.settings();
    let mut report = TriedFixReport {
        cases: 0,
        by_title: 0,
        bad_without_rule: 0,
        bad: 0,
        bad_by_answer: 0,
        bad_by_other_answer: 0,
        answer_tried: 0,
        review: 0,
        judged_bad: Vec::new(),
    };
    for case in split_cases(data, options).filter(|c| c.label == Label::Resolvable) {
        let Some(answer) = articles.iter().find(|a| case.article_ids.contains(&a.id)) else {
            continue;
        };
        let esc = tried_fix_escalation(case, answer, report.cases);
        report.by_title += usize::from(tried::steps(&answer.body).is_empty());
        report.cases += 1;
        let (query, locale) = kb_query(&esc, &settings.default_locale);
        let candidates = index.search(&query, Some(&locale), options.max_candidates)?;
        let findings = kb::judge(&esc, &candidates, &settings);
        report.bad_without_rule += usize::from(findings.resolvable_without_tried_fix_rule());
        report.bad += usize::from(findings.resolvable_by.is_some());
        if let Some(m) = &findings.resolvable_by {
            report
                .judged_bad
                .push((case.id.clone(), m.article_id.clone()));
            report.bad_by_answer += usize::from(m.article_id == answer.id);
            report.bad_by_other_answer +=
                usize::from(m.article_id != answer.id && case.article_ids.contains(&m.article_id));
        }
        report.answer_tried += usize::from(
            findings
                .tried
                .iter()
                .any(|t| t.article.article_id == answer.id && t.by != TriedBy::Listed),
        );
        report.review += usize::from(findings.review.is_some());
    }
    Ok(report)
}

/// Small knowledge bases generated from the data with a fixed seed: for every case of the split,
/// one of `size` articles drawn from those that do not answer it (nothing answers the case), and
/// for a resolvable case one more made of its first answer and `size - 1` of the same draw.
/// `full_kb_right` is what the whole index decides for the same resolvable cases, so the two
/// recalls compare like for like.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmallKbReport {
    pub size: usize,
    pub seed: u64,
    /// Knowledge bases that do not answer their case, and how many of them made it bad.
    pub without_answer: usize,
    pub bad_without_answer: usize,
    /// Knowledge bases that hold the answer, and how many of them made the case bad with it
    /// (right) or with another article (wrong).
    pub with_answer: usize,
    pub right_with_answer: usize,
    pub wrong_with_answer: usize,
    /// Of the cases with a knowledge base that holds the answer, how many the whole index
    /// makes bad with a right article.
    pub full_kb_right: usize,
    /// Cases sent to a person, over both kinds.
    pub review: usize,
    /// Each case judged `kb_resolvable` by a knowledge base without its answer, with the
    /// article, to read why.
    pub judged_bad_without_answer: Vec<(String, String)>,
}

impl SmallKbReport {
    /// Precision of "bad" over both kinds of knowledge base.
    pub fn precision(&self) -> Option<f64> {
        let judged = self.bad_without_answer + self.right_with_answer + self.wrong_with_answer;
        (judged > 0).then(|| ratio(self.right_with_answer, judged))
    }
}

impl fmt::Display for SmallKbReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "small knowledge bases of {} articles (seed {}): without the answer {} judged bad of {} ({:.3}); with it {} right and {} wrong of {} (recall {:.3}; the whole index: {}, {:.3}); precision {}; review {}",
            self.size,
            self.seed,
            self.bad_without_answer,
            self.without_answer,
            ratio(self.bad_without_answer, self.without_answer),
            self.right_with_answer,
            self.wrong_with_answer,
            self.with_answer,
            ratio(self.right_with_answer, self.with_answer),
            self.full_kb_right,
            ratio(self.full_kb_right, self.with_answer),
            self.precision()
                .map_or_else(|| "n/a".to_string(), |p| format!("{p:.3}")),
            self.review
        )
    }
}

/// One case's generated small knowledge bases: `size` articles that do not answer it, and for a
/// resolvable case its first answer with `size - 1` of them.
struct SmallKbs<'a> {
    case: &'a Case,
    without_answer: Vec<Article>,
    with_answer: Option<Vec<Article>>,
}

/// The small knowledge bases of every case of the split, drawn with `seed`.
fn small_kb_draws<'a>(
    data: &'a Dataset,
    options: &'a Options,
    size: usize,
    seed: u64,
) -> Vec<SmallKbs<'a>> {
    let articles = kept_articles(data);
    let mut rng = StdRng::seed_from_u64(seed);
    split_cases(data, options)
        .map(|case| {
            let others: Vec<&Article> = articles
                .iter()
                .filter(|a| !case.article_ids.contains(&a.id))
                .collect();
            let drawn: Vec<Article> =
                rand::seq::index::sample(&mut rng, others.len(), size.min(others.len()))
                    .into_iter()
                    .map(|i| others[i].clone())
                    .collect();
            let answer = articles.iter().find(|a| case.article_ids.contains(&a.id));
            let with_answer = match (case.label, answer) {
                (Label::Resolvable, Some(answer)) => {
                    let mut kb = vec![answer.clone()];
                    kb.extend(drawn.iter().take(size.saturating_sub(1)).cloned());
                    Some(kb)
                }
                _ => None,
            };
            SmallKbs {
                case,
                without_answer: drawn,
                with_answer,
            }
        })
        .collect()
}

/// The candidates a knowledge base of these articles gives for the case, as the service finds
/// them.
fn search_small(
    case: &Case,
    kb: Vec<Article>,
    options: &Options,
) -> Result<Vec<Article>, EvalError> {
    let esc = escalation(case);
    let (query, locale) = kb_query(&esc, DEFAULT_LOCALE);
    let index = LocalIndex::build(kb)?;
    Ok(index
        .search(&query, Some(&locale), options.max_candidates)?
        .iter()
        .map(ArticleRef::to_article)
        .collect())
}

/// Judges every case of the split against generated small knowledge bases (see
/// [`SmallKbReport`]); `full` is what [`evaluate`] decided on the whole knowledge base.
pub fn small_kbs(
    data: &Dataset,
    full: &Report,
    options: &Options,
    size: usize,
    seed: u64,
) -> Result<SmallKbReport, EvalError> {
    let settings = options.settings();
    let right = |case: &Case, findings: &kb::KbFindings| {
        findings
            .resolvable_by
            .as_ref()
            .is_some_and(|m| case.article_ids.contains(&m.article_id))
    };
    let full_right: HashSet<&str> = full
        .per_case
        .iter()
        .filter(|o| o.judged_resolvable && o.correct)
        .map(|o| o.id.as_str())
        .collect();
    let mut report = SmallKbReport {
        size,
        seed,
        without_answer: 0,
        bad_without_answer: 0,
        with_answer: 0,
        right_with_answer: 0,
        wrong_with_answer: 0,
        full_kb_right: 0,
        review: 0,
        judged_bad_without_answer: Vec::new(),
    };
    for kbs in small_kb_draws(data, options, size, seed) {
        let case = kbs.case;
        let judge = |kb: Vec<Article>| -> Result<kb::KbFindings, EvalError> {
            let candidates = search_small(case, kb, options)?;
            Ok(kb::judge(&escalation(case), &candidates, &settings))
        };
        let without = judge(kbs.without_answer)?;
        report.without_answer += 1;
        if let Some(m) = &without.resolvable_by {
            report.bad_without_answer += 1;
            report
                .judged_bad_without_answer
                .push((case.id.clone(), m.article_id.clone()));
        }
        report.review += usize::from(without.review.is_some());
        if let Some(kb) = kbs.with_answer {
            let with = judge(kb)?;
            report.with_answer += 1;
            if right(case, &with) {
                report.right_with_answer += 1;
            } else if with.resolvable_by.is_some() {
                report.wrong_with_answer += 1;
            }
            report.review += usize::from(with.review.is_some());
            report.full_kb_right += usize::from(full_right.contains(case.id.as_str()));
        }
    }
    Ok(report)
}

/// The candidate counts the fitting data is written for.
pub const FIT_CANDIDATES: [usize; 6] = [1, 2, 3, 5, 10, 20];

/// One candidate set of the fitting data (`tools/fit_rescore.py` reads these as JSON lines).
#[derive(Debug, Clone, Serialize)]
pub struct FitSet {
    pub case: String,
    /// `top` (the search's best `k`), `top_no_answer` (the same with the case's answers taken
    /// out), `small` / `small_answer` (a generated small knowledge base without / with the
    /// answer).
    pub set: &'static str,
    pub k: usize,
    pub resolvable: bool,
    pub candidates: Vec<FitCandidate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FitCandidate {
    pub id: String,
    pub answer: bool,
    /// The re-score's raw features, in the order of `rescore::FEATURES`.
    pub features: Vec<f64>,
}

/// The re-score's features for every case of the split: the search's best `k` candidates for
/// each of [`FIT_CANDIDATES`], with and (resolvable cases) without the case's answers, and the
/// generated small knowledge bases of each size of `small` (sizes, seed). Each set goes to
/// `out`. `index` is built from [`kept_articles`].
pub fn fitting_sets(
    data: &Dataset,
    index: &LocalIndex,
    options: &Options,
    small: (&[usize], u64),
    mut out: impl FnMut(FitSet) -> std::io::Result<()>,
) -> Result<(), EvalError> {
    let io = |e: std::io::Error| EvalError::File {
        path: PathBuf::from("--features"),
        message: e.to_string(),
    };
    let set = |case: &Case, set: &'static str, k: usize, candidates: &[Article]| {
        let features = kb::rescore::features(
            &escalation(case).case_text(),
            &candidates
                .iter()
                .map(|a| kb::rescore::Candidate {
                    title: &a.title,
                    body: &a.body,
                })
                .collect::<Vec<_>>(),
        );
        FitSet {
            case: case.id.clone(),
            set,
            k,
            resolvable: case.label == Label::Resolvable,
            candidates: candidates
                .iter()
                .zip(features)
                .map(|(a, (f, _))| FitCandidate {
                    id: a.id.clone(),
                    answer: case.article_ids.contains(&a.id),
                    features: f.to_vec(),
                })
                .collect(),
        }
    };
    for case in split_cases(data, options) {
        let esc = escalation(case);
        let (query, locale) = kb_query(&esc, DEFAULT_LOCALE);
        let found: Vec<Article> = index
            .search(&query, Some(&locale), options.max_candidates)?
            .iter()
            .map(ArticleRef::to_article)
            .collect();
        let no_answer: Vec<Article> = found
            .iter()
            .filter(|a| !case.article_ids.contains(&a.id))
            .cloned()
            .collect();
        for k in FIT_CANDIDATES {
            out(set(case, "top", k, &found[..k.min(found.len())])).map_err(io)?;
            if case.label == Label::Resolvable {
                out(set(
                    case,
                    "top_no_answer",
                    k,
                    &no_answer[..k.min(no_answer.len())],
                ))
                .map_err(io)?;
            }
        }
    }
    let (sizes, seed) = small;
    for &size in sizes {
        for kbs in small_kb_draws(data, options, size, seed) {
            let found = search_small(kbs.case, kbs.without_answer, options)?;
            out(set(kbs.case, "small", found.len(), &found)).map_err(io)?;
            if let Some(kb) = kbs.with_answer {
                let found = search_small(kbs.case, kb, options)?;
                out(set(kbs.case, "small_answer", found.len(), &found)).map_err(io)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(confidence: f64, correct: bool) -> Prediction {
        Prediction {
            confidence,
            correct,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn sweep_counts_ties_together() {
        // Sorted: 0.9 ✓ | 0.7 ✓, 0.7 ✗ (tie) | 0.5 ✓ | 0.2 ✗; 5 resolvable cases.
        let preds = [
            p(0.7, false),
            p(0.9, true),
            p(0.2, false),
            p(0.7, true),
            p(0.5, true),
        ];
        let points = sweep(&preds, 5);
        let got: Vec<_> = points
            .iter()
            .map(|p| (p.threshold, p.judged, p.correct))
            .collect();
        assert_eq!(
            got,
            vec![(0.9, 1, 1), (0.7, 3, 2), (0.5, 4, 3), (0.2, 5, 3)]
        );
        // Precision 1, 2/3, 3/4, 3/5; recall 1/5, 2/5, 3/5, 3/5.
        assert!(close(points[1].precision, 2.0 / 3.0));
        assert!(close(points[2].recall, 0.6));
        // F1: 1/3, 0.5, 2*0.75*0.6/1.35 = 0.6667, 0.6 -> the 0.5 threshold.
        let best = best_f1(&points).unwrap();
        assert_eq!(best.threshold, 0.5);
        assert!(close(best.f1(), 2.0 / 3.0));
        // P >= 0.9 only at 0.9 (recall 0.2); P >= 0.75 reaches 0.5 (recall 0.6), not through the
        // tie at 0.7 alone: the tie cannot be split.
        assert_eq!(recall_at_precision(&points, 0.9).unwrap().threshold, 0.9);
        assert!(close(
            recall_at_precision(&points, 0.9).unwrap().recall,
            0.2
        ));
        assert_eq!(recall_at_precision(&points, 0.75).unwrap().threshold, 0.5);
        assert_eq!(recall_at_precision(&points, 0.6).unwrap().threshold, 0.5);
    }

    #[test]
    fn a_tie_of_right_and_wrong_at_the_top_caps_precision() {
        let points = sweep(&[p(0.8, true), p(0.8, false)], 2);
        assert_eq!(points.len(), 1);
        assert!(close(points[0].precision, 0.5));
        assert!(recall_at_precision(&points, 0.8).is_none());
    }

    #[test]
    fn all_wrong_and_empty() {
        let points = sweep(&[p(0.9, false), p(0.3, false)], 4);
        assert_eq!(points.len(), 2);
        assert!(best_f1(&points).is_none());
        assert!(recall_at_precision(&points, 0.0).is_none());
        assert!(sweep(&[], 3).is_empty());
        assert!(best_f1(&[]).is_none());
        assert!(recall_at_precision(&[], 0.8).is_none());
        // No resolvable case: recall is 0, not NaN.
        assert_eq!(sweep(&[p(0.5, false)], 0)[0].recall, 0.0);
    }

    fn outcome(
        id: &str,
        resolvable: bool,
        rank: Option<usize>,
        best: Option<(&str, f64)>,
        correct: bool,
        judged: bool,
    ) -> CaseOutcome {
        CaseOutcome {
            id: id.into(),
            resolvable,
            search_rank: rank,
            best: best.map(|(a, c)| (a.into(), c)),
            correct,
            judged_resolvable: judged,
            judged_review: false,
            judged_resolvable_without_near_miss_rule: judged,
            near_miss: None,
            tried_fix: None,
            stage2: None,
        }
    }

    #[test]
    fn score_reports_search_and_threshold_figures() {
        let options = Options {
            threshold: 0.6,
            ..Options::default()
        };
        let r = score(
            vec![
                outcome("a", true, Some(1), Some(("x", 0.9)), true, true),
                outcome("b", true, Some(4), Some(("y", 0.7)), false, true),
                outcome("c", true, None, Some(("z", 0.1)), false, false),
                outcome("d", false, None, Some(("w", 0.5)), false, false),
                outcome("e", false, None, None, false, false),
            ],
            &options,
            10,
            0,
            0,
        );
        assert_eq!((r.cases, r.resolvable), (5, 3));
        assert!(close(r.search_p_at_1, 1.0 / 3.0));
        assert!(close(r.search_mrr, (1.0 + 0.25) / 3.0));
        assert!(close(r.judge_p_at_1, 1.0 / 3.0));
        assert_eq!(r.at_threshold.judged, 2);
        assert_eq!(r.at_threshold.precision, Some(0.5));
        assert!(close(r.at_threshold.recall, 1.0 / 3.0));
        assert!(!r.at_threshold.is_default);
        // Curve: 0.9 (1/1), 0.7 (1/2), 0.5 (1/3), 0.1 (1/4); recall 1/3 throughout.
        assert!(close(r.recall_at[1].recall, 1.0 / 3.0));
        assert_eq!(r.recall_at[1].threshold, Some(0.9));
        assert!(close(r.best_f1.unwrap(), 0.5));
    }

    #[test]
    fn every_phrasing_of_the_tried_fix_set_says_the_answer_was_tried() {
        use crate::assess::kb::tried::Statements;
        use crate::kb::ArticleView;

        let case = Case {
            id: "c".into(),
            text: "Sign-in fails with error T401\nEvery user gets T401 token expired.".into(),
            label: Label::Resolvable,
            article_ids: vec!["kb-7".into()],
            split: Split::Dev,
            line: 1,
        };
        let answer = |body: &str| Article {
            withdrawn_at: None,
            id: "kb-7".into(),
            title: "Sign-in fails with error T401 after the token expires".into(),
            body: body.into(),
            url: "https://kb.invalid/kb-7".into(),
            locale: "en-us".into(),
            published_at: Some(published_at()),
            draft: false,
        };
        let with_steps = answer(
            "Resolution\n1. Run the renew command in the admin console.\n2. Sign out and sign in \
             again.\n3. Clear the browser cookies.",
        );
        let without_steps = answer("Tokens expire after 90 days.");
        for phrasing in 0..TRIED_PHRASINGS {
            for a in [&with_steps, &without_steps] {
                let esc = tried_fix_escalation(&case, a, phrasing);
                let by = Statements::of(&esc).tried(&a.view());
                let named = matches!(by, Some(TriedBy::Named { .. }));
                let steps = matches!(by, Some(TriedBy::Steps { .. }));
                let expect_named = phrasing == 4 || a.body.starts_with("Tokens");
                assert!(
                    if expect_named { named } else { steps },
                    "phrasing {phrasing}: {by:?}\n{esc:?}"
                );
                assert!(esc.case_text().starts_with(&case.text));
            }
        }
        // Phrasing 1 says the steps in the past tense; phrasing 3 in a troubleshooting field.
        let said = tried_fix_escalation(&case, &with_steps, 1).description;
        assert!(
            said.ends_with(
                "As the article says, we ran the renew command in the admin console and we signed \
                 out and sign in again; the error comes back after a minute."
            ),
            "{said}"
        );
        let field = tried_fix_escalation(&case, &with_steps, 3).handoff;
        assert_eq!(
            field["troubleshooting"],
            "We ran the renew command in the admin console. We signed out and sign in again."
        );
    }

    #[test]
    fn the_escalation_gives_back_the_case_text() {
        for text in [
            "Title?\n\n\n\nBody line\nmore",
            "  \nSecond line first\nrest",
            "one line",
            "",
        ] {
            let case = Case {
                id: "c".into(),
                text: text.into(),
                label: Label::NotResolvable,
                article_ids: vec![],
                split: Split::Dev,
                line: 1,
            };
            let esc = escalation(&case);
            assert_eq!(esc.case_text(), text);
        }
    }
}
