//! The fake Zendesk (`escalation_gate::helpdesk::zendesk::sandbox`), and the test connector that
//! points at it: hand-off rules on two fields, the Help Center as knowledge base, a partner
//! organization and its requester.

pub use escalation_gate::helpdesk::zendesk::sandbox::*;

use std::path::Path;

use escalation_gate::helpdesk::zendesk::webhook;
use serde_json::{Value, json};

use crate::helpers::{FakeHelpdesk, HookCall, Options, PARTNER, TestApp, now_stamp};

pub const SECRET: &str = "test-signing-secret-7d41c9e2b08f5a36";
/// The signing secret being rotated out, still listed.
pub const RETIRED_SECRET: &str = "retired-signing-secret-3f9a0c72e1b4";
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
/// The text field the Guide snippet records the check before escalating in.
pub const PRECHECK_FIELD: u64 = 1010;

/// The test connector's API token credentials (`[helpdesk.auth]`).
pub const API_TOKEN_AUTH: &str =
    "kind = \"api_token\"\nemail = \"${ZD_EMAIL}\"\ntoken = \"${ZD_TOKEN}\"\n";

/// A fake Zendesk with the test connector's partner organization and requester.
pub async fn zendesk() -> FakeZendesk {
    let zd = FakeZendesk::start().await;
    seed_directory(&zd);
    zd
}

impl FakeHelpdesk for FakeZendesk {
    fn connector_toml(&self, opts: &Options) -> String {
        connector_with_fields(
            opts.auth_toml.as_deref().unwrap_or(API_TOKEN_AUTH),
            opts.kb_backend,
            &opts.fields_toml,
            &opts.extra_toml,
        )
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        zendesk_vars(self)
    }

    fn good_ticket(&self) -> String {
        self.put_ticket(ticket(
            GOOD_TICKET,
            "Export to PDF stops at 80%",
            "The export job stops with error LX-5521 for invoices of 600 lines.",
            &complete_handoff(),
        ));
        GOOD_TICKET.to_string()
    }

    fn escalation(&self, id: &str) -> HookCall {
        signed_call(SECRET, id)
    }

    fn forged_escalation(&self, id: &str) -> HookCall {
        signed_call("not-the-connector-secret-5b2e91c7d4a0", id)
    }

    fn verdict_notes(&self, id: &str) -> usize {
        let id: u64 = id.parse().expect("a Zendesk ticket id");
        self.comments(id)
            .iter()
            .filter(|c| c["public"] == json!(false))
            .count()
    }

    fn survey_fields_toml(&self) -> String {
        // The test connector maps the survey's fields already.
        String::new()
    }

    fn solved_ticket(&self) -> String {
        self.put_ticket(solved_case(SOLVED_TICKET, "Calendar sync stopped"));
        SOLVED_TICKET.to_string()
    }

    fn solved(&self, id: &str) -> HookCall {
        signed_body(
            SECRET,
            format!(r#"{{"ticket_id": "{id}", "event": "solved"}}"#),
        )
    }

    fn fail_reads(&self, id: &str) {
        // The test connector tries a call 1 + 3 times.
        self.fail_next(
            &format!("GET /api/v2/tickets/{id}"),
            vec![Failure::Status(500); 4],
        );
    }
}

/// A partner case, escalated and judged, now solved.
pub fn solved_case(id: u64, subject: &str) -> Value {
    let mut t = ticket(
        id,
        subject,
        "The calendar stopped syncing.",
        &complete_handoff(),
    );
    t["status"] = json!("solved");
    t["tags"] = json!([
        "partner_escalation",
        "escalation_good",
        "csat_blind_pending"
    ]);
    t
}

/// The tickets [`FakeHelpdesk::good_ticket`] and [`FakeHelpdesk::solved_ticket`] put on the
/// fake.
const GOOD_TICKET: u64 = 701;
const SOLVED_TICKET: u64 = 702;

/// The trigger's webhook for ticket `id`, signed now with `secret`.
fn signed_call(secret: &str, id: &str) -> HookCall {
    signed_body(
        secret,
        format!(r#"{{"ticket_id": "{id}", "event": "escalated"}}"#),
    )
}

/// A trigger's webhook `body`, signed now with `secret`.
fn signed_body(secret: &str, body: String) -> HookCall {
    let body = body.into_bytes();
    let stamp = now_stamp();
    let signature = webhook::sign(secret, &stamp, &body);
    HookCall {
        query: String::new(),
        body,
        headers: vec![
            (webhook::TIMESTAMP.to_string(), stamp),
            (webhook::SIGNATURE.to_string(), signature),
        ],
    }
}

/// The test connector: hand-off rules on two fields, the Help Center as knowledge base.
pub fn connector_toml(auth: &str, kb_backend: &str, extra: &str) -> String {
    connector_with_fields(auth, kb_backend, "", extra)
}

/// [`connector_toml`] with more `[helpdesk.fields]` lines.
fn connector_with_fields(auth: &str, kb_backend: &str, fields: &str, extra: &str) -> String {
    format!(
        r#"
[helpdesk]
type = "zendesk"
base_url = "${{ZD_URL}}"
signing_secrets = ["${{ZD_OLD_SECRET}}", "${{ZD_SECRET}}"]
product_field = "product"
tried_articles_field = "tried_articles"
precheck_field = "{PRECHECK_FIELD}"

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
{fields}

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

/// A partner's escalation of the calendar-sync case (error E1234 after a password change);
/// `fields` as in [`ticket`].
pub fn calendar_ticket(id: u64, fields: &[(u64, &str)]) -> Value {
    ticket(
        id,
        "Calendar sync stops with error E1234 after password change",
        "Calendar sync stopped this morning; the sync log shows error E1234 authorization \
         expired. The user changed the mailbox password yesterday.",
        fields,
    )
}

/// The article that answers the calendar-sync case when `code` is `E1234`.
pub fn calendar_article(id: u64, code: &str, created_at: &str) -> Value {
    article(
        id,
        &format!("Calendar sync stops with error {code} after a password change"),
        &format!(
            "Calendar sync stops and the sync log shows error {code} authorization expired \
             after the user changed the mailbox password. Open Settings, Integrations, \
             Calendar, then disconnect and connect the calendar again."
        ),
        created_at,
    )
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

impl TestApp<FakeZendesk> {
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
        self.post_to(&self.connector, body.to_string().into_bytes(), headers)
            .await
    }
    /// Internal notes on a ticket.
    pub fn notes(&self, ticket: u64) -> Vec<String> {
        self.fake
            .comments(ticket)
            .into_iter()
            .filter(|c| c["public"] == json!(false))
            .map(|c| c["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }
    pub fn tags(&self, ticket: u64) -> Vec<String> {
        self.fake.ticket(ticket)["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }
}

/// A connectors folder holding `text` as the test connector's file (`acme.toml`).
pub fn connectors_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path()
            .join(format!("{}.toml", crate::helpers::CONNECTOR)),
        text,
    )
    .unwrap();
    dir
}

/// A command's arguments for the test connector's first quarter of 2026.
pub const FIRST_QUARTER: [&str; 6] = [
    "--connector",
    "acme",
    "--from",
    "2026-01-01",
    "--to",
    "2026-03-31",
];

/// The longest a command may run in a test before it is stopped: only a guard against a run
/// that waits for minutes.
const COMMAND_GUARD: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `escalation-gate {command} {args} --connectors {dir}` with the fake Zendesk's variables;
/// a run still going after [`COMMAND_GUARD`] is killed and fails the test.
pub async fn run_command(
    command: &str,
    args: &[&str],
    dir: &Path,
    zendesk: &FakeZendesk,
) -> std::process::Output {
    run_command_with(command, args, dir, zendesk_vars(zendesk)).await
}

/// [`run_command`] with the variables `vars`.
pub async fn run_command_with(
    command: &str,
    args: &[&str],
    dir: &Path,
    vars: Vec<(&'static str, String)>,
) -> std::process::Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_escalation-gate"));
    c.arg(command)
        .args(args)
        .arg("--connectors")
        .arg(dir)
        .envs(vars)
        .kill_on_drop(true);
    tokio::time::timeout(COMMAND_GUARD, c.output())
        .await
        .unwrap_or_else(|_| panic!("`{command}` still runs after {COMMAND_GUARD:?}"))
        .unwrap()
}
