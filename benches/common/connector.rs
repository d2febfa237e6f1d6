//! The bench connector file for a fake Zendesk: its API with a token from
//! `BENCH_ZENDESK_TOKEN`, webhooks signed with `BENCH_SIGNING_SECRET`, and the `[knowledge_base]`
//! lines given.

use escalation_gate::helpdesk::zendesk::sandbox::FakeZendesk;

pub fn zendesk_connector(zendesk: &FakeZendesk, knowledge_base: &str) -> String {
    let (email, _) = zendesk.api_token();
    format!(
        r#"[helpdesk]
type = "zendesk"
base_url = "{}"
signing_secrets = ["${{BENCH_SIGNING_SECRET}}"]

[helpdesk.auth]
kind = "api_token"
email = "{email}"
token = "${{BENCH_ZENDESK_TOKEN}}"

[knowledge_base]
{knowledge_base}
"#,
        zendesk.url()
    )
}
