//! Hand-off rules: which fields a partner must fill in before it hands a case over.

use regex::Regex;
use serde::Serialize;

use crate::escalation::Escalation;

/// What one field must satisfy.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Not empty (after trimming white space).
    Present,
    /// At least this many characters (after trimming).
    MinLength(usize),
    /// One of these values (case-insensitive, trimmed).
    OneOf(Vec<String>),
    /// Matches this regular expression.
    Regex(Regex),
}

impl Rule {
    /// The rule in words, as the internal note shows it.
    pub fn describe(&self) -> String {
        match self {
            Rule::Present => "must be filled in".into(),
            Rule::MinLength(n) => format!("needs at least {n} characters"),
            Rule::OneOf(values) => format!("must be one of: {}", values.join(", ")),
            Rule::Regex(re) => format!("must match the pattern `{}`", re.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FieldRule {
    pub field: String,
    pub rule: Rule,
}

/// Who an override applies to.
#[derive(Debug, Clone)]
pub enum Scope {
    Partner(String),
    Product(String),
}

/// A change to the base rules for one partner or product: each entry replaces the base rule for
/// its field (or adds one); `None` makes the field optional.
#[derive(Debug, Clone)]
pub struct Override {
    pub scope: Scope,
    pub rules: Vec<(String, Option<Rule>)>,
}

#[derive(Debug, Clone, Default)]
pub struct HandoffRules {
    pub rules: Vec<FieldRule>,
    /// Product overrides apply first, then partner overrides, each in file order.
    pub overrides: Vec<Override>,
}

/// One field that failed its rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandoffFailure {
    pub field: String,
    /// The rule in words.
    pub rule: String,
    /// What was found, in words (never the customer's text).
    pub found: String,
}

impl HandoffFailure {
    /// The failure in words, as the internal note and the precheck show it:
    /// `{field}: {rule}; found {found}.`
    pub fn message(&self) -> String {
        format!("{}: {}; found {}.", self.field, self.rule, self.found)
    }
}

impl HandoffRules {
    /// The rules that apply to this escalation, after overrides, in a stable order.
    pub fn effective(&self, partner: &str, product: Option<&str>) -> Vec<FieldRule> {
        let mut rules: Vec<(String, Option<Rule>)> = self
            .rules
            .iter()
            .map(|r| (r.field.clone(), Some(r.rule.clone())))
            .collect();
        let product_first = self
            .overrides
            .iter()
            .filter(|o| matches!(&o.scope, Scope::Product(p) if product.is_some_and(|x| x.eq_ignore_ascii_case(p))))
            .chain(self.overrides.iter().filter(
                |o| matches!(&o.scope, Scope::Partner(p) if p.eq_ignore_ascii_case(partner)),
            ));
        for o in product_first {
            for (field, rule) in &o.rules {
                match rules.iter_mut().find(|(f, _)| f == field) {
                    Some(slot) => slot.1 = rule.clone(),
                    None => rules.push((field.clone(), rule.clone())),
                }
            }
        }
        rules
            .into_iter()
            .filter_map(|(field, rule)| rule.map(|rule| FieldRule { field, rule }))
            .collect()
    }

    /// Every field of the escalation that breaks its rule.
    pub fn check(&self, esc: &Escalation) -> Vec<HandoffFailure> {
        self.effective(&esc.partner, esc.product.as_deref())
            .into_iter()
            .filter_map(|r| {
                let value = esc.handoff.get(&r.field).map(|v| v.trim()).unwrap_or("");
                check_value(&r.rule, value).map(|found| HandoffFailure {
                    field: r.field.clone(),
                    rule: r.rule.describe(),
                    found,
                })
            })
            .collect()
    }
}

/// `None` when the value satisfies the rule, else what was found, in words.
pub fn check_value(rule: &Rule, value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("empty".into());
    }
    match rule {
        Rule::Present => None,
        Rule::MinLength(n) => {
            let len = value.chars().count();
            (len < *n).then(|| format!("{len} characters"))
        }
        Rule::OneOf(values) => (!values.iter().any(|v| v.trim().eq_ignore_ascii_case(value)))
            .then(|| format!("`{}`", shorten(value, 60))),
        Rule::Regex(re) => (!re.is_match(value)).then(|| "a value that does not match".into()),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::tests::escalation;

    fn rules() -> HandoffRules {
        HandoffRules {
            rules: vec![
                FieldRule {
                    field: "steps".into(),
                    rule: Rule::MinLength(20),
                },
                FieldRule {
                    field: "severity".into(),
                    rule: Rule::OneOf(vec!["low".into(), "high".into()]),
                },
                FieldRule {
                    field: "case_ref".into(),
                    rule: Rule::Regex(Regex::new(r"^[A-Z]{2}-\d+$").unwrap()),
                },
                FieldRule {
                    field: "environment".into(),
                    rule: Rule::Present,
                },
            ],
            overrides: vec![
                Override {
                    scope: Scope::Partner("Acme".into()),
                    rules: vec![
                        ("environment".into(), None),
                        ("steps".into(), Some(Rule::MinLength(5))),
                    ],
                },
                Override {
                    scope: Scope::Product("Mobile".into()),
                    rules: vec![
                        ("steps".into(), Some(Rule::MinLength(50))),
                        ("device".into(), Some(Rule::Present)),
                    ],
                },
            ],
        }
    }

    #[test]
    fn each_rule_passes_and_fails() {
        assert_eq!(check_value(&Rule::Present, "x"), None);
        assert_eq!(check_value(&Rule::Present, ""), Some("empty".into()));
        assert_eq!(check_value(&Rule::MinLength(3), "abc"), None);
        assert_eq!(
            check_value(&Rule::MinLength(4), "abc"),
            Some("3 characters".into())
        );
        assert_eq!(check_value(&Rule::MinLength(2), "éé"), None);
        let one_of = Rule::OneOf(vec!["Low".into(), "High".into()]);
        assert_eq!(check_value(&one_of, "high"), None);
        assert_eq!(check_value(&one_of, "medium"), Some("`medium`".into()));
        let re = Rule::Regex(Regex::new(r"^\d+$").unwrap());
        assert_eq!(check_value(&re, "123"), None);
        assert!(check_value(&re, "12a").is_some());
    }

    #[test]
    fn failures_name_field_rule_and_finding() {
        let mut esc = escalation();
        esc.partner = "Other".into();
        esc.handoff.insert("steps".into(), "too short".into());
        esc.handoff.insert("severity".into(), "low".into());
        esc.handoff.insert("case_ref".into(), "AB-12".into());
        let failures = rules().check(&esc);
        assert_eq!(
            failures,
            vec![
                HandoffFailure {
                    field: "steps".into(),
                    rule: "needs at least 20 characters".into(),
                    found: "9 characters".into()
                },
                HandoffFailure {
                    field: "environment".into(),
                    rule: "must be filled in".into(),
                    found: "empty".into()
                },
            ]
        );
    }

    #[test]
    fn partner_override_beats_product_override() {
        let r = rules();
        let names = |rules: Vec<FieldRule>| {
            rules
                .iter()
                .map(|r| format!("{}:{}", r.field, r.rule.describe()))
                .collect::<Vec<_>>()
        };
        let mobile_acme = names(r.effective("acme", Some("mobile")));
        assert!(mobile_acme.contains(&"steps:needs at least 5 characters".to_string()));
        assert!(mobile_acme.contains(&"device:must be filled in".to_string()));
        assert!(!mobile_acme.iter().any(|n| n.starts_with("environment")));
        let mobile_other = names(r.effective("other", Some("mobile")));
        assert!(mobile_other.contains(&"steps:needs at least 50 characters".to_string()));
        assert!(mobile_other.iter().any(|n| n.starts_with("environment")));
        assert_eq!(names(r.effective("other", None)).len(), 4);
    }
}
