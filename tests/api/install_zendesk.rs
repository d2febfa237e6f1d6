//! `install zendesk` and `uninstall zendesk` through the binary, against the fake Zendesk whose
//! admin routes check every body against the trimmed OpenAPI document.

use std::path::Path;

use serde_json::{Value, json};

use crate::fakes::zendesk::apps::{App, Installation};
use crate::fakes::zendesk::{
    API_TOKEN_AUTH, Failure, FakeZendesk, connector_toml, connectors_dir, zendesk_vars,
};
use crate::helpers::{CONNECTOR, TICKET_SINK, survey_toml};

const URL: &str = "https://eg.example.com";
const SURVEY_KEY: &str = "install-test-survey-link-key-0123456789";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The connector's first `[precheck]` secret, which `--app` installs as the app's secure setting.
const PRECHECK_KEY: &str = "precheck-key-for-the-sidebar-app-5e8c1d2f97";
const APP_NAME: &str = "Escalation gate [acme]";

/// The test connector with one signing-secret variable, `ZD_WEBHOOK_SECRET`, and a sweep query
/// the escalation trigger is derived from; with the blind survey when `survey`.
fn connector_dir(survey: bool) -> tempfile::TempDir {
    let extra = format!(
        "[sweep]\nquery = \"tags:partner_escalated\"\n{}",
        if survey {
            survey_toml(
                "kind = \"webhook\"\nurl = \"https://surveys.example/requests\"\nsecret = \"${SURVEY_WHSEC}\"",
                TICKET_SINK,
            )
        } else {
            String::new()
        }
    );
    let text = connector_toml(API_TOKEN_AUTH, "helpdesk", &extra).replace(
        r#"signing_secrets = ["${ZD_OLD_SECRET}", "${ZD_SECRET}"]"#,
        r#"signing_secrets = ["${ZD_WEBHOOK_SECRET}"]"#,
    );
    connectors_dir(&text)
}

/// [`connector_dir`] without the survey, with a `[precheck]` table whose first secret is
/// `PRECHECK_SECRET`.
fn app_connector_dir() -> tempfile::TempDir {
    let dir = connector_dir(false);
    let file = dir.path().join(format!("{CONNECTOR}.toml"));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!(
            "{text}\n[precheck]\nsecrets = [\"${{PRECHECK_SECRET}}\", \"${{PRECHECK_NEXT}}\"]\n"
        ),
    )
    .unwrap();
    dir
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// The id and signing secret of the one webhook install made.
fn the_webhook(zd: &FakeZendesk) -> (String, String) {
    let id = zd.admin(|a| a.list("webhooks"))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = zd.admin(|a| a.signing_secret(&id)).unwrap();
    (id, secret)
}

impl Run {
    /// Fails unless the run printed `line` (a report line, as `created   app `...` (id)`).
    fn says(&self, line: &str) {
        assert!(self.stdout.contains(line), "{line}\n{}", self.stdout);
    }
}

/// Runs the binary with `args` and the connectors of `dir`; `secret` is what the environment
/// holds as the webhook signing secret.
async fn run(zd: &FakeZendesk, dir: &Path, args: &[&str], secret: Option<&str>) -> Run {
    run_with(zd, dir, args, secret, &[]).await
}

/// [`run`], with `vars` set in the environment over the usual ones.
async fn run_with(
    zd: &FakeZendesk,
    dir: &Path,
    args: &[&str],
    secret: Option<&str>,
    vars: &[(&str, &str)],
) -> Run {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_escalation-gate"));
    c.args(args)
        .arg("--connectors")
        .arg(dir)
        .envs(zendesk_vars(zd))
        .env("APP_URL", "https://eg.example.com")
        .env("SURVEY_KEY", SURVEY_KEY)
        .env("SURVEY_OLD_KEY", SURVEY_KEY)
        .env("SURVEY_WHSEC", WHSEC)
        .env("PRECHECK_SECRET", PRECHECK_KEY)
        .env("PRECHECK_NEXT", "the-next-precheck-key-not-yet-in-use-71b3")
        .env_remove("ZD_WEBHOOK_SECRET")
        .env_remove("RUST_LOG");
    if let Some(s) = secret {
        c.env("ZD_WEBHOOK_SECRET", s);
    }
    c.envs(vars.iter().copied());
    let out = c.output().await.unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn install_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec!["install", "zendesk", "--connector", CONNECTOR, "--url", URL];
    args.extend(extra);
    args
}

/// `uninstall zendesk` with `extra` flags, which must succeed.
async fn uninstall(zd: &FakeZendesk, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["uninstall", "zendesk", "--connector", CONNECTOR];
    args.extend(extra);
    let out = run(zd, dir, &args, None).await;
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    out
}

/// `"METHOD path"` of every request but the reads, from the `since`-th request on.
fn writes_since(zd: &FakeZendesk, since: usize) -> Vec<String> {
    zd.requests()[since..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.route())
        .collect()
}

/// Installs again with a new `--url`: only the webhook `hook_id` is written, in place.
async fn moving_updates_only_the_webhook(
    zd: &FakeZendesk,
    dir: &Path,
    secret: &str,
    hook_id: &str,
) {
    let before = zd.requests().len();
    let moved = run(
        zd,
        dir,
        &[
            "install",
            "zendesk",
            "--connector",
            CONNECTOR,
            "--url",
            "https://eg2.example.com",
        ],
        Some(secret),
    )
    .await;
    assert!(moved.ok, "{}\n{}", moved.stdout, moved.stderr);
    assert_eq!(
        writes_since(zd, before),
        [format!("PUT /api/v2/webhooks/{hook_id}")]
    );
}

fn by_title<'a>(records: &'a [Value], title: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["title"] == title)
        .unwrap_or_else(|| panic!("no record titled {title}"))
}

fn action<'a>(record: &'a Value, field: &str) -> &'a Value {
    record["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["field"] == field)
        .map(|a| &a["value"])
        .unwrap_or_else(|| panic!("no {field} action in {record}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn install_creates_everything_then_a_second_run_changes_nothing() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(true);

    let first = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(first.ok, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(zd.admin(|a| a.violations()), Vec::<String>::new());
    let mut expected = vec![
        "POST /api/v2/webhooks",
        "POST /api/v2/user_fields",
        "POST /api/v2/triggers",
        "POST /api/v2/triggers",
        "POST /api/v2/automations",
    ];
    expected.extend(["POST /api/v2/macros"; 6]);
    assert_eq!(writes_since(&zd, 0), expected);

    let hooks = zd.admin(|a| a.list("webhooks"));
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook["endpoint"], "https://eg.example.com/hooks/acme");
    assert_eq!(hook["http_method"], "POST");
    assert_eq!(hook["request_format"], "json");
    assert_eq!(hook["status"], "active");
    assert_eq!(hook["subscriptions"], json!(["conditional_ticket_events"]));
    let hook_id = hook["id"].as_str().unwrap();

    let triggers = zd.admin(|a| a.list("triggers"));
    let trigger = by_title(&triggers, "escalation-gate: acme: judge escalations");
    assert_eq!(
        trigger["conditions"]["all"],
        json!([
            {"field": "current_tags", "operator": "includes", "value": "partner_escalated"},
            {"field": "current_tags", "operator": "not_includes",
             "value": "escalation_good escalation_bad escalation_review"},
        ])
    );
    let call = action(trigger, "notification_webhook");
    assert_eq!(call[0], hook_id);
    let body: Value = serde_json::from_str(call[1].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"ticket_id": "{{ticket.id}}", "event": "escalated"})
    );
    let rearm = by_title(
        &triggers,
        "escalation-gate: acme: re-arm the blind survey on reopen",
    );
    assert_eq!(action(rearm, "remove_tags"), "csat_blind_requested");

    let automations = zd.admin(|a| a.list("automations"));
    let survey = by_title(
        &automations,
        "escalation-gate: acme: blind survey after solve",
    );
    let call = action(survey, "notification_webhook");
    assert_eq!(call[0], hook_id);
    let body: Value = serde_json::from_str(call[1].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"ticket_id": "{{ticket.id}}", "event": "solved"})
    );
    assert_eq!(action(survey, "current_tags"), "csat_blind_requested");
    assert!(survey["conditions"]["all"].as_array().unwrap().contains(
        &json!({"field": "current_tags", "operator": "includes", "value": "csat_blind_pending"})
    ));

    let macros = zd.admin(|a| a.list("macros"));
    assert_eq!(macros.len(), 6);
    let good = by_title(&macros, "Escalation review [acme]::Good");
    assert_eq!(action(good, "current_tags"), "escalation_reviewed_good");
    let overturn = by_title(
        &macros,
        "Escalation review [acme]::Overturn to bad: an article answers the case",
    );
    assert_eq!(
        action(overturn, "current_tags"),
        "escalation_reviewed_bad escalation_overturn_kb_resolvable"
    );
    assert_eq!(action(overturn, "comment_mode_is_public"), "false");

    let fields = zd.admin(|a| a.list("user_fields"));
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0]["key"], "csat_blind_opt_out");
    assert_eq!(fields[0]["type"], "checkbox");

    // The signing secret: printed once, with the line that stores it; never on stderr.
    let secret = zd.admin(|a| a.signing_secret(hook_id)).unwrap();
    assert_eq!(first.stdout.matches(&secret).count(), 1, "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains(&format!("fly secrets set ZD_WEBHOOK_SECRET={secret}"))
    );
    assert!(!first.stderr.contains(&secret));

    // Second run, the secret stored: nothing written, and it says so.
    let before = zd.requests().len();
    let second = run(&zd, dir.path(), &install_args(&[]), Some(&secret)).await;
    assert!(second.ok, "{}\n{}", second.stdout, second.stderr);
    let later = writes_since(&zd, before);
    assert_eq!(later, Vec::<String>::new());
    assert!(
        second.stdout.contains("Nothing to change"),
        "{}",
        second.stdout
    );
    assert!(
        second
            .stdout
            .contains("already holds the webhook's signing secret")
    );
    assert!(!second.stdout.contains(&secret));
    assert_eq!(second.stdout.matches("unchanged ").count(), 11);

    // A new address: only the webhook is updated, in place.
    moving_updates_only_the_webhook(&zd, dir.path(), &secret, hook_id).await;
    assert_eq!(
        zd.admin(|a| a.list("webhooks"))[0]["endpoint"],
        "https://eg2.example.com/hooks/acme"
    );
    assert_eq!(zd.admin(|a| a.violations()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_reads_and_prints_but_writes_nothing() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(true);
    let out = run(&zd, dir.path(), &install_args(&["--dry-run"]), None).await;
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(writes_since(&zd, 0), Vec::<String>::new());
    assert!(zd.admin(|a| a.list("webhooks")).is_empty());
    assert!(zd.admin(|a| a.list("triggers")).is_empty());
    assert_eq!(out.stdout.matches("would send: POST /api/v2/").count(), 11);
    assert!(out.stdout.contains("would send: POST /api/v2/webhooks"));
    assert!(
        out.stdout
            .contains("\"endpoint\": \"https://eg.example.com/hooks/acme\"")
    );
    assert!(out.stdout.contains("Dry run: only reads were sent"));
    let (_, token) = zd.api_token();
    assert!(!out.stdout.contains(token) && !out.stderr.contains(token));
}

#[tokio::test(flavor = "multi_thread")]
async fn uninstall_removes_exactly_what_install_created() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(true);
    let first = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(first.ok, "{}\n{}", first.stdout, first.stderr);
    // Look-alikes an admin made: a clone of the trigger, a trigger with the very same title but
    // not made by install, a hand-made webhook to the same endpoint, a macro in the category.
    let marker = zd.admin(|a| a.list("triggers"))[0]["description"].clone();
    zd.admin(|a| {
        a.seed(
            "triggers",
            json!({"title": "escalation-gate: acme: judge escalations (copy)", "description": marker,
                   "actions": [], "conditions": {"all": [], "any": []}}),
        );
        a.seed(
            "triggers",
            json!({"title": "escalation-gate: acme: judge escalations", "description": "mine",
                   "actions": [], "conditions": {"all": [], "any": []}}),
        );
        let by_hand = a.seed(
            "webhooks",
            json!({"name": "Escalation gate (by hand)", "endpoint": "https://eg.example.com/hooks/acme",
                   "http_method": "POST", "request_format": "json", "status": "active"}),
        );
        // An automation keeps no description: the one install made is told apart by the
        // webhook it calls, which carries the marker.
        a.seed(
            "automations",
            json!({"title": "escalation-gate: acme: blind survey after solve",
                   "actions": [{"field": "notification_webhook", "value": [by_hand, "{}"]}],
                   "conditions": {"all": [{"field": "status", "operator": "is", "value": "solved"},
                                          {"field": "SOLVED", "operator": "greater_than", "value": "23"}],
                                  "any": []}}),
        );
        a.seed(
            "macros",
            json!({"title": "Escalation review [acme]::Escalate to tier 3", "actions": []}),
        );
    });
    // Installed again next to them: nothing is written, theirs are left as they are.
    let before = zd.requests().len();
    let again = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(again.ok, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(writes_since(&zd, before), Vec::<String>::new());
    assert!(
        again.stdout.contains(
            "kept      trigger `escalation-gate: acme: judge escalations` (50000000013): same \
             name, not made by escalation-gate install"
        ),
        "{}",
        again.stdout
    );
    let before = zd.requests().len();
    let dry = uninstall(&zd, dir.path(), &["--dry-run"]).await;
    assert_eq!(writes_since(&zd, before), Vec::<String>::new());
    assert_eq!(dry.stdout.matches("would send: DELETE ").count(), 10);
    assert_eq!(dry.stdout.matches("would delete ").count(), 10);
    let before = zd.requests().len();
    let out = uninstall(&zd, dir.path(), &[]).await;
    let deleted = writes_since(&zd, before);
    assert_eq!(deleted.len(), 10, "{deleted:?}");
    assert!(deleted.iter().all(|r| r.starts_with("DELETE ")));
    assert!(
        deleted
            .last()
            .unwrap()
            .starts_with("DELETE /api/v2/webhooks/")
    );

    let titles = |c: &str| -> Vec<String> {
        zd.admin(|a| a.list(c))
            .iter()
            .map(|r| {
                r["title"]
                    .as_str()
                    .or(r["name"].as_str())
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        titles("triggers"),
        [
            "escalation-gate: acme: judge escalations (copy)",
            "escalation-gate: acme: judge escalations"
        ]
    );
    assert_eq!(titles("webhooks"), ["Escalation gate (by hand)"]);
    assert_eq!(
        titles("macros"),
        ["Escalation review [acme]::Escalate to tier 3"]
    );
    assert_eq!(
        titles("automations"),
        ["escalation-gate: acme: blind survey after solve"]
    );
    assert_eq!(
        action(
            &zd.admin(|a| a.list("automations"))[0],
            "notification_webhook"
        )[1],
        "{}"
    );
    assert_eq!(
        zd.admin(|a| a.list("user_fields")).len(),
        1,
        "opt-outs are kept"
    );
    assert!(
        out.stdout
            .contains("kept      trigger `escalation-gate: acme: judge escalations`")
    );
    assert!(out.stdout.contains("--delete-opt-out-field"));

    // Installed again, a resource of the same name that install did not make is refused
    // before anything is written.
    let before = zd.requests().len();
    let again = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(!again.ok);
    assert_eq!(writes_since(&zd, before), Vec::<String>::new());
    assert!(
        again.stderr.contains(
            "a trigger named `escalation-gate: acme: judge escalations` (50000000013) exists but \
             was not made by escalation-gate install"
        ),
        "{}",
        again.stderr
    );

    let out = uninstall(&zd, dir.path(), &["--delete-opt-out-field"]).await;
    assert!(
        out.stdout
            .contains("deleted   user field `csat_blind_opt_out`"),
        "{}",
        out.stdout
    );
    assert!(zd.admin(|a| a.list("user_fields")).is_empty());
    assert_eq!(titles("triggers").len(), 2);
    assert_eq!(zd.admin(|a| a.violations()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_403_names_what_to_change_and_nothing_else_is_written() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(false);
    zd.fail_next("POST /api/v2/webhooks", vec![Failure::Status(403)]);
    let out = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains(
            "creating the webhook `escalation-gate: acme`: Zendesk answered HTTP 403 Forbidden"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("must be a Zendesk admin"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`read` and `write` scopes"));
    assert!(out.stderr.contains("You do not have access to this page"));
    assert_eq!(writes_since(&zd, 0), ["POST /api/v2/webhooks"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_422_carries_zendesk_words_and_a_rate_limit_is_waited_out() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(false);
    zd.fail_next(
        "GET /api/v2/webhooks",
        vec![Failure::RateLimited {
            retry_after_secs: 1,
        }],
    );
    zd.fail_next("POST /api/v2/triggers", vec![Failure::Status(422)]);
    let out = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(!out.ok);
    assert_eq!(zd.count("GET /api/v2/webhooks"), 2);
    assert!(
        out.stderr.contains("HTTP 422 Unprocessable Entity (RecordInvalid; Record validation errors; base: Record validation errors)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[helpdesk.install]"));
    // What was done before the refusal is reported.
    assert!(
        out.stdout
            .contains("created   webhook `escalation-gate: acme`")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fake_refuses_bodies_the_document_does_not_describe() {
    let zd = FakeZendesk::start().await;
    let (email, token) = zd.api_token();
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", zd.url()))
            .basic_auth(format!("{email}/token"), Some(token))
            .json(&body)
            .send()
    };
    let bad_type = post(
        "/api/v2/triggers",
        json!({"trigger": {"title": 5, "actions": []}}),
    )
    .await
    .unwrap();
    assert_eq!(bad_type.status(), 400);
    let unknown = post(
        "/api/v2/macros",
        json!({"macro": {"title": "m", "actions": [], "conditions": {}}}),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 400);
    let read_only = post(
        "/api/v2/webhooks",
        json!({"webhook": {"id": "x", "name": "n", "status": "active", "endpoint": "https://e",
                           "http_method": "POST", "request_format": "json"}}),
    )
    .await
    .unwrap();
    assert_eq!(read_only.status(), 400);
    let no_time = post(
        "/api/v2/automations",
        json!({"automation": {"title": "a", "actions": [{"field": "status", "value": "closed"}],
                              "conditions": {"all": [{"field": "status", "operator": "is", "value": "solved"}]}}}),
    )
    .await
    .unwrap();
    assert_eq!(no_time.status(), 422);
    let violations = zd.admin(|a| a.violations());
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[0].contains("body.trigger.title should be string"));
    assert!(violations[1].contains("body.macro.conditions is not a property"));
    assert!(violations[2].contains("body.webhook.id is read-only"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_before_any_call() {
    let zd = FakeZendesk::start().await;
    let plain = run(
        &zd,
        connector_dir(false).path(),
        &[
            "install",
            "zendesk",
            "--connector",
            CONNECTOR,
            "--url",
            "http://eg.example.com",
        ],
        None,
    )
    .await;
    assert!(!plain.ok);
    assert!(
        plain.stderr.contains("must be an https:// URL"),
        "{}",
        plain.stderr
    );

    // No [sweep] query and no [helpdesk.install.trigger]: nothing says what an escalation is.
    let dir = connector_dir(false);
    let file = dir.path().join(format!("{CONNECTOR}.toml"));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("[sweep]\nquery = \"tags:partner_escalated\"\n", ""),
    )
    .unwrap();
    let unknown = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(!unknown.ok);
    assert!(
        unknown.stderr.contains("[helpdesk.install.trigger]"),
        "{}",
        unknown.stderr
    );
    assert!(zd.requests().is_empty());
}

/// The webhook, trigger and macro whose create answers are lost are found again, not created
/// twice: one of each, and the run counts 11.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_whose_answer_is_lost_is_read_back_not_sent_again() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(true);
    for route in [
        "POST /api/v2/webhooks",
        "POST /api/v2/triggers",
        "POST /api/v2/macros",
    ] {
        zd.fail_next(route, vec![Failure::LostAnswer]);
    }
    let out = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(zd.count("POST /api/v2/webhooks"), 1);
    assert_eq!(zd.count("POST /api/v2/triggers"), 2);
    assert_eq!(zd.count("POST /api/v2/macros"), 6);
    let hooks = zd.admin(|a| a.list("webhooks"));
    assert_eq!(hooks.len(), 1);
    assert_eq!(zd.admin(|a| a.list("triggers")).len(), 2);
    assert_eq!(zd.admin(|a| a.list("macros")).len(), 6);
    assert!(out.stdout.contains("Done: 11 created"), "{}", out.stdout);
    assert_eq!(out.stdout.matches("its answer was lost").count(), 3);
    let hook_id = hooks[0]["id"].as_str().unwrap();
    let triggers = zd.admin(|a| a.list("triggers"));
    let trigger = by_title(&triggers, "escalation-gate: acme: judge escalations");
    assert_eq!(action(trigger, "notification_webhook")[0], hook_id);
    let secret = zd.admin(|a| a.signing_secret(hook_id)).unwrap();
    assert!(out.stdout.contains(&secret));
    assert_eq!(zd.admin(|a| a.violations()), Vec::<String>::new());
}

/// Two copies of the webhook, as a lost answer left them before creates were read back: the
/// one the rules call is kept (its secret is the one shown), the orphan is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn of_two_webhooks_the_one_the_rules_call_is_kept() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(true);
    // The orphan is the older one: made first, under another name for now.
    let marker = "Managed by escalation-gate for connector `acme`: \
                  `escalation-gate uninstall zendesk --connector acme` removes it.";
    let orphan = zd.admin(|a| {
        a.seed(
            "webhooks",
            json!({"name": "escalation-gate: acme (older)", "description": marker,
                   "endpoint": "https://eg.example.com/hooks/acme", "http_method": "POST",
                   "request_format": "json", "status": "active",
                   "subscriptions": ["conditional_ticket_events"]}),
        )
    });
    let first = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(first.ok, "{}\n{}", first.stdout, first.stderr);
    let called = zd
        .admin(|a| a.list("webhooks"))
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .find(|id| *id != orphan)
        .unwrap();
    let secret = zd.admin(|a| a.signing_secret(&called)).unwrap();
    let (email, token) = zd.api_token();
    let renamed = reqwest::Client::new()
        .put(format!("{}/api/v2/webhooks/{orphan}", zd.url()))
        .basic_auth(format!("{email}/token"), Some(token))
        .json(
            &json!({"webhook": {"name": "escalation-gate: acme", "description": marker,
            "endpoint": "https://eg.example.com/hooks/acme", "http_method": "POST",
            "request_format": "json", "status": "active"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 204);

    let before = zd.requests().len();
    let again = run(&zd, dir.path(), &install_args(&[]), Some(&secret)).await;
    assert!(again.ok, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(
        writes_since(&zd, before),
        [format!("DELETE /api/v2/webhooks/{orphan}")]
    );
    assert!(
        again
            .stdout
            .contains("already holds the webhook's signing secret"),
        "{}",
        again.stdout
    );
    let hooks = zd.admin(|a| a.list("webhooks"));
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["id"], called.as_str());

    // A new address afterwards: the kept webhook is updated in place.
    moving_updates_only_the_webhook(&zd, dir.path(), &secret, &called).await;
    assert_eq!(zd.admin(|a| a.violations()), Vec::<String>::new());
}

/// A 403 after the same run created admin resources is not about being an admin: it says
/// what was created, Zendesk's words, and that a rerun finishes the job (which it does).
#[tokio::test(flavor = "multi_thread")]
async fn a_403_after_writes_says_what_was_created_and_that_a_rerun_finishes() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(false);
    zd.fail_next("POST /api/v2/triggers", vec![Failure::Status(403)]);
    let out = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains(
            "creating the trigger `escalation-gate: acme: judge escalations`: Zendesk answered \
             HTTP 403 Forbidden (Forbidden; You do not have access to this page"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "This run already created the webhook `escalation-gate: acme` with the same \
             credentials"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("run install again"), "{}", out.stderr);
    assert!(!out.stderr.contains("must be a Zendesk admin"));

    let before = zd.requests().len();
    let rerun = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(rerun.ok, "{}\n{}", rerun.stdout, rerun.stderr);
    let mut expected = vec!["POST /api/v2/triggers"];
    expected.extend(["POST /api/v2/macros"; 6]);
    assert_eq!(writes_since(&zd, before), expected);
    assert!(
        rerun
            .stdout
            .contains("Done: 7 created, 0 updated, 0 deleted, 1 unchanged")
    );
}

/// Where the signing secret's variable is not set (a laptop, CI), a rerun neither reads nor
/// prints the secret; a variable set to another secret gets the webhook's.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_without_the_secret_in_its_environment_does_not_show_it_again() {
    let zd = FakeZendesk::start().await;
    let dir = connector_dir(false);
    let first = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(first.ok, "{}\n{}", first.stdout, first.stderr);
    let (hook_id, secret) = the_webhook(&zd);
    assert!(first.stdout.contains("shown this once"));

    let secret_route = format!("GET /api/v2/webhooks/{hook_id}/signing_secret");
    let before = zd.count(&secret_route);
    let second = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(second.ok, "{}\n{}", second.stdout, second.stderr);
    assert!(!second.stdout.contains(&secret), "{}", second.stdout);
    assert!(!second.stdout.contains("shown this once"));
    assert!(
        second.stdout.contains("ZD_WEBHOOK_SECRET is not set here"),
        "{}",
        second.stdout
    );
    assert_eq!(zd.count(&secret_route), before, "no secret read");

    let stale = run(
        &zd,
        dir.path(),
        &install_args(&[]),
        Some("an-older-secret-that-is-not-the-webhooks"),
    )
    .await;
    assert!(stale.ok, "{}\n{}", stale.stdout, stale.stderr);
    assert!(
        stale
            .stdout
            .contains(&format!("fly secrets set ZD_WEBHOOK_SECRET={secret}"))
    );
    assert!(stale.stdout.contains("do not include the webhook's"));
}

/// The one app and the one installation the fake holds.
fn the_app(zd: &FakeZendesk) -> (App, Installation) {
    let apps = zd.apps(|a| a.owned());
    assert_eq!(apps.len(), 1, "{apps:?}");
    let installs = zd.apps(|a| a.installations());
    assert_eq!(installs.len(), 1, "{installs:?}");
    (apps[0].clone(), installs[0].clone())
}

/// `install zendesk --app` uploads the package `install zendesk-app` writes, builds it into a
/// private app, waits for the build job and installs the app with the service URL and the
/// precheck secret, which it never prints. A rerun writes nothing; a new URL rebuilds the app
/// and updates the installation in place.
#[tokio::test(flavor = "multi_thread")]
async fn install_app_uploads_builds_and_installs_the_sidebar_app() {
    let zd = FakeZendesk::start().await;
    let dir = app_connector_dir();
    let first = run(&zd, dir.path(), &install_args(&["--app"]), None).await;
    assert!(first.ok, "{}\n{}", first.stdout, first.stderr);
    let mut expected = vec!["POST /api/v2/webhooks", "POST /api/v2/triggers"];
    expected.extend(["POST /api/v2/macros"; 6]);
    expected.extend([
        "POST /api/v2/apps/uploads",
        "POST /api/v2/apps",
        "POST /api/v2/apps/installations",
    ]);
    assert_eq!(writes_since(&zd, 0), expected);
    let upload = zd
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v2/apps/uploads")
        .unwrap();
    assert!(
        upload
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    assert_eq!(
        zd.count("GET /api/v2/apps/job_statuses/"),
        2,
        "read while queued, then completed"
    );

    let (app, installation) = the_app(&zd);
    assert_eq!(app.record["name"], APP_NAME);
    assert_eq!(app.manifest["name"], APP_NAME);
    assert!(app.files.contains(&"assets/iframe.html".to_string()));
    let version = app.record["version"].as_str().unwrap().to_string();
    assert!(
        version.starts_with(concat!(env!("CARGO_PKG_VERSION"), "+")),
        "{version}"
    );
    assert_eq!(installation.app_id, app.record["id"].as_u64().unwrap());
    assert_eq!(installation.settings["name"], APP_NAME);
    assert_eq!(
        installation.settings["service_url"],
        "https://eg.example.com/"
    );
    assert_eq!(installation.settings["precheck_secret"], PRECHECK_KEY);
    for text in [&first.stdout, &first.stderr] {
        assert!(!text.contains(PRECHECK_KEY), "{text}");
    }
    first.says(&format!(
        "created   app `{APP_NAME}` ({})",
        app.record["id"]
    ));
    first.says(&format!(
        "created   app installation `{APP_NAME}` ({})",
        installation.id
    ));
    assert!(
        first.stdout.contains("Done: 10 created"),
        "{}",
        first.stdout
    );

    // The same package again: nothing written.
    let (hook_id, secret) = the_webhook(&zd);
    let before = zd.requests().len();
    let second = run(&zd, dir.path(), &install_args(&["--app"]), Some(&secret)).await;
    assert!(second.ok, "{}\n{}", second.stdout, second.stderr);
    assert_eq!(writes_since(&zd, before), Vec::<String>::new());
    assert!(
        second
            .stdout
            .contains(&format!("unchanged app `{APP_NAME}`"))
    );
    assert!(
        second
            .stdout
            .contains(&format!("unchanged app installation `{APP_NAME}`"))
    );
    assert!(
        second.stdout.contains("Nothing to change"),
        "{}",
        second.stdout
    );
    assert_eq!(zd.apps(|a| a.uploads()), 1);

    // A new address: the webhook, the app (a new package) and the installation's settings are
    // updated in place.
    let before = zd.requests().len();
    let mut moved_args = install_args(&["--app"]);
    moved_args[5] = "https://eg2.example.com";
    let moved = run(&zd, dir.path(), &moved_args, Some(&secret)).await;
    assert!(moved.ok, "{}\n{}", moved.stdout, moved.stderr);
    assert_eq!(
        writes_since(&zd, before),
        [
            format!("PUT /api/v2/webhooks/{hook_id}"),
            "POST /api/v2/apps/uploads".to_string(),
            format!("PUT /api/v2/apps/{}", app.record["id"]),
            format!("PUT /api/v2/apps/installations/{}", installation.id),
        ]
    );
    let (moved_app, moved_installation) = the_app(&zd);
    assert_ne!(moved_app.record["version"], version.as_str());
    assert_eq!(
        moved_app.manifest["domainWhitelist"],
        json!(["eg2.example.com"])
    );
    assert_eq!(
        moved_installation.settings["service_url"],
        "https://eg2.example.com/"
    );
    assert_eq!(moved_installation.settings["precheck_secret"], PRECHECK_KEY);
    assert!(!moved.stdout.contains(PRECHECK_KEY) && !moved.stderr.contains(PRECHECK_KEY));

    // Uninstalled: the installation, then the app, go first; a dry run only says so.
    let before = zd.requests().len();
    let dry = uninstall(&zd, dir.path(), &["--dry-run"]).await;
    assert_eq!(writes_since(&zd, before), Vec::<String>::new());
    for route in [
        format!(
            "would send: DELETE /api/v2/apps/installations/{}",
            moved_installation.id
        ),
        format!("would send: DELETE /api/v2/apps/{}", moved_app.record["id"]),
    ] {
        assert!(dry.stdout.contains(&route), "{route}\n{}", dry.stdout);
    }
    let before = zd.requests().len();
    let out = uninstall(&zd, dir.path(), &[]).await;
    let deleted = writes_since(&zd, before);
    assert_eq!(
        deleted[..2],
        [
            format!(
                "DELETE /api/v2/apps/installations/{}",
                moved_installation.id
            ),
            format!("DELETE /api/v2/apps/{}", moved_app.record["id"]),
        ]
    );
    out.says(&format!(
        "deleted   app `{APP_NAME}` ({})",
        moved_app.record["id"]
    ));
    assert!(zd.apps(|a| a.owned()).is_empty());
    assert!(zd.apps(|a| a.installations()).is_empty());
    let before = zd.requests().len();
    uninstall(&zd, dir.path(), &[]).await;
    assert_eq!(writes_since(&zd, before), Vec::<String>::new());
}

/// A rotated precheck secret cannot be seen to differ (Zendesk never shows a secure setting):
/// install leaves the installation alone, and `--resend-secret` sends it, without printing it.
#[tokio::test(flavor = "multi_thread")]
async fn resend_secret_sends_a_rotated_precheck_secret_to_the_installation() {
    let zd = FakeZendesk::start().await;
    let dir = app_connector_dir();
    let first = run(&zd, dir.path(), &install_args(&["--app"]), None).await;
    assert!(first.ok, "{}\n{}", first.stdout, first.stderr);
    let (_, secret) = the_webhook(&zd);
    let rotated = "a-rotated-precheck-key-of-enough-length-5c2e";
    let vars = [("PRECHECK_SECRET", rotated)];

    let before = zd.requests().len();
    let plain = run_with(
        &zd,
        dir.path(),
        &install_args(&["--app"]),
        Some(&secret),
        &vars,
    )
    .await;
    assert!(plain.ok, "{}\n{}", plain.stdout, plain.stderr);
    assert_eq!(writes_since(&zd, before), Vec::<String>::new());
    assert_eq!(the_app(&zd).1.settings["precheck_secret"], PRECHECK_KEY);

    let before = zd.requests().len();
    let args = install_args(&["--app", "--resend-secret"]);
    let resent = run_with(&zd, dir.path(), &args, Some(&secret), &vars).await;
    assert!(resent.ok, "{}\n{}", resent.stdout, resent.stderr);
    let installation = the_app(&zd).1;
    assert_eq!(
        writes_since(&zd, before),
        [format!(
            "PUT /api/v2/apps/installations/{}",
            installation.id
        )]
    );
    assert_eq!(installation.settings["precheck_secret"], rotated);
    assert!(
        resent
            .stdout
            .contains("the precheck secret sent again (--resend-secret)"),
        "{}",
        resent.stdout
    );
    for text in [&resent.stdout, &resent.stderr] {
        assert!(!text.contains(rotated), "{text}");
    }

    let without_app = run(&zd, dir.path(), &install_args(&["--resend-secret"]), None).await;
    assert!(!without_app.ok);
    assert!(
        without_app.stderr.contains("--app"),
        "{}",
        without_app.stderr
    );
}

/// A build job that fails stops the run with Zendesk's message, after what was done (and the
/// webhook's signing secret) is printed; nothing is installed.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_build_job_is_a_clear_error() {
    let zd = FakeZendesk::start().await;
    let dir = app_connector_dir();
    zd.apps(|a| a.fail_next_build("Manifest: location ticket_sidebar is not allowed"));
    let out = run(&zd, dir.path(), &install_args(&["--app"]), None).await;
    assert!(!out.ok, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "building the app `{APP_NAME}`: Zendesk's build job"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("failed: Manifest: location ticket_sidebar is not allowed."),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("run install again"), "{}", out.stderr);
    assert!(out.stdout.contains("shown this once"), "{}", out.stdout);
    assert!(zd.apps(|a| a.owned()).is_empty());
    assert!(zd.apps(|a| a.installations()).is_empty());
    assert!(!writes_since(&zd, 0).contains(&"POST /api/v2/apps/installations".to_string()));
}

/// A 403 on the installation names that step and what the run already did; a 403 on the first
/// write says that apps need an admin and a plan with private apps. A rerun finishes the job.
#[tokio::test(flavor = "multi_thread")]
async fn a_403_on_the_app_names_the_step_and_what_was_done() {
    let zd = FakeZendesk::start().await;
    let dir = app_connector_dir();
    zd.fail_next(
        "POST /api/v2/apps/installations",
        vec![Failure::Status(403)],
    );
    let out = run(&zd, dir.path(), &install_args(&["--app"]), None).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains(&format!(
            "creating the app installation `{APP_NAME}`: Zendesk answered HTTP 403 Forbidden \
             (Forbidden; You do not have access to this page"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("This run already created the webhook `escalation-gate: acme`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("created the app `{APP_NAME}`")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("run install again"), "{}", out.stderr);

    let before = zd.requests().len();
    let rerun = run(&zd, dir.path(), &install_args(&["--app"]), None).await;
    assert!(rerun.ok, "{}\n{}", rerun.stdout, rerun.stderr);
    assert_eq!(
        writes_since(&zd, before),
        ["POST /api/v2/apps/installations"]
    );
    the_app(&zd);

    // Another account where everything but the app is installed: a 403 on the upload.
    let zd = FakeZendesk::start().await;
    let plain = run(&zd, dir.path(), &install_args(&[]), None).await;
    assert!(plain.ok, "{}\n{}", plain.stdout, plain.stderr);
    zd.fail_next("POST /api/v2/apps/uploads", vec![Failure::Status(403)]);
    let out = run(&zd, dir.path(), &install_args(&["--app"]), None).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains(&format!(
            "uploading the package of the app `{APP_NAME}`: Zendesk answered HTTP 403 Forbidden"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "must be a Zendesk admin (apps are admin settings), an OAuth token needs the `read` \
             and `write` scopes, and the plan must include private apps"
        ),
        "{}",
        out.stderr
    );
    assert!(zd.apps(|a| a.owned()).is_empty());
}

/// Without a `[precheck]` secret there is nothing to give the app: refused before any call. A
/// dry run sends no write and prints no secret.
#[tokio::test(flavor = "multi_thread")]
async fn install_app_needs_a_precheck_secret_and_a_dry_run_writes_nothing() {
    let zd = FakeZendesk::start().await;
    let out = run(
        &zd,
        connector_dir(false).path(),
        &install_args(&["--app"]),
        None,
    )
    .await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("connector `acme` has no [precheck] secret"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was sent to Zendesk"));
    assert!(zd.requests().is_empty());

    let dir = app_connector_dir();
    let dry = run(
        &zd,
        dir.path(),
        &install_args(&["--app", "--dry-run"]),
        None,
    )
    .await;
    assert!(dry.ok, "{}\n{}", dry.stdout, dry.stderr);
    assert_eq!(writes_since(&zd, 0), Vec::<String>::new());
    assert!(dry.stdout.contains("would send: POST /api/v2/apps/uploads"));
    assert!(
        dry.stdout
            .contains("would send: POST /api/v2/apps/installations")
    );
    assert!(
        dry.stdout.contains("would create app installation"),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains(PRECHECK_KEY) && !dry.stderr.contains(PRECHECK_KEY));
}
