//! The ticket sidebar every helpdesk app of the service shows (`sidebar/`): one page, one
//! stylesheet and one script that draws a verdict and the answer of the check before
//! escalating; each helpdesk's app adds its client's script and its own wiring.

pub const RENDER_JS: &str = include_str!("sidebar/render.js");
pub const CSS: &str = include_str!("sidebar/sidebar.css");
const PAGE: &str = include_str!("sidebar/sidebar.html");

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
