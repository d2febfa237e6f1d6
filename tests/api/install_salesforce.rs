//! `install salesforce` writes the Apex class and the Lightning components as this repository
//! keeps them (src/helpdesk/salesforce/apex and lwc), with the connector's values filled in, the
//! Named Credential they call through, and the permission sets that let people run them; the
//! precheck secret is in none of its files.

use std::path::{Path, PathBuf};

use escalation_gate::helpdesk::salesforce::config::DEFAULT_API_VERSION;

use crate::cli::{bin, repo};
use crate::fakes::salesforce::{CLIENT_CREDENTIALS, connector_toml};

const SECRET: &str = "precheck-secret-3f9a7c1e5d2b8064";

/// Every file under `dir`, relative to it.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(
                walk(&path)
                    .into_iter()
                    .map(|p| Path::new(path.file_name().unwrap()).join(p)),
            );
        } else {
            files.push(PathBuf::from(path.file_name().unwrap()));
        }
    }
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `install salesforce --out` for the test connector `acme-sf` with `extra` at the end of
/// its file; the folder written and what the command printed.
fn install(extra: &str) -> (tempfile::TempDir, String) {
    let connectors = tempfile::tempdir().unwrap();
    std::fs::write(
        connectors.path().join("acme-sf.toml"),
        connector_toml(
            "https://acme.my.salesforce.com",
            CLIENT_CREDENTIALS,
            "",
            &format!("\n[precheck]\nsecrets = [\"{SECRET}\"]\n{extra}"),
        ),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = bin()
        .args(["install", "salesforce", "--connector", "acme-sf"])
        .args(["--url", "https://gate.example.org", "--connectors"])
        .arg(connectors.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    (out, String::from_utf8(run.stdout).unwrap())
}

#[test]
fn a_connector_whose_partner_is_a_field_adds_no_account_to_the_draft() {
    let (out, _) = install("\n[helpdesk.partner]\nfrom = \"field\"\nfield = \"partner\"\n");
    assert!(
        read(&out.path().join("classes/EscalationGate.cls"))
            .contains("PARTNER_FROM_ACCOUNT = false;")
    );
}

#[test]
fn install_salesforce_writes_the_components_as_the_repo_keeps_them_and_no_secret() {
    let (out, stdout) = install("");
    assert!(stdout.contains("Escalation_Gate_User"), "{stdout}");
    assert!(stdout.contains("Principals"), "{stdout}");

    // The sources, placeholders filled.
    let fill = |text: String| {
        text.replace("__EG_CONNECTOR__", "acme-sf")
            .replace("__EG_API_VERSION__", DEFAULT_API_VERSION)
            .replace("__EG_PARTNER_FROM_ACCOUNT__", "true")
    };
    let sources = repo().join("src/helpdesk/salesforce");
    let mut compared = 0;
    for (from, to) in [("apex", "classes"), ("lwc", "lwc")] {
        for file in walk(&sources.join(from)) {
            let written = out.path().join(to).join(&file);
            assert_eq!(
                read(&written),
                fill(read(&sources.join(from).join(&file))),
                "{}",
                file.display()
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 15);
    assert!(
        read(&out.path().join("classes/EscalationGate.cls"))
            .contains("'callout:Escalation_Gate/precheck/acme-sf'")
    );
    // The config module is the one the components' Jest tests run with.
    assert_eq!(
        read(
            &out.path()
                .join("lwc/escalationGateConfig/escalationGateConfig.js")
        ),
        read(&repo().join("tests/lwc/escalationGateConfig.js"))
    );

    let package = read(&out.path().join("package.xml"));
    for kind in [
        "ApexClass",
        "LightningComponentBundle",
        "NamedCredential",
        "ExternalCredential",
    ] {
        assert!(
            package.contains(&format!("</members><name>{kind}</name>")),
            "{kind}"
        );
    }
    for member in [
        "escalationGateVerdict",
        "escalationGatePrecheck",
        "EscalationGate",
        "EscalationGateTest",
        "Escalation_Gate_User",
        "Case.Escalation_Precheck__c",
    ] {
        assert!(
            package.contains(&format!("<members>{member}</members>")),
            "{member}"
        );
    }
    assert!(
        read(
            &out.path()
                .join("namedCredentials/Escalation_Gate.namedCredential-meta.xml")
        )
        .contains("<parameterValue>https://gate.example.org</parameterValue>")
    );
    for set in ["Escalation_Gate_Reviewer", "Escalation_Gate_User"] {
        let xml = read(
            &out.path()
                .join(format!("permissionsets/{set}.permissionset-meta.xml")),
        );
        assert!(
            xml.contains("<classAccesses><apexClass>EscalationGate</apexClass><enabled>true</enabled></classAccesses>"),
            "{set}"
        );
        assert!(
            xml.contains("<externalCredentialPrincipal>Escalation_Gate-Precheck</externalCredentialPrincipal>"),
            "{set}"
        );
    }

    for file in walk(out.path()) {
        let text = read(&out.path().join(&file));
        assert!(
            !text.contains(SECRET),
            "{} holds the secret",
            file.display()
        );
        assert!(
            !text.contains("__EG_"),
            "{} keeps a placeholder",
            file.display()
        );
    }
}
