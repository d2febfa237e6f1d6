//! The Freshdesk app of a connector (Freshworks apps platform 2.3), as the zip an admin uploads
//! as a custom app (Admin › Apps › Manage apps › Custom apps): `manifest.json` (a ticket sidebar
//! location, the `precheck` request), `config/iparams.json` (the precheck secret, a secure
//! installation parameter), `config/requests.json` (the request template to the service, the
//! only host the app may call), and the sidebar in `app/` (`index.html`, `render.js`, `app.js`,
//! `sidebar.css`, and `config.js` with this connector's tags, hand-off fields and
//! `precheck_field`). On a judged ticket it shows the verdict; on one being prepared, the check
//! before escalating, whose outcome it sets in the ticket's `precheck_field`.

use serde_json::json;

use super::config::ValidFreshdesk;
use crate::helpdesk::sidebar;

const APP_JS: &str = include_str!("app/app.js");
const ICON: &str = include_str!("app/icon.svg");
/// The Freshworks client script, which the platform puts in place of this placeholder.
pub const APP_CLIENT: &str = "{{{appclient}}}";

/// The app's files (path in the zip, bytes) for `connector` served at `url`.
pub fn files(connector: &str, url: &reqwest::Url, cfg: &ValidFreshdesk) -> Vec<(String, Vec<u8>)> {
    let manifest = json!({
        "platform-version": "2.3",
        "product": {
            "freshdesk": {
                "location": {
                    "ticket_sidebar": { "url": "index.html", "icon": "icon.svg" }
                },
                "requests": { "precheck": {} }
            }
        },
        "engines": { "node": "18.20.4", "fdk": "9.3.1" }
    });
    let iparams = json!({
        "precheck_secret": {
            "display_name": "Precheck secret",
            "description": format!("One of the [precheck] secrets of the connector `{connector}`; Freshworks keeps it and sends it only to {}.", url.host_str().unwrap_or_default()),
            "type": "text",
            "required": true,
            "secure": true
        }
    });
    let requests = json!({
        "precheck": {
            "schema": {
                "protocol": url.scheme(),
                "method": "POST",
                "host": url.host_str().unwrap_or_default(),
                "path": format!("{}/precheck/{connector}", url.path().trim_end_matches('/')),
                "headers": {
                    "Authorization": "Bearer <%= iparam.precheck_secret %>",
                    "Content-Type": "application/json"
                }
            }
        }
    });
    let mut config = sidebar::config(connector, &cfg.tags, json!(cfg.mapping.fields));
    config["precheck_field"] = json!(cfg.precheck_field);
    let mut files = vec![
        ("manifest.json".into(), sidebar::json_file(&manifest)),
        ("config/iparams.json".into(), sidebar::json_file(&iparams)),
        ("config/requests.json".into(), sidebar::json_file(&requests)),
        ("app/icon.svg".into(), ICON.as_bytes().to_vec()),
    ];
    files.extend(sidebar::files(sidebar::Sidebar {
        folder: "app",
        page: "index.html",
        client: APP_CLIENT,
        client_host: "https://static.freshdev.io",
        app_js: APP_JS,
        config,
    }));
    files
}
