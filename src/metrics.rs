//! Metric names and the calls that record them. Labels come from connector, partner, verdict,
//! reason, helpdesk and call names: never from URLs or customer text.
//!
//! Label values that come from helpdesk data are bounded, so no ticket field can create series
//! without end: a partner is its own label only when the connector names it (`[metrics]
//! partners`, the survey's `partners`, a hand-off override's `partner`), others count as
//! `other`; the first [`MAX_ARTICLE_LABELS`] articles of a connector are labelled by id, later
//! ones `other`; every such value is cut to [`MAX_LABEL_CHARS`] characters.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use metrics::{counter, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const WEBHOOKS: &str = "escalation_gate_webhooks_total";
pub const WEBHOOK_RETRIES: &str = "escalation_gate_webhook_retries_total";
pub const ESCALATIONS: &str = "escalation_gate_escalations_assessed_total";
pub const REASONS: &str = "escalation_gate_escalation_reasons_total";
pub const FLAGS: &str = "escalation_gate_escalation_flags_total";
pub const KB_ARTICLES: &str = "escalation_gate_kb_resolvable_articles_total";
pub const UPSTREAM_CALLS: &str = "escalation_gate_upstream_requests_total";
pub const UPSTREAM_ERRORS: &str = "escalation_gate_upstream_errors_total";
pub const UPSTREAM_SECONDS: &str = "escalation_gate_upstream_request_duration_seconds";
pub const SURVEYS_REQUESTED: &str = "escalation_gate_surveys_requested_total";
pub const SURVEYS_SKIPPED: &str = "escalation_gate_surveys_skipped_total";
pub const SURVEYS_SENT: &str = "escalation_gate_surveys_sent_total";
pub const SURVEYS_ANSWERED: &str = "escalation_gate_surveys_answered_total";
pub const SURVEY_ANSWER_UPDATES: &str = "escalation_gate_survey_answer_updates_total";
pub const SURVEY_CSAT: &str = "escalation_gate_survey_csat";
pub const SURVEY_CES: &str = "escalation_gate_survey_ces";
pub const SURVEY_ABOUT: &str = "escalation_gate_survey_about_total";
pub const SURVEY_OPT_OUTS: &str = "escalation_gate_survey_opt_outs_total";
pub const SURVEY_REFUSED: &str = "escalation_gate_survey_refused_total";
pub const SWEEP_RUNS: &str = "escalation_gate_sweep_runs_total";
pub const SWEEP_TICKETS: &str = "escalation_gate_sweep_tickets_total";
pub const ADMIN_FIXES: &str = "escalation_gate_admin_fix_needed_total";
pub const PRECHECKS: &str = "escalation_gate_prechecks_total";
pub const PRECHECK_PROBLEMS: &str = "escalation_gate_precheck_problems_total";
pub const PRECHECKED: &str = "escalation_gate_prechecked_escalations_total";
pub const PRECHECK_ARTICLES_SHOWN: &str = "escalation_gate_precheck_articles_shown_total";
pub const PRECHECK_ABANDONED: &str = "escalation_gate_precheck_abandoned_total";
pub const KB_MIRROR_FALLBACKS: &str = "escalation_gate_kb_mirror_fallbacks_total";
pub const KB_MIRROR_SYNCS: &str = "escalation_gate_kb_mirror_syncs_total";
pub const KB_MIRROR_ARTICLES: &str = "escalation_gate_kb_mirror_articles";
pub const KB_MIRROR_LAST_SYNC: &str = "escalation_gate_kb_mirror_last_sync_timestamp_seconds";

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// CSAT is 1–5 and CES 1–7: one bucket per answer.
const CSAT_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0];
const CES_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Longest label value taken from configuration or helpdesk data.
pub const MAX_LABEL_CHARS: usize = 64;
/// Distinct article labels per connector; later articles count as [`OTHER`].
pub const MAX_ARTICLE_LABELS: usize = 200;
/// The label of partners the connector does not name, and of articles past the bound.
pub const OTHER: &str = "other";

type LabelSets = Mutex<HashMap<String, BTreeSet<String>>>;

/// Partners each connector names, by connector.
static PARTNERS: OnceLock<LabelSets> = OnceLock::new();
/// Article ids labelled so far, by connector.
static ARTICLES: OnceLock<LabelSets> = OnceLock::new();

fn sets(
    cell: &'static OnceLock<LabelSets>,
) -> std::sync::MutexGuard<'static, HashMap<String, BTreeSet<String>>> {
    cell.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn capped(value: &str) -> String {
    value.chars().take(MAX_LABEL_CHARS).collect()
}

/// Declares the partners `connector` names: their metrics carry their own `partner` label.
pub fn name_partners<'a>(connector: &str, partners: impl IntoIterator<Item = &'a str>) {
    sets(&PARTNERS)
        .entry(connector.to_string())
        .or_default()
        .extend(partners.into_iter().map(capped));
}

/// The `partner` label: the partner when the connector names it (or the partner is
/// `unknown`), else [`OTHER`].
pub fn partner_label(connector: &str, partner: &str) -> String {
    let partner = capped(partner);
    let named = partner == crate::escalation::UNKNOWN_PARTNER
        || sets(&PARTNERS)
            .get(connector)
            .is_some_and(|named| named.contains(&partner));
    if named { partner } else { OTHER.to_string() }
}

/// The `article` label: the article's id while the connector has labelled fewer than
/// [`MAX_ARTICLE_LABELS`] distinct ones, else [`OTHER`].
pub fn article_label(connector: &str, article: &str) -> String {
    let article = capped(article);
    let mut all = sets(&ARTICLES);
    let seen = all.entry(connector.to_string()).or_default();
    if seen.contains(&article) || seen.len() < MAX_ARTICLE_LABELS {
        seen.insert(article.clone());
        article
    } else {
        OTHER.to_string()
    }
}

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
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(SURVEY_CSAT.into()),
                    CSAT_BUCKETS,
                )
                .expect("static buckets are valid")
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(SURVEY_CES.into()),
                    CES_BUCKETS,
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

/// A precheck answered, and the outcome the judge would give the draft (`good`, `bad`,
/// `review`).
pub fn precheck(connector: &str, outcome: &'static str) {
    counter!(PRECHECKS, "connector" => connector.to_string(), "outcome" => outcome).increment(1);
}

/// A problem a precheck found in a draft: `missing_handoff` or `kb_resolvable`.
pub fn precheck_problem(connector: &str, reason: &'static str) {
    counter!(PRECHECK_PROBLEMS, "connector" => connector.to_string(), "reason" => reason)
        .increment(1);
}

/// A precheck whose answer listed an article.
pub fn precheck_articles_shown(connector: &str) {
    counter!(PRECHECK_ARTICLES_SHOWN, "connector" => connector.to_string()).increment(1);
}

/// A draft abandoned after a check listed an article, as `via` reports it (`form`: the request
/// form's page was left without sending it).
pub fn precheck_abandoned(connector: &str, via: &'static str) {
    counter!(PRECHECK_ABANDONED, "connector" => connector.to_string(), "via" => via).increment(1);
}

/// A delivery answered "deliver again later", and why: `unavailable`, `refused`, `invalid`
/// (the upstream's answer; see `UpstreamError::reason`), `kb`, `time_limit`, `busy` (the judge
/// queue was full), `failed`.
pub fn webhook_retry(connector: &str, reason: &'static str) {
    counter!(WEBHOOK_RETRIES, "connector" => connector.to_string(), "reason" => reason)
        .increment(1);
}

/// A newly judged escalation: its outcome, the names of its reasons, the articles that made it
/// resolvable, and the names of its flags.
pub fn verdict(
    connector: &str,
    partner: &str,
    outcome: &str,
    reasons: &[&str],
    articles: &[&str],
    flags: &[&str],
) {
    let labels = [
        ("connector", connector.to_string()),
        ("partner", partner_label(connector, partner)),
    ];
    counter!(ESCALATIONS, &labels_with(&labels, "verdict", outcome)).increment(1);
    for reason in reasons {
        counter!(REASONS, &labels_with(&labels, "reason", reason)).increment(1);
    }
    for article in articles {
        counter!(
            KB_ARTICLES,
            &labels_with(&labels[..1], "article", &article_label(connector, article))
        )
        .increment(1);
    }
    for flag in flags {
        counter!(FLAGS, &labels_with(&labels, "flag", flag)).increment(1);
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

/// A verdict write the helpdesk refused for its own configuration, which an admin must fix
/// (e.g. a restricted picklist without the value): `field` is the field's API name.
pub fn admin_fix_needed(connector: &str, field: &str) {
    counter!(ADMIN_FIXES, "connector" => connector.to_string(), "field" => capped(field))
        .increment(1);
}

/// A `solved` event that reached the survey rules.
pub fn survey_requested(connector: &str, partner: &str) {
    counter!(SURVEYS_REQUESTED, "connector" => connector.to_string(), "partner" => partner_label(connector, partner))
        .increment(1);
}

pub fn survey_skipped(connector: &str, partner: &str, reason: &'static str) {
    counter!(SURVEYS_SKIPPED, "connector" => connector.to_string(), "partner" => partner_label(connector, partner), "reason" => reason)
        .increment(1);
}

/// `channel`: `smtp` or `webhook`.
pub fn survey_sent(connector: &str, partner: &str, channel: &'static str) {
    counter!(SURVEYS_SENT, "connector" => connector.to_string(), "partner" => partner_label(connector, partner), "channel" => channel)
        .increment(1);
}

/// A recorded answer: its CSAT (1–5), CES (1–7) and what it was about (`unsaid` when the
/// customer did not say). Only a ticket's first answer is counted in the answers and
/// histograms; a later one (which replaces it in the sink) is counted as an update.
pub fn survey_answered(
    connector: &str,
    partner: &str,
    escalated: bool,
    (csat, ces, about): (u8, Option<u8>, &str),
    first: bool,
) {
    let labels = [
        ("connector", connector.to_string()),
        ("partner", partner_label(connector, partner)),
    ];
    if !first {
        counter!(SURVEY_ANSWER_UPDATES, &labels).increment(1);
        return;
    }
    let escalated = if escalated { "true" } else { "false" };
    counter!(
        SURVEYS_ANSWERED,
        &labels_with(&labels, "escalated", escalated)
    )
    .increment(1);
    histogram!(SURVEY_CSAT, &labels_with(&labels, "escalated", escalated)).record(f64::from(csat));
    if let Some(ces) = ces {
        histogram!(SURVEY_CES, &labels).record(f64::from(ces));
    }
    counter!(SURVEY_ABOUT, &labels_with(&labels, "about", about)).increment(1);
}

pub fn survey_opt_out(connector: &str) {
    counter!(SURVEY_OPT_OUTS, "connector" => connector.to_string()).increment(1);
}

/// A survey page or answer refused (`forged`, `expired`, `honeypot`, `too_fast`, ...).
pub fn survey_refused(connector: &str, reason: &'static str) {
    counter!(SURVEY_REFUSED, "connector" => connector.to_string(), "reason" => reason).increment(1);
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

/// One sweep run and how it ended (`ok`, `error`).
/// An escalation whose ticket records what the check before escalating said (`precheck`), with
/// its verdict: `bad` then `good` is a problem fixed before sending, `bad` then `bad` an
/// escalation sent despite the check.
pub fn prechecked_escalation(
    connector: &str,
    partner: &str,
    precheck: &'static str,
    verdict: &'static str,
) {
    counter!(
        PRECHECKED,
        "connector" => connector.to_string(),
        "partner" => partner_label(connector, partner),
        "precheck" => precheck,
        "verdict" => verdict
    )
    .increment(1);
}

/// An escalation judged with the helpdesk's own search because the connector's mirror has not
/// completed a first sync.
pub fn kb_mirror_fallback(connector: &str) {
    counter!(KB_MIRROR_FALLBACKS, "connector" => connector.to_string()).increment(1);
}

/// A mirror sync ended (`outcome`: `ok` or `failed`); after a good one, the mirror's articles
/// and the time it ended.
pub fn kb_mirror_sync(connector: &str, outcome: &'static str, articles: Option<usize>) {
    counter!(KB_MIRROR_SYNCS, "connector" => connector.to_string(), "outcome" => outcome)
        .increment(1);
    if let Some(n) = articles {
        metrics::gauge!(KB_MIRROR_ARTICLES, "connector" => connector.to_string()).set(n as f64);
        metrics::gauge!(KB_MIRROR_LAST_SYNC, "connector" => connector.to_string())
            .set(chrono::Utc::now().timestamp() as f64);
    }
}

pub fn sweep_run(connector: &str, outcome: &'static str) {
    counter!(SWEEP_RUNS, "connector" => connector.to_string(), "outcome" => outcome).increment(1);
}

/// A ticket a sweep found, and what became of it (`judged`, `logged`, `already`, `failed`).
pub fn sweep_ticket(connector: &str, outcome: &'static str) {
    counter!(SWEEP_TICKETS, "connector" => connector.to_string(), "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_from_helpdesk_data_are_bounded() {
        let c = "labels-test";
        name_partners(c, ["Acme IT", &"L".repeat(100)]);
        assert_eq!(partner_label(c, "Acme IT"), "Acme IT");
        assert_eq!(partner_label(c, "Anyone typed into a field"), OTHER);
        assert_eq!(
            partner_label(c, &"L".repeat(100)),
            "L".repeat(MAX_LABEL_CHARS)
        );
        assert_eq!(
            partner_label(c, crate::escalation::UNKNOWN_PARTNER),
            "unknown"
        );
        assert_eq!(partner_label("another-connector", "Acme IT"), OTHER);

        for i in 0..MAX_ARTICLE_LABELS {
            assert_eq!(article_label(c, &format!("kb-{i}")), format!("kb-{i}"));
        }
        assert_eq!(article_label(c, "kb-one-too-many"), OTHER);
        assert_eq!(
            article_label(c, "kb-7"),
            "kb-7",
            "a labelled article keeps its label"
        );
        assert_eq!(
            article_label("labels-test-2", &"a".repeat(300))
                .chars()
                .count(),
            MAX_LABEL_CHARS
        );
    }
}
