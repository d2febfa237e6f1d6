//! The shipped Grafana dashboard and Prometheus alert rules: the dashboard holds to Grafana's
//! dashboard schema where this project relies on it, every query and rule parses as PromQL, and
//! every metric they name is one the service exports.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const DASHBOARD: &str = include_str!("../../dashboards/escalation-gate.json");
const ALERTS: &str = include_str!("../../dashboards/alerts.yml");
const SCHEMA: &str = include_str!("../fixtures/grafana/dashboard.schema.json");
const METRICS_RS: &str = include_str!("../../src/metrics.rs");

static METRIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bescalation_gate_[a-z0-9_]+").unwrap());

/// The metric names `src/metrics.rs` declares.
fn exported() -> BTreeSet<String> {
    let re = Regex::new(r#"pub const [A-Z_]+: &str = "(escalation_gate_[a-z0-9_]+)";"#).unwrap();
    re.captures_iter(METRICS_RS)
        .map(|c| c[1].to_string())
        .collect()
}

/// The metric an expression names, with a histogram's series suffix taken off when the base is
/// the histogram.
fn base_name(name: &str, exported: &BTreeSet<String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && exported.contains(base)
        {
            return base.to_string();
        }
    }
    name.to_string()
}

/// Parses `expr` as PromQL, Grafana's variables replaced by what they stand for, and returns the
/// metrics it names.
fn promql_metrics(expr: &str) -> Vec<String> {
    let concrete = expr
        .replace("$__rate_interval", "5m")
        .replace("$__range", "7d")
        .replace("$__interval", "1m");
    if let Err(e) = promql_parser::parser::parse(&concrete) {
        panic!("not PromQL: {e}\n{expr}");
    }
    METRIC
        .find_iter(&concrete)
        .map(|m| m.as_str().to_string())
        .collect()
}

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("the dashboard is JSON")
}

/// Every panel, rows' nested ones included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

#[test]
fn the_dashboard_holds_to_grafanas_schema() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("a valid JSON Schema");
    let d = dashboard();
    let errors: Vec<String> = validator
        .iter_errors(&d)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema catches what it should: a panel wider than the grid, a bad tooltip mode.
    let mut broken = d.clone();
    broken["panels"][1]["gridPos"]["w"] = 30.into();
    broken["graphTooltip"] = 3.into();
    assert!(validator.iter_errors(&broken).count() >= 2);
    // Panels do not overlap and ids are unique.
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for p in panels(&d) {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "{} runs off the grid", p["title"]);
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{} overlaps another panel",
                    p["title"]
                );
            }
        }
    }
    // Every panel's data source is the dashboard's Prometheus variable.
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "connector", "partner"]);
    for p in panels(&d).into_iter().filter(|p| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
    }
}

#[test]
fn every_query_and_rule_parses_and_names_exported_metrics() {
    let exported = exported();
    assert!(exported.len() >= 15, "{exported:?}");
    let d = dashboard();
    let mut named = BTreeSet::new();
    let mut exprs: Vec<String> = panels(&d)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    for v in d["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            // label_values(metric{...}, label): the metric selector inside is PromQL.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(m, _)| m.to_string())
                .unwrap();
            exprs.push(inner);
        }
    }
    assert!(exprs.len() >= 15);
    let docs = YamlLoader::load_from_str(ALERTS).expect("the alert rules are YAML");
    let rules = docs[0]["groups"][0]["rules"]
        .as_vec()
        .expect("groups[0].rules");
    assert!(rules.len() >= 3);
    let duration = Regex::new(r"^\d+[smhd]$").unwrap();
    for rule in rules {
        let alert = rule["alert"].as_str().expect("every rule is an alert");
        assert!(
            alert.starts_with("EscalationGate"),
            "{alert}: alert names start with EscalationGate"
        );
        assert!(matches!(
            rule["labels"]["severity"].as_str(),
            Some("warning" | "critical")
        ));
        assert!(rule["annotations"]["summary"].as_str().is_some(), "{alert}");
        if let Yaml::String(f) = &rule["for"] {
            assert!(duration.is_match(f), "{alert}: for {f}");
        }
        exprs.push(rule["expr"].as_str().expect("expr").to_string());
    }
    for e in &exprs {
        for m in promql_metrics(e) {
            named.insert(base_name(&m, &exported));
        }
    }
    let unknown: Vec<&String> = named.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "not exported by src/metrics.rs: {unknown:?}"
    );
    // The issue's list: verdicts per partner, reasons, surveys sent and answered, upstream
    // errors, webhook retries (503s).
    for m in [
        "escalation_gate_escalations_assessed_total",
        "escalation_gate_escalation_reasons_total",
        "escalation_gate_surveys_sent_total",
        "escalation_gate_surveys_answered_total",
        "escalation_gate_upstream_requests_total",
        "escalation_gate_webhooks_total",
    ] {
        assert!(named.contains(m), "{m} is on no panel or rule");
    }
}

#[test]
fn a_misspelt_metric_is_caught() {
    let exported = exported();
    let named: Vec<String> = promql_metrics("sum(rate(escalation_gate_webhook_total[5m]))")
        .iter()
        .map(|m| base_name(m, &exported))
        .collect();
    assert!(!exported.contains(&named[0]));
    assert_eq!(
        base_name("escalation_gate_survey_csat_sum", &exported),
        "escalation_gate_survey_csat"
    );
}
