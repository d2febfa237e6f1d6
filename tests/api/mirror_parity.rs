//! Parity: the TechQA articles (tests/api/fixtures/techqa, Apache-2.0, see its README) loaded
//! into a fake helpdesk's knowledge base, the dev cases delivered as escalations through the
//! webhook with `backend = "mirror"`: every verdict and confidence equals `eval`'s for the same
//! case. With `backend = "helpdesk"` (the helpdesk's own search) the test prints how many
//! differ: `cargo test --test api mirror_parity:: -- --nocapture`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use escalation_gate::kb::local::LocalIndex;
use escalation_gate::offline::eval::{self, CaseOutcome, Dataset};
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;

const FIXTURES: &str = "tests/api/fixtures/techqa";

/// The dataset, and what `eval` decides for each dev case at the default settings.
fn reference() -> (Dataset, HashMap<String, CaseOutcome>) {
    let dir = Path::new(FIXTURES);
    let data = eval::load(
        &dir.join("articles.jsonl"),
        &dir.join("dev_cases.jsonl"),
        None,
    )
    .expect("fixtures load");
    let index = LocalIndex::build(data.articles.clone()).unwrap();
    let report = eval::evaluate(&data, &index, &eval::Options::default(), || ()).unwrap();
    let by_case = report
        .per_case
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();
    (data, by_case)
}

/// Text as a Help Center article body holds it (HTML), so that the service's HTML-to-text gives
/// back exactly the article's text.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// What the service decided for one case: judged resolvable, sent to review, and the best
/// counted article with its confidence (as `eval` reports it).
#[derive(Debug, PartialEq)]
struct Decided {
    resolvable: bool,
    review: bool,
    best: Option<(String, f64)>,
}

impl Decided {
    /// The verdict the knowledge base gives: resolvable by an article, review, or neither.
    fn verdict(&self) -> (&'static str, Option<&str>) {
        match (self.resolvable, self.review) {
            (true, _) => ("bad", self.best.as_ref().map(|(id, _)| id.as_str())),
            (false, true) => ("review", None),
            (false, false) => ("good", None),
        }
    }

    fn of_eval(o: &CaseOutcome) -> Decided {
        Decided {
            resolvable: o.judged_resolvable,
            review: o.judged_review,
            best: o.best.clone(),
        }
    }

    /// From the webhook's answer; `ids` turns the helpdesk's article ids back into the data's.
    fn of_answer(answer: &Value, ids: &HashMap<String, String>) -> Decided {
        let kb = &answer["assessment"]["kb"];
        let best = [&kb["resolvable_by"], &kb["best_other"]]
            .into_iter()
            .find(|m| !m.is_null())
            .map(|m| {
                let id = m["article_id"].as_str().unwrap();
                (
                    ids.get(id).cloned().unwrap_or_else(|| id.to_string()),
                    m["confidence"].as_f64().unwrap(),
                )
            });
        Decided {
            resolvable: !kb["resolvable_by"].is_null(),
            review: !kb["review"].is_null(),
            best,
        }
    }
}

/// Loads the articles into the fake Zendesk's Help Center (numeric ids, published in 2020) and
/// each dev case as a ticket with a complete hand-off; the map from Help Center id to data id.
fn load_zendesk(zd: &FakeZendesk, data: &Dataset) -> (Vec<(u64, String)>, HashMap<String, String>) {
    seed_directory(zd);
    let mut ids = HashMap::new();
    for (i, a) in data.articles.iter().enumerate() {
        let id = 1_000_000 + i as u64;
        ids.insert(id.to_string(), a.id.clone());
        zd.put_article(json!({
            "id": id,
            "title": a.title,
            "body": html_escape(&a.body),
            "locale": a.locale,
            "draft": false,
            "created_at": "2020-01-01T00:00:00Z",
            "edited_at": "2020-01-01T00:00:00Z",
            "updated_at": format!("2020-01-01T00:{:02}:{:02}Z", i / 60, i % 60),
        }));
    }
    let mut tickets = Vec::new();
    for (i, case) in data.cases.iter().enumerate() {
        let esc = eval::escalation(case);
        let id = 100 + i as u64;
        zd.put_ticket(ticket(
            id,
            &esc.subject,
            &esc.description,
            &complete_handoff(),
        ));
        tickets.push((id, case.id.clone()));
    }
    (tickets, ids)
}

/// Delivers every case through the webhook of a service on `backend`; the cases whose decision
/// differs from `eval`'s, with both decisions.
async fn deliver(backend: &'static str) -> (usize, Vec<(String, Decided, Decided)>) {
    let (data, reference) = reference();
    let zd = zendesk().await;
    let (tickets, ids) = load_zendesk(&zd, &data);
    let app = spawn_with(
        zd,
        Options {
            kb_backend: backend,
            ..Options::default()
        },
    )
    .await;
    if backend == "mirror" {
        let ready = wait_until(Duration::from_secs(30), || {
            app.fake
                .count("GET /api/v2/help_center/incremental/articles")
                > 0
        })
        .await;
        assert!(ready, "the mirror never synced");
        for _ in 0..600 {
            let health: Value = app.get("/healthz").await.json().await.unwrap();
            if health["mirrors"][&app.connector]["state"] == "ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut differ = Vec::new();
    for (ticket, case) in &tickets {
        let body: Value = app.escalate(*ticket).await.json().await.unwrap();
        let answer = &body["results"][0];
        let got = Decided::of_answer(answer, &ids);
        let want = Decided::of_eval(&reference[case]);
        if got != want {
            differ.push((case.clone(), got, want));
        }
    }
    app.shut_down().await;
    (tickets.len(), differ)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_mirror_decides_every_dev_case_as_eval_does() {
    let (cases, differ) = deliver("mirror").await;
    assert_eq!(cases, 300);
    assert!(
        differ.is_empty(),
        "{} of {cases} differ from eval, first: {:?}",
        differ.len(),
        differ.first()
    );
}

/// The figure the mirror removes: how often the helpdesk's own search (several short AND
/// queries, a handful of candidates) leads to another verdict than `eval`'s. Slow in a debug
/// build (the fake Help Center scores every article for each of four queries per case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "about 2 minutes: run with --ignored --nocapture for the figure"]
async fn zendesk_help_center_search_decides_otherwise_than_eval() {
    let (cases, differ) = deliver("helpdesk").await;
    let verdicts = differ
        .iter()
        .filter(|(_, got, want)| got.verdict() != want.verdict())
        .count();
    let wrong_bad = differ
        .iter()
        .filter(|(_, got, want)| got.resolvable && got.verdict() != want.verdict())
        .count();
    println!(
        "zendesk, backend = \"helpdesk\": {verdicts} of {cases} dev cases get another verdict than eval's \
         ({wrong_bad} of them judged bad where eval is not, or on another article); {} of {cases} \
         another confidence",
        differ.len()
    );
    assert!(differ.len() <= cases);
}
