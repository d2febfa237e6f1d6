//! The knowledge-base mirror (`backend = "mirror"`) against the fake Zendesk: the judge searches
//! the mirror, not the Help Center; the helpdesk's search serves until the first sync; edits,
//! archiving and rate limits on the way; a persisted mirror serves at once after a restart.

use std::time::Duration;

use escalation_gate::runtime::connector::Runtime;
use serde_json::Value;

use crate::fakes::zendesk::*;
use crate::helpers::*;
use crate::zendesk::calendar_neighbours;

const EXPORT: &str = "GET /api/v2/help_center/incremental/articles";
const SEARCH: &str = "GET /api/v2/help_center/articles/search";

async fn with_articles() -> FakeZendesk {
    let zd = zendesk().await;
    zd.put_article(calendar_article(360001, "E1234", "2024-01-01T00:00:00Z"));
    for a in calendar_neighbours() {
        zd.put_article(a);
    }
    zd.put_ticket(calendar_ticket(5, &complete_handoff()));
    zd
}

/// `n` articles `{title} {i}` from id `first`, published a day apart from 1 March 2024.
fn put_numbered(zd: &FakeZendesk, first: u64, n: u64, title: &str, body: &str) {
    for i in 0..n {
        zd.put_article(article(
            first + i,
            &format!("{title} {i}"),
            body,
            &format!("2024-03-{:02}T00:00:00Z", i + 1),
        ));
    }
}

fn mirror_options() -> Options {
    Options {
        kb_backend: "mirror",
        ..Options::default()
    }
}

async fn mirror_state(app: &TestApp<FakeZendesk>) -> Value {
    let health: Value = app.get("/healthz").await.json().await.unwrap();
    health["mirrors"][&app.connector].clone()
}

async fn wait_mirror(app: &TestApp<FakeZendesk>, state: &str) -> Value {
    for _ in 0..100 {
        let status = mirror_state(app).await;
        if status["state"] == state {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mirror never {state}: {}", mirror_state(app).await);
}

#[tokio::test]
async fn the_judge_searches_the_mirror_and_never_the_help_center() {
    let app = spawn_with(with_articles().await, mirror_options()).await;
    let status = wait_mirror(&app, "ready").await;
    assert_eq!(status["articles"], 3, "{status}");
    assert!(status["last_sync"].is_string(), "{status}");
    let body: Value = app.escalate(5).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "bad", "{body}");
    let note = &app.notes(5)[0];
    assert!(note.contains("articles/360001-"), "{note}");
    assert!(!note.contains("local mirror"), "{note}");
    assert_eq!(app.fake.count(SEARCH), 0);
    assert_eq!(app.fake.count(EXPORT), 1);
    app.shut_down().await;
}

#[tokio::test]
async fn until_a_first_sync_the_help_center_search_serves_and_the_note_says_so() {
    let zd = with_articles().await;
    zd.fail_next(EXPORT, vec![Failure::Status(500); 40]);
    let app = spawn_with(zd, mirror_options()).await;
    let status = wait_mirror(&app, "failed").await;
    assert!(
        status["error"].as_str().unwrap().contains("500"),
        "{status}"
    );
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200, "the helpdesk's search can judge");
    let body: Value = app.escalate(5).await.json().await.unwrap();
    assert_eq!(body["results"][0]["verdict"], "bad", "{body}");
    let note = &app.notes(5)[0];
    assert!(
        note.contains("searched through the helpdesk's own search, not the local mirror"),
        "{note}"
    );
    assert!(app.fake.count(SEARCH) > 0);
    let metrics = get_text(&app.client, &app.metrics_url).await;
    assert_eq!(
        metric_value(
            &metrics,
            "escalation_gate_kb_mirror_fallbacks_total",
            &[&format!("connector=\"{}\"", app.connector)]
        ),
        Some(1.0),
        "{metrics}"
    );
    app.shut_down().await;
}

/// A connector built on `fake` with a mirror kept in `dir`, not served: the tests sync by hand.
fn mirrored(
    fake: &FakeZendesk,
    id: &str,
    dir: &std::path::Path,
) -> escalation_gate::runtime::connector::Connector {
    let opts = Options {
        runtime: Runtime {
            index_dir: Some(dir.to_path_buf()),
            ..Runtime::default()
        },
        ..mirror_options()
    };
    build_connector(fake, id, &opts)
}

/// [`mirrored`] in a folder of its own, after a first sync.
async fn synced(
    zd: &FakeZendesk,
    id: &str,
) -> (
    tempfile::TempDir,
    escalation_gate::runtime::connector::Connector,
) {
    let dir = tempfile::tempdir().unwrap();
    let connector = mirrored(zd, id, dir.path());
    connector.mirror().unwrap().sync(false).await.unwrap();
    (dir, connector)
}

async fn verdict_at(
    connector: &escalation_gate::runtime::connector::Connector,
    escalated_at: chrono::DateTime<chrono::Utc>,
) -> (String, Option<String>) {
    let loaded = connector
        .helpdesk
        .tickets
        .load(&escalation_gate::helpdesk::TicketRef {
            id: "5".into(),
            escalated_at,
            escalated_at_unknown: false,
            snapshot: None,
        })
        .await
        .unwrap();
    let v = connector.judge(&loaded.escalation).await.unwrap();
    (
        v.outcome.as_str().to_string(),
        v.kb.resolvable_by.map(|m| m.article_id),
    )
}

/// The verdict on ticket 5 escalated on 2 May 2024, as `backfill` judges it.
async fn verdict(
    connector: &escalation_gate::runtime::connector::Connector,
) -> (String, Option<String>) {
    verdict_at(connector, "2024-05-02T09:00:00Z".parse().unwrap()).await
}

#[tokio::test]
async fn an_archived_article_stops_counting_at_once_and_is_kept_for_earlier_escalations() {
    let zd = with_articles().await;
    let (_dir, connector) = synced(&zd, "mirror-archive").await;
    let mirror = connector.mirror().unwrap();
    let now = || chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        verdict_at(&connector, now()).await,
        ("bad".into(), Some("360001".into()))
    );
    let shown = zd.count("GET /api/v2/help_center/articles/360001");
    assert_eq!(
        shown, 1,
        "the article was confirmed public before the bad verdict"
    );
    zd.archive_article(360001);
    // The export lists no archived article; Show Article, asked before a bad verdict, says 404.
    assert_ne!(verdict_at(&connector, now()).await.0, "bad");
    assert!(mirror.gone().contains("360001"));
    // An escalation of 2024, judged now (`backfill`): the article was public then.
    assert_eq!(
        verdict(&connector).await,
        ("bad".into(), Some("360001".into()))
    );

    let changes = mirror.sync(false).await.unwrap();
    assert_eq!(
        (
            changes.pass,
            changes.articles,
            changes.removed,
            changes.withdrawn
        ),
        ("changes", 2, 1, 1)
    );
    assert!(mirror.gone().is_empty());
    let index = mirror.index().unwrap();
    assert!(
        index
            .articles()
            .any(|a| a.id == "360001" && a.withdrawn_at.is_some()),
        "kept for its history"
    );
    assert_ne!(verdict_at(&connector, now()).await.0, "bad");
    assert_eq!(
        verdict(&connector).await,
        ("bad".into(), Some("360001".into()))
    );
    let full = mirror.sync(true).await.unwrap();
    assert_eq!((full.pass, full.articles, full.withdrawn), ("full", 2, 1));
}

#[tokio::test]
async fn an_edit_is_taken_up_by_the_next_sync_of_changes_and_dates_the_article_anew() {
    let zd = with_articles().await;
    let (_dir, connector) = synced(&zd, "mirror-edit").await;
    let mirror = connector.mirror().unwrap();
    let mut edited = calendar_article(360001, "E1234", "2024-01-01T00:00:00Z");
    edited["body"] = Value::String("<p>Rewritten: restart the sync service.</p>".into());
    edited["edited_at"] = Value::String(now_stamp());
    edited["updated_at"] = Value::String(now_stamp());
    zd.put_article(edited);
    let report = mirror.sync(false).await.unwrap();
    assert_eq!(
        (report.pass, report.changed, report.added),
        ("changes", 1, 0)
    );
    let index = mirror.index().unwrap();
    let hits = index.search("rewritten restart", None, 3).unwrap();
    assert_eq!(hits[0].id, "360001");
    // The ticket was escalated in 2024: the text as it stands now did not exist then.
    assert_ne!(verdict(&connector).await.0, "bad");
}

#[tokio::test]
async fn a_rate_limit_in_the_middle_of_a_sync_is_waited_out() {
    let zd = with_articles().await;
    put_numbered(
        &zd,
        370000,
        5,
        "Printing report",
        "Open the report and press Print.",
    );
    zd.set_export_page_size(2);
    zd.fail_next(
        EXPORT,
        vec![
            Failure::Served,
            Failure::RateLimited {
                retry_after_secs: 1,
            },
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let connector = mirrored(&zd, "mirror-429", dir.path());
    let report = connector.mirror().unwrap().sync(false).await.unwrap();
    assert_eq!(report.articles, 8);
    let statuses: Vec<u16> = zd
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/incremental/articles"))
        .map(|r| r.status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&200));
}

#[tokio::test]
async fn a_restarted_service_serves_its_mirror_without_syncing_first() {
    let zd = with_articles().await;
    let dir = tempfile::tempdir().unwrap();
    mirrored(&zd, "mirror-restart", dir.path())
        .mirror()
        .unwrap()
        .sync(false)
        .await
        .unwrap();
    let exports = zd.count(EXPORT);
    let again = mirrored(&zd, "mirror-restart", dir.path());
    assert_eq!(again.mirror().unwrap().index().unwrap().len(), 3);
    assert_eq!(verdict(&again).await.0, "bad");
    assert_eq!(zd.count(EXPORT), exports);
    assert_eq!(zd.count(SEARCH), 0);
}

/// A connectors folder with the test connector `acme` (on the fake whose variables the command
/// gets), mirroring its Help Center.
fn connectors_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(format!("{CONNECTOR}.toml")),
        connector_toml(API_TOKEN_AUTH, "mirror", ""),
    )
    .unwrap();
    dir
}

/// `escalation-gate kb sync --connector acme` on `connectors`, the mirror kept in `index`.
fn kb_sync(
    zd: &FakeZendesk,
    connectors: &std::path::Path,
    index: &std::path::Path,
    full: bool,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_escalation-gate"));
    cmd.args(["kb", "sync", "--connector", CONNECTOR, "--connectors"])
        .arg(connectors)
        .arg("--index-dir")
        .arg(index)
        .envs(zendesk_vars(zd))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if full {
        cmd.arg("--full");
    }
    cmd
}

/// [`kb_sync`] run to its end.
async fn kb_sync_run(
    zd: &FakeZendesk,
    connectors: &std::path::Path,
    index: &std::path::Path,
    full: bool,
) -> (std::process::ExitStatus, Value, String) {
    finished(kb_sync(zd, connectors, index, full).spawn().unwrap()).await
}

async fn finished(child: std::process::Child) -> (std::process::ExitStatus, Value, String) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status,
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_sync_killed_mid_pass_resumes_where_it_stopped() {
    let zd = zendesk().await;
    put_numbered(
        &zd,
        380000,
        12,
        "Exporting ledger",
        "Open the ledger, press Export, choose CSV.",
    );
    zd.set_export_page_size(2);
    // Pages 1 to 3 answer at once; page 4 makes the client wait 30 s: it is killed meanwhile.
    zd.fail_next(
        EXPORT,
        vec![
            Failure::Served,
            Failure::Served,
            Failure::Served,
            Failure::RateLimited {
                retry_after_secs: 30,
            },
        ],
    );
    let connectors = connectors_folder();
    let index = tempfile::tempdir().unwrap();
    let mut child = kb_sync(&zd, connectors.path(), index.path(), false)
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(30), || zd.count(EXPORT) >= 4).await);
    // SIGKILL: nothing of the process runs after it.
    child.kill().unwrap();
    let _ = child.wait();
    let journal = std::fs::read_to_string(index.path().join(CONNECTOR).join("mirror.journal"))
        .expect("the journal of the pass under way is on disk");
    assert_eq!(
        journal.lines().count(),
        4,
        "the start and three pages: {journal}"
    );

    let requests = zd.count(EXPORT);
    let (status, report, stderr) = kb_sync_run(&zd, connectors.path(), index.path(), false).await;
    assert!(status.success(), "{stderr}");
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(report["pass"], "full");
    assert_eq!(report["articles"], 12, "{report}");
    // Two articles a page, the last one again at the top of the next (the export pages by
    // change time, at or after the last page's end): 12 pages in all, the first 3 not again.
    assert_eq!(
        report["pages"], 9,
        "pages 4 to 12, not 1 to 3 again: {report}"
    );
    assert_eq!(zd.count(EXPORT) - requests, 9);

    // The next run is a pass of changes over the complete mirror.
    zd.put_article(article(
        380100,
        "Importing a ledger",
        "Press Import.",
        &now_stamp(),
    ));
    let (status, report, stderr) = kb_sync_run(&zd, connectors.path(), index.path(), false).await;
    assert!(status.success(), "{stderr}");
    assert_eq!(
        (report["pass"].as_str(), report["added"].as_u64()),
        (Some("changes"), Some(1)),
        "{report}"
    );
    assert_eq!(report["articles"], 13);
}

#[tokio::test]
async fn kb_sync_says_what_is_wrong() {
    let zd = zendesk().await;
    let connectors = tempfile::tempdir().unwrap();
    std::fs::write(
        connectors.path().join(format!("{CONNECTOR}.toml")),
        connector_toml(API_TOKEN_AUTH, "helpdesk", ""),
    )
    .unwrap();
    let index = tempfile::tempdir().unwrap();
    let (status, _, stderr) = kb_sync_run(&zd, connectors.path(), index.path(), false).await;
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("does not mirror its knowledge base"),
        "{stderr}"
    );

    let connectors = connectors_folder();
    zd.fail_next(EXPORT, vec![Failure::Status(401)]);
    let (status, _, stderr) = kb_sync_run(&zd, connectors.path(), index.path(), true).await;
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("the mirror was not synced"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        !stderr.contains(zendesk_vars(&zd)[2].1.as_str()),
        "no token in the output"
    );
}

#[tokio::test]
async fn a_helpdesk_that_keeps_failing_leaves_the_last_good_mirror_serving() {
    let zd = with_articles().await;
    let (_dir, connector) = synced(&zd, "mirror-down").await;
    let mirror = connector.mirror().unwrap();
    // Every export answers 500 (each sync tries 4 times: the connector's 3 retries).
    zd.fail_next(EXPORT, vec![Failure::Status(500); 12]);
    for _ in 0..3 {
        assert!(mirror.sync(false).await.is_err());
    }
    let status = mirror.status(chrono::Utc::now() + chrono::Duration::hours(1));
    assert_eq!(
        status.state,
        escalation_gate::kb::mirror::MirrorState::Stale
    );
    assert!(status.error.unwrap().contains("500"));
    assert_eq!(status.articles, 3);
    assert_eq!(verdict(&connector).await.0, "bad");
    assert_eq!(
        zd.count(SEARCH),
        0,
        "the mirror judged, not the Help Center's search"
    );
}
