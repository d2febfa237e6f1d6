//! The Freshdesk connector end to end: the real service on loopback against the fake Freshdesk,
//! called as an automation rule's "Trigger webhook" action calls it.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::fakes::freshdesk::{Fail, FakeFreshdesk, SECRET, State_, connector_toml, vars};
use crate::helpers::{
    Options, TICKET_SINK, TestApp, demo_articles, email_delivery, get_text, metric_value,
    rating_links_to, spawn_with, survey_of, survey_toml, wait_until,
};
use crate::salesforce::{
    CALENDAR_SUBJECT, CALENDAR_TEXT, FULL_STEPS, PDF_SUBJECT, PDF_TEXT, SLOW_SUBJECT, SLOW_TEXT,
};
use crate::smtp::SmtpServer;

const SURVEY_KEY: &str = "fd-survey-key-0123456789abcdef0123456789";

pub const GOOD: u64 = 101;
pub const MISSING: u64 = 102;
pub const KB: u64 = 103;
const COMPANY: u64 = 501;
const REQUESTER: u64 = 9001;
const CUSTOMER: &str = "dana.reyes@northwind.example";

/// A ticket as Freshdesk stores it (the includes are added when it is read).
pub fn ticket(id: u64, subject: &str, text: &str, handoff: bool) -> Map<String, Value> {
    let v = |s: &str| if handoff { json!(s) } else { Value::Null };
    json!({
        "id": id,
        "subject": subject,
        "description": format!("<div>{text}</div>"),
        "description_text": text,
        "status": 2,
        "priority": 2,
        "source": 1,
        "type": "Problem",
        "requester_id": REQUESTER,
        "company_id": COMPANY,
        "group_id": null,
        "responder_id": null,
        "is_escalated": false,
        "spam": false,
        "tags": ["partner_escalated"],
        "custom_fields": {
            "cf_steps_to_reproduce": if handoff { json!(FULL_STEPS) } else { json!("run report") },
            "cf_environment": v("Ledgerly cloud, EU region, Chrome 124"),
            "cf_product": "Ledgerly Invoicing",
            "cf_end_customer_email": null,
            "cf_csat_score": null,
            "cf_ces_score": null,
            "cf_csat_about": null,
        },
        "created_at": "2024-05-03T09:00:00Z",
        "updated_at": "2024-05-03T11:30:00Z",
    })
    .as_object()
    .unwrap()
    .clone()
}

/// The demo knowledge base (connectors/demo/articles) as Freshdesk Solutions articles as the
/// search answers them: a translation keeps its article's id, the demo's draft is status 1.
fn solutions() -> Vec<Value> {
    demo_articles()
        .into_iter()
        .map(|a| {
            let language = match a.locale.as_str() {
                "en-us" => "en",
                other => other,
            };
            let time = format!("{}T00:00:00Z", a.published);
            json!({
                "id": a.number,
                "type": 1,
                "category_id": 3,
                "folder_id": 4,
                "hierarchy": [
                    {"level": 0, "type": "category", "data": {"id": 3, "name": "Ledgerly", "language": language}},
                    {"level": 1, "type": "folder", "data": {"id": 4, "name": "Troubleshooting", "language": language}}
                ],
                "folder_visibility": 1,
                "agent_id": 1,
                "path": format!("{}-article", a.number),
                "title": a.title,
                "status": if a.draft { 1 } else { 2 },
                "description": a.html(),
                "description_text": a.body,
                "created_at": time,
                "modified_at": time,
                "updated_at": time,
                "category_name": "Ledgerly",
                "folder_name": "Troubleshooting",
            })
        })
        .collect()
}

pub fn desk() -> State_ {
    let mut s = State_::default();
    for (id, subject, text, handoff) in [
        (GOOD, PDF_SUBJECT, PDF_TEXT, true),
        (MISSING, SLOW_SUBJECT, SLOW_TEXT, false),
        (KB, CALENDAR_SUBJECT, CALENDAR_TEXT, true),
    ] {
        s.tickets.insert(id, ticket(id, subject, text, handoff));
    }
    s.companies.insert(COMPANY, "Acme IT Services".into());
    s.contacts.insert(
        REQUESTER,
        json!({
            "id": REQUESTER, "name": "Dana Reyes", "email": CUSTOMER, "mobile": null,
            "phone": null, "language": "en", "time_zone": "Eastern Time (US & Canada)",
            "company_id": 601, "active": true,
            "custom_fields": {"csat_blind_opt_out": false},
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    s.articles = solutions();
    let published = |id: u64, title: &str, text: &str| {
        json!({
            "id": id, "type": 1, "category_id": 3, "folder_id": 4,
            "hierarchy": [{"level": 0, "type": "category", "data": {"id": 3, "name": "Ledgerly", "language": "en"}}],
            "title": title, "status": 2,
            "description": format!("<p>{text}</p>"), "description_text": text,
            "created_at": "2023-10-01T00:00:00Z", "modified_at": "2023-10-01T00:00:00Z",
            "updated_at": "2023-10-01T00:00:00Z",
        })
    };
    // Two more calendar articles about other problems: Solutions answers a short search with
    // several articles, and the judge compares them.
    s.articles.extend([
        published(
            2001,
            "Calendar sync shows events twice after reconnecting",
            "When a calendar is connected twice, calendar sync copies each event two times. \
             Remove the older calendar connection under Settings, Integrations, Calendar.",
        ),
        published(
            2002,
            "Mailbox password rules for connected apps",
            "A mailbox password change signs connected apps out after the next refresh. Sign \
             in again in each app; calendar sync resumes afterwards.",
        ),
    ]);
    // A draft that would answer the PDF case: drafts must never count.
    s.articles.push(json!({
        "id": 1003, "type": 1, "category_id": 3, "folder_id": 4,
        "hierarchy": [{"level": 0, "type": "category", "data": {"id": 3, "name": "Ledgerly", "language": "en"}}],
        "title": PDF_SUBJECT, "status": 1,
        "description": format!("<p>{PDF_TEXT}</p>"), "description_text": format!("{PDF_TEXT} Split the invoice."),
        "created_at": "2024-01-01T00:00:00Z", "modified_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }));
    s
}

type App = TestApp<FakeFreshdesk>;

async fn spawn_desk(state: State_, extra: &str, vars: Vec<(&'static str, String)>) -> App {
    spawn_with(
        FakeFreshdesk::start(state).await,
        Options {
            extra_toml: extra.to_string(),
            vars,
            ..Options::default()
        },
    )
    .await
}

async fn spawn() -> App {
    spawn_desk(desk(), "", Vec::new()).await
}

fn first_lines(fake: &FakeFreshdesk, ticket: u64) -> Vec<String> {
    fake.notes_on(ticket)
        .iter()
        .map(|n| n.body_text.lines().next().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn a_missing_or_wrong_secret_is_refused_before_any_read() {
    let app = spawn().await;
    let body = format!(r#"{{"ticket_id": "{GOOD}", "event": "escalated"}}"#);
    for secret in [
        None,
        Some("wrong-secret"),
        Some(&SECRET[..SECRET.len() - 1]),
    ] {
        let resp = app.call(secret, &body).await;
        assert_eq!(resp.status(), 401, "{secret:?}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"], "unauthorized");
    }
    assert!(
        app.fake.lock().log.is_empty(),
        "a refused call reads nothing"
    );
    // The secret as the Basic auth password passes (the rule's "Requires authentication").
    let resp = app
        .client
        .post(&app.url)
        .basic_auth("freshdesk", Some(SECRET))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[test]
fn a_short_or_missing_secret_in_the_connector_file_is_refused() {
    let text = connector_toml("https://acme.freshdesk.com", "", "");
    let var = |name: &str| vars().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let short = |name: &str| match name {
        "FD_WEBHOOK_SECRET" => Some("too-short-secret".to_string()),
        other => var(other),
    };
    let problems = escalation_gate::config::parse("acme-fd", &text, Path::new("."), &short)
        .expect_err("a short secret is refused");
    let shown = format!("{problems:?}");
    assert!(shown.contains("helpdesk.webhook_secrets[0]"), "{shown}");
    assert!(shown.contains("at least 32"), "{shown}");
    assert!(
        !shown.contains("too-short-secret"),
        "the secret is never shown"
    );
    let none = text.replace(r#"["${FD_WEBHOOK_SECRET}"]"#, "[]");
    let problems = escalation_gate::config::parse("acme-fd", &none, Path::new("."), &var)
        .expect_err("a connector without a secret is refused");
    assert!(
        format!("{problems:?}").contains("helpdesk.webhook_secrets"),
        "{problems:?}"
    );
}

#[tokio::test]
async fn bad_and_good_escalations_are_written_as_one_private_note_and_merged_tags() {
    let app = spawn().await;
    let f = &app.fake;
    for (ticket, verdict) in [(GOOD, "good"), (MISSING, "bad"), (KB, "bad")] {
        let body = app.escalate(ticket).await;
        assert_eq!(body["results"][0]["verdict"], verdict, "{body}");
        assert_eq!(body["results"][0]["written"], "now", "{body}");
    }
    let want = [
        (GOOD, "escalation-gate verdict: GOOD escalation"),
        (
            MISSING,
            "escalation-gate verdict: BAD escalation (missing_handoff)",
        ),
        (
            KB,
            "escalation-gate verdict: BAD escalation (kb_resolvable)",
        ),
    ];
    for (ticket, head) in want {
        assert_eq!(first_lines(f, ticket), [head], "{ticket}");
        let note = &f.notes_on(ticket)[0];
        assert!(note.private, "the note is private");
        assert!(note.body_text.contains("Partner: Acme IT Services"));
        // The partner's own tag stays: the update replaces the list, so it is merged.
        assert!(f.tags(ticket).contains(&"partner_escalated".to_string()));
    }
    let tags = |t: u64| f.tags(t);
    assert!(tags(GOOD).contains(&"escalation_good".to_string()));
    for t in [
        "escalation_bad",
        "escalation_missing_handoff",
        "escalation_missing_environment",
    ] {
        assert!(
            tags(MISSING).contains(&t.to_string()),
            "{t}: {:?}",
            tags(MISSING)
        );
    }
    for t in [
        "escalation_bad",
        "escalation_kb_resolvable",
        "escalation_kb_article_1001",
    ] {
        assert!(tags(KB).contains(&t.to_string()), "{t}: {:?}", tags(KB));
    }
    // The Solutions article is quoted with its link; the draft that answers the PDF case was
    // never counted, so that case is good.
    let kb_note = &f.notes_on(KB)[0].body_text;
    assert!(
        kb_note.contains(&format!("{}/support/solutions/articles/1001", f.base)),
        "{kb_note}"
    );
    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_escalations_assessed_total",
            &[
                &format!("connector=\"{}\"", app.connector),
                "verdict=\"bad\""
            ]
        ),
        Some(2.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn redelivery_writes_nothing() {
    let app = spawn().await;
    app.escalate(MISSING).await;
    let (notes, puts) = (
        app.fake.notes_on(MISSING).len(),
        app.fake.count("PUT", "/tickets/"),
    );
    assert_eq!((notes, puts), (1, 1));
    let body = app.escalate(MISSING).await;
    assert_eq!(body["results"][0]["written"], "already", "{body}");
    assert_eq!(body["results"][0]["verdict"], "bad", "{body}");
    assert_eq!(app.fake.notes_on(MISSING).len(), 1);
    assert_eq!(app.fake.count("PUT", "/tickets/"), 1);
    assert_eq!(app.fake.count("POST", "/notes"), 1);
}

#[tokio::test]
async fn a_tag_added_between_read_and_write_survives() {
    let app = spawn().await;
    // An agent tags the ticket after the service read it, while the note is written.
    app.fake.lock().tag_during_note = Some("vip_customer".into());
    app.escalate(GOOD).await;
    let tags = app.fake.tags(GOOD);
    for t in ["partner_escalated", "vip_customer", "escalation_good"] {
        assert!(tags.contains(&t.to_string()), "{t}: {tags:?}");
    }
}

#[tokio::test]
async fn a_note_written_before_a_failed_tag_write_is_not_written_again() {
    let app = spawn().await;
    app.fake.fail(Fail {
        method: "PUT",
        path_contains: format!("/tickets/{MISSING}"),
        status: 500,
        retry_after: None,
        times: 3,
    });
    let resp = app.event(MISSING, "escalated").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(app.fake.notes_on(MISSING).len(), 1);
    // Freshdesk's retry: the ticket carries no verdict tag yet, so it is judged again, and the
    // note that states the same verdict is kept as it is.
    let body = app.escalate(MISSING).await;
    assert_eq!(body["results"][0]["written"], "now", "{body}");
    assert_eq!(app.fake.notes_on(MISSING).len(), 1);
    assert!(
        app.fake
            .tags(MISSING)
            .contains(&"escalation_bad".to_string())
    );
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_as_retry_after_asks() {
    let app = spawn().await;
    app.fake.fail(Fail {
        method: "GET",
        path_contains: format!("/tickets/{GOOD}"),
        status: 429,
        retry_after: Some(1),
        times: 1,
    });
    let body = app.escalate(GOOD).await;
    assert_eq!(body["results"][0]["verdict"], "good", "{body}");
    let log: Vec<(String, u16)> = app
        .fake
        .lock()
        .log
        .iter()
        .filter(|(l, _)| l == &format!("GET /api/v2/tickets/{GOOD}"))
        .cloned()
        .collect();
    assert_eq!(log[0].1, 429);
    assert_eq!(log[1].1, 200);
}

#[tokio::test]
async fn an_upstream_failure_answers_503_with_retry_after_and_writes_nothing() {
    let app = spawn().await;
    app.fake.fail(Fail {
        method: "GET",
        path_contains: format!("/tickets/{GOOD}"),
        status: 429,
        retry_after: Some(120),
        times: 10,
    });
    let resp = app.event(GOOD, "escalated").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "120");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "upstream_unavailable", "{body}");
    assert!(app.fake.notes_on(GOOD).is_empty());
    assert_eq!(app.fake.count("PUT", "/tickets/"), 0);
}

#[tokio::test]
async fn an_unknown_ticket_is_unusable_and_a_bad_body_is_refused() {
    let app = spawn().await;
    let resp = app.event(999, "escalated").await;
    assert_eq!(resp.status(), 422);
    let resp = app
        .call(Some(SECRET), r#"{"ticket_id": "{{ticket.id}}"}"#)
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("ticket_id"),
        "{body}"
    );
}

#[tokio::test]
async fn a_ticket_id_beyond_64_bits_is_refused_before_any_call() {
    let app = spawn().await;
    for id in [r#""18446744073709551616""#, "18446744073709551616"] {
        let resp = app
            .call(
                Some(SECRET),
                &format!(r#"{{"ticket_id": {id}, "event": "escalated"}}"#),
            )
            .await;
        assert_eq!(resp.status(), 400, "{id}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "bad_request", "{body}");
    }
    assert_eq!(app.fake.count("GET", "/"), 0, "nothing is read upstream");
}

async fn spawn_survey(smtp: &SmtpServer) -> App {
    spawn_desk(
        desk(),
        &survey_toml(&email_delivery(smtp.port), TICKET_SINK),
        vec![
            ("SURVEY_KEY", SURVEY_KEY.to_string()),
            ("SURVEY_OLD_KEY", SURVEY_KEY.to_string()),
        ],
    )
    .await
}

#[tokio::test]
async fn the_survey_goes_out_once_when_the_resolution_rule_calls() {
    let smtp = SmtpServer::start();
    let app = spawn_survey(&smtp).await;
    app.escalate(GOOD).await;
    assert!(
        app.fake
            .tags(GOOD)
            .contains(&"csat_blind_pending".to_string()),
        "the verdict's own update marks the ticket for the survey"
    );
    assert!(smtp.messages().is_empty(), "no survey on escalation");

    // Not resolved yet: nothing is sent.
    assert_eq!(
        survey_of(app.event(GOOD, "solved").await).await,
        "skipped:not_solved"
    );
    app.fake.edit(GOOD, "status", json!(4));
    assert_eq!(survey_of(app.event(GOOD, "solved").await).await, "sent");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_tos, vec![CUSTOMER.to_string()]);
    assert!(
        mails[0].text.contains("Hello Dana Reyes"),
        "{}",
        mails[0].text
    );
    assert_eq!(rating_links_to(&mails[0], &app.connector).len(), 5);
    let tags = app.fake.tags(GOOD);
    assert!(tags.contains(&"csat_blind_sent".to_string()), "{tags:?}");
    assert!(tags.contains(&"escalation_good".to_string()), "{tags:?}");

    // The rule's retry sends nothing twice.
    assert_eq!(survey_of(app.event(GOOD, "solved").await).await, "already");
    assert_eq!(smtp.messages().len(), 1);

    // The same customer's next resolved case within the throttle window is not asked again
    // (found through the ticket list by requester e-mail).
    app.escalate(MISSING).await;
    app.fake.edit(MISSING, "status", json!(4));
    assert_eq!(
        survey_of(app.event(MISSING, "solved").await).await,
        "skipped:throttled"
    );
    assert_eq!(smtp.messages().len(), 1);

    // One click on the unsubscribe link writes the opt-out on the contact.
    let url = smtp.messages()[0].unsubscribe_url();
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
        app.fake.contact_field(REQUESTER, "csat_blind_opt_out"),
        json!(true)
    );
    app.fake.edit(KB, "status", json!(5));
    app.escalate(KB).await;
    assert_eq!(
        survey_of(app.event(KB, "solved").await).await,
        "skipped:opted_out"
    );
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn the_sweep_judges_an_escalation_whose_call_never_came() {
    let mut state = desk();
    let changed = |hours: i64| {
        json!(
            (chrono::Utc::now() - chrono::Duration::hours(hours))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    };
    // The lost call, one already judged, one not escalated, one changed before the look-back.
    for (id, tags, hours) in [
        (GOOD, json!(["partner_escalated"]), 2),
        (MISSING, json!(["partner_escalated", "escalation_good"]), 1),
        (KB, json!([]), 1),
        (104, json!(["partner_escalated"]), 72),
    ] {
        let mut t = ticket(id, PDF_SUBJECT, PDF_TEXT, true);
        t.insert("tags".into(), tags);
        t.insert("updated_at".into(), changed(hours));
        state.tickets.insert(id, t);
    }
    let app = spawn_desk(
        state,
        "[sweep]\nquery = \"tag:'partner_escalated'\"\nlookback_hours = 24\n",
        Vec::new(),
    )
    .await;
    let swept = wait_until(std::time::Duration::from_secs(10), || {
        app.fake.tags(GOOD).contains(&"escalation_good".to_string())
    })
    .await;
    assert!(
        swept,
        "the first sweep runs at start: {:?}",
        app.fake.tags(GOOD)
    );
    assert_eq!(app.fake.notes_on(GOOD).len(), 1);
    for id in [MISSING, KB, 104] {
        assert!(app.fake.notes_on(id).is_empty(), "ticket {id}");
        assert_eq!(
            app.fake.count("PUT", &format!("/tickets/{id}")),
            0,
            "ticket {id}"
        );
    }
    let searches = app.fake.lock().searches.clone();
    assert!(
        searches[0].starts_with("(tag:'partner_escalated') AND updated_at:>'"),
        "{searches:?}"
    );
}

/// What `report`, `calibrate` and `backfill` say of a connector that cannot be read back.
fn cannot_read_back(command: &str) -> String {
    format!(
        "`{command}` reads a whole period back, and connector `acme-fd` cannot: Freshdesk's ticket search returns at most 300 tickets"
    )
}

#[tokio::test]
async fn report_calibrate_and_backfill_refuse_a_freshdesk_connector_before_any_read() {
    let fake = FakeFreshdesk::start(desk()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme-fd.toml"),
        connector_toml(&fake.base, "", ""),
    )
    .unwrap();
    for command in ["report", "calibrate", "backfill"] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_escalation-gate"));
        c.arg(command)
            .args([
                "--connector",
                "acme-fd",
                "--from",
                "2024-05-01",
                "--to",
                "2024-06-01",
            ])
            .arg("--connectors")
            .arg(dir.path())
            .envs(vars());
        let out = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        assert!(!out.status.success(), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.trim_end(),
            format!("error: {}", cannot_read_back(command)),
            "{command}"
        );
    }
    assert!(fake.lock().log.is_empty(), "nothing was read");
}

#[test]
fn validate_refuses_a_report_table_on_a_freshdesk_connector() {
    let var = |name: &str| vars().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let text = connector_toml("https://acme.freshdesk.com", "", "");
    let valid = escalation_gate::config::parse("acme-fd", &text, Path::new("."), &var)
        .expect("a Freshdesk connector without [report] is valid");
    assert!(
        valid
            .helpdesk
            .build("acme-fd", None)
            .unwrap()
            .record
            .is_none(),
        "a Freshdesk helpdesk has no record role"
    );
    let with_report = connector_toml("https://acme.freshdesk.com", "", "[report]\ntarget = 0.9\n");
    let problems = escalation_gate::config::parse("acme-fd", &with_report, Path::new("."), &var)
        .expect_err("[report] asks for a read-back Freshdesk cannot give");
    assert_eq!(
        problems,
        [escalation_gate::checks::Problem::new(
            "report",
            "`report`, `calibrate` and `backfill` read a whole period back, and this connector's \
             helpdesk cannot: Freshdesk's ticket search returns at most 300 tickets; remove [report]"
        )]
    );
}

#[tokio::test]
async fn what_the_sidebar_app_recorded_in_the_precheck_field_goes_into_the_note() {
    let mut state = desk();
    state.tickets.get_mut(&KB).unwrap()["custom_fields"][crate::fakes::freshdesk::PRECHECK_FIELD] =
        json!("bad+article");
    let app = spawn_desk(state, "", Vec::new()).await;
    let body = app.escalate(KB).await;
    assert_eq!(body["results"][0]["verdict"], "bad", "{body}");
    let note = &app.fake.notes_on(KB)[0].body_text;
    assert!(
        note.contains("Checked before escalating: the check said BAD; it was sent as it was."),
        "{note}"
    );
}
