//! The blind CSAT survey end to end: a solved partner case on the fake Zendesk, one e-mail on a
//! real SMTP server (aiosmtpd), the answer page, the answer in the sink and in /metrics.

use escalation_gate::survey::token::{Claims, Keys, Purpose};
use escalation_gate::survey::webhooks::WebhookSecret;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;
use crate::smtp::{Mail, SmtpServer};
use crate::webdriver::Browser;

const KEY: &str = "new-survey-key-0123456789abcdef0123456789";
const OLD_KEY: &str = "old-survey-key-0123456789abcdef0123456789";
const CUSTOMER: &str = "dana@customer.example";
const PARTNER_AGENT_ID: u64 = 9002;
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn survey_app_with(
    delivery: String,
    sink: &str,
    vars: Vec<(&'static str, String)>,
) -> TestApp<FakeZendesk> {
    let mut all = vec![
        ("SURVEY_KEY", KEY.to_string()),
        ("SURVEY_OLD_KEY", OLD_KEY.to_string()),
    ];
    all.extend(vars);
    let app = spawn_with(
        zendesk().await,
        Options {
            extra_toml: survey_toml(&delivery, sink),
            vars: all,
            ..Options::default()
        },
    )
    .await;
    app.fake.put_user(json!({
        "id": PARTNER_AGENT_ID, "name": "Pat Partner", "email": "pat@acme-it.example",
        "role": "agent", "organization_id": ORG_ID
    }));
    app
}

async fn survey_app(smtp: &SmtpServer) -> TestApp<FakeZendesk> {
    survey_app_with(email_delivery(smtp.port), TICKET_SINK, vec![]).await
}

impl TestApp<FakeZendesk> {
    async fn solved(&self, ticket: u64) -> reqwest::Response {
        self.post_signed(&format!(
            r#"{{"ticket_id": "{ticket}", "event": "solved"}}"#
        ))
        .await
    }

    /// Changes a ticket as an agent does, through the fake's own API.
    async fn agent_update(&self, ticket: u64, patch: Value) {
        let (email, token) = self.fake.api_token();
        let resp = self
            .client
            .put(format!("{}/api/v2/tickets/{ticket}.json", self.fake.url()))
            .basic_auth(format!("{email}/token"), Some(token))
            .json(&json!({ "ticket": patch }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    async fn metrics_text(&self) -> String {
        get_text(&self.client, &self.metrics_url).await
    }

    fn puts(&self) -> usize {
        self.fake.count("PUT /api/v2")
    }
}

fn rating_links(app: &TestApp<FakeZendesk>, mail: &Mail) -> Vec<String> {
    rating_links_to(mail, &app.connector)
}

/// Sends the survey of a new solved ticket `id`; returns the rating links of its mail.
async fn survey_sent(
    app: &TestApp<FakeZendesk>,
    smtp: &SmtpServer,
    id: u64,
    subject: &str,
) -> Vec<String> {
    app.fake.put_ticket(solved_case(id, subject));
    assert_eq!(survey_of(app.solved(id).await).await, "sent");
    let mail = smtp.messages().pop().expect("the survey mail");
    rating_links(app, &mail)
}

/// Opens the page of a link and posts an answer as a person would, after the minimum time.
async fn answer(
    app: &TestApp<FakeZendesk>,
    link: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    answer_at(&app.client, link, form).await
}

#[tokio::test]
async fn a_solved_partner_case_sends_exactly_one_email_with_working_links() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    // The escalation path marks the case for the survey.
    let mut t = ticket(
        1,
        "Calendar sync stops",
        "The calendar stopped syncing.",
        &complete_handoff(),
    );
    t["tags"] = json!(["partner_escalation"]);
    app.fake.put_ticket(t);
    assert_eq!(app.escalate(1).await.status(), 200);
    let tags = app.tags(1);
    assert!(
        tags.contains(&"csat_blind_pending".to_string())
            && tags.contains(&"escalation_good".to_string()),
        "{tags:?}"
    );
    // The mark travels in the verdict's own write, and a redelivery writes nothing.
    assert_eq!(app.fake.count("PUT /api/v2/tickets/1"), 1);
    assert_eq!(app.escalate(1).await.status(), 200);
    assert_eq!(app.fake.count("PUT /api/v2/tickets/1"), 1);
    assert!(smtp.messages().is_empty(), "no survey on escalation");

    app.agent_update(1, json!({"status": "solved"})).await;
    assert_eq!(survey_of(app.solved(1).await).await, "sent");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.rcpt_tos, vec![CUSTOMER.to_string()]);
    assert_eq!(
        mail.header("Subject"),
        Some("How did we do with your case #1?")
    );
    assert_eq!(
        mail.header("From"),
        Some("Ledgerly Support <survey@ledgerly.example>")
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(mail.header("Auto-Submitted"), Some("auto-generated"));
    let unsubscribe = mail.header("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with(&format!(
            "<{}/survey/{}/unsubscribe?t=",
            app.address, app.connector
        )),
        "{unsubscribe}"
    );
    assert!(
        mail.text
            .contains("How satisfied are you with the support you received?")
    );
    assert!(mail.html.contains("Calendar sync stops"));
    assert_eq!(rating_links(&app, mail).len(), 5);
    assert_eq!(
        mail.text_links()
            .iter()
            .filter(|l| l.contains(&format!("/survey/{}/r?", app.connector)))
            .count(),
        5
    );
    let tags = app.tags(1);
    assert!(tags.contains(&"csat_blind_sent".to_string()), "{tags:?}");
    assert!(
        !tags.contains(&"csat_blind_sending".to_string()),
        "{tags:?}"
    );

    // Redelivery (and the automation firing again) sends nothing twice.
    assert_eq!(survey_of(app.solved(1).await).await, "already");
    assert_eq!(smtp.messages().len(), 1);

    // Every link works: each rating link opens its page with the clicked score pre-selected.
    for (i, link) in rating_links(&app, mail).iter().enumerate() {
        let resp = app.client.get(link).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let page = resp.text().await.unwrap();
        let score = i + 1;
        assert!(
            page.contains(&format!(
                "id=\"csat-{score}\" name=\"csat\" value=\"{score}\" checked"
            )),
            "score {score} pre-selected"
        );
        assert_eq!(page.matches(" checked").count(), 1);
    }
    let metrics = app.metrics_text().await;
    let partner = format!("partner=\"{PARTNER}\"");
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_surveys_sent_total",
            &[&app.label(), &partner, "channel=\"smtp\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_surveys_requested_total",
            &[&app.label(), &partner]
        ),
        Some(1.0)
    );
    app.shut_down().await;
}

#[tokio::test]
async fn a_scanner_following_every_link_records_nothing() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(2, "Scanner case"));
    assert_eq!(survey_of(app.solved(2).await).await, "sent");
    let mail = &smtp.messages()[0];
    let before = (app.puts(), app.notes(2).len(), app.tags(2));
    let mut links = mail.html_links();
    links.extend(mail.text_links());
    links.push(mail.unsubscribe_url());
    assert!(links.len() >= 12, "{links:?}");
    for link in &links {
        let resp = app.client.get(link).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{link}");
        let head = app.client.head(link).send().await.unwrap();
        assert_eq!(head.status(), 200, "{link}");
    }
    assert_eq!((app.puts(), app.notes(2).len(), app.tags(2)), before);
    let user = app
        .fake
        .requests()
        .iter()
        .filter(|r| r.route().starts_with("PUT /api/v2/users"))
        .count();
    assert_eq!(user, 0, "no opt-out written by a GET");
    app.shut_down().await;
}

#[tokio::test]
async fn the_answer_lands_on_the_ticket_and_in_metrics_and_a_later_answer_replaces_it() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(3, "Answer case"));
    assert_eq!(survey_of(app.solved(3).await).await, "sent");
    let links = rating_links(&app, &smtp.messages()[0]);

    let resp = answer(
        &app,
        &links[3],
        &[
            ("csat", "4"),
            ("ces", "6"),
            ("about", "support"),
            ("comment", "Quick <b>and</b> kind"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Thank you!"));
    let notes = app.notes(3);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("CSAT: 4/5"), "{}", notes[0]);
    assert!(notes[0].contains("Customer effort"), "{}", notes[0]);
    assert!(notes[0].contains("mostly about: support"));
    assert!(notes[0].contains("Quick <b>and</b> kind"));
    let ticket = app.fake.ticket(3);
    let field = |id: u64| {
        ticket["custom_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == json!(id))
            .map(|f| f["value"].clone())
    };
    assert_eq!(field(CSAT), Some(json!(4)));
    assert_eq!(field(CES), Some(json!(6)));
    assert_eq!(field(ABOUT), Some(json!("support")));
    let tags = app.tags(3);
    assert!(
        tags.contains(&"csat_blind_answered".to_string())
            && tags.contains(&"csat_blind_score_4".to_string()),
        "{tags:?}"
    );

    let metrics = app.metrics_text().await;
    let partner = format!("partner=\"{PARTNER}\"");
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_surveys_answered_total",
            &[&app.label(), &partner, "escalated=\"true\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_survey_csat_bucket",
            &[&app.label(), &partner, "escalated=\"true\"", "le=\"4\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_survey_ces_bucket",
            &[&app.label(), &partner, "le=\"6\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_survey_about_total",
            &[&app.label(), &partner, "about=\"support\""]
        ),
        Some(1.0)
    );

    // A later answer (another link of the same mail) replaces the score.
    let resp = answer(&app, &links[1], &[("csat", "2")]).await;
    assert_eq!(resp.status(), 200);
    let tags = app.tags(3);
    assert!(
        tags.contains(&"csat_blind_score_2".to_string())
            && !tags.contains(&"csat_blind_score_4".to_string()),
        "{tags:?}"
    );
    assert_eq!(app.notes(3).len(), 2);
    let metrics = app.metrics_text().await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_survey_answer_updates_total",
            &[&app.label(), &partner]
        ),
        Some(1.0)
    );
    app.shut_down().await;
}

#[tokio::test]
async fn too_fast_honeypot_and_missing_page_token_record_nothing() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(4, "Bot case"));
    assert_eq!(survey_of(app.solved(4).await).await, "sent");
    let link = &rating_links(&app, &smtp.messages()[0])[4];
    let page = get_text(&app.client, link).await;
    let (t, p) = (hidden(&page, "t"), hidden(&page, "p"));
    let before = app.puts();
    let post = |form: Vec<(&'static str, String)>| {
        app.client
            .post(format!("{}/survey/{}/r", app.address, app.connector))
            .form(&form)
            .send()
    };
    // Posted at once: taken for a bot, the form is shown again.
    let resp = post(vec![
        ("t", t.clone()),
        ("p", p.clone()),
        ("csat", "5".into()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("That was quick"));
    // Without the page token.
    let resp = post(vec![("t", t.clone()), ("csat", "5".into())])
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    tokio::time::sleep(MIN_ON_PAGE).await;
    // The honeypot filled: thanked, nothing recorded.
    let resp = post(vec![
        ("t", t.clone()),
        ("p", p.clone()),
        ("csat", "5".into()),
        ("website", "http://spam.example".into()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    // A score outside 1–5.
    let resp = post(vec![
        ("t", t.clone()),
        ("p", p.clone()),
        ("csat", "9".into()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(app.puts(), before, "nothing recorded");
    assert!(app.notes(4).is_empty());
    app.shut_down().await;
}

#[tokio::test]
async fn forged_expired_and_rotated_tokens() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(5, "Token case"));
    let claims = |expires: i64| Claims {
        purpose: Purpose::Rate,
        connector: app.connector.clone(),
        ticket: "5".into(),
        partner: PARTNER.into(),
        score: 3,
        expires,
        escalated: true,
        customer: Some(REQUESTER_ID.to_string()),
        issued: None,
    };
    let now = chrono::Utc::now().timestamp();
    let keys = |k: &str| Keys::new(vec![SecretString::from(k.to_string())]);
    let link = |token: &str| format!("{}/survey/{}/r?t={token}", app.address, app.connector);
    // Signed with the key being rotated out: still accepted, and its answer records.
    let rotated = keys(OLD_KEY).seal(&claims(now + 3600));
    let resp = answer(&app, &link(&rotated), &[("csat", "3")]).await;
    assert_eq!(resp.status(), 200);
    assert!(app.notes(5)[0].contains("CSAT: 3/5"));
    let before = app.puts();
    // A key that is not configured (forged), an expired link, a tampered one, another connector.
    let forged = keys("attacker-key-0123456789abcdef0123456789").seal(&claims(now + 3600));
    let resp = app.client.get(link(&forged)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let page = resp.text().await.unwrap();
    assert!(page.contains("This link does not work"), "{page}");
    assert!(!page.contains("<form"));
    let expired = keys(KEY).seal(&claims(now - 1));
    let resp = app.client.get(link(&expired)).send().await.unwrap();
    assert_eq!(resp.status(), 410);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("This survey has closed")
    );
    let mut tampered = keys(KEY).seal(&claims(now + 3600)).into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        app.client
            .get(link(&tampered))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let resp = app
        .client
        .post(format!("{}/survey/{}/r", app.address, app.connector))
        .form(&[
            ("t", forged.as_str()),
            ("p", forged.as_str()),
            ("csat", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        app.client
            .get(format!("{}/survey/other/r?t={rotated}", app.address))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(app.puts(), before);
    // The forged link, the tampered one and the forged answer.
    let metrics = app.metrics_text().await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_survey_refused_total",
            &[&app.label(), "reason=\"forged\""]
        ),
        Some(3.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_survey_refused_total",
            &[&app.label(), "reason=\"expired\""]
        ),
        Some(1.0)
    );
    app.shut_down().await;
}

#[tokio::test]
async fn a_customer_surveyed_recently_is_throttled() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(6, "First case"));
    app.fake.put_ticket(solved_case(7, "Second case"));
    assert_eq!(survey_of(app.solved(6).await).await, "sent");
    assert_eq!(survey_of(app.solved(7).await).await, "skipped:throttled");
    assert_eq!(smtp.messages().len(), 1);
    let tags = app.tags(7);
    assert!(
        tags.contains(&"csat_blind_skipped".to_string())
            && tags.contains(&"csat_blind_skipped_throttled".to_string()),
        "{tags:?}"
    );
    let search = app
        .fake
        .requests()
        .into_iter()
        .find(|r| r.route().starts_with("GET /api/v2/search"))
        .unwrap();
    assert!(search.query.unwrap().contains("updated%3E30days"));
    // Recorded for good: the redelivery does nothing.
    assert_eq!(survey_of(app.solved(7).await).await, "already");
    let metrics = app.metrics_text().await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_surveys_skipped_total",
            &[&app.label(), "reason=\"throttled\""]
        ),
        Some(1.0)
    );
    app.shut_down().await;
}

#[tokio::test]
async fn one_click_unsubscribe_writes_the_opt_out_and_later_cases_are_skipped() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(8, "Unsubscribe case"));
    assert_eq!(survey_of(app.solved(8).await).await, "sent");
    let mail = &smtp.messages()[0];
    let url = mail.unsubscribe_url();
    // RFC 8058 one-click: a POST of `List-Unsubscribe=One-Click` to the header's URL.
    let resp = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let put = app
        .fake
        .requests()
        .into_iter()
        .find(|r| {
            r.route()
                .starts_with(&format!("PUT /api/v2/users/{REQUESTER_ID}"))
        })
        .expect("opt-out written");
    assert_eq!(
        put.json()["user"]["user_fields"]["csat_blind_opt_out"],
        json!(true)
    );
    app.fake.put_ticket(solved_case(9, "Later case"));
    // Without the throttle, the opt-out is what stops it.
    assert_eq!(survey_of(app.solved(9).await).await, "skipped:opted_out");
    assert_eq!(smtp.messages().len(), 1);
    app.shut_down().await;
}

#[tokio::test]
async fn partner_addresses_are_never_surveyed_and_the_end_customer_field_is() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    // Escalated, requested by the partner's agent, no end-customer field.
    let mut t = solved_case(10, "Agent case");
    t["requester_id"] = json!(PARTNER_AGENT_ID);
    app.fake.put_ticket(t);
    assert_eq!(
        survey_of(app.solved(10).await).await,
        "skipped:partner_agent"
    );
    // Not escalated, requester in the partner's domain (an end-user record).
    app.fake.put_user(json!({"id": 9003, "name": "Sam", "email": "sam@eu.acme-it.example", "organization_id": ORG_ID}));
    let mut t = solved_case(11, "Partner domain case");
    t["requester_id"] = json!(9003);
    t["tags"] = json!(["partner_escalation"]);
    app.fake.put_ticket(t);
    assert_eq!(
        survey_of(app.solved(11).await).await,
        "skipped:partner_domain"
    );
    // The end-customer field in a partner domain.
    let mut fields = complete_handoff();
    fields.push((END_CUSTOMER, "boss@acme-it.example"));
    let mut t = ticket(12, "Field case", "x", &fields);
    t["status"] = json!("solved");
    t["requester_id"] = json!(PARTNER_AGENT_ID);
    app.fake.put_ticket(t);
    assert_eq!(
        survey_of(app.solved(12).await).await,
        "skipped:partner_domain"
    );
    assert!(smtp.messages().is_empty());
    // The end-customer field names the customer: the mail goes there, not to the agent.
    app.fake.put_user(json!({"id": 9004, "name": "Lee Customer", "email": "lee@customer.example", "organization_id": ORG_ID}));
    let mut fields = complete_handoff();
    fields.push((END_CUSTOMER, "Lee@Customer.example"));
    let mut t = ticket(13, "End customer case", "x", &fields);
    t["status"] = json!("solved");
    t["requester_id"] = json!(PARTNER_AGENT_ID);
    app.fake.put_ticket(t);
    assert_eq!(survey_of(app.solved(13).await).await, "sent");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_tos, vec!["lee@customer.example".to_string()]);
    assert!(mails[0].text.contains("Hello Lee Customer"));
    for (id, reason) in [
        (10, "partner_agent"),
        (11, "partner_domain"),
        (12, "partner_domain"),
    ] {
        assert!(
            app.tags(id)
                .contains(&format!("csat_blind_skipped_{reason}")),
            "{id}"
        );
    }
    let metrics = app.metrics_text().await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_surveys_skipped_total",
            &[&app.label(), "reason=\"partner_agent\""]
        ),
        Some(1.0)
    );
    app.shut_down().await;
}

#[tokio::test]
async fn a_case_reopened_before_the_send_gets_nothing_and_is_asked_after_the_next_solve() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(14, "Reopened case"));
    app.agent_update(14, json!({"status": "open"})).await;
    let puts = app.puts();
    assert_eq!(survey_of(app.solved(14).await).await, "skipped:not_solved");
    assert!(smtp.messages().is_empty());
    assert_eq!(
        app.puts(),
        puts,
        "nothing recorded: a later solve asks again"
    );
    app.agent_update(14, json!({"status": "solved"})).await;
    assert_eq!(survey_of(app.solved(14).await).await, "sent");
    assert_eq!(smtp.messages().len(), 1);
    app.shut_down().await;
}

#[tokio::test]
async fn hostile_ticket_text_is_escaped_in_the_mail_and_headers_cannot_be_injected() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    let hostile = "<script>alert('x')</script> \"Q\" & {{link_1}}\r\nBcc: victim@evil.example";
    app.fake.put_ticket(solved_case(15, hostile));
    app.fake.put_user(json!({
        "id": REQUESTER_ID, "name": "Dana <img src=x onerror=alert(1)>\r\nBcc: x@evil.example",
        "email": CUSTOMER, "locale": "en-US", "organization_id": ORG_ID
    }));
    assert_eq!(survey_of(app.solved(15).await).await, "sent");
    let mail = &smtp.messages()[0];
    assert_eq!(
        mail.rcpt_tos,
        vec![CUSTOMER.to_string()],
        "no injected recipient"
    );
    assert!(!mail.html.contains("<script>"), "{}", mail.html);
    assert!(!mail.html.contains("<img"), "{}", mail.html);
    assert!(
        mail.html.contains(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;Q&quot; &amp; {{link_1}}"
        ),
        "{}",
        mail.html
    );
    assert!(
        mail.text.contains("{{link_1}}"),
        "a placeholder in ticket text is not expanded"
    );
    assert!(mail.header("Bcc").is_none());
    assert!(!mail.raw.to_ascii_lowercase().contains("\nbcc:"));
    app.shut_down().await;
}

#[tokio::test]
async fn smtp_down_marks_nothing_sent_and_asks_for_a_retry() {
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = survey_app_with(email_delivery(port), TICKET_SINK, vec![]).await;
    app.fake.put_ticket(solved_case(16, "Down case"));
    let resp = app.solved(16).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    let tags = app.tags(16);
    assert!(
        !tags.iter().any(|t| t.starts_with("csat_blind_s")),
        "{tags:?}"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn each_customer_gets_the_wording_of_their_locale_and_english_is_the_fallback() {
    let smtp = SmtpServer::start();
    let templates = format!(
        "{}/tests/api/fixtures/survey-templates",
        env!("CARGO_MANIFEST_DIR")
    );
    let delivery = format!("{}templates = \"{templates}\"\n", email_delivery(smtp.port));
    let app = survey_app_with(delivery, TICKET_SINK, vec![]).await;
    let customers = [
        (40, 9005, "Ines Kunde", "ines@customer.example", "de-DE"),
        (41, 9006, "Lou Client", "lou@customer.example", "fr-FR"),
    ];
    for (ticket_id, user, name, email, locale) in customers {
        app.fake
            .put_user(json!({"id": user, "name": name, "email": email, "locale": locale}));
        let mut fields = complete_handoff();
        fields.push((END_CUSTOMER, email));
        let mut t = ticket(ticket_id, "Kalender <sync> steht", "x", &fields);
        t["status"] = json!("solved");
        t["tags"] = json!(["partner_escalation", "csat_blind_pending"]);
        app.fake.put_ticket(t);
        assert_eq!(survey_of(app.solved(ticket_id).await).await, "sent");
    }
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2);
    let (german, other) = (&mails[0], &mails[1]);
    assert_eq!(
        german.header("Subject"),
        Some("Wie zufrieden waren Sie mit Fall #40?")
    );
    assert!(german.text.contains("Hallo Ines Kunde"), "{}", german.text);
    assert!(
        german
            .html
            .contains("(&bdquo;Kalender &lt;sync&gt; steht&ldquo;)"),
        "{}",
        german.html
    );
    // The German links work like the built-in ones: each opens its page with its score.
    let ratings = rating_links(&app, german);
    assert_eq!(ratings.len(), 5);
    let page = get_text(&app.client, &ratings[3]).await;
    assert!(page.contains("id=\"csat-4\" name=\"csat\" value=\"4\" checked"));
    assert_eq!(
        other.header("Subject"),
        Some("How did we do with your case #41?")
    );
    assert!(other.text.contains("Hello Lou Client"), "{}", other.text);
    app.shut_down().await;
}

/// The test CA and the mail server's certificate it signed (for 127.0.0.1).
fn tls_fixture(name: &str) -> String {
    format!(
        "{}/tests/api/fixtures/smtp-tls/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A sink that speaks TLS the way `mode` (`--starttls` or `--tls`) says, with the test certificate.
fn tls_smtp(mode: &str, more: &[&str]) -> SmtpServer {
    let (cert, key) = (tls_fixture("server.pem"), tls_fixture("server.key"));
    let mut options = vec![mode, cert.as_str(), key.as_str()];
    options.extend(more);
    SmtpServer::start_with(&options)
}

/// E-mail delivery in TLS mode `tls`, with extra keys.
fn tls_delivery(port: u16, tls: &str, extra: &str) -> String {
    email_delivery(port).replace("tls = \"none\"", &format!("tls = \"{tls}\"\n{extra}"))
}

/// Solves case `id` and returns the HTTP status of the solved event.
async fn solve(app: &TestApp<FakeZendesk>, id: u64) -> u16 {
    app.fake.put_ticket(solved_case(id, "Mail over TLS"));
    app.solved(id).await.status().as_u16()
}

#[tokio::test]
async fn starttls_with_the_connectors_ca_authenticates_only_after_the_switch() {
    let smtp = tls_smtp("--starttls", &["--auth", "survey-bot:mail-password"]);
    let extra = format!(
        "ca_file = \"{}\"\nusername = \"survey-bot\"\npassword = \"${{SMTP_PASSWORD}}\"",
        tls_fixture("ca.pem")
    );
    let app = survey_app_with(
        tls_delivery(smtp.port, "starttls", &extra),
        TICKET_SINK,
        vec![("SMTP_PASSWORD", "mail-password".to_string())],
    )
    .await;
    assert_eq!(solve(&app, 30).await, 200);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls, "the message went over TLS");
    assert_eq!(mails[0].auth_user.as_deref(), Some("survey-bot"));
    assert!(app.tags(30).contains(&"csat_blind_sent".to_string()));
    app.shut_down().await;
}

#[tokio::test]
async fn tls_from_the_first_byte_with_the_connectors_ca() {
    let smtp = tls_smtp("--tls", &[]);
    let extra = format!("ca_file = \"{}\"", tls_fixture("ca.pem"));
    let app = survey_app_with(tls_delivery(smtp.port, "tls", &extra), TICKET_SINK, vec![]).await;
    assert_eq!(solve(&app, 31).await, 200);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls);
    app.shut_down().await;
}

#[tokio::test]
async fn a_mail_server_that_cannot_be_trusted_gets_nothing_and_the_survey_waits() {
    // A certificate from a CA the connector does not name, and a server that offers no STARTTLS
    // at all: neither gets the message nor the password, and nothing is marked sent.
    let untrusted = tls_smtp("--starttls", &[]);
    let plain = SmtpServer::start_with(&["--auth", "survey-bot:mail-password"]);
    for (id, smtp) in [(32, &untrusted), (33, &plain)] {
        let app = survey_app_with(
            tls_delivery(
                smtp.port,
                "starttls",
                "username = \"survey-bot\"\npassword = \"${SMTP_PASSWORD}\"",
            ),
            TICKET_SINK,
            vec![("SMTP_PASSWORD", "mail-password".to_string())],
        )
        .await;
        assert_eq!(solve(&app, id).await, 503, "case {id}");
        assert!(smtp.messages().is_empty(), "case {id}");
        let tags = app.tags(id);
        assert!(
            tags.contains(&"csat_blind_pending".to_string())
                && !tags.iter().any(|t| t.starts_with("csat_blind_s")),
            "case {id}: {tags:?}"
        );
        app.shut_down().await;
    }
}

/// A receiver for Standard Webhooks POSTs: records headers and bodies.
pub async fn webhook_receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, bytes::Bytes)>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, b: bytes::Bytes| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push((h, b));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn verify_standard_webhook(h: &axum::http::HeaderMap, body: &[u8]) {
    let s = WebhookSecret::parse(&SecretString::from(WHSEC)).unwrap();
    let get = |k: &str| h.get(k).unwrap().to_str().unwrap().to_string();
    let ts: i64 = get("webhook-timestamp").parse().unwrap();
    assert_eq!(
        get("webhook-signature"),
        s.sign(&get("webhook-id"), ts, body)
    );
}

#[tokio::test]
async fn webhook_delivery_and_webhook_sink_are_signed() {
    let (url, seen) = webhook_receiver().await;
    let app = survey_app_with(
        "kind = \"webhook\"\nurl = \"${HOOK_URL}\"\nsecret = \"${HOOK_SECRET}\"\n".into(),
        "kind = \"webhook\"\nurl = \"${HOOK_URL}\"\nsecret = \"${HOOK_SECRET}\"\n",
        vec![("HOOK_URL", url), ("HOOK_SECRET", WHSEC.into())],
    )
    .await;
    app.fake.put_ticket(solved_case(17, "Webhook case"));
    assert_eq!(survey_of(app.solved(17).await).await, "sent");
    assert!(app.tags(17).contains(&"csat_blind_sent".to_string()));
    assert_eq!(survey_of(app.solved(17).await).await, "already");
    let (h, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(seen.lock().unwrap().len(), 1);
    verify_standard_webhook(&h, &body);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "survey.requested");
    assert_eq!(v["data"]["recipient"]["email"], CUSTOMER);
    let link = v["data"]["links"]["5"].as_str().unwrap().to_string();
    let resp = answer(&app, &link, &[("csat", "5"), ("comment", "great")]).await;
    assert_eq!(resp.status(), 200);
    let (h, body) = seen.lock().unwrap()[1].clone();
    verify_standard_webhook(&h, &body);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "survey.answered");
    assert_eq!(
        (v["data"]["csat"].clone(), v["data"]["comment"].clone()),
        (json!(5), json!("great"))
    );
    // The vendor-only sink: nothing of the answer on the ticket, only that it was answered.
    assert!(app.notes(17).is_empty());
    let tags = app.tags(17);
    assert!(tags.contains(&"csat_blind_answered".to_string()));
    assert!(
        !tags.iter().any(|t| t.starts_with("csat_blind_score_")),
        "{tags:?}"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn a_browser_answers_the_mail_and_the_answer_lands_on_the_ticket() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    let link = survey_sent(&app, &smtp, 18, "Browser case").await[1].clone();
    let browser = Browser::required().await;
    let run = async {
        browser.goto(&link).await?;
        assert!(
            browser.is_selected("#csat-2").await?,
            "the clicked score is pre-selected"
        );
        browser.click("label[for=csat-5]").await?;
        browser.click("label[for=ces-7]").await?;
        browser.click("label[for=about-product]").await?;
        browser
            .type_into("#comment", "The product needs a sync button")
            .await?;
        tokio::time::sleep(MIN_ON_PAGE).await;
        browser.click("button[type=submit]").await?;
        browser
            .source_with("Thank you!", std::time::Duration::from_secs(10))
            .await
    };
    let page = run.await;
    browser.quit().await;
    let page = page.expect("the browser answers");
    assert!(page.contains("Thank you!"), "{page}");
    let notes = app.notes(18);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("CSAT: 5/5"), "{}", notes[0]);
    assert!(notes[0].contains("7/7"));
    assert!(notes[0].contains("mostly about: product"));
    assert!(notes[0].contains("The product needs a sync button"));
    let metrics = app.metrics_text().await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_survey_about_total",
            &[&app.label(), "about=\"product\""]
        ),
        Some(1.0)
    );
    app.shut_down().await;
}

#[tokio::test]
async fn the_answer_page_fits_a_390_px_phone_with_24_px_radio_targets() {
    const PHONE_WIDTH: u32 = 390;
    // WCAG 2.2, 2.5.8 Target Size (Minimum).
    const MIN_TARGET_PX: f64 = 24.0;
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    let link = survey_sent(&app, &smtp, 19, "Phone case").await[2].clone();
    let browser = Browser::required().await;
    let run = async {
        browser.set_window_size(PHONE_WIDTH, 844).await?;
        browser.goto(&link).await?;
        let widths = browser
            .execute(
                "return [window.innerWidth, document.documentElement.clientWidth, \
                 document.documentElement.scrollWidth];",
            )
            .await?;
        let mut radios = Vec::new();
        for id in ["csat-1", "ces-7", "about-both"] {
            radios.push((id, browser.rect(&format!("#{id}")).await?));
        }
        let comment = browser.rect("#comment").await?;
        Ok::<_, String>((widths, radios, comment))
    };
    let result = run.await;
    browser.quit().await;
    let (widths, radios, comment) = result.expect("the browser renders the page");
    let px = |v: &Value| v.as_f64().unwrap();
    assert_eq!(
        px(&widths[0]),
        f64::from(PHONE_WIDTH),
        "the viewport: {widths}"
    );
    let (client, scroll) = (px(&widths[1]), px(&widths[2]));
    assert!(
        scroll <= client,
        "{} px of horizontal scroll on a {PHONE_WIDTH} px phone",
        scroll - client
    );
    assert!(
        px(&comment["x"]) + px(&comment["width"]) <= client,
        "the comment box overflows: {comment}"
    );
    for (id, rect) in radios {
        assert!(
            px(&rect["width"]) >= MIN_TARGET_PX && px(&rect["height"]) >= MIN_TARGET_PX,
            "radio {id} is smaller than {MIN_TARGET_PX} px: {rect}"
        );
    }
    app.shut_down().await;
}

#[tokio::test]
async fn the_same_answer_posted_twice_is_recorded_once() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(30, "Replay case"));
    assert_eq!(survey_of(app.solved(30).await).await, "sent");
    let links = rating_links(&app, &smtp.messages()[0]);
    let form = filled_form(
        &app.client,
        &links[3],
        &[("csat", "4"), ("comment", "fine")],
    )
    .await;
    assert_eq!(post_form(&app.client, &links[3], &form).await.status(), 200);
    let puts = app.fake.count("PUT /api/v2/tickets/30");
    // A double click, or the same POST replayed: thanked, nothing written.
    let again = post_form(&app.client, &links[3], &form).await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("Thank you!"));
    assert_eq!(app.notes(30).len(), 1);
    assert_eq!(app.fake.count("PUT /api/v2/tickets/30"), puts);
    // A changed answer is recorded, and so is going back to the first one.
    assert_eq!(
        answer(&app, &links[1], &[("csat", "2")]).await.status(),
        200
    );
    assert_eq!(app.notes(30).len(), 2);
    assert_eq!(post_form(&app.client, &links[3], &form).await.status(), 200);
    assert_eq!(app.notes(30).len(), 3);
    let tags = app.tags(30);
    assert!(tags.contains(&"csat_blind_score_4".to_string()), "{tags:?}");
    let answer_tags: Vec<_> = tags
        .iter()
        .filter(|t| t.starts_with("csat_blind_answered_"))
        .collect();
    assert_eq!(
        answer_tags.len(),
        1,
        "only the latest answer's id: {tags:?}"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn every_sink_message_of_one_answer_carries_the_same_webhook_id() {
    let (url, seen) = webhook_receiver().await;
    let sink = "kind = \"webhook\"\nurl = \"${HOOK_URL}\"\nsecret = \"${HOOK_SECRET}\"\n";
    let app = survey_app_with(
        sink.into(),
        sink,
        vec![("HOOK_URL", url), ("HOOK_SECRET", WHSEC.into())],
    )
    .await;
    app.fake.put_ticket(solved_case(31, "Sink replay case"));
    assert_eq!(survey_of(app.solved(31).await).await, "sent");
    let request: Value = serde_json::from_slice(&seen.lock().unwrap()[0].1).unwrap();
    let link = request["data"]["links"]["4"].as_str().unwrap().to_string();
    let answered = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| {
                serde_json::from_slice::<Value>(b).unwrap()["type"] == "survey.answered"
            })
            .map(|(h, _)| h["webhook-id"].to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // The message goes out, but the ticket cannot be marked: the customer is asked to retry.
    app.fake.fail_next(
        "PUT /api/v2/tickets/31",
        vec![crate::fakes::zendesk::Failure::Status(500); 4],
    );
    let form = filled_form(&app.client, &link, &[("csat", "4")]).await;
    assert_eq!(post_form(&app.client, &link, &form).await.status(), 503);
    assert_eq!(post_form(&app.client, &link, &form).await.status(), 200);
    let ids = answered();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], ids[1], "the receiver can drop the second");
    // Marked now: the same answer again sends nothing; another answer gets another id.
    assert_eq!(post_form(&app.client, &link, &form).await.status(), 200);
    assert_eq!(answered().len(), 2);
    assert_eq!(answer(&app, &link, &[("csat", "3")]).await.status(), 200);
    let ids = answered();
    assert_eq!(ids.len(), 3);
    assert_ne!(ids[2], ids[0]);
    app.shut_down().await;
}

#[tokio::test]
async fn an_answer_after_the_ticket_closed_is_kept_in_a_follow_up_ticket() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    app.fake.put_ticket(solved_case(32, "Late answer case"));
    assert_eq!(survey_of(app.solved(32).await).await, "sent");
    let links = rating_links(&app, &smtp.messages()[0]);
    // Zendesk closes solved tickets after a few days; then it refuses every update (422).
    app.agent_update(32, json!({"status": "closed"})).await;
    let closed_before = app.fake.ticket(32);

    let form = filled_form(
        &app.client,
        &links[4],
        &[("csat", "5"), ("comment", "late but happy")],
    )
    .await;
    let resp = post_form(&app.client, &links[4], &form).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Thank you!"));
    let closed = app.fake.ticket(32);
    assert_eq!(
        closed["tags"], closed_before["tags"],
        "the closed ticket is untouched"
    );
    let followups = closed["followup_ids"].as_array().unwrap().clone();
    assert_eq!(followups.len(), 1, "{closed}");
    let id = followups[0].as_u64().unwrap();
    let follow_up = app.fake.ticket(id);
    assert_eq!(follow_up["status"], "solved");
    assert_eq!(follow_up["via"]["source"]["rel"], "follow_up");
    let tags = app.tags(id);
    assert!(
        tags.contains(&"csat_blind_answered".to_string())
            && tags.contains(&"csat_blind_score_5".to_string())
            && !tags.iter().any(|t| t.starts_with("escalation_")),
        "the verdict is not inherited: {tags:?}"
    );
    let notes = app.notes(id);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("CSAT: 5/5") && notes[0].contains("late but happy"));
    assert!(
        app.fake
            .comments(id)
            .iter()
            .all(|c| c["public"] == json!(false))
    );

    // The same answer again adds no second follow-up.
    assert_eq!(post_form(&app.client, &links[4], &form).await.status(), 200);
    assert_eq!(
        app.fake.ticket(32)["followup_ids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.shut_down().await;
}

/// Sends the survey of a new ticket `id`, then closes the ticket; returns the rating links.
async fn closed_after_survey(
    app: &TestApp<FakeZendesk>,
    smtp: &SmtpServer,
    id: u64,
) -> Vec<String> {
    let links = survey_sent(app, smtp, id, "Late answer case").await;
    app.agent_update(id, json!({"status": "closed"})).await;
    links
}

fn followups(app: &TestApp<FakeZendesk>, id: u64) -> Vec<Value> {
    app.fake.ticket(id)["followup_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_lost_answer_to_the_follow_up_create_makes_one_follow_up() {
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    let links = closed_after_survey(&app, &smtp, 34).await;
    // Zendesk creates the follow-up, but its answer never reaches the service, which sends
    // the same request again.
    app.fake
        .fail_next("POST /api/v2/tickets", vec![Failure::LostAnswer]);
    let resp = answer(&app, &links[3], &[("csat", "4")]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Thank you!"));
    let creates: Vec<_> = app
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/api/v2/tickets"))
        .collect();
    assert_eq!(creates.len(), 2, "the create was sent again");
    assert_eq!(followups(&app, 34).len(), 1, "{}", app.fake.ticket(34));
    let key = creates[0].header("idempotency-key");
    assert!(key.is_some_and(|k| !k.is_empty()), "no Idempotency-Key");
    assert_eq!(creates[1].header("idempotency-key"), key);
    app.shut_down().await;
}

#[tokio::test]
async fn the_same_late_answer_recorded_twice_at_once_makes_one_follow_up() {
    use escalation_gate::survey::{About, Answer, answer_id, answer_note};
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    closed_after_survey(&app, &smtp, 35).await;
    let desk = app.helpdesk.survey_desk.clone().expect("a survey desk");
    let a = Answer {
        csat: 2,
        ces: Some(3),
        about: Some(About::Support),
        comment: Some("took long".into()),
    };
    let id = answer_id(&app.connector, "35", &a);
    let note = answer_note(&a, &id);
    // Two instances that both found no answer yet write the same answer.
    let (first, second) = tokio::join!(
        desk.record_answer("35", &a, &id, &note),
        desk.record_answer("35", &a, &id, &note)
    );
    assert!(first.unwrap() && second.unwrap());
    assert_eq!(followups(&app, 35).len(), 1, "{}", app.fake.ticket(35));
    // A changed answer is a follow-up of its own, and so is going back to the first one.
    let b = Answer {
        csat: 5,
        ..a.clone()
    };
    let b_id = answer_id(&app.connector, "35", &b);
    desk.record_answer("35", &b, &b_id, &answer_note(&b, &b_id))
        .await
        .unwrap();
    desk.record_answer("35", &a, &id, &note).await.unwrap();
    assert_eq!(followups(&app, 35).len(), 3);
    assert!(desk.answered_with("35", &id).await.unwrap());
    app.shut_down().await;
}

#[tokio::test]
async fn the_fake_zendesk_keeps_a_ticket_creation_under_its_idempotency_key() {
    let fake = zendesk().await;
    let (email, token) = fake.api_token();
    let client = reqwest::Client::new();
    let create = |key: &'static str, subject: &'static str| {
        client
            .post(format!("{}/api/v2/tickets.json", fake.url()))
            .basic_auth(format!("{email}/token"), Some(token))
            .header("Idempotency-Key", key)
            .json(&json!({"ticket": {"subject": subject, "comment": {"body": "Printer offline"}}}))
            .send()
    };
    let first = create("k-1", "Printer").await.unwrap();
    assert_eq!(first.status(), 201);
    assert_eq!(first.headers()["x-idempotency-lookup"], "miss");
    let first: Value = first.json().await.unwrap();
    let again = create("k-1", "Printer").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["x-idempotency-lookup"], "hit");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["ticket"]["id"], first["ticket"]["id"]);
    let other = create("k-1", "Scanner").await.unwrap();
    assert_eq!(other.status(), 400);
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["error"], "IdempotentRequestError");
    let new = create("k-2", "Scanner").await.unwrap();
    assert_eq!(new.status(), 201);
    let new: Value = new.json().await.unwrap();
    assert_ne!(new["ticket"]["id"], first["ticket"]["id"]);
}

/// The `t` value of a link's query.
fn token_of(link: &str) -> String {
    reqwest::Url::parse(link)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned())
        .expect("a token")
}

#[tokio::test]
async fn a_survey_link_tells_its_holder_nothing_the_vendor_knows() {
    use base64::Engine as _;
    let smtp = SmtpServer::start();
    let app = survey_app(&smtp).await;
    let links = survey_sent(&app, &smtp, 37, "Opaque case").await;
    assert_eq!(links.len(), 5);
    let page = get_text(&app.client, &links[0]).await;
    let mut tokens: Vec<String> = links.iter().map(|l| token_of(l)).collect();
    tokens.push(token_of(&smtp.messages()[0].unsubscribe_url()));
    tokens.push(hidden(&page, "p"));
    // What a mail scanner or the customer could read out of a token: any base64url part.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for token in &tokens {
        assert!(token.len() < 200, "short enough for e-mail: {token}");
        for part in token.split('.') {
            let readable =
                String::from_utf8_lossy(&b64.decode(part).unwrap_or_default()).into_owned();
            for secret in [PARTNER, &REQUESTER_ID.to_string(), "\"t\":", "\"x\":"] {
                assert!(
                    !readable.contains(secret),
                    "the token {token} shows {secret:?}: {readable}"
                );
            }
        }
    }
    // Opaque, and still the same working links.
    assert_eq!(
        answer(&app, &links[3], &[("csat", "4")]).await.status(),
        200
    );
    assert!(app.notes(37)[0].contains("CSAT: 4/5"));
    app.shut_down().await;
}

/// Links of a mail sent by a version that signed readable tokens (connector `legacy-links`,
/// ticket 36, partner [`PARTNER`], customer [`REQUESTER_ID`], expiring in 2100, signed with
/// [`KEY`]): the rating link of score 4 and the unsubscribe link.
const LEGACY_RATE_TOKEN: &str = "eyJrIjoiciIsImMiOiJsZWdhY3ktbGlua3MiLCJ0IjoiMzYiLCJwIjoiQWNtZSBJVCBTZXJ2aWNlcyIsInMiOjQsImUiOjQxMDI0NDQ4MDAsIngiOnRydWUsInUiOiI5MDAxIn0.IRNYqe-NNl9rloZbLw4WdJBmEJ9suQyPJp0goGyxoIg";
const LEGACY_UNSUBSCRIBE_TOKEN: &str = "eyJrIjoidSIsImMiOiJsZWdhY3ktbGlua3MiLCJ0IjoiMzYiLCJwIjoiQWNtZSBJVCBTZXJ2aWNlcyIsInMiOjAsImUiOjQxMDI0NDQ4MDAsIngiOnRydWUsInUiOiI5MDAxIn0.l3tUwepsuBetT5sb-SnbWc3PBDentpKpWRpif9EgLLA";

#[tokio::test]
async fn links_in_mails_sent_with_signed_tokens_still_work() {
    let smtp = SmtpServer::start();
    let app = spawn_with(
        zendesk().await,
        Options {
            extra_toml: survey_toml(&email_delivery(smtp.port), TICKET_SINK),
            vars: vec![
                ("SURVEY_KEY", KEY.to_string()),
                ("SURVEY_OLD_KEY", OLD_KEY.to_string()),
            ],
            connector: Some("legacy-links".into()),
            ..Options::default()
        },
    )
    .await;
    app.fake.put_ticket(solved_case(36, "Legacy link case"));
    let base = format!("{}/survey/legacy-links", app.address);
    let rate = format!("{base}/r?t={LEGACY_RATE_TOKEN}");
    let page = get_text(&app.client, &rate).await;
    assert!(page.contains("checked"), "{page}");
    assert_eq!(answer(&app, &rate, &[("csat", "4")]).await.status(), 200);
    assert!(app.notes(36)[0].contains("CSAT: 4/5"));
    let out = app
        .client
        .post(format!("{base}/unsubscribe?t={LEGACY_UNSUBSCRIBE_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert!(out.text().await.unwrap().contains("You are unsubscribed"));
    // A legacy token with a changed byte is still refused.
    let tampered = LEGACY_RATE_TOKEN.replacen("IRNY", "IRNZ", 1);
    let refused = app
        .client
        .get(format!("{base}/r?t={tampered}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    app.shut_down().await;
}
