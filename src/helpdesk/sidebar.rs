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

/// A zip archive of `files`, stored (not compressed): what Zendesk's and Freshworks'
/// uploads take.
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
