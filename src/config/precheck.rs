//! The `[precheck]` table of a connector file: the check of a draft escalation before it is
//! sent (`POST /precheck/{connector}`), and who may call it.

use secrecy::SecretString;
use serde::Deserialize;

use crate::checks::{Problem, shared_secret, within};

/// Requests one client may make in a minute when the table does not say.
pub const DEFAULT_PER_CLIENT_PER_MINUTE: u32 = 30;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecheckFile {
    /// Whether the endpoint answers (default true: the table is there to turn it on).
    pub enabled: Option<bool>,
    /// Shared secrets (`${ENV}` references): sent as `Authorization: Bearer <secret>`, or
    /// signing an HS256 JWT sent the same way.
    #[serde(default)]
    pub secrets: Vec<SecretString>,
    /// Origins (`https://help.example.com`) whose pages may call without a credential (a
    /// public request form); exact matches.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Requests one client (a credential, or an origin and address) may make in a minute.
    pub per_client_per_minute: Option<u32>,
}

/// A validated `[precheck]`.
#[derive(Debug, Clone)]
pub struct PrecheckSettings {
    pub secrets: Vec<SecretString>,
    pub allowed_origins: Vec<String>,
    pub per_client_per_minute: u32,
}

impl PrecheckFile {
    /// `None` when the endpoint is off (`enabled = false`) or the table has problems.
    pub fn validate(self, problems: &mut Vec<Problem>) -> Option<PrecheckSettings> {
        let start = problems.len();
        let key = |k: &str| format!("precheck.{k}");
        for (i, s) in self.secrets.iter().enumerate() {
            shared_secret(key(&format!("secrets[{i}]")), s, problems);
        }
        if self.secrets.is_empty() && self.allowed_origins.is_empty() {
            problems.push(Problem::new(
                key("secrets"),
                "give at least one secret (apps and servers) or one of `allowed_origins` (a \
                 public request form); with neither, nobody may call the endpoint",
            ));
        }
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            if let Err(why) = origin_problem(origin) {
                problems.push(Problem::new(key(&format!("allowed_origins[{i}]")), why));
            }
        }
        let per_minute = within(
            key("per_client_per_minute"),
            self.per_client_per_minute
                .unwrap_or(DEFAULT_PER_CLIENT_PER_MINUTE),
            1..=10_000,
            problems,
        );
        (problems.len() == start && self.enabled.unwrap_or(true)).then(|| PrecheckSettings {
            secrets: self.secrets,
            allowed_origins: self.allowed_origins,
            per_client_per_minute: per_minute,
        })
    }
}

/// An origin as a browser sends it: `https://host` or `https://host:port`, no path, no
/// trailing slash (`http` only on loopback).
fn origin_problem(origin: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(origin)
        .map_err(|e| format!("`{origin}` is not an origin like `https://help.example.com`: {e}"))?;
    let loopback = url.host_str().is_some_and(crate::checks::is_loopback_host);
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(format!(
            "`{origin}` must be an https origin (http only on loopback)"
        ));
    }
    if url.origin().ascii_serialization() != origin {
        return Err(format!(
            "`{origin}` must be an origin exactly as a browser sends it: scheme and host (and \
             port), no path, no trailing slash, e.g. `{}`",
            url.origin().ascii_serialization()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(file: PrecheckFile) -> Vec<String> {
        let mut problems = Vec::new();
        file.validate(&mut problems);
        problems.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let keys = problems(PrecheckFile {
            enabled: None,
            secrets: vec![SecretString::from("short")],
            allowed_origins: vec!["https://ok.example".into(), "https://x.example/form".into()],
            per_client_per_minute: Some(0),
        });
        assert_eq!(
            keys,
            [
                "precheck.secrets[0]",
                "precheck.allowed_origins[1]",
                "precheck.per_client_per_minute"
            ]
        );
        let keys = problems(PrecheckFile {
            enabled: Some(true),
            secrets: Vec::new(),
            allowed_origins: Vec::new(),
            per_client_per_minute: None,
        });
        assert_eq!(keys, ["precheck.secrets"]);
    }

    #[test]
    fn a_valid_table_takes_the_default_limit_and_can_be_turned_off() {
        let file = |enabled| PrecheckFile {
            enabled,
            secrets: vec![SecretString::from("7f3a9c1e5b2d8f4a6c0e9b3d7a1f5c2e")],
            allowed_origins: Vec::new(),
            per_client_per_minute: None,
        };
        let on = file(None).validate(&mut Vec::new()).unwrap();
        assert_eq!(on.per_client_per_minute, DEFAULT_PER_CLIENT_PER_MINUTE);
        let mut problems = Vec::new();
        assert!(file(Some(false)).validate(&mut problems).is_none());
        assert!(problems.is_empty());
    }

    #[test]
    fn origins_are_taken_only_as_browsers_send_them() {
        assert!(origin_problem("https://help.example.com").is_ok());
        assert!(origin_problem("https://help.example.com:8443").is_ok());
        assert!(origin_problem("http://127.0.0.1:3000").is_ok());
        for bad in [
            "https://help.example.com/",
            "https://help.example.com/form",
            "http://help.example.com",
            "help.example.com",
            "*",
        ] {
            assert!(origin_problem(bad).is_err(), "{bad}");
        }
    }
}
