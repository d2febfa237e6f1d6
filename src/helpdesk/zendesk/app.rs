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

/// The app's files (path in the zip, bytes) for `connector` served at `url`.
pub fn files(connector: &str, url: &reqwest::Url, cfg: &ValidZendesk) -> Vec<(String, Vec<u8>)> {
    let host = url.host_str().unwrap_or_default();
    let manifest = json!({
        "name": format!("Escalation gate [{connector}]"),
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
    let config = json!({
        "connector": connector,
        "tags": {
            "good": cfg.tags.good,
            "bad": cfg.tags.bad,
            "review": cfg.tags.review(),
            "prefix": cfg.tags.reason_prefix,
        },
        "decisions": decisions(&cfg.tags.reason_prefix),
        "fields": cfg.mapping.fields.iter().map(|(id, name)| (id.to_string(), name)).collect::<std::collections::BTreeMap<_, _>>(),
    });
    let pretty = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap_or_default();
    vec![
        ("manifest.json".into(), pretty(&manifest)),
        ("translations/en.json".into(), EN.as_bytes().to_vec()),
        (
            "assets/iframe.html".into(),
            sidebar::page(
                &[ZAF_SDK, "config.js", "render.js", "app.js"],
                "https://static.zdassets.com",
            )
            .into_bytes(),
        ),
        (
            "assets/render.js".into(),
            sidebar::RENDER_JS.as_bytes().to_vec(),
        ),
        ("assets/app.js".into(), APP_JS.as_bytes().to_vec()),
        (
            "assets/sidebar.css".into(),
            sidebar::CSS.as_bytes().to_vec(),
        ),
        (
            "assets/config.js".into(),
            format!(
                "window.EG_CONFIG = {};\n",
                serde_json::to_string_pretty(&config).unwrap_or_default()
            )
            .into_bytes(),
        ),
    ]
}

/// The snippet for the Guide theme's request page (`new_request_page.hbs`): runs the check
/// before escalating as the request form is filled, with no credential (the Help Center's
/// address must be in the connector's `[precheck] allowed_origins`), and shows the answer beside
/// the form as text.
pub fn guide_snippet(connector: &str, url: &reqwest::Url, cfg: &ValidZendesk) -> String {
    let js = |v: serde_json::Value| {
        serde_json::to_string(&v)
            .unwrap_or_default()
            .replace("</", "<\\/")
    };
    let fields: std::collections::BTreeMap<String, &String> = cfg
        .mapping
        .fields
        .iter()
        .map(|(id, name)| (id.to_string(), name))
        .collect();
    GUIDE_SNIPPET
        .replace("__SERVICE__", &js(json!(url.as_str())))
        .replace("__CONNECTOR__", &js(json!(connector)))
        .replace("__FIELDS__", &js(json!(fields)))
}

/// A zip archive of `files`, stored (not compressed): what Zendesk's upload takes.
pub fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed to extract
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u16.to_le_bytes()); // time
            h.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(header(0x0201_4b50, true));
    }
    let start = out.len() as u32;
    let size = central.len() as u32;
    out.extend(central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zip_lists_every_file_with_its_crc() {
        let files = vec![
            ("a.txt".to_string(), b"hello".to_vec()),
            ("dir/b.json".to_string(), b"{}".to_vec()),
        ];
        let z = zip(&files);
        // End of central directory: 2 entries, the directory where it says.
        let end = z.len() - 22;
        assert_eq!(&z[end..end + 4], &0x0605_4b50u32.to_le_bytes());
        assert_eq!(u16::from_le_bytes([z[end + 10], z[end + 11]]), 2);
        let dir = u32::from_le_bytes(z[end + 16..end + 20].try_into().unwrap()) as usize;
        assert_eq!(&z[dir..dir + 4], &0x0201_4b50u32.to_le_bytes());
        // The first local header: stored, its CRC and its data.
        assert_eq!(&z[..4], &0x0403_4b50u32.to_le_bytes());
        assert_eq!(&z[14..18], &crc32fast::hash(b"hello").to_le_bytes());
        assert_eq!(&z[30..35], b"a.txt");
        assert_eq!(&z[35..40], b"hello");
    }
}
