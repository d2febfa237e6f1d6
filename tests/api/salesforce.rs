//! The Salesforce connector end to end: the real service on loopback against the fake org.

use std::collections::HashMap;

use escalation_gate::http::standard_webhooks;
use escalation_gate::server::ServerSettings;
use escalation_gate::server::reply::SOAP_ACK as ACK;
use serde_json::{Map, Value, json};

pub use crate::fakes::salesforce::{
    CLIENT_CREDENTIALS, CLIENT_ID, CLIENT_SECRET, ENDPOINT_TOKEN, SIGNING_SECRET,
};
use crate::fakes::salesforce::{
    Fail, FakeArticle, FakeSalesforce, JWT_KEY, JwtClient, State_, USERNAME,
};
use crate::helpers::{Options, TestApp, spawn_with as spawn_with_options};

/// The service against the fake org.
pub type App = TestApp<FakeSalesforce>;

pub const ORG: &str = "00D000000000062EAA";
pub const GOOD: &str = "500000000000001AAA";
pub const MISSING: &str = "500000000000002AAA";
pub const KB: &str = "500000000000003AAA";
pub const BOTH: &str = "500000000000004AAA";
pub const ACCOUNT: &str = "001000000000001AAA";

pub fn case(id: &str, subject: &str, description: &str, handoff: bool) -> Map<String, Value> {
    let v = |s: &str| if handoff { json!(s) } else { Value::Null };
    let json = json!({
        "Id": id,
        "CaseNumber": format!("0000{}", &id[12..15]),
        "Subject": subject,
        "Description": description,
        "CreatedDate": "2024-05-03T09:00:00.000+0000",
        "Origin": "Email",
        "Type": "Problem",
        "ContactEmail": "dana.reyes@northwind.example",
        "SuppliedEmail": null,
        "AccountId": ACCOUNT,
        "Language__c": "en_US",
        "Steps_To_Reproduce__c": if handoff { json!(FULL_STEPS) } else { json!("run report") },
        "Environment__c": v("Ledgerly cloud, EU region, Chrome 124"),
        "Severity__c": if handoff { json!("high") } else { json!("asap") },
        "Product__c": "Ledgerly Invoicing",
        "Version__c": if handoff { json!("4.2.1") } else { json!("latest") },
        "Escalation_Quality__c": null,
        "Escalation_Quality_Reason__c": null,
    });
    json.as_object().unwrap().clone()
}

// A case the published article answers almost word for word.
pub const CALENDAR_SUBJECT: &str = "Calendar sync stops with error E1234 after a password change";
pub const CALENDAR_TEXT: &str = "Calendar sync stops for a user and the sync log shows error E1234 authorization expired. It started right after the user changed their mailbox password.";
pub const PDF_SUBJECT: &str = "PDF export of large invoices crashes with error LX-5521";
pub const PDF_TEXT: &str = "Hello,\n\nSince upgrading to 4.2.1, exporting an invoice with more than 500 lines to PDF fails with error LX-5521 and the export job stops at 80%. Smaller invoices export fine. We reproduced it on two customer tenants and on our own test tenant.\n\nThanks,\nJordan";
/// The steps of a complete hand-off of the PDF case.
pub const FULL_STEPS: &str = "1. Create an invoice with 600 lines. 2. Click Export > PDF. 3. The job stops at 80% with LX-5521.";
/// A case escalated without a usable hand-off.
pub const SLOW_SUBJECT: &str = "Reports are slow";
pub const SLOW_TEXT: &str = "Customer says reports are slow. Please check.";

/// The demo knowledge base (connectors/demo/articles) as Salesforce Knowledge articles: the
/// same article id for a translation, `Draft` for the demo's draft.
fn demo_articles() -> Vec<FakeArticle> {
    crate::helpers::demo_articles()
        .into_iter()
        .map(|a| FakeArticle {
            id: format!("kA000000000{:0>4}AAA", a.number),
            number: format!("00000{}", a.number),
            url_name: a.url.rsplit('/').next().unwrap().to_string(),
            summary: String::new(),
            answer_html: a.html(),
            language: match a.locale.as_str() {
                "en-us" => "en_US".to_string(),
                other => other.to_string(),
            },
            status: if a.draft { "Draft" } else { "Online" }.into(),
            last_published: format!("{}T00:00:00Z", a.published),
            title: a.title,
        })
        .collect()
}

pub fn org() -> State_ {
    let mut s = State_::default();
    for (id, subject, text, handoff) in [
        (GOOD, PDF_SUBJECT, PDF_TEXT, true),
        (MISSING, SLOW_SUBJECT, SLOW_TEXT, false),
        (KB, CALENDAR_SUBJECT, CALENDAR_TEXT, true),
        (BOTH, CALENDAR_SUBJECT, CALENDAR_TEXT, false),
    ] {
        s.cases.insert(id.into(), case(id, subject, text, handoff));
    }
    s.accounts.insert(ACCOUNT.into(), "Acme IT Services".into());
    s.articles = demo_articles();
    let online = |id: &str, title: &str, html: &str| FakeArticle {
        id: id.into(),
        number: format!("00000{}", &id[11..15]),
        title: title.into(),
        url_name: title.to_lowercase().replace(' ', "-"),
        summary: String::new(),
        answer_html: html.into(),
        language: "en_US".into(),
        status: "Online".into(),
        last_published: "2023-10-01T00:00:00Z".into(),
    };
    s.articles.extend([
        // Two more calendar articles about other problems: Knowledge answers a short query
        // with several articles, and the judge compares them.
        online(
            "kA0000000002001AAA",
            "Calendar sync shows events twice after reconnecting",
            "<p>When a calendar is connected twice, calendar sync copies each event two times. \
             Remove the older calendar connection under Settings, Integrations, Calendar.</p>",
        ),
        online(
            "kA0000000002002AAA",
            "Mailbox password rules for connected apps",
            "<p>A mailbox password change signs connected apps out after the next refresh. Sign \
             in again in each app; calendar sync resumes afterwards.</p>",
        ),
        // A draft that would answer the PDF case: drafts must never count.
        FakeArticle {
            id: "kA0000000000003AAA".into(),
            number: "000001003".into(),
            title: PDF_SUBJECT.into(),
            url_name: "pdf-export-lx-5521".into(),
            summary: PDF_TEXT.into(),
            answer_html: format!("<p>{PDF_TEXT}</p><p>Split the invoice.</p>"),
            language: "en_US".into(),
            status: "Draft".into(),
            last_published: "2024-01-01T00:00:00Z".into(),
        },
    ]);
    s.client = Some((CLIENT_ID.into(), CLIENT_SECRET.into()));
    s
}

/// The fixture's articles answer their cases at a confidence of about 0.9, near the default
/// threshold: these tests are about what a verdict writes, so the test connector sets a threshold
/// they clear whatever the default.
pub const CLEAR_ANSWER: &str = "threshold = 0.85\n";

async fn spawn_with(state: State_, auth: &str, settings: ServerSettings) -> App {
    spawn_connector(state, auth, settings, "", CLEAR_ANSWER, Vec::new()).await
}

/// The service with the test connector (`fields` and `extra` as in [`connector_toml`]) and
/// more `${VAR}` values in `vars`.
pub async fn spawn_connector(
    state: State_,
    auth: &str,
    settings: ServerSettings,
    fields: &str,
    extra: &str,
    vars: Vec<(&'static str, String)>,
) -> App {
    spawn_with_options(
        FakeSalesforce::start(state).await,
        Options {
            auth_toml: Some(auth.into()),
            fields_toml: fields.into(),
            extra_toml: extra.into(),
            settings,
            vars,
            ..Options::default()
        },
    )
    .await
}

async fn spawn() -> App {
    spawn_with(org(), CLIENT_CREDENTIALS, ServerSettings::default()).await
}

/// An outbound message as Salesforce sends it.
pub fn envelope(org: &str, cases: &[&str]) -> String {
    let notes: String = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                r#"
   <Notification>
    <Id>04l00000000000{i}AAA</Id>
    <sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{c}</sf:Id>
     <sf:CaseNumber>0000100{i}</sf:CaseNumber>
     <sf:LastModifiedDate>2024-05-03T11:30:00.000Z</sf:LastModifiedDate>
    </sObject>
   </Notification>"#
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000062</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D000000000062</PartnerUrl>{notes}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
    )
}

fn heading(fake: &FakeSalesforce, case: &str) -> Vec<String> {
    fake.comments_on(case)
        .iter()
        .map(|c| c.body.lines().next().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn every_verdict_kind_is_written_as_fields_and_one_internal_comment() {
    let app = spawn().await;
    let (status, body) = app.outbound(&[GOOD, MISSING, KB, BOTH]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    let f = &app.fake;
    let want = [
        (GOOD, "Good", "escalation-gate verdict: GOOD escalation"),
        (
            MISSING,
            "Bad",
            "escalation-gate verdict: BAD escalation (missing_handoff)",
        ),
        (
            KB,
            "Bad",
            "escalation-gate verdict: BAD escalation (kb_resolvable)",
        ),
        (
            BOTH,
            "Bad",
            "escalation-gate verdict: BAD escalation (missing_handoff, kb_resolvable)",
        ),
    ];
    for (case, value, head) in want {
        assert_eq!(
            f.field(case, "Escalation_Quality__c"),
            json!(value),
            "{case}"
        );
        assert_eq!(heading(f, case), [head], "{case}");
        let comments = f.comments_on(case);
        assert!(!comments[0].published, "comments are internal");
        assert!(comments[0].body.contains("Partner: Acme IT Services"));
    }
    let reason = |c: &str| f.field(c, "Escalation_Quality_Reason__c");
    assert_eq!(reason(BOTH), json!("missing_handoff, kb_resolvable"));
    assert_eq!(reason(MISSING), json!("missing_handoff"));
    // The Knowledge article is quoted with its link; the draft that answers the PDF case was
    // never offered, so that case stays good.
    let kb_note = &f.comments_on(KB)[0].body;
    assert!(
        kb_note.contains("Calendar sync stops with error E1234"),
        "{kb_note}"
    );
    assert!(
        kb_note.contains(&format!("{}/kA0000000001001AAA", f.base)),
        "{kb_note}"
    );
    assert!(!f.comments_on(GOOD)[0].body.contains("kA0000000000003AAA"));
    // Knowledge was searched in the case's language.
    assert!(f.count("GET", "/support/knowledgeArticles") >= 4);
    // One token served every call.
    assert_eq!(f.lock().grants, ["client_credentials"]);
}

#[tokio::test]
async fn a_failed_notification_withholds_the_ack_and_redelivery_does_only_the_rest() {
    let app = spawn().await;
    let f = &app.fake;
    // The verdict field of one Case cannot be written now (after its comment was added).
    f.fail(Fail {
        method: "PATCH",
        path_contains: format!("sobjects/Case/{KB}"),
        status: 503,
        error_code: "SERVER_UNAVAILABLE",
        times: 2,
    });
    let (status, body) = app.outbound(&[GOOD, KB, MISSING]).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("<faultcode>soapenv:Server</faultcode>"),
        "{body}"
    );
    assert!(body.contains("1 of 3 notifications not finished"), "{body}");
    assert!(!body.contains("<Ack>"));
    assert_eq!(f.field(GOOD, "Escalation_Quality__c"), json!("Good"));
    assert_eq!(f.field(MISSING, "Escalation_Quality__c"), json!("Bad"));
    assert_eq!(f.field(KB, "Escalation_Quality__c"), Value::Null);
    assert_eq!(
        heading(f, KB).len(),
        1,
        "the comment went in before the field"
    );
    let comments_before = f.lock().comments.len();
    let patches_before = f.count("PATCH", "/sobjects/Case/");

    // Salesforce delivers the same message again.
    let (status, body) = app.outbound(&[GOOD, KB, MISSING]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    assert_eq!(f.field(KB, "Escalation_Quality__c"), json!("Bad"));
    assert_eq!(
        f.field(KB, "Escalation_Quality_Reason__c"),
        json!("kb_resolvable")
    );
    assert_eq!(f.lock().comments.len(), comments_before, "no comment twice");
    assert_eq!(heading(f, KB).len(), 1);
    assert_eq!(
        f.count("PATCH", "/sobjects/Case/") - patches_before,
        1,
        "only the missing field was written"
    );

    // A third delivery finds every verdict and writes nothing.
    let log_len = f.lock().log.len();
    let (status, body) = app.outbound(&[GOOD, KB, MISSING]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    let later: Vec<_> = f.lock().log[log_len..].to_vec();
    assert!(
        later.iter().all(|(l, _)| l.starts_with("GET ")),
        "{later:?}"
    );
}

#[tokio::test]
async fn another_org_is_forbidden_and_nothing_is_called() {
    let app = spawn().await;
    let (status, body) = app
        .post_xml(
            &format!("?token={ENDPOINT_TOKEN}"),
            envelope("00D00000000OTHERAAA", &[GOOD]),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("<faultcode>soapenv:Client</faultcode>"),
        "{body}"
    );
    assert!(body.contains("another Salesforce org"), "{body}");
    // The 15-character form of the configured id matches the 18-character one sent.
    assert!(app.fake.log_after_start().is_empty());
}

#[tokio::test]
async fn the_endpoint_token_is_required() {
    let app = spawn().await;
    for query in ["", "?token=wrong", "?other=1"] {
        let (status, body) = app.post_xml(query, envelope(ORG, &[GOOD])).await;
        assert_eq!(status, 401, "{query}: {body}");
        assert!(body.contains("token"), "{body}");
    }
    assert!(app.fake.log_after_start().is_empty());
}

#[tokio::test]
async fn hostile_and_malformed_xml_is_refused_with_nothing_written() {
    let app = spawn_with(
        org(),
        CLIENT_CREDENTIALS,
        ServerSettings {
            max_body_bytes: 64 * 1024,
            ..ServerSettings::default()
        },
    )
    .await;
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&lol3;</OrganizationId></notifications></soapenv:Body></soapenv:Envelope>"#;
    let xxe = envelope(ORG, &[GOOD])
        .replace(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
        )
        .replace(
            "<sf:CaseNumber>00001000</sf:CaseNumber>",
            "<sf:CaseNumber>&xxe;</sf:CaseNumber>",
        );
    let undeclared = envelope(ORG, &[GOOD]).replace("00001000", "&xxe;");
    let wrong_ns = envelope(ORG, &[GOOD]).replace("2005/09/outbound", "2005/09/inbound");
    let no_case_id = envelope(ORG, &[GOOD]).replace(&format!("<sf:Id>{GOOD}</sf:Id>"), "");
    let mut latin1 = envelope(ORG, &[GOOD]).into_bytes();
    latin1.extend_from_slice(b"<!-- caf\xe9 -->");
    let truncated = envelope(ORG, &[GOOD])[..400].to_string();
    let oversized = envelope(ORG, &[GOOD]).replace(
        "<SessionId xsi:nil=\"true\"/>",
        &format!("<SessionId>{}</SessionId>", "x".repeat(70 * 1024)),
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("billion laughs", laughs.into(), 400, "DOCTYPE"),
        ("external entity", xxe.into(), 400, "DOCTYPE"),
        (
            "undeclared entity",
            undeclared.into(),
            400,
            "entity reference",
        ),
        ("wrong namespace", wrong_ns.into(), 400, "namespace"),
        ("missing Case id", no_case_id.into(), 400, "sf:Id"),
        ("not UTF-8", latin1, 400, "UTF-8"),
        ("truncated", truncated.into(), 400, "malformed XML"),
        ("oversized", oversized.into(), 413, "exceeds"),
    ];
    for (name, body, want, text) in cases {
        let (status, answer) = app
            .post_xml(&format!("?token={ENDPOINT_TOKEN}"), body)
            .await;
        assert_eq!(status, want, "{name}: {answer}");
        assert!(answer.contains(text), "{name}: {answer}");
    }
    assert!(
        app.fake.log_after_start().is_empty(),
        "{:?}",
        app.fake.lock().log
    );
}

#[tokio::test]
async fn an_expired_session_is_refreshed_once_and_the_call_repeated() {
    let app = spawn().await;
    let (status, _) = app.outbound(&[GOOD]).await;
    assert_eq!(status, 200);
    app.fake.expire_tokens();
    let (status, body) = app.outbound(&[MISSING]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    let f = &app.fake;
    assert_eq!(f.lock().grants.len(), 2, "one new token after the 401");
    let unauthorized: Vec<_> = f
        .lock()
        .log
        .iter()
        .filter(|(_, s)| *s == 401)
        .cloned()
        .collect();
    assert_eq!(unauthorized.len(), 1, "{unauthorized:?}");
    assert_eq!(f.field(MISSING, "Escalation_Quality__c"), json!("Bad"));
}

#[tokio::test]
async fn the_jwt_bearer_grant_signs_an_assertion_the_org_verifies() {
    let key = escalation_gate::helpdesk::salesforce::config::parse_rsa_pem(JWT_KEY).unwrap();
    let mut state = org();
    state.client = None;
    state.jwt = Some(JwtClient {
        client_id: CLIENT_ID.into(),
        username: USERNAME.into(),
        audience: "https://login.salesforce.com".into(),
        public_key: ring::signature::KeyPair::public_key(&key).as_ref().to_vec(),
    });
    let auth = format!(
        r#"
[helpdesk.auth]
grant = "jwt_bearer"
client_id = "{CLIENT_ID}"
username = "{USERNAME}"
private_key = "${{SF_PRIVATE_KEY}}"
"#
    );
    let app = spawn_with(state, &auth, ServerSettings::default()).await;
    let (status, body) = app.outbound(&[KB]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    assert_eq!(
        app.fake.lock().grants,
        ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    );
    assert_eq!(app.fake.field(KB, "Escalation_Quality__c"), json!("Bad"));
}

#[tokio::test]
async fn a_wrong_client_secret_fails_without_an_ack() {
    let mut state = org();
    state.client = Some((CLIENT_ID.into(), "rotated".into()));
    let app = spawn_with(state, CLIENT_CREDENTIALS, ServerSettings::default()).await;
    let (status, body) = app.outbound(&[GOOD]).await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("<Ack>"));
    assert!(!body.contains(CLIENT_SECRET));
    assert!(app.fake.lock().comments.is_empty());
}

#[tokio::test]
async fn a_long_comment_is_cut_to_4000_bytes_at_a_char_boundary() {
    let mut state = org();
    // The partner's name goes into the note: make the note far longer than a CaseComment.
    state
        .accounts
        .insert(ACCOUNT.into(), "Ünïcödé Partner ".repeat(400));
    let app = spawn_with(state, CLIENT_CREDENTIALS, ServerSettings::default()).await;
    let (status, body) = app.outbound(&[MISSING]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    let comments = app.fake.comments_on(MISSING);
    assert_eq!(comments.len(), 1);
    let text = &comments[0].body;
    assert!(text.len() <= 4000, "{}", text.len());
    assert!(text.len() > 3900, "{}", text.len());
    assert!(text.ends_with("[… truncated by escalation-gate to fit 4,000 bytes]"));
    assert!(text.starts_with("escalation-gate verdict: BAD escalation (missing_handoff)"));
}

#[tokio::test]
async fn request_limit_exceeded_is_retried_within_the_budget() {
    let app = spawn().await;
    app.fake.fail(Fail {
        method: "GET",
        path_contains: format!("sobjects/Case/{GOOD}"),
        status: 403,
        error_code: "REQUEST_LIMIT_EXCEEDED",
        times: 1,
    });
    let (status, body) = app.outbound(&[GOOD]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    assert_eq!(app.fake.count("GET", &format!("sobjects/Case/{GOOD}")), 2);

    // Beyond the budget: no Ack, Salesforce delivers again later.
    app.fake.fail(Fail {
        method: "GET",
        path_contains: format!("sobjects/Case/{KB}"),
        status: 403,
        error_code: "REQUEST_LIMIT_EXCEEDED",
        times: 5,
    });
    let (status, body) = app.outbound(&[KB]).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("soapenv:Server"), "{body}");
    assert_eq!(app.fake.count("GET", &format!("sobjects/Case/{KB}")), 2);
}

#[tokio::test]
async fn signed_json_is_verified_with_standard_webhooks() {
    let app = spawn().await;
    // The specification's vector: the signature matches, and its 2021 timestamp is too old.
    let (status, body) = app
        .signed(
            r#"{"test": 2432232314}"#,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("s old"), "{body}");
    // A wrong signature never gets as far as the time.
    let (status, body) = app
        .signed(
            r#"{"test": 2432232314}"#,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .await;
    assert_eq!(status, 401);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no signature matches")
    );
    assert!(app.fake.log_after_start().is_empty());

    // A Flow callout signed now (its signature is replayed on a tampered body below).
    let key = standard_webhooks::decode_secret(SIGNING_SECRET).unwrap();
    let now = chrono::Utc::now().timestamp();
    let payload = format!(r#"{{"case_ids": ["{GOOD}", "{BOTH}"]}}"#);
    let sig = standard_webhooks::sign(&key, "msg_flow_1", now, payload.as_bytes());
    let (status, body) = app.signed(&payload, "msg_flow_1", now, &sig).await;
    assert_eq!(status, 200, "{body}");
    let verdicts: HashMap<String, String> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ticket"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(verdicts[GOOD], "good");
    assert_eq!(verdicts[BOTH], "bad");
    assert_eq!(app.fake.field(BOTH, "Escalation_Quality__c"), json!("Bad"));

    // The same body under another id is refused once tampered with.
    let tampered = payload.replace(GOOD, MISSING);
    let (status, _) = app.signed(&tampered, "msg_flow_1", now, &sig).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_verdict_comment_that_lands_first_stands_and_ours_is_deleted() {
    let app = spawn().await;
    // Another delivery of the same Case posts its comment just before ours lands.
    app.fake.lock().racing_comment = Some(
        "escalation-gate verdict: BAD escalation (missing_handoff)\n\nWritten by the other delivery."
            .into(),
    );
    let (status, body) = app.outbound(&[GOOD]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    let comments = app.fake.comments_on(GOOD);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].body.contains("Written by the other delivery"));
    assert_eq!(app.fake.count("DELETE", "sobjects/CaseComment/"), 1);
    // The fields follow the comment on record.
    assert_eq!(app.fake.field(GOOD, "Escalation_Quality__c"), json!("Bad"));
    assert_eq!(
        app.fake.field(GOOD, "Escalation_Quality_Reason__c"),
        json!("missing_handoff")
    );
}

#[tokio::test]
async fn refused_and_unauthorised_calls_are_retried_later_not_dropped() {
    let app = spawn().await;
    // An integration user without access: an admin fixes the permission set, and the next
    // delivery goes through.
    app.fake.fail(Fail {
        method: "GET",
        path_contains: format!("sobjects/Case/{GOOD}"),
        status: 403,
        error_code: "INSUFFICIENT_ACCESS_OR_READONLY",
        times: 1,
    });
    let (status, body) = app.outbound(&[GOOD]).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("<faultcode>soapenv:Server</faultcode>"),
        "{body}"
    );
    assert!(!body.contains("<Ack>"), "{body}");
    assert_eq!(app.outbound(&[GOOD]).await, (200, ACK.to_string()));

    // The same refusal on the signed JSON path: 503 with Retry-After, not a 4xx.
    app.fake.fail(Fail {
        method: "PATCH",
        path_contains: format!("sobjects/Case/{KB}"),
        status: 400,
        error_code: "FIELD_INTEGRITY_EXCEPTION",
        times: 1,
    });
    let resp = app
        .post_signed_now(&format!(r#"{{"case_ids": ["{KB}"]}}"#), "msg_retry_1")
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("HTTP 400"),
        "{body}"
    );
}

#[tokio::test]
async fn a_case_the_community_form_checked_says_in_its_note_what_the_check_said() {
    let mut state = org();
    for (case, said) in [
        (GOOD, json!("bad")),
        (KB, json!("bad")),
        (MISSING, Value::Null),
    ] {
        state
            .cases
            .get_mut(case)
            .unwrap()
            .insert("Escalation_Precheck__c".into(), said);
    }
    let app = spawn_connector(
        state,
        CLIENT_CREDENTIALS,
        ServerSettings::default(),
        "",
        &format!(
            "{CLEAR_ANSWER}\n[helpdesk.verdict_fields]\nprecheck = \"Escalation_Precheck__c\"\n"
        ),
        Vec::new(),
    )
    .await;
    let (status, body) = app.outbound(&[GOOD, KB, MISSING]).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    let note = |case: &str| app.fake.comments_on(case)[0].body.clone();
    let fixed = note(GOOD);
    assert!(
        fixed.contains("Checked before escalating: the check said BAD; the partner fixed it before sending: what was sent is GOOD."),
        "{fixed}"
    );
    let anyway = note(KB);
    assert!(
        anyway.contains("Checked before escalating: the check said BAD; it was sent as it was."),
        "{anyway}"
    );
    assert!(!note(MISSING).contains("Checked before escalating"));
    let metrics = crate::helpers::get_text(&app.client, &app.metrics_url).await;
    for verdict in ["good", "bad"] {
        assert_eq!(
            crate::helpers::metric_value(
                &metrics,
                "escalation_gate_prechecked_escalations_total",
                &["precheck=\"bad\"", &format!("verdict=\"{verdict}\"")]
            ),
            Some(1.0),
            "{verdict}"
        );
    }
}
