//! `backfill`: a past period's escalations judged as of their own escalation time (from the
//! ticket's audits), exported as JSON lines by a dry run, written once by `--write`.

use escalation_gate::assess::ReasonKind;
use serde_json::{Value, json};

use crate::fakes::zendesk::*;
use crate::helpers::*;

/// The knowledge-base threshold a little lower than the default, so the article that answers
/// the case makes it bad rather than sending it to review; and the sweep's search terms.
const EXTRA: &str = "threshold = 0.8\n[sweep]\nquery = \"tags:partner_escalation\"\n";

/// An escalation opened on 1 March 2026 at 08:00 and escalated (the tag added by an agent's
/// update) at `escalated_at`.
fn escalated(id: u64, escalated_at: &str) -> Value {
    let mut t = ticket(
        id,
        "Invoices export fails",
        "Exporting invoices to PDF fails with error LX-5521 since 4.2.1.",
        &complete_handoff(),
    );
    t["created_at"] = json!("2026-03-01T08:00:00Z");
    t["updated_at"] = json!(escalated_at);
    t["audits"] = json!([
        {"created_at": "2026-03-01T08:00:00Z", "events": [
            {"type": "Create", "field_name": "tags", "value": ["billing"]},
            {"type": "Create", "field_name": "status", "value": "new"},
        ]},
        {"created_at": escalated_at, "events": [
            {"type": "Change", "field_name": "tags", "value": ["billing", "partner_escalation"],
             "previous_value": ["billing"]},
        ]},
    ]);
    t
}

/// A fake Zendesk with two escalations of the same case, 60 escalated before the article
/// that answers it was published and 61 after, and a ticket of the period never escalated.
async fn seeded() -> FakeZendesk {
    let zendesk = zendesk().await;
    zendesk.put_ticket(escalated(60, "2026-03-02T09:00:00Z"));
    zendesk.put_ticket(escalated(61, "2026-03-03T09:00:00Z"));
    let mut other = escalated(62, "2026-03-02T09:00:00Z");
    other["tags"] = json!(["billing"]);
    zendesk.put_ticket(other);
    zendesk.put_article(article(
        360060,
        "Exporting invoices to PDF fails with error LX-5521",
        "Since 4.2.1, exporting invoices to PDF fails with error LX-5521. Install 4.2.2, or \
         split the invoice and export the parts.",
        "2026-03-02T12:00:00Z",
    ));
    zendesk
}

/// Runs `escalation-gate COMMAND` over March 2026 with `args` on the test connector.
async fn command(zendesk: &FakeZendesk, command: &str, args: &[&str]) -> std::process::Output {
    command_with(zendesk_vars(zendesk), command, args).await
}

/// [`command`] with the connector file's variables `vars`.
async fn command_with(
    vars: Vec<(&'static str, String)>,
    command: &str,
    args: &[&str],
) -> std::process::Output {
    let dir = connectors_dir(&connector_toml(API_TOKEN_AUTH, "helpdesk", EXTRA));
    let mut all = vec![
        "--connector",
        "acme",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
    ];
    all.extend_from_slice(args);
    run_command_with(command, &all, dir.path(), vars).await
}

async fn backfill(zendesk: &FakeZendesk, args: &[&str]) -> std::process::Output {
    command(zendesk, "backfill", args).await
}

fn lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that the run's summary on standard error says `counts`.
fn assert_summary(out: &std::process::Output, counts: &str) {
    assert!(stderr(out).contains(counts), "{}", stderr(out));
}

#[tokio::test]
async fn a_dry_run_judges_each_escalation_as_of_its_audit_and_writes_nothing() {
    let zendesk = seeded().await;
    let out = backfill(&zendesk, &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = lines(&out);
    let by_ticket = |id: &str| {
        lines
            .iter()
            .find(|l| l["ticket"] == id)
            .unwrap_or_else(|| panic!("ticket {id} in {lines:?}"))
    };
    assert_eq!(lines.len(), 2, "the ticket never escalated is left out");
    // Escalated after it was published: the partner could have found it.
    let late = by_ticket("61");
    assert_eq!(late["outcome"], "bad", "{late}");
    assert_eq!(late["reasons"], json!(["kb_resolvable"]));
    assert_eq!(late["article"]["id"], "360060");
    assert!(late["confidence"].as_f64().unwrap() > 0.5, "{late}");
    // Escalated before the article existed: it does not count.
    let early = by_ticket("60");
    assert_eq!(early["outcome"], "good", "{early}");
    assert_eq!(early["escalated_at"], "2026-03-02T09:00:00Z");
    assert_eq!(early["escalated_at_source"], "history");
    assert_eq!(early["partner"], PARTNER);
    assert_eq!(zendesk.count("PUT /api/v2"), 0, "a dry run writes nothing");
    assert_eq!(zendesk.count("POST /api/v2"), 0);
    assert!(
        stderr(&out).contains("found 2, judged 2 (good 1, bad 1, review 0)"),
        "{}",
        stderr(&out)
    );
    let search = zendesk
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/api/v2/search"))
        .unwrap();
    assert_eq!(search.path, "/api/v2/search/export.json");
}

#[tokio::test]
async fn the_report_computes_the_scorecard_from_a_dry_run_file() {
    let zendesk = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baseline.jsonl");
    let out = backfill(&zendesk, &["--dry-run", "--out", file.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "the lines go to the file");
    let file_arg = file.to_str().unwrap();
    let report = command(
        &zendesk,
        "report",
        &["--format", "json", "--from-jsonl", file_arg],
    )
    .await;
    assert!(report.status.success(), "{}", stderr(&report));
    let card: Value = serde_json::from_slice(&report.stdout).unwrap();
    let period = &card["partners"][0]["period"];
    assert_eq!(card["partners"][0]["partner"], PARTNER);
    assert_eq!(
        (&period["escalations"], &period["good"], &period["bad"]),
        (&json!(2), &json!(1), &json!(1)),
        "{period}"
    );
    assert_eq!(period["bad_reasons"]["kb_resolvable"], 1, "{period}");
    // A baseline, and says so; its article is named as the line names it.
    assert_eq!(card["baseline"], json!(true));
    assert_eq!(card["articles"]["360060"]["id"], "360060", "{card}");
    let html = command(
        &zendesk,
        "report",
        &["--format", "html", "--from-jsonl", file_arg],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&html.stdout)
            .contains("A baseline: the judge's verdicts on past escalations"),
        "{}",
        stderr(&html)
    );
    let reads = zendesk.count("GET /api/v2");
    assert_eq!(
        zendesk.count("GET /api/v2/search/export"),
        1,
        "the report reads the file, not the tickets ({reads} reads)"
    );
}

#[tokio::test]
async fn a_rerun_after_an_interruption_writes_nothing_twice() {
    let zendesk = seeded().await;
    // Rate limits on the listing and on a write, beyond the client's own retries; then a
    // refusal that stops ticket 61 for this run.
    zendesk.fail_next(
        "GET /api/v2/search/export",
        vec![Failure::RateLimited {
            retry_after_secs: 1,
        }],
    );
    zendesk.fail_next(
        "PUT /api/v2/tickets/60",
        vec![
            Failure::RateLimited {
                retry_after_secs: 1
            };
            5
        ],
    );
    zendesk.fail_next("PUT /api/v2/tickets/61", vec![Failure::Status(403)]);
    let first = backfill(&zendesk, &["--write"]).await;
    assert!(!first.status.success(), "a failed ticket fails the run");
    assert_summary(
        &first,
        "judged 1 (good 1, bad 0, review 0), already judged 0, failed 1, written 1",
    );
    // The write's rate limit outlasted the client's own waits (3 s): the run says what it waits for.
    let host = zendesk.url().trim_start_matches("http://").to_string();
    assert!(
        stderr(&first).contains("Waiting as the helpdesk asks")
            && stderr(&first).contains(&format!("{host} answered HTTP 429"))
            && stderr(&first).contains("call=\"update_ticket\"")
            && stderr(&first).contains("wait_secs=1"),
        "{}",
        stderr(&first)
    );
    assert!(app_tags(&zendesk, 60).contains(&"escalation_good".to_string()));
    assert!(
        app_tags(&zendesk, 61)
            .iter()
            .all(|t| !t.starts_with("escalation_"))
    );

    let again = backfill(&zendesk, &["--write"]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_summary(
        &again,
        "judged 1 (good 0, bad 1, review 0), already judged 1, failed 0, written 1",
    );
    assert_eq!(lines(&again).len(), 1);
    assert!(app_tags(&zendesk, 61).contains(&"escalation_bad".to_string()));
    for id in [60, 61] {
        let applied = zendesk
            .requests()
            .into_iter()
            .filter(|r| r.route() == format!("PUT /api/v2/tickets/{id}.json") && r.status == 200)
            .count();
        assert_eq!(applied, 1, "ticket {id} is written once");
        assert_eq!(zendesk.comments(id).len(), 1, "one note on ticket {id}");
    }
    assert_eq!(zendesk.count("PUT /api/v2/tickets/62"), 0);
    let third = backfill(&zendesk, &["--write"]).await;
    assert_summary(
        &third,
        "judged 0 (good 0, bad 0, review 0), already judged 2, failed 0, written 0",
    );
}

#[tokio::test]
async fn a_write_that_keeps_failing_fails_its_ticket_and_the_run_goes_on() {
    let zendesk = seeded().await;
    // Far more 500s than any run makes attempts: ticket 60 is never written.
    zendesk.fail_next("PUT /api/v2/tickets/60", vec![Failure::Status(500); 100]);
    let out = backfill(&zendesk, &["--write"]).await;
    assert!(!out.status.success(), "a failed ticket fails the run");
    assert_summary(
        &out,
        "judged 1 (good 0, bad 1, review 0), already judged 0, failed 1, written 1",
    );
    assert_eq!(
        zendesk.count("PUT /api/v2/tickets/60"),
        4,
        "the first attempt and the connector's 3 retries, then the next ticket"
    );
    assert!(app_tags(&zendesk, 61).contains(&"escalation_bad".to_string()));
}

#[tokio::test]
async fn an_unreachable_helpdesk_fails_each_command_at_once_naming_the_host() {
    let closed = closed_port();
    let zendesk = zendesk().await;
    let mut vars = zendesk_vars(&zendesk);
    vars.retain(|(k, _)| *k != "ZD_URL");
    vars.push(("ZD_URL", format!("http://{closed}")));
    for command in ["report", "calibrate", "backfill"] {
        let out = command_with(vars.clone(), command, &[]).await;
        assert!(!out.status.success(), "{command}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("cannot reach {closed}: connection refused")),
            "{command}: {err}"
        );
        assert!(
            !err.contains("attempts"),
            "{command}: a refused first call is not retried: {err}"
        );
    }
}

/// A dry run over the Salesforce test org's month, May 2024.
fn may_2024_dry_run() -> escalation_gate::offline::backfill::Options {
    escalation_gate::offline::backfill::Options {
        period: escalation_gate::helpdesk::records::Period {
            from: "2024-05-01T00:00:00Z".parse().unwrap(),
            to: "2024-06-01T00:00:00Z".parse().unwrap(),
        },
        query: None,
        mode: escalation_gate::offline::backfill::Mode::DryRun,
    }
}

#[tokio::test]
async fn an_unreachable_salesforce_org_fails_the_backfill_at_once() {
    use escalation_gate::offline::backfill;
    use escalation_gate::runtime::connector::{Connector, Runtime};

    use crate::fakes::salesforce as sf;

    let closed = closed_port();
    let text = sf::connector_toml(&format!("http://{closed}"), sf::CLIENT_CREDENTIALS, "", "");
    let valid = escalation_gate::config::parse(
        "acme-sf",
        &text,
        std::path::Path::new("connectors"),
        &sf::env,
    )
    .unwrap();
    let connector = Connector::build_with(valid, &Runtime::default()).unwrap();
    let options = may_2024_dry_run();
    // Only a guard against a run that waits for minutes.
    let mut seen = Collected::default();
    let run = backfill::run(&connector, &options, &mut seen, &|| false);
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the backfill stops at once")
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains(&format!("cannot reach {closed}: connection refused")),
        "{err}"
    );
}

fn app_tags(zendesk: &FakeZendesk, id: u64) -> Vec<String> {
    zendesk.ticket(id)["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// Collects what a backfill reports.
#[derive(Default)]
struct Collected {
    found: usize,
    lines: Vec<escalation_gate::offline::backfill::Line>,
}

impl escalation_gate::offline::backfill::Progress for Collected {
    fn found(&mut self, total: usize) {
        self.found = total;
    }

    fn done(
        &mut self,
        line: Option<&escalation_gate::offline::backfill::Line>,
    ) -> std::io::Result<()> {
        self.lines.extend(line.cloned());
        Ok(())
    }
}

#[tokio::test]
async fn salesforce_cases_are_dated_by_their_case_history() {
    use escalation_gate::offline::backfill::{self, Mode, TimeSource};

    use crate::fakes::salesforce::FakeSalesforce;
    use crate::salesforce as sf;

    let mut state = sf::org();
    // KB was opened on 3 May at 09:00 and escalated the next day; the article that answers it
    // was published in between. GOOD's history kept no escalation row; MISSING is not escalated.
    for (case, escalated) in [(sf::KB, true), (sf::GOOD, true), (sf::MISSING, false)] {
        state
            .cases
            .get_mut(case)
            .unwrap()
            .insert("IsEscalated".into(), json!(escalated));
    }
    for a in state
        .articles
        .iter_mut()
        .filter(|a| a.title.contains("E1234"))
    {
        a.last_published = "2024-05-03T12:00:00Z".into();
    }
    for (field, old, new, at) in [
        ("Status", "New", "Working", "2024-05-03T10:00:00.000+0000"),
        (
            "IsEscalated",
            "false",
            "true",
            "2024-05-04T10:00:00.000+0000",
        ),
    ] {
        let row = json!({"CaseId": sf::KB, "Field": field, "OldValue": old, "NewValue": new, "CreatedDate": at});
        state.case_history.push(row.as_object().unwrap().clone());
    }
    state.query_batch = 1;
    let fake = FakeSalesforce::start(state).await;
    let opts = Options {
        extra_toml: sf::CLEAR_ANSWER.into(),
        ..Options::default()
    };
    let connector = build_connector(&fake, "acme-sf", &opts);
    let mut options = may_2024_dry_run();
    let mut seen = Collected::default();
    let summary = backfill::run(&connector, &options, &mut seen, &|| false)
        .await
        .unwrap();
    assert_eq!(
        (summary.found, summary.judged, summary.time_unknown),
        (2, 2, 1)
    );
    let kb = seen.lines.iter().find(|l| l.ticket == sf::KB).unwrap();
    assert_eq!(kb.escalated_at_source, TimeSource::History);
    assert_eq!(
        kb.escalated_at,
        "2024-05-04T10:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(kb.reasons, [ReasonKind::KbResolvable], "{kb:?}");
    let good = seen.lines.iter().find(|l| l.ticket == sf::GOOD).unwrap();
    assert_eq!(good.escalated_at_source, TimeSource::Created);
    assert!(!good.late);
    assert_eq!(
        fake.count("PATCH", "sobjects/Case"),
        0,
        "a dry run writes nothing"
    );
    // Two escalated Cases, one a batch: the listing followed `nextRecordsUrl`.
    assert_eq!(fake.count("GET", "/query/01g"), 1);

    options.mode = Mode::Write;
    for run in 0..2 {
        let summary = backfill::run(&connector, &options, &mut Collected::default(), &|| false)
            .await
            .unwrap();
        assert_eq!(summary.written, if run == 0 { 2 } else { 0 }, "{summary:?}");
    }
    assert_eq!(fake.field(sf::KB, "Escalation_Quality__c"), json!("Bad"));
    assert_eq!(fake.comments_on(sf::KB).len(), 1);
    assert_eq!(fake.comments_on(sf::GOOD).len(), 1);
}
