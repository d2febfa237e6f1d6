//! The command line: `check` on the shipped samples, `send` against the demo, `--help`.

use std::path::{Path, PathBuf};
use std::process::Command;

use escalation_gate::runtime::connector::Connector;
use escalation_gate::server::ServerSettings;
use serde_json::Value;

const DEMO_SECRET: &str = "demo-test-secret-5be08f41c7a2d936";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_escalation-gate"));
    c.current_dir(repo())
        .env("DEMO_SIGNING_SECRET", DEMO_SECRET)
        .env("EG_INDEX_IN_MEMORY", "true");
    c
}

fn check(sample: &str) -> Value {
    check_with(&[], sample)
}

/// `check` of a shipped sample on the demo connector, with `flags`.
fn check_with(flags: &[&str], sample: &str) -> Value {
    let out = bin()
        .args(["check", "--connector", "demo"])
        .args(flags)
        .arg(Path::new("connectors/demo/samples").join(sample))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check prints JSON")
}

fn reasons(v: &Value) -> Vec<String> {
    v["verdict"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn check_judges_the_shipped_samples() {
    let good = check("good.json");
    assert_eq!(good["verdict"]["outcome"], "good");
    assert_eq!(good["partner"], "Acme IT Services");
    assert!(good["note"].as_str().unwrap().contains("GOOD escalation"));

    let kb = check("kb_resolvable.json");
    assert_eq!(kb["verdict"]["outcome"], "bad");
    assert_eq!(reasons(&kb), ["kb_resolvable"]);
    let by = &kb["verdict"]["kb"]["resolvable_by"];
    assert_eq!(by["article_id"], "kb-1001");
    assert!(by["passage"].as_str().unwrap().contains("E1234"));
    assert!(
        kb["note"]
            .as_str()
            .unwrap()
            .contains("help.ledgerly.example/articles/kb-1001")
    );

    let missing = check("missing_handoff.json");
    assert_eq!(reasons(&missing), ["missing_handoff"]);
    assert_eq!(missing["verdict"]["flags"]["late"], true);
    let note = missing["note"].as_str().unwrap();
    assert!(
        note.contains("- environment: must be filled in; found empty."),
        "{note}"
    );
}

#[test]
fn check_explains_what_is_wrong() {
    let out = bin()
        .args([
            "check",
            "--connector",
            "nosuch",
            "connectors/demo/samples/good.json",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no connector `nosuch`"));

    let out = bin()
        .args(["check", "--connector", "demo", "Cargo.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not JSON"));
}

#[test]
fn dates_that_do_not_parse_say_which_forms_are_accepted() {
    let run = |args: &[&str]| {
        let out = bin().args(args).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let period = |from: &str| {
        run(&[
            "report",
            "--connector",
            "demo",
            "--from",
            from,
            "--to",
            "2024-03-31",
        ])
    };
    let e = period("2024-02-30");
    assert!(
        e.contains("`2024-02-30` is not a day of the calendar: February 2024 has 29 days"),
        "{e}"
    );
    let e = period("01/01/2024");
    assert!(
        e.contains("write a day as YYYY-MM-DD (e.g. 2024-05-31), in UTC"),
        "{e}"
    );
    let e = run(&[
        "check",
        "--connector",
        "demo",
        "--escalated-at",
        "05/01/2024",
        "connectors/demo/samples/good.json",
    ]);
    assert!(e.contains("RFC 3339 (e.g. 2024-05-01T09:30:00Z"), "{e}");
    // A day is an instant: its start, UTC.
    let v = check_with(&["--escalated-at", "2024-05-01"], "good.json");
    assert!(
        v["note"]
            .as_str()
            .unwrap()
            .contains("escalated 2024-05-01 00:00 UTC"),
        "{}",
        v["note"]
    );
}

#[test]
fn an_error_and_its_cause_are_printed_once() {
    let out = bin()
        .args([
            "eval",
            "--articles",
            "no-such-articles.jsonl",
            "--cases",
            "no-such-cases.jsonl",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8(out.stderr).unwrap();
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    assert!(e.contains("no-such-articles.jsonl"), "{e}");
}

#[test]
fn a_connector_is_named_by_its_id_never_by_a_path() {
    // `connectors/examples/../demo.toml` is the demo connector, outside the folder given.
    let sample = "connectors/demo/samples/good.json";
    for args in [
        vec!["check", sample],
        vec!["sweep"],
        vec!["send", sample, "--url", "http://127.0.0.1:9/hooks/demo"],
    ] {
        let out = bin()
            .args(&args)
            .args([
                "--connector",
                "../demo",
                "--connectors",
                "connectors/examples",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("`../demo` is not a connector id: letters, digits, - and _ only"),
            "{args:?}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing was judged or sent"
        );
    }
}

#[test]
fn check_help_describes_its_file() {
    let out = bin().args(["check", "--help"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let after = text.split("  <FILE>\n").nth(1).unwrap_or_default();
    let described = after.lines().next().unwrap_or_default().trim();
    assert!(described.starts_with("The saved ticket"), "{text}");
}

#[test]
fn help_names_every_command() {
    let out = bin().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["serve", "check", "validate", "send", "calibrate"] {
        assert!(text.contains(cmd), "{cmd} in\n{text}");
    }
    let out = bin().args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("EG_LISTEN") && text.contains("EG_CONNECTORS"),
        "{text}"
    );
}

#[tokio::test]
async fn send_signs_a_sample_and_the_demo_judges_it() {
    let env = |name: &str| (name == "DEMO_SIGNING_SECRET").then(|| DEMO_SECRET.to_string());
    let connectors = repo().join("connectors");
    let valid = escalation_gate::config::load_file(&connectors.join("demo.toml"), &env).unwrap();
    let connector = Connector::build(valid).unwrap();
    connector.ready().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/demo", listener.local_addr().unwrap());
    tokio::spawn(escalation_gate::run(
        vec![connector],
        ServerSettings::default(),
        listener,
        std::future::pending(),
    ));

    let send = |extra: &'static [&'static str]| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = bin();
            cmd.args([
                "send",
                "connectors/demo/samples/kb_resolvable.json",
                "--url",
                &url,
            ]);
            cmd.args(extra);
            let out = cmd.output().unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(out.status.success(), "{stdout}");
            stdout
        })
    };
    // By default: the verdict and the note a person reads, not the signals; the sample is sent
    // as if escalated now, so it is not late.
    let stdout = send(&[]).await.unwrap();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("HTTP 200 OK"), "{stdout}");
    assert_eq!(
        lines.next(),
        Some(
            "Ticket 1002: BAD (kb_resolvable); logged by the service, not written \
             (write_back = \"log\")"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("escalation-gate verdict: BAD escalation (kb_resolvable)")
            && stdout.contains("help.ledgerly.example/articles/kb-1001"),
        "{stdout}"
    );
    assert!(!stdout.contains("cov_w"), "{stdout}");
    assert!(stdout.lines().count() < 30, "{stdout}");
    // With --keep-times: the file's 2024 times, escalated now: late.
    let stdout = send(&["--keep-times"]).await.unwrap();
    assert!(
        stdout.contains("Ticket 1002: BAD (kb_resolvable), flagged late;"),
        "{stdout}"
    );
    // With --json: the service's whole answer, the note in it.
    let stdout = send(&["--json"]).await.unwrap();
    let answer: Value =
        serde_json::from_str(stdout.strip_prefix("HTTP 200 OK\n").unwrap()).unwrap();
    assert_eq!(answer["results"][0]["written"], "logged");
    assert_eq!(answer["results"][0]["verdict"], "bad");
    assert!(
        answer["results"][0]["note"]
            .as_str()
            .unwrap()
            .starts_with("escalation-gate verdict: BAD escalation")
    );

    let out = bin()
        .env_remove("DEMO_SIGNING_SECRET")
        .args(["send", "connectors/demo/samples/good.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`DEMO_SIGNING_SECRET` is not set"));
}

/// `install salesforce` reads the connector file from `--connectors`: a Salesforce one's field
/// names and picklist values go into the metadata; a Zendesk connector, a name without a file
/// and a bad id are refused.
#[test]
fn install_salesforce_names_the_connector_fields_and_refuses_other_connectors() {
    let connectors = tempfile::tempdir().unwrap();
    let example = |name: &str| {
        std::fs::read_to_string(repo().join(format!("connectors/examples/{name}.toml"))).unwrap()
    };
    let sf = example("salesforce")
        .replace(
            "verdict = \"Escalation_Quality__c\"",
            "verdict = \"Partner_Verdict__c\"",
        )
        .replace("review = \"Review\"", "review = \"Needs_Look\"");
    assert!(sf.contains("Partner_Verdict__c") && sf.contains("Needs_Look"));
    std::fs::write(connectors.path().join("acme-sf.toml"), sf).unwrap();
    std::fs::write(connectors.path().join("acme-zd.toml"), example("zendesk")).unwrap();
    let install = |connector: &str, extra: &[&std::ffi::OsStr]| {
        bin()
            .args(["install", "salesforce", "--connector", connector])
            .args(["--url", "https://gate.example.org", "--connectors"])
            .arg(connectors.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out_dir = tempfile::tempdir().unwrap();
    let out = install(
        "acme-sf",
        &[
            "--survey".as_ref(),
            "--out".as_ref(),
            out_dir.path().as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("sf project deploy start --manifest"),
        "{stdout}"
    );
    for file in [
        "package.xml",
        "objects/Case/fields/Partner_Verdict__c.field-meta.xml",
        "objects/Case/fields/Blind_Survey_Status__c.field-meta.xml",
        "permissionsets/Escalation_Gate.permissionset-meta.xml",
        "flows/Escalation_Gate_acme_sf_Survey.flow-meta.xml",
    ] {
        assert!(out_dir.path().join(file).is_file(), "{file} written");
        assert!(stdout.contains(file), "{file} reported");
    }
    let verdict = std::fs::read_to_string(
        out_dir
            .path()
            .join("objects/Case/fields/Partner_Verdict__c.field-meta.xml"),
    )
    .unwrap();
    assert!(verdict.contains("<fullName>Needs_Look</fullName>"));
    assert!(
        !out_dir
            .path()
            .join("objects/Case/fields/Escalation_Quality__c.field-meta.xml")
            .exists()
    );

    let stderr = |out: std::process::Output| {
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let zendesk = stderr(install("acme-zd", &[]));
    assert!(
        zendesk.contains("helpdesk.type: is `zendesk`: `install salesforce` sets up Salesforce connectors (for this one: `install zendesk`)"),
        "{zendesk}"
    );
    let missing = stderr(install("acme-nowhere", &[]));
    assert!(missing.contains("no connector `acme-nowhere`"), "{missing}");
    let bad = stderr(install("acme sf", &[]));
    assert!(bad.contains("is not a connector id"), "{bad}");
}

#[test]
fn check_logs_to_stderr_as_rust_log_says() {
    let run = |rust_log: Option<&str>| {
        let mut cmd = bin();
        cmd.args(["check", "--connector", "demo"])
            .arg("connectors/demo/samples/good.json")
            .env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout).expect("stdout is only the JSON");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(run(None), "", "warnings and errors only by default");
    let logs = run(Some("tantivy=info"));
    assert!(logs.contains(" INFO tantivy"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes off a terminal: {logs}"
    );
}

#[test]
fn serve_refuses_to_start_the_demo_with_an_empty_or_short_secret() {
    for secret in ["", "change-me"] {
        let mut child = bin()
            .env("DEMO_SIGNING_SECRET", secret)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that started would never exit on its own: give up waiting after a minute.
        let mut waited = 0;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if waited == 600 {
                child.kill().unwrap();
                panic!("serve started with DEMO_SIGNING_SECRET={secret:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            waited += 1;
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!status.success(), "{secret:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "demo.toml: helpdesk.signing_secrets[0]: is {} characters long; a shared secret needs at least 32",
                secret.len()
            )),
            "{secret:?}: {stderr}"
        );
    }
}
