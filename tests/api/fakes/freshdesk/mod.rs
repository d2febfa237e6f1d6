//! The fake Freshdesk (`escalation_gate::helpdesk::freshdesk::sandbox`), and the test connector
//! that points at it: the automation rule's shared secret in a custom header, hand-off rules on two
//! fields, Freshdesk Solutions as knowledge base, and the rule's calls as request helpers.

pub use escalation_gate::helpdesk::freshdesk::sandbox::*;

use serde_json::{Value, json};

use crate::helpers::{FakeHelpdesk, HookCall, Options, TestApp};

pub const SECRET: &str = "fd-webhook-secret-3c9a71e05b2d48f6";
pub const HEADER: &str = "x-escalation-gate-secret";
/// The text field the sidebar app records the check before escalating in.
pub const PRECHECK_FIELD: &str = "cf_escalation_check";

/// The test connector; `fields` go into `[helpdesk.fields]`, `extra` at the end.
pub fn connector_toml(base: &str, fields: &str, extra: &str) -> String {
    format!(
        r#"
[helpdesk]
type = "freshdesk"
base_url = "{base}"
api_key = "${{FD_API_KEY}}"
webhook_secrets = ["${{FD_WEBHOOK_SECRET}}"]
product_field = "product"
precheck_field = "{PRECHECK_FIELD}"

[helpdesk.http]
max_retries = 2
max_retry_wait_secs = 2

[helpdesk.fields]
cf_steps_to_reproduce = "steps_to_reproduce"
cf_environment = "environment"
cf_product = "product"
cf_end_customer_email = "end_customer_email"
cf_csat_score = "csat_score"
cf_ces_score = "ces_score"
cf_csat_about = "csat_about"
{fields}
[[handoff.rules]]
field = "steps_to_reproduce"
rule = "min_length"
min = 40

[[handoff.rules]]
field = "environment"
rule = "present"

[metrics]
partners = ["Acme IT Services"]

[knowledge_base]
backend = "helpdesk"
default_locale = "en"
threshold = 0.85
{extra}
"#
    )
}

/// The values of the test connector's `${VAR}` references.
pub fn vars() -> Vec<(&'static str, String)> {
    vec![
        ("FD_API_KEY", API_KEY.to_string()),
        ("FD_WEBHOOK_SECRET", SECRET.to_string()),
    ]
}

impl FakeHelpdesk for FakeFreshdesk {
    /// Freshdesk connectors have no `[helpdesk.auth]` (the API key is in `[helpdesk]`), so
    /// `opts.auth_toml` does not apply.
    fn connector_toml(&self, opts: &Options) -> String {
        connector_toml(&self.base, &opts.fields_toml, &opts.extra_toml).replace(
            "backend = \"helpdesk\"",
            &format!("backend = \"{}\"", opts.kb_backend),
        )
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vars()
    }

    fn good_ticket(&self) -> String {
        let id = GOOD_TICKET;
        let t = crate::freshdesk::ticket(
            id,
            crate::salesforce::PDF_SUBJECT,
            crate::salesforce::PDF_TEXT,
            true,
        );
        self.lock().tickets.insert(id, t);
        id.to_string()
    }

    fn escalation(&self, id: &str) -> HookCall {
        rule_call(SECRET, id, "escalated")
    }

    fn forged_escalation(&self, id: &str) -> HookCall {
        rule_call("not-the-connector-secret-5b2e91c7d4a0", id, "escalated")
    }

    fn verdict_notes(&self, id: &str) -> usize {
        let id: u64 = id.parse().expect("a Freshdesk ticket id");
        self.notes_on(id).iter().filter(|n| n.private).count()
    }

    fn survey_fields_toml(&self) -> String {
        // The test connector maps the survey's fields already.
        String::new()
    }

    fn solved_ticket(&self) -> String {
        let id = SOLVED_TICKET;
        let mut t = crate::freshdesk::ticket(
            id,
            crate::salesforce::CALENDAR_SUBJECT,
            "The calendar stopped syncing.",
            true,
        );
        t.insert("status".into(), json!(RESOLVED));
        t.insert(
            "tags".into(),
            json!(["partner_escalated", "escalation_good", "csat_blind_pending"]),
        );
        self.lock().tickets.insert(id, t);
        id.to_string()
    }

    fn solved(&self, id: &str) -> HookCall {
        rule_call(SECRET, id, "solved")
    }

    fn fail_reads(&self, id: &str) {
        // The test connector tries a call 1 + 2 times.
        self.fail(Fail {
            method: "GET",
            path_contains: format!("/api/v2/tickets/{id}"),
            status: 500,
            retry_after: None,
            times: 3,
        });
    }

    /// The rule sends a shared secret, the same whatever the body.
    fn signs_body(&self) -> bool {
        false
    }
}

/// The tickets [`FakeHelpdesk::good_ticket`] and [`FakeHelpdesk::solved_ticket`] put on the
/// fake.
const GOOD_TICKET: u64 = 701;
const SOLVED_TICKET: u64 = 702;
/// Freshdesk's status Resolved.
const RESOLVED: u64 = 4;

/// An automation rule's webhook for ticket `id` and `event`, with `secret` in the secret
/// header.
fn rule_call(secret: &str, id: &str, event: &str) -> HookCall {
    HookCall {
        query: String::new(),
        body: format!(r#"{{"ticket_id": "{id}", "event": "{event}"}}"#).into_bytes(),
        headers: vec![(HEADER.to_string(), secret.to_string())],
    }
}

impl TestApp<FakeFreshdesk> {
    /// POSTs the rule's JSON body, with `secret` in the secret header when given.
    pub async fn call(&self, secret: Option<&str>, body: &str) -> reqwest::Response {
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = secret {
            req = req.header(HEADER, s);
        }
        req.send().await.unwrap()
    }

    /// The rule's call for `ticket` and `event`, with the right secret.
    pub async fn event(&self, ticket: u64, event: &str) -> reqwest::Response {
        self.call(
            Some(SECRET),
            &format!(r#"{{"ticket_id": "{ticket}", "event": "{event}"}}"#),
        )
        .await
    }

    /// Escalates `ticket`; the answer must be 200; returns its JSON.
    pub async fn escalate(&self, ticket: u64) -> Value {
        let resp = self.event(ticket, "escalated").await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }
}
