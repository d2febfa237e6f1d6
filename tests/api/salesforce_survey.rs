//! The blind CSAT survey on Salesforce end to end: a closed partner Case on the fake org, one
//! e-mail on the real SMTP server, the opt-out on the Contact, the answer on the Case.

use escalation_gate::server::ServerSettings;
use escalation_gate::server::reply::SOAP_ACK as ACK;
use serde_json::{Value, json};

use crate::fakes::salesforce::{
    CONTACT, CUSTOMER, Fail, SENT_AT, STATUS, SURVEY_FIELDS, ready_for_survey, sf_now,
};
use crate::helpers::{
    TICKET_SINK, answer_at, email_delivery, get_text, metric_value, rating_links_to, survey_of,
    survey_toml,
};
use crate::salesforce::{
    App, BOTH, CLIENT_CREDENTIALS, ENDPOINT_TOKEN, GOOD, KB, ORG, org, spawn_connector,
};
use crate::smtp::SmtpServer;

const KEY: &str = "sf-survey-key-0123456789abcdef0123456789";

/// The test org with the survey's Case fields, every Case closed and judged, and its Contact.
fn survey_org() -> crate::fakes::salesforce::State_ {
    let mut s = org();
    ready_for_survey(&mut s);
    s
}

async fn spawn_survey(smtp: &SmtpServer) -> App {
    spawn_connector(
        survey_org(),
        CLIENT_CREDENTIALS,
        ServerSettings::default(),
        SURVEY_FIELDS,
        &survey_toml(&email_delivery(smtp.port), TICKET_SINK),
        vec![
            ("SURVEY_KEY", KEY.to_string()),
            ("SURVEY_OLD_KEY", KEY.to_string()),
        ],
    )
    .await
}

/// Signed JSON as the scheduled path's Apex action sends it.
async fn post_event(app: &App, case: &str, event: &str) -> reqwest::Response {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    app.post_signed_now(
        &format!(r#"{{"case_id": "{case}", "event": "{event}"}}"#),
        &id,
    )
    .await
}

async fn solved(app: &App, case: &str) -> String {
    survey_of(post_event(app, case, "solved").await).await
}

/// Changes a Case as a user would (its `LastModifiedDate` moves).
fn edit(app: &App, case: &str, field: &str, value: Value) {
    let mut s = app.fake.lock();
    let c = s.cases.get_mut(case).unwrap();
    c.insert(field.into(), value);
    c.insert("LastModifiedDate".into(), json!(sf_now()));
}

/// Re-opens `case` without a verdict and delivers its escalation (answered 200).
async fn escalate_open(app: &App, case: &str) {
    edit(app, case, "IsClosed", json!(false));
    edit(app, case, "Escalation_Quality__c", Value::Null);
    let resp = post_event(app, case, "escalated").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn a_closed_partner_case_sends_exactly_one_email_and_redelivery_sends_nothing() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    // The escalation path marks the open Case for the survey.
    escalate_open(&app, GOOD).await;
    assert_eq!(app.fake.field(GOOD, STATUS), json!("csat_blind_pending"));
    // The mark travels in the verdict's own PATCH, and a redelivery writes nothing.
    let case = format!("/sobjects/Case/{GOOD}");
    assert_eq!(app.fake.count("PATCH", &case), 1);
    assert!(app.fake.field(GOOD, "Escalation_Quality__c").is_string());
    let resp = post_event(&app, GOOD, "escalated").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(app.fake.count("PATCH", &case), 1);
    assert!(smtp.messages().is_empty(), "no survey on escalation");

    edit(&app, GOOD, "IsClosed", json!(true));
    assert_eq!(solved(&app, GOOD).await, "sent");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.rcpt_tos, vec![CUSTOMER.to_string()]);
    // The customer knows the Case by its number, not its record id.
    assert_eq!(
        mail.header("Subject"),
        Some("How did we do with your case #0000001?")
    );
    assert!(mail.text.contains("Hello Dana Reyes"), "{}", mail.text);
    assert_eq!(rating_links_to(mail, &app.connector).len(), 5);
    assert!(
        mail.header("List-Unsubscribe")
            .unwrap()
            .starts_with(&format!(
                "<{}/survey/{}/unsubscribe?t=",
                app.address, app.connector
            ))
    );
    assert_eq!(app.fake.field(GOOD, STATUS), json!("csat_blind_sent"));
    assert!(app.fake.field(GOOD, SENT_AT).is_string());

    // Redelivery (a retried callout, a second scheduled run) sends nothing twice.
    let patches = app.fake.count("PATCH", "/sobjects/Case/");
    assert_eq!(solved(&app, GOOD).await, "already");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(app.fake.count("PATCH", "/sobjects/Case/"), patches);

    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_surveys_sent_total",
            &[&app.label(), "partner=\"Acme IT Services\""]
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_escalation_never_marks_over_a_survey_already_recorded() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    // Surveyed when first solved, then re-opened and escalated.
    edit(&app, GOOD, STATUS, json!("csat_blind_sent"));
    escalate_open(&app, GOOD).await;
    assert!(app.fake.field(GOOD, "Escalation_Quality__c").is_string());
    assert_eq!(app.fake.field(GOOD, STATUS), json!("csat_blind_sent"));
}

#[tokio::test]
async fn a_solved_outbound_message_is_acknowledged_and_surveys_once() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    let query = format!("?token={ENDPOINT_TOKEN}&event=solved");
    for _ in 0..2 {
        let (status, body) = app
            .post_xml(&query, crate::salesforce::envelope(ORG, &[GOOD]))
            .await;
        assert_eq!((status, body.as_str()), (200, ACK));
    }
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(app.fake.field(GOOD, STATUS), json!("csat_blind_sent"));
    // No verdict is written by a solved event.
    assert!(app.fake.comments_on(GOOD).is_empty());
    // An unknown event is refused with a SOAP fault.
    let (status, body) = app
        .post_xml(
            &format!("?token={ENDPOINT_TOKEN}&event=deleted"),
            crate::salesforce::envelope(ORG, &[GOOD]),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown event"), "{body}");
}

#[tokio::test]
async fn a_customer_surveyed_recently_is_throttled_through_soql() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    assert_eq!(solved(&app, GOOD).await, "sent");
    assert_eq!(solved(&app, BOTH).await, "skipped:throttled");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(
        app.fake.field(BOTH, STATUS),
        json!("csat_blind_skipped_throttled")
    );
    // Recorded for good: the redelivery does nothing.
    assert_eq!(solved(&app, BOTH).await, "already");
    // A survey sent longer ago than throttle_days does not count.
    edit(&app, GOOD, SENT_AT, json!("2020-01-01T00:00:00.000+0000"));
    assert_eq!(solved(&app, KB).await, "sent");
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn one_click_unsubscribe_writes_has_opted_out_of_email_on_the_contact() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    assert_eq!(solved(&app, GOOD).await, "sent");
    let url = smtp.messages()[0].unsubscribe_url();
    // A scanner's GET writes nothing.
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(app.fake.count("PATCH", "/sobjects/Contact/"), 0);
    // RFC 8058 one-click.
    let resp = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.fake.contact_field(CONTACT, "HasOptedOutOfEmail"),
        json!(true)
    );
    assert_eq!(solved(&app, BOTH).await, "skipped:opted_out");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn an_answer_from_the_survey_page_lands_on_the_case() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    assert_eq!(solved(&app, GOOD).await, "sent");
    let links = rating_links_to(&smtp.messages()[0], &app.connector);
    let resp = answer_at(
        &app.client,
        &links[3],
        &[
            ("csat", "4"),
            ("ces", "6"),
            ("about", "support"),
            ("comment", "Quick and kind"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Thank you!"));
    let comments = app.fake.comments_on(GOOD);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(!comments[0].published, "an internal comment");
    assert!(
        comments[0].body.contains("CSAT: 4/5"),
        "{}",
        comments[0].body
    );
    assert!(comments[0].body.contains("Quick and kind"));
    assert_eq!(app.fake.field(GOOD, "Blind_CSAT__c"), json!(4));
    assert_eq!(app.fake.field(GOOD, "Blind_CES__c"), json!(6));
    assert_eq!(
        app.fake.field(GOOD, "Blind_CSAT_About__c"),
        json!("support")
    );
    assert_eq!(app.fake.field(GOOD, STATUS), json!("csat_blind_answered"));
    // An answered Case still counts as surveyed.
    assert_eq!(solved(&app, GOOD).await, "already");
    // A later answer replaces the score.
    let resp = answer_at(&app.client, &links[1], &[("csat", "2")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.fake.field(GOOD, "Blind_CSAT__c"), json!(2));
    assert_eq!(app.fake.comments_on(GOOD).len(), 2);
}

#[tokio::test]
async fn a_claim_that_meets_a_change_reads_the_case_again_and_sends_once() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    app.fake.fail(Fail {
        method: "PATCH",
        path_contains: GOOD.into(),
        status: 412,
        error_code: "PRECONDITION_FAILED",
        times: 1,
    });
    assert_eq!(solved(&app, GOOD).await, "sent");
    assert_eq!(smtp.messages().len(), 1);
    let log = app.fake.lock().log.clone();
    assert!(
        log.iter()
            .any(|(l, s)| *s == 412 && l.starts_with("PATCH ")),
        "{log:?}"
    );
    assert_eq!(
        app.fake.count("GET", &format!("/sobjects/Case/{GOOD}")),
        2,
        "read again after the 412"
    );
}

#[tokio::test]
async fn a_reopened_case_gets_nothing_and_is_asked_after_the_next_close() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    edit(&app, GOOD, "IsClosed", json!(false));
    assert_eq!(solved(&app, GOOD).await, "skipped:not_solved");
    assert_eq!(
        app.fake.count("PATCH", "/sobjects/Case/"),
        0,
        "nothing recorded"
    );
    edit(&app, GOOD, "IsClosed", json!(true));
    assert_eq!(solved(&app, GOOD).await, "sent");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn a_contact_of_the_partner_account_is_the_partner_agent() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    app.fake
        .lock()
        .contacts
        .get_mut(CONTACT)
        .unwrap()
        .insert("AccountId".into(), json!(crate::salesforce::ACCOUNT));
    assert_eq!(solved(&app, GOOD).await, "skipped:partner_agent");
    // The end-customer field names the customer: the mail goes there.
    edit(
        &app,
        BOTH,
        "End_Customer_Email__c",
        json!("lee@customer.example"),
    );
    assert_eq!(solved(&app, BOTH).await, "sent");
    assert_eq!(
        smtp.messages()[0].rcpt_tos,
        vec!["lee@customer.example".to_string()]
    );
}

#[tokio::test]
async fn the_same_answer_sent_twice_adds_one_comment() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    assert_eq!(solved(&app, GOOD).await, "sent");
    let links = rating_links_to(&smtp.messages()[0], &app.connector);
    let form = [("csat", "5"), ("comment", "Sorted quickly")];
    for _ in 0..2 {
        let resp = answer_at(&app.client, &links[4], &form).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("Thank you!"));
    }
    assert_eq!(app.fake.comments_on(GOOD).len(), 1);
    // A changed answer is a new comment.
    assert_eq!(
        answer_at(&app.client, &links[1], &[("csat", "2")])
            .await
            .status(),
        200
    );
    assert_eq!(app.fake.comments_on(GOOD).len(), 2);
    assert_eq!(app.fake.field(GOOD, "Blind_CSAT__c"), json!(2));
}
