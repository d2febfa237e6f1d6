//! The Zendesk app of a connector (Zendesk Apps Framework v2), as the zip an admin uploads as a
//! private app (Admin Center › Apps and integrations › Zendesk Support apps › Upload private app):
//! `manifest.json` (a ticket sidebar location; the service URL as a setting and the precheck
//! secret as a secure setting, sent only to the service's host), `translations/en.json`, and
//! the sidebar in `assets/` (`iframe.html`, `render.js`, `app.js`, `sidebar.css`, and `config.js` with this
//! connector's tags, reviewer decisions and hand-off fields); and the snippet for the Guide
//! theme's request form ([`guide_snippet`]).

use serde_json::json;

use super::config::ValidZendesk;
use super::install::decisions;
use crate::helpdesk::sidebar;

const APP_JS: &str = include_str!("app/assets/app.js");
/// Zendesk's Apps Framework SDK, which the sidebar page loads first.
pub const ZAF_SDK: &str =
    "https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js";
const EN: &str = include_str!("app/translations/en.json");
const GUIDE_SNIPPET: &str = include_str!("app/guide-snippet.html");

/// The app's name in Zendesk, by which `install zendesk --app` finds it again.
pub fn name(connector: &str) -> String {
    format!("Escalation gate [{connector}]")
}

/// The app as it is uploaded: its files and the `version` its manifest carries.
pub struct Package {
    /// The crate's version with a fingerprint of the files as build metadata
    /// (`0.1.0+3f2a9c01b7de`): Zendesk lists it with the app, so a changed package is told from
    /// the one installed.
    pub version: String,
    /// Path in the zip, bytes.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The app for `connector` served at `url`.
pub fn package(connector: &str, url: &reqwest::Url, cfg: &ValidZendesk) -> Package {
    use sha2::Digest as _;
    let host = url.host_str().unwrap_or_default();
    let mut manifest = json!({
        "name": name(connector),
        "author": { "name": "escalation-gate", "url": url.as_str() },
        "defaultLocale": "en",
        "private": true,
        "location": { "support": { "ticket_sidebar": { "url": "assets/iframe.html", "flexible": true } } },
        "version": env!("CARGO_PKG_VERSION"),
        "frameworkVersion": "2.0",
        "domainWhitelist": [host],
        "parameters": [
            { "name": "service_url", "type": "url", "required": true, "default": url.as_str() },
            { "name": "precheck_secret", "type": "text", "required": true, "secure": true }
        ]
    });
    // JSON object keys are strings: the custom field ids become "1001", as the app reads them.
    let mut config = sidebar::config(connector, &cfg.tags, json!(cfg.mapping.fields));
    config["decisions"] = json!(decisions(&cfg.tags.reason_prefix));
    let mut files = vec![
        ("manifest.json".into(), sidebar::json_file(&manifest)),
        ("translations/en.json".into(), EN.as_bytes().to_vec()),
    ];
    files.extend(sidebar::files(sidebar::Sidebar {
        folder: "assets",
        page: "iframe.html",
        client: ZAF_SDK,
        client_host: "https://static.zdassets.com",
        app_js: APP_JS,
        config,
    }));
    let mut hash = sha2::Sha256::new();
    for (path, data) in &files {
        hash.update((path.len() as u64).to_le_bytes());
        hash.update(path);
        hash.update((data.len() as u64).to_le_bytes());
        hash.update(data);
    }
    let digest: String = hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let version = format!("{}+{digest}", env!("CARGO_PKG_VERSION"));
    manifest["version"] = json!(version);
    files[0].1 = sidebar::json_file(&manifest);
    Package { version, files }
}

/// The snippet for the Guide theme's request page (`new_request_page.hbs`): runs the check
/// before escalating as the request form is filled, with no credential (the Help Center's
/// address must be in the connector's `[precheck] allowed_origins`), and shows the answer beside
/// the form as text; it records what the check said in `[helpdesk] precheck_field`, and tells
/// the service (`/precheck/{connector}/abandoned`) when the page is left unsent after a check
/// showed an article.
pub fn guide_snippet(connector: &str, url: &reqwest::Url, cfg: &ValidZendesk) -> String {
    let js = |v: serde_json::Value| {
        serde_json::to_string(&v)
            .unwrap_or_default()
            .replace("</", "<\\/")
    };
    GUIDE_SNIPPET
        .replace("__SERVICE__", &js(json!(url.as_str())))
        .replace("__CONNECTOR__", &js(json!(connector)))
        .replace("__FIELDS__", &js(json!(cfg.mapping.fields)))
        .replace(
            "__PRECHECK_FIELD__",
            &js(json!(cfg.precheck_field.map(|id| id.to_string()))),
        )
}
