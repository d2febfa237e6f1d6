//! Syncing a knowledge-base mirror from a loopback fake Zendesk Help Center: a first (full) sync
//! of 50,000 articles through the incremental article export (1,000 a page, a 429 with
//! `Retry-After: 1` in the middle), a sync of changes after 100 edits, and `serve` started again
//! on the persisted mirror (time until `/healthz` reports it `ready`).
//!
//! Run: `cargo bench --bench kb_mirror` (a plain binary, `harness = false`). Optional:
//! `EG_BENCH_ARTICLES` (default 50,000). Each sync is the release binary's `kb sync` as its own
//! process: wall time, requests the fake answered, and the process's peak resident memory
//! (VmHWM, read every 5 ms while it runs). No network latency: a real Help Center's round trips
//! and rate limits are what a real sync waits for.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use escalation_gate::helpdesk::zendesk::sandbox::{Failure, FakeZendesk};
use escalation_gate::sandbox::sample::mix;
use serde_json::{Value, json};

mod common;
#[path = "common/connector.rs"]
mod connector;
#[path = "common/memory.rs"]
mod memory;
use common::SECRET;
use memory::{mib, vm};

const CONNECTOR: &str = "bench";
const EXPORT: &str = "GET /api/v2/help_center/incremental/articles";

const WORDS: [&str; 32] = [
    "calendar",
    "sync",
    "invoice",
    "export",
    "payroll",
    "ledger",
    "password",
    "token",
    "report",
    "printer",
    "mailbox",
    "backup",
    "restore",
    "folder",
    "license",
    "upgrade",
    "database",
    "timeout",
    "certificate",
    "proxy",
    "webhook",
    "schedule",
    "approval",
    "currency",
    "tax",
    "journal",
    "dashboard",
    "widget",
    "permission",
    "role",
    "archive",
    "import",
];

/// Article `i`: a title and about 1,500 characters of body, the same at every run.
fn article(i: u64, updated: &str) -> Value {
    let word = |k: u64| WORDS[(mix(i * 31 + k) % WORDS.len() as u64) as usize];
    let title = format!(
        "{} {} fails with error E{:04}",
        word(1),
        word(2),
        i % 10_000
    );
    let body: String = (0..220).map(|k| word(k + 3)).collect::<Vec<_>>().join(" ");
    json!({
        "id": 1_000_000 + i,
        "title": title,
        "body": format!("<p>{body}</p>"),
        "locale": "en-us",
        "created_at": "2025-01-01T00:00:00Z",
        "edited_at": updated,
        "updated_at": updated,
    })
}

/// `escalation-gate` with `args` on the bench's connectors and index folders.
fn command(folder: &Path, token: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_escalation-gate"));
    cmd.args(args)
        .arg("--connectors")
        .arg(folder.join("connectors"))
        .arg("--index-dir")
        .arg(folder.join("index"))
        .env("BENCH_SIGNING_SECRET", SECRET)
        .env("BENCH_ZENDESK_TOKEN", token);
    cmd
}

/// Runs `escalation-gate` with `args` on the bench's folders until it exits; its wall time,
/// peak resident memory (KiB) and standard output.
fn run(folder: &Path, token: &str, args: &[&str]) -> (Duration, Option<u64>, String) {
    let started = Instant::now();
    let mut child = command(folder, token, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the command starts");
    let pid = child.id().to_string();
    let mut peak = None;
    while child.try_wait().expect("the command runs").is_none() {
        peak = vm(&pid, "VmHWM:").or(peak);
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("the command ends");
    assert!(out.status.success(), "{args:?} failed");
    (
        started.elapsed(),
        peak,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn main() {
    let n: u64 = std::env::var("EG_BENCH_ARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let folder = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(folder.path().join("connectors")).expect("connectors folder");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let zendesk = rt.block_on(FakeZendesk::start());
    for i in 0..n {
        let updated = chrono::DateTime::from_timestamp(1_735_689_600 + i as i64, 0)
            .expect("a time")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        zendesk.put_article(article(i, &updated));
    }
    std::fs::write(
        folder
            .path()
            .join("connectors")
            .join(format!("{CONNECTOR}.toml")),
        connector::zendesk_connector(&zendesk, "backend = \"mirror\""),
    )
    .expect("connector file");
    let token = zendesk.api_token().1.to_string();

    println!(
        "knowledge-base mirror bench (release binary, {} cores), {n} articles in the fake Help Center",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    // Half-way through the first sync, one 429 with Retry-After: 1.
    let mut failures = vec![Failure::Served; (n / 1000 / 2) as usize];
    failures.push(Failure::RateLimited {
        retry_after_secs: 1,
    });
    zendesk.fail_next(EXPORT, failures);
    let sync = ["kb", "sync", "--connector", CONNECTOR];
    let (took, peak, out) = run(folder.path(), &token, &sync);
    let requests = zendesk.count(EXPORT);
    let report: Value = serde_json::from_str(&out).expect("kb sync prints JSON");
    println!(
        "first sync              {:.1} s, {requests} requests (one 429 waited out), {} articles, peak RSS {}",
        took.as_secs_f64(),
        report["articles"],
        mib(peak, 1)
    );

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for i in 0..100 {
        let mut edited = article(i * (n / 100).max(1), &now);
        edited["body"] = json!(format!("<p>Edited: restart the service. {i}</p>"));
        zendesk.put_article(edited);
    }
    let (took, peak, out) = run(folder.path(), &token, &sync);
    let report: Value = serde_json::from_str(&out).expect("kb sync prints JSON");
    println!(
        "sync after 100 edits    {:.2} s, {} requests, {} changed, peak RSS {}",
        took.as_secs_f64(),
        zendesk.count(EXPORT) - requests,
        report["changed"],
        mib(peak, 1)
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let started = Instant::now();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = command(folder.path(), &token, &["serve", "--listen", &listen])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve starts");
    let client = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/healthz");
    let ready = loop {
        if let Ok(Some(exit)) = serve.try_wait() {
            panic!("serve stopped: {exit}");
        }
        let state = rt.block_on(async {
            let answer = client.get(&health).send().await.ok()?;
            let h: Value = answer.json().await.ok()?;
            Some(h["mirrors"][CONNECTOR]["state"].clone())
        });
        if state.as_ref().and_then(Value::as_str) == Some("ready") {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    println!(
        "restart on the mirror   {:.3} s to /healthz with the mirror ready ({} articles, no sync first)",
        ready.as_secs_f64(),
        n
    );
}
