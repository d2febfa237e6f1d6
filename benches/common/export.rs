//! Zendesk's Export Search Results over generated results, for the benches that read tickets
//! back page by page.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

/// One page of `total` generated results, as `GET /api/v2/search/export.json` answers it:
/// `page[size]` (default 100) results from the `page[after]` cursor, `result(i)` being result
/// `i`; `side_loads` join the page's own keys (e.g. `organizations`).
pub fn page(
    query: &[(String, String)],
    total: u64,
    result: impl Fn(u64) -> Value,
    side_loads: Map<String, Value>,
) -> Value {
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let size: u64 = param("page[size]")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let from: u64 = param("page[after]")
        .and_then(|c| BASE64.decode(c).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let to = (from + size).min(total);
    let more = to < total;
    let mut page = json!({
        "results": (from..to).map(result).collect::<Vec<_>>(),
        "facets": null,
        "links": {"prev": null, "next": null},
        "meta": {"has_more": more, "after_cursor": more.then(|| BASE64.encode(to.to_string())), "before_cursor": null},
    });
    if let Value::Object(keys) = &mut page {
        keys.extend(side_loads);
    }
    page
}
