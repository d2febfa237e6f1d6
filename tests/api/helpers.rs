//! `spawn_app(fake)`: the real service on 127.0.0.1:0 against a fake helpdesk, with a connector
//! of its own, and request helpers. The harness names no helpdesk: each fake says how the test
//! connector that points at it looks ([`FakeHelpdesk`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use escalation_gate::helpdesk::Helpdesk;
use escalation_gate::runtime::connector::{Connector, Runtime};
use escalation_gate::server::ServerSettings;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The connector id of tests that write a connector file and run a command on it.
pub const CONNECTOR: &str = "acme";
pub const PARTNER: &str = "Acme IT Services";

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

/// A fake helpdesk the harness can serve a test connector against.
pub trait FakeHelpdesk: Send + Sync + 'static {
    /// The test connector file pointing at this fake: its `[helpdesk]` table (with
    /// `opts.auth_toml`, else the fake's usual credentials, and `opts.fields_toml` added to
    /// `[helpdesk.fields]`), its hand-off rules and its knowledge base (`opts.kb_backend`), then
    /// `opts.extra_toml`.
    fn connector_toml(&self, opts: &Options) -> String;

    /// The values of the file's `${VAR}` references.
    fn vars(&self) -> Vec<(&'static str, String)>;

    // What the shared behaviour suite (`behaviour.rs`) asks of every helpdesk.

    /// A ticket on the fake whose hand-off is complete and that no article answers (a good
    /// escalation); its id.
    fn good_ticket(&self) -> String;

    /// The call the helpdesk makes when ticket `id` is escalated, authenticated as the test
    /// connector expects, in a form that takes JSON answers.
    fn escalation(&self, id: &str) -> HookCall;

    /// The same call with a wrong signature or secret.
    fn forged_escalation(&self, id: &str) -> HookCall;

    /// How many verdict notes (internal notes, case comments) ticket `id` carries.
    fn verdict_notes(&self, id: &str) -> usize;

    /// `[helpdesk.fields]` lines the blind survey needs on this helpdesk beyond the test
    /// connector's own (its score and end-customer fields).
    fn survey_fields_toml(&self) -> String;

    /// A ticket judged good and now solved, its end customer reachable by e-mail: ready for the
    /// blind survey; its id.
    fn solved_ticket(&self) -> String;

    /// The call the helpdesk makes when ticket `id` is solved, in a form that takes JSON
    /// answers.
    fn solved(&self, id: &str) -> HookCall;

    /// Makes the reads of ticket `id` fail (a 5xx from the helpdesk) for as long as one
    /// delivery keeps retrying them; the next delivery reads it.
    fn fail_reads(&self, id: &str);

    /// Whether the helpdesk signs each call's body, so that the same headers on another body
    /// are refused. A helpdesk that sends a shared secret instead (Freshdesk) signs none.
    fn signs_body(&self) -> bool {
        true
    }
}

/// A call to the service's webhook: `query` (e.g. `?token=...`, or empty), body and headers.
pub struct HookCall {
    pub query: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

pub struct TestApp<F> {
    /// This test's connector: an id of its own, so the metrics it reads are its own.
    pub connector: String,
    pub address: String,
    /// `{address}/hooks/{connector}`.
    pub url: String,
    /// `GET /metrics` on the service's metrics listener.
    pub metrics_url: String,
    pub fake: F,
    /// The connector's helpdesk roles, as the service runs them.
    pub helpdesk: Helpdesk,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// How a test wants its service.
pub struct Options {
    /// Appended to the connector file (TOML).
    pub extra_toml: String,
    /// The `[helpdesk.auth]` table's lines; `None`: the fake's usual credentials.
    pub auth_toml: Option<String>,
    /// More `[helpdesk.fields]` lines.
    pub fields_toml: String,
    pub settings: ServerSettings,
    /// More environment variables for `${VAR}` references in `extra_toml`. `APP_URL` (the
    /// service's own address) is always set.
    pub vars: Vec<(&'static str, String)>,
    /// `knowledge_base.backend` (default `helpdesk`: the fake's own articles).
    pub kb_backend: &'static str,
    /// The judge pool and where embedded indexes are kept (default: the shared pool, in memory).
    pub runtime: Runtime,
    /// The connector's id; `None` (the default): one no other test uses. A test that starts
    /// the service again on the same persisted index gives one.
    pub connector: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            extra_toml: String::new(),
            auth_toml: None,
            fields_toml: String::new(),
            settings: ServerSettings {
                max_body_bytes: 16 * 1024,
                request_timeout: Duration::from_secs(20),
                ..ServerSettings::default()
            },
            vars: Vec::new(),
            kb_backend: "helpdesk",
            runtime: Runtime::default(),
            connector: None,
        }
    }
}

pub async fn spawn_app<F: FakeHelpdesk>(fake: F) -> TestApp<F> {
    spawn_with(fake, Options::default()).await
}

/// A connector id no other test of this run uses (`acme-1`, `acme-2`, ...).
fn connector_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    format!("{CONNECTOR}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The test connector `id` for `fake` as `opts` describe it, built but not served (for the
/// commands that read the helpdesk themselves: report, calibrate, backfill). The file's
/// variables are the fake's, then `opts.vars`.
/// A loopback address nothing listens on: bound, then closed.
pub fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub fn build_connector<F: FakeHelpdesk>(fake: &F, id: &str, opts: &Options) -> Connector {
    let mut vars: HashMap<&str, String> = fake.vars().into_iter().collect();
    vars.extend(opts.vars.iter().cloned());
    let env = |name: &str| vars.get(name).cloned();
    let text = fake.connector_toml(opts);
    let valid = escalation_gate::config::parse(id, &text, Path::new("connectors"), &env)
        .unwrap_or_else(|e| panic!("test connector is invalid: {e:?}"));
    Connector::build_with(valid, &opts.runtime).expect("connector builds")
}

pub async fn spawn_with<F: FakeHelpdesk>(fake: F, mut opts: Options) -> TestApp<F> {
    init_logs();
    let connector = opts.connector.clone().unwrap_or_else(connector_id);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    opts.vars.insert(0, ("APP_URL", address.clone()));
    let built = build_connector(&fake, &connector, &opts);
    let helpdesk = built.helpdesk.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", metrics.local_addr().unwrap());
    let server = tokio::spawn(escalation_gate::run_with_metrics(
        vec![built],
        opts.settings,
        listener,
        Some(metrics),
        async {
            let _ = rx.await;
        },
    ));
    let app = TestApp {
        url: format!("{address}/hooks/{connector}"),
        connector,
        address,
        metrics_url,
        fake,
        helpdesk,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
    };
    app.wait_ready().await;
    app
}

pub fn now_stamp() -> String {
    stamp(Utc::now())
}

/// An instant as the helpdesks write it: RFC 3339, whole seconds, `Z`.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One step of a 64-bit linear congruential generator (Knuth's MMIX constants): repeatable
/// pseudo-random test data from a seed.
pub fn lcg(x: u64) -> u64 {
    x.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
}

impl<F> TestApp<F> {
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

    /// Sends `call` to this test's connector.
    pub async fn send(&self, call: HookCall) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{}", self.url, call.query))
            .header("content-type", "application/json")
            .body(call.body);
        for (k, v) in &call.headers {
            req = req.header(k, v);
        }
        req.send().await.expect("request reaches the service")
    }

    /// `connector="{id}"`, the label of this test's connector in metrics.
    pub fn label(&self) -> String {
        format!("connector=\"{}\"", self.connector)
    }
}

// Survey helpers, shared by every helpdesk's survey tests.

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

/// The value of the first series of `name` with all `labels`; `None` when there is none (a
/// counter never incremented has no series: that is not a zero).
pub fn metric_value(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metric_line(metrics, name, labels)
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
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

/// The `[survey]` table of the test connectors (every helpdesk alike): partner
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

/// An article of the demo knowledge base (`connectors/demo/articles`), for the fakes' own
/// knowledge bases.
pub struct DemoArticle {
    /// The number of its id (`kb-1001` and its translation `kb-1001-de`: `1001`).
    pub number: u64,
    pub title: String,
    /// `url` from its front matter.
    pub url: String,
    /// `en-us`, `de`, ...
    pub locale: String,
    /// `YYYY-MM-DD`.
    pub published: String,
    pub draft: bool,
    /// Markdown.
    pub body: String,
}

impl DemoArticle {
    /// The body as HTML paragraphs.
    pub fn html(&self) -> String {
        self.body
            .split("\n\n")
            .map(|p| format!("<p>{}</p>", p.replace('&', "&amp;").replace('<', "&lt;")))
            .collect()
    }
}

/// Every article of the demo knowledge base.
pub fn demo_articles() -> Vec<DemoArticle> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("connectors/demo/articles").unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let (front, body) = text
            .trim_start_matches("---\n")
            .split_once("\n---\n")
            .unwrap();
        let meta: HashMap<&str, &str> = front.lines().filter_map(|l| l.split_once(": ")).collect();
        out.push(DemoArticle {
            number: meta["id"][3..7].parse().unwrap(),
            title: meta["title"].trim_matches('"').to_string(),
            url: meta["url"].to_string(),
            locale: meta["locale"].to_string(),
            published: meta["published"].to_string(),
            draft: meta.get("draft") == Some(&"true"),
            body: body.to_string(),
        });
    }
    out
}
