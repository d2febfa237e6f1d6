//! The sweep: escalations whose webhook never arrived are found through the helpdesk's own
//! search and judged, by `serve` on its own and by the `sweep` command.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;

const SWEEP: &str = "[sweep]\nquery = \"tags:partner_escalation\"\nlookback_hours = 24\n";

/// A ticket last changed `hours` ago, with `tags`.
fn changed(id: u64, hours: i64, tags: &[&str]) -> Value {
    let mut t = ticket(
        id,
        "Invoices export fails",
        "Exporting invoices to PDF fails with error LX-5521 since 4.2.1.",
        &complete_handoff(),
    );
    t["tags"] = json!(tags);
    t["updated_at"] = json!(
        (Utc::now() - chrono::Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    t
}

/// The escalated tickets of the tests: one whose webhook was lost, and three the sweep leaves:
/// already judged, not escalated, and changed before the look-back.
fn tickets() -> Vec<Value> {
    vec![
        changed(50, 2, &["partner_escalation"]),
        changed(51, 1, &["partner_escalation", "escalation_good"]),
        changed(52, 1, &[]),
        changed(53, 72, &["partner_escalation"]),
    ]
}

fn verdict_tags(zendesk: &FakeZendesk, id: u64) -> Vec<String> {
    zendesk.ticket(id)["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| t.starts_with("escalation_"))
        .map(str::to_string)
        .collect()
}

fn untouched(zendesk: &FakeZendesk) {
    for id in [51, 52, 53] {
        assert_eq!(
            zendesk.count(&format!("PUT /api/v2/tickets/{id}")),
            0,
            "ticket {id}"
        );
    }
    assert!(verdict_tags(zendesk, 52).is_empty());
    assert!(verdict_tags(zendesk, 53).is_empty());
}

/// Waits (up to 10 s) until `connector`'s first sweep has finished; returns the metrics then.
async fn after_first_sweep(client: &reqwest::Client, metrics_url: &str, connector: &str) -> String {
    let label = format!("connector=\"{connector}\"");
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = get_text(client, metrics_url).await;
        let runs = metric_value(
            &metrics,
            "escalation_gate_sweep_runs_total",
            &[&label, "outcome=\"ok\""],
        );
        if runs.is_some_and(|n| n >= 1.0) {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the first sweep runs at start: {metrics}");
}

#[tokio::test]
async fn serve_judges_an_escalation_whose_webhook_never_came() {
    let zd = zendesk().await;
    for t in tickets() {
        zd.put_ticket(t);
    }
    let app = spawn_with(
        zd,
        Options {
            extra_toml: SWEEP.into(),
            ..Options::default()
        },
    )
    .await;
    let metrics = after_first_sweep(&app.client, &app.metrics_url, &app.connector).await;
    assert!(verdict_tags(&app.fake, 50).contains(&"escalation_good".to_string()));
    assert_eq!(app.notes(50).len(), 1);
    assert_eq!(app.fake.count("PUT /api/v2/tickets/50"), 1);
    untouched(&app.fake);
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_sweep_tickets_total",
            &[&app.label(), "outcome=\"judged\""],
        ),
        Some(1.0),
        "{metrics}"
    );
    // The webhook arriving late finds the verdict and writes nothing.
    assert_eq!(app.escalate(50).await.status(), 200);
    assert_eq!(app.fake.count("PUT /api/v2/tickets/50"), 1);
    app.shut_down().await;
}

/// A fake Zendesk holding the directory and [`tickets`].
async fn seeded_zendesk() -> FakeZendesk {
    let zendesk = zendesk().await;
    for t in tickets() {
        zendesk.put_ticket(t);
    }
    zendesk
}

/// The test connector's file with `extra` appended.
fn connector_file(extra: &str) -> String {
    connector_toml(API_TOKEN_AUTH, "helpdesk", extra)
}

/// Runs `escalation-gate sweep` on a connectors folder holding `text` as `acme.toml`.
async fn sweep_command(zendesk: &FakeZendesk, text: &str) -> std::process::Output {
    let dir = connectors_dir(text);
    run_command("sweep", &["--connector", "acme"], dir.path(), zendesk).await
}

#[tokio::test]
async fn the_sweep_command_judges_once_and_reports_what_it_did() {
    let zendesk = seeded_zendesk().await;
    let report = |out: &std::process::Output| -> Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("sweep prints JSON")
    };
    // An article that answers ticket 50, written after it was opened (while the vendor worked
    // it) and before its last change: it must not make the escalation bad.
    zendesk.put_article(article(
        360050,
        "Invoices export fails: exporting invoices to PDF fails with error LX-5521",
        "Since 4.2.1, exporting invoices to PDF fails with error LX-5521. The export of invoices \
         to PDF works again in 4.2.2: install it, or split the invoice and export the parts.",
        &(Utc::now() - chrono::Duration::hours(3)).to_rfc3339_opts(SecondsFormat::Secs, true),
    ));
    for (id, title, body) in [
        (
            360051,
            "Invoice PDFs show empty boxes instead of characters",
            "Choose a Unicode font such as Noto Sans in the invoice template and export again.",
        ),
        (
            360052,
            "Calendar sync stops with error E1234 after a password change",
            "Disconnect the calendar and connect it again after changing the mailbox password.",
        ),
    ] {
        zendesk.put_article(article(id, title, body, "2023-11-03T00:00:00Z"));
    }
    let first = report(&sweep_command(&zendesk, &connector_file(SWEEP)).await);
    assert_eq!(
        first,
        json!({"found": 1, "judged": 1, "logged": 0, "already": 0, "failed": 0})
    );
    assert!(verdict_tags(&zendesk, 50).contains(&"escalation_good".to_string()));
    let note = zendesk.comments(50)[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.contains("after the ticket was opened")
            && note.contains("escalation time unknown (found by the sweep)"),
        "{note}"
    );
    untouched(&zendesk);
    let again = report(&sweep_command(&zendesk, &connector_file(SWEEP)).await);
    assert_eq!(again["found"], 0);
    assert_eq!(zendesk.count("PUT /api/v2/tickets/50"), 1);

    let none = sweep_command(&zendesk, &connector_file("")).await;
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("has no [sweep] table"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}

#[tokio::test]
async fn serve_judges_a_salesforce_case_whose_outbound_message_never_came() {
    use crate::salesforce::{BOTH, CLIENT_CREDENTIALS, GOOD, KB, MISSING, org, spawn_connector};
    let mut state = org();
    let ago = |hours: i64| {
        json!(
            (Utc::now() - chrono::Duration::hours(hours))
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string()
        )
    };
    // GOOD lost its message; KB is judged already; MISSING is not escalated; BOTH changed
    // before the look-back.
    for (case, escalated, verdict, hours) in [
        (GOOD, true, Value::Null, 2),
        (KB, true, json!("Good"), 1),
        (MISSING, false, Value::Null, 1),
        (BOTH, true, Value::Null, 72),
    ] {
        let c = state.cases.get_mut(case).unwrap();
        c.insert("IsEscalated".into(), json!(escalated));
        c.insert("Escalation_Quality__c".into(), verdict);
        c.insert("LastModifiedDate".into(), ago(hours));
    }
    let app = spawn_connector(
        state,
        CLIENT_CREDENTIALS,
        Default::default(),
        "",
        "[sweep]\nlookback_hours = 24\n",
        Vec::new(),
    )
    .await;
    after_first_sweep(&app.client, &app.metrics_url, &app.connector).await;
    assert_eq!(app.fake.field(GOOD, "Escalation_Quality__c"), json!("Good"));
    assert_eq!(app.fake.comments_on(GOOD).len(), 1);
    for case in [KB, MISSING, BOTH] {
        assert_eq!(
            app.fake.count("PATCH", &format!("sobjects/Case/{case}")),
            0,
            "{case}"
        );
        assert!(app.fake.comments_on(case).is_empty(), "{case}");
    }
}

#[tokio::test]
async fn in_log_mode_the_sweep_writes_nothing_and_finds_the_ticket_again() {
    let zendesk = seeded_zendesk().await;
    let text = connector_file(SWEEP).replace(
        "product_field = \"product\"",
        "product_field = \"product\"\nwrite_back = \"log\"",
    );
    for _ in 0..2 {
        let out = sweep_command(&zendesk, &text).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            report,
            json!({"found": 1, "judged": 0, "logged": 1, "already": 0, "failed": 0})
        );
    }
    assert_eq!(zendesk.count("PUT /api/v2"), 0);
}

#[tokio::test]
async fn a_ticket_sent_to_review_counts_as_judged_and_is_not_swept_again() {
    let zendesk = seeded_zendesk().await;
    for (id, title, body) in [
        (
            360050,
            "Exporting invoices to PDF fails with error LX-5521",
            "Since 4.2.1, exporting invoices to PDF fails with error LX-5521. Install 4.2.2, or \
             split the invoice and export the parts.",
        ),
        (
            360051,
            "Invoice PDFs show empty boxes instead of characters",
            "Choose a Unicode font such as Noto Sans in the invoice template and export again.",
        ),
        (
            360052,
            "Exporting invoices to Excel",
            "Invoices export to Excel from the list view: select them and choose Export.",
        ),
    ] {
        zendesk.put_article(article(id, title, body, "2023-01-03T00:00:00Z"));
    }
    let review = connector_file(&format!("threshold = 0.999\nreview_bound = 0.3\n{SWEEP}"));
    let first = sweep_command(&zendesk, &review).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // The confidence of the article in review is recorded for calibration.
    assert_eq!(
        verdict_tags(&zendesk, 50),
        ["escalation_review", "escalation_kb_conf_96"]
    );
    let again = sweep_command(&zendesk, &review).await;
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["found"], 0);
    assert_eq!(zendesk.count("PUT /api/v2/tickets/50"), 1);
    let search = zendesk
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.starts_with("/api/v2/search"))
        .unwrap();
    assert!(
        search
            .query
            .unwrap_or_default()
            .contains("-tags%3Aescalation_review"),
        "the sweep's search leaves tickets in review out"
    );
}

/// The survey automation tags a solved case `csat_blind_requested` in the same step as its
/// call; a call lost beyond Zendesk's retries is found by the sweep an hour later and the
/// survey goes out then. Cases whose survey is recorded, whose call may still be retried, or
/// that were not asked yet are left alone.
#[tokio::test]
async fn the_sweep_surveys_a_solved_case_whose_survey_call_was_lost() {
    let (url, seen) = crate::survey::webhook_receiver().await;
    let zd = zendesk().await;
    let case = |id: u64, minutes: i64, asked: &[&str]| {
        let mut t = solved_case(id, "Calendar sync stopped");
        let mut tags = vec![
            "partner_escalation",
            "escalation_good",
            "csat_blind_pending",
        ];
        tags.extend(asked);
        t["tags"] = json!(tags);
        t["updated_at"] = json!(
            (Utc::now() - chrono::Duration::minutes(minutes))
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        t
    };
    zd.put_ticket(case(60, 120, &["csat_blind_requested"]));
    zd.put_ticket(case(
        61,
        120,
        &[
            "csat_blind_requested",
            "csat_blind_skipped",
            "csat_blind_skipped_opted_out",
        ],
    ));
    zd.put_ticket(case(62, 10, &["csat_blind_requested"]));
    zd.put_ticket(case(63, 120, &[]));
    let delivery = "kind = \"webhook\"\nurl = \"${HOOK_URL}\"\nsecret = \"${HOOK_SECRET}\"\n";
    let app = spawn_with(
        zd,
        Options {
            extra_toml: format!("{SWEEP}{}", survey_toml(delivery, TICKET_SINK)),
            vars: vec![
                (
                    "SURVEY_KEY",
                    "sweep-survey-key-0123456789abcdef012345".into(),
                ),
                (
                    "SURVEY_OLD_KEY",
                    "sweep-survey-key-0123456789abcdef012345".into(),
                ),
                ("HOOK_URL", url),
                (
                    "HOOK_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                ),
            ],
            ..Options::default()
        },
    )
    .await;
    after_first_sweep(&app.client, &app.metrics_url, &app.connector).await;
    assert!(
        app.tags(60).contains(&"csat_blind_sent".to_string()),
        "{:?}",
        app.tags(60)
    );
    let sent: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).unwrap())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["data"]["ticket"], "60");
    for id in [61, 62, 63] {
        assert_eq!(
            app.fake.count(&format!("PUT /api/v2/tickets/{id}")),
            0,
            "ticket {id}"
        );
    }
    // The call arriving at last finds the survey recorded and sends nothing.
    let late = app
        .post_signed(r#"{"ticket_id": "60", "event": "solved"}"#)
        .await;
    assert_eq!(late.status(), 200);
    assert_eq!(seen.lock().unwrap().len(), 1);
    app.shut_down().await;
}
