//! The vocabulary of configuration checks every connector table shares, a leaf module that
//! imports nothing of the crate: the [`Problem`] a check reports, mapped-field names, shared
//! secrets long enough to resist guessing (and the HMAC-SHA256 every signature keyed with one
//! uses), and upstream URLs that keep credentials off the wire (TLS, nothing secret in the URL
//! itself).

pub mod typed;

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// An HMAC-SHA256 keyed with `key`: what every signature the service makes or checks uses
/// (helpdesk webhooks, Standard Webhooks, survey links, precheck JWTs).
pub fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    Hmac::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// A problem found while validating, before the file name is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }

    /// `problems` on one line: `key: message; key: message`.
    pub fn joined(problems: &[Problem]) -> String {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Records a hand-off field name a helpdesk maps; a name mapped twice is a problem at `key`.
pub fn map_field_name(
    key: String,
    name: &str,
    known: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) {
    if known.iter().any(|n| n == name) {
        problems.push(Problem::new(
            key,
            format!("the name `{name}` is mapped twice"),
        ));
    }
    known.push(name.to_string());
}

/// A setting that names a mapped field (`product_field`, ...) must name one of `known`.
pub fn require_mapped(
    key: String,
    name: Option<&str>,
    known: &[String],
    problems: &mut Vec<Problem>,
) {
    if let Some(name) = name
        && !known.iter().any(|n| n == name)
    {
        problems.push(Problem::new(
            key,
            format!("`{name}` is not a name mapped in [helpdesk.fields]"),
        ));
    }
}

/// Whether a key holds a secret: such values must be `${VAR}` references, never literals.
pub fn is_secret_key(key: &str) -> bool {
    const EXACT: &[&str] = &["token", "password", "secret", "private_key", "api_key"];
    const SUFFIXES: &[&str] = &["_secret", "_secrets", "_token", "_password", "_key"];
    EXACT.contains(&key) || SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// The fewest characters of a shared secret: a webhook signing secret, the Salesforce endpoint
/// token, a survey link key (Zendesk's own signing secrets are 44).
pub const MIN_SECRET_CHARS: usize = 32;
/// The fewest different characters in a shared secret: a long run of a few characters is a
/// placeholder, not a random value.
pub const MIN_SECRET_DISTINCT_CHARS: usize = 8;

/// Whether `secret` is long and varied enough to be a shared secret; a problem under `key`
/// otherwise. The message never shows the secret.
pub fn shared_secret(key: String, secret: &SecretString, problems: &mut Vec<Problem>) {
    let s = secret.expose_secret();
    let chars = s.chars().count();
    let mut distinct: Vec<char> = s.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let problem = if chars < MIN_SECRET_CHARS {
        format!("is {chars} characters long; a shared secret needs at least {MIN_SECRET_CHARS}")
    } else if distinct.len() < MIN_SECRET_DISTINCT_CHARS {
        format!(
            "has only {} different characters; a shared secret is a random value",
            distinct.len()
        )
    } else {
        return;
    };
    problems.push(Problem::new(
        key,
        format!("{problem} (make one with `openssl rand -hex 32`)"),
    ));
}

/// `value` (the key's, or its default) as it is, with a problem under `key` when it lies outside
/// `range`.
pub fn within<T: PartialOrd + std::fmt::Display + Copy>(
    key: String,
    value: T,
    range: std::ops::RangeInclusive<T>,
    problems: &mut Vec<Problem>,
) -> T {
    if !range.contains(&value) {
        problems.push(Problem::new(
            key,
            format!(
                "must be {} to {}, found {value}",
                range.start(),
                range.end()
            ),
        ));
    }
    value
}

/// Where a URL's credentials go instead of the URL, for the message that refuses them.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// The connector key that holds them, e.g. `helpdesk.auth`.
    Key(&'a str),
    /// The URL needs none: the calls to it are signed (`secret`), or it is public.
    None(&'a str),
}

/// An `http(s)` URL of a server this service calls (or sends people to). `https` is required
/// except on loopback (127.0.0.0/8, ::1, `localhost`); user info and query parameters named like
/// secrets (`api_key`, `token`, `password`, `key`, ...) are refused. Messages never repeat the
/// URL's credentials.
pub fn upstream_url(
    key: String,
    value: &str,
    credentials: Credentials<'_>,
    problems: &mut Vec<Problem>,
) -> Option<reqwest::Url> {
    let url = match reqwest::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            problems.push(Problem::new(
                key,
                "is not an http(s) URL like `https://host.example/path`",
            ));
            return None;
        }
    };
    let start = problems.len();
    let put = |what: &str| match credentials {
        Credentials::Key(k) => format!("{what}; put credentials in `{k}`"),
        Credentials::None(why) => format!("{what}; {why}"),
    };
    if !url.username().is_empty() || url.password().is_some() {
        problems.push(Problem::new(
            key.clone(),
            put("must not carry a user name or password (`user:pass@`)"),
        ));
    }
    let secret_params: Vec<String> = url
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .filter(|k| is_secret_param(k))
        .collect();
    if !secret_params.is_empty() {
        problems.push(Problem::new(
            key.clone(),
            put(&format!(
                "must not carry credentials in its query (`{}`)",
                secret_params.join("`, `")
            )),
        ));
    }
    if url.scheme() == "http" && !url.host_str().is_some_and(is_loopback_host) {
        problems.push(Problem::new(
            key,
            format!(
                "`http://{}` would send credentials and case data in clear text: use https:// \
                 (http:// is accepted only on loopback: 127.0.0.0/8, ::1, localhost)",
                url.host_str().unwrap_or_default()
            ),
        ));
    }
    (problems.len() == start).then_some(url)
}

/// A query parameter that holds a credential: named like a secret key of a connector file, or
/// `key`, `apikey`, `sig`, `signature` (any case, `-` as `_`).
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    is_secret_key(&name) || matches!(name.as_str(), "key" | "apikey" | "sig" | "signature")
}

/// 127.0.0.0/8, ::1 (with or without brackets) or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let ok = upstream_url("k".into(), url, Credentials::Key("auth"), &mut problems);
        assert_eq!(ok.is_some(), problems.is_empty(), "{url}");
        problems.into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        for ok in [
            "https://acme.zendesk.com",
            "https://kb.example/search?q=1&lang=en",
            "http://127.0.0.1:8080/x",
            "http://127.3.4.5/",
            "http://[::1]:9000/",
            "http://localhost:3000",
            "http://LOCALHOST./",
        ] {
            assert_eq!(check(ok), Vec::<String>::new(), "{ok}");
        }
        for bad in [
            "http://acme.zendesk.com",
            "http://10.0.0.5/",
            "http://[::2]/",
            "http://localhost.evil.example/",
            "http://128.0.0.1/",
        ] {
            let found = check(bad);
            assert!(
                found.len() == 1 && found[0].contains("use https://"),
                "{bad}: {found:?}"
            );
        }
        assert!(check("ftp://x")[0].contains("not an http(s) URL"));
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_being_repeated() {
        for (url, words) in [
            (
                "https://bot:hunter2@acme.zendesk.com",
                "user name or password",
            ),
            ("https://bot@acme.zendesk.com", "user name or password"),
            ("https://kb.example/s?api_key=hunter2", "`api_key`"),
            (
                "https://kb.example/s?q=x&Access-Token=hunter2",
                "`Access-Token`",
            ),
            ("https://kb.example/s?token=hunter2", "`token`"),
            ("https://kb.example/s?key=hunter2", "`key`"),
            ("https://kb.example/s?secret=hunter2", "`secret`"),
            ("https://kb.example/s?password=hunter2", "`password`"),
            (
                "https://kb.example/s?client_secret=hunter2",
                "`client_secret`",
            ),
            ("https://kb.example/s?sig=hunter2", "`sig`"),
        ] {
            let found = check(url);
            assert_eq!(found.len(), 1, "{url}: {found:?}");
            assert!(found[0].contains(words), "{url}: {found:?}");
            assert!(found[0].contains("put credentials in `auth`"), "{found:?}");
            assert!(!found[0].contains("hunter2"), "{found:?}");
        }
        // Both problems at once, and the clear-text one too.
        assert_eq!(check("http://u:p@kb.example/?token=t").len(), 3);
        // Words that only look like secrets are fine.
        assert_eq!(
            check("https://kb.example/s?monkey=1&keyword=2&tokens_used=3"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn secrets_need_length_and_variety() {
        let check = |s: &str| {
            let mut problems = Vec::new();
            shared_secret("k".into(), &SecretString::from(s), &mut problems);
            problems.into_iter().map(|p| p.message).collect::<Vec<_>>()
        };
        assert!(check("")[0].contains("is 0 characters long"));
        assert!(check("change-me")[0].contains("at least 32"));
        assert!(check(&"ab".repeat(20))[0].contains("only 2 different characters"));
        assert_eq!(check(&"0123456789abcdef".repeat(2)), Vec::<String>::new());
        assert_eq!(
            check("dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="),
            Vec::<String>::new()
        );
        let secret = "short-secret-value";
        assert!(!check(secret)[0].contains(secret));
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "[::1]",
            "localhost",
            "LocalHost",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "smtp.example",
            "localhost.example",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
