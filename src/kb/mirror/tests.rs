use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::*;

fn article(id: &str, title: &str) -> Article {
    Article {
        withdrawn_at: None,
        id: id.into(),
        title: title.into(),
        body: format!("{title}: the steps."),
        url: format!("https://kb.example/{id}"),
        locale: "en-us".into(),
        published_at: Some(DateTime::UNIX_EPOCH),
        draft: false,
    }
}

/// A helpdesk in memory: a full pass lists `articles` two per page; a pass of changes lists
/// `changed` and `removed`. `fail_at` makes the page of that number (counted over the source's
/// life) fail once.
#[derive(Default)]
struct Desk {
    articles: Mutex<Vec<Article>>,
    changed: Mutex<Vec<Article>>,
    removed: Mutex<Vec<String>>,
    calls: Mutex<Vec<(Start, Option<String>)>>,
    fail_at: Mutex<Option<usize>>,
}

#[async_trait]
impl KbSource for Desk {
    async fn page(&self, start: &Start, next: Option<&str>) -> Result<Page, KbError> {
        let mut calls = self.calls.lock().unwrap();
        calls.push((start.clone(), next.map(str::to_string)));
        if *self.fail_at.lock().unwrap() == Some(calls.len()) {
            *self.fail_at.lock().unwrap() = None;
            return Err(KbError::Unavailable("answered 500".into()));
        }
        match start {
            Start::Full => {
                let all = self.articles.lock().unwrap().clone();
                let at: usize = next.map_or(0, |n| n.parse().unwrap());
                let end = (at + 2).min(all.len());
                Ok(Page {
                    articles: all[at..end].to_vec(),
                    removed: Vec::new(),
                    next: (end < all.len()).then(|| end.to_string()),
                    since: Some("t1".into()),
                })
            }
            Start::Since(_) => Ok(Page {
                articles: self.changed.lock().unwrap().clone(),
                removed: self.removed.lock().unwrap().clone(),
                next: None,
                since: Some("t2".into()),
            }),
        }
    }
}

fn settings() -> MirrorSettings {
    MirrorSettings {
        every: Duration::from_secs(900),
        full_every: Duration::from_secs(86_400),
        stale_after: Duration::from_secs(3600),
        history: Duration::from_secs(400 * 86_400),
    }
}

/// The public articles' ids.
fn ids(mirror: &Mirror) -> Vec<String> {
    mirror
        .index()
        .map(|i| {
            i.articles()
                .filter(|a| a.withdrawn_at.is_none())
                .map(|a| a.id.to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn desk_with(n: usize) -> Arc<Desk> {
    let desk = Desk::default();
    *desk.articles.lock().unwrap() = (1..=n)
        .map(|i| article(&i.to_string(), &format!("Article {i}")))
        .collect();
    Arc::new(desk)
}

#[tokio::test]
async fn a_full_pass_then_changes_serve_the_helpdesk_as_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let desk = desk_with(5);
    let mirror = Mirror::open("c", desk.clone(), Some(dir.path()), settings());
    assert_eq!(mirror.status(Utc::now()).state, MirrorState::Syncing);
    let report = mirror.sync(false).await.unwrap();
    assert_eq!((report.pass, report.pages, report.added), ("full", 3, 5));
    assert_eq!(ids(&mirror), ["1", "2", "3", "4", "5"]);
    assert_eq!(mirror.status(Utc::now()).state, MirrorState::Ready);

    *desk.changed.lock().unwrap() = vec![article("2", "Article 2, edited"), article("6", "New")];
    *desk.removed.lock().unwrap() = vec!["4".into()];
    let report = mirror.sync(false).await.unwrap();
    assert_eq!(
        (report.pass, report.added, report.changed, report.removed),
        ("changes", 1, 1, 1)
    );
    assert_eq!(ids(&mirror), ["1", "2", "3", "5", "6"]);
    let index = mirror.index().unwrap();
    let hits = index.search("edited", None, 5).unwrap();
    assert_eq!(hits[0].id, "2");
    assert_eq!(
        desk.calls.lock().unwrap().last().unwrap().0,
        Start::Since("t1".into())
    );
}

#[tokio::test]
async fn a_full_pass_drops_what_it_does_not_list() {
    let dir = tempfile::tempdir().unwrap();
    let desk = desk_with(4);
    let mirror = Mirror::open("c", desk.clone(), Some(dir.path()), settings());
    mirror.sync(false).await.unwrap();
    desk.articles.lock().unwrap().retain(|a| a.id != "3");
    let report = mirror.sync(true).await.unwrap();
    assert_eq!((report.pass, report.removed), ("full", 1));
    assert_eq!(ids(&mirror), ["1", "2", "4"]);
}

#[tokio::test]
async fn a_reopened_mirror_serves_without_calling_the_helpdesk() {
    let dir = tempfile::tempdir().unwrap();
    let desk = desk_with(3);
    Mirror::open("c", desk.clone(), Some(dir.path()), settings())
        .sync(false)
        .await
        .unwrap();
    let calls = desk.calls.lock().unwrap().len();
    let again = Mirror::open("c", desk.clone(), Some(dir.path()), settings());
    assert_eq!(ids(&again), ["1", "2", "3"]);
    assert_eq!(desk.calls.lock().unwrap().len(), calls);
    assert!(again.next_due(Utc::now()) > Utc::now());
}

#[tokio::test]
async fn a_failed_pass_keeps_the_last_mirror_and_resumes_from_its_last_page() {
    let dir = tempfile::tempdir().unwrap();
    let desk = desk_with(6);
    let mirror = Mirror::open("c", desk.clone(), Some(dir.path()), settings());
    *desk.fail_at.lock().unwrap() = Some(2);
    let err = mirror.sync(false).await.unwrap_err();
    assert!(err.to_string().contains("answered 500"), "{err}");
    assert_eq!(mirror.status(Utc::now()).state, MirrorState::Failed);
    // A new process (the journal is on disk) goes on from the page that failed.
    let again = Mirror::open("c", desk.clone(), Some(dir.path()), settings());
    let report = again.sync(false).await.unwrap();
    assert!(report.resumed);
    assert_eq!(report.pages, 2, "pages 2 and 3, not page 1 again");
    assert_eq!(ids(&again), ["1", "2", "3", "4", "5", "6"]);
    let calls = desk.calls.lock().unwrap();
    assert_eq!(calls[2], (Start::Full, Some("2".into())));
}

#[tokio::test]
async fn a_journal_line_cut_short_is_dropped_and_the_pass_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let desk = desk_with(4);
    let mirror = Mirror::open("c", desk.clone(), Some(dir.path()), settings());
    *desk.fail_at.lock().unwrap() = Some(2);
    mirror.sync(false).await.unwrap_err();
    let journal = dir.path().join(JOURNAL);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    file.write_all(b"{\"page\":{\"articles\":[{\"id\":\"9")
        .unwrap();
    let report = mirror.sync(false).await.unwrap();
    assert!(report.resumed);
    assert_eq!(ids(&mirror), ["1", "2", "3", "4"]);
    assert!(!journal.exists());
}

#[tokio::test]
async fn a_mirror_without_a_folder_syncs_in_memory() {
    let desk = desk_with(3);
    let mirror = Mirror::open("c", desk, None, settings());
    mirror.sync(false).await.unwrap();
    assert_eq!(ids(&mirror), ["1", "2", "3"]);
}

#[tokio::test]
async fn an_old_last_sync_is_stale_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = Mirror::open("c", desk_with(2), Some(dir.path()), settings());
    mirror.sync(false).await.unwrap();
    let later = Utc::now() + chrono::Duration::hours(2);
    let status = mirror.status(later);
    assert_eq!(status.state, MirrorState::Stale);
    assert_eq!(status.articles, 2);
    assert!(status.lag_seconds.unwrap() >= 7200);
}

#[test]
fn the_fingerprint_follows_the_text() {
    let a = vec![article("1", "A")];
    let mut b = a.clone();
    assert_eq!(fingerprint(&a), fingerprint(&b));
    b[0].body.push('!');
    assert_ne!(fingerprint(&a), fingerprint(&b));
}

#[test]
fn a_second_process_cannot_take_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _held = lock(dir.path()).unwrap();
    assert!(matches!(lock(dir.path()), Err(MirrorError::Busy(_))));
}

#[tokio::test]
async fn translations_are_articles_of_their_own_and_leave_together() {
    let desk = desk_with(2);
    let mut german = article("2", "Artikel 2");
    german.locale = "de".into();
    desk.articles.lock().unwrap().push(german);
    let mirror = Mirror::open("c", desk.clone(), None, settings());
    mirror.sync(false).await.unwrap();
    let locales: Vec<(String, String)> = mirror
        .index()
        .unwrap()
        .articles()
        .filter(|a| a.withdrawn_at.is_none())
        .map(|a| (a.id.to_string(), a.locale.to_string()))
        .collect();
    assert_eq!(
        locales,
        [("1", "en-us"), ("2", "de"), ("2", "en-us")].map(|(i, l)| (i.to_string(), l.to_string()))
    );
    *desk.removed.lock().unwrap() = vec!["2".into()];
    let report = mirror.sync(false).await.unwrap();
    assert_eq!(report.removed, 2);
    assert_eq!(ids(&mirror), ["1"]);
}

#[tokio::test]
async fn a_withdrawn_article_is_kept_for_escalations_before_it_and_dropped_after_the_history() {
    let desk = desk_with(3);
    let mirror = Mirror::open("c", desk.clone(), None, settings());
    mirror.sync(false).await.unwrap();
    // Withdrawal times are kept to the second: an escalation in that same second does not count
    // the article.
    let before = Utc::now() - chrono::Duration::seconds(2);
    *desk.removed.lock().unwrap() = vec!["2".into()];
    let report = mirror.sync(false).await.unwrap();
    assert_eq!(
        (report.removed, report.articles, report.withdrawn),
        (1, 2, 1)
    );
    assert_eq!(mirror.status(Utc::now()).articles, 2);
    let index = mirror.index().unwrap();
    let at = |t| {
        index
            .search_at("Article 2", None, 5, Some(t))
            .unwrap()
            .iter()
            .map(|a| a.id.to_string())
            .collect::<Vec<_>>()
    };
    assert!(at(before).contains(&"2".to_string()), "public then");
    assert!(!at(Utc::now() + chrono::Duration::seconds(1)).contains(&"2".to_string()));
    let now: Vec<String> = index
        .search("Article 2", None, 5)
        .unwrap()
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    assert!(!now.contains(&"2".to_string()));

    // Listed again: public again.
    *desk.removed.lock().unwrap() = Vec::new();
    *desk.changed.lock().unwrap() = vec![article("2", "Article 2")];
    let report = mirror.sync(false).await.unwrap();
    assert_eq!((report.added, report.articles, report.withdrawn), (1, 3, 0));

    // Without history, a withdrawn article leaves at once.
    let forgetful = Mirror::open(
        "c",
        desk.clone(),
        None,
        MirrorSettings {
            history: Duration::ZERO,
            ..settings()
        },
    );
    *desk.changed.lock().unwrap() = Vec::new();
    forgetful.sync(false).await.unwrap();
    desk.articles.lock().unwrap().retain(|a| a.id != "3");
    let report = forgetful.sync(true).await.unwrap();
    assert_eq!((report.removed, report.withdrawn), (1, 0));
    assert_eq!(forgetful.index().unwrap().len(), 2);
}
