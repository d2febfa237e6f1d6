//! Speed and memory of `report` over 100,000 generated tickets that a loopback fake Zendesk
//! serves through Export Search Results (100 a page, cursor pagination), as the command reads
//! them: the paged read, the mapping of each ticket and the aggregation, then the HTML, CSV and
//! JSON renderings.
//!
//! Run: `cargo bench --bench report` (a plain binary, `harness = false`). Optional:
//! `EG_BENCH_TICKETS` (default 100,000). The fake generates each page on demand from the
//! ticket's number and a fixed seed, so it holds nothing and the peak resident memory is the
//! report's (plus the runtime's and the HTTP stack's). A first run over a tenth of the tickets
//! shows the memory does not grow with their number.

use std::time::Instant;

use axum::Router;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{Duration, TimeZone, Utc};
use escalation_gate::helpdesk::records::Period;
use escalation_gate::offline::report::render::{Format, render};
use escalation_gate::offline::report::{self, Audience, Options};
use escalation_gate::runtime::connector::Connector;
use serde_json::{Value, json};

mod common;
#[path = "common/export.rs"]
mod export;
#[path = "common/memory.rs"]
mod memory;
use common::SECRET;
use escalation_gate::sandbox::sample::mix;
use memory::{mib, vm};

const PARTNERS: usize = 12;
const WORDS: &[&str] = &[
    "invoice",
    "export",
    "payroll",
    "calendar",
    "sync",
    "vat",
    "credit",
    "note",
    "bank",
    "feed",
    "reconcile",
    "report",
    "timesheet",
    "overtime",
    "rounding",
    "currency",
    "tax",
    "pdf",
    "login",
    "sso",
    "token",
    "import",
    "csv",
    "ledger",
    "journal",
    "approval",
    "workflow",
    "mobile",
];

/// Ticket `i` of the generated period (Q1 2026), as the Support API returns it.
fn ticket(i: u64, total: u64) -> Value {
    let r = mix(i ^ 0x5EED_0011);
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let created = start + Duration::seconds((i * 90 * 86_400 / total) as i64);
    let escalated = !r.is_multiple_of(4);
    let mut tags = vec!["partner_case".to_string()];
    if escalated {
        match (r >> 8) % 100 {
            0..60 => {
                tags.push("escalation_good".into());
                if (r >> 16).is_multiple_of(6) {
                    tags.push("escalation_kb_gap".into());
                }
            }
            60..78 => tags.extend([
                "escalation_bad".into(),
                "escalation_missing_handoff".into(),
                format!(
                    "escalation_missing_{}",
                    ["steps", "environment"][(r % 2) as usize]
                ),
            ]),
            78..94 => tags.extend([
                "escalation_bad".into(),
                "escalation_kb_resolvable".into(),
                format!("escalation_kb_article_{}", 360_000 + (r >> 20) % 40),
            ]),
            _ => tags.push("escalation_review".into()),
        }
        if (r >> 24).is_multiple_of(9) {
            tags.push("escalation_late".into());
        }
    }
    if i.is_multiple_of(2) {
        tags.push("csat_blind_sent".into());
        if i.is_multiple_of(6) {
            tags.extend([
                "csat_blind_answered".into(),
                format!("csat_blind_score_{}", 1 + (r >> 32) % 5),
                format!("csat_blind_ces_{}", 1 + (r >> 36) % 7),
                format!(
                    "csat_blind_about_{}",
                    ["product", "support", "both"][((r >> 40) % 3) as usize]
                ),
            ]);
        }
    }
    let subject: Vec<&str> = (0..6)
        .map(|k| WORDS[(mix(r + k) % WORDS.len() as u64) as usize])
        .collect();
    let stamp = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let product = [
        "Ledgerly Invoicing",
        "Ledgerly Payroll",
        "Ledgerly Calendar",
    ][((r >> 48) % 3) as usize];
    json!({
        "id": 1_000_000 + i,
        "url": format!("https://acme.zendesk.com/api/v2/tickets/{}.json", 1_000_000 + i),
        "subject": subject.join(" "),
        "description": "Generated ticket body: the customer describes the problem in a few sentences here.",
        "status": "solved",
        "type": "incident",
        "priority": "normal",
        "tags": tags,
        "requester_id": 9001,
        "organization_id": 500 + (r >> 44) % PARTNERS as u64,
        "created_at": stamp(created),
        "updated_at": stamp(created + Duration::hours(30)),
        "via": {"channel": "email"},
        "custom_fields": [
            {"id": 1003, "value": product},
            {"id": 1001, "value": "1. Open the invoice. 2. Export to PDF. 3. See the error."},
            {"id": 1002, "value": "Cloud, EU region"},
        ],
        "result_type": "ticket",
    })
}

/// `GET /api/v2/search/export.json`: pages generated on demand, with the partners'
/// organizations side-loaded.
async fn export(total: u64, q: Query<Vec<(String, String)>>) -> axum::response::Response {
    let organizations: Vec<Value> = (0..PARTNERS)
        .map(|p| json!({"id": 500 + p, "name": format!("Partner {p:02} Services")}))
        .collect();
    let side_loads = [("organizations".to_string(), Value::from(organizations))];
    axum::Json(export::page(
        &q,
        total,
        |i| ticket(i, total),
        side_loads.into_iter().collect(),
    ))
    .into_response()
}

fn connector(base: &str) -> Connector {
    let text = format!(
        r#"
[helpdesk]
type = "zendesk"
base_url = "{base}"
signing_secrets = ["${{SECRET}}"]
product_field = "product"

[helpdesk.auth]
kind = "api_token"
email = "bench@example.com"
token = "${{SECRET}}"

[helpdesk.fields]
1001 = "steps"
1002 = "environment"
1003 = "product"
1004 = "end_customer_email"

[[handoff.rules]]
field = "steps"
rule = "present"

[knowledge_base]
backend = "helpdesk"

[survey]
public_url = "https://gate.example.com"
link_secrets = ["${{LINK_KEY}}"]
company = "Ledgerly"

[survey.delivery]
kind = "webhook"
url = "https://surveys.example.com/requests"
secret = "${{WHSEC}}"

[survey.sink]
kind = "ticket"

[report]
min_escalations = 20

[[report.tiers]]
name = "Gold"
label = "discount +5 %"
min_good_ratio = 0.75
min_support_csat = 3.2

[[report.tiers]]
name = "Silver"
label = "discount +2 %"
min_good_ratio = 0.6
"#
    );
    let env = |name: &str| match name {
        "SECRET" => Some(SECRET.to_string()),
        "LINK_KEY" => Some("a-link-secret-of-more-than-32-characters".to_string()),
        "WHSEC" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()),
        _ => None,
    };
    let valid = escalation_gate::config::parse("bench", &text, std::path::Path::new("."), &env)
        .unwrap_or_else(|p| panic!("{p:?}"));
    Connector::build(valid).expect("connector builds")
}

/// A line of /proc/self/status in KiB (Linux).
async fn run(total: u64) -> (f64, f64, u64, usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route("/api/v2/search/export.json", get(move |q| export(total, q)));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let connector = connector(&base);
    let options = Options {
        period: Period {
            from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            to: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
        },
        partner: None,
        audience: Audience::Vendor,
    };
    let start = Instant::now();
    let card = report::build(
        report::Source::of(&connector).expect("Zendesk reads a period back"),
        &options,
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("the report reads every page");
    let read = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let bytes: usize = [Format::Html, Format::Csv, Format::Json]
        .into_iter()
        .map(|f| render(&card, f).expect("renders").len())
        .sum();
    let rendered = start.elapsed().as_secs_f64();
    server.abort();
    (read, rendered, card.tickets, bytes)
}

fn main() {
    let total: u64 = std::env::var("EG_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("report bench (Zendesk Export Search Results on loopback, 100 tickets a page)");
    for n in [total / 10, total] {
        let (read, rendered, tickets, bytes) = rt.block_on(run(n));
        println!(
            "{tickets:>7} tickets    read + aggregate {read:.2} s ({:.0} tickets/s), render HTML+CSV+JSON {rendered:.3} s ({:.0} KB), peak RSS (VmHWM) so far {}",
            tickets as f64 / read,
            bytes as f64 / 1e3,
            mib(vm("self", "VmHWM:"), 0)
        );
    }
}
