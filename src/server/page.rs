//! The customer-facing HTML pages of the blind survey (its form, its thanks, its errors): one
//! layout, no script, nothing cached or indexed, and a content security policy that allows
//! only the page's own form.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::survey::email::escape_html;

/// A page that says `text` under `title`.
pub fn message(status: StatusCode, company: &str, title: &str, text: &str) -> Response {
    page(
        status,
        company,
        title,
        &format!("<p>{}</p>", escape_html(text)),
    )
}

/// A complete page. `body` is HTML already escaped by its maker.
pub fn page(status: StatusCode, company: &str, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font-family: Arial, sans-serif; color: #222; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
fieldset {{ border: 1px solid #bbb; border-radius: 6px; margin: 1rem 0; padding: 0.5rem 1rem; }}
legend {{ font-weight: bold; padding: 0 0.25rem; }}
.opt {{ display: flex; align-items: center; margin: 0.25rem 0; }}
input[type=radio] {{ flex: none; width: 1.5rem; height: 1.5rem; margin: 0 0.5rem 0 0; }}
.opt label {{ padding: 0.25rem 0; }}
textarea {{ box-sizing: border-box; width: 100%; font: inherit; }}
button {{ font-size: 1rem; padding: 0.6rem 1.2rem; }}
.problem {{ color: #a00; font-weight: bold; }}
.hp {{ position: absolute; left: -10000px; top: auto; width: 1px; height: 1px; overflow: hidden; }}
</style>
</head>
<body>
<main>
<p>{company}</p>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = escape_html(title),
        company = escape_html(company),
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    resp
}
