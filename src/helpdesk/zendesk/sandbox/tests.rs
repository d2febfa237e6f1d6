use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::{Value, json};

use super::FakeZendesk;

/// GETs `path_and_query` as the fake's agent; the status and the JSON body.
async fn get(zd: &FakeZendesk, path_and_query: &str) -> (u16, Value) {
    let (email, token) = zd.api_token();
    let resp = reqwest::Client::new()
        .get(format!("{}{path_and_query}", zd.url()))
        .basic_auth(format!("{email}/token"), Some(token))
        .send()
        .await
        .expect("the fake answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn search_terms_out_of_any_calendar_are_ignored_not_a_dropped_connection() {
    let zd = FakeZendesk::start().await;
    zd.put_ticket(json!({"id": 1, "subject": "s", "created_at": "2026-01-02T00:00:00Z"}));
    for query in [
        "type:ticket created>99999999999999999minutes",
        "type:ticket created>9223372036854775807months",
        "type:ticket updated<9999999999years",
        "type:ticket created<262143-12-31",
    ] {
        let (status, body) = get(&zd, &format!("/api/v2/search.json?query={query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["count"], 1, "{query}: the term is ignored");
    }
}

/// A receiver of webhook calls on loopback: every call's headers and body, in order.
async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let calls: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let kept = calls.clone();
    let app = axum::Router::new().route(
        "/hooks/sandbox",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
            kept.lock().unwrap().push((headers, body));
            axum::Json(json!({"ok": true}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/sandbox", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

/// Waits until `calls` holds `n` calls (at most 5 s).
async fn calls_reach(calls: &Arc<Mutex<Vec<(HeaderMap, Bytes)>>>, n: usize) {
    for _ in 0..100 {
        if calls.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{} calls, not {n}", calls.lock().unwrap().len());
}

const SECRET: &str = "a-sandbox-signing-secret-of-some-length-5f2c";

/// The fake with the escalation trigger and the survey automation that `install zendesk`
/// creates, calling a webhook at `endpoint` that signs with [`SECRET`].
fn with_rules(zd: &FakeZendesk, endpoint: &str) {
    zd.admin(|a| {
        a.hand_out_signing_secret(SECRET);
        let hook = a.seed(
            "webhooks",
            json!({"name": "eg", "status": "active", "endpoint": endpoint,
                "http_method": "POST", "request_format": "json",
                "subscriptions": ["conditional_ticket_events"]}),
        );
        a.seed(
            "triggers",
            json!({"title": "judge", "conditions": {"all": [
                {"field": "current_tags", "operator": "includes", "value": "partner_escalated"},
                {"field": "current_tags", "operator": "not_includes",
                 "value": "escalation_good escalation_bad escalation_review"}]},
             "actions": [{"field": "notification_webhook",
                "value": [hook, r#"{"ticket_id": "{{ticket.id}}", "event": "escalated"}"#]}]}),
        );
        a.seed(
            "automations",
            json!({"title": "survey", "conditions": {"all": [
                {"field": "status", "operator": "is", "value": "solved"},
                {"field": "SOLVED", "operator": "greater_than", "value": "23"},
                {"field": "current_tags", "operator": "not_includes", "value": "csat_blind_requested"},
                {"field": "current_tags", "operator": "includes", "value": "csat_blind_pending"}]},
             "actions": [
                {"field": "notification_webhook",
                 "value": [hook, r#"{"ticket_id": "{{ticket.id}}", "event": "solved"}"#]},
                {"field": "current_tags", "value": "csat_blind_requested"}]}),
        );
    });
}

#[tokio::test]
async fn an_escalation_calls_the_triggers_webhook_signed_once_and_a_verdict_ends_it() {
    let (endpoint, calls) = receiver().await;
    let zd = FakeZendesk::start().await;
    with_rules(&zd, &endpoint);
    let rules = zd.handle();
    let quiet = rules.submit(json!({"subject": "s", "tags": ["partner_escalated"]}));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(calls.lock().unwrap().is_empty(), "rules are off by default");
    assert!(rules.invocations().is_empty());

    rules.deliver_webhooks(true);
    let id = rules.submit(json!({"subject": "s", "tags": ["partner_escalated"]}));
    calls_reach(&calls, 1).await;
    let (headers, body) = calls.lock().unwrap()[0].clone();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"ticket_id": id.to_string(), "event": "escalated"})
    );
    let secrets = [secrecy::SecretString::from(SECRET)];
    let now = chrono::Utc::now();
    crate::helpdesk::zendesk::webhook::verify(
        &secrets,
        &headers,
        &body,
        now,
        chrono::Duration::seconds(60),
    )
    .expect("signed as Zendesk signs");
    for h in [
        "x-zendesk-account-id",
        "x-zendesk-webhook-id",
        "x-zendesk-webhook-invocation-id",
    ] {
        assert!(headers.contains_key(h), "{h}");
    }

    // The service's write-back (an API update with the verdict) makes the trigger false.
    let (email, token) = zd.api_token();
    let resp = reqwest::Client::new()
        .put(format!("{}/api/v2/tickets/{id}.json", zd.url()))
        .basic_auth(format!("{email}/token"), Some(token))
        .json(
            &json!({"ticket": {"additional_tags": ["escalation_good", "csat_blind_pending"],
            "comment": {"body": "verdict", "public": false}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(calls.lock().unwrap().len(), 1, "no second call");
    let made = rules.invocations();
    assert_eq!(made.len(), 1);
    assert_eq!((made[0].ticket_id, made[0].status), (id, Some(200)));
    assert_ne!(quiet, id);

    // Solved, then at the hourly run a day later the automation calls once and marks it.
    assert!(rules.solve(id));
    assert_eq!(
        rules.run_automations(1),
        0,
        "an hour after the solve: not yet"
    );
    assert_eq!(rules.run_automations(25), 1);
    calls_reach(&calls, 2).await;
    let (_, body) = calls.lock().unwrap()[1].clone();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"ticket_id": id.to_string(), "event": "solved"})
    );
    assert_eq!(rules.run_automations(25), 0, "the tag it added ends it");
    let ticket = rules.ticket(id).unwrap();
    assert!(
        ticket["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("csat_blind_requested"))
    );
    assert_eq!(rules.tagged("csat_blind_requested", 10), [id]);
}

#[tokio::test]
async fn a_webhook_off_loopback_is_not_called_and_says_why() {
    let zd = FakeZendesk::start().await;
    with_rules(&zd, "https://eg.example.com/hooks/sandbox");
    let rules = zd.handle();
    rules.deliver_webhooks(true);
    rules.submit(json!({"subject": "s", "tags": ["partner_escalated"]}));
    let made = rules.invocations();
    assert_eq!(made.len(), 1);
    assert!(
        made[0].error.as_deref().unwrap().contains("loopback"),
        "{made:?}"
    );
}
