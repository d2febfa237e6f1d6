//! `spawn_app`: the real service on 127.0.0.1:0 against a fake Zendesk, with request helpers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use escalation_gate::connector::{Connector, Runtime};
use escalation_gate::helpdesk::zendesk::webhook;
use escalation_gate::server::ServerSettings;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fake_zendesk::FakeZendesk;

pub const SECRET: &str = "test-signing-secret-7d41c9e2b08f5a36";
/// The signing secret being rotated out, still listed.
pub const RETIRED_SECRET: &str = "retired-signing-secret-3f9a0c72e1b4";
pub const CONNECTOR: &str = "acme";
pub const PARTNER: &str = "Acme IT Services";
pub const ORG_ID: u64 = 501;
pub const REQUESTER_ID: u64 = 9001;

/// Custom field ids of the test connector.
pub const STEPS: u64 = 1001;
pub const ENVIRONMENT: u64 = 1002;
pub const PRODUCT: u64 = 1003;
pub const TRIED: u64 = 1004;
/// Survey fields of the test connector (mapped for every test; only survey tests use them).
pub const END_CUSTOMER: u64 = 1005;
pub const CSAT: u64 = 1006;
pub const CES: u64 = 1007;
pub const ABOUT: u64 = 1008;
pub const COMMENT: u64 = 1009;

/// Logs are silent unless `TEST_LOG=1`.
fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
            tracing_subscriber::fmt()
                .with_env_filter("info,escalation_gate=debug")
                .with_test_writer()
                .init();
        }
    });
}

pub struct TestApp {
    pub address: String,
    /// `GET /metrics` on the service's metrics listener.
    pub metrics_url: String,
    pub zendesk: FakeZendesk,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// How a test wants its service.
pub struct Options {
    /// Appended to the connector file (TOML).
    pub extra_toml: String,
    /// `[helpdesk.auth]` table.
    pub auth_toml: String,
    pub settings: ServerSettings,
    /// More environment variables for `${VAR}` references in `extra_toml`. `APP_URL` (the
    /// service's own address) is always set.
    pub vars: Vec<(&'static str, String)>,
    /// Tickets on the fake Zendesk before the service starts.
    pub tickets: Vec<Value>,
    /// `knowledge_base.backend` (default `helpdesk`: the fake's Help Center).
    pub kb_backend: &'static str,
    /// The judge pool and where embedded indexes are kept (default: the shared pool, in memory).
    pub runtime: Runtime,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            extra_toml: String::new(),
            auth_toml: "kind = \"api_token\"\nemail = \"${ZD_EMAIL}\"\ntoken = \"${ZD_TOKEN}\"\n"
                .into(),
            settings: ServerSettings {
                max_body_bytes: 16 * 1024,
                request_timeout: Duration::from_secs(20),
                ..ServerSettings::default()
            },
            vars: Vec::new(),
            tickets: Vec::new(),
            kb_backend: "helpdesk",
            runtime: Runtime::default(),
        }
    }
}

/// The test connector: hand-off rules on two fields, the Help Center as knowledge base.
pub fn connector_toml(auth: &str, kb_backend: &str, extra: &str) -> String {
    format!(
        r#"
[helpdesk]
type = "zendesk"
base_url = "${{ZD_URL}}"
signing_secrets = ["${{ZD_OLD_SECRET}}", "${{ZD_SECRET}}"]
product_field = "product"
tried_articles_field = "tried_articles"

[helpdesk.auth]
{auth}
[helpdesk.http]
timeout_secs = 2
max_retries = 3
max_retry_wait_secs = 3

[helpdesk.fields]
{STEPS} = "steps"
{ENVIRONMENT} = "environment"
{PRODUCT} = "product"
{TRIED} = "tried_articles"
{END_CUSTOMER} = "end_customer_email"
{CSAT} = "csat_score"
{CES} = "ces_score"
{ABOUT} = "csat_about"
{COMMENT} = "csat_comment"

[[handoff.rules]]
field = "steps"
rule = "min_length"
min = 20

[[handoff.rules]]
field = "environment"
rule = "present"

[metrics]
partners = ["{PARTNER}"]

[knowledge_base]
backend = "{kb_backend}"
{extra}
"#
    )
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    init_logs();
    let zendesk = FakeZendesk::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let mut vars: HashMap<&str, String> = zendesk_vars(&zendesk).into_iter().collect();
    vars.insert("APP_URL", address.clone());
    vars.extend(opts.vars.iter().cloned());
    let env = |name: &str| vars.get(name).cloned();
    let text = connector_toml(&opts.auth_toml, opts.kb_backend, &opts.extra_toml);
    let valid = escalation_gate::config::parse(CONNECTOR, &text, Path::new("."), &env)
        .unwrap_or_else(|e| panic!("test connector is invalid: {e:?}"));
    let connector = Connector::build_with(valid, &opts.runtime).expect("connector builds");
    seed_directory(&zendesk);
    for t in opts.tickets {
        zendesk.put_ticket(t);
    }
    let (tx, rx) = oneshot::channel::<()>();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", metrics.local_addr().unwrap());
    let server = tokio::spawn(escalation_gate::run_with_metrics(
        vec![connector],
        opts.settings,
        listener,
        Some(metrics),
        async {
            let _ = rx.await;
        },
    ));
    let app = TestApp {
        address,
        metrics_url,
        zendesk,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
    };
    app.wait_ready().await;
    app
}

/// The variables the test connector file references for `zendesk`: its URL, credentials and
/// the webhook signing secrets.
pub fn zendesk_vars(zendesk: &FakeZendesk) -> Vec<(&'static str, String)> {
    let (email, token) = zendesk.api_token();
    vec![
        ("ZD_URL", zendesk.url()),
        ("ZD_EMAIL", email.to_string()),
        ("ZD_TOKEN", token.to_string()),
        ("ZD_BEARER", zendesk.bearer_token().to_string()),
        ("ZD_SECRET", SECRET.to_string()),
        ("ZD_OLD_SECRET", RETIRED_SECRET.to_string()),
    ]
}

pub fn seed_directory(zd: &FakeZendesk) {
    zd.put_organization(json!({"id": ORG_ID, "name": PARTNER}));
    zd.put_user(json!({
        "id": REQUESTER_ID, "name": "Dana Reyes", "email": "dana@customer.example", "locale": "en-US",
        "organization_id": ORG_ID
    }));
}

/// A ticket as a partner escalates it; `fields` are (custom field id, value).
pub fn ticket(id: u64, subject: &str, description: &str, fields: &[(u64, &str)]) -> Value {
    json!({
        "id": id,
        "subject": subject,
        "description": description,
        "status": "open",
        "tags": ["partner_escalation"],
        "requester_id": REQUESTER_ID,
        "organization_id": ORG_ID,
        "created_at": "2024-05-02T08:00:00Z",
        "updated_at": "2024-05-02T09:00:00Z",
        "via": {"channel": "email"},
        "custom_fields": fields.iter().map(|(id, v)| json!({"id": id, "value": v})).collect::<Vec<_>>(),
        "comments": [],
    })
}

/// Hand-off fields that meet the test connector's rules.
pub fn complete_handoff() -> Vec<(u64, &'static str)> {
    vec![
        (
            STEPS,
            "1. Open Settings > Calendar. 2. Press Sync. 3. See the error.",
        ),
        (ENVIRONMENT, "Cloud, EU region, Chrome 124"),
        (PRODUCT, "Ledgerly Calendar"),
    ]
}

/// A Help Center article published at `created_at`.
pub fn article(id: u64, title: &str, body: &str, created_at: &str) -> Value {
    json!({
        "id": id,
        "title": title,
        "body": format!("<p>{body}</p>"),
        "html_url": format!("https://acme.zendesk.com/hc/en-us/articles/{id}-{}", title.replace(' ', "-")),
        "url": format!("https://acme.zendesk.com/api/v2/help_center/en-us/articles/{id}.json"),
        "locale": "en-us",
        "draft": false,
        "created_at": created_at,
        "edited_at": created_at,
        "updated_at": created_at,
        "section_id": 1,
        "label_names": [],
    })
}

pub fn now_stamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl TestApp {
    /// POSTs a body signed with the test secret at `timestamp`.
    pub async fn post_signed_at(&self, body: &str, timestamp: &str) -> reqwest::Response {
        let sig = webhook::sign(SECRET, timestamp, body.as_bytes());
        self.post_raw(
            body,
            &[(webhook::TIMESTAMP, timestamp), (webhook::SIGNATURE, &sig)],
        )
        .await
    }

    pub async fn post_signed(&self, body: &str) -> reqwest::Response {
        self.post_signed_at(body, &now_stamp()).await
    }

    /// The trigger's body for a ticket, signed now.
    pub async fn escalate(&self, ticket_id: u64) -> reqwest::Response {
        self.post_signed(&format!(
            r#"{{"ticket_id": "{ticket_id}", "event": "escalated"}}"#
        ))
        .await
    }

    pub async fn post_raw(&self, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.post_to(CONNECTOR, body.to_string().into_bytes(), headers)
            .await
    }

    pub async fn post_to(
        &self,
        connector: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/hooks/{connector}", self.address))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request reaches the service")
    }

    /// Waits until `/healthz` says every connector can judge (an embedded index is built in
    /// the background).
    pub async fn wait_ready(&self) {
        for _ in 0..3000 {
            if self.get("/healthz").await.status() == reqwest::StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the service did not become ready");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request reaches the service")
    }

    /// Internal notes on a ticket.
    pub fn notes(&self, ticket: u64) -> Vec<String> {
        self.zendesk
            .comments(ticket)
            .into_iter()
            .filter(|c| c["public"] == json!(false))
            .map(|c| c["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn tags(&self, ticket: u64) -> Vec<String> {
        self.zendesk.ticket(ticket)["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    /// Stops the server the way SIGTERM does and waits until it has finished.
    pub async fn shut_down(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Starts shutting down without waiting; returns the server task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.take().expect("server still running")
    }
}

// Survey helpers, shared by the Zendesk and the Salesforce survey tests.

/// The test connector's minimum time on the answer page.
pub const MIN_ON_PAGE: Duration = Duration::from_millis(1100);

pub fn email_delivery(port: u16) -> String {
    format!(
        "kind = \"email\"\nfrom = \"Ledgerly Support <survey@ledgerly.example>\"\n\
         smtp_host = \"127.0.0.1\"\nsmtp_port = {port}\ntls = \"none\"\ntimeout_secs = 5\n"
    )
}

/// Polls `done` every 10 ms until it holds or `within` runs out; says whether it held.
pub async fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    while !done() {
        if std::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// The body of a GET, as text.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

pub async fn survey_of(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["results"][0]["survey"].as_str().unwrap().to_string()
}

/// The value of `name="{field}" value="..."` in a page.
pub fn hidden(page: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {field} in {page}"))
        + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

pub fn metric_line<'a>(metrics: &'a str, name: &str, labels: &[&str]) -> Option<&'a str> {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
}

pub fn metric_value(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metric_line(metrics, name, labels)
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The five rating links of a survey mail of `connector`.
pub fn rating_links_to(mail: &crate::smtp::Mail, connector: &str) -> Vec<String> {
    mail.html_links()
        .into_iter()
        .filter(|l| l.contains(&format!("/survey/{connector}/r?")))
        .collect()
}

/// Opens the page of a rating link and posts an answer from it (to the form's own URL) as a
/// person would, after the minimum time on the page.
pub async fn answer_at(
    client: &reqwest::Client,
    link: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let fields = filled_form(client, link, form).await;
    post_form(client, link, &fields).await
}

/// Opens the page of a rating link and returns the fields a person posts from it with `form`
/// filled in, after the minimum time on the page.
pub async fn filled_form(
    client: &reqwest::Client,
    link: &str,
    form: &[(&str, &str)],
) -> Vec<(String, String)> {
    let page = client.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let mut fields = vec![
        ("t".to_string(), hidden(&page, "t")),
        ("p".to_string(), hidden(&page, "p")),
        ("website".to_string(), String::new()),
    ];
    fields.extend(form.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    tokio::time::sleep(MIN_ON_PAGE).await;
    fields
}

/// POSTs answer fields to the form's own URL (the link without its query).
pub async fn post_form(
    client: &reqwest::Client,
    link: &str,
    fields: &[(String, String)],
) -> reqwest::Response {
    let post_to = link.split('?').next().unwrap();
    client.post(post_to).form(fields).send().await.unwrap()
}

/// The `[survey]` table of the test connectors (Zendesk and Salesforce alike): partner
/// `Acme IT Services` with its domain, links signed with `SURVEY_KEY` (and `SURVEY_OLD_KEY`, being
/// rotated out), and the given delivery and sink tables.
pub fn survey_toml(delivery: &str, sink: &str) -> String {
    format!(
        r#"
[survey]
public_url = "${{APP_URL}}"
link_secrets = ["${{SURVEY_KEY}}", "${{SURVEY_OLD_KEY}}"]
company = "Ledgerly"
partners = ["{PARTNER}"]
throttle_days = 30
min_seconds_on_page = 1
end_customer_field = "end_customer_email"

[survey.partner_domains]
"{PARTNER}" = ["acme-it.example"]

[survey.delivery]
{delivery}

[survey.sink]
{sink}
"#
    )
}

/// The ticket sink: the answer as an internal note and three mapped fields.
pub const TICKET_SINK: &str = "kind = \"ticket\"\ncsat_field = \"csat_score\"\nces_field = \"ces_score\"\nabout_field = \"csat_about\"\n";

/// Runs `escalation-gate {command} {args} --connectors {dir}` with the fake Zendesk's variables,
/// off the runtime that serves the fake (the child blocks while the fake answers it).
pub async fn run_command(
    command: &str,
    args: &[&str],
    dir: &Path,
    zendesk: &FakeZendesk,
) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_escalation-gate"));
    c.arg(command)
        .args(args)
        .arg("--connectors")
        .arg(dir)
        .envs(zendesk_vars(zendesk));
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}
