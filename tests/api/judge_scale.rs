//! The judge at scale: its own bounded pool (health and metrics answer while it is busy, a full
//! queue answers 503 + Retry-After), and the embedded index persisted and reused while the
//! articles do not change.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use escalation_gate::helpdesk::zendesk::webhook;
use escalation_gate::runtime::connector::Runtime;
use escalation_gate::runtime::judge_pool::JudgePool;
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;

/// How often a test looks again at something under way.
const POLL: Duration = Duration::from_millis(5);

/// Occupies every thread of `pool` until the returned sender is dropped or sent to.
async fn occupy(pool: &Arc<JudgePool>) -> std::sync::mpsc::Sender<()> {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started, on_start) = tokio::sync::oneshot::channel::<()>();
    let pool = Arc::clone(pool);
    tokio::spawn(async move {
        pool.run(move || {
            let _ = started.send(());
            let _ = wait.recv();
        })
        .await
    });
    on_start.await.unwrap();
    release
}

#[tokio::test]
async fn health_answers_while_the_judge_is_busy_and_a_full_queue_answers_503() {
    let pool = JudgePool::new(NonZeroUsize::MIN, 1).unwrap();
    let app = spawn_with(
        zendesk().await,
        Options {
            runtime: Runtime {
                judges: Arc::clone(&pool),
                index_dir: None,
            },
            ..Options::default()
        },
    )
    .await;
    app.fake.put_ticket(calendar_ticket(1, &complete_handoff()));
    app.fake.put_ticket(calendar_ticket(2, &complete_handoff()));

    let release = occupy(&pool).await;
    // A first delivery waits in the queue for the busy thread.
    let first = {
        let body = r#"{"ticket_id": "1", "event": "escalated"}"#;
        let stamp = now_stamp();
        let signature = webhook::sign(SECRET, &stamp, body.as_bytes());
        let request = app
            .client
            .post(&app.url)
            .header("content-type", "application/json")
            .header(webhook::TIMESTAMP, stamp)
            .header(webhook::SIGNATURE, signature)
            .body(body);
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    assert!(
        wait_until(Duration::from_secs(30), || pool.queued() == 1).await,
        "the delivery never reached the judge's queue"
    );

    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["judge_pool"],
        json!({"threads": 1, "queued": 1, "queue_capacity": 1})
    );
    let metrics = app.client.get(&app.metrics_url).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(app.get("/livez").await.status(), 200);

    // The queue is full: the next delivery is refused at once, and nothing is written.
    let refused = app.escalate(2).await;
    assert_eq!(refused.status(), 503);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "busy");
    assert!(app.notes(2).is_empty());
    assert!(app.notes(1).is_empty(), "the first is still waiting");

    release.send(()).unwrap();
    let first = first.await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(app.notes(1).len(), 1);
    // Delivered again once the judge has room, the refused one is judged.
    let again = app.escalate(2).await;
    assert_eq!(again.status(), 200);
    assert_eq!(app.notes(2).len(), 1);
}

const ARTICLE: &str = "---\nid: kb-1001\ntitle: Calendar sync stops with error E1234 after a password change\n\
url: https://help.example/kb-1001\nlocale: en-us\npublished: 2024-01-10\n---\n\
Calendar sync stops and the sync log shows error E1234 authorization expired after the user \
changed the mailbox password. Open Settings, Integrations, Calendar, then disconnect and \
connect the calendar again.\n";

const OTHER: &str = "---\nid: kb-1002\ntitle: Invoice PDFs show empty boxes instead of characters\n\
url: https://help.example/kb-1002\nlocale: en-us\npublished: 2023-11-03\n---\n\
Choose a Unicode font such as Noto Sans in the invoice template and export again.\n";

const THIRD: &str = "---\nid: kb-1003\ntitle: Bank feed shows transactions a day late\n\
url: https://help.example/kb-1003\nlocale: en-us\npublished: 2023-10-01\n---\n\
Bank feeds import once a night; use Refresh feed to import the day's transactions now.\n";

/// Every file below `dir` with its size and modification time.
fn files(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

/// The index generations (one folder each) of the test connector.
fn generations(index: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(index.join(CONNECTOR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect()
}

async fn spawn_local(articles: &Path, index: &Path) -> TestApp<FakeZendesk> {
    spawn_with(
        zendesk().await,
        Options {
            kb_backend: "local",
            // The tests here are about the index, not the bar: one the matching article clears.
            extra_toml: format!(
                "path = \"{}\"\nthreshold = 0.7\nreview_bound = 0.7\n",
                articles.display()
            ),
            runtime: Runtime {
                index_dir: Some(index.to_path_buf()),
                ..Runtime::default()
            },
            // Each start opens the same connector's index.
            connector: Some(CONNECTOR.into()),
            ..Options::default()
        },
    )
    .await
}

async fn kb_status(app: &TestApp<FakeZendesk>) -> Value {
    let health: Value = app.get("/healthz").await.json().await.unwrap();
    health["knowledge_bases"][&app.connector].clone()
}

/// A temporary folder with two articles in `articles/`, and where `index/` goes.
fn two_articles() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (articles, index) = (dir.path().join("articles"), dir.path().join("index"));
    std::fs::create_dir_all(&articles).unwrap();
    std::fs::write(articles.join("calendar.md"), ARTICLE).unwrap();
    std::fs::write(articles.join("invoice.md"), OTHER).unwrap();
    (dir, articles, index)
}

#[tokio::test]
async fn a_restart_with_unchanged_articles_reuses_the_persisted_index() {
    let (_dir, articles, index) = two_articles();

    let app = spawn_local(&articles, &index).await;
    let status = kb_status(&app).await;
    assert_eq!(status["state"], "ready");
    assert_eq!(status["index"], "built");
    assert_eq!(status["articles"], 2);
    app.shut_down().await;
    let first = generations(&index);
    assert_eq!(first.len(), 1, "{first:?}");
    let written = files(&first[0]);

    // Same articles: the index is opened, not built again, and judges.
    let app = spawn_local(&articles, &index).await;
    let status = kb_status(&app).await;
    assert_eq!(status["index"], "reused");
    assert_eq!(status["rebuilding"], false);
    assert_eq!(status["articles"], 2);
    app.fake.put_ticket(calendar_ticket(7, &complete_handoff()));
    let resp = app.escalate(7).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["results"][0]["assessment"]["kb"]["resolvable_by"]["article_id"],
        "kb-1001"
    );
    app.shut_down().await;
    assert_eq!(
        files(&first[0]),
        written,
        "nothing in the index was rewritten"
    );

    // Changed articles: a new generation replaces the old one.
    std::fs::write(articles.join("bank.md"), THIRD).unwrap();
    let app = spawn_local(&articles, &index).await;
    let mut status = kb_status(&app).await;
    for _ in 0..6000 {
        if status["rebuilding"] == false {
            break;
        }
        assert_eq!(status["index"], "stale", "the old index serves meanwhile");
        tokio::time::sleep(POLL).await;
        status = kb_status(&app).await;
    }
    assert_eq!(status["index"], "built");
    assert_eq!(status["articles"], 3);
    app.shut_down().await;
    let now = generations(&index);
    assert_eq!(now.len(), 1, "the old generation is removed: {now:?}");
    assert_ne!(now, first);
}

#[tokio::test]
async fn a_damaged_persisted_index_is_built_again() {
    let (_dir, articles, index) = two_articles();
    spawn_local(&articles, &index).await.shut_down().await;
    let generation = generations(&index).remove(0);
    std::fs::write(generation.join("articles.store"), b"not a store").unwrap();

    let app = spawn_local(&articles, &index).await;
    let status = kb_status(&app).await;
    assert_eq!(status["state"], "ready");
    assert_eq!(status["index"], "built");
    assert_eq!(status["articles"], 2);
    app.fake.put_ticket(calendar_ticket(8, &complete_handoff()));
    let body: Value = app.escalate(8).await.json().await.unwrap();
    assert_eq!(
        body["results"][0]["assessment"]["kb"]["resolvable_by"]["article_id"],
        "kb-1001"
    );
    app.shut_down().await;
}
