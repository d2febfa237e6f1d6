//! `install zendesk --app`: the connector's sidebar app, installed through the Zendesk Apps API.
//!
//! The package (what `install zendesk-app` writes) is uploaded (`POST /api/v2/apps/uploads`)
//! and built into a private app (`POST /api/v2/apps`), or into the one made before
//! (`PUT /api/v2/apps/{id}`), found among the account's own apps (`GET /api/v2/apps/owned`) by
//! its name; the build is an asynchronous job, read until it completes or fails. The app is
//! rebuilt only when the `version` Zendesk lists for it differs from the package's (the
//! manifest's version carries a fingerprint of the files). Then it is installed
//! (`POST /api/v2/apps/installations`) with the service URL and the precheck secret as its
//! settings, or the installation is updated when its name or service URL differ; Zendesk never
//! shows a secure setting, so an installation whose other settings match keeps its secret
//! unless `--resend-secret` sends it again.
//! `uninstall zendesk` removes the app's installations
//! (`DELETE /api/v2/apps/installations/{id}`), then the app (`DELETE /api/v2/apps/{id}`).

use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{Found, InstallError, Installer, Kind, Summary, id_of};

/// How often the build job is read, and for how long at most.
const POLL_EVERY: Duration = Duration::from_secs(1);
const POLL_FOR: Duration = Duration::from_secs(120);

const SHORT_DESCRIPTION: &str = "escalation-gate in the ticket sidebar: the check before escalating, the verdict and its review.";

/// Stands in for the app or upload id a dry run does not get.
const DRY_RUN_ID: &str = "<new id>";

/// The sidebar app as it should be.
pub struct AppSetup {
    /// The app's name (the manifest's), which it is found by.
    pub name: String,
    /// The manifest's version, with the package's fingerprint.
    pub version: String,
    /// The package, as `install zendesk-app` writes it.
    pub zip: Vec<u8>,
    /// The `service_url` setting.
    pub service_url: String,
    /// The secure `precheck_secret` setting.
    pub secret: SecretString,
    /// Send the settings, the secret with them, even when the shown ones match (after the
    /// secret was rotated).
    pub resend_secret: bool,
}

impl Installer<'_> {
    /// Creates or updates the sidebar app, then installs it or updates its installation; what
    /// it does is counted in `summary`.
    pub async fn install_app(
        &mut self,
        app: &AppSetup,
        summary: &mut Summary,
    ) -> Result<(), InstallError> {
        let named = self.owned_apps(&app.name).await?;
        if named.len() > 1 {
            let ids: Vec<&str> = named.iter().map(|a| a.id.as_str()).collect();
            return Err(InstallError::Conflict(format!(
                "{} private apps are named `{}` ({}): keep one (Admin Center > Apps and \
                 integrations > Zendesk Support apps > Private apps), then run install again",
                named.len(),
                app.name,
                ids.join(", ")
            )));
        }
        let app_id = match named.first() {
            Some(found) if found.record["version"] == app.version.as_str() => {
                let id = found.id.clone();
                summary.unchanged += 1;
                self.report("unchanged", Kind::App, &app.name, &id, "");
                id
            }
            Some(found) => {
                let id = found.id.clone();
                let upload_id = self.upload(app).await?;
                let job = self
                    .write(
                        Kind::App,
                        Method::PUT,
                        format!("/api/v2/apps/{id}"),
                        &app.name,
                        Some(json!({ "upload_id": upload_id })),
                    )
                    .await?;
                self.built(&job, &app.name).await?;
                summary.updated += 1;
                let why = format!(
                    ": version {} (was {})",
                    app.version,
                    found.record["version"].as_str().unwrap_or("unknown")
                );
                self.report("updated", Kind::App, &app.name, &id, &why);
                id
            }
            None => {
                let upload_id = self.upload(app).await?;
                let job = self
                    .write(
                        Kind::App,
                        Method::POST,
                        "/api/v2/apps".into(),
                        &app.name,
                        Some(json!({
                            "name": app.name,
                            "short_description": SHORT_DESCRIPTION,
                            "upload_id": upload_id,
                        })),
                    )
                    .await?;
                let id = self.built(&job, &app.name).await?;
                summary.created += 1;
                self.report("created", Kind::App, &app.name, &id, "");
                id
            }
        };
        self.install_settings(app, &app_id, summary).await
    }

    /// The account's private apps named `name`.
    async fn owned_apps(&mut self, name: &str) -> Result<Vec<Found>, InstallError> {
        let apps = self.list(Kind::App).await?;
        Ok(Self::named(Kind::App, name, &apps)
            .into_iter()
            .cloned()
            .collect())
    }

    /// Removes the sidebar app `name` (`install zendesk --app`'s): its installations, then the
    /// app; what it deletes is counted in `summary`.
    pub async fn uninstall_app(
        &mut self,
        name: &str,
        summary: &mut Summary,
    ) -> Result<(), InstallError> {
        let apps = self.owned_apps(name).await?;
        if apps.is_empty() {
            return Ok(());
        }
        let installations = self.list(Kind::AppInstallation).await?;
        for app in apps {
            for installation in installations.iter().filter(|i| i.of_app(&app.id)) {
                self.delete(Kind::AppInstallation, name, &installation.id, "", summary)
                    .await?;
            }
            self.delete(Kind::App, name, &app.id, "", summary).await?;
        }
        Ok(())
    }

    /// Uploads the package; its upload id.
    async fn upload(&mut self, app: &AppSetup) -> Result<Value, InstallError> {
        if self.dry_run {
            self.say(format!(
                "would send: POST /api/v2/apps/uploads (the package, {} bytes)",
                app.zip.len()
            ));
            return Ok(json!(DRY_RUN_ID));
        }
        let action = format!("uploading the package of the app `{}`", app.name);
        let resp = self
            .api
            .upload_app_package("escalation-gate-app.zip", &app.zip)
            .await
            .map_err(|source| InstallError::Unavailable {
                action: action.clone(),
                source,
            })?;
        let body = self.answer(Kind::App, &action, resp).await?;
        body.get("id")
            .filter(|id| id.is_u64() || id.is_string())
            .cloned()
            .ok_or(InstallError::Invalid {
                action,
                detail: "no upload `id`".into(),
            })
    }

    /// Reads the build job `job` (the answer that started it) until it completes; the app's id.
    async fn built(&mut self, job: &Value, name: &str) -> Result<String, InstallError> {
        if self.dry_run {
            return Ok(DRY_RUN_ID.into());
        }
        let action = format!("building the app `{name}`");
        let job_id = job["job_id"]
            .as_str()
            .ok_or_else(|| InstallError::Invalid {
                action: action.clone(),
                detail: "no `job_id`".into(),
            })?;
        let started = Instant::now();
        loop {
            let status = self
                .call(
                    Kind::App,
                    &action,
                    Method::GET,
                    &format!("/api/v2/apps/job_statuses/{job_id}"),
                    &[],
                    None,
                )
                .await?;
            match status["status"].as_str() {
                Some("completed") => {
                    return id_of(status.get("app_id")).ok_or(InstallError::Invalid {
                        action,
                        detail: "a completed job without `app_id`".into(),
                    });
                }
                Some("failed") => {
                    return Err(InstallError::Build(format!(
                        "{action}: Zendesk's build job {job_id} failed: {}. Fix what it names \
                         (`install zendesk-app --out FILE` writes the same package to look at) \
                         and run install again.",
                        status["message"].as_str().unwrap_or("no message given")
                    )));
                }
                state if started.elapsed() >= POLL_FOR => {
                    return Err(InstallError::Build(format!(
                        "{action}: Zendesk's build job {job_id} is still `{}` after {} seconds; \
                         run install again later: it finds the app once it is built.",
                        state.unwrap_or("unknown"),
                        POLL_FOR.as_secs()
                    )));
                }
                _ => tokio::time::sleep(POLL_EVERY).await,
            }
        }
    }

    /// Installs the app `app_id` with its settings, or updates its installation.
    async fn install_settings(
        &mut self,
        app: &AppSetup,
        app_id: &str,
        summary: &mut Summary,
    ) -> Result<(), InstallError> {
        let kind = Kind::AppInstallation;
        let listed = if app_id == DRY_RUN_ID {
            Vec::new()
        } else {
            self.list(kind).await?
        };
        let found = listed.into_iter().find(|i| i.of_app(app_id));
        // A dry run prints what it would send: without the secret.
        let secret = if self.dry_run {
            "<the first of the connector's [precheck] secrets>"
        } else {
            app.secret.expose_secret()
        };
        let settings = json!({
            "name": app.name,
            "service_url": app.service_url,
            "precheck_secret": secret,
        });
        let Some(found) = found else {
            let app_ref = app_id.parse::<u64>().map_or(json!(app_id), |n| json!(n));
            let body = self
                .write(
                    kind,
                    Method::POST,
                    "/api/v2/apps/installations".into(),
                    &app.name,
                    Some(json!({ "app_id": app_ref, "settings": settings })),
                )
                .await?;
            let id = id_of(body.get("id")).unwrap_or_else(|| DRY_RUN_ID.into());
            summary.created += 1;
            self.report("created", kind, &app.name, &id, "");
            return Ok(());
        };
        let id = found.id;
        let shown = &found.record["settings"];
        let same =
            shown["name"] == settings["name"] && shown["service_url"] == settings["service_url"];
        if same && !app.resend_secret {
            summary.unchanged += 1;
            self.report(
                "unchanged",
                kind,
                &app.name,
                &id,
                ": Zendesk does not show its secure precheck_secret, so it was not sent again",
            );
            return Ok(());
        }
        self.write(
            kind,
            Method::PUT,
            format!("/api/v2/apps/installations/{id}"),
            &app.name,
            Some(json!({ "settings": settings })),
        )
        .await?;
        summary.updated += 1;
        let why = if same {
            ": the precheck secret sent again (--resend-secret)"
        } else {
            ""
        };
        self.report("updated", kind, &app.name, &id, why);
        Ok(())
    }
}
