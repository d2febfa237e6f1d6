//! Remote knowledge bases join a query's words with AND (Salesforce Knowledge's SOSL, the Zendesk
//! Help Center), as the fakes do: the case's whole text finds nothing there, and the service's
//! several short queries still find the answer among other candidates.

use escalation_gate::assess::kb::query::{MAX_REMOTE_QUERIES, remote_queries};
use escalation_gate::assess::kb::rescore::clean_query;
use escalation_gate::server::reply::SOAP_ACK as ACK;
use serde_json::{Value, json};

use crate::fakes::salesforce::API;
use crate::fakes::zendesk::*;
use crate::helpers::*;
use crate::salesforce::{
    CALENDAR_SUBJECT, CALENDAR_TEXT, ENDPOINT_TOKEN, KB, ORG, envelope, spawn_connector,
};
use crate::zendesk::calendar_neighbours;

const SUBJECT: &str = "Calendar sync stops with error E1234 after password change";
const DESCRIPTION: &str = "Calendar sync stopped this morning; the sync log shows error E1234 \
    authorization expired. The user changed the mailbox password yesterday.";

#[tokio::test]
async fn zendesk_short_queries_find_the_answer_a_long_one_misses() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_article(article(
        360001,
        "Calendar sync stops with error E1234 after a password change",
        "Calendar sync stops and the sync log shows error E1234 authorization expired after \
         the user changed the mailbox password. Open Settings, Integrations, Calendar, then \
         disconnect and connect the calendar again.",
        "2024-01-01T00:00:00Z",
    ));
    for a in calendar_neighbours() {
        app.fake.put_article(a);
    }
    app.fake
        .put_ticket(ticket(5, SUBJECT, DESCRIPTION, &complete_handoff()));

    // The whole case text as one query: every word must match, and no article has them all.
    let long = format!("{SUBJECT}\n{DESCRIPTION}");
    let found: Value = app
        .client
        .get(format!(
            "{}/api/v2/help_center/articles/search.json",
            app.fake.url()
        ))
        .query(&[("query", long.as_str()), ("locale", "en-us")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["results"], json!([]), "{found}");

    let body: Value = app.escalate(5).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "bad");
    let note = &app.notes(5)[0];
    assert!(note.contains("articles/360001-"), "{note}");
    // The direct search above, then the service's.
    let queries: Vec<String> = app
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/help_center/articles/search"))
        .skip(1)
        .map(|r| r.query.unwrap_or_default())
        .collect();
    let want = remote_queries(&clean_query(&format!("{SUBJECT}\n\n{DESCRIPTION}")));
    assert_eq!(queries.len(), want.len(), "{queries:?}");
    assert!(
        (3..=MAX_REMOTE_QUERIES).contains(&queries.len()),
        "{queries:?}"
    );
    for (sent, q) in queries.iter().zip(&want) {
        let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        assert!(sent.contains(&format!("query={encoded}&")), "{sent} / {q}");
    }
    app.shut_down().await;
}

#[tokio::test]
async fn salesforce_short_queries_find_the_answer_a_long_one_misses() {
    let app = spawn_connector(
        crate::salesforce::org(),
        crate::salesforce::CLIENT_CREDENTIALS,
        escalation_gate::server::ServerSettings::default(),
        "",
        crate::salesforce::CLEAR_ANSWER,
        Vec::new(),
    )
    .await;
    app.fake.lock().tokens.insert("direct".into());
    let search = |q: String| {
        app.client
            .get(format!("{}{API}/support/knowledgeArticles", app.fake.base))
            .query(&[("q", q)])
            .bearer_auth("direct")
            .header("accept-language", "en-US")
            .send()
    };
    let long: Value = search(format!("{CALENDAR_SUBJECT}\n{CALENDAR_TEXT}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(long["articles"], json!([]), "{long}");
    let short: Value = search(CALENDAR_SUBJECT[..13].to_string())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(short["articles"].as_array().unwrap().len() >= 2, "{short}");

    let (status, body) = app
        .post_xml(&format!("?token={ENDPOINT_TOKEN}"), envelope(ORG, &[KB]))
        .await;
    assert_eq!((status, body.as_str()), (200, ACK));
    let f = &app.fake;
    assert_eq!(f.field(KB, "Escalation_Quality__c"), json!("Bad"));
    let lists = f
        .lock()
        .log
        .iter()
        .filter(|(l, _)| l.ends_with("/support/knowledgeArticles"))
        .count();
    let want = remote_queries(&clean_query(&format!(
        "{CALENDAR_SUBJECT}\n\n{CALENDAR_TEXT}"
    )));
    assert_eq!(
        lists,
        want.len() + 2,
        "two direct searches, then the service's"
    );
    assert!(want.len() >= 3);
    // Each merged article's detail is read once.
    let details: Vec<String> = f
        .lock()
        .log
        .iter()
        .filter(|(l, _)| l.contains("/support/knowledgeArticles/"))
        .map(|(l, _)| l.clone())
        .collect();
    let mut unique = details.clone();
    unique.dedup();
    assert_eq!(details.len(), unique.len(), "{details:?}");
    assert!(details.len() >= 2, "{details:?}");
}
