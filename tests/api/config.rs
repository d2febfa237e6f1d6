//! Connector files: every problem `validate` reports, by file, key and what is wrong.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use escalation_gate::assess::kb::rescore::Calibration;
use escalation_gate::assess::kb::weights_file::{self, Figures, HeldOut, WeightsFile};
use escalation_gate::checks::Problem;
use escalation_gate::config;

fn env(name: &str) -> Option<String> {
    HashMap::from([
        ("ZD_URL", "https://acme.zendesk.com"),
        ("ZD_TOKEN", "t0ken"),
        ("ZD_SECRET", "zd-signing-secret-0b8e5f2a9c71d346"),
        ("SURVEY_KEY", "a-survey-link-secret-6e2f0a9d41c7b853"),
        ("SHORT_SECRET", "change-me"),
        ("EMPTY", ""),
        // 16 random bytes: too few for a Standard Webhooks key.
        ("SHORT_WHSEC", "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="),
    ])
    .get(name)
    .map(|v| v.to_string())
}

const VALID: &str = r#"
[helpdesk]
type = "zendesk"
base_url = "${ZD_URL}"
signing_secrets = ["${ZD_SECRET}"]
product_field = "product"

[helpdesk.auth]
kind = "api_token"
email = "bot@acme.example"
token = "${ZD_TOKEN}"

[helpdesk.fields]
101 = "steps"
102 = "product"

[[handoff.rules]]
field = "steps"
rule = "min_length"
min = 20

[knowledge_base]
backend = "helpdesk"
"#;

/// VALID with `backend = "http"` and a `[knowledge_base.http]` table holding `extra`, a valid
/// `url` unless `extra` sets one, and valid field pointers.
fn http_kb(extra: &str) -> String {
    let base = VALID.replace("backend = \"helpdesk\"", "backend = \"http\"");
    let mut table = format!("\n[knowledge_base.http]\n{extra}\n");
    if !extra.contains("url =") {
        table.push_str("url = \"https://kb.example/search\"\n");
    }
    table.push_str("\n[knowledge_base.http.fields]\nid = \"/id\"\ntitle = \"/name\"\nbody = \"/html\"\nurl = \"/link\"\n");
    format!("{base}{table}")
}

fn problems(text: &str) -> Vec<Problem> {
    match config::parse("acme", text, Path::new("."), &env) {
        Ok(_) => vec![],
        Err(p) => p,
    }
}

#[test]
fn the_reference_file_is_valid() {
    assert_eq!(problems(VALID), vec![]);
}

/// Each mutation of the valid file, and the (key, words of the message) it must produce.
#[test]
fn every_problem_names_its_key() {
    let cases: Vec<(String, &str, &str)> = vec![
        (VALID.replace("[helpdesk]", "[helpdesk\n"), "", "line 2, column 10: not valid TOML"),
        (
            VALID.replace("type = \"zendesk\"", "type = \"zendesk\"\ncolour = \"red\""),
            "helpdesk.colour",
            "unknown field `colour`",
        ),
        (VALID.replace("${ZD_SECRET}", "${SHORT_SECRET}"), "helpdesk.signing_secrets[0]", "is 9 characters long; a shared secret needs at least 32"),
        (VALID.replace("${ZD_SECRET}", "${EMPTY}"), "helpdesk.signing_secrets[0]", "is 0 characters long"),
        (VALID.replace("${ZD_URL}", "http://acme.zendesk.com"), "helpdesk.base_url", "use https://"),
        (VALID.replace("${ZD_URL}", "https://bot:${ZD_TOKEN}@acme.zendesk.com"), "helpdesk.base_url", "user name or password (`user:pass@`); put credentials in `helpdesk.auth`"),
        (VALID.replace("${ZD_URL}", "https://acme.zendesk.com/?api_key=${ZD_TOKEN}"), "helpdesk.base_url", "credentials in its query (`api_key`); put credentials in `helpdesk.auth`"),
        (http_kb("url = \"http://kb.example/search\""), "knowledge_base.http.url", "use https://"),
        (http_kb("url = \"https://kb.example/search?access_token=${ZD_TOKEN}\""), "knowledge_base.http.url", "put credentials in `knowledge_base.http.auth_token`"),
        (VALID.replace("[helpdesk.auth]", "[helpdesk.auth]\ntokn = \"x\""), "helpdesk.auth.tokn", "unknown field `tokn`"),
        (VALID.replace("kind = \"api_token\"", "kind = \"password\""), "helpdesk.auth.kind", "unknown variant `password`"),
        (VALID.replace("101 = \"steps\"", "101 = 5"), "helpdesk.fields.101", "invalid type: integer `5`"),
        (VALID.replace("type = \"zendesk\"", "type = \"servicenow\""), "helpdesk.type", "unknown variant `servicenow`"),
        (format!("{VALID}\n[extra]\nx = 1\n"), "extra", "unknown field `extra`"),
        (VALID.replace("${ZD_TOKEN}", "${ZD_MISSING}"), "helpdesk.auth.token", "environment variable `ZD_MISSING` is not set"),
        (VALID.replace("\"${ZD_TOKEN}\"", "\"literal-token\""), "helpdesk.auth.token", "never as a literal"),
        (VALID.replace("min = 20", "min = \"twenty\""), "handoff.rules[0].min", "invalid type"),
        (VALID.replace("min = 20", ""), "handoff.rules[0].min", "needs `min`"),
        (VALID.replace("rule = \"min_length\"\nmin = 20", "rule = \"regex\"\npattern = \"([\""), "handoff.rules[0].pattern", "not a valid regular expression"),
        (VALID.replace("rule = \"min_length\"\nmin = 20", "rule = \"regex\""), "handoff.rules[0].pattern", "needs `pattern`"),
        (VALID.replace("rule = \"min_length\"\nmin = 20", "rule = \"one_of\"\nvalues = []"), "handoff.rules[0].values", "non-empty list"),
        (VALID.replace("rule = \"min_length\"", "rule = \"present\""), "handoff.rules[0].min", "is not used by rule `present`"),
        (VALID.replace("rule = \"min_length\"\nmin = 20", "rule = \"optional\""), "handoff.rules[0].rule", "only meaningful in an override"),
        (VALID.replace("rule = \"min_length\"", "rule = \"longish\""), "handoff.rules[0].rule", "unknown variant `longish`"),
        (VALID.replace("field = \"steps\"", "field = \"stepz\""), "handoff.rules", "field `stepz` is not mapped"),
        (
            format!("{VALID}\n[[handoff.overrides]]\npartner = \"A\"\nproduct = \"B\"\nrules = []\n"),
            "handoff.overrides[0]",
            "exactly one of `partner` or `product`",
        ),
        (format!("{VALID}threshold = 1.5\n"), "knowledge_base.threshold", "above 0 and at most 1"),
        (format!("{VALID}gap_below = 0\n"), "knowledge_base.gap_below", "above 0 and at most 1"),
        (format!("{VALID}max_candidates = 0\n"), "knowledge_base.max_candidates", "must be 1 to 100"),
        (VALID.replace("backend = \"helpdesk\"", "backend = \"local\""), "knowledge_base.path", "needs `path`"),
        (VALID.replace("backend = \"helpdesk\"", "backend = \"local\"\npath = \"no/such/folder\""), "knowledge_base.path", "is not a folder"),
        (VALID.replace("backend = \"helpdesk\"", "backend = \"helpdesk\"\npath = \"x\""), "knowledge_base.path", "remove `path`"),
        (format!("{VALID}\n[verdict]\nlate_after_hours = 0\n"), "verdict.late_after_hours", "positive number of hours"),
        (VALID.replace("base_url = \"${ZD_URL}\"\n", ""), "helpdesk.base_url", "is required"),
        (VALID.replace("base_url = \"${ZD_URL}\"", "base_url = \"ftp://x\""), "helpdesk.base_url", "not an http(s) URL"),
        (VALID.replace("[helpdesk.auth]\nkind = \"api_token\"\nemail = \"bot@acme.example\"\ntoken = \"${ZD_TOKEN}\"\n", ""), "helpdesk.auth", "is required"),
        (VALID.replace("bot@acme.example", "bot"), "helpdesk.auth.email", "not an e-mail address"),
        (VALID.replace("signing_secrets = [\"${ZD_SECRET}\"]", "signing_secrets = []"), "helpdesk.signing_secrets", "at least one"),
        (VALID.replace("101 = \"steps\"", "abc = \"steps\""), "helpdesk.fields.abc", "custom field ids"),
        (VALID.replace("102 = \"product\"", "102 = \"steps\""), "helpdesk.fields.102", "mapped twice"),
        (VALID.replace("product_field = \"product\"", "product_field = \"product\"\nprecheck_field = \"precheck\""), "helpdesk.precheck_field", "`precheck` is not a Zendesk custom field id"),
        (VALID.replace("product_field = \"product\"", "product_field = \"sku\""), "helpdesk.product_field", "`sku` is not a name mapped"),
        (format!("{VALID}\n").replace("product_field = \"product\"", "product_field = \"product\"\ntimestamp_tolerance_secs = 0"), "helpdesk.timestamp_tolerance_secs", "1 to 3600"),
        (VALID.replace("[helpdesk.fields]", "[helpdesk.tags]\ngood = \"good one\"\n\n[helpdesk.fields]"), "helpdesk.tags.good", "no spaces"),
        (VALID.replace("[helpdesk.fields]", "[helpdesk.http]\ntimeout_secs = 0\nmax_retries = 11\nmax_retry_wait_secs = 301\n\n[helpdesk.fields]"), "helpdesk.http.timeout_secs", "1 to 120"),
        (VALID.replace("[helpdesk.fields]", "[helpdesk.http]\nmax_retries = 11\n\n[helpdesk.fields]"), "helpdesk.http.max_retries", "0 to 10"),
        (VALID.replace("[helpdesk.fields]", "[helpdesk.http]\nmax_retry_wait_secs = 301\n\n[helpdesk.fields]"), "helpdesk.http.max_retry_wait_secs", "0 to 300"),
        (VALID.replace("[knowledge_base]\nbackend = \"helpdesk\"\n", ""), "", "missing field `knowledge_base`"),
        (VALID.replace("backend = \"helpdesk\"", "backend = \"http\""), "knowledge_base.http", "needs a [knowledge_base.http] table"),
        (http_kb("url = \"ftp://kb.example\""), "knowledge_base.http.url", "not an http(s) URL"),
        (http_kb("results = \"data.hits\""), "knowledge_base.http.results", "not a JSON pointer"),
        (http_kb("auth_header = \"Authorization\""), "knowledge_base.http.auth_token", "both `auth_header` and `auth_token`"),
        (http_kb("auth_header = \"Authorization\"\nauth_token = \"literal\""), "knowledge_base.http.auth_token", "never as a literal"),
        (http_kb("auth_header = \"Bad Header\"\nauth_token = \"${ZD_TOKEN}\""), "knowledge_base.http.auth_header", "not a header name"),
        (http_kb("").replace("title = \"/name\"", "title = \"name\""), "knowledge_base.http.fields.title", "not a JSON pointer"),
        (format!("{VALID}\n[knowledge_base.http]\nurl = \"https://kb.example\"\n[knowledge_base.http.fields]\nid = \"/id\"\ntitle = \"/t\"\nbody = \"/b\"\nurl = \"/u\"\n"), "knowledge_base.http", "only `backend = \"http\"`"),
        (format!("{VALID}\n[sweep]\nquery = \"tags:x\"\nevery_minutes = 0\n"), "sweep.every_minutes", "1 to 1440"),
        (format!("{VALID}\n[sweep]\nquery = \"tags:x\"\nlookback_hours = 721\n"), "sweep.lookback_hours", "1 to 720"),
        (format!("{VALID}\n[sweep]\nevery_minutes = 15\n"), "sweep.query", "search terms that find escalated tickets"),
        (format!("{VALID}\n[sweep]\nquery = \"tags:x\"\nlimit = 3\n"), "sweep.limit", "unknown field `limit`"),
    ];
    let mut wrong = Vec::new();
    for (text, key, words) in cases {
        let found = problems(&text);
        if !found
            .iter()
            .any(|p| p.key == key && p.message.contains(words))
        {
            wrong.push(format!("expected `{key}: …{words}…`, found {found:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn all_problems_of_a_file_are_reported_together() {
    let text = VALID
        .replace("${ZD_TOKEN}", "${NOPE_1}")
        .replace("${ZD_SECRET}", "${NOPE_2}")
        .replace("min = 20", "min = 0");
    let found = problems(&text);
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"helpdesk.auth.token"), "{found:?}");
    assert!(keys.contains(&"helpdesk.signing_secrets[0]"), "{found:?}");
    assert!(keys.contains(&"handoff.rules[0].min"), "{found:?}");
}

#[test]
fn value_problems_are_reported_in_the_same_run_as_key_and_type_problems() {
    // An unknown key, a wrong type and two out-of-range values: all four at once.
    let text = VALID.replace("min = 20", "min = 0\nmaximum = 3").replace(
        "backend = \"helpdesk\"",
        "backend = \"helpdesk\"\nthreshold = 1.7\ngap_below = \"low\"",
    );
    let found = problems(&text);
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "handoff.rules[0].maximum",
        "knowledge_base.gap_below",
        "handoff.rules[0].min",
        "knowledge_base.threshold",
    ] {
        assert!(keys.contains(&key), "{key} not in {found:?}");
    }
    assert_eq!(found.len(), 4, "{found:?}");
}

#[test]
fn every_shipped_connector_file_parses() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors");
    let key = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/jwt-test-key.pem"),
    )
    .unwrap();
    // A plausible value for every variable the shipped files reference.
    let any = |name: &str| {
        Some(match name {
            n if n.ends_with("PRIVATE_KEY") => key.clone(),
            n if n.ends_with("SIGNING_SECRET") => {
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()
            }
            n if n.ends_with("SUBDOMAIN") => "acme".to_string(),
            n => format!("value-of-{n}-long-enough-for-any-key"),
        })
    };
    let mut seen = Vec::new();
    for dir in [shipped.clone(), shipped.join("examples")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let id = path.file_stem().unwrap().to_str().unwrap().to_string();
                let text = std::fs::read_to_string(&path).unwrap();
                let valid = config::parse(&id, &text, &shipped, &any)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
                // The record role is built exactly where validation says the helpdesk has it.
                let reads_back = valid.helpdesk.reads_back().is_ok();
                let survey = valid.survey.as_ref().map(|s| &s.fields);
                let helpdesk = valid.helpdesk.build(&id, survey).unwrap();
                assert_eq!(
                    (helpdesk.kind, helpdesk.record.is_some()),
                    (helpdesk.kind, reads_back),
                    "{}",
                    path.display()
                );
                seen.push(path.strip_prefix(&shipped).unwrap().display().to_string());
            }
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "demo.toml",
            "examples/freshdesk.toml",
            "examples/salesforce.toml",
            "examples/zendesk.toml"
        ],
        "every shipped connector file, and only those, was parsed"
    );
}

#[test]
fn validate_prints_file_key_and_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), VALID).unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        VALID.replace("${ZD_TOKEN}", "${EG_TEST_UNSET_VAR}"),
    )
    .unwrap();
    std::fs::write(dir.path().join("bad name!.toml"), VALID).unwrap();
    let out = run_with_zendesk_env(&["validate"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let broken = dir.path().join("broken.toml");
    assert!(
        stdout.contains(&format!(
            "{}: helpdesk.auth.token: environment variable `EG_TEST_UNSET_VAR` is not set",
            broken.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("must be a connector id"), "{stdout}");
    assert!(stdout.contains("2 problem(s)"), "{stdout}");
    assert!(
        !stdout.contains("good.toml"),
        "a valid file is not reported when any fails"
    );

    std::fs::remove_file(&broken).unwrap();
    std::fs::remove_file(dir.path().join("bad name!.toml")).unwrap();
    let ok = run_with_zendesk_env(&["validate"], dir.path());
    assert!(ok.status.success());
    assert!(
        String::from_utf8(ok.stdout)
            .unwrap()
            .contains("good.toml: ok")
    );
}

#[test]
fn survey_problems_name_their_keys() {
    let text = format!(
        "{VALID}{}",
        r#"
[survey]
public_url = "not a url"
link_secrets = ["${SHORT_SECRET}"]
company = " "
cases = []
end_customer_field = "end_customer"
link_valid_days = 0

[survey.partner_domains]
"Acme IT" = ["@acme-it.example", "bad domain"]

[survey.delivery]
kind = "email"
from = "not an address"
smtp_host = "smtp.example"
tls = "none"
username = "survey"

[survey.sink]
kind = "webhook"
url = "http://vendor.example/csat"
secret = "${ZD_TOKEN}"
"#
    );
    let found = problems(&text);
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "survey.public_url",
        "survey.link_secrets[0]",
        "survey.company",
        "survey.cases",
        "survey.end_customer_field",
        "survey.link_valid_days",
        "survey.partner_domains.Acme IT[1]",
        "survey.delivery.from",
        "survey.delivery.tls",
        "survey.delivery.password",
        "survey.sink.url",
        "survey.sink.secret",
    ] {
        assert!(keys.contains(&key), "{key} missing in {found:?}");
    }
    assert!(
        !keys.contains(&"survey.partner_domains.Acme IT[0]"),
        "a leading @ is tolerated"
    );
    // A literal secret is refused like any other.
    let literal = text.replace(
        "link_secrets = [\"${SHORT_SECRET}\"]",
        "link_secrets = [\"literal\"]",
    );
    assert!(
        problems(&literal)
            .iter()
            .any(|p| p.key == "survey.link_secrets[0]"
                && p.message.contains("environment reference"))
    );
}

#[test]
fn a_ca_file_must_hold_a_certificate_and_needs_tls() {
    let with = |tls: &str, ca_file: &str| {
        format!(
            "{VALID}{}",
            r#"
[survey]
public_url = "https://gate.example"
link_secrets = ["${SURVEY_KEY}"]
company = "Ledgerly"
end_customer_field = "steps"

[survey.delivery]
kind = "email"
from = "Ledgerly <survey@ledgerly.example>"
smtp_host = "smtp.ledgerly.example"
TLS_AND_CA

[survey.sink]
kind = "ticket"
"#
            .replace(
                "TLS_AND_CA",
                &format!("tls = \"{tls}\"\nca_file = \"{ca_file}\""),
            )
        )
    };
    let ca = "tests/api/fixtures/smtp-tls/ca.pem";
    for tls in ["starttls", "tls"] {
        assert_eq!(problems(&with(tls, ca)), vec![], "{tls}");
    }
    for (tls, file, words) in [
        ("none", ca, "needs `tls"),
        (
            "starttls",
            "tests/api/fixtures/smtp-tls/missing.pem",
            "cannot read",
        ),
        (
            "starttls",
            "tests/api/fixtures/smtp-tls/server.key",
            "no PEM certificate",
        ),
    ] {
        let found = problems(&with(tls, file));
        assert!(
            found
                .iter()
                .any(|p| p.key == "survey.delivery.ca_file" && p.message.contains(words)),
            "{tls} {file}: {found:?}"
        );
    }
}

#[test]
fn salesforce_survey_names_must_be_api_names() {
    let text = std::fs::read_to_string("connectors/examples/salesforce.toml")
        .unwrap()
        .replace(
            r#"opt_out_field = "HasOptedOutOfEmail""#,
            r#"opt_out_field = "Email Opt Out""#,
        )
        .replace(
            r#"status = "Blind_Survey_Status__c""#,
            r#"status = "Blind Survey Status""#,
        );
    let env = example_env;
    let found = config::parse("acme-sf", &text, Path::new("connectors"), &env).unwrap_err();
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["helpdesk.survey_fields.status"], "{found:?}");
    // With the helpdesk table valid, the survey's Contact field is checked too.
    let text = text.replace(
        r#"status = "Blind Survey Status""#,
        r#"status = "Blind_Survey_Status__c""#,
    );
    let found = config::parse("acme-sf", &text, Path::new("connectors"), &env).unwrap_err();
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["survey.opt_out_field"], "{found:?}");
}

#[test]
fn the_sweep_needs_the_api_and_the_query_its_helpdesk_uses() {
    let env = example_env;
    let parse = |file: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(from), "{file} has `{from}`");
        match config::parse("x", &text.replace(from, to), Path::new("connectors"), &env) {
            Ok(_) => vec![],
            Err(p) => p,
        }
    };
    let sf = "connectors/examples/salesforce.toml";
    assert_eq!(parse(sf, "", ""), vec![]);
    let found = parse(
        sf,
        "lookback_hours = 24\n",
        "lookback_hours = 24\nquery = \"x\"\n",
    );
    assert!(
        found
            .iter()
            .any(|p| p.key == "sweep.query" && p.message.contains("IsEscalated")),
        "{found:?}"
    );
    // The demo takes tickets from the webhook body and has no API to search.
    let found = parse(
        "connectors/demo.toml",
        "[verdict]",
        "[sweep]\nquery = \"tags:x\"\n\n[verdict]",
    );
    assert!(
        found
            .iter()
            .any(|p| p.key == "sweep" && p.message.contains("API")),
        "{found:?}"
    );
}

/// A plausible value for every variable the Salesforce example references.
fn example_env(name: &str) -> Option<String> {
    Some(if name.ends_with("SIGNING_SECRET") {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()
    } else {
        format!("value-of-{name}-long-enough-for-any-key")
    })
}

/// The Salesforce example with `from` replaced by `to`, and the variables `vars` overriding
/// plausible values.
fn salesforce_problems(from: &str, to: &str, vars: &[(&str, &str)]) -> Vec<Problem> {
    let file = "connectors/examples/salesforce.toml";
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{file} has `{from}`");
    let env = |name: &str| match vars.iter().find(|(n, _)| *n == name) {
        Some((_, v)) => Some(v.to_string()),
        None => example_env(name),
    };
    match config::parse(
        "acme-sf",
        &text.replace(from, to),
        Path::new("connectors"),
        &env,
    ) {
        Ok(_) => vec![],
        Err(p) => p,
    }
}

fn has(found: &[Problem], key: &str, words: &str) -> bool {
    found
        .iter()
        .any(|p| p.key == key && p.message.contains(words))
}

#[test]
fn salesforce_outbound_messages_need_a_long_endpoint_token() {
    let token_line = "endpoint_token = \"${SF_ENDPOINT_TOKEN}\"\n";
    let found = salesforce_problems(token_line, "", &[]);
    assert!(
        has(
            &found,
            "helpdesk.endpoint_token",
            "is required with `organization_id`"
        ) && has(
            &found,
            "helpdesk.endpoint_token",
            "endpoint_token = \"${SF_ENDPOINT_TOKEN}\""
        ) && has(
            &found,
            "helpdesk.endpoint_token",
            "remove `organization_id` to take signed JSON only"
        ),
        "{found:?}"
    );
    let found = salesforce_problems("", "", &[("SF_ENDPOINT_TOKEN", "s3cret")]);
    assert!(
        has(&found, "helpdesk.endpoint_token", "at least 32"),
        "{found:?}"
    );
    // Signed JSON only: no organization id, no token, the Standard Webhooks secret.
    let found = salesforce_problems("organization_id = \"00D000000000062\"\n", "", &[]);
    assert!(
        has(
            &found,
            "helpdesk.endpoint_token",
            "set `organization_id` too"
        ),
        "{found:?}"
    );
    let signed_only = std::fs::read_to_string("connectors/examples/salesforce.toml")
        .unwrap()
        .replace("organization_id = \"00D000000000062\"\n", "")
        .replace(token_line, "");
    let env = example_env;
    let parsed = config::parse("acme-sf", &signed_only, Path::new("connectors"), &env);
    assert!(parsed.is_ok(), "{:?}", parsed.err());
}

#[test]
fn salesforce_secrets_and_urls_follow_the_rules() {
    let found = salesforce_problems(
        "",
        "",
        &[("SF_SIGNING_SECRET", "whsec_MDEyMzQ1Njc4OWFiY2RlZg==")],
    );
    assert!(
        has(
            &found,
            "helpdesk.signing_secrets[0]",
            "at least 24 random bytes"
        ),
        "{found:?}"
    );
    let found = salesforce_problems(
        "https://acme.my.salesforce.com",
        "http://acme.my.salesforce.com",
        &[],
    );
    assert!(
        has(&found, "helpdesk.my_domain", "use https://"),
        "{found:?}"
    );
    let found = salesforce_problems(
        "https://acme.my.salesforce.com",
        "https://acme.my.salesforce.com?access_token=00Dxx",
        &[],
    );
    assert!(
        has(
            &found,
            "helpdesk.my_domain",
            "put credentials in `helpdesk.auth`"
        ) && !found.iter().any(|p| p.message.contains("00Dxx")),
        "{found:?}"
    );
}

#[test]
fn survey_webhooks_need_https_and_24_byte_keys() {
    let text = format!(
        "{VALID}{}",
        r#"
[survey]
public_url = "https://gate.example"
link_secrets = ["${SURVEY_KEY}"]
company = "Ledgerly"

[survey.delivery]
kind = "webhook"
url = "https://surveys.example/requests?token=abc"
secret = "${SHORT_WHSEC}"

[survey.sink]
kind = "webhook"
url = "https://vendor:pw@bi.example/csat"
secret = "${SHORT_WHSEC}"
"#
    );
    let found = problems(&text);
    assert!(
        has(&found, "survey.delivery.secret", "at least 24 random bytes"),
        "{found:?}"
    );
    assert!(
        has(&found, "survey.sink.secret", "at least 24 random bytes"),
        "{found:?}"
    );
    assert!(
        has(
            &found,
            "survey.delivery.url",
            "credentials in its query (`token`)"
        ) && has(&found, "survey.delivery.url", "Standard Webhooks signature"),
        "{found:?}"
    );
    assert!(
        has(&found, "survey.sink.url", "user name or password"),
        "{found:?}"
    );
    // A relay on loopback may speak plain SMTP; any other needs TLS.
    let email = |host: &str| {
        format!(
            "{VALID}{}",
            r#"
[survey]
public_url = "http://127.0.0.1:8080"
link_secrets = ["${SURVEY_KEY}"]
company = "Ledgerly"

[survey.delivery]
kind = "email"
from = "Ledgerly <survey@ledgerly.example>"
smtp_host = "HOST"
tls = "none"

[survey.sink]
kind = "ticket"
"#
            .replace("HOST", host)
        )
    };
    for host in ["127.0.0.1", "localhost", "::1"] {
        assert_eq!(problems(&email(host)), vec![], "{host}");
    }
    let found = problems(&email("mail.ledgerly.example"));
    assert!(
        has(&found, "survey.delivery.tls", "clear text"),
        "{found:?}"
    );
    let found =
        problems(&email("127.0.0.1").replace("http://127.0.0.1:8080", "http://gate.example"));
    assert!(
        has(&found, "survey.public_url", "use https://"),
        "{found:?}"
    );
}

#[test]
fn every_structural_problem_is_reported_at_its_full_key_path() {
    let text = VALID
        .replace("type = \"zendesk\"", "type = \"zendesk\"\ncolour = \"red\"")
        .replace(
            "token = \"${ZD_TOKEN}\"",
            "token = \"${ZD_TOKEN}\"\ntokn = \"x\"",
        )
        .replace("101 = \"steps\"", "101 = 5")
        .replace("min = 20", "min = \"twenty\"")
        .replace(
            "backend = \"helpdesk\"",
            "backend = \"helpdesk\"\nthreshold = \"high\"",
        )
        + "\n[verdict]\nlate = 3\n\n[sweep]\nevery_minutes = \"often\"\nquery = \"tags:x\"\n";
    let found = problems(&text);
    let mut keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "handoff.rules[0].min",
            "helpdesk.auth.tokn",
            "helpdesk.colour",
            "helpdesk.fields.101",
            "knowledge_base.threshold",
            "sweep.every_minutes",
            "verdict.late",
        ],
        "{found:?}"
    );
    assert!(has(
        &found,
        "helpdesk.fields.101",
        "invalid type: integer `5`, expected a string"
    ));
    assert!(has(&found, "verdict.late", "unknown field `late`"));
}

#[test]
fn validate_shows_a_toml_syntax_error_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        VALID.replace("email = \"bot@acme.example\"", "email = \"bot@acme.example"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("typo.toml"),
        VALID.replace("[helpdesk.fields]", "[helpdesk.field]"),
    )
    .unwrap();
    let out = run_with_zendesk_env(&["validate"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = VALID
        .lines()
        .position(|l| l.starts_with("email ="))
        .unwrap()
        + 1;
    // The string is cut at the end of its line: that is where a `"` was expected.
    let column = "email = \"bot@acme.example".len() + 1;
    let broken = dir.path().join("broken.toml");
    assert!(
        stdout.contains(&format!(
            "{}: line {line}, column {column}: not valid TOML: invalid basic string",
            broken.display()
        )),
        "{stdout}"
    );
    let typo = dir.path().join("typo.toml");
    assert!(
        stdout.contains(&format!(
            "{}: helpdesk.field: unknown field `field`",
            typo.display()
        )),
        "{stdout}"
    );
}

/// A weights file as `calibrate --fit` writes it, holding the global weights, proposing
/// threshold 0.8 and review bound 0.4.
fn weights_file() -> WeightsFile {
    let global = Calibration::global();
    let figures = Figures {
        recall: 0.5,
        threshold: Some(0.8),
        review_bound: Some(0.4),
        review_share: Some(0.1),
        precision_at_threshold: Some(0.9),
        recall_at_threshold: Some(0.5),
    };
    WeightsFile {
        format: weights_file::FORMAT,
        weight_set: Calibration::weight_set().to_string(),
        source: "acme".into(),
        from: None,
        to: None,
        sample: 60,
        bad: 20,
        skipped: 0,
        prior_strength: 10.0,
        threshold: Some(0.8),
        review_bound: Some(0.4),
        bias: global.bias,
        weights: weights_file::by_name(&global),
        held_out: HeldOut {
            folds: 5,
            seed: 7,
            target: 0.9,
            global: figures,
            fitted: figures,
        },
    }
}

#[test]
fn a_calibration_file_is_read_and_one_for_another_judge_is_refused_by_validate_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{VALID}calibration = \"acme.weights.toml\"\n");
    let write = |file: &WeightsFile| {
        std::fs::write(dir.path().join("acme.weights.toml"), file.to_text()).unwrap()
    };
    let parse = || config::parse("acme", &text, dir.path(), &env);
    // Missing: the key names the file it could not read.
    let found = parse().unwrap_err();
    assert!(
        has(&found, "knowledge_base.calibration", "cannot read"),
        "{found:?}"
    );

    write(&weights_file());
    let valid = parse().unwrap();
    let kb = &valid.policy.kb;
    assert_eq!(kb.calibration.vendor.as_deref(), Some("acme.weights.toml"));
    assert_eq!(kb.calibration.weights, Calibration::global().weights);
    // The file's proposal is the connector's threshold and review bound unless the file sets them.
    assert_eq!((kb.threshold, kb.review_bound), (0.8, 0.4));
    let own = config::parse(
        "acme",
        &format!("{text}threshold = 0.95\n"),
        dir.path(),
        &env,
    )
    .unwrap();
    assert_eq!(own.policy.kb.threshold, 0.95);

    let mut other = weights_file();
    other.weight_set = "lexical-0000000000000000".into();
    let mut renamed = weights_file();
    let w = renamed.weights.remove("cov_w").unwrap();
    renamed.weights.insert("cosine".into(), w);
    for (file, refusal) in [
        (
            other.clone(),
            "fitted for weight set `lexical-0000000000000000`",
        ),
        (renamed, "missing: cov_w; unknown: cosine"),
    ] {
        write(&file);
        let found = parse().unwrap_err();
        assert!(
            has(&found, "knowledge_base.calibration", refusal),
            "{found:?}"
        );
    }
    std::fs::write(dir.path().join("acme.weights.toml"), "weights = 3\n").unwrap();
    let found = parse().unwrap_err();
    assert!(
        has(
            &found,
            "knowledge_base.calibration",
            "is not a calibration weights file"
        ),
        "{found:?}"
    );

    // The commands that load connectors refuse it the same way: validate, and the service's start.
    write(&other);
    std::fs::write(dir.path().join("acme.toml"), &text).unwrap();
    for args in [&["validate"][..], &["serve", "--listen", "127.0.0.1:0"][..]] {
        let out = run_with_zendesk_env(args, dir.path());
        assert!(!out.status.success(), "{args:?}");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.contains("knowledge_base.calibration") && said.contains("fitted for weight set"),
            "{args:?}: {said}"
        );
    }
}

/// Runs the binary with `args` on the connectors folder `dir`, with the variables the test
/// connector files name.
fn run_with_zendesk_env(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_escalation-gate"))
        .args(args)
        .arg("--connectors")
        .arg(dir)
        .env("ZD_URL", "https://acme.zendesk.com")
        .env("ZD_TOKEN", "t")
        .env("ZD_SECRET", "zd-signing-secret-0b8e5f2a9c71d346")
        .env_remove("EG_TEST_UNSET_VAR")
        .output()
        .unwrap()
}

#[test]
fn mirror_settings_are_checked() {
    let mirror = VALID.replace("backend = \"helpdesk\"", "backend = \"mirror\"");
    assert_eq!(problems(&mirror), vec![]);
    assert_eq!(
        problems(&format!(
            "{mirror}\n[knowledge_base.mirror]\nevery_minutes = 5\nfull_every_hours = 6\n"
        )),
        vec![]
    );
    let cases = [
        (
            format!("{mirror}\n[knowledge_base.mirror]\nevery_minutes = 0\n"),
            "knowledge_base.mirror.every_minutes",
            "must be 1 to 1440, found 0",
        ),
        (
            format!("{mirror}\n[knowledge_base.mirror]\nfull_every_hours = 1000\n"),
            "knowledge_base.mirror.full_every_hours",
            "must be 1 to 720, found 1000",
        ),
        (
            format!("{mirror}\n[knowledge_base.mirror]\nevery = 5\n"),
            "",
            "unknown field `every`",
        ),
        (
            format!("{VALID}\n[knowledge_base.mirror]\nevery_minutes = 5\n"),
            "knowledge_base.mirror",
            "only `backend = \"mirror\"` reads this table",
        ),
        (
            mirror.replace(
                "backend = \"mirror\"",
                "backend = \"mirror\"\npath = \"kb\"",
            ),
            "knowledge_base.path",
            "remove `path`",
        ),
    ];
    for (text, key, words) in cases {
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|p| p.key.contains(key) && p.message.contains(words)),
            "{key}: {words}: {found:?}"
        );
    }
}
