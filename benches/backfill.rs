//! Speed of `backfill` over generated escalations that a loopback fake Zendesk serves as the
//! command reads them: the escalated tickets through Export Search Results (100 a page, cursor
//! pagination), then for each one its audits (when it was escalated), the ticket itself, the
//! judgement against the demo knowledge base (`connectors/demo/articles`, the embedded index)
//! and, with `--write`, the verdict's conditional update. Three runs over the same tickets: a
//! dry run, a run that writes every verdict, and a rerun that finds them all judged.
//!
//! Run: `cargo bench --bench backfill` (a plain binary, `harness = false`). Optional:
//! `EG_BENCH_TICKETS` (default 10,000). The fake generates each answer from the ticket's number
//! and keeps only the set of tickets written, so the figures are the backfill's own work plus
//! the loopback HTTP round trips (no network latency or rate limit: a real helpdesk's are what a
//! real run waits for).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{Duration, TimeZone, Utc};
use escalation_gate::helpdesk::records::Period;
use escalation_gate::offline::backfill::{self, Line, Mode, Options, Progress, Summary};
use escalation_gate::runtime::connector::Connector;
use serde_json::{Value, json};

mod common;
#[path = "common/export.rs"]
mod export;
use common::SECRET;
use escalation_gate::sandbox::sample::mix;

const FIRST_ID: u64 = 1_000_000;
const PARTNERS: u64 = 12;

/// What each generated case is about: the first two are answered by a demo article.
const CASES: [(&str, &str); 4] = [
    (
        "Calendar sync stops with error E1234",
        "Calendar sync stopped for one user with error E1234 authorization expired after the user changed the mailbox password.",
    ),
    (
        "PDF export of invoices fails with LX-5521",
        "Exporting a large invoice to PDF fails with error LX-5521 and the export job stops at 80 percent.",
    ),
    (
        "Payroll run shows rounding differences",
        "The monthly payroll run shows rounding differences of one cent between the payslip and the journal.",
    ),
    (
        "SSO login loops back to the sign-in page",
        "Users signing in through the company identity provider are sent back to the sign-in page again and again.",
    ),
];

struct Fake {
    total: u64,
    written: Mutex<HashSet<u64>>,
}

fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Ticket `i`'s creation (spread over Q1 2026) and escalation (1 to 40 hours later).
fn times(i: u64, total: u64) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let created = start + Duration::seconds((i * 90 * 86_400 / total) as i64);
    (created, created + Duration::hours(1 + (mix(i) % 40) as i64))
}

fn ticket(fake: &Fake, i: u64) -> Value {
    let r = mix(i ^ 0xBAC0_F111);
    let (created, escalated) = times(i, fake.total);
    let (subject, text) = CASES[(r % CASES.len() as u64) as usize];
    let mut tags = vec!["partner_escalation"];
    if fake.written.lock().unwrap().contains(&i) {
        tags.push("escalation_good");
    }
    json!({
        "id": FIRST_ID + i,
        "url": format!("https://acme.zendesk.com/api/v2/tickets/{}.json", FIRST_ID + i),
        "subject": subject,
        "description": text,
        "status": "open",
        "tags": tags,
        "requester_id": 9001,
        "organization_id": 500 + (r >> 8) % PARTNERS,
        "created_at": stamp(created),
        "updated_at": stamp(escalated),
        "via": {"channel": "email"},
        "custom_fields": [
            {"id": 1001, "value": "1. Open the invoice. 2. Export to PDF. 3. See the error."},
            {"id": 1002, "value": if (r >> 16).is_multiple_of(5) { Value::Null } else { json!("Cloud, EU region") }},
            {"id": 1003, "value": "Ledgerly"},
        ],
    })
}

type Shared = Arc<Fake>;

/// `GET /api/v2/search/export.json`: pages generated on demand.
async fn export(State(fake): State<Shared>, q: Query<Vec<(String, String)>>) -> impl IntoResponse {
    axum::Json(export::page(
        &q,
        fake.total,
        |i| ticket(&fake, i),
        Default::default(),
    ))
}

fn index(id: &str) -> u64 {
    id.trim_end_matches(".json").parse::<u64>().unwrap() - FIRST_ID
}

/// `GET /api/v2/tickets/{id}/audits.json`: created, then escalated by an agent's update.
async fn audits(State(fake): State<Shared>, Path(id): Path<String>) -> impl IntoResponse {
    let (created, escalated) = times(index(&id), fake.total);
    axum::Json(json!({
        "audits": [
            {"id": 1, "created_at": stamp(created), "events": [
                {"id": 2, "type": "Create", "field_name": "tags", "value": []},
            ]},
            {"id": 3, "created_at": stamp(escalated), "events": [
                {"id": 4, "type": "Change", "field_name": "tags", "value": ["partner_escalation"], "previous_value": []},
            ]},
        ],
        "count": 2, "next_page": null, "previous_page": null,
    }))
}

/// `GET` and `PUT /api/v2/tickets/{id}.json`.
async fn show(State(fake): State<Shared>, Path(id): Path<String>) -> impl IntoResponse {
    let t = ticket(&fake, index(&id));
    let org = t["organization_id"].clone();
    axum::Json(json!({
        "ticket": t,
        "users": [{"id": 9001, "email": "dana@customer.example", "locale": "en-US"}],
        "organizations": [{"id": org, "name": format!("Partner {} Services", org)}],
    }))
}

async fn update(State(fake): State<Shared>, Path(id): Path<String>) -> impl IntoResponse {
    let i = index(&id);
    fake.written.lock().unwrap().insert(i);
    axum::Json(json!({"ticket": ticket(&fake, i), "audit": {"id": 5, "events": []}}))
}

fn connector(base: &str) -> Connector {
    let text = format!(
        r#"
[helpdesk]
type = "zendesk"
base_url = "{base}"
signing_secrets = ["${{SECRET}}"]

[helpdesk.auth]
kind = "api_token"
email = "bench@example.com"
token = "${{SECRET}}"

[helpdesk.fields]
1001 = "steps"
1002 = "environment"
1003 = "product"

[[handoff.rules]]
field = "environment"
rule = "present"

[knowledge_base]
backend = "local"
path = "demo/articles"

[sweep]
query = "tags:partner_escalation"
"#
    );
    let env = |name: &str| (name == "SECRET").then(|| SECRET.to_string());
    let valid =
        escalation_gate::config::parse("bench", &text, std::path::Path::new("connectors"), &env)
            .unwrap_or_else(|p| panic!("{p:?}"));
    Connector::build(valid).expect("connector builds")
}

/// Counts the lines, as the command writes them.
struct Lines(usize);

impl Progress for Lines {
    fn found(&mut self, _total: usize) {}

    fn done(&mut self, line: Option<&Line>) -> std::io::Result<()> {
        if let Some(line) = line {
            self.0 += serde_json::to_vec(line)?.len();
        }
        Ok(())
    }
}

async fn run(connector: &Connector, mode: Mode) -> (f64, Summary) {
    let options = Options {
        period: Period {
            from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            to: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
        },
        query: None,
        mode,
    };
    let start = Instant::now();
    let summary = backfill::run(connector, &options, &mut Lines(0), &|| false)
        .await
        .expect("the backfill runs");
    (start.elapsed().as_secs_f64(), summary)
}

fn main() {
    let total: u64 = std::env::var("EG_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = Arc::new(Fake {
            total,
            written: Mutex::new(HashSet::new()),
        });
        let app = Router::new()
            .route("/api/v2/search/export.json", get(export))
            .route("/api/v2/tickets/{id}/audits.json", get(audits))
            .route("/api/v2/tickets/{id}", get(show).put(update))
            .with_state(Arc::clone(&fake));
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let connector = connector(&base);
        println!(
            "backfill bench ({total} escalations on a loopback fake Zendesk, demo knowledge base)"
        );
        for (name, mode) in [
            ("dry run", Mode::DryRun),
            ("--write", Mode::Write),
            ("rerun --write", Mode::Write),
        ] {
            let (secs, s) = run(&connector, mode).await;
            println!(
                "{name:<14} {secs:>7.2} s ({:>5.0} escalations/s)  {s}",
                s.found as f64 / secs
            );
        }
        server.abort();
    });
}
