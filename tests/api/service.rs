//! The running service under hostile and flaky conditions: client request ids, slow and idle
//! clients, metrics access and label bounds, retry semantics, what a failure names.

use std::time::Duration;

use escalation_gate::server::ServerSettings;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fakes::zendesk::*;
use crate::helpers::*;

/// Longest a test waits for something that must happen; only a guard against hanging.
const GUARD: Duration = Duration::from_secs(30);

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

/// The service with `settings`, against the fake Zendesk; and its address as `host:port`.
async fn spawn_set(settings: ServerSettings) -> (TestApp<FakeZendesk>, String) {
    let app = spawn_with(
        zendesk().await,
        Options {
            settings,
            ..Options::default()
        },
    )
    .await;
    let addr = app.address.trim_start_matches("http://").to_string();
    (app, addr)
}

fn handed_off(id: u64) -> Value {
    ticket(
        id,
        "Report builder hangs on the preview step",
        "The report builder shows a spinner forever on the preview step for one tenant.",
        &complete_handoff(),
    )
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_when_it_has_a_safe_shape() {
    let app = spawn_app(zendesk().await).await;
    let id_for = |sent: String| {
        let req = app
            .client
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", sent);
        async move {
            let resp = req.send().await.unwrap();
            resp.headers()["x-request-id"].to_str().unwrap().to_string()
        }
    };
    assert_eq!(id_for("zd-4711.retry_2".into()).await, "zd-4711.retry_2");
    for forged in [
        r#"abc level=ERROR msg="Webhook refused" connector=other"#.to_string(),
        "a".repeat(65),
        "semi;colon".to_string(),
        String::new(),
    ] {
        let got = id_for(forged.clone()).await;
        assert_ne!(got, forged);
        assert!(uuid::Uuid::parse_str(&got).is_ok(), "{got} is generated");
    }
}

#[tokio::test]
async fn slow_and_idle_clients_are_closed_and_deliveries_still_answered() {
    let settings = ServerSettings {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        max_connections: 8,
        ..Options::default().settings
    };
    let (app, addr) = spawn_set(settings).await;
    app.fake.put_ticket(handed_off(70));
    // One that sends headers and never its body (first, so it holds an ordinary connection,
    // not one of the reserve's), and more idle connections than the limit.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    slow.write_all(
        b"POST /hooks/acme HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"ticket_id\"",
    )
    .await
    .unwrap();

    let delivery = tokio::time::timeout(settings.request_timeout, app.escalate(70))
        .await
        .expect("the delivery is answered within the request time limit");
    assert_eq!(delivery.status(), 200);
    assert_eq!(app.notes(70).len(), 1);

    let mut answer = Vec::new();
    tokio::time::timeout(GUARD, slow.read_to_end(&mut answer))
        .await
        .expect("the slow client's connection is closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    for mut s in idle {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(GUARD, s.read_to_end(&mut rest))
            .await
            .expect("an idle connection is closed");
        assert!(
            rest.is_empty() || read.is_err(),
            "nothing is sent to an idle client"
        );
    }
    app.shut_down().await;
}

#[tokio::test]
async fn metrics_are_served_on_their_own_address_only() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(handed_off(71));
    assert_eq!(app.escalate(71).await.status(), 200);
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), 404);
    assert!(!public.text().await.unwrap().contains("escalation_gate_"));
    let text = get_text(&app.client, &app.metrics_url).await;
    assert!(
        text.contains(&format!(r#"escalation_gate_escalations_assessed_total{{{},partner="Acme IT Services",verdict="good"}}"#, app.label())),
        "{text}"
    );
}

#[tokio::test]
async fn a_partner_the_connector_does_not_name_is_counted_as_other() {
    let app = spawn_app(zendesk().await).await;
    let stranger = "Partner from a free-text field 6f0e7d";
    app.fake
        .put_organization(json!({"id": 777, "name": stranger}));
    let mut t = handed_off(72);
    t["organization_id"] = json!(777);
    app.fake.put_ticket(t);
    let judged = json_of(app.escalate(72).await).await;
    assert_eq!(judged["results"][0]["verdict"], "good", "{judged}");
    let text = get_text(&app.client, &app.metrics_url).await;
    assert!(!text.contains(stranger), "{text}");
    assert_eq!(
        metric_value(
            &text,
            "escalation_gate_escalations_assessed_total",
            &[&app.label(), r#"partner="other""#]
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn upstream_refusals_and_unreadable_answers_ask_for_redelivery_and_are_counted() {
    let app = spawn_app(zendesk().await).await;
    let retries = |text: &str, reason: &str| {
        metric_value(
            text,
            "escalation_gate_webhook_retries_total",
            &[&app.label(), &format!("reason=\"{reason}\"")],
        )
    };
    for (id, route, failure, cause) in [
        (
            73,
            "GET /api/v2/tickets/73",
            Failure::Status(401),
            "HTTP 401",
        ),
        (
            74,
            "GET /api/v2/tickets/74",
            Failure::Status(403),
            "HTTP 403",
        ),
        (
            75,
            "PUT /api/v2/tickets/75",
            Failure::Status(422),
            "HTTP 422",
        ),
        (76, "GET /api/v2/tickets/76", Failure::Truncated, "not JSON"),
    ] {
        app.fake.put_ticket(handed_off(id));
        app.fake.fail_next(route, vec![failure]);
        let resp = app.escalate(id).await;
        assert_eq!(resp.status(), 503, "ticket {id}");
        assert!(resp.headers().get("retry-after").is_some());
        let body = json_of(resp).await;
        assert_eq!(body["error"], "upstream_unavailable");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(cause), "{detail}");
        let host = app.fake.url().trim_start_matches("http://").to_string();
        assert!(
            detail.contains(&host),
            "the detail names the host: {detail}"
        );
        assert!(app.notes(id).is_empty());
        // Once the cause is gone, the redelivery is judged and written once.
        assert_eq!(app.escalate(id).await.status(), 200);
        assert_eq!(app.notes(id).len(), 1);
    }
    let after = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(retries(&after, "refused"), Some(3.0), "{after}");
    assert_eq!(retries(&after, "invalid"), Some(1.0), "{after}");
}

#[tokio::test]
async fn a_huge_ticket_id_is_a_malformed_body() {
    let app = spawn_with(
        zendesk().await,
        Options {
            settings: ServerSettings::default(),
            ..Options::default()
        },
    )
    .await;
    let body = format!(
        r#"{{"ticket_id": "{}", "event": "escalated"}}"#,
        "9".repeat(200_000)
    );
    let resp = app.post_signed(&body).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"], "bad_request");
    assert!(app.fake.requests().is_empty());
}

#[tokio::test]
async fn an_unreachable_helpdesk_is_named_with_the_cause() {
    let closed = closed_port();
    let app = spawn_with(
        zendesk().await,
        Options {
            vars: vec![("ZD_URL", format!("http://{closed}"))],
            ..Options::default()
        },
    )
    .await;
    let resp = app.escalate(77).await;
    assert_eq!(resp.status(), 503);
    let detail = json_of(resp).await["detail"].as_str().unwrap().to_string();
    assert!(detail.contains(&closed.to_string()), "{detail}");
    assert!(detail.contains("connection refused"), "{detail}");
}

/// Runs `escalation-gate sweep` for the test connector against `zendesk`, with `RUST_LOG` as
/// given (unset when `None`).
async fn sweep_logs(
    zendesk: &crate::fakes::zendesk::FakeZendesk,
    rust_log: Option<&str>,
) -> String {
    let dir = connectors_dir(&connector_toml(
        API_TOKEN_AUTH,
        "helpdesk",
        "[sweep]\nquery = \"tags:partner_escalation\"\n",
    ));
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_escalation-gate"));
    cmd.args(["sweep", "--connector", "acme", "--connectors"])
        .arg(dir.path())
        .envs(zendesk_vars(zendesk))
        .env_remove("RUST_LOG");
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    let out = cmd.output().await.unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn the_sweep_command_logs_as_rust_log_says_and_names_the_failing_host() {
    let zendesk = crate::fakes::zendesk::FakeZendesk::start().await;
    // A rate-limited search is retried, which is logged at `info`.
    let limited = || {
        zendesk.fail_next(
            "GET /api/v2/search",
            vec![Failure::RateLimited {
                retry_after_secs: 0,
            }],
        )
    };
    limited();
    let quiet = sweep_logs(&zendesk, None).await;
    assert!(!quiet.contains("Upstream call will be retried"), "{quiet}");
    limited();
    let info = sweep_logs(&zendesk, Some("escalation_gate=info")).await;
    assert!(info.contains("Upstream call will be retried"), "{info}");

    zendesk.set_down(true);
    let down = sweep_logs(&zendesk, None).await;
    let host = zendesk.url().trim_start_matches("http://").to_string();
    assert!(
        down.contains("Upstream call gave up")
            && down.contains(&format!("{host} answered HTTP 503")),
        "{down}"
    );
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_take_turns_and_write_once() {
    let app = spawn_app(zendesk().await).await;
    app.fake.put_ticket(handed_off(78));
    let (a, b, c, d, e, f) = tokio::join!(
        app.escalate(78),
        app.escalate(78),
        app.escalate(78),
        app.escalate(78),
        app.escalate(78),
        app.escalate(78)
    );
    let answers = [a, b, c, d, e, f];
    let mut written = Vec::new();
    for resp in answers {
        assert_eq!(resp.status(), 200);
        written.push(json_of(resp).await["results"][0]["written"].clone());
    }
    assert_eq!(
        written.iter().filter(|w| *w == "now").count(),
        1,
        "{written:?}"
    );
    assert_eq!(app.notes(78).len(), 1);
    // The later deliveries read the verdict and wrote nothing: one write, no conflict.
    assert_eq!(app.fake.count("PUT /api/v2/tickets/78"), 1);
    assert!(app.fake.requests().iter().all(|r| r.status != 409));
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_counted_once() {
    const LOST: &str = "Lost Answer Partner";
    let app = spawn_with(zendesk().await, Options {
        // Naming the partner in an override gives it its own metric label.
        extra_toml: format!(
            "[[handoff.overrides]]\npartner = \"{LOST}\"\nrules = [{{ field = \"steps\", rule = \"present\" }}]\n"
        ),
        ..Options::default()
    })
    .await;
    app.fake.put_organization(json!({"id": 779, "name": LOST}));
    let mut t = handed_off(79);
    t["organization_id"] = json!(779);
    app.fake.put_ticket(t);
    let counted = || async {
        metric_value(
            &get_text(&app.client, &app.metrics_url).await,
            "escalation_gate_escalations_assessed_total",
            &[&app.label(), &format!("partner=\"{LOST}\"")],
        )
    };
    // The verdict write is applied, but its answer never reaches the service.
    app.fake
        .fail_next("PUT /api/v2/tickets/79", vec![Failure::LostAnswer]);
    let first = json_of(app.escalate(79).await).await;
    assert_eq!(first["results"][0]["written"], "now", "{first}");
    assert_eq!(app.notes(79).len(), 1);
    assert_eq!(counted().await, Some(1.0));
    // A real duplicate delivery finds the verdict: not counted again.
    let again = json_of(app.escalate(79).await).await;
    assert_eq!(again["results"][0]["written"], "already");
    assert_eq!(counted().await, Some(1.0));
    assert_eq!(app.notes(79).len(), 1);
}

#[tokio::test]
async fn a_closed_ticket_is_a_final_answer_not_a_retry() {
    let app = spawn_app(zendesk().await).await;
    let mut t = handed_off(80);
    t["status"] = json!("closed");
    app.fake.put_ticket(t);
    let resp = app.escalate(80).await;
    assert_eq!(resp.status(), 422);
    let body = json_of(resp).await;
    assert_eq!(body["error"], "unusable_ticket");
    assert!(
        body["detail"].as_str().unwrap().contains("closed"),
        "{body}"
    );
}

/// Sends `request` on a new connection and reads the answer until the server closes it.
/// (A server that closes with part of the request unread may reset the connection: what
/// arrived before counts.)
async fn raw_exchange(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_all = async {
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            answer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(GUARD, read_all)
        .await
        .expect("the server answers and closes the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body_is_read() {
    let (app, addr) = spawn_set(ServerSettings {
        // Longer than the guard: only an answer that does not wait for the body passes.
        body_read_timeout: GUARD * 2,
        ..Options::default().settings
    })
    .await;
    let mut request = b"POST /hooks/acme HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\ncontent-length: 999999999\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(b' ', 1024));
    let answer = raw_exchange(&addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert!(app.fake.requests().is_empty());
}

#[tokio::test]
async fn health_and_metrics_answer_while_webhook_connections_are_at_the_limit() {
    let settings = ServerSettings {
        max_connections: 4,
        // The held connections stay held for the whole test.
        header_read_timeout: GUARD * 2,
        body_read_timeout: GUARD * 2,
        ..Options::default().settings
    };
    let (app, addr) = spawn_set(settings).await;
    // Every ordinary connection taken by a webhook whose body never comes.
    let mut held = Vec::new();
    for _ in 0..settings.max_connections {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(
            b"POST /hooks/acme HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        held.push(s);
    }
    // Each request on a connection of its own: the test client still keeps one open from
    // start-up, an ordinary one.
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    for path in ["/healthz", "/livez"] {
        let answer =
            tokio::time::timeout(GUARD, fresh().get(format!("{}{path}", app.address)).send())
                .await
                .unwrap_or_else(|_| panic!("{path} answers at the connection limit"))
                .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }
    let metrics = tokio::time::timeout(GUARD, fresh().get(&app.metrics_url).send())
        .await
        .expect("/metrics answers at the connection limit")
        .unwrap();
    assert_eq!(metrics.status(), 200);
    // A webhook beyond the limit is told to come back rather than left waiting.
    app.fake.put_ticket(handed_off(78));
    let call = app.fake.escalation("78");
    let mut delivery = fresh()
        .post(format!("{}/hooks/{}", app.address, app.connector))
        .header("content-type", "application/json")
        .body(call.body);
    for (k, v) in &call.headers {
        delivery = delivery.header(k, v);
    }
    let late = tokio::time::timeout(GUARD, delivery.send())
        .await
        .expect("a webhook beyond the limit is answered")
        .unwrap();
    assert_eq!(late.status(), 503);
    assert!(late.headers().contains_key("retry-after"));
    assert_eq!(json_of(late).await["error"], "busy");
    assert!(app.notes(78).is_empty());
    drop(held);
}
