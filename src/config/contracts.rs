//! The `[report]` table of a connector file: the contract terms the scorecard measures partners
//! against (the good-escalation target, the smallest sample a ratio is shown on, and the tiers
//! finance pays on).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checks::{Problem, within};

pub const DEFAULT_TARGET: f64 = 0.80;
pub const DEFAULT_MIN_ESCALATIONS: u64 = 20;
pub const DEFAULT_MIN_ANSWERS: u64 = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportFile {
    /// What the scorecard's title calls the vendor (default: the survey's `company`, else the
    /// connector id).
    pub display_name: Option<String>,
    /// The good-escalation ratio the contract asks for (default 0.80).
    pub target: Option<f64>,
    /// Below this many judged escalations a ratio is "not enough data" (default 20).
    pub min_escalations: Option<u64>,
    /// Below this many survey answers a CSAT or CES mean is "not enough data" (default 10).
    pub min_answers: Option<u64>,
    /// Best first: a partner reaches the first tier whose every condition it meets.
    #[serde(default)]
    pub tiers: Vec<TierFile>,
    /// Partner name → its own target, where its contract differs.
    #[serde(default)]
    pub partners: BTreeMap<String, PartnerFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierFile {
    pub name: String,
    /// What finance books for it, e.g. "discount +5 %" or "bonus 3 %".
    pub label: String,
    pub min_good_ratio: Option<f64>,
    /// The mean CSAT of ratings about support (ratings about the product do not count).
    pub min_support_csat: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerFile {
    pub target: f64,
}

/// Validated contract terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contracts {
    /// What the scorecard's title calls the vendor; empty: the connector id. Not a contract
    /// term: the scorecard states it as its `name`.
    #[serde(skip)]
    pub display_name: String,
    pub target: f64,
    pub min_escalations: u64,
    pub min_answers: u64,
    pub tiers: Vec<Tier>,
    pub partner_targets: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tier {
    pub name: String,
    pub label: String,
    pub min_good_ratio: Option<f64>,
    pub min_support_csat: Option<f64>,
}

impl Default for Contracts {
    fn default() -> Self {
        Contracts {
            display_name: String::new(),
            target: DEFAULT_TARGET,
            min_escalations: DEFAULT_MIN_ESCALATIONS,
            min_answers: DEFAULT_MIN_ANSWERS,
            tiers: Vec::new(),
            partner_targets: BTreeMap::new(),
        }
    }
}

impl Contracts {
    /// The good-escalation target of `partner`.
    pub fn target_of(&self, partner: &str) -> f64 {
        self.partner_targets
            .get(partner)
            .copied()
            .unwrap_or(self.target)
    }
}

impl ReportFile {
    pub fn validate(self, problems: &mut Vec<Problem>) -> Contracts {
        let target = within(
            "report.target".into(),
            self.target.unwrap_or(DEFAULT_TARGET),
            0.0..=1.0,
            problems,
        );
        let min_escalations = self.min_escalations.unwrap_or(DEFAULT_MIN_ESCALATIONS);
        let min_answers = self.min_answers.unwrap_or(DEFAULT_MIN_ANSWERS);
        for (key, v) in [
            ("report.min_escalations", min_escalations),
            ("report.min_answers", min_answers),
        ] {
            if v < 2 {
                problems.push(Problem::new(
                    key,
                    format!("must be at least 2 (no interval is computed on fewer), found {v}"),
                ));
            }
        }
        let mut tiers = Vec::new();
        for (i, t) in self.tiers.into_iter().enumerate() {
            let key = |k: &str| format!("report.tiers[{i}].{k}");
            if t.name.trim().is_empty() {
                problems.push(Problem::new(key("name"), "must not be empty"));
            }
            if t.min_good_ratio.is_none() && t.min_support_csat.is_none() {
                problems.push(Problem::new(
                    key("min_good_ratio"),
                    "a tier needs `min_good_ratio`, `min_support_csat` or both",
                ));
            }
            if let Some(r) = t.min_good_ratio {
                within(key("min_good_ratio"), r, 0.0..=1.0, problems);
            }
            if let Some(c) = t.min_support_csat.filter(|c| !(1.0..=5.0).contains(c)) {
                problems.push(Problem::new(
                    key("min_support_csat"),
                    format!("CSAT is 1 to 5, found {c}"),
                ));
            }
            tiers.push(Tier {
                name: t.name.trim().to_string(),
                label: t.label,
                min_good_ratio: t.min_good_ratio,
                min_support_csat: t.min_support_csat,
            });
        }
        let mut partner_targets = BTreeMap::new();
        for (name, p) in self.partners {
            within(
                format!("report.partners.{name}.target"),
                p.target,
                0.0..=1.0,
                problems,
            );
            partner_targets.insert(name, p.target);
        }
        Contracts {
            display_name: self
                .display_name
                .map(|n| n.trim().to_string())
                .unwrap_or_default(),
            target,
            min_escalations,
            min_answers,
            tiers,
            partner_targets,
        }
    }
}
