//! `backend = "http"`: a knowledge base behind a JSON search API, here a real server on
//! loopback that answers in its own shape (nested results, its own field names).

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;

/// What the search server saw: each request's query parameters and `Authorization` header.
type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Option<String>)>>>;

struct SearchServer {
    url: String,
    seen: Seen,
}

/// One hit as the API returns it.
fn hit(key: &str, name: &str, html: &str, lang: &str, published: &str, draft: bool) -> Value {
    json!({"score": 3.2, "doc": {
        "key": key, "name": name, "html": html, "link": format!("https://kb.ledgerly.example/{key}"),
        "lang": lang, "published": published, "state": {"draft": draft}
    }})
}

/// A search API on loopback that answers `status` and, with 200, the same hits to every query.
async fn search_server(status: StatusCode) -> SearchServer {
    let seen: Seen = Arc::default();
    let hits = json!({"data": {"total": 3, "hits": [
        hit(
            "KB-7",
            "Calendar sync stops with error E1234 after a password change",
            "<p>Calendar sync stops and the sync log shows error E1234 authorization expired \
             after the user changed the mailbox password.</p><p>Open <b>Settings</b>, \
             Integrations, Calendar, then disconnect and connect the calendar again.</p>",
            "en_US",
            "2024-01-01T00:00:00Z",
            false,
        ),
        hit(
            "KB-8",
            "Invoice PDFs show empty boxes instead of characters",
            "<p>Choose a Unicode font such as Noto Sans in the invoice template.</p>",
            "en_US",
            "2023-11-03T00:00:00Z",
            false,
        ),
        hit(
            "KB-9",
            "Calendar sync stops with error E1234 (draft)",
            "<p>Reconnect the calendar after a password change; error E1234.</p>",
            "en_US",
            "2024-01-01T00:00:00Z",
            true,
        ),
    ]}});
    let state = (Arc::clone(&seen), hits, status);
    let app = axum::Router::new()
        .route(
            "/api/search",
            get(
                |State((seen, hits, status)): State<(Seen, Value, StatusCode)>,
                 Query(q): Query<Vec<(String, String)>>,
                 headers: HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    seen.lock().unwrap().push((q, auth));
                    let r: Response = if status == StatusCode::OK {
                        axum::Json(hits).into_response()
                    } else {
                        (status, "unavailable").into_response()
                    };
                    r
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/search", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    SearchServer { url, seen }
}

const HTTP_KB: &str = r#"
[knowledge_base.http]
url = "${KB_URL}"
query_param = "text"
locale_param = "lang"
limit_param = "size"
auth_header = "Authorization"
auth_scheme = "Bearer"
auth_token = "${KB_TOKEN}"
results = "/data/hits"
max_retries = 1
max_retry_wait_secs = 1

[knowledge_base.http.fields]
id = "/doc/key"
title = "/doc/name"
body = "/doc/html"
url = "/doc/link"
locale = "/doc/lang"
published_at = "/doc/published"
draft = "/doc/state/draft"
"#;

async fn app_with(kb: &SearchServer) -> TestApp<FakeZendesk> {
    let app = spawn_with(
        zendesk().await,
        Options {
            extra_toml: format!("{}{HTTP_KB}", crate::salesforce::CLEAR_ANSWER),
            kb_backend: "http",
            vars: vec![
                ("KB_URL", kb.url.clone()),
                ("KB_TOKEN", "kb-secret-token".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    app.fake.put_ticket(calendar_ticket(1, &complete_handoff()));
    app
}

#[tokio::test]
async fn an_article_from_the_search_api_makes_the_escalation_bad() {
    let kb = search_server(StatusCode::OK).await;
    let app = app_with(&kb).await;
    let resp = app.escalate(1).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let result = &body["results"][0];
    assert_eq!(result["verdict"], "bad", "{body}");
    let reason = &result["assessment"]["reasons"][0];
    assert_eq!(reason["reason"], "kb_resolvable");
    assert_eq!(reason["article"]["article_id"], "KB-7");
    assert_eq!(reason["article"]["url"], "https://kb.ledgerly.example/KB-7");
    let note = app.notes(1).join("\n");
    assert!(
        note.contains("Calendar sync stops with error E1234 after a password change")
            && note.contains("https://kb.ledgerly.example/KB-7")
            && !note.contains("<b>"),
        "{note}"
    );
    // The draft is set aside, not counted.
    assert!(note.contains("(KB-9): a draft"), "{note}");

    let seen = kb.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (params, auth) = &seen[0];
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert!(
        param("text").is_some_and(|q| q.contains("E1234")),
        "{params:?}"
    );
    assert_eq!(param("lang"), Some("en-us"));
    assert_eq!(param("size"), Some("20"));
    assert_eq!(auth.as_deref(), Some("Bearer kb-secret-token"));
    app.shut_down().await;
}

#[tokio::test]
async fn a_search_api_that_is_down_gets_a_retry_answer_and_nothing_is_written() {
    let kb = search_server(StatusCode::SERVICE_UNAVAILABLE).await;
    let app = app_with(&kb).await;
    let resp = app.escalate(1).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(app.fake.count("PUT /api/v2/tickets/1"), 0);
    // The first try and one retry.
    assert_eq!(kb.seen.lock().unwrap().len(), 2);
    app.shut_down().await;
}
