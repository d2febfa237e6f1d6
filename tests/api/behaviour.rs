//! The behaviour every helpdesk shares, run through the one harness against each fake: a forged
//! call is refused before any work, a redelivery writes nothing twice, an upstream failure asks
//! for redelivery (503 + `Retry-After`) with nothing written, a solved case gets one blind
//! survey however often it is delivered, and the connector accepts what its inbound role signs
//! (`send`). A new helpdesk's fake implements [`FakeHelpdesk`] and adds one line at the bottom.

use serde_json::Value;

use crate::helpers::{
    FakeHelpdesk, Options, TICKET_SINK, email_delivery, get_text, metric_value, rating_links_to,
    spawn_app, spawn_with, survey_of, survey_toml,
};
use crate::smtp::SmtpServer;

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

pub async fn a_forged_call_is_refused_before_any_work(fake: impl FakeHelpdesk) {
    let app = spawn_app(fake).await;
    let id = app.fake.good_ticket();
    let (status, body) = json_of(app.send(app.fake.forged_escalation(&id)).await).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "unauthorized", "{body}");
    assert_eq!(app.fake.verdict_notes(&id), 0);
    let metrics = get_text(&app.client, &app.metrics_url).await;
    for (outcome, count) in [("rejected", Some(1.0)), ("ok", None)] {
        assert_eq!(
            metric_value(
                &metrics,
                "escalation_gate_webhooks_total",
                &[&app.label(), &format!("outcome=\"{outcome}\"")]
            ),
            count,
            "{metrics}"
        );
    }
}

pub async fn a_redelivery_writes_nothing_twice(fake: impl FakeHelpdesk) {
    let app = spawn_app(fake).await;
    let id = app.fake.good_ticket();
    let (status, first) = json_of(app.send(app.fake.escalation(&id)).await).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["results"][0]["verdict"], "good", "{first}");
    assert_eq!(first["results"][0]["written"], "now", "{first}");
    let (status, again) = json_of(app.send(app.fake.escalation(&id)).await).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["results"][0]["written"], "already", "{again}");
    assert_eq!(app.fake.verdict_notes(&id), 1);
    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_escalations_assessed_total",
            &[&app.label(), "verdict=\"good\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_webhooks_total",
            &[&app.label(), "outcome=\"ok\""]
        ),
        Some(2.0),
        "{metrics}"
    );
}

pub async fn an_upstream_failure_asks_for_redelivery(fake: impl FakeHelpdesk) {
    let app = spawn_app(fake).await;
    let id = app.fake.good_ticket();
    app.fake.fail_reads(&id);
    let resp = app.send(app.fake.escalation(&id)).await;
    let retry_after = resp.headers().get("retry-after").cloned();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some(), "503 without Retry-After");
    assert_eq!(body["error"], "upstream_unavailable", "{body}");
    assert_eq!(app.fake.verdict_notes(&id), 0);
    // Once the helpdesk answers again, the redelivery is judged and written once.
    let (status, body) = json_of(app.send(app.fake.escalation(&id)).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.fake.verdict_notes(&id), 1);
    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_webhooks_total",
            &[&app.label(), "outcome=\"retry\""]
        ),
        Some(1.0),
        "{metrics}"
    );
}

pub async fn a_solved_case_gets_one_blind_survey(fake: impl FakeHelpdesk) {
    let smtp = SmtpServer::start();
    let key = "behaviour-survey-key-0123456789abcdef01".to_string();
    let fields = fake.survey_fields_toml();
    let app = spawn_with(
        fake,
        Options {
            fields_toml: fields,
            extra_toml: survey_toml(&email_delivery(smtp.port), TICKET_SINK),
            vars: vec![("SURVEY_KEY", key.clone()), ("SURVEY_OLD_KEY", key)],
            ..Options::default()
        },
    )
    .await;
    let id = app.fake.solved_ticket();
    assert_eq!(
        survey_of(app.send(app.fake.solved(&id)).await).await,
        "sent"
    );
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(rating_links_to(&mails[0], &app.connector).len(), 5);
    // A redelivery sends nothing twice.
    assert_eq!(
        survey_of(app.send(app.fake.solved(&id)).await).await,
        "already"
    );
    assert_eq!(smtp.messages().len(), 1);
    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_surveys_sent_total",
            &[&app.label(), "channel=\"smtp\""]
        ),
        Some(1.0),
        "{metrics}"
    );
}

/// `send` signs a body through the connector's inbound role; the connector accepts what it
/// signs, and nothing once the body changes (where the helpdesk signs bodies).
pub async fn the_connector_accepts_what_it_signs(fake: impl FakeHelpdesk) {
    let app = spawn_app(fake).await;
    let id = app.fake.good_ticket();
    let mut call = app.fake.escalation(&id);
    call.headers = app
        .helpdesk
        .inbound
        .sign(&call.body, chrono::Utc::now())
        .expect("the test connector signs");
    let headers = call.headers.clone();
    let (status, body) = json_of(app.send(call).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.fake.verdict_notes(&id), 1);
    if !app.fake.signs_body() {
        return;
    }
    let mut changed = app.fake.escalation("1");
    changed.headers = headers;
    let (status, body) = json_of(app.send(changed).await).await;
    assert_eq!(status, 401, "{body}");
}

/// The suite for one helpdesk: `$fake` starts its fake.
macro_rules! behaviour {
    ($helpdesk:ident, $fake:expr) => {
        mod $helpdesk {
            #[tokio::test]
            async fn a_forged_call_is_refused_before_any_work() {
                super::a_forged_call_is_refused_before_any_work($fake).await;
            }

            #[tokio::test]
            async fn a_redelivery_writes_nothing_twice() {
                super::a_redelivery_writes_nothing_twice($fake).await;
            }

            #[tokio::test]
            async fn an_upstream_failure_asks_for_redelivery() {
                super::an_upstream_failure_asks_for_redelivery($fake).await;
            }

            #[tokio::test]
            async fn the_connector_accepts_what_it_signs() {
                super::the_connector_accepts_what_it_signs($fake).await;
            }

            #[tokio::test]
            async fn a_solved_case_gets_one_blind_survey() {
                super::a_solved_case_gets_one_blind_survey($fake).await;
            }
        }
    };
}

behaviour!(zendesk, crate::fakes::zendesk::zendesk().await);
behaviour!(
    salesforce,
    crate::fakes::salesforce::FakeSalesforce::start(crate::salesforce::org()).await
);
behaviour!(
    freshdesk,
    crate::fakes::freshdesk::FakeFreshdesk::start(crate::freshdesk::desk()).await
);
