//! `install` and `uninstall`: the admin commands that set a helpdesk up for a connector, one
//! subcommand for each helpdesk that has them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::args::{ConnectorsDir, env, print_errors, runtime};
use crate::config::{self, ConnectorId};

#[derive(Subcommand)]
pub enum InstallTarget {
    /// Salesforce metadata: the custom Case fields (named as the connector's
    /// `[helpdesk.verdict_fields]` and `[helpdesk.survey_fields]` say), permission sets for the
    /// integration user, the reviewers and the partners, the outbound message and the flow that
    /// sends it when a Case is escalated, the remote site, the Lightning components for the Case
    /// page and the Experience Cloud case form with the Apex class and the Named Credential they
    /// call the check before escalating through, and a package.xml (deploy with `sf project
    /// deploy start --manifest package.xml`).
    Salesforce {
        /// The connector (its file name without .toml).
        #[arg(long)]
        connector: ConnectorId,
        /// Where escalation-gate is reachable from Salesforce.
        #[arg(long, default_value = "https://escalation-gate.example.com")]
        url: String,
        /// Also the blind survey: its Case fields, a `solved` outbound message and a flow that
        /// sends it a day after a Case is closed.
        #[arg(long)]
        survey: bool,
        /// Write the files into this folder instead of printing them.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        dir: ConnectorsDir,
    },
    /// Through the Zendesk API, with the connector's credentials (an admin's): the webhook
    /// (its signing secret is printed once), the escalation trigger, the blind survey's
    /// automation, re-arm trigger and opt-out user field (with `[survey]`), the reviewer macros
    /// and, with `--app`, the sidebar app. Run it again after changing the connector: it updates
    /// what differs and says when nothing does.
    Zendesk {
        /// The connector (its file name without .toml).
        #[arg(long)]
        connector: ConnectorId,
        /// Where Zendesk reaches escalation-gate (https); the webhook calls URL/hooks/CONNECTOR.
        #[arg(long)]
        url: String,
        /// Read what is there and print every write it would send; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also install the connector's sidebar app through the Zendesk Apps API: the zip
        /// `install zendesk-app` writes is uploaded as a private app (or rebuilds the one made
        /// before, found by its name, when the package changed) and installed with URL as its
        /// service URL and the first of the connector's `[precheck] secrets` as its secure
        /// precheck secret (never printed). Needs `[precheck] secrets` and a plan with private
        /// apps (Suite Growth, Support Professional or above).
        #[arg(long)]
        app: bool,
        /// With --app: send the precheck secret to the app's installation even when nothing
        /// else changed, after the connector's first `[precheck]` secret was rotated (Zendesk
        /// never shows a secure setting, so install cannot tell that it differs).
        #[arg(long, requires = "app")]
        resend_secret: bool,
        #[command(flatten)]
        dir: ConnectorsDir,
    },
    /// The connector's Zendesk app for the ticket sidebar, as the zip an admin uploads (Admin
    /// Center › Apps and integrations › Zendesk Support apps › Upload private app): for an
    /// escalation being prepared, the check before escalating (`[precheck]`); for a judged one,
    /// the verdict and the reviewer's decisions as the reviewer macros record them. At install,
    /// Zendesk asks for the service URL and a precheck secret (kept as a secure setting).
    ZendeskApp {
        #[command(flatten)]
        app: AppZip,
        /// Also write the snippet for the Guide theme's request page (`new_request_page.hbs`)
        /// that runs the check as a partner fills in the Help Center's request form, and records
        /// what it said in the form's `[helpdesk] precheck_field`.
        #[arg(long)]
        guide_snippet: Option<PathBuf>,
    },
    /// The connector's Freshdesk app for the ticket sidebar, as the zip an admin uploads (Admin
    /// › Apps › Manage apps › Custom apps): on a judged ticket the verdict and its reasons; on
    /// one being prepared, the check before escalating (`[precheck]`). At install, Freshdesk asks
    /// for a precheck secret (kept as a secure installation parameter).
    FreshdeskApp(AppZip),
}

/// What `install zendesk-app` and `install freshdesk-app` take: the connector, the address its
/// app calls, and where the app's zip goes.
#[derive(clap::Args)]
pub struct AppZip {
    /// The connector (its file name without .toml).
    #[arg(long)]
    connector: ConnectorId,
    /// Where the app reaches escalation-gate (https); the only host its requests may go to.
    #[arg(long)]
    url: String,
    /// The zip to write.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    dir: ConnectorsDir,
}

#[derive(Subcommand)]
pub enum UninstallTarget {
    /// Delete what `install zendesk` created for the connector (found by its names and the
    /// marker in its description), the sidebar app of `--app` included; resources made by
    /// hand are left alone.
    Zendesk {
        /// The connector (its file name without .toml).
        #[arg(long)]
        connector: ConnectorId,
        /// Print every request it would send; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also delete the survey's opt-out user field, and with it every person's opt-out.
        #[arg(long)]
        delete_opt_out_field: bool,
        #[command(flatten)]
        dir: ConnectorsDir,
    },
}

/// Runs `install <helpdesk>`.
pub fn install(target: InstallTarget) -> anyhow::Result<ExitCode> {
    match target {
        InstallTarget::Salesforce {
            connector,
            url,
            survey,
            out,
            dir,
        } => salesforce(&dir.connectors, &connector, &url, survey, out.as_deref()),
        InstallTarget::Zendesk {
            connector,
            url,
            dry_run,
            app,
            resend_secret,
            dir,
        } => zendesk(
            &dir.connectors,
            &connector,
            Some(&url),
            dry_run,
            Extra {
                app,
                resend_secret,
                delete_opt_out_field: false,
            },
        ),
        InstallTarget::ZendeskApp { app, guide_snippet } => {
            zendesk_app(&app, guide_snippet.as_deref())
        }
        InstallTarget::FreshdeskApp(app) => freshdesk_app(&app),
    }
}

/// Writes the connector's Freshdesk app as a zip.
fn freshdesk_app(app: &AppZip) -> anyhow::Result<ExitCode> {
    use crate::helpdesk::registry::ValidHelpdesk;
    let name = &app.connector;
    let (url, valid) = app_target(app)?;
    let ValidHelpdesk::Freshdesk(freshdesk) = &valid.helpdesk else {
        anyhow::bail!("connector `{name}` is not a Freshdesk connector ([helpdesk] type)");
    };
    let files = crate::helpdesk::freshdesk::app::files(name.as_str(), &url, freshdesk);
    write_app(
        &app.out,
        &files,
        "Admin > Apps > Manage apps > Custom apps; give it one of the connector's [precheck] secrets",
    )
}

/// The https URL an app calls, and the connector it is for.
fn app_target(app: &AppZip) -> anyhow::Result<(reqwest::Url, config::ValidConnector)> {
    let (name, url) = (&app.connector, &app.url);
    let url = reqwest::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "https" && u.host_str().is_some())
        .with_context(|| {
            format!("--url `{url}`: expected an https URL such as https://gate.example.com")
        })?;
    let (path, _) = connector_file(&app.dir.connectors, name)?;
    let valid = config::load_file(&path, &env).map_err(|errors| {
        print_errors(&errors);
        anyhow::anyhow!("connector `{name}` is not valid")
    })?;
    if valid.precheck.is_none() {
        eprintln!(
            "warning: connector `{name}` has no [precheck] table: the app shows verdicts, but its check before escalating is answered 404 until the connector has one (see docs/src/precheck.md)"
        );
    }
    Ok((url, valid))
}

/// Writes an app's zip and says where to upload it.
fn write_app(out: &Path, files: &[(String, Vec<u8>)], upload: &str) -> anyhow::Result<ExitCode> {
    let zip = crate::helpdesk::sidebar::zip(files).context("packing the app")?;
    std::fs::write(out, zip).with_context(|| format!("{}: cannot write the app", out.display()))?;
    println!(
        "Wrote {} ({} files). Upload it in {upload}.",
        out.display(),
        files.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the connector's Zendesk app as a zip.
fn zendesk_app(app: &AppZip, guide_snippet: Option<&Path>) -> anyhow::Result<ExitCode> {
    use crate::helpdesk::registry::ValidHelpdesk;
    let name = &app.connector;
    let (url, valid) = app_target(app)?;
    let ValidHelpdesk::Zendesk(zendesk) = &valid.helpdesk else {
        anyhow::bail!("connector `{name}` is not a Zendesk connector ([helpdesk] type)");
    };
    let files = crate::helpdesk::zendesk::app::package(name.as_str(), &url, zendesk).files;
    write_app(
        &app.out,
        &files,
        "Admin Center > Apps and integrations > Zendesk Support apps > Upload private app; give it the service URL and one of the connector's [precheck] secrets",
    )?;
    if let Some(path) = guide_snippet {
        std::fs::write(
            path,
            crate::helpdesk::zendesk::app::guide_snippet(name.as_str(), &url, zendesk),
        )
        .with_context(|| format!("{}: cannot write the Guide snippet", path.display()))?;
        println!(
            "Wrote {}: paste it into the Guide theme's new_request_page.hbs after {{{{request_form}}}}, and add the Help Center's address to the connector's [precheck] allowed_origins.",
            path.display()
        );
        match zendesk.precheck_field {
            Some(id) => println!(
                "Add the text field {id} ([helpdesk] precheck_field) to the request form, editable by end users: the snippet hides it and fills it with what the check said."
            ),
            None => eprintln!(
                "warning: connector `{name}` has no [helpdesk] precheck_field: the snippet checks the form, but the tickets it creates do not record what the check said (see docs/src/helpdesks/zendesk.md)"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `uninstall <helpdesk>`.
pub fn uninstall(target: UninstallTarget) -> anyhow::Result<ExitCode> {
    match target {
        UninstallTarget::Zendesk {
            connector,
            dry_run,
            delete_opt_out_field,
            dir,
        } => zendesk(
            &dir.connectors,
            &connector,
            None,
            dry_run,
            Extra {
                app: false,
                resend_secret: false,
                delete_opt_out_field,
            },
        ),
    }
}

/// A connector file's path and text.
fn connector_file(dir: &Path, name: &ConnectorId) -> anyhow::Result<(PathBuf, String)> {
    let path = dir.join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no connector `{name}`: cannot read {}", path.display()))?;
    Ok((path, text))
}

/// The Salesforce metadata for one Salesforce connector of `dir`, as (path, content) pairs of
/// a Metadata API source folder.
fn salesforce(
    dir: &Path,
    connector: &ConnectorId,
    url: &str,
    survey: bool,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let (path, text) = connector_file(dir, connector)?;
    let names = crate::helpdesk::salesforce::config::install_names(&text).map_err(|problems| {
        anyhow::anyhow!(
            "connector `{connector}` ({}): {}",
            path.display(),
            crate::checks::Problem::joined(&problems)
        )
    })?;
    let files = crate::helpdesk::salesforce::install::metadata(connector, url, survey, &names);
    match out {
        Some(dir) => {
            for (path, content) in &files {
                let full = dir.join(path);
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&full, content)
                    .with_context(|| format!("writing {}", full.display()))?;
                println!("wrote {}", full.display());
            }
            println!(
                "Replace REPLACE_WITH_SF_ENDPOINT_TOKEN and REPLACE_WITH_INTEGRATION_USERNAME, then deploy: \
                 sf project deploy start --manifest {}\n\
                 and assign the permission set to the integration user: \
                 sf org assign permset --name Escalation_Gate --on-behalf-of <integration username>\n\
                 For the Lightning components: in Setup > Named Credentials > External Credentials > Escalation_Gate > \
                 Principals > Precheck, add the authentication parameter `secret` with one of the connector's \
                 [precheck] secrets; assign Escalation_Gate_Reviewer to reviewers and Escalation_Gate_User to \
                 the partners' Experience Cloud users (docs/src/helpdesks/salesforce.md).",
                dir.join("package.xml").display()
            );
        }
        None => {
            for (path, content) in &files {
                println!("==> {path} <==\n{content}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `install zendesk` or `uninstall zendesk` does besides the admin resources.
struct Extra {
    /// Install the sidebar app (`install zendesk --app`).
    app: bool,
    /// Send the app installation's precheck secret even when nothing else changed
    /// (`--resend-secret`).
    resend_secret: bool,
    /// Delete the survey's opt-out user field (`uninstall zendesk --delete-opt-out-field`).
    delete_opt_out_field: bool,
}

/// The sidebar app `install zendesk --app` installs for `valid` at `url`: refused, before any
/// call, for a connector with no `[precheck]` secret.
fn sidebar_app(
    valid: &config::ValidConnector,
    url: &str,
    resend_secret: bool,
) -> anyhow::Result<crate::helpdesk::zendesk::install::app::AppSetup> {
    use crate::helpdesk::registry::ValidHelpdesk;
    let name = &valid.id;
    let ValidHelpdesk::Zendesk(zendesk) = &valid.helpdesk else {
        anyhow::bail!("connector `{name}` is not a Zendesk connector ([helpdesk] type)");
    };
    let Some(secret) = valid
        .precheck
        .as_ref()
        .and_then(|p| p.secrets.first())
        .cloned()
    else {
        anyhow::bail!(
            "connector `{name}` has no [precheck] secret (or its [precheck] is turned off): --app \
             installs the sidebar app with the first of the connector's [precheck] secrets as \
             its secure setting. Add \
             `[precheck]` with `secrets = [\"${{PRECHECK_SECRET}}\"]` (see docs/src/precheck.md), \
             or leave out --app; nothing was sent to Zendesk."
        );
    };
    crate::helpdesk::zendesk::install::endpoint(url, name.as_str()).map_err(anyhow::Error::msg)?;
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url `{url}`"))?;
    let package = crate::helpdesk::zendesk::app::package(name.as_str(), &parsed, zendesk);
    Ok(crate::helpdesk::zendesk::install::app::AppSetup {
        name: crate::helpdesk::zendesk::app::name(name.as_str()),
        version: package.version,
        zip: crate::helpdesk::sidebar::zip(&package.files).context("packing the app")?,
        service_url: parsed.to_string(),
        secret,
        resend_secret,
    })
}

/// `install zendesk` (with `url`) or `uninstall zendesk` (without): what was done is printed as
/// it stands when an error stops the run.
fn zendesk(
    dir: &Path,
    name: &ConnectorId,
    url: Option<&str>,
    dry_run: bool,
    extra: Extra,
) -> anyhow::Result<ExitCode> {
    use crate::helpdesk::zendesk::install::{
        Installer, SigningSecret, Target, UNSET_SECRET, signing_secret_vars,
    };
    use secrecy::ExposeSecret;
    let Extra {
        app,
        resend_secret,
        delete_opt_out_field,
    } = extra;
    let (path, text) = connector_file(dir, name)?;
    let secret_vars = signing_secret_vars(&text);
    // The signing secret's variable may be unset: install is what prints the secret.
    let lookup = |var: &str| {
        env(var).or_else(|| {
            secret_vars
                .iter()
                .any(|v| v == var)
                .then(|| UNSET_SECRET.to_string())
        })
    };
    let valid = config::load_file(&path, &lookup).map_err(|errors| {
        print_errors(&errors);
        anyhow::anyhow!("connector `{name}` is not valid")
    })?;
    let app = match url {
        Some(u) if app => Some(sidebar_app(&valid, u, resend_secret)?),
        _ => None,
    };
    let target = Target::from_connector(
        valid.id.to_string(),
        valid.helpdesk,
        valid.sweep.and_then(|s| s.query),
        valid.survey.map(|s| s.fields),
    )
    .map_err(anyhow::Error::msg)?;
    let setup = url
        .map(|u| target.setup(u))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut out = String::new();
    let (result, app_result) = runtime()?.block_on(async {
        let mut installer = Installer::new(&target.api, name, dry_run, &mut out);
        let mut result = match &setup {
            Some(setup) => installer.install(setup, &target.known_secrets).await,
            None => {
                let field = target.opt_out_field().filter(|_| delete_opt_out_field);
                installer
                    .uninstall(
                        &crate::helpdesk::zendesk::app::name(name.as_str()),
                        field.as_deref(),
                    )
                    .await
                    .map(|s| (s, SigningSecret::DryRun))
            }
        };
        // The app goes last: an error there still lets the webhook's signing secret be shown.
        let app_result = match (&mut result, &app) {
            (Ok((summary, _)), Some(app)) => installer.install_app(app, summary).await,
            _ => Ok(()),
        };
        (result, app_result)
    });
    println!("Zendesk {}, connector `{name}`", target.base_url);
    print!("{out}");
    let (summary, secret) = result?;
    let changes = summary.created + summary.updated + summary.deleted;
    if dry_run {
        println!(
            "Dry run: only reads were sent. It would create {}, update {} and delete {}; {} unchanged.",
            summary.created, summary.updated, summary.deleted, summary.unchanged
        );
    } else if changes == 0 {
        println!(
            "Nothing to change: {} as configured.",
            if setup.is_some() {
                "everything is installed"
            } else {
                "nothing of escalation-gate's is installed"
            }
        );
    } else {
        println!(
            "Done: {} created, {} updated, {} deleted, {} unchanged.",
            summary.created, summary.updated, summary.deleted, summary.unchanged
        );
    }
    let var = secret_vars
        .first()
        .map_or("ZENDESK_WEBHOOK_SECRET", String::as_str);
    let store = |s: &secrecy::SecretString| {
        format!(
            "store it as {var} (what [helpdesk] signing_secrets references) and restart \
             escalation-gate, e.g. on Fly.io:\n  fly secrets set {var}={}",
            s.expose_secret()
        )
    };
    match secret {
        SigningSecret::Created(s) => println!(
            "The webhook's signing secret, shown this once and written nowhere: {}",
            store(&s)
        ),
        SigningSecret::Differs(s) => println!(
            "The connector's signing secrets, as set here, do not include the webhook's: {}",
            store(&s)
        ),
        SigningSecret::Held => {
            println!("The connector already holds the webhook's signing secret.");
        }
        SigningSecret::NotSet => println!(
            "{var} is not set here, so the webhook's signing secret was neither checked nor shown \
             again (it was shown when the webhook was created; Admin Center > Apps and \
             integrations > Webhooks > `{}` > Reveal secret shows it). Set {var} to have install \
             check it.",
            crate::helpdesk::zendesk::install::webhook_name(name)
        ),
        SigningSecret::DryRun => {}
    }
    if url.is_none() && !delete_opt_out_field && target.opt_out_field().is_some() {
        println!(
            "The survey's opt-out user field was kept (it holds people's opt-outs); \
             --delete-opt-out-field deletes it."
        );
    }
    app_result?;
    Ok(ExitCode::SUCCESS)
}
