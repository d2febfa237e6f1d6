//! The ticket sidebar every helpdesk app of the service shows (`sidebar/`): one page, one
//! stylesheet and one script that draws a verdict and the answer of the check before
//! escalating; each helpdesk's app adds its client's script and its own wiring, and is packed
//! as a zip ([`zip`]).

use crate::helpdesk::tags::TagsFile;

pub const RENDER_JS: &str = include_str!("sidebar/render.js");
pub const CSS: &str = include_str!("sidebar/sidebar.css");
const PAGE: &str = include_str!("sidebar/sidebar.html");

/// Where an app keeps its sidebar and what it loads there.
pub struct Sidebar<'a> {
    /// The folder of the app's package (`assets`, `app`).
    pub folder: &'a str,
    /// The page's file name (`iframe.html`, `index.html`).
    pub page: &'a str,
    /// The helpdesk client's script, loaded first, and the origin it comes from.
    pub client: &'a str,
    pub client_host: &'a str,
    /// The helpdesk's wiring.
    pub app_js: &'a str,
    /// What `config.js` sets as `window.EG_CONFIG`.
    pub config: serde_json::Value,
}

/// What every app's `config.js` holds: the connector, its verdict and reason tags (what the
/// sidebar reads a verdict from), and its hand-off fields (helpdesk field → hand-off name, for
/// the draft the check sends).
pub fn config(connector: &str, tags: &TagsFile, fields: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "connector": connector,
        "tags": {
            "good": tags.good,
            "bad": tags.bad,
            "review": tags.review(),
            "prefix": tags.reason_prefix,
        },
        "fields": fields,
    })
}

/// The sidebar's files in an app's package (path, bytes): the page, `config.js`, `render.js`,
/// `app.js` and `sidebar.css`.
pub fn files(s: Sidebar<'_>) -> Vec<(String, Vec<u8>)> {
    let at = |name: &str| format!("{}/{name}", s.folder);
    vec![
        (
            at(s.page),
            page(
                &[s.client, "config.js", "render.js", "app.js"],
                s.client_host,
            )
            .into_bytes(),
        ),
        (
            at("config.js"),
            format!(
                "window.EG_CONFIG = {};\n",
                serde_json::to_string_pretty(&s.config).unwrap_or_default()
            )
            .into_bytes(),
        ),
        (at("render.js"), RENDER_JS.as_bytes().to_vec()),
        (at("app.js"), s.app_js.as_bytes().to_vec()),
        (at("sidebar.css"), CSS.as_bytes().to_vec()),
    ]
}

/// The sidebar page loading `scripts` in order; `script_hosts` (space-separated origins) may
/// serve scripts besides the app itself.
pub fn page(scripts: &[&str], script_hosts: &str) -> String {
    let tags: Vec<String> = scripts
        .iter()
        .map(|s| format!("<script src=\"{s}\"></script>"))
        .collect();
    PAGE.replace("__SCRIPTS__", &tags.join("\n")).replace(
        " __SCRIPT_HOSTS__",
        &if script_hosts.is_empty() {
            String::new()
        } else {
            format!(" {script_hosts}")
        },
    )
}

/// A JSON file of an app's package (a manifest, its parameters), indented.
pub fn json_file(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// A zip archive of `files`, stored (not compressed) and dated 1980-01-01 so the same files give
/// the same bytes: what Zendesk's and Freshworks' uploads take.
pub fn zip(files: &[(String, Vec<u8>)]) -> zip::result::ZipResult<Vec<u8>> {
    use std::io::Write;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        writer.start_file(name.as_str(), options)?;
        writer.write_all(data)?;
    }
    Ok(writer.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zip_holds_every_file_stored_and_the_same_files_give_the_same_bytes() {
        use std::io::Read;
        let files = vec![
            ("a.txt".to_string(), b"hello".to_vec()),
            ("dir/b.json".to_string(), b"{}".to_vec()),
        ];
        let z = zip(&files).unwrap();
        assert_eq!(z, zip(&files).unwrap());
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&z)).unwrap();
        assert_eq!(archive.len(), 2);
        for (i, (name, data)) in files.iter().enumerate() {
            let mut entry = archive.by_index(i).unwrap();
            assert_eq!(entry.name().unwrap(), name.as_str());
            assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
            assert_eq!(entry.crc32(), crc32fast::hash(data));
            let mut read = Vec::new();
            entry.read_to_end(&mut read).unwrap();
            assert_eq!(&read, data);
        }
    }
}
