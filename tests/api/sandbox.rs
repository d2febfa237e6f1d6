//! `escalation-gate sandbox`: the real binary on free ports in a temporary folder, and every
//! command it prints run as printed (through `sh`, after loading the printed secrets file);
//! `report --sandbox`; the committed sample scorecards; and the sample account read back in
//! this process as the report and backfill read a helpdesk.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use escalation_gate::assess::{Outcome, ReasonKind};
use escalation_gate::helpdesk::TicketRef;
use escalation_gate::helpdesk::records::{CaseRecord, RecordSink};
use escalation_gate::sandbox::connector::{CONNECTOR, Secrets};
use escalation_gate::sandbox::{DEFAULT_SEED, Sandbox};
use regex::Regex;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_escalation-gate");
/// The sample's "today" in these tests: its quarters are January to June 2026.
const TODAY: &str = "2026-07-01";

/// A child process stopped when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port no one listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `escalation-gate sandbox` and what it printed.
struct Started {
    child: Running,
    /// Everything it printed before it was ready.
    guide: String,
    /// `http://127.0.0.1:PORT`: the sample Zendesk and its pages.
    zendesk: String,
}

/// Starts the sandbox in `cwd` with `args` (free ports, no timed arrivals); waits until it has
/// printed its guide.
fn start_sandbox(cwd: &Path, args: &[&str]) -> Started {
    let mut child = Command::new(BIN)
        .args([
            "sandbox",
            "--port",
            "0",
            "--smtp-port",
            "0",
            "--every-secs",
            "0",
        ])
        .args(["--today", TODAY])
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut guide = String::new();
    let running = Running(child);
    let page = Regex::new(r"Sandbox page +(http://127\.0\.0\.1:\d+)/sandbox").unwrap();
    for line in lines.by_ref() {
        let line = line.unwrap();
        guide.push_str(&line);
        guide.push('\n');
        if line.starts_with("Ctrl-C stops the sandbox") {
            let zendesk = page
                .captures(&guide)
                .unwrap_or_else(|| panic!("the page's address in {guide}"))[1]
                .to_string();
            return Started {
                child: running,
                guide,
                zendesk,
            };
        }
    }
    panic!("the sandbox stopped before it was ready: {guide}");
}

/// The printed command line that starts with `binary command`.
fn printed(guide: &str, command: &str) -> Vec<String> {
    guide
        .lines()
        .filter(|l| l.starts_with(&format!("{BIN} {command} ")))
        .map(str::to_string)
        .collect()
}

/// Runs a printed line through `sh` in `cwd`, the printed secrets file loaded first.
async fn run_printed(cwd: &Path, env_line: &str, line: &str) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("{env_line} && {line}"))
        .current_dir(cwd)
        .env("EG_INDEX_IN_MEMORY", "true");
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The body of a GET of `url`.
async fn page_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// Polls `get` every 100 ms until `done` holds for its answer (at most `secs` seconds).
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    secs: u64,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let body = match client.get(url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never became ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGINT (Ctrl-C) to the child and waits for it.
fn interrupt(mut started: Started) -> (std::process::ExitStatus, String) {
    let pid = started.child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = started.child.0.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = started.child.0.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
    }
    (status, err)
}

#[tokio::test]
async fn every_command_the_sandbox_prints_works_as_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let serve_url = format!("http://127.0.0.1:{}", free_port());
    let started = start_sandbox(cwd, &["--serve-url", &serve_url]);
    let guide = started.guide.clone();
    let env_line = guide
        .lines()
        .find(|l| l.starts_with(". "))
        .unwrap_or_else(|| panic!("the secrets line in {guide}"))
        .to_string();
    assert_eq!(env_line, ". sandbox/sandbox.env");
    assert!(
        guide.contains("tickets created 2026-01-01 to 2026-06-30"),
        "{guide}"
    );
    let toml = std::fs::read_to_string(cwd.join("sandbox/sandbox.toml")).unwrap();
    assert!(toml.contains(&format!("base_url = \"{}\"", started.zendesk)));
    assert!(
        !toml.contains("fake-api-token"),
        "secrets stay in sandbox.env"
    );

    // install zendesk: everything created, the webhook's secret already in the connector; again:
    // nothing changes.
    let install = &printed(&guide, "install")[0];
    assert!(install.contains(&format!("--url {serve_url}")), "{install}");
    let first = run_printed(cwd, &env_line, install).await;
    let said = text(&first.stdout);
    assert!(first.status.success(), "{said}{}", text(&first.stderr));
    assert!(
        said.contains("created   webhook `escalation-gate: sandbox`"),
        "{said}"
    );
    assert!(
        said.contains("The connector already holds the webhook's signing secret."),
        "{said}"
    );
    let again = run_printed(cwd, &env_line, install).await;
    assert!(
        text(&again.stdout).contains("Nothing to change: everything is installed as configured."),
        "{}",
        text(&again.stdout)
    );

    // serve, then a new escalation: the trigger calls serve, which judges it and writes the
    // verdict back to the sample account.
    let serve_line = &printed(&guide, "serve")[0];
    let serve = Running(
        Command::new("sh")
            .arg("-c")
            .arg(format!("{env_line} && exec {serve_line}"))
            .current_dir(cwd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    wait_for(&client, &format!("{serve_url}/healthz"), 60, |b| {
        !b.is_empty()
    })
    .await;
    let page = format!("{}/sandbox", started.zendesk);
    let resp = client
        .post(format!("{page}/escalations"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let home = page_text(&client, &page).await;
    let id: u64 = Regex::new(r#"href="/sandbox/tickets/(\d+)""#)
        .unwrap()
        .captures(&home)
        .unwrap()[1]
        .parse()
        .unwrap();
    let ticket_page = format!("{page}/tickets/{id}");
    let judged = wait_for(&client, &ticket_page, 30, |b| {
        b.contains("escalation-gate verdict")
    })
    .await;
    assert!(judged.contains("internal note"), "{judged}");
    assert!(
        judged.contains("csat_blind_pending"),
        "the verdict write marks the survey: {judged}"
    );
    let calls = page_text(&client, &page).await;
    assert!(calls.contains("judge escalations"), "{calls}");
    assert!(calls.contains("HTTP 200"), "{calls}");

    // Solved: the survey automation calls serve, whose e-mail reaches the mail catcher; its
    // link opens the survey page on serve.
    let resp = client
        .post(format!("{ticket_page}/solve"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let list = wait_for(&client, &format!("{page}/mail"), 30, |b| {
        b.contains("/sandbox/mail/1")
    })
    .await;
    assert!(
        list.contains(&format!("How did we do with your case #{id}?")),
        "{list}"
    );
    let message = client.get(format!("{page}/mail/1")).send().await.unwrap();
    assert!(
        message.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let message = message.text().await.unwrap();
    assert!(
        message.contains("<iframe sandbox="),
        "the HTML part is framed: {message}"
    );
    let link = Regex::new(&format!(
        r"{}/survey/sandbox/r\?t=[A-Za-z0-9_.-]+",
        regex::escape(&serve_url)
    ))
    .unwrap()
    .find(&message)
    .unwrap_or_else(|| panic!("a rating link in {message}"))
    .as_str()
    .to_string();
    let survey = client.get(&link).send().await.unwrap();
    assert_eq!(survey.status(), 200);
    let survey = survey.text().await.unwrap();
    assert!(survey.contains("Ledgerly"), "{survey}");
    assert!(survey.contains("<form"), "the survey page asks: {survey}");
    drop(serve);

    // backfill: a dry run over the two quarters writes nothing and says what it judged.
    let backfill = &printed(&guide, "backfill")[0];
    let out = run_printed(cwd, &env_line, backfill).await;
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("backfill (dry run, nothing written): found"),
        "{err}"
    );
    assert!(err.contains("failed 0, written 0"), "{err}");
    let lines = std::fs::read_to_string(cwd.join("sandbox/backfill.jsonl")).unwrap();
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["escalated_at_source"], "history", "{first}");

    // report: the vendor's edition names every partner; the partner's only its own.
    let reports = printed(&guide, "report");
    assert_eq!(reports.len(), 2, "{guide}");
    for line in &reports {
        let out = run_printed(cwd, &env_line, line).await;
        assert!(out.status.success(), "{line}: {}", text(&out.stderr));
    }
    let vendor = std::fs::read_to_string(cwd.join("sandbox/scorecard.html")).unwrap();
    for partner in ["Acme IT Services", "Northwind Support", "Contoso Partners"] {
        assert!(vendor.contains(partner), "{partner}");
    }
    let partner =
        std::fs::read_to_string(cwd.join("sandbox/scorecard-northwind-support.html")).unwrap();
    assert!(partner.contains("Northwind Support"));
    assert!(
        !partner.contains("Acme IT Services"),
        "a partner sees only itself"
    );

    // calibrate: the reviewers' agreement with the judge.
    let out = run_printed(cwd, &env_line, &printed(&guide, "calibrate")[0]).await;
    let said = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        said.contains("Calibration of connector `sandbox`"),
        "{said}"
    );
    assert!(said.contains("precision of \"bad\""), "{said}");

    // Ctrl-C stops it cleanly.
    let (status, err) = interrupt(started);
    assert!(status.success(), "{err}");
    assert!(err.contains("Stopped"), "{err}");
}

#[tokio::test]
async fn the_sandbox_writes_only_what_it_wrote_before_and_keeps_its_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let dir = cwd.join("sandbox");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("sandbox.toml"), "# mine\n").unwrap();
    let refused = Command::new(BIN)
        .args(["sandbox", "--port", "0", "--smtp-port", "0"])
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains(
            "sandbox/sandbox.toml exists and was not written by `escalation-gate sandbox`"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sandbox.toml")).unwrap(),
        "# mine\n"
    );

    std::fs::remove_file(dir.join("sandbox.toml")).unwrap();
    std::fs::write(dir.join("acme.toml"), "").unwrap();
    let refused = Command::new(BIN)
        .args(["sandbox", "--port", "0", "--smtp-port", "0"])
        .current_dir(cwd)
        .output()
        .unwrap();
    let err = text(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("holds other connector files") && err.contains("acme.toml"),
        "{err}"
    );

    std::fs::remove_file(dir.join("acme.toml")).unwrap();
    let refused = Command::new(BIN)
        .args(["sandbox", "--serve-url", "https://eg.example.com"])
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(err.contains("must name a host on loopback"), "{err}");

    let once = start_sandbox(cwd, &[]);
    let env = std::fs::read_to_string(dir.join("sandbox.env")).unwrap();
    interrupt(once);
    let twice = start_sandbox(cwd, &[]);
    assert_eq!(
        std::fs::read_to_string(dir.join("sandbox.env")).unwrap(),
        env,
        "a serve started with the first secrets keeps working"
    );
    interrupt(twice);
}

#[test]
fn report_sandbox_shows_the_scorecard_in_one_command() {
    let out = Command::new(BIN)
        .args([
            "report",
            "--sandbox",
            "--sandbox-today",
            TODAY,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let card: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(card["connector"], CONNECTOR);
    assert_eq!(card["from"], "2026-01-01T00:00:00Z");
    assert_eq!(card["to"], "2026-07-01T00:00:00Z");
    assert_eq!(card["tickets"], escalation_gate::sandbox::sample::TICKETS);
    let partners: Vec<&str> = card["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partner"].as_str().unwrap())
        .collect();
    assert_eq!(
        partners,
        [
            "Acme IT Services",
            "Contoso Partners",
            "Fabrikam Helpdesk",
            "Northwind Support"
        ]
    );
    let refused = Command::new(BIN)
        .args(["report", "--sandbox", "--connector", "acme"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("cannot be used with"),
        "{}",
        text(&refused.stderr)
    );
}

/// `docs/samples/README.md`'s commands write exactly the committed files.
#[test]
fn the_committed_sample_scorecards_are_what_their_commands_write() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("docs/samples/README.md")).unwrap();
    let prefix = "cargo run --release -- ";
    let commands: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect();
    assert!(commands.len() >= 4, "{readme}");
    let tmp = tempfile::tempdir().unwrap();
    let out_flag = Regex::new(r"--out (docs/samples/\S+)").unwrap();
    for command in commands {
        let out_path = out_flag.captures(command).unwrap()[1].to_string();
        let written = tmp.path().join(Path::new(&out_path).file_name().unwrap());
        let line = command.replace(&out_path, &written.display().to_string());
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{BIN} {line}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        let committed = std::fs::read(repo.join(&out_path)).unwrap();
        assert!(
            std::fs::read(&written).unwrap() == committed,
            "{out_path} is not what `{command}` writes now: run the commands of docs/samples/README.md again"
        );
    }
}

/// Records as `report` and `calibrate` read them.
#[derive(Default)]
struct Collected(Vec<CaseRecord>);

impl RecordSink for Collected {
    fn record(&mut self, record: CaseRecord) {
        self.0.push(record);
    }
}

async fn in_process() -> Sandbox {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Sandbox::start(
        http,
        smtp,
        "http://127.0.0.1:8080",
        Secrets::generate(),
        DEFAULT_SEED,
        NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_sample_account_reads_back_as_the_service_wrote_it() {
    let sandbox = in_process().await;
    let s = sandbox.summary.clone();
    let period = sandbox.period();
    let survey = sandbox.connector.survey.as_ref().map(|x| x.fields.clone());
    let connector = sandbox.connector;
    let helpdesk = connector
        .helpdesk
        .build(CONNECTOR, survey.as_ref())
        .unwrap();
    let mut records = Collected::default();
    let record = helpdesk.record.as_deref().unwrap();
    record
        .records(&period, survey.as_ref(), &mut records)
        .await
        .unwrap();
    let records = records.0;
    assert_eq!(records.len() as u64, s.tickets);
    assert_eq!(
        records.iter().filter(|r| r.verdict.is_some()).count() as u64,
        s.judged
    );
    assert_eq!(
        records.iter().filter(|r| r.reviewed.is_some()).count() as u64,
        s.reviewed
    );
    assert_eq!(
        records.iter().filter(|r| r.survey.answered).count() as u64,
        s.answered
    );
    assert!(
        records
            .iter()
            .filter(|r| r.survey.answered)
            .all(|r| r.survey.csat.is_some())
    );
    assert!(s.judged > 200 && s.unjudged > 5 && s.reviewed > 40, "{s:?}");
    // A bad verdict records its reasons; one answered by an article, the article and a
    // confidence at or above the connector's threshold.
    let threshold = connector.policy.kb.threshold;
    for r in records.iter().filter(|r| r.verdict == Some(Outcome::Bad)) {
        assert!(!r.reasons.is_empty(), "{r:?}");
        if r.reasons.contains(&ReasonKind::KbResolvable) {
            assert_eq!(r.kb_articles.len(), 1, "{r:?}");
            assert!(r.kb_confidence.unwrap() + 0.01 >= threshold, "{r:?}");
        }
    }
    // The partners differ as the catalog says: the careful one has the best ratio.
    let ratio = |partner: &str| {
        let mine: Vec<&CaseRecord> = records.iter().filter(|r| r.partner == partner).collect();
        let good = mine
            .iter()
            .filter(|r| r.counted() == Some(Outcome::Good))
            .count();
        let judged = mine.iter().filter(|r| r.counted().is_some()).count();
        good as f64 / judged as f64
    };
    assert!(ratio("Acme IT Services") > ratio("Northwind Support"));
    assert!(ratio("Northwind Support") > ratio("Contoso Partners"));

    // backfill finds every escalation, judged or not, and its time in the audits.
    let mut found: Vec<TicketRef> = Vec::new();
    record
        .escalations(&period, None, &mut |t| found.push(t))
        .await
        .unwrap();
    assert_eq!(found.len() as u64, s.judged + s.unjudged);
    for t in found.iter().take(30) {
        let at = record.escalation_time(&t.id, None).await.unwrap();
        assert!(
            at.is_some_and(|at| at > t.escalated_at),
            "ticket {}: the audits say when it was escalated, after its creation",
            t.id
        );
    }
    drop(sandbox.zendesk);
}

#[tokio::test]
async fn the_mail_pages_escape_what_a_message_holds_and_run_no_script() {
    let sandbox = in_process().await;
    let mut smtp = tokio::net::TcpStream::connect(("127.0.0.1", sandbox.smtp_port))
        .await
        .unwrap();
    let hostile = "Subject: <script>alert(1)</script>\r\nContent-Type: text/html\r\n\r\n<p onclick=\"x()\">hi</p><script>alert(2)</script>\r\n.\r\n";
    for line in [
        "EHLO t.example\r\n".to_string(),
        "MAIL FROM:<a@x.example>\r\n".into(),
        "RCPT TO:<b@y.example>\r\n".into(),
        "DATA\r\n".into(),
        hostile.into(),
        "QUIT\r\n".into(),
    ] {
        tokio::io::AsyncWriteExt::write_all(&mut smtp, line.as_bytes())
            .await
            .unwrap();
    }
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut smtp, &mut rest)
        .await
        .unwrap();
    assert!(text(&rest).contains("221"), "{}", text(&rest));
    let base = format!("{}/sandbox/mail", sandbox.zendesk.url());
    let list = reqwest::get(&base).await.unwrap().text().await.unwrap();
    assert!(
        list.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{list}"
    );
    let page = reqwest::get(format!("{base}/1")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let page = page.text().await.unwrap();
    assert!(
        !page.contains("<script>") && !page.contains("onclick=\""),
        "{page}"
    );
    assert!(
        page.contains("srcdoc=\"&lt;base target=&quot;_blank&quot;&gt;&lt;p onclick="),
        "{page}"
    );
    assert!(page.contains("<iframe sandbox=\"allow-popups allow-popups-to-escape-sandbox\""));
    let missing = reqwest::get(format!("{base}/99")).await.unwrap();
    assert_eq!(missing.status(), 404);
}
