//! The Zendesk path end to end: signed webhook → ticket read → judgement → tags + internal note.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;

const ANSWER_ID: u64 = 360001;
const ANSWER_TITLE: &str = "Calendar sync stops with error E1234 after a password change";

fn answer(created_at: &str) -> Value {
    calendar_article(ANSWER_ID, "E1234", created_at)
}

pub fn unrelated() -> Value {
    article(
        360002,
        "Invoice PDFs show empty boxes instead of characters",
        "Choose a Unicode font such as Noto Sans in the invoice template and export again.",
        "2023-11-03T00:00:00Z",
    )
}

/// Two more calendar articles about other problems: a Help Center answers a short query with
/// several articles, and the judge compares them.
pub fn calendar_neighbours() -> [Value; 2] {
    [
        article(
            360003,
            "Calendar sync shows events twice after reconnecting",
            "When a calendar is connected twice, calendar sync copies each event two times. \
             Remove the older calendar connection under Settings, Integrations, Calendar.",
            "2023-10-01T00:00:00Z",
        ),
        article(
            360004,
            "Mailbox password rules for connected apps",
            "A mailbox password change signs connected apps out after the next refresh. Sign in \
             again in each app; calendar sync resumes afterwards.",
            "2023-10-02T00:00:00Z",
        ),
    ]
}

fn novel_ticket(id: u64, fields: &[(u64, &str)]) -> Value {
    ticket(
        id,
        "Exporting an invoice with 600 lines stops at 80 percent with LX-5521",
        "Since version 4.2.1 exporting a very long invoice fails with LX-5521; short ones work.",
        fields,
    )
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("JSON answer")
}

#[tokio::test]
async fn good_escalation_gets_good_tags_and_one_note() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_article(answer("2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake.put_ticket(novel_ticket(1, &complete_handoff()));

    let resp = app.escalate(1).await;
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["results"][0]["verdict"], "good");
    assert_eq!(body["results"][0]["written"], "now");

    let tags = app.tags(1);
    assert!(tags.contains(&"escalation_good".to_string()), "{tags:?}");
    assert!(tags.contains(&"escalation_kb_gap".to_string()), "{tags:?}");
    assert!(
        tags.contains(&"partner_escalation".to_string()),
        "existing tags are kept"
    );
    let notes = app.notes(1);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].starts_with("escalation-gate verdict: GOOD escalation"),
        "{}",
        notes[0]
    );
    assert!(notes[0].contains("Partner: Acme IT Services"));
    let put = app
        .fake
        .requests()
        .into_iter()
        .find(|r| r.route().starts_with("PUT /api/v2/tickets/1"))
        .expect("one ticket update");
    assert_eq!(put.json()["ticket"]["safe_update"], json!(true));
    assert_eq!(
        put.json()["ticket"]["updated_stamp"],
        "2024-05-02T09:00:00Z"
    );
    assert_eq!(put.auth_scheme.as_deref(), Some("Basic"));
    assert_eq!(put.status, 200);
    assert_eq!(
        put.header("user-agent"),
        Some(concat!("escalation-gate/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        put.header("authorization"),
        Some("[redacted]"),
        "the fake never keeps credentials"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn an_existing_article_makes_it_bad_and_the_note_shows_the_evidence() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_article(answer("2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake.put_ticket(calendar_ticket(2, &complete_handoff()));

    let body = json_of(app.escalate(2).await).await;
    assert_eq!(body["results"][0]["verdict"], "bad");
    let tags = app.tags(2);
    assert!(tags.contains(&"escalation_bad".to_string()));
    assert!(tags.contains(&"escalation_kb_resolvable".to_string()));
    assert!(!tags.contains(&"escalation_missing_handoff".to_string()));
    let note = &app.notes(2)[0];
    assert!(note.contains("BAD escalation (kb_resolvable)"), "{note}");
    assert!(note.contains(ANSWER_TITLE));
    assert!(note.contains("https://acme.zendesk.com/hc/en-us/articles/360001-"));
    assert!(note.contains("Matching passage: \""));
    assert!(note.contains("error E1234"));
    assert!(note.contains("Confidence "));
    let search = app
        .fake
        .requests()
        .into_iter()
        .find(|r| r.path.contains("/help_center/articles/search"))
        .expect("the Help Center was searched");
    assert!(
        search
            .query
            .as_deref()
            .unwrap_or("")
            .contains("locale=en-us")
    );
}

#[tokio::test]
async fn missing_handoff_makes_it_bad_and_names_the_fields() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake.put_ticket(novel_ticket(
        3,
        &[(STEPS, "see above"), (PRODUCT, "Ledgerly")],
    ));

    let body = json_of(app.escalate(3).await).await;
    assert_eq!(body["results"][0]["verdict"], "bad");
    let tags = app.tags(3);
    assert!(tags.contains(&"escalation_missing_handoff".to_string()));
    assert!(!tags.contains(&"escalation_kb_resolvable".to_string()));
    let note = &app.notes(3)[0];
    assert!(
        note.contains("- steps: needs at least 20 characters; found 9 characters."),
        "{note}"
    );
    assert!(
        note.contains("- environment: must be filled in; found empty."),
        "{note}"
    );
    assert!(
        !note.contains("see above"),
        "the note does not repeat the partner's text"
    );
}

#[tokio::test]
async fn both_reasons_are_reported() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_article(answer("2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake
        .put_ticket(calendar_ticket(4, &[(PRODUCT, "Ledgerly")]));

    let body = json_of(app.escalate(4).await).await;
    let reasons: Vec<&str> = body["results"][0]["assessment"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["missing_handoff", "kb_resolvable"]);
    let tags = app.tags(4);
    for t in [
        "escalation_bad",
        "escalation_missing_handoff",
        "escalation_kb_resolvable",
    ] {
        assert!(tags.contains(&t.to_string()), "{t} in {tags:?}");
    }
}

#[tokio::test]
async fn an_article_published_after_the_escalation_does_not_count() {
    let app = spawn_app(zendesk().await).await;
    let escalated = Utc::now() - chrono::Duration::minutes(4);
    let published = Utc::now() - chrono::Duration::minutes(1);
    app.fake.put_article(answer(
        &published.to_rfc3339_opts(SecondsFormat::Secs, true),
    ));
    app.fake.put_ticket(calendar_ticket(5, &complete_handoff()));

    let body = r#"{"ticket_id": 5}"#;
    let resp = app
        .post_signed_at(body, &escalated.to_rfc3339_opts(SecondsFormat::Secs, true))
        .await;
    assert_eq!(json_of(resp).await["results"][0]["verdict"], "good");
    let note = &app.notes(5)[0];
    assert!(note.contains("after the escalation"), "{note}");
    assert!(app.tags(5).contains(&"escalation_good".to_string()));
}

#[tokio::test]
async fn an_article_the_partner_already_tried_does_not_count() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_article(answer("2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    let mut fields = complete_handoff();
    let tried = format!("https://acme.zendesk.com/hc/en-us/articles/{ANSWER_ID}-Calendar-sync");
    fields.push((TRIED, &tried));
    app.fake.put_ticket(calendar_ticket(6, &fields));

    let body = json_of(app.escalate(6).await).await;
    assert_eq!(body["results"][0]["verdict"], "good");
    let note = &app.notes(6)[0];
    assert!(
        note.contains("already tried (not held against the partner)"),
        "{note}"
    );
    assert!(note.contains(ANSWER_TITLE));
    assert!(app.tags(6).contains(&"escalation_kb_gap".to_string()));
}

#[tokio::test]
async fn an_article_whose_steps_the_case_says_were_done_does_not_count() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_article(answer("2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    let subject = "Calendar sync stops with error E1234 after password change";
    let description = "Calendar sync stopped this morning; the sync log shows error E1234 \
                       authorization expired. The user changed the mailbox password yesterday.";
    // Without a word of what was done, the article makes the case bad.
    app.fake
        .put_ticket(ticket(8, subject, description, &complete_handoff()));
    assert_eq!(
        json_of(app.escalate(8).await).await["results"][0]["verdict"],
        "bad"
    );
    let tried = format!(
        "{description}\n\nWe opened Settings, Integrations, Calendar and disconnected and \
         connected the calendar again, as the article says; the error comes back after a minute."
    );
    app.fake
        .put_ticket(ticket(9, subject, &tried, &complete_handoff()));

    let body = json_of(app.escalate(9).await).await;
    assert_eq!(body["results"][0]["verdict"], "good");
    let tags = app.tags(9);
    assert!(tags.contains(&"escalation_kb_gap".to_string()), "{tags:?}");
    assert!(
        !tags.iter().any(|t| t.contains("kb_resolvable")),
        "{tags:?}"
    );
    let note = &app.notes(9)[0];
    for want in [
        "already tried (not held against the partner)",
        ANSWER_TITLE,
        "The case says these steps of the article were done without success:",
        "- \"Open Settings, Integrations, Calendar, then disconnect and connect the calendar \
         again.\" (the case: \"We opened Settings, Integrations, Calendar and disconnected and \
         connected the calendar again, as the article says;\")",
        "kb_gap (the article already tried does not solve this case",
    ] {
        assert!(note.contains(want), "missing {want:?} in\n{note}");
    }
}

#[tokio::test]
async fn drafts_and_other_locales_do_not_count() {
    let app = spawn_app(zendesk().await).await;
    app.fake.set_search_returns_drafts(true);
    let mut draft = answer("2024-01-01T00:00:00Z");
    draft["draft"] = json!(true);
    app.fake.put_article(draft);
    let mut german = answer("2024-01-01T00:00:00Z");
    german["id"] = json!(360009);
    german["locale"] = json!("de");
    app.fake.put_article(german);
    app.fake.put_ticket(calendar_ticket(7, &complete_handoff()));

    let body = json_of(app.escalate(7).await).await;
    assert_eq!(body["results"][0]["verdict"], "good");
    let note = &app.notes(7)[0];
    assert!(note.contains(&format!("({ANSWER_ID}): a draft.")), "{note}");
    assert!(
        !note.contains("360009"),
        "the German article was never a candidate: {note}"
    );

    // The same German article against a German-speaking requester: still not an English case.
    app.fake.put_user(json!({
        "id": 9002, "name": "Jonas", "email": "jonas@kunde.example", "locale": "de"
    }));
    let mut t = novel_ticket(8, &complete_handoff());
    t["requester_id"] = json!(9002);
    app.fake.put_ticket(t);
    let body = json_of(app.escalate(8).await).await;
    assert_eq!(body["results"][0]["verdict"], "good");
    let search = app
        .fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.contains("/help_center/articles/search"))
        .unwrap();
    assert!(search.query.as_deref().unwrap_or("").contains("locale=de"));
}

#[tokio::test]
async fn a_redelivered_webhook_writes_nothing_new() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_article(answer("2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake.put_ticket(calendar_ticket(9, &complete_handoff()));

    assert_eq!(app.escalate(9).await.status(), 200);
    let tags_before = app.tags(9);
    let second = json_of(app.escalate(9).await).await;
    assert_eq!(second["results"][0]["written"], "already");
    assert_eq!(second["results"][0]["verdict"], "bad");
    assert_eq!(app.notes(9).len(), 1);
    assert_eq!(app.tags(9), tags_before);
    assert_eq!(app.fake.count("PUT /api/v2/tickets/9"), 1);
}

#[tokio::test]
async fn a_concurrent_update_is_reread_and_written_once() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(novel_ticket(10, &complete_handoff()));
    app.fake
        .fail_next("PUT /api/v2/tickets/10", vec![Failure::Conflict]);

    let resp = app.escalate(10).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.notes(10).len(), 1);
    assert_eq!(app.fake.count("PUT /api/v2/tickets/10"), 2);
    assert_eq!(app.fake.count("GET /api/v2/tickets/10"), 2);
}

#[tokio::test]
async fn rate_limited_then_success() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(novel_ticket(11, &complete_handoff()));
    app.fake.fail_next(
        "GET /api/v2/tickets/11",
        vec![Failure::RateLimited {
            retry_after_secs: 1,
        }],
    );

    let started = std::time::Instant::now();
    let resp = app.escalate(11).await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(app.fake.count("GET /api/v2/tickets/11"), 2);
    assert_eq!(app.notes(11).len(), 1);
}

#[tokio::test]
async fn helpdesk_down_answers_retryable_and_writes_nothing() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(novel_ticket(12, &complete_handoff()));
    app.fake.set_down(true);

    let resp = app.escalate(12).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(json_of(resp).await["error"], "upstream_unavailable");
    app.fake.set_down(false);
    assert!(app.notes(12).is_empty());
    assert!(!app.tags(12).iter().any(|t| t.starts_with("escalation_")));

    // Zendesk delivers again later: now it is written, once.
    assert_eq!(app.escalate(12).await.status(), 200);
    assert_eq!(app.notes(12).len(), 1);
}

#[tokio::test]
async fn a_write_that_keeps_failing_leaves_the_ticket_untouched() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(novel_ticket(13, &complete_handoff()));
    app.fake
        .fail_next("PUT /api/v2/tickets/13", vec![Failure::Status(500); 4]);

    let resp = app.escalate(13).await;
    assert_eq!(resp.status(), 503);
    assert!(app.notes(13).is_empty());
    assert!(!app.tags(13).iter().any(|t| t.starts_with("escalation_")));
    assert_eq!(app.fake.count("PUT /api/v2/tickets/13"), 4);
}

#[tokio::test]
async fn a_search_outage_is_retryable_too() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(novel_ticket(14, &complete_handoff()));
    app.fake.fail_next(
        "GET /api/v2/help_center/articles/search",
        vec![Failure::Status(503); 4],
    );
    let resp = app.escalate(14).await;
    assert_eq!(resp.status(), 503);
    assert!(app.notes(14).is_empty());
}

#[tokio::test]
async fn an_unknown_ticket_is_unprocessable_not_retried() {
    let app = spawn_app(zendesk().await).await;
    let resp = app.escalate(404).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(json_of(resp).await["error"], "unusable_ticket");
}

#[tokio::test]
async fn bad_signatures_and_times_are_refused_before_any_call() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(novel_ticket(15, &complete_handoff()));
    let body = r#"{"ticket_id": 15}"#;
    let now = now_stamp();

    let forged = escalation_gate::helpdesk::zendesk::webhook::sign("wrong", &now, body.as_bytes());
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![], "missing"),
        (
            vec![
                ("x-zendesk-webhook-signature", forged.clone()),
                ("x-zendesk-webhook-signature-timestamp", now.clone()),
            ],
            "does not match",
        ),
    ];
    for (headers, want) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = app.post_raw(body, &h).await;
        assert_eq!(resp.status(), 401);
        let err = json_of(resp).await;
        assert_eq!(err["error"], "unauthorized");
        assert!(err["detail"].as_str().unwrap().contains(want), "{err}");
    }
    for (offset, want) in [(-301, "old"), (301, "future")] {
        let ts = (Utc::now() + chrono::Duration::seconds(offset))
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let resp = app.post_signed_at(body, &ts).await;
        assert_eq!(resp.status(), 401);
        assert!(
            json_of(resp).await["detail"]
                .as_str()
                .unwrap()
                .contains(want)
        );
    }
    // A signature from the retired secret still verifies while both are configured.
    let retired =
        escalation_gate::helpdesk::zendesk::webhook::sign(RETIRED_SECRET, &now, body.as_bytes());
    let resp = app
        .post_raw(
            body,
            &[
                ("x-zendesk-webhook-signature", retired.as_str()),
                ("x-zendesk-webhook-signature-timestamp", now.as_str()),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.fake.count("GET /api/v2/tickets/15"),
        1,
        "only the valid call read the ticket"
    );
}

#[tokio::test]
async fn oversized_malformed_and_unknown_are_clear_json_errors() {
    let app = spawn_app(zendesk().await).await;
    let big = format!(r#"{{"ticket_id": 1, "pad": "{}"}}"#, "x".repeat(20 * 1024));
    let resp = app.post_signed(&big).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(json_of(resp).await["error"], "payload_too_large");

    for (body, want) in [
        ("{not json", "not valid JSON"),
        (r#"{"ticket_id": "{{ticket.id}}"}"#, "ticket number"),
        (r#"{"id": 5}"#, "no `ticket_id`"),
    ] {
        let resp = app.post_signed(body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err = json_of(resp).await;
        assert_eq!(err["error"], "bad_request");
        assert!(err["detail"].as_str().unwrap().contains(want), "{err}");
    }

    let resp = app.post_to("nobody", b"{}".to_vec(), &[]).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(json_of(resp).await["error"], "unknown_connector");
    assert!(app.fake.requests().is_empty(), "no call reached Zendesk");
}

#[tokio::test]
async fn odd_trigger_escaping_is_tolerated() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(novel_ticket(16, &complete_handoff()));
    let resp = app.post_signed("{\"ticket_id\": \" 16 \"}\n").await;
    assert_eq!(resp.status(), 200);
    let resp = app.post_signed("{\"ticket_id\": 16}").await;
    assert_eq!(json_of(resp).await["results"][0]["written"], "already");
}

#[tokio::test]
async fn oauth_bearer_auth_is_sent() {
    let app = spawn_with(
        zendesk().await,
        Options {
            auth_toml: Some("kind = \"oauth_bearer\"\ntoken = \"${ZD_BEARER}\"\n".into()),
            ..Options::default()
        },
    )
    .await;
    app.fake.put_ticket(novel_ticket(17, &complete_handoff()));
    assert_eq!(app.escalate(17).await.status(), 200);
    assert!(
        app.fake
            .requests()
            .iter()
            .all(|r| r.auth_scheme.as_deref() == Some("Bearer"))
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let app = spawn_app(zendesk().await).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(json_of(health).await["status"], "ok");
    assert!(
        app.get("/healthz")
            .await
            .headers()
            .get("x-request-id")
            .is_some()
    );

    app.fake.put_article(answer("2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake
        .put_ticket(calendar_ticket(18, &[(PRODUCT, "Ledgerly")]));
    assert_eq!(app.escalate(18).await.status(), 200);
    let text = get_text(&app.client, &app.metrics_url).await;
    // This test's connector counts exactly this escalation.
    let connector = app.label();
    for want in [
        format!(
            r#"escalation_gate_escalations_assessed_total{{{connector},partner="Acme IT Services",verdict="bad"}} 1"#
        ),
        format!(
            r#"escalation_gate_escalation_reasons_total{{{connector},partner="Acme IT Services",reason="kb_resolvable"}} 1"#
        ),
        format!(
            r#"escalation_gate_escalation_reasons_total{{{connector},partner="Acme IT Services",reason="missing_handoff"}} 1"#
        ),
        format!(
            r#"escalation_gate_kb_resolvable_articles_total{{{connector},article="360001"}} 1"#
        ),
        format!(r#"escalation_gate_webhooks_total{{{connector},outcome="ok"}} 1"#),
    ] {
        assert!(text.lines().any(|l| l == want), "missing {want}:\n{text}");
    }
    // Upstream calls are counted by helpdesk, for every connector of the process.
    for want in [
        r#"escalation_gate_upstream_requests_total{helpdesk="zendesk",call="get_ticket",status="200"}"#,
        r#"escalation_gate_upstream_request_duration_seconds_bucket{helpdesk="zendesk",call="update_ticket",le="0.5"}"#,
    ] {
        assert!(text.contains(want), "missing {want}");
    }
}

#[tokio::test]
async fn shutdown_finishes_requests_under_way() {
    let mut app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(novel_ticket(19, &complete_handoff()));
    app.fake.fail_next(
        "GET /api/v2/tickets/19",
        vec![Failure::RateLimited {
            retry_after_secs: 1,
        }],
    );
    let request = {
        let client = app.client.clone();
        let url = app.url.clone();
        let body = r#"{"ticket_id": 19}"#;
        let ts = now_stamp();
        let sig = escalation_gate::helpdesk::zendesk::webhook::sign(SECRET, &ts, body.as_bytes());
        tokio::spawn(async move {
            client
                .post(url)
                .header("x-zendesk-webhook-signature", sig)
                .header("x-zendesk-webhook-signature-timestamp", ts)
                .body(body)
                .send()
                .await
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || app
            .fake
            .count("GET /api/v2/tickets/19")
            > 0)
        .await,
        "the request reaches the fake"
    );
    let server = app.begin_shutdown();
    let resp = request
        .await
        .unwrap()
        .expect("the request under way is answered");
    assert_eq!(resp.status(), 200);
    server.await.unwrap().unwrap();
    assert_eq!(app.notes(19).len(), 1);
}

#[tokio::test]
async fn work_past_the_time_limit_asks_for_redelivery_and_still_finishes() {
    let app = spawn_with(
        zendesk().await,
        Options {
            settings: escalation_gate::server::ServerSettings {
                request_timeout: Duration::from_secs(1),
                ..Options::default().settings
            },
            ..Options::default()
        },
    )
    .await;
    app.fake.put_ticket(novel_ticket(20, &complete_handoff()));
    app.fake.fail_next(
        "GET /api/v2/tickets/20",
        vec![Failure::RateLimited {
            retry_after_secs: 2,
        }],
    );

    let resp = app.escalate(20).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(json_of(resp).await["error"], "retry_later");
    // The work goes on after the answer: the note lands once, and a redelivery writes nothing.
    wait_until(Duration::from_secs(10), || !app.notes(20).is_empty()).await;
    assert_eq!(app.notes(20).len(), 1, "the work finished after the answer");
    let again = json_of(app.escalate(20).await).await;
    assert_eq!(again["results"][0]["written"], "already");
    assert_eq!(app.notes(20).len(), 1);
}
