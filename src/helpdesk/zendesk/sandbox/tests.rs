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
