//! The helpdesk sidebar apps in headless Chromium. The Zendesk app (`install zendesk-app`)
//! against a stub of the ZAF client that follows the documented API
//! (tests/api/fixtures/zaf_stub.js), the Freshdesk app (`install freshdesk-app`) against a stub
//! of the Freshworks client (tests/api/fixtures/freshworks_stub.js), and the Guide snippet on a
//! request form: a judged ticket shows its verdict (and in Zendesk records a reviewer's decision
//! as the macro does); a ticket being prepared runs the check before escalating and shows a
//! bad, a good and a review answer; HTML and script in a ticket's fields or the service's answer
//! render as text.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use escalation_gate::helpdesk::registry::ValidHelpdesk;
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;
use crate::webdriver::Browser;

const SERVICE: &str = "https://gate.example.com";
const SCRIPT: &str = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">";

struct Served {
    files: HashMap<String, Vec<u8>>,
    scenario: Mutex<Value>,
}

/// Serves `files` on loopback (under their paths), and `scenario.js` setting `global` to the
/// scenario the test puts in place; the base URL.
async fn serve(files: HashMap<String, Vec<u8>>, global: &'static str) -> (String, Arc<Served>) {
    let served = Arc::new(Served {
        files,
        scenario: Mutex::new(Value::Null),
    });
    let asset = move |State(s): State<Arc<Served>>, UrlPath(name): UrlPath<String>| async move {
        let kind = match name.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            _ => "application/octet-stream",
        };
        if name.ends_with("scenario.js") {
            let body = format!("window.{global} = {};", s.scenario.lock().unwrap());
            return ([("content-type", kind)], body).into_response();
        }
        match s.files.get(&name) {
            Some(bytes) => ([("content-type", kind)], bytes.clone()).into_response(),
            None => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    };
    let app = axum::Router::new()
        .route("/{*name}", axum::routing::get(asset))
        .with_state(Arc::clone(&served));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, served)
}

/// Puts the stub `stub` (a file of tests/api/fixtures) in place of the helpdesk's client script
/// `client` on the app's sidebar `page`, after the scenario it answers from.
fn with_stub(files: &mut HashMap<String, Vec<u8>>, page: &str, client: &str, stub: &str) {
    let html = String::from_utf8(files[page].clone()).unwrap();
    let tag = format!("<script src=\"{client}\"></script>");
    assert!(
        html.contains(&tag),
        "{page} loads the helpdesk's client {client}"
    );
    let stubbed = html.replace(
        &tag,
        &format!("<script src=\"scenario.js\"></script><script src=\"{stub}\"></script>"),
    );
    files.insert(page.into(), stubbed.into_bytes());
    let at = page
        .rsplit_once('/')
        .map_or(String::new(), |(dir, _)| format!("{dir}/"));
    files.insert(
        format!("{at}{stub}"),
        std::fs::read(format!("tests/api/fixtures/{stub}")).unwrap(),
    );
}

/// The test connector of `fake`, validated.
fn valid_connector<F: FakeHelpdesk>(fake: &F) -> escalation_gate::config::ValidConnector {
    let text = fake.connector_toml(&Options::default());
    let vars: HashMap<&str, String> = fake.vars().into_iter().collect();
    escalation_gate::config::parse(CONNECTOR, &text, Path::new("connectors"), &|v| {
        vars.get(v).cloned()
    })
    .unwrap()
}

/// The app's files for the test connector, served with the ZAF SDK replaced by the stub; the
/// page's URL and the scenario the stub answers from.
async fn serve_app() -> (String, Arc<Served>) {
    let valid = valid_connector(&zendesk().await);
    let ValidHelpdesk::Zendesk(cfg) = &valid.helpdesk else {
        panic!("a Zendesk connector")
    };
    let url = reqwest::Url::parse(SERVICE).unwrap();
    let mut files: HashMap<String, Vec<u8>> =
        escalation_gate::helpdesk::zendesk::app::package(CONNECTOR, &url, cfg)
            .files
            .into_iter()
            .collect();
    with_stub(
        &mut files,
        "assets/iframe.html",
        escalation_gate::helpdesk::zendesk::app::ZAF_SDK,
        "zaf_stub.js",
    );
    let (base, served) = serve(files, "__ZAF_SCENARIO").await;
    (format!("{base}/assets/iframe.html"), served)
}

fn ticket(tags: &[&str]) -> Value {
    json!({
        "ticket.subject": format!("Calendar sync stops {SCRIPT}"),
        "ticket.description": "Calendar sync stopped with error E1234.",
        "ticket.tags": tags,
        format!("ticket.customField:custom_field_{STEPS}"): format!("1. Open Settings. {SCRIPT}"),
        format!("ticket.customField:custom_field_{ENVIRONMENT}"): "Cloud, EU",
    })
}

async fn open(browser: &Browser, page: &str, served: &Served, scenario: Value) {
    *served.scenario.lock().unwrap() = scenario;
    browser.goto(page).await.unwrap();
}

/// Waits until the element's text is not empty; the text.
async fn text_of(browser: &Browser, css: &str) -> String {
    for _ in 0..100 {
        if let Ok(t) = browser.text(css).await
            && !t.is_empty()
        {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "{css} stays empty: {}",
        browser.source().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidebar_shows_verdicts_records_decisions_and_checks_drafts() {
    let (page, served) = serve_app().await;
    let browser = Browser::required().await;
    let settings = json!({"service_url": SERVICE});

    // A judged bad ticket: the verdict, its reasons, the reviewer's decisions.
    open(&browser, &page, &served, json!({
        "settings": settings,
        "ticket": ticket(&["partner_escalation", "escalation_bad", "escalation_kb_resolvable", "escalation_kb_conf_91"]),
        "answer": {"status": 200, "body": {}},
    }))
    .await;
    assert_eq!(
        text_of(&browser, "#verdict-title").await,
        "Verdict: BAD escalation"
    );
    let reasons = text_of(&browser, "#verdict-reasons").await;
    assert!(
        reasons.contains("A knowledge-base article answers the case."),
        "{reasons}"
    );
    assert!(reasons.contains("Confidence: 0.91"), "{reasons}");
    let buttons = browser
        .execute("return Array.from(document.querySelectorAll('#decisions button')).map(b => b.textContent)")
        .await
        .unwrap();
    assert_eq!(buttons.as_array().unwrap().len(), 6, "{buttons}");
    browser
        .click("#decisions button:nth-child(3)")
        .await
        .unwrap();
    text_of(&browser, "#status").await;
    let log = browser.execute("return window.__zaf").await.unwrap();
    let macros = escalation_gate::helpdesk::zendesk::install::decisions("escalation_");
    let overturn = &macros[2];
    assert_eq!(
        overturn.title,
        "Overturn to good: the article does not answer the case"
    );
    let invoked: Vec<&Value> = log["invoked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|call| call[0] != "resize")
        .collect();
    assert_eq!(
        json!(invoked),
        json!([
            ["ticket.tags.remove", overturn.remove],
            ["ticket.tags.add", overturn.add],
            ["comment.appendText", overturn.note],
        ]),
        "{log}"
    );
    assert_eq!(log["set"], json!([["comment.type", "internalNote"]]));
    assert_eq!(
        log["requests"],
        json!([]),
        "a judged ticket is not checked again"
    );

    // A ticket left to a reviewer.
    open(
        &browser,
        &page,
        &served,
        json!({
            "settings": settings,
            "ticket": ticket(&["escalation_review"]),
            "answer": {"status": 200, "body": {}},
        }),
    )
    .await;
    assert_eq!(
        text_of(&browser, "#verdict-title").await,
        "Verdict: Left to a reviewer"
    );

    // A ticket being prepared: the check, answered bad, with markup in the answer.
    open(&browser, &page, &served, json!({
        "settings": settings,
        "ticket": ticket(&["partner_escalation"]),
        "answer": {"status": 200, "body": {
            "outcome": "bad",
            "handoff": [{"field": "steps", "message": format!("needs at least 20 characters {SCRIPT}")}],
            "articles": [
                {"title": format!("Calendar sync E1234 {SCRIPT}"), "url": "https://help.example.com/hc/articles/1",
                 "passage": "Reconnect the calendar.", "confidence": 0.93},
                {"title": "Not a link", "url": "javascript:window.pwned=3", "passage": "", "confidence": 0.5}
            ]
        }},
    }))
    .await;
    browser.click("#run-check").await.unwrap();
    assert_eq!(
        text_of(&browser, "#check-title").await,
        "This escalation would be: BAD escalation"
    );
    let problems = text_of(&browser, "#check-problems").await;
    assert!(
        problems.contains(SCRIPT),
        "markup shown as text: {problems}"
    );
    let articles = text_of(&browser, "#check-articles").await;
    assert!(
        articles.contains(&format!("Calendar sync E1234 {SCRIPT} (confidence 0.93)")),
        "{articles}"
    );
    let links = browser
        .execute(
            "return Array.from(document.querySelectorAll('#check-articles a')).map(a => a.href)",
        )
        .await
        .unwrap();
    assert_eq!(links, json!(["https://help.example.com/hc/articles/1"]));
    let log = browser.execute("return window.__zaf").await.unwrap();
    assert_eq!(
        log["invoked"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|call| call[0] != "resize")
            .collect::<Vec<_>>(),
        [
            &json!([
                "ticket.tags.remove",
                ["escalation_precheck_good", "escalation_precheck_review"]
            ]),
            &json!([
                "ticket.tags.add",
                ["escalation_precheck_bad", "escalation_precheck_article"]
            ]),
        ],
        "what the check said is recorded on the ticket, and that it showed an article"
    );
    let request = &log["requests"][0];
    assert_eq!(request["url"], format!("{SERVICE}/precheck/{CONNECTOR}"));
    assert_eq!(request["type"], "POST");
    assert_eq!(request["secure"], true);
    assert_eq!(
        request["headers"]["Authorization"],
        "Bearer {{setting.precheck_secret}}"
    );
    let draft: Value = serde_json::from_str(request["data"].as_str().unwrap()).unwrap();
    assert_eq!(draft["subject"], format!("Calendar sync stops {SCRIPT}"));
    assert_eq!(
        draft["fields"]["steps"],
        format!("1. Open Settings. {SCRIPT}")
    );
    assert_eq!(draft["fields"]["environment"], "Cloud, EU");
    assert_eq!(
        browser.execute("return document.querySelectorAll('#app script, #app img').length + (window.pwned || 0)").await.unwrap(),
        json!(0),
        "nothing of the ticket or the answer ran or became an element"
    );

    // Answered good, then review.
    for (outcome, title) in [
        ("good", "GOOD escalation"),
        ("review", "Left to a reviewer"),
    ] {
        open(&browser, &page, &served, json!({
            "settings": settings,
            "ticket": ticket(&[]),
            "answer": {"status": 200, "body": {"outcome": outcome, "handoff": [], "articles": []}},
        }))
        .await;
        browser.click("#run-check").await.unwrap();
        assert_eq!(
            text_of(&browser, "#check-title").await,
            format!("This escalation would be: {title}")
        );
        let log = browser.execute("return window.__zaf").await.unwrap();
        let added: Vec<&Value> = log["invoked"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|call| call[0] == "ticket.tags.add")
            .collect();
        assert_eq!(
            added,
            [&json!([
                "ticket.tags.add",
                [format!("escalation_precheck_{outcome}")]
            ])],
            "no article shown, no article tag"
        );
    }

    // The service refuses: said, nothing shown as a result.
    open(
        &browser,
        &page,
        &served,
        json!({
            "settings": settings,
            "ticket": ticket(&[]),
            "answer": {"status": 401, "body": {}},
        }),
    )
    .await;
    browser.click("#run-check").await.unwrap();
    assert_eq!(
        text_of(&browser, "#status").await,
        "The check could not run (HTTP 401)."
    );
    browser.quit().await;
}

#[test]
fn install_zendesk_app_writes_the_zip_an_admin_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    std::fs::create_dir(&connectors).unwrap();
    std::fs::write(
        connectors.join(format!("{CONNECTOR}.toml")),
        connector_toml(API_TOKEN_AUTH, "helpdesk", ""),
    )
    .unwrap();
    let zip = dir.path().join("app.zip");
    let snippet = dir.path().join("snippet.html");
    let run = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_escalation-gate"))
            .args([
                "install",
                "zendesk-app",
                "--connector",
                CONNECTOR,
                "--url",
                url,
                "--out",
            ])
            .arg(&zip)
            .arg("--guide-snippet")
            .arg(&snippet)
            .arg("--connectors")
            .arg(&connectors)
            .envs([
                ("ZD_URL", "https://acme.zendesk.com"),
                ("ZD_EMAIL", "agent@acme.example"),
                ("ZD_TOKEN", "t"),
                ("ZD_SECRET", SECRET),
                ("ZD_OLD_SECRET", RETIRED_SECRET),
            ])
            .output()
            .unwrap()
    };
    let out = run("http://gate.example.com");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected an https URL"));
    let out = run(SERVICE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no [precheck] table"),
        "the admin is told the check needs [precheck]"
    );
    let written = std::fs::read_to_string(&snippet).unwrap();
    assert!(
        written.contains(&format!("var SERVICE = \"{SERVICE}/\";")),
        "{written}"
    );
    assert!(
        written.contains(&format!("\"{STEPS}\":\"steps\"")),
        "{written}"
    );
    assert!(
        written.contains(&format!("var PRECHECK_FIELD = \"{PRECHECK_FIELD}\";")),
        "the snippet records the check in the connector's precheck_field: {written}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "Add the text field {PRECHECK_FIELD} ([helpdesk] precheck_field) to the request form"
        )),
        "the admin is told to put the field on the form"
    );
    let bytes = std::fs::read(&zip).unwrap();
    let names: Vec<String> = [
        "manifest.json",
        "translations/en.json",
        "assets/iframe.html",
        "assets/app.js",
        "assets/render.js",
        "assets/sidebar.css",
        "assets/config.js",
    ]
    .iter()
    .filter(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
    .map(|n| n.to_string())
    .collect();
    assert_eq!(names.len(), 7, "{names:?}");
    let start = bytes.windows(2).position(|w| w == b"{\n").unwrap();
    let manifest: Value = serde_json::Deserializer::from_slice(&bytes[start..])
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(manifest["frameworkVersion"], "2.0");
    assert_eq!(
        manifest["location"]["support"]["ticket_sidebar"]["url"],
        "assets/iframe.html"
    );
    assert_eq!(manifest["domainWhitelist"], json!(["gate.example.com"]));
    assert_eq!(manifest["parameters"][1]["secure"], true);
}

/// What the stand-in precheck of the Guide test received.
type Received = Arc<Mutex<Vec<Value>>>;

/// A listener on loopback, its base URL (the service and the Help Center both), and the request
/// form as Guide renders it (subject, description and `fields`), followed by the test
/// connector's snippet for that service.
async fn guide_page(fields: &str) -> (tokio::net::TcpListener, String, String) {
    let valid = valid_connector(&zendesk().await);
    let ValidHelpdesk::Zendesk(cfg) = &valid.helpdesk else {
        panic!("a Zendesk connector")
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let snippet = escalation_gate::helpdesk::zendesk::app::guide_snippet(
        CONNECTOR,
        &reqwest::Url::parse(&base).unwrap(),
        cfg,
    );
    let page = format!(
        r#"<!DOCTYPE html><html><body>
<form id="new_request" class="request-form">
<input name="request[subject]" id="subject">
<textarea name="request[description]" id="description"></textarea>
{fields}
</form>
{snippet}
</body></html>"#
    );
    (listener, base, page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_snippet_checks_the_request_form_as_it_is_filled() {
    let (listener, base, page) = guide_page(&format!(
        r#"<input name="request[custom_fields][{STEPS}]" id="steps">"#
    ))
    .await;
    let received: Received = Arc::default();
    let answer = json!({
        "outcome": "bad",
        "handoff": [{"field": "product_version", "message": format!("is missing {SCRIPT}")}],
        "articles": [{"title": format!("Calendar sync E1234 {SCRIPT}"),
                      "url": "https://help.example.com/hc/articles/1", "passage": "Reconnect."}]
    });
    let app = axum::Router::new()
        .route(
            "/new",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        )
        .route(
            "/precheck/{connector}",
            axum::routing::post({
                let received = Arc::clone(&received);
                move |axum::Json(body): axum::Json<Value>| async move {
                    received.lock().unwrap().push(body);
                    axum::Json(answer)
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let browser = Browser::required().await;
    browser.goto(&format!("{base}/new")).await.unwrap();
    browser
        .type_into("#subject", "Calendar sync stops with E1234")
        .await
        .unwrap();
    browser
        .type_into("#steps", "1. Open Settings.")
        .await
        .unwrap();
    let title = text_of(&browser, "#escalation-gate-title").await;
    assert_eq!(title, "As it stands, this would be a bad escalation.");
    let articles = text_of(&browser, "#escalation-gate-articles").await;
    assert!(articles.contains(SCRIPT), "shown as text: {articles}");
    let problems = text_of(&browser, "#escalation-gate-problems").await;
    assert_eq!(problems, format!("product_version: is missing {SCRIPT}"));
    assert_eq!(
        browser
            .execute("return document.querySelectorAll('#escalation-gate-check img, #escalation-gate-check script').length + (window.pwned || 0)")
            .await
            .unwrap(),
        json!(0)
    );
    let sent = received.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["subject"], "Calendar sync stops with E1234");
    assert_eq!(sent["fields"]["steps"], "1. Open Settings.");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_freshdesk_sidebar_shows_verdicts_and_checks_tickets() {
    let valid = valid_connector(
        &crate::fakes::freshdesk::FakeFreshdesk::start(crate::freshdesk::desk()).await,
    );
    let ValidHelpdesk::Freshdesk(cfg) = &valid.helpdesk else {
        panic!("a Freshdesk connector")
    };
    let url = reqwest::Url::parse(SERVICE).unwrap();
    let mut files: HashMap<String, Vec<u8>> =
        escalation_gate::helpdesk::freshdesk::app::files(CONNECTOR, &url, cfg)
            .into_iter()
            .collect();
    let requests: Value = serde_json::from_slice(&files["config/requests.json"]).unwrap();
    assert_eq!(requests["precheck"]["schema"]["host"], "gate.example.com");
    assert_eq!(
        requests["precheck"]["schema"]["path"],
        format!("/precheck/{CONNECTOR}")
    );
    assert_eq!(
        requests["precheck"]["schema"]["headers"]["Authorization"],
        "Bearer <%= iparam.precheck_secret %>"
    );
    let iparams: Value = serde_json::from_slice(&files["config/iparams.json"]).unwrap();
    assert_eq!(iparams["precheck_secret"]["secure"], true);
    with_stub(
        &mut files,
        "app/index.html",
        escalation_gate::helpdesk::freshdesk::app::APP_CLIENT,
        "freshworks_stub.js",
    );
    let (base, served) = serve(files, "__FW_SCENARIO").await;
    let page = format!("{base}/app/index.html");
    let browser = Browser::required().await;
    let ticket = |tags: &[&str]| {
        json!({
            "id": 7, "subject": format!("Calendar sync stops {SCRIPT}"),
            "description_text": "Calendar sync stopped with error E1234.",
            "tags": tags,
            "custom_fields": {"cf_steps_to_reproduce": format!("1. Open Settings. {SCRIPT}"), "cf_environment": null}
        })
    };

    open(&browser, &page, &served, json!({
        "ticket": ticket(&["escalation_bad", "escalation_missing_handoff", "escalation_missing_environment"]),
        "answer": {"status": 200, "body": {}},
    }))
    .await;
    assert_eq!(
        text_of(&browser, "#verdict-title").await,
        "Verdict: BAD escalation"
    );
    let reasons = text_of(&browser, "#verdict-reasons").await;
    assert!(
        reasons.contains("Hand-off field failing: environment"),
        "{reasons}"
    );

    open(
        &browser,
        &page,
        &served,
        json!({
            "ticket": ticket(&["partner_escalated"]),
            "answer": {"status": 200, "body": {
                "outcome": "bad",
                "handoff": [{"field": "environment", "message": format!("is empty {SCRIPT}")}],
                "articles": []
            }},
        }),
    )
    .await;
    browser.click("#run-check").await.unwrap();
    assert_eq!(
        text_of(&browser, "#check-title").await,
        "This escalation would be: BAD escalation"
    );
    assert!(text_of(&browser, "#check-problems").await.contains(SCRIPT));
    let log = browser.execute("return window.__fw").await.unwrap();
    assert_eq!(
        log["interface"],
        json!([["setValue", {"id": "cf_escalation_check", "value": "bad"}]]),
        "what the check said is set in the ticket's precheck field"
    );
    assert_eq!(log["requests"][0][0], "precheck");
    let body: Value =
        serde_json::from_str(log["requests"][0][1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["subject"], format!("Calendar sync stops {SCRIPT}"));
    assert_eq!(
        body["fields"]["steps_to_reproduce"],
        format!("1. Open Settings. {SCRIPT}")
    );
    assert_eq!(
        browser.execute("return document.querySelectorAll('#app script, #app img').length + (window.pwned || 0)").await.unwrap(),
        json!(0)
    );

    open(
        &browser,
        &page,
        &served,
        json!({
            "ticket": ticket(&[]),
            "answer": {"status": 200, "body": {"outcome": "good", "handoff": [], "articles": []}},
        }),
    )
    .await;
    browser.click("#run-check").await.unwrap();
    assert_eq!(
        text_of(&browser, "#check-title").await,
        "This escalation would be: GOOD escalation"
    );

    // A check that lists an article; then, on a ticket saved after such a check, one that lists
    // none: the article once shown stays recorded.
    let article = json!({"title": "Calendar sync E1234", "url": "https://acme.freshdesk.com/a/1", "passage": "Reconnect."});
    let mut saved = ticket(&[]);
    saved["custom_fields"]["cf_escalation_check"] = json!("review+article");
    for (ticket, answer, recorded) in [
        (
            ticket(&[]),
            json!({"outcome": "review", "handoff": [], "articles": [article]}),
            "review+article",
        ),
        (
            saved,
            json!({"outcome": "good", "handoff": [], "articles": []}),
            "good+article",
        ),
    ] {
        open(
            &browser,
            &page,
            &served,
            json!({"ticket": ticket, "answer": {"status": 200, "body": answer}}),
        )
        .await;
        browser.click("#run-check").await.unwrap();
        text_of(&browser, "#check-title").await;
        let log = browser.execute("return window.__fw").await.unwrap();
        assert_eq!(
            log["interface"],
            json!([["setValue", {"id": "cf_escalation_check", "value": recorded}]])
        );
    }
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_snippet_records_the_check_on_the_form_and_tells_of_a_draft_abandoned() {
    // The form holds the connector's precheck field, as Guide wraps a field.
    let (listener, base, page) = guide_page(&format!(
        r#"<div class="form-field string optional" id="precheck-wrapper">
<input name="request[custom_fields][{PRECHECK_FIELD}]" id="precheck">
</div>
<button type="submit" id="send">Submit</button>"#
    ))
    .await;
    let beacons: Arc<Mutex<Vec<String>>> = Arc::default();
    // The stand-in check lists an article for the calendar case only.
    let check = |axum::Json(draft): axum::Json<Value>| async move {
        let calendar = draft["subject"].as_str().unwrap_or("").contains("E1234");
        axum::Json(if calendar {
            json!({"outcome": "bad", "handoff": [], "articles": [
                {"title": "Calendar sync E1234", "url": "https://help.example.com/hc/articles/1", "passage": "Reconnect."}
            ]})
        } else {
            json!({"outcome": "good", "handoff": [], "articles": []})
        })
    };
    let app = axum::Router::new()
        .route(
            "/new",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        )
        .route(
            "/elsewhere",
            axum::routing::get(|| async { axum::response::Html("<p>elsewhere</p>") }),
        )
        .route("/precheck/{connector}", axum::routing::post(check))
        .route(
            "/precheck/{connector}/abandoned",
            axum::routing::post({
                let beacons = Arc::clone(&beacons);
                move |body: String| async move {
                    beacons.lock().unwrap().push(body);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let beacons_after = |n: usize| {
        let beacons = Arc::clone(&beacons);
        async move {
            for _ in 0..40 {
                if beacons.lock().unwrap().len() >= n {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            beacons.lock().unwrap().clone()
        }
    };
    let browser = Browser::required().await;
    let value_of = |css: &str| format!("return document.querySelector('{css}').value");

    // An article shown, the page left unsent: the field holds the outcome and the article, and
    // the service is told once.
    browser.goto(&format!("{base}/new")).await.unwrap();
    assert_eq!(
        browser
            .execute("return document.getElementById('precheck-wrapper').hidden")
            .await
            .unwrap(),
        json!(true),
        "the partner does not fill the precheck field"
    );
    browser
        .type_into("#subject", "Calendar sync stops with E1234")
        .await
        .unwrap();
    text_of(&browser, "#escalation-gate-title").await;
    assert_eq!(
        browser.execute(&value_of("#precheck")).await.unwrap(),
        json!("bad+article")
    );
    browser.goto(&format!("{base}/elsewhere")).await.unwrap();
    let sent = beacons_after(1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let beacon: Value = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(beacon, json!({"articles": 1}));

    // An article shown, the form sent: nothing to tell.
    browser.goto(&format!("{base}/new")).await.unwrap();
    browser
        .type_into("#subject", "Calendar sync stops with E1234")
        .await
        .unwrap();
    text_of(&browser, "#escalation-gate-title").await;
    browser.click("#send").await.unwrap();

    // No article shown, the page left: the field holds the outcome alone, nothing to tell.
    browser.goto(&format!("{base}/new")).await.unwrap();
    browser
        .type_into("#subject", "Invoice export stops at 80 percent")
        .await
        .unwrap();
    assert_eq!(
        text_of(&browser, "#escalation-gate-title").await,
        "As it stands, this would be a good escalation."
    );
    assert_eq!(
        browser.execute(&value_of("#precheck")).await.unwrap(),
        json!("good")
    );
    browser.goto(&format!("{base}/elsewhere")).await.unwrap();
    let sent = beacons_after(2).await;
    assert_eq!(
        sent.len(),
        1,
        "only the draft left unsent after an article: {sent:?}"
    );
    browser.quit().await;
}
