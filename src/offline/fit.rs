//! Refits the judge's stage-2 (calibration) weights on a vendor's own reviewed cases.
//!
//! One reviewed case is one sample: the stage-2 inputs of the article the verdict named, and
//! whether the reviewer decided the case bad because of it. The fit is a logistic regression
//! with an L2 penalty pulling every weight toward the global one (a maximum a posteriori fit
//! with the global weights as the prior mean), solved by Newton's method: a few hundred reviews
//! move the calibration only as far as they justify. The penalty is measured on standardised
//! inputs (each weight's distance times its input's spread in the sample), and its strength is
//! chosen from [`STRENGTHS`] by cross-validated log-loss. The bias is not pulled: the share of
//! bad cases is what differs most between vendors.
//!
//! The ranking stage is not refitted: a review speaks of one article of the case, and ranking
//! needs to know which of all the candidates answer it.
//!
//! Held-out figures come from k-fold cross-validation by case (fixed seed): each case's fitted
//! confidence comes from weights fitted without it, and the global weights' confidences are
//! read on the same cases. Deterministic: the same samples give the same file, byte for byte.

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::assess::kb::rescore::{Calibration, sigmoid, stage2_inputs_of};
use crate::assess::kb::weights_file::{self, FORMAT, Figures, HeldOut, WeightsFile};
use crate::assess::kb::{KbFindings, KbMatch};
use crate::assess::{Outcome, ReasonKind};
use crate::helpdesk::TicketRef;
use crate::helpdesk::records::{CaseRecord, Period, RecordSink, floor_percent};
use crate::offline::backfill::waited_out;
use crate::offline::calibrate::ByConfidence;
use crate::offline::eval::{Prediction, Report, recall_at_precision, sweep};
use crate::offline::report::Source;
use crate::runtime::connector::Connector;

/// The penalty strengths tried, from a loose to a firm pull toward the global weights.
pub const STRENGTHS: [f64; 7] = [0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0];
pub const DEFAULT_FOLDS: usize = 5;
pub const DEFAULT_SEED: u64 = 7;
/// The fewest reviewed cases a fit takes, and the fewest of each decision among them.
pub const DEFAULT_MIN_SAMPLE: usize = 50;
pub const DEFAULT_MIN_EACH: usize = 10;

/// One reviewed case: the named article's stage-2 inputs and the reviewer's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// In the order of [`Calibration::inputs`].
    pub inputs: Vec<f64>,
    /// The reviewer decided the case bad because of the article.
    pub bad: bool,
}

/// How a fit is asked.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub min_sample: usize,
    pub min_each: usize,
    pub folds: usize,
    pub seed: u64,
    /// The precision of "bad" the proposed threshold keeps.
    pub target: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            min_sample: DEFAULT_MIN_SAMPLE,
            min_each: DEFAULT_MIN_EACH,
            folds: DEFAULT_FOLDS,
            seed: DEFAULT_SEED,
            target: 0.90,
        }
    }
}

/// Where the reviews came from, for the file.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub source: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Reviewed cases left out: their article is no longer a candidate.
    pub skipped: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error(
        "too few reviewed cases to fit: {sample} ({bad} decided bad, {good} good); a fit needs at \
         least {min_sample}, with at least {min_each} of each decision. Review more cases, or \
         lower --min-sample / --min-each knowing the weights will be less sure"
    )]
    TooFew {
        sample: usize,
        bad: usize,
        good: usize,
        min_sample: usize,
        min_each: usize,
    },
}

/// A reviewed case to read again: the ticket, and what its record says.
struct Reviewed {
    ticket: String,
    opened_at: chrono::DateTime<chrono::Utc>,
    /// The article the verdict named, if it named one.
    article: Option<String>,
    bad: bool,
}

/// Keeps the reviewed cases the knowledge base decides: a person's decision on a verdict that
/// no missing hand-off field made bad (as `calibrate` counts them).
#[derive(Default)]
struct ReviewedCases(Vec<Reviewed>);

impl RecordSink for ReviewedCases {
    fn record(&mut self, r: CaseRecord) {
        let (Some(_), Some(decision)) = (r.verdict, r.reviewed) else {
            return;
        };
        if r.reasons.contains(&ReasonKind::MissingHandoff) {
            return;
        }
        self.0.push(Reviewed {
            ticket: r.ticket_id,
            opened_at: r.opened_at,
            article: r.kb_articles.into_iter().next(),
            bad: decision == Outcome::Bad,
        });
    }
}

/// The reviewed cases of `period` as samples, and how many were left out. Each ticket is read
/// again through the tickets role and mapped as the webhook maps it, dated by its history, and
/// judged again against the connector's knowledge base as of its escalation (an article published
/// later never counts); the sample is the stage-2 inputs of the article the verdict named (the
/// best counted article when it named none). A case whose article is no longer a candidate, or
/// whose ticket cannot be read again, is left out; a history that cannot be read stops the fit.
pub async fn reviewed_samples(
    connector: &Connector,
    period: &Period,
) -> anyhow::Result<(Vec<Sample>, usize)> {
    let source = Source::of(connector).with_context(|| {
        format!(
            "connector `{}` cannot read a period back: its helpdesk ({}) has no record role",
            connector.id, connector.helpdesk.kind
        )
    })?;
    let record = source.record;
    connector.ready().await?;
    let mut reviewed = ReviewedCases::default();
    record.records(period, source.survey, &mut reviewed).await?;
    let query = connector.sweep.as_ref().and_then(|s| s.query.as_deref());
    let (mut samples, mut skipped) = (Vec::new(), 0);
    for case in reviewed.0 {
        // What marks an escalation is the connector's to say: without it no case is dated.
        let at =
            waited_out(|| async { Ok(record.escalation_time(&case.ticket, query).await?) }).await?;
        let read = async {
            let ticket = TicketRef {
                id: case.ticket.clone(),
                escalated_at: at.unwrap_or(case.opened_at),
                escalated_at_unknown: at.is_none(),
                snapshot: None,
            };
            let mut loaded =
                waited_out(|| async { Ok(connector.helpdesk.tickets.load(&ticket).await?) })
                    .await?;
            loaded.escalation.escalated_at_unknown = ticket.escalated_at_unknown;
            connector.judge(&loaded.escalation).await
        };
        let inputs = match read.await {
            Ok(verdict) => named(&verdict.kb, case.article.as_deref())
                .and_then(|m| stage2_inputs_of(&m.signals)),
            Err(e) => {
                tracing::warn!(ticket = %case.ticket, error = %e, "Reviewed ticket not read again; left out of the fit");
                None
            }
        };
        match inputs {
            Some(inputs) => samples.push(Sample {
                inputs,
                bad: case.bad,
            }),
            None => skipped += 1,
        }
    }
    Ok((samples, skipped))
}

/// The article `id` among what the judge found, or without an id the best counted article (the
/// one whose confidence the verdict records).
fn named<'a>(kb: &'a KbFindings, id: Option<&str>) -> Option<&'a KbMatch> {
    let counted = kb
        .resolvable_by
        .as_ref()
        .or(kb.review.as_ref())
        .or(kb.best_other.as_ref());
    let Some(id) = id else {
        return counted;
    };
    counted
        .into_iter()
        .chain(kb.tried.iter().map(|t| &t.article))
        .chain(kb.related.iter().map(|r| &r.article))
        .find(|m| m.article_id == id)
}

/// The evaluated cases (`eval`) as a vendor's reviews, for [`fit_file`]:
/// each case's best article, decided bad when it answers the case; and how many cases had no
/// eligible article to review.
pub fn reviews(report: &Report) -> (Vec<Sample>, usize) {
    let samples: Vec<Sample> = report
        .per_case
        .iter()
        .filter_map(|o| {
            o.stage2.as_ref().map(|inputs| Sample {
                inputs: inputs.clone(),
                bad: o.correct,
            })
        })
        .collect();
    let skipped = report.per_case.len() - samples.len();
    (samples, skipped)
}

/// Refits the global weights on `samples` and writes the file's content, with held-out figures.
pub fn fit_file(
    samples: &[Sample],
    options: &FitOptions,
    provenance: Provenance,
) -> Result<WeightsFile, FitError> {
    let bad = samples.iter().filter(|s| s.bad).count();
    let good = samples.len() - bad;
    if samples.len() < options.min_sample || bad < options.min_each || good < options.min_each {
        return Err(FitError::TooFew {
            sample: samples.len(),
            bad,
            good,
            min_sample: options.min_sample,
            min_each: options.min_each,
        });
    }
    let global = Calibration::global();
    let folds = folds(samples.len(), options.folds, options.seed);
    let strength = choose_strength(samples, &global, &folds);
    let fitted = fit(samples, &global, strength);
    // Held out: each case's confidence from weights fitted (strength chosen too) without it.
    let mut held = vec![0.0; samples.len()];
    for f in 0..options.folds {
        let (train, test): (Vec<usize>, Vec<usize>) =
            (0..samples.len()).partition(|&i| folds[i] != f);
        let part: Vec<Sample> = train.iter().map(|&i| samples[i].clone()).collect();
        let inner = self::folds(part.len(), options.folds, options.seed);
        let w = fit(&part, &global, choose_strength(&part, &global, &inner));
        for i in test {
            held[i] = w.confidence(&samples[i].inputs);
        }
    }
    let before: Vec<f64> = samples
        .iter()
        .map(|s| global.confidence(&s.inputs))
        .collect();
    let after = figures(&held, samples, options.target);
    Ok(WeightsFile {
        format: FORMAT,
        weight_set: Calibration::weight_set().to_string(),
        source: provenance.source,
        from: provenance.from,
        to: provenance.to,
        sample: samples.len(),
        bad,
        skipped: provenance.skipped,
        prior_strength: strength,
        threshold: after.threshold,
        review_bound: after.review_bound,
        bias: fitted.bias,
        weights: weights_file::by_name(&fitted),
        held_out: HeldOut {
            folds: options.folds,
            seed: options.seed,
            target: options.target,
            global: figures(&before, samples, options.target),
            fitted: after,
        },
    })
}

/// Fold of each of `n` cases: a shuffle with `seed`, dealt round-robin into `k` folds.
fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut fold = vec![0; n];
    for (j, &i) in order.iter().enumerate() {
        fold[i] = j % k;
    }
    fold
}

/// The strength of [`STRENGTHS`] with the lowest cross-validated log-loss (the firmer among equals).
fn choose_strength(samples: &[Sample], prior: &Calibration, folds: &[usize]) -> f64 {
    let k = folds.iter().max().map_or(1, |m| m + 1);
    let mut best = (f64::INFINITY, STRENGTHS[0]);
    for &strength in &STRENGTHS {
        let mut loss = 0.0;
        for f in 0..k {
            let train: Vec<Sample> = samples
                .iter()
                .zip(folds)
                .filter(|(_, g)| **g != f)
                .map(|(s, _)| s.clone())
                .collect();
            let w = fit(&train, prior, strength);
            loss += samples
                .iter()
                .zip(folds)
                .filter(|(_, g)| **g == f)
                .map(|(s, _)| log_loss(w.logit(&s.inputs), s.bad))
                .sum::<f64>();
        }
        if loss <= best.0 {
            best = (loss, strength);
        }
    }
    best.1
}

/// -log p(label) for a logit `z`, computed without overflow.
fn log_loss(z: f64, bad: bool) -> f64 {
    let z = if bad { -z } else { z };
    // log(1 + e^z)
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// The maximum a posteriori weights: logistic log-likelihood of `samples` plus
/// `strength / 2 * sum((w - w_prior)^2 * spread^2)` over the weights (not the bias), by Newton's
/// method with step halving from the prior.
pub fn fit(samples: &[Sample], prior: &Calibration, strength: f64) -> Calibration {
    let d = prior.weights.len();
    let n = samples.len().max(1) as f64;
    // The spread of each input in the sample; a constant input keeps its prior weight.
    let scale: Vec<f64> = (0..d)
        .map(|j| {
            let mean = samples.iter().map(|s| s.inputs[j]).sum::<f64>() / n;
            let var = samples
                .iter()
                .map(|s| (s.inputs[j] - mean).powi(2))
                .sum::<f64>()
                / n;
            if var > 1e-12 { var } else { 1.0 }
        })
        .collect();
    let objective = |theta: &[f64]| -> f64 {
        let data: f64 = samples
            .iter()
            .map(|s| log_loss(logit(theta, &s.inputs), s.bad))
            .sum();
        let pull: f64 = (0..d)
            .map(|j| scale[j] * (theta[j] - prior.weights[j]).powi(2))
            .sum();
        data + 0.5 * strength * pull
    };
    // theta: the weights, then the bias.
    let mut theta: Vec<f64> = prior.weights.iter().copied().chain([prior.bias]).collect();
    let mut current = objective(&theta);
    for _ in 0..100 {
        let mut grad = vec![0.0; d + 1];
        let mut hess = vec![vec![0.0; d + 1]; d + 1];
        for s in samples {
            let p = sigmoid(logit(&theta, &s.inputs));
            let r = p - f64::from(u8::from(s.bad));
            let w = p * (1.0 - p);
            let x: Vec<f64> = s.inputs.iter().copied().chain([1.0]).collect();
            // Only the lower triangle: [`solve`] reads no other.
            for (a, ((g, row), xa)) in grad.iter_mut().zip(hess.iter_mut()).zip(&x).enumerate() {
                *g += r * xa;
                for (h, xb) in row.iter_mut().zip(&x).take(a + 1) {
                    *h += w * xa * xb;
                }
            }
        }
        for j in 0..d {
            grad[j] += strength * scale[j] * (theta[j] - prior.weights[j]);
            hess[j][j] += strength * scale[j];
        }
        // A tiny ridge on the bias keeps the system solvable when one decision is missing.
        hess[d][d] += 1e-9;
        let step = solve(hess, grad);
        let mut t = 1.0;
        let mut improved = false;
        while t > 1e-6 {
            let next: Vec<f64> = theta.iter().zip(&step).map(|(v, s)| v - t * s).collect();
            let value = objective(&next);
            if value <= current {
                let moved = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
                theta = next;
                current = value;
                improved = moved > 1e-10;
                break;
            }
            t /= 2.0;
        }
        if !improved {
            break;
        }
    }
    Calibration {
        bias: theta[d],
        weights: theta[..d].to_vec(),
        vendor: None,
    }
}

fn logit(theta: &[f64], x: &[f64]) -> f64 {
    let d = x.len();
    theta[d] + x.iter().zip(theta).map(|(x, w)| x * w).sum::<f64>()
}

/// Solves `a x = b` for a symmetric positive definite `a` given by its lower triangle (Cholesky).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for j in 0..n {
        let mut d = a[j][j] - (0..j).map(|k| a[j][k] * a[j][k]).sum::<f64>();
        d = d.max(1e-12).sqrt();
        a[j][j] = d;
        for i in j + 1..n {
            let s = a[i][j] - (0..j).map(|k| a[i][k] * a[j][k]).sum::<f64>();
            a[i][j] = s / d;
        }
    }
    for i in 0..n {
        b[i] = (b[i] - (0..i).map(|k| a[i][k] * b[k]).sum::<f64>()) / a[i][i];
    }
    for i in (0..n).rev() {
        b[i] = (b[i] - (i + 1..n).map(|k| a[k][i] * b[k]).sum::<f64>()) / a[i][i];
    }
    b
}

/// Recall at precision ≥ `target` over every threshold, and the threshold and review bound
/// `calibrate` would propose on these confidences (whole percent), with the review share there.
pub fn figures(confidences: &[f64], samples: &[Sample], target: f64) -> Figures {
    let predictions: Vec<Prediction> = confidences
        .iter()
        .zip(samples)
        .map(|(&confidence, s)| Prediction {
            confidence,
            correct: s.bad,
        })
        .collect();
    let positives = samples.iter().filter(|s| s.bad).count();
    let best = recall_at_precision(&sweep(&predictions, positives), target);
    let mut by = ByConfidence::default();
    for p in &predictions {
        by.add(floor_percent(p.confidence), p.correct);
    }
    let threshold = by.lowest_threshold(target);
    let bound = threshold.map(|t| by.review_bound(t));
    let percent = |c: f64| usize::from(floor_percent(c));
    let (at, band) = match (threshold, bound) {
        (Some(t), Some(b)) => (
            predictions
                .iter()
                .filter(|p| percent(p.confidence) >= t)
                .collect::<Vec<_>>(),
            predictions
                .iter()
                .filter(|p| (b..t).contains(&percent(p.confidence)))
                .count(),
        ),
        _ => (Vec::new(), 0),
    };
    let right = at.iter().filter(|p| p.correct).count();
    let share = |k: usize, n: usize| (n > 0).then(|| k as f64 / n as f64);
    Figures {
        recall: best.map_or(0.0, |p| p.recall),
        threshold: threshold.map(|t| t as f64 / 100.0),
        review_bound: bound.map(|b| b as f64 / 100.0),
        review_share: threshold.and(share(band, predictions.len())),
        precision_at_threshold: threshold.and(share(right, at.len())),
        recall_at_threshold: threshold.and(share(right, positives)),
    }
}

/// The fit's figures as text: the sample, then the held-out figures with the global and the
/// fitted weights, then what the connector file takes.
pub fn render_text(file: &WeightsFile) -> String {
    let h = &file.held_out;
    let mut out = format!(
        "Calibration fit on {} reviewed cases of {} ({} decided bad; {} left out: their article is no longer a candidate)\n",
        file.sample, file.source, file.bad, file.skipped
    );
    if let (Some(from), Some(to)) = (&file.from, &file.to) {
        out += &format!("tickets created {from} to {to}\n");
    }
    out += &format!(
        "pull toward the global weights: {} (chosen by cross-validation)\n\nheld out ({}-fold cross-validation by case, seed {}), precision of \"bad\" >= {:.2}:\n",
        file.prior_strength, h.folds, h.seed, h.target
    );
    let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
    for (name, f) in [("global weights", &h.global), ("fitted weights", &h.fitted)] {
        out += &format!(
            "  {name}: recall at P >= {:.2} {:.3}; threshold {} (P {} / R {}), review bound {}, review share {}\n",
            h.target,
            f.recall,
            opt(f.threshold),
            opt(f.precision_at_threshold),
            opt(f.recall_at_threshold),
            opt(f.review_bound),
            opt(f.review_share)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples drawn from known weights (a fixed generator): inputs uniform in [-2, 2].
    fn synthetic(truth: &Calibration, n: usize, seed: u64) -> Vec<Sample> {
        let mut x = seed;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let inputs: Vec<f64> = (0..truth.weights.len())
                    .map(|_| 4.0 * next() - 2.0)
                    .collect();
                let bad = next() < truth.confidence(&inputs);
                Sample { inputs, bad }
            })
            .collect()
    }

    fn truth() -> Calibration {
        let global = Calibration::global();
        Calibration {
            weights: global
                .weights
                .iter()
                .enumerate()
                .map(|(j, w)| if j % 3 == 0 { w + 1.0 } else { w - 0.5 })
                .collect(),
            bias: global.bias + 0.8,
            vendor: None,
        }
    }

    #[test]
    fn a_loose_fit_recovers_known_weights_and_a_firm_one_stays_at_the_prior() {
        let truth = truth();
        let samples = synthetic(&truth, 20_000, 3);
        let loose = fit(&samples, &Calibration::global(), 0.3);
        for (j, (w, t)) in loose.weights.iter().zip(&truth.weights).enumerate() {
            assert!((w - t).abs() < 0.15, "weight {j}: fitted {w}, truth {t}");
        }
        assert!((loose.bias - truth.bias).abs() < 0.15, "{}", loose.bias);
        // A pull far stronger than the data keeps the global weights.
        let firm = fit(&samples[..200], &Calibration::global(), 1e9);
        for (w, g) in firm.weights.iter().zip(&Calibration::global().weights) {
            assert!((w - g).abs() < 1e-3, "{w} vs {g}");
        }
    }

    #[test]
    fn too_few_reviews_are_refused_with_the_counts() {
        let samples = synthetic(&truth(), 49, 5);
        let bad = samples.iter().filter(|s| s.bad).count();
        let provenance = Provenance {
            source: "acme".into(),
            from: None,
            to: None,
            skipped: 0,
        };
        let err = fit_file(&samples, &FitOptions::default(), provenance.clone()).unwrap_err();
        assert_eq!(
            err,
            FitError::TooFew {
                sample: 49,
                bad,
                good: 49 - bad,
                min_sample: 50,
                min_each: 10
            }
        );
        assert!(err.to_string().contains("49 ("), "{err}");
        // Enough cases, but one decision seen fewer than ten times.
        let mut one_sided = synthetic(&truth(), 80, 6);
        let mut bad_seen = 0;
        for s in &mut one_sided {
            if s.bad {
                bad_seen += 1;
                s.bad = bad_seen < 10;
            }
        }
        assert!(matches!(
            fit_file(&one_sided, &FitOptions::default(), provenance),
            Err(FitError::TooFew { bad: 9, .. })
        ));
    }

    #[test]
    fn the_same_reviews_give_the_same_file_byte_for_byte_and_it_reads_back() {
        let samples = synthetic(&truth(), 300, 9);
        let provenance = Provenance {
            source: "acme".into(),
            from: Some("2026-01-01T00:00:00Z".into()),
            to: Some("2026-04-01T00:00:00Z".into()),
            skipped: 2,
        };
        let options = FitOptions::default();
        let a = fit_file(&samples, &options, provenance.clone()).unwrap();
        let b = fit_file(&samples, &options, provenance).unwrap();
        assert_eq!(a.to_text(), b.to_text());
        let back: WeightsFile = toml::from_str(&a.to_text()).unwrap();
        assert_eq!(back, a);
        let calibration = back.calibration("acme.weights.toml").unwrap();
        assert_eq!(calibration.bias, a.bias);
        assert_eq!(calibration.vendor.as_deref(), Some("acme.weights.toml"));
        // The held-out figures compare the two weight sets on the same cases: the vendor's
        // weights, drawn away from the global ones, rank its cases better.
        assert!(
            a.held_out.fitted.recall > a.held_out.global.recall,
            "{:?}",
            a.held_out
        );
    }

    #[test]
    fn a_file_for_another_weight_set_or_input_list_is_refused() {
        let samples = synthetic(&truth(), 120, 11);
        let provenance = Provenance {
            source: "acme".into(),
            from: None,
            to: None,
            skipped: 0,
        };
        let file = fit_file(&samples, &FitOptions::default(), provenance).unwrap();
        let mut other = file.clone();
        other.weight_set = "semantic-0000000000000000".into();
        let err = other.calibration("x").unwrap_err();
        assert!(
            err.contains("weight set `semantic-0000000000000000`"),
            "{err}"
        );
        let mut fewer = file.clone();
        fewer.weights.remove("cov_w");
        fewer.weights.insert("cosine".into(), 0.5);
        let err = fewer.calibration("x").unwrap_err();
        assert!(err.contains("missing: cov_w; unknown: cosine"), "{err}");
        let mut old = file;
        old.format = 0;
        assert!(old.calibration("x").unwrap_err().contains("format 0"));
    }
}
