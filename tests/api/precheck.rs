//! `POST /precheck/{connector}`: the judge's answer to a draft escalation before it is sent,
//! for each way of calling it, with nothing written to the helpdesk.

use chrono::Utc;
use escalation_gate::server::precheck::auth::sign_jwt;
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;
use crate::zendesk::{calendar_neighbours, unrelated};

const KEY: &str = "precheck-secret-4f1c8a2e9b7d6350aa19";
const FORM: &str = "https://help.ledgerly.example";
const ANSWER_ID: u64 = 360001;
const ANSWER_TITLE: &str = "Calendar sync stops with error E1234 after a password change";

/// A service whose connector has a `[precheck]` table allowing `per_minute` requests a client,
/// with the calendar article, an unrelated one and two neighbours in the Help Center.
async fn precheck_app(per_minute: u32) -> TestApp<FakeZendesk> {
    precheck_app_with("", per_minute).await
}

/// [`precheck_app`] with `kb_toml` added to the `[knowledge_base]` table.
async fn precheck_app_with(kb_toml: &str, per_minute: u32) -> TestApp<FakeZendesk> {
    let app = spawn_with(
        zendesk().await,
        Options {
            extra_toml: format!(
                "{kb_toml}\n[precheck]\nsecrets = [\"${{PRECHECK_SECRET}}\"]\n\
                 allowed_origins = [\"{FORM}\"]\nper_client_per_minute = {per_minute}\n"
            ),
            vars: vec![("PRECHECK_SECRET", KEY.to_string())],
            ..Options::default()
        },
    )
    .await;
    app.fake
        .put_article(calendar_article(ANSWER_ID, "E1234", "2024-01-01T00:00:00Z"));
    app.fake.put_article(unrelated());
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app
}

const BEARER: &str = "authorization";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn complete_fields() -> Value {
    json!({
        "steps": "1. Open Settings > Calendar. 2. Press Sync. 3. See the error.",
        "environment": "Cloud, EU region, Chrome 124",
        "product": "Ledgerly Calendar",
    })
}

/// The calendar-sync case the article answers, with complete hand-off fields.
fn calendar_draft() -> Value {
    json!({
        "subject": "Calendar sync stops with error E1234 after password change",
        "description": "Calendar sync stopped this morning; the sync log shows error E1234 \
                        authorization expired. The user changed the mailbox password yesterday.",
        "fields": complete_fields(),
        "partner": PARTNER,
        "locale": "en-US",
    })
}

/// A case no article answers, with complete hand-off fields.
fn novel_draft() -> Value {
    json!({
        "subject": "Exporting an invoice with 600 lines stops at 80 percent with LX-5521",
        "description": "Since version 4.2.1 exporting a very long invoice fails with LX-5521; \
                        short ones work.",
        "fields": complete_fields(),
        "partner": PARTNER,
        "locale": "en-US",
    })
}

impl TestApp<FakeZendesk> {
    fn precheck_url(&self, connector: &str) -> String {
        format!("{}/precheck/{connector}", self.address)
    }

    async fn precheck_raw(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.precheck_url(&self.connector))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request reaches the service")
    }

    async fn precheck(&self, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
        self.precheck_raw(body.to_string().into_bytes(), headers)
            .await
    }

    /// A precheck with the shared secret; its status and JSON answer.
    async fn precheck_ok(&self, body: &Value) -> Value {
        let resp = self.precheck(body, &[(BEARER, &bearer(KEY))]).await;
        let status = resp.status();
        let json: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{json}");
        json
    }
}

async fn error_of(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.expect("a JSON error");
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

#[tokio::test]
async fn a_draft_an_article_answers_is_bad_with_the_article_and_the_note() {
    let app = precheck_app(30).await;
    let body = app.precheck_ok(&calendar_draft()).await;
    assert_eq!(body["outcome"], "bad", "{body}");
    assert_eq!(body["reasons"], json!(["kb_resolvable"]));
    assert_eq!(body["handoff"], json!([]));
    let article = &body["articles"][0];
    assert_eq!(article["title"], ANSWER_TITLE);
    assert!(
        article["url"]
            .as_str()
            .unwrap()
            .starts_with("https://acme.zendesk.com/hc/en-us/articles/360001-"),
        "{article}"
    );
    assert!(article["passage"].as_str().unwrap().contains("E1234"));
    let confidence = article["confidence"].as_f64().unwrap();
    assert!(confidence >= body["threshold"].as_f64().unwrap(), "{body}");
    let note = body["note"].as_str().unwrap();
    assert!(note.contains("BAD escalation (kb_resolvable)"), "{note}");
    assert!(note.contains(ANSWER_TITLE), "{note}");
    assert!(body["ticket"].is_null());
    app.shut_down().await;
}

#[tokio::test]
async fn a_clean_draft_is_good_and_missing_fields_are_named_in_words() {
    let app = precheck_app(30).await;
    let good = app.precheck_ok(&novel_draft()).await;
    assert_eq!(good["outcome"], "good", "{good}");
    assert_eq!(good["reasons"], json!([]));
    assert_eq!(good["articles"], json!([]));
    assert!(
        good["note"]
            .as_str()
            .unwrap()
            .starts_with("escalation-gate verdict: GOOD escalation")
    );

    let mut draft = novel_draft();
    draft["fields"] = json!({"steps": "it fails", "product": "Ledgerly Calendar"});
    let bad = app.precheck_ok(&draft).await;
    assert_eq!(bad["outcome"], "bad", "{bad}");
    assert_eq!(bad["reasons"], json!(["missing_handoff"]));
    let messages: Vec<&str> = bad["handoff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "steps: needs at least 20 characters; found 8 characters.",
            "environment: must be filled in; found empty.",
        ]
    );
    assert!(
        bad["note"]
            .as_str()
            .unwrap()
            .contains("- environment: must be filled in; found empty.")
    );
    app.shut_down().await;
}

#[tokio::test]
async fn an_article_between_the_review_bound_and_the_threshold_is_left_to_review() {
    let app = precheck_app_with("threshold = 1.0\nreview_bound = 0.5\n", 30).await;
    let body = app.precheck_ok(&calendar_draft()).await;
    assert_eq!(body["outcome"], "review", "{body}");
    assert_eq!(body["reasons"], json!([]));
    assert_eq!(body["articles"][0]["title"], ANSWER_TITLE);
    assert_eq!(body["threshold"], 1.0);
    assert_eq!(body["review_bound"], 0.5);
    app.shut_down().await;
}

#[tokio::test]
async fn secrets_and_jwts_are_checked() {
    let app = precheck_app(30).await;
    let now = Utc::now().timestamp();
    let jwt = sign_jwt(KEY, &json!({"exp": now + 300, "sub": "agent-7"}));
    let resp = app
        .precheck(&novel_draft(), &[(BEARER, &bearer(&jwt))])
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["outcome"], "good");

    let expired = sign_jwt(KEY, &json!({"exp": now - 600}));
    let body = error_of(
        app.precheck(&novel_draft(), &[(BEARER, &bearer(&expired))])
            .await,
        401,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let too_long = sign_jwt(KEY, &json!({"exp": now + 86_400}));
    error_of(
        app.precheck(&novel_draft(), &[(BEARER, &bearer(&too_long))])
            .await,
        401,
    )
    .await;
    let forged = sign_jwt(
        "not-the-precheck-secret-93b1e7c40a5f",
        &json!({"exp": now + 300}),
    );
    error_of(
        app.precheck(&novel_draft(), &[(BEARER, &bearer(&forged))])
            .await,
        401,
    )
    .await;
    let wrong = error_of(
        app.precheck(
            &novel_draft(),
            &[(BEARER, &bearer("not-the-precheck-secret-93b1e7c40a5f"))],
        )
        .await,
        401,
    )
    .await;
    assert!(
        !wrong.to_string().contains(KEY),
        "an error never shows a secret"
    );
    error_of(app.precheck(&novel_draft(), &[]).await, 401).await;
    app.shut_down().await;
}

#[tokio::test]
async fn an_allowed_origin_gets_published_facts_only_and_others_are_refused() {
    let app = precheck_app(30).await;
    let resp = app.precheck(&calendar_draft(), &[("origin", FORM)]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        FORM,
        "the exact origin, never *"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["outcome"], "bad", "{body}");
    let article = body["articles"][0].as_object().unwrap();
    let mut keys: Vec<&str> = article.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["passage", "title", "url"]);
    for internal in ["note", "ticket", "threshold", "review_bound"] {
        assert!(body.get(internal).is_none(), "{internal} in {body}");
    }

    let other = app
        .precheck(&calendar_draft(), &[("origin", "https://evil.example")])
        .await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    error_of(other, 403).await;

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.precheck_url(&app.connector))
        .header("origin", FORM)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], FORM);
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization, content-type"
    );
    let refused = app
        .client
        .request(reqwest::Method::OPTIONS, app.precheck_url(&app.connector))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    error_of(refused, 403).await;
    app.shut_down().await;
}

#[tokio::test]
async fn a_ticket_is_checked_with_a_credential_only() {
    let app = precheck_app(30).await;
    app.fake.put_ticket(calendar_ticket(5, &complete_handoff()));
    let body = app.precheck_ok(&json!({"ticket_id": 5})).await;
    assert_eq!(body["outcome"], "bad", "{body}");
    assert_eq!(body["ticket"], "5");
    assert_eq!(body["articles"][0]["title"], ANSWER_TITLE);
    assert!(
        body["note"]
            .as_str()
            .unwrap()
            .contains("Partner: Acme IT Services")
    );

    let public = app
        .precheck(&json!({"ticket_id": 5}), &[("origin", FORM)])
        .await;
    let refused = error_of(public, 403).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("needs a credential")
    );
    let missing = app
        .precheck(&json!({"ticket_id": 404}), &[(BEARER, &bearer(KEY))])
        .await;
    assert_eq!(error_of(missing, 404).await["error"], "unusable_ticket");
    app.shut_down().await;
}

#[tokio::test]
async fn a_client_over_its_limit_is_told_when_to_come_back() {
    let app = precheck_app(3).await;
    for _ in 0..3 {
        let resp = app.precheck(&novel_draft(), &[("origin", FORM)]).await;
        assert_eq!(resp.status(), 200);
    }
    let over = app.precheck(&novel_draft(), &[("origin", FORM)]).await;
    let wait: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    error_of(over, 429).await;
    let other_client = app
        .precheck(&novel_draft(), &[(BEARER, &bearer(KEY))])
        .await;
    assert_eq!(other_client.status(), 200, "each client has its own limit");
    app.shut_down().await;
}

#[tokio::test]
async fn bad_input_and_unknown_connectors_get_clear_errors() {
    let app = precheck_app(30).await;
    let auth = [(BEARER, bearer(KEY))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let not_json = app.precheck_raw(b"{subject".to_vec(), &auth).await;
    error_of(not_json, 400).await;
    let empty = error_of(
        app.precheck(&json!({"fields": complete_fields()}), &auth)
            .await,
        400,
    )
    .await;
    assert!(
        empty["detail"]
            .as_str()
            .unwrap()
            .contains("`subject` or a `description`"),
        "{empty}"
    );
    let mut both = novel_draft();
    both["ticket_id"] = json!(5);
    error_of(app.precheck(&both, &auth).await, 400).await;
    let fields_for_a_ticket = json!({"ticket_id": 5, "fields": complete_fields()});
    error_of(app.precheck(&fields_for_a_ticket, &auth).await, 400).await;
    let large = json!({"subject": "x", "description": "y".repeat(20 * 1024)});
    error_of(app.precheck(&large, &auth).await, 413).await;

    let unknown = app
        .client
        .post(app.precheck_url("no-such-connector"))
        .header(BEARER, bearer(KEY))
        .json(&novel_draft())
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(unknown, 404).await["error"], "unknown_connector");

    let without = spawn_app(zendesk().await).await;
    let off = without
        .precheck(&novel_draft(), &[(BEARER, &bearer(KEY))])
        .await;
    assert_eq!(error_of(off, 404).await["error"], "no_precheck");
    without.shut_down().await;
    app.shut_down().await;
}

#[tokio::test]
async fn nothing_is_written_and_no_verdict_is_counted() {
    let app = precheck_app(30).await;
    app.fake.put_ticket(calendar_ticket(6, &complete_handoff()));
    app.precheck_ok(&calendar_draft()).await;
    app.precheck_ok(&novel_draft()).await;
    app.precheck_ok(&json!({"ticket_id": 6})).await;
    let resp = app.precheck(&calendar_draft(), &[("origin", FORM)]).await;
    assert_eq!(resp.status(), 200);

    assert!(
        app.fake.count("GET /api/v2/tickets/6") >= 1,
        "the ticket was read"
    );
    let writes: Vec<String> = app
        .fake
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.route())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(app.notes(6).is_empty());
    assert!(!app.tags(6).iter().any(|t| t.starts_with("escalation_")));

    let metrics = get_text(&app.client, &app.metrics_url).await;
    let label = app.label();
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_escalations_assessed_total",
            &[&label]
        ),
        None,
        "no verdict counted"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_prechecks_total",
            &[&label, "outcome=\"bad\""]
        ),
        Some(3.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_precheck_problems_total",
            &[&label, "reason=\"kb_resolvable\""]
        ),
        Some(3.0)
    );
    app.shut_down().await;
}

/// The service with the test connector (no `[precheck]`: the escalations come by webhook), with
/// the calendar article and its neighbours in the Help Center.
async fn calendar_service() -> TestApp<FakeZendesk> {
    let app = spawn_app(zendesk().await).await;
    app.fake
        .put_article(calendar_article(360001, "E1234", "2024-01-01T00:00:00Z"));
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app
}

#[tokio::test]
async fn an_escalation_the_check_found_bad_says_whether_the_partner_fixed_it() {
    let app = calendar_service().await;
    // Fixed before sending: the check said bad, the escalation sent is clean.
    let mut fixed = ticket(
        21,
        "Export to PDF stops at 80%",
        "Exporting a large invoice stops at 80 percent in every browser.",
        &complete_handoff(),
    );
    fixed["tags"] = json!(["partner_escalation", "escalation_precheck_bad"]);
    app.fake.put_ticket(fixed);
    // Sent anyway: the article the check showed still answers it.
    let mut anyway = calendar_ticket(22, &complete_handoff());
    anyway["tags"] = json!(["partner_escalation", "escalation_precheck_bad"]);
    app.fake.put_ticket(anyway);

    let body: serde_json::Value = app.escalate(21).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "good", "{body}");
    let note = &app.notes(21)[0];
    assert!(
        note.contains("Checked before escalating: the check said BAD; the partner fixed it before sending: what was sent is GOOD."),
        "{note}"
    );
    let body: serde_json::Value = app.escalate(22).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "bad", "{body}");
    let note = &app.notes(22)[0];
    assert!(
        note.contains("Checked before escalating: the check said BAD; it was sent as it was."),
        "{note}"
    );
    let metrics = get_text(&app.client, &app.metrics_url).await;
    for verdict in ["good", "bad"] {
        assert_eq!(
            metric_value(
                &metrics,
                "escalation_gate_prechecked_escalations_total",
                &[
                    &format!("connector=\"{}\"", app.connector),
                    "precheck=\"bad\"",
                    &format!("verdict=\"{verdict}\""),
                ]
            ),
            Some(1.0),
            "{metrics}"
        );
    }
    app.shut_down().await;
}

#[tokio::test]
async fn a_check_that_shows_an_article_is_counted() {
    let app = precheck_app(30).await;
    app.precheck_ok(&calendar_draft()).await;
    app.precheck_ok(&novel_draft()).await;
    let resp = app.precheck(&calendar_draft(), &[("origin", FORM)]).await;
    assert_eq!(resp.status(), 200);
    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_precheck_articles_shown_total",
            &[&app.label()]
        ),
        Some(2.0),
        "the calendar drafts listed the article, the novel one none: {metrics}"
    );
    app.shut_down().await;
}

impl TestApp<FakeZendesk> {
    /// The request form's beacon of an abandoned draft: `body` as `navigator.sendBeacon` sends a
    /// string (`text/plain`).
    async fn abandon(&self, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/abandoned", self.precheck_url(&self.connector)))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request reaches the service")
    }
}

#[tokio::test]
async fn a_draft_abandoned_on_the_form_after_an_article_is_counted_and_nothing_else() {
    let app = precheck_app(7).await;
    let beacon = r#"{"articles": 2}"#;
    let form = [("origin", FORM)];
    let resp = app.abandon(beacon, &form).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["access-control-allow-origin"], FORM);

    let other = app
        .abandon(beacon, &[("origin", "https://evil.example")])
        .await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    error_of(other, 403).await;
    error_of(app.abandon(beacon, &[]).await, 401).await;
    error_of(
        app.abandon(
            beacon,
            &[(BEARER, &bearer("not-the-secret-at-all-0123456789"))],
        )
        .await,
        401,
    )
    .await;

    for malformed in [
        "{articles",
        r#"{"articles": 0}"#,
        r#"{"articles": -1}"#,
        r#"{"articles": 1, "subject": "x"}"#,
    ] {
        error_of(app.abandon(malformed, &form).await, 400).await;
    }
    let padded = format!(r#"{{"articles": 1{}}}"#, " ".repeat(100));
    let over = app.abandon(&padded, &form).await;
    assert_eq!(over.headers()["access-control-allow-origin"], FORM);
    error_of(over, 413).await;
    assert_eq!(app.abandon(beacon, &form).await.status(), 204);
    // The form's client has had its seven requests of the minute.
    let limited = app.abandon(beacon, &form).await;
    assert!(limited.headers().contains_key("retry-after"));
    error_of(limited, 429).await;
    // The Salesforce form's report comes through Apex and the Named Credential, with the secret
    // as a bearer: admitted as a trusted caller, within its own limit.
    let apex = app.abandon(beacon, &[(BEARER, &bearer(KEY))]).await;
    assert_eq!(apex.status(), 204);

    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_precheck_abandoned_total",
            &[&app.label(), "via=\"form\""]
        ),
        Some(3.0),
        "{metrics}"
    );
    assert!(
        app.fake.requests().is_empty(),
        "the helpdesk is neither read nor written: {:?}",
        app.fake
            .requests()
            .iter()
            .map(|r| r.route())
            .collect::<Vec<_>>()
    );
    app.shut_down().await;
}

#[tokio::test]
async fn the_request_forms_precheck_field_is_read_as_the_apps_tags_are() {
    let app = calendar_service().await;
    // Sent from the Help Center's request form, whose snippet filled the precheck field.
    let mut fields = complete_handoff();
    fields.push((PRECHECK_FIELD, "bad+article"));
    app.fake.put_ticket(calendar_ticket(23, &fields));

    let body: Value = app.escalate(23).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "bad", "{body}");
    let note = &app.notes(23)[0];
    assert!(
        note.contains("Checked before escalating: the check said BAD; it was sent as it was."),
        "{note}"
    );
    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_prechecked_escalations_total",
            &[&app.label(), "precheck=\"bad\"", "verdict=\"bad\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    app.shut_down().await;
}
