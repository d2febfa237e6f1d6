//! Metric names and the calls that record them. Labels come from connector, partner, verdict,
//! reason, helpdesk and call names: never from URLs or customer text.

use std::sync::OnceLock;

use metrics::{counter, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::assess::Verdict;

pub const WEBHOOKS: &str = "escalation_gate_webhooks_total";
pub const ESCALATIONS: &str = "escalation_gate_escalations_assessed_total";
pub const REASONS: &str = "escalation_gate_escalation_reasons_total";
pub const FLAGS: &str = "escalation_gate_escalation_flags_total";
pub const KB_ARTICLES: &str = "escalation_gate_kb_resolvable_articles_total";
pub const UPSTREAM_CALLS: &str = "escalation_gate_upstream_requests_total";
pub const UPSTREAM_ERRORS: &str = "escalation_gate_upstream_errors_total";
pub const UPSTREAM_SECONDS: &str = "escalation_gate_upstream_request_duration_seconds";

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(UPSTREAM_SECONDS.into()),
                    LATENCY_BUCKETS,
                )
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Only fails when another recorder was set first; this one's handle still renders
            // nothing then, which the metrics test would show.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// One inbound webhook call and how it ended (`ok`, `rejected`, `retry`).
pub fn webhook(connector: &str, outcome: &'static str) {
    counter!(WEBHOOKS, "connector" => connector.to_string(), "outcome" => outcome).increment(1);
}

/// A newly judged escalation.
pub fn verdict(connector: &str, partner: &str, v: &Verdict) {
    let labels = [
        ("connector", connector.to_string()),
        ("partner", partner.to_string()),
    ];
    counter!(
        ESCALATIONS,
        &labels_with(&labels, "verdict", v.outcome.as_str())
    )
    .increment(1);
    for r in &v.reasons {
        counter!(REASONS, &labels_with(&labels, "reason", r.name())).increment(1);
        if let crate::assess::Reason::KbResolvable { article } = r {
            counter!(
                KB_ARTICLES,
                &labels_with(&labels[..1], "article", &article.article_id)
            )
            .increment(1);
        }
    }
    for (flag, on) in [("late", v.flags.late), ("kb_gap", v.flags.kb_gap)] {
        if on {
            counter!(FLAGS, &labels_with(&labels, "flag", flag)).increment(1);
        }
    }
}

/// One upstream HTTP attempt.
pub fn upstream_call(service: &'static str, call: &'static str, status: &str, seconds: f64) {
    counter!(UPSTREAM_CALLS, "helpdesk" => service, "call" => call, "status" => status.to_string())
        .increment(1);
    histogram!(UPSTREAM_SECONDS, "helpdesk" => service, "call" => call).record(seconds);
}

/// An error the upstream named in its answer (e.g. Salesforce's `errorCode`). `code` must come
/// from the upstream's closed list of codes, never from free text.
pub fn upstream_error(service: &'static str, call: &'static str, code: &str) {
    counter!(UPSTREAM_ERRORS, "helpdesk" => service, "call" => call, "code" => code.to_string())
        .increment(1);
}

fn labels_with(
    base: &[(&'static str, String)],
    key: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    let mut l = base.to_vec();
    l.push((key, value.to_string()));
    l
}
