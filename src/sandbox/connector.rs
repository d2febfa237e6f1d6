//! The sandbox's connector folder: `sandbox.toml`, a Zendesk connector pointing at the sample
//! account (the Help Center as knowledge base, the blind survey by e-mail to the mail catcher,
//! contract terms, a sweep), and `sandbox.env`, the secrets it references. Files the sandbox did
//! not write are never overwritten.

use std::path::{Path, PathBuf};

use crate::survey::config::DEFAULT_OPT_OUT_FIELD;

/// The connector's id (its file name).
pub const CONNECTOR: &str = "sandbox";

/// The first line of every file the sandbox writes: what it may overwrite.
pub const MARKER: &str = "# Written by `escalation-gate sandbox`";

/// The sample account's ticket fields (custom field id, the name the connector maps it to).
pub const FIELDS: [(u64, &str); 11] = [
    (360_100_000_001, "steps_to_reproduce"),
    (360_100_000_002, "environment"),
    (360_100_000_003, "severity"),
    (360_100_000_004, "product"),
    (360_100_000_005, "version"),
    (360_100_000_006, "tried_articles"),
    (360_100_000_007, "end_customer_email"),
    (360_100_000_008, "csat_score"),
    (360_100_000_009, "ces_score"),
    (360_100_000_010, "csat_about"),
    (360_100_000_011, "csat_comment"),
];

/// The custom field id the connector maps to `name`.
pub fn field_id(name: &str) -> u64 {
    FIELDS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(id, _)| *id)
        .unwrap_or_default()
}

/// The tag that marks an escalation (the trigger's condition and the sweep's search).
pub const ESCALATED_TAG: &str = "partner_escalated";

/// The variables `sandbox.toml` references, in `sandbox.env`.
pub const TOKEN_VAR: &str = "SANDBOX_ZENDESK_TOKEN";
pub const WEBHOOK_SECRET_VAR: &str = "SANDBOX_WEBHOOK_SECRET";
pub const LINK_SECRET_VAR: &str = "SANDBOX_SURVEY_LINK_SECRET";

/// Where the connector's counterparts are.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// The fake Zendesk, `http://127.0.0.1:PORT`.
    pub zendesk: String,
    /// The agent whose API token the connector uses.
    pub agent_email: String,
    pub smtp_port: u16,
    /// Where `serve` listens, as customers' survey links and the webhook reach it.
    pub serve_url: String,
}

/// The connector's secrets: the values of `sandbox.env`.
#[derive(Debug, Clone, PartialEq)]
pub struct Secrets {
    pub token: String,
    pub webhook_secret: String,
    pub link_secret: String,
}

impl Secrets {
    /// New random secrets for the webhook and the links (the token is the sample account's,
    /// set when it starts).
    pub fn generate() -> Secrets {
        let random = || {
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        };
        Secrets {
            token: String::new(),
            webhook_secret: random(),
            link_secret: random(),
        }
    }

    /// A variable's value, as the connector file's `${VAR}` reads it.
    pub fn var(&self, name: &str) -> Option<String> {
        match name {
            TOKEN_VAR => Some(self.token.clone()),
            WEBHOOK_SECRET_VAR => Some(self.webhook_secret.clone()),
            LINK_SECRET_VAR => Some(self.link_secret.clone()),
            _ => None,
        }
    }

    /// `sandbox.env`: one `export` line each.
    pub fn env_file(&self) -> String {
        format!(
            "{MARKER}: the secrets sandbox.toml references. Load them in each terminal where you\n\
             # try a command: . sandbox.env (from its folder, or give its path).\n\
             export {TOKEN_VAR}={}\nexport {WEBHOOK_SECRET_VAR}={}\nexport {LINK_SECRET_VAR}={}\n",
            self.token, self.webhook_secret, self.link_secret
        )
    }

    /// The secrets an earlier `sandbox.env` holds (so a running `serve` keeps working when the
    /// sandbox starts again); `None` when a value is missing.
    pub fn from_env_file(text: &str) -> Option<Secrets> {
        let value = |name: &str| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("export "))
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Some(Secrets {
            token: value(TOKEN_VAR)?,
            webhook_secret: value(WEBHOOK_SECRET_VAR)?,
            link_secret: value(LINK_SECRET_VAR)?,
        })
    }
}

/// `sandbox.toml`.
pub fn connector_toml(a: &Addresses) -> String {
    let fields: String = FIELDS
        .iter()
        .map(|(id, name)| format!("{id} = \"{name}\"\n"))
        .collect();
    let partners: Vec<String> = super::catalog::PARTNERS
        .iter()
        .map(|p| format!("\"{}\"", p.name))
        .collect();
    let domains: String = super::catalog::PARTNERS
        .iter()
        .map(|p| format!("\"{}\" = [\"{}\"]\n", p.name, p.domain))
        .collect();
    let orgs: Vec<String> = super::catalog::PARTNERS
        .iter()
        .map(|p| {
            format!(
                "{{ field = \"organization_id\", operator = \"is\", value = \"{}\" }}",
                p.org_id
            )
        })
        .collect();
    format!(
        r#"{MARKER} for its sample Zendesk account; it writes this file again
# at every start (see the README's "Try it without an account: the sandbox"). The secrets are in
# sandbox.env.

[helpdesk]
type = "zendesk"
base_url = "{zendesk}"
signing_secrets = ["${{{WEBHOOK_SECRET_VAR}}}"]
product_field = "product"
version_field = "version"
tried_articles_field = "tried_articles"

[helpdesk.auth]
kind = "api_token"
email = "{agent}"
token = "${{{TOKEN_VAR}}}"

[helpdesk.fields]
{fields}
# The escalation trigger: the tag partners' agents add when they hand a case over.
[helpdesk.install.trigger]
all = [{{ field = "current_tags", operator = "includes", value = "{ESCALATED_TAG}" }}]

# The survey automation: every solved case of a partner, escalated or not.
[helpdesk.install.survey]
any = [
  {orgs},
]

[[handoff.rules]]
field = "steps_to_reproduce"
rule = "min_length"
min = 40

[[handoff.rules]]
field = "environment"
rule = "present"

[[handoff.rules]]
field = "severity"
rule = "one_of"
values = ["low", "normal", "high", "urgent"]

[[handoff.rules]]
field = "version"
rule = "regex"
pattern = '^\d+\.\d+(\.\d+)?$'

[knowledge_base]
backend = "helpdesk"
default_locale = "en-us"

[verdict]
late_after_hours = 48

[sweep]
every_minutes = 15
lookback_hours = 24
query = "tags:{ESCALATED_TAG}"

[survey]
public_url = "{serve}"
link_secrets = ["${{{LINK_SECRET_VAR}}}"]
company = "Ledgerly"
cases = ["escalated", "not_escalated"]
throttle_days = 30
end_customer_field = "end_customer_email"
opt_out_field = "{DEFAULT_OPT_OUT_FIELD}"

[survey.partner_domains]
{domains}
# The mail catcher of the sandbox: plain SMTP on loopback.
[survey.delivery]
kind = "email"
from = "Ledgerly Support <survey@ledgerly.example>"
smtp_host = "127.0.0.1"
smtp_port = {smtp}
tls = "none"

[survey.sink]
kind = "ticket"
csat_field = "csat_score"
ces_field = "ces_score"
about_field = "csat_about"
comment_field = "csat_comment"

[metrics]
partners = [{partners}]

[report]
target = 0.80
min_escalations = 10
min_answers = 10

[[report.tiers]]
name = "Gold"
label = "discount +5 %"
min_good_ratio = 0.90
min_support_csat = 4.3

[[report.tiers]]
name = "Silver"
label = "discount +2 %"
min_good_ratio = 0.75

[report.partners."Contoso Partners"]
target = 0.70
"#,
        zendesk = a.zendesk,
        agent = a.agent_email,
        serve = a.serve_url,
        smtp = a.smtp_port,
        orgs = orgs.join(",\n  "),
        partners = partners.join(", "),
    )
}

/// A file of the connector folder and its new text.
pub struct Planned {
    pub path: PathBuf,
    pub text: String,
}

/// Checks the folder before anything is written: every file to write is absent or was written
/// by the sandbox, and no other connector file is there (`serve --connectors DIR` would load it
/// too). The error says what to do.
pub fn check_folder(dir: &Path, planned: &[Planned]) -> Result<(), String> {
    for p in planned {
        match std::fs::read_to_string(&p.path) {
            Ok(text) if !text.starts_with(MARKER) => {
                return Err(format!(
                    "{} exists and was not written by `escalation-gate sandbox`: give another \
                     folder with --dir, or move the file",
                    p.path.display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", p.path.display())),
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut others: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|path| path.extension().is_some_and(|x| x == "toml"))
        .filter(|path| !planned.iter().any(|p| &p.path == path))
        .map(|path| path.display().to_string())
        .collect();
    others.sort();
    if others.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} holds other connector files ({}) that `serve --connectors {}` would load as well: \
             give an empty folder with --dir",
            dir.display(),
            others.join(", "),
            dir.display()
        ))
    }
}

/// Writes the planned files (creating the folder), after [`check_folder`].
pub fn write_folder(dir: &Path, planned: &[Planned]) -> Result<(), String> {
    check_folder(dir, planned)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for p in planned {
        std::fs::write(&p.path, &p.text)
            .map_err(|e| format!("cannot write {}: {e}", p.path.display()))?;
    }
    Ok(())
}
