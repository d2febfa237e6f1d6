//! The helpdesks' knowledge bases as the mirror reads them (`Helpdesk::kb_source`), driven
//! directly against the fakes: a full pass lists every article once, mapped as the remote search
//! maps it; rate limits in the middle of a pass are waited out; a later pass sees edits,
//! archived and deleted articles.

use std::collections::BTreeMap;
use std::sync::Arc;

use escalation_gate::escalation::locale_of;
use escalation_gate::helpdesk::Helpdesk;
use escalation_gate::kb::Article;
use escalation_gate::kb::mirror::{KbSource, Page, Start};
use serde_json::{Value, json};

use crate::fakes::freshdesk::{Fail as FdFail, FakeFreshdesk};
use crate::fakes::salesforce::{Fail as SfFail, FakeSalesforce};
use crate::helpers::{Options, build_connector};

/// Every page of one pass, from its first to the one without `next`.
async fn pass(source: &Arc<dyn KbSource>, start: &Start) -> Vec<Page> {
    let mut pages = vec![source.page(start, None).await.expect("the first page")];
    while let Some(next) = pages.last().unwrap().next.clone() {
        assert!(pages.len() < 1000, "the pass never ends");
        pages.push(source.page(start, Some(&next)).await.expect("a page"));
    }
    pages
}

/// The articles of a pass by (id, locale); each must come once.
fn by_key(pages: &[Page]) -> BTreeMap<(String, String), Article> {
    let mut out = BTreeMap::new();
    for a in pages.iter().flat_map(|p| p.articles.iter()) {
        let key = (a.id.clone(), a.locale.clone());
        assert!(
            out.insert(key.clone(), a.clone()).is_none(),
            "{key:?} listed twice"
        );
    }
    out
}

/// The helpdesk of the test connector pointing at `fake`.
fn helpdesk<F: crate::helpers::FakeHelpdesk>(fake: &F) -> Helpdesk {
    build_connector(fake, "acme-mirror", &Options::default()).helpdesk
}

/// Each mirrored article is the article the remote search finds for its title, field for field.
async fn same_as_search(helpdesk: &Helpdesk, articles: &[&Article]) {
    let kb = helpdesk.knowledge_base.as_ref().expect("a remote search");
    for a in articles {
        let found = kb
            .search(&a.title, Some(&a.locale), 50)
            .await
            .expect("the search answers");
        let hit = found
            .iter()
            .find(|f| f.id == a.id && f.locale == a.locale)
            .unwrap_or_else(|| panic!("the search finds {} ({})", a.id, a.locale));
        assert_eq!(hit, *a);
    }
}

/// The (id, locale) of every online version the fake org holds, in order.
fn online_versions(fake: &FakeSalesforce) -> Vec<(String, String)> {
    let mut v: Vec<_> = fake
        .lock()
        .articles
        .iter()
        .filter(|a| a.status == "Online")
        .map(|a| (a.id.clone(), locale_of(&a.language)))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn salesforce_full_pass_lists_every_online_version_once_as_the_search_maps_it() {
    let mut org = crate::salesforce::org();
    // Two records a batch: each language's query goes on behind `nextRecordsUrl`.
    org.query_batch = 2;
    let fake = FakeSalesforce::start(org).await;
    let helpdesk = helpdesk(&fake);
    let source = helpdesk.kb_source.clone().expect("a Knowledge source");
    // Salesforce's request limit (403 REQUEST_LIMIT_EXCEEDED) on the second batch of a query.
    fake.fail(SfFail {
        method: "GET",
        path_contains: "/query/01g".into(),
        status: 403,
        error_code: "REQUEST_LIMIT_EXCEEDED",
        times: 1,
    });

    let pages = pass(&source, &Start::Full).await;

    let listed = by_key(&pages);
    let expected = online_versions(&fake);
    assert_eq!(listed.keys().cloned().collect::<Vec<_>>(), expected);
    assert!(expected.len() >= 6 && pages.len() >= 4, "{}", pages.len());
    assert!(expected.iter().any(|(_, l)| l == "de"), "a translation");
    let drafts: Vec<String> = fake
        .lock()
        .articles
        .iter()
        .filter(|a| a.status == "Draft")
        .map(|a| a.id.clone())
        .collect();
    assert!(!drafts.is_empty());
    for d in &drafts {
        assert!(listed.keys().all(|(id, _)| id != d), "draft {d} listed");
    }
    assert!(listed.values().all(|a| !a.draft));
    let log = fake.lock().log.clone();
    assert!(
        log.iter()
            .any(|(l, status)| l.contains("/query/01g") && *status == 403),
        "{log:?}"
    );
    assert!(pages.iter().all(|p| p.removed.is_empty()));
    assert!(pages[..pages.len() - 1].iter().all(|p| p.since.is_none()));
    // The latest publication of the fixture, to the second.
    let since = pages.last().unwrap().since.clone().expect("a cursor");
    let newest = fake
        .lock()
        .articles
        .iter()
        .filter(|a| a.status == "Online")
        .map(|a| a.last_published.clone())
        .max()
        .unwrap();
    assert_eq!(since, newest);
    same_as_search(&helpdesk, &listed.values().collect::<Vec<_>>()).await;
}

#[tokio::test]
async fn salesforce_incremental_pass_lists_the_edit_and_removes_the_archived_article() {
    let fake = FakeSalesforce::start(crate::salesforce::org()).await;
    let helpdesk = helpdesk(&fake);
    let source = helpdesk.kb_source.clone().expect("a Knowledge source");
    let full = pass(&source, &Start::Full).await;
    let since = full.last().unwrap().since.clone().expect("a cursor");

    let edited = "kA0000000002001AAA";
    let archived = "kA0000000002002AAA";
    fake.publish_edit(edited, "en_US", |a| {
        a.answer_html = "<p>Remove the older calendar connection, then sync again.</p>".into();
    });
    fake.archive_article(archived);
    let pages = pass(&source, &Start::Since(since.clone())).await;

    let listed = by_key(&pages);
    let key = (edited.to_string(), "en-us".to_string());
    let article = listed.get(&key).expect("the edited article");
    assert_eq!(
        article.body,
        "\nRemove the older calendar connection, then sync again.\n\n"
    );
    assert!(article.published_at.unwrap() > chrono::Utc::now() - chrono::Duration::minutes(1));
    // Nothing older than the cursor's second is listed again.
    let before = escalation_gate::helpdesk::salesforce::api::parse_datetime(&since).unwrap();
    assert!(
        listed.values().all(|a| a.published_at.unwrap() >= before),
        "{listed:?}"
    );
    let removed: Vec<&String> = pages.iter().flat_map(|p| p.removed.iter()).collect();
    assert_eq!(removed, [archived]);
    assert!(listed.keys().all(|(id, _)| id != archived));
    let next = pages.last().unwrap().since.clone().expect("a cursor");
    assert!(next > since, "{next} after {since}");
    same_as_search(&helpdesk, &[article]).await;
}

#[tokio::test]
async fn salesforce_pass_resumed_after_its_query_locator_expired_lists_each_version_once() {
    let mut org = crate::salesforce::org();
    // Two records a batch: two articles of the fixture share a publication time, so a query
    // sent again from that time answers a batch already read.
    org.query_batch = 2;
    let fake = FakeSalesforce::start(org).await;
    let source = helpdesk(&fake).kb_source.expect("a Knowledge source");
    let mut pages = vec![source.page(&Start::Full, None).await.unwrap()];
    while let Some(next) = pages.last().unwrap().next.clone() {
        assert!(pages.len() < 100, "the pass never ends");
        // Each page waits longer than Salesforce keeps a query locator.
        fake.expire_query_locators();
        pages.push(source.page(&Start::Full, Some(&next)).await.unwrap());
    }

    let listed = by_key(&pages);
    assert_eq!(
        listed.keys().cloned().collect::<Vec<_>>(),
        online_versions(&fake)
    );
    let queries = fake
        .lock()
        .log
        .iter()
        .filter(|(l, _)| l.ends_with("/query"))
        .count();
    // One query per language, and one more for each batch whose locator had expired.
    assert!(queries > 2 + 1, "{queries}");
    assert!(fake.count("GET", "/query/01g") > 0);
    assert!(pages.last().unwrap().since.is_some());
}

/// `n` more published articles in folder 4, as the search answers them.
fn more_articles(n: u64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let id = 3000 + i;
            json!({
                "id": id, "type": 1, "category_id": 3, "folder_id": 4,
                "hierarchy": [
                    {"level": 0, "type": "category", "data": {"id": 3, "name": "Ledgerly", "language": "en"}},
                    {"level": 1, "type": "folder", "data": {"id": 4, "name": "Troubleshooting", "language": "en"}}
                ],
                "title": format!("Ledger export note number {id}"),
                "status": 2,
                "description": format!("<p>Export note {id}: <b>retry</b> the export.</p>"),
                "description_text": format!("Export note {id}: retry the export."),
                "created_at": "2024-01-01T00:00:00Z", "modified_at": "2024-01-02T00:00:00Z",
                "updated_at": "2024-01-02T00:00:00Z",
            })
        })
        .collect()
}

/// An article in subfolder 9 of folder 4 (category 3), as the search answers it.
fn nested_article() -> Value {
    json!({
        "id": 4001, "type": 1, "category_id": 3, "folder_id": 9,
        "hierarchy": [
            {"level": 0, "type": "category", "data": {"id": 3, "name": "Ledgerly", "language": "en"}},
            {"level": 1, "type": "folder", "data": {"id": 4, "name": "Troubleshooting", "language": "en"}},
            {"level": 2, "type": "folder", "data": {"id": 9, "name": "Bank feeds", "language": "en"}}
        ],
        "title": "Bank feed reconnect after a password change",
        "status": 2,
        "description": "<p>Reconnect the bank feed under Banking.</p>",
        "description_text": "Reconnect the bank feed under Banking.",
        "created_at": "2024-02-01T00:00:00Z", "modified_at": "2024-02-01T00:00:00Z",
        "updated_at": "2024-02-01T00:00:00Z",
    })
}

async fn freshdesk_with_many_articles() -> FakeFreshdesk {
    let mut desk = crate::freshdesk::desk();
    // The desk's PDF draft shares the demo draft's id; Freshdesk ids are unique.
    let pdf = desk
        .articles
        .iter_mut()
        .find(|a| a["id"] == 1003 && a["title"] == crate::salesforce::PDF_SUBJECT)
        .unwrap();
    pdf["id"] = json!(1903);
    desk.articles.extend(more_articles(150));
    desk.articles.push(nested_article());
    FakeFreshdesk::start(desk).await
}

#[tokio::test]
async fn freshdesk_full_pass_lists_every_article_once_drafts_marked_as_the_search_maps_them() {
    let fake = freshdesk_with_many_articles().await;
    let helpdesk = helpdesk(&fake);
    let source = helpdesk.kb_source.clone().expect("a Solutions source");
    // A rate limit on the second page of folder 4's articles.
    fake.fail(FdFail {
        method: "GET",
        path_contains: "/solutions/folders/4/articles".into(),
        status: 429,
        retry_after: Some(1),
        times: 0,
    });
    let first = source.page(&Start::Full, None).await.unwrap();
    fake.lock().fails[0].times = 1;
    let mut pages = vec![first];
    while let Some(next) = pages.last().unwrap().next.clone() {
        pages.push(source.page(&Start::Full, Some(&next)).await.unwrap());
    }

    let listed = by_key(&pages);
    let expected: Vec<(String, String)> = {
        let s = fake.lock();
        let mut v: Vec<_> = s
            .articles
            .iter()
            .map(|a| {
                let language = a["hierarchy"][0]["data"]["language"].as_str().unwrap();
                (a["id"].to_string(), language.to_string())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(listed.keys().cloned().collect::<Vec<_>>(), expected);
    assert!(expected.len() > 150);
    assert!(listed.contains_key(&("4001".to_string(), "en".to_string())));
    assert!(listed.keys().any(|(_, l)| l == "de"), "a translation");
    assert!(
        pages
            .iter()
            .all(|p| p.since.is_none() && p.removed.is_empty())
    );
    assert!(pages.len() >= 3, "{}", pages.len());
    let log = fake.lock().log.clone();
    let folder = |status: u16| {
        log.iter()
            .filter(|(l, s)| l.ends_with("/solutions/folders/4/articles") && *s == status)
            .count()
    };
    assert_eq!((folder(429), folder(200)), (1, 2), "{log:?}");
    assert_eq!(fake.count("GET", "/solutions/folders/9/subfolders"), 0);
    assert_eq!(fake.count("GET", "/solutions/folders/4/subfolders"), 1);
    assert_eq!(fake.count("GET", "/solutions/folders/4/articles/de"), 1);
    let draft = &listed[&("1903".to_string(), "en".to_string())];
    assert!(draft.draft);
    let drafts = listed.values().filter(|a| a.draft).count();
    assert_eq!(drafts, 2, "the PDF draft and the demo's draft");
    let compared: Vec<&Article> = listed
        .values()
        .filter(|a| a.id.parse::<u64>().unwrap() < 3000 || a.id == "3149" || a.id == "4001")
        .collect();
    same_as_search(&helpdesk, &compared).await;
}

#[tokio::test]
async fn freshdesk_next_pass_lists_edits_and_drops_deleted_articles() {
    let fake = freshdesk_with_many_articles().await;
    let helpdesk = helpdesk(&fake);
    let source = helpdesk.kb_source.clone().expect("a Solutions source");
    let before = by_key(&pass(&source, &Start::Full).await);

    fake.edit_article(2001, "en", |a| {
        a["description"] = json!("<p>Remove the <i>older</i> calendar connection.</p>");
        a["description_text"] = json!("Remove the older calendar connection.");
    });
    fake.delete_article(3005);
    let after = by_key(&pass(&source, &Start::Full).await);

    let key = |id: &str| (id.to_string(), "en".to_string());
    let edited = &after[&key("2001")];
    assert_eq!(edited.body, "Remove the older calendar connection.");
    assert!(edited.published_at > before[&key("2001")].published_at);
    assert!(before.contains_key(&key("3005")) && !after.contains_key(&key("3005")));
    assert_eq!(after.len(), before.len() - 1);
    same_as_search(&helpdesk, &[edited]).await;
}
