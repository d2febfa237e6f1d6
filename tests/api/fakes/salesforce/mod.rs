//! The fake Salesforce org (`escalation_gate::helpdesk::salesforce::sandbox`), and the test
//! connector that points at it: outbound messages (endpoint token) and signed JSON,
//! client-credentials OAuth, hand-off rules on three fields, Salesforce Knowledge as knowledge
//! base.

pub use escalation_gate::helpdesk::salesforce::sandbox::*;

use escalation_gate::http::standard_webhooks;
use serde_json::{Value, json};

use crate::helpers::{FakeHelpdesk, HookCall, Options, TestApp};

pub const CLIENT_ID: &str = "3MVG9fakeClientId";
pub const CLIENT_SECRET: &str = "fake-client-secret";
pub const ENDPOINT_TOKEN: &str = "s3cr3t-endpoint-token-8f1c04be7a29d5";
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const USERNAME: &str = "integration@acme.example";
pub const JWT_KEY: &str = include_str!("../../fixtures/jwt-test-key.pem");

/// The variables the test connector file references.
const ENV: [&str; 4] = [
    "SF_CLIENT_SECRET",
    "SF_ENDPOINT_TOKEN",
    "SF_SIGNING_SECRET",
    "SF_PRIVATE_KEY",
];

pub fn env(name: &str) -> Option<String> {
    match name {
        "SF_CLIENT_SECRET" => Some(CLIENT_SECRET.into()),
        "SF_ENDPOINT_TOKEN" => Some(ENDPOINT_TOKEN.into()),
        "SF_SIGNING_SECRET" => Some(SIGNING_SECRET.into()),
        "SF_PRIVATE_KEY" => Some(JWT_KEY.into()),
        _ => None,
    }
}

pub const CLIENT_CREDENTIALS: &str = r#"
[helpdesk.auth]
grant = "client_credentials"
client_id = "3MVG9fakeClientId"
client_secret = "${SF_CLIENT_SECRET}"
"#;

/// The test connector; `fields` go into `[helpdesk.fields]`, `extra` at the end.
pub fn connector_toml(base: &str, auth: &str, fields: &str, extra: &str) -> String {
    format!(
        r#"
[helpdesk]
type = "salesforce"
my_domain = "{base}"
api_version = "62.0"
organization_id = "00D000000000062"
endpoint_token = "${{SF_ENDPOINT_TOKEN}}"
signing_secrets = ["${{SF_SIGNING_SECRET}}"]
locale_field = "Language__c"
product_field = "product"
version_field = "version"
{auth}
[helpdesk.http]
max_retries = 1
max_retry_wait_secs = 1

[helpdesk.fields]
Steps_To_Reproduce__c = "steps_to_reproduce"
Environment__c = "environment"
Severity__c = "severity"
Product__c = "product"
Version__c = "version"
{fields}
[[handoff.rules]]
field = "steps_to_reproduce"
rule = "min_length"
min = 40

[[handoff.rules]]
field = "environment"
rule = "present"

[[handoff.rules]]
field = "severity"
rule = "one_of"
values = ["low", "normal", "high", "urgent"]

[knowledge_base]
backend = "helpdesk"
default_locale = "en-us"
{extra}
"#
    )
}

/// The end customer of the test Cases, a Contact.
pub const CONTACT: &str = "003000000000001AAA";
pub const CUSTOMER: &str = "dana.reyes@northwind.example";
pub const CUSTOMER_ACCOUNT: &str = "001000000000009AAA";
pub const STATUS: &str = "Blind_Survey_Status__c";
pub const SENT_AT: &str = "Blind_Survey_Sent_At__c";

/// Survey fields mapped in `[helpdesk.fields]`.
pub const SURVEY_FIELDS: &str = r#"
Blind_CSAT__c = "csat_score"
Blind_CES__c = "ces_score"
Blind_CSAT_About__c = "csat_about"
End_Customer_Email__c = "end_customer_email"
"#;

/// Makes every Case of the org closed and judged good, its Contact the end customer who never
/// opted out, and its survey fields empty: ready for the blind survey.
pub fn ready_for_survey(s: &mut State_) {
    for c in s.cases.values_mut() {
        for (k, v) in [
            ("IsClosed", json!(true)),
            ("ContactId", json!(CONTACT)),
            ("LastModifiedDate", json!("2024-05-04T09:00:00.000+0000")),
            ("Escalation_Quality__c", json!("Good")),
            (STATUS, Value::Null),
            (SENT_AT, Value::Null),
            ("Blind_CSAT__c", Value::Null),
            ("Blind_CES__c", Value::Null),
            ("Blind_CSAT_About__c", Value::Null),
            ("End_Customer_Email__c", Value::Null),
        ] {
            c.insert(k.into(), v);
        }
    }
    s.contacts.insert(
        CONTACT.into(),
        json!({
            "Id": CONTACT,
            "Email": CUSTOMER,
            "Name": "Dana Reyes",
            "AccountId": CUSTOMER_ACCOUNT,
            "HasOptedOutOfEmail": false,
        })
        .as_object()
        .unwrap()
        .clone(),
    );
}

impl FakeHelpdesk for FakeSalesforce {
    fn connector_toml(&self, opts: &Options) -> String {
        connector_toml(
            &self.base,
            opts.auth_toml.as_deref().unwrap_or(CLIENT_CREDENTIALS),
            &opts.fields_toml,
            &opts.extra_toml,
        )
        .replace(
            "backend = \"helpdesk\"",
            &format!("backend = \"{}\"", opts.kb_backend),
        )
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        ENV.iter()
            .map(|name| (*name, env(name).expect("every test variable has a value")))
            .collect()
    }

    /// The org's Case with a complete hand-off that no article answers
    /// ([`crate::salesforce::org`]).
    fn good_ticket(&self) -> String {
        let good = crate::salesforce::GOOD;
        assert!(
            self.lock().cases.contains_key(good),
            "the fake org holds the test Cases"
        );
        good.to_string()
    }

    /// Signed JSON, as a Flow HTTP Callout sends it (JSON answers; outbound messages take SOAP).
    fn escalation(&self, id: &str) -> HookCall {
        signed_call(SIGNING_SECRET, id)
    }

    fn forged_escalation(&self, id: &str) -> HookCall {
        signed_call("whsec_bm90LXRoZS1jb25uZWN0b3Itc2VjcmV0LTQ4Mjk=", id)
    }

    fn verdict_notes(&self, id: &str) -> usize {
        self.comments_on(id).len()
    }

    fn survey_fields_toml(&self) -> String {
        SURVEY_FIELDS.into()
    }

    /// The org's good Case, closed; like every Case of the org, it has the survey's fields.
    fn solved_ticket(&self) -> String {
        let good = self.good_ticket();
        ready_for_survey(&mut self.lock());
        good
    }

    fn solved(&self, id: &str) -> HookCall {
        signed_body(
            SIGNING_SECRET,
            format!(r#"{{"case_id": "{id}", "event": "solved"}}"#),
        )
    }

    fn fail_reads(&self, id: &str) {
        // The test connector tries a call 1 + 1 times.
        self.fail(Fail {
            method: "GET",
            path_contains: format!("sobjects/Case/{id}"),
            status: 500,
            error_code: "UNKNOWN_EXCEPTION",
            times: 2,
        });
    }
}

/// Signed JSON naming Case `id`, signed now with `secret` (Standard Webhooks).
fn signed_call(secret: &str, id: &str) -> HookCall {
    signed_body(secret, format!(r#"{{"case_ids": ["{id}"]}}"#))
}

/// `body`, signed now with `secret` (Standard Webhooks).
fn signed_body(secret: &str, body: String) -> HookCall {
    let body = body.into_bytes();
    let key = standard_webhooks::decode_secret(secret).expect("a Standard Webhooks secret");
    let message = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let now = chrono::Utc::now().timestamp();
    let signature = standard_webhooks::sign(&key, &message, now, &body);
    HookCall {
        query: String::new(),
        body,
        headers: vec![
            (standard_webhooks::ID.to_string(), message),
            (standard_webhooks::TIMESTAMP.to_string(), now.to_string()),
            (standard_webhooks::SIGNATURE.to_string(), signature),
        ],
    }
}

impl TestApp<FakeSalesforce> {
    pub async fn post_xml(&self, query: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let resp = self
            .client
            .post(format!("{}{query}", self.url))
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", "\"\"")
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub async fn outbound(&self, cases: &[&str]) -> (u16, String) {
        self.post_xml(
            &format!("?token={ENDPOINT_TOKEN}"),
            crate::salesforce::envelope(crate::salesforce::ORG, cases),
        )
        .await
    }

    pub async fn signed(&self, body: &str, id: &str, ts: i64, sig: &str) -> (u16, Value) {
        let resp = self.post_signed(body, id, ts, sig).await;
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// POSTs `body` with Standard Webhooks headers as given.
    pub async fn post_signed(&self, body: &str, id: &str, ts: i64, sig: &str) -> reqwest::Response {
        self.client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(standard_webhooks::ID, id)
            .header(standard_webhooks::TIMESTAMP, ts.to_string())
            .header(standard_webhooks::SIGNATURE, sig)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` as a Flow callout or Apex action does: signed now, with message `id`.
    pub async fn post_signed_now(&self, body: &str, id: &str) -> reqwest::Response {
        let key = standard_webhooks::decode_secret(SIGNING_SECRET).unwrap();
        let now = chrono::Utc::now().timestamp();
        let sig = standard_webhooks::sign(&key, id, now, body.as_bytes());
        self.post_signed(body, id, now, &sig).await
    }
}
