//! A vendor's calibration weights file (`calibrate --fit --out FILE`, `eval --fit-calibration`):
//! the stage-2 weights refitted on the vendor's own reviewed cases, by input name, with the
//! weight set they were fitted for, the sample, and the held-out figures that justified them.
//! A connector names it in `[knowledge_base] calibration`; a file fitted for another weight set
//! or input list is refused, never applied to inputs it was not fitted on.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::rescore::{Calibration, DEFAULT_THRESHOLD};

/// The version of the file's layout this build reads and writes.
pub const FORMAT: u32 = 1;

/// Recall at the target precision and the review share of one set of weights, on held-out cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Recall of "bad" at the highest-recall threshold whose precision is at least the target
    /// (0 when none reaches it).
    pub recall: f64,
    /// The threshold (whole percent, as `calibrate` proposes) that keeps the target, and the
    /// review bound below it; absent when no threshold keeps the target.
    pub threshold: Option<f64>,
    pub review_bound: Option<f64>,
    /// Share of the cases between the review bound and the threshold: sent to a person.
    pub review_share: Option<f64>,
    /// Precision and recall of "bad" at that threshold.
    pub precision_at_threshold: Option<f64>,
    pub recall_at_threshold: Option<f64>,
}

/// Held-out figures: k-fold cross-validation by case over the reviewed cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    pub folds: usize,
    pub seed: u64,
    /// The precision of "bad" the thresholds keep.
    pub target: f64,
    pub global: Figures,
    pub fitted: Figures,
}

/// The file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsFile {
    pub format: u32,
    /// The weight set the inputs come from ([`Calibration::weight_set`]).
    pub weight_set: String,
    /// Where the reviews came from: a connector id, or `eval:<cases file>`.
    pub source: String,
    /// The period of the reviewed tickets (RFC 3339), when read from a helpdesk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Reviewed cases fitted on, of them decided bad, and reviewed cases left out (their article
    /// is no longer a candidate).
    pub sample: usize,
    pub bad: usize,
    pub skipped: usize,
    /// The strength of the pull toward the global weights (chosen by cross-validation).
    pub prior_strength: f64,
    /// Proposed on the fitted confidences (held out): the threshold that keeps the target
    /// precision, and the review bound below it.
    pub threshold: Option<f64>,
    pub review_bound: Option<f64>,
    pub bias: f64,
    /// One weight per stage-2 input, by name.
    pub weights: BTreeMap<String, f64>,
    pub held_out: HeldOut,
}

impl WeightsFile {
    /// The file's text (TOML).
    pub fn to_text(&self) -> String {
        format!(
            "# Stage-2 calibration weights of escalation-gate, fitted on a vendor's reviewed cases.\n{}",
            toml::to_string(self).expect("the weights file serialises")
        )
    }

    /// Reads and checks a weights file: it parses, its format is this build's, and it was
    /// fitted for the weight set and inputs the judge runs with. `vendor` names it in verdicts.
    pub fn read(path: &Path, vendor: &str) -> Result<(WeightsFile, Calibration), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let file: WeightsFile = toml::from_str(&text).map_err(|e| {
            format!(
                "`{}` is not a calibration weights file (write one with `calibrate --fit --out`): {}",
                path.display(),
                e.message()
            )
        })?;
        let calibration = file
            .calibration(vendor)
            .map_err(|e| format!("`{}`: {e}", path.display()))?;
        Ok((file, calibration))
    }

    /// The weights as the judge takes them, when they fit the running judge.
    pub fn calibration(&self, vendor: &str) -> Result<Calibration, String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} is not the format {FORMAT} this build reads; fit it again with `calibrate --fit`",
                self.format
            ));
        }
        let running = Calibration::weight_set();
        if self.weight_set != running {
            return Err(format!(
                "fitted for weight set `{}`, and the judge runs `{running}`; fit it again with `calibrate --fit`",
                self.weight_set
            ));
        }
        let missing: Vec<&str> = Calibration::inputs()
            .filter(|n| !self.weights.contains_key(*n))
            .collect();
        let unknown: Vec<&str> = self
            .weights
            .keys()
            .map(String::as_str)
            .filter(|k| !Calibration::inputs().any(|n| n == *k))
            .collect();
        if !missing.is_empty() || !unknown.is_empty() {
            return Err(format!(
                "its weights do not match the judge's inputs (missing: {}; unknown: {}); fit it again with `calibrate --fit`",
                list(&missing),
                list(&unknown)
            ));
        }
        if let Some((name, _)) = self.weights.iter().find(|(_, w)| !w.is_finite()) {
            return Err(format!("weight `{name}` is not a finite number"));
        }
        Ok(Calibration {
            weights: Calibration::inputs().map(|n| self.weights[n]).collect(),
            bias: self.bias,
            vendor: Some(vendor.to_string()),
        })
    }
}

/// The threshold, review bound and stage-2 weights a judge runs with: the threshold and review
/// bound set, else those the vendor's file proposes, else the default threshold and
/// `default_bound` of the threshold; the vendor's weights, else the global ones.
pub fn judge_settings(
    vendor: Option<(WeightsFile, Calibration)>,
    threshold: Option<f64>,
    review_bound: Option<f64>,
    default_bound: impl FnOnce(f64) -> f64,
) -> (f64, f64, Arc<Calibration>) {
    let proposed =
        |pick: fn(&WeightsFile) -> Option<f64>| vendor.as_ref().and_then(|(f, _)| pick(f));
    let threshold = threshold
        .or_else(|| proposed(|f| f.threshold))
        .unwrap_or(DEFAULT_THRESHOLD);
    let review_bound = review_bound
        .or_else(|| proposed(|f| f.review_bound))
        .unwrap_or_else(|| default_bound(threshold));
    let calibration = vendor
        .map(|(_, c)| Arc::new(c))
        .unwrap_or_else(Calibration::global);
    (threshold, review_bound, calibration)
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Weights by input name, for a file.
pub fn by_name(calibration: &Calibration) -> BTreeMap<String, f64> {
    Calibration::inputs()
        .map(str::to_string)
        .zip(calibration.weights.iter().copied())
        .collect()
}
