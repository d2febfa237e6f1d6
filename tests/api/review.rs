//! The judge's safety lanes on both helpdesks: an article about a neighbouring identifier never
//! makes a case bad, and a confidence between the review bound and the threshold sends the case
//! to a person (outcome `review`) instead of a good/bad verdict.

use escalation_gate::server::ServerSettings;
use escalation_gate::server::reply::SOAP_ACK as ACK;
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::{self, *};
use crate::salesforce::{
    CLIENT_CREDENTIALS, ENDPOINT_TOKEN, KB, ORG, envelope, org, spawn_connector,
};
use crate::zendesk::{calendar_neighbours, unrelated};

/// A threshold the near miss clears (and no review lane), so only the rule keeps it from counting.
const NEAR_MISS_THRESHOLD: &str = "threshold = 0.7\nreview_bound = 0.7\n";

/// Sends the case to a person whenever the best article is not certain beyond doubt.
const REVIEW_LANE: &str = "threshold = 0.999\nreview_bound = 0.3\n";

/// The confidence a note line `... (confidence 0.93; ...` states.
fn confidence_in(line: &str) -> f64 {
    let (_, rest) = line.split_once("(confidence ").expect("a confidence");
    rest[..4].parse().unwrap()
}

#[tokio::test]
async fn an_article_about_another_code_of_the_same_family_never_makes_it_bad() {
    let app = spawn_with(
        zendesk().await,
        helpers::Options {
            extra_toml: NEAR_MISS_THRESHOLD.into(),
            ..helpers::Options::default()
        },
    )
    .await;
    // The same text as the case's answer, but about another exception of the same kind. (An
    // error code the article does not name already weighs against it in the confidence; an
    // exception's name is not read as a code, so here only the rule stands between.)
    let text = |name: &str| {
        format!(
            "Calendar sync stops and the sync log shows {name} authorization expired after the \
             user changed the mailbox password. Open Settings, Integrations, Calendar, then \
             disconnect and connect the calendar again."
        )
    };
    app.fake.put_article(article(
        360001,
        "Calendar sync stops with TokenRevokedException after a password change",
        &text("TokenRevokedException"),
        "2024-01-01T00:00:00Z",
    ));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake.put_ticket(ticket(
        2,
        "Calendar sync stops with TokenExpiredException after password change",
        "Calendar sync stopped this morning; the sync log shows TokenExpiredException \
         authorization expired. The user changed the mailbox password yesterday.",
        &complete_handoff(),
    ));

    let body: Value = app.escalate(2).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "good");
    let tags = app.tags(2);
    assert!(tags.contains(&"escalation_good".to_string()), "{tags:?}");
    assert!(
        !tags.iter().any(|t| t.contains("kb_resolvable")),
        "{tags:?}"
    );
    let note = &app.notes(2)[0];
    assert!(note.contains("Related, not counted"), "{note}");
    assert!(
        note.contains("the case names TokenExpiredException"),
        "{note}"
    );
    let line = note
        .lines()
        .find(|l| l.contains("Calendar sync stops with TokenRevokedException"))
        .expect("the near miss is listed");
    assert!(line.contains("names TokenRevokedException"), "{line}");
    // Without the rule it would have counted: its confidence clears the threshold.
    assert!(confidence_in(line) >= 0.7, "{line}");
    app.shut_down().await;
}

#[tokio::test]
async fn the_same_article_naming_the_case_code_still_makes_it_bad() {
    let app = spawn_app(zendesk().await).await;
    app.fake
        .put_article(calendar_article(360001, "E1234", "2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake.put_ticket(calendar_ticket(3, &complete_handoff()));
    let body: Value = app.escalate(3).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "bad");
    assert!(!app.notes(3)[0].contains("Related, not counted"));
    app.shut_down().await;
}

#[tokio::test]
async fn zendesk_review_tags_the_ticket_lists_the_article_and_is_judged_once() {
    let app = spawn_with(
        zendesk().await,
        helpers::Options {
            extra_toml: REVIEW_LANE.into(),
            ..helpers::Options::default()
        },
    )
    .await;
    app.fake
        .put_article(calendar_article(360001, "E1234", "2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake.put_ticket(calendar_ticket(4, &complete_handoff()));

    let body: Value = app.escalate(4).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "review");
    let tags = app.tags(4);
    assert!(tags.contains(&"escalation_review".to_string()), "{tags:?}");
    for verdict_tag in ["escalation_good", "escalation_bad", "escalation_kb_gap"] {
        assert!(!tags.contains(&verdict_tag.to_string()), "{tags:?}");
    }
    let note = &app.notes(4)[0];
    assert!(
        note.starts_with("escalation-gate verdict: REVIEW (a person decides)"),
        "{note}"
    );
    assert!(note.contains("Please read it against the case and decide"));
    assert!(note.contains("Calendar sync stops with error E1234 after a password change"));
    assert!(note.contains("Matching passage: \""));

    // A ticket in review counts as judged: a redelivery writes nothing.
    let again: Value = app.escalate(4).await.json().await.unwrap();
    assert_eq!(again["results"][0]["written"], "already");
    assert_eq!(again["results"][0]["verdict"], "review");
    assert_eq!(app.notes(4).len(), 1);
    assert_eq!(app.fake.count("PUT /api/v2/tickets/4"), 1);

    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_escalations_assessed_total",
            &[&app.label(), "verdict=\"review\""]
        ),
        Some(1.0)
    );
    app.shut_down().await;
}

#[test]
fn a_review_bound_above_the_threshold_is_a_config_error() {
    let text = connector_toml(
        API_TOKEN_AUTH,
        "helpdesk",
        "threshold = 0.6\nreview_bound = 0.7\n",
    );
    let problems =
        escalation_gate::config::parse("zd", &text, std::path::Path::new("."), &|_: &str| {
            Some("http://127.0.0.1:9".into())
        })
        .expect_err("invalid");
    let text = format!("{problems:?}");
    assert!(text.contains("knowledge_base.review_bound"), "{text}");
    assert!(text.contains("must be at most the threshold 0.6"), "{text}");
}

#[tokio::test]
async fn salesforce_review_sets_the_review_value_and_is_judged_once() {
    let app = spawn_connector(
        org(),
        CLIENT_CREDENTIALS,
        ServerSettings::default(),
        "",
        REVIEW_LANE,
        Vec::new(),
    )
    .await;
    let query = format!("?token={ENDPOINT_TOKEN}");
    let (status, body) = app.post_xml(&query, envelope(ORG, &[KB])).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    let f = &app.fake;
    assert_eq!(f.field(KB, "Escalation_Quality__c"), json!("Review"));
    let comments = f.comments_on(KB);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0]
            .body
            .starts_with("escalation-gate verdict: REVIEW (a person decides)"),
        "{}",
        comments[0].body
    );
    assert!(
        comments[0]
            .body
            .contains("Calendar sync stops with error E1234")
    );

    // Redelivered: the Case carries a verdict already, nothing more is written.
    let (status, _) = app.post_xml(&query, envelope(ORG, &[KB])).await;
    assert_eq!(status, 200);
    assert_eq!(f.comments_on(KB).len(), 1);
    assert_eq!(f.count("PATCH", &format!("/sobjects/Case/{KB}")), 1);
}

/// The service, sending cases to review (`extra` appended to the connector), against an org
/// whose verdict picklist was deployed before `Review` existed.
async fn org_without_review(extra: &str) -> crate::salesforce::App {
    let mut state = org();
    state.picklists.0.insert(
        "Escalation_Quality__c".into(),
        vec!["Good".into(), "Bad".into()],
    );
    spawn_connector(
        state,
        CLIENT_CREDENTIALS,
        ServerSettings::default(),
        "",
        &format!("{REVIEW_LANE}{extra}"),
        Vec::new(),
    )
    .await
}

/// What `/healthz` says an admin must fix for `connector`, once the start-up read has said
/// anything (up to 5 s); empty when it says nothing.
async fn admin_fixes(app: &crate::salesforce::App, want_some: bool) -> Vec<String> {
    let mut fixes = Vec::new();
    for _ in 0..50 {
        let health: Value = app.get("/healthz").await.json().await.unwrap();
        fixes = health["admin_fixes"][&app.connector]
            .as_array()
            .map(|a| a.iter().map(|f| f.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        if fixes.is_empty() != want_some {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    fixes
}

/// An org whose verdict picklist was deployed before `Review` existed refuses every review
/// verdict. Read at start (describe), `/healthz` says what to deploy again; a refused write is
/// an admin fix, counted as one, not a transient failure: without a sweep the outbound message
/// is left to Salesforce's own retries, and once the field is deployed again the next delivery
/// writes the verdict and `/healthz` clears.
#[tokio::test]
async fn a_verdict_picklist_without_review_is_an_admin_fix_until_deployed_again() {
    let app = org_without_review("").await;
    let fixes = admin_fixes(&app, true).await;
    assert_eq!(fixes.len(), 1, "{fixes:?}");
    for words in [
        "Case.Escalation_Quality__c is a restricted picklist without `Review`",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "escalation-gate install salesforce --connector",
        "objects/Case/fields/Escalation_Quality__c.field-meta.xml",
        "sf project deploy start",
    ] {
        assert!(fixes[0].contains(words), "{words}: {}", fixes[0]);
    }

    let query = format!("?token={ENDPOINT_TOKEN}");
    let (status, body) = app.post_xml(&query, envelope(ORG, &[KB])).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("soapenv:Server"), "{body}");
    let f = &app.fake;
    assert_eq!(f.field(KB, "Escalation_Quality__c"), Value::Null);
    assert_eq!(f.count("PATCH", &format!("/sobjects/Case/{KB}")), 1);
    let metrics = get_text(&app.client, &app.metrics_url).await;
    let connector = format!("connector=\"{}\"", app.connector);
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_admin_fix_needed_total",
            &[&connector, "field=\"Escalation_Quality__c\""],
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_webhook_retries_total",
            &[&connector, "reason=\"admin_fix\""],
        ),
        Some(1.0),
        "{metrics}"
    );

    // Deployed again: the message Salesforce delivers again writes the verdict.
    f.lock().picklists.0.insert(
        "Escalation_Quality__c".into(),
        vec!["Good".into(), "Bad".into(), "Review".into()],
    );
    let (status, body) = app.post_xml(&query, envelope(ORG, &[KB])).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    assert_eq!(f.field(KB, "Escalation_Quality__c"), json!("Review"));
    assert_eq!(
        f.comments_on(KB).len(),
        1,
        "the comment is not written twice"
    );
    assert!(admin_fixes(&app, false).await.is_empty());
}

/// `check` reads the verdict picklist too, and says what to redeploy beside its verdict.
#[tokio::test]
async fn check_says_when_the_verdict_picklist_lacks_review() {
    use crate::fakes::salesforce::{self as sf, FakeSalesforce};

    let mut state = org();
    state.picklists.0.insert(
        "Escalation_Quality__c".into(),
        vec!["Good".into(), "Bad".into()],
    );
    let snapshot = Value::Object(state.cases[KB].clone());
    let fake = FakeSalesforce::start(state).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme-sf.toml"),
        sf::connector_toml(&fake.base, CLIENT_CREDENTIALS, "", REVIEW_LANE),
    )
    .unwrap();
    let case = dir.path().join("case.json");
    std::fs::write(&case, snapshot.to_string()).unwrap();
    let vars = [
        "SF_CLIENT_SECRET",
        "SF_ENDPOINT_TOKEN",
        "SF_SIGNING_SECRET",
        "SF_PRIVATE_KEY",
    ]
    .map(|name| (name, sf::env(name).unwrap()));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_escalation-gate"))
        .args([
            "check",
            "--connector",
            "acme-sf",
            "--index-in-memory",
            "--escalated-at",
            "2024-05-04T10:00:00Z",
            "--connectors",
        ])
        .arg(dir.path())
        .arg(&case)
        .envs(vars)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: Case.Escalation_Quality__c is a restricted picklist without `Review`"
        ) && stderr.contains("sf project deploy start"),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["admin_fixes"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(fake.count("GET", "/sobjects/Case/describe"), 1);
}

/// With a `[sweep]`, the sweep finds the Case again (it carries no verdict), so the refused
/// delivery is acknowledged instead of being retried by Salesforce.
#[tokio::test]
async fn with_a_sweep_a_refused_picklist_value_is_acknowledged_and_left_to_the_sweep() {
    let app = org_without_review("[sweep]\nlookback_hours = 24\n").await;
    let (status, body) = app
        .post_xml(&format!("?token={ENDPOINT_TOKEN}"), envelope(ORG, &[KB]))
        .await;
    assert_eq!((status, body.as_str()), (200, ACK));
    assert_eq!(app.fake.field(KB, "Escalation_Quality__c"), Value::Null);
    let fixes = admin_fixes(&app, true).await;
    assert!(fixes[0].contains("without `Review`"), "{fixes:?}");
    // Signed JSON: 200, the Case marked deferred with the fix.
    let resp = app
        .post_signed_now(&format!(r#"{{"case_id": "{KB}"}}"#), "msg_picklist_1")
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["results"][0]["ticket"], KB);
    assert_eq!(body["results"][0]["written"], "deferred");
    assert!(
        body["results"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("escalation-gate install salesforce"),
        "{body}"
    );
    assert_eq!(app.fake.field(KB, "Escalation_Quality__c"), Value::Null);
}
