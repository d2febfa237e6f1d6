//! `${VAR}` references in connector files, expanded from the environment before the file is
//! typed. A missing variable is an error that names it; secrets may only be references.

use std::sync::LazyLock;

use regex::Regex;

use crate::checks::is_secret_key;

/// Looks a variable up; `std::env::var` in the service, a map in tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex"));
static WHOLE_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$").expect("valid regex"));

/// A problem found while expanding, at a dotted key path.
#[derive(Debug, Clone, PartialEq)]
pub struct VarProblem {
    pub key: String,
    pub message: String,
}

/// Expands every `${VAR}` in the table's strings in place and returns every problem found.
pub fn expand(table: &mut toml::Table, env: Env) -> Vec<VarProblem> {
    let mut problems = Vec::new();
    for (key, value) in table.iter_mut() {
        walk(value, key, is_secret_key(key), env, &mut problems);
    }
    problems
}

fn walk(value: &mut toml::Value, path: &str, secret: bool, env: Env, out: &mut Vec<VarProblem>) {
    match value {
        toml::Value::String(s) => {
            if secret && !WHOLE_REFERENCE.is_match(s) {
                out.push(VarProblem {
                    key: path.to_string(),
                    message: "holds a secret: write it as an environment reference like \
                              \"${MY_SECRET}\", never as a literal"
                        .into(),
                });
                return;
            }
            let mut missing = Vec::new();
            let expanded = REFERENCE.replace_all(s, |caps: &regex::Captures| {
                let name = &caps[1];
                env(name).unwrap_or_else(|| {
                    missing.push(name.to_string());
                    String::new()
                })
            });
            for name in missing {
                out.push(VarProblem {
                    key: path.to_string(),
                    message: format!("environment variable `{name}` is not set"),
                });
            }
            *s = expanded.into_owned();
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), secret, env, out);
            }
        }
        toml::Value::Table(t) => {
            for (key, item) in t.iter_mut() {
                walk(item, &format!("{path}.{key}"), is_secret_key(key), env, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_string())
    }

    #[test]
    fn expands_and_reports_missing_and_literal_secrets() {
        let mut t: toml::Table = toml::from_str(
            r#"
            url = "https://${SET}.example/${SET}"
            [auth]
            token = "${SET}"
            client_secret = "literal"
            signing_secrets = ["${SET}", "${NOPE}"]
            other = "${GONE}"
            "#,
        )
        .unwrap();
        let problems = expand(&mut t, &env);
        assert_eq!(t["url"].as_str(), Some("https://value.example/value"));
        assert_eq!(t["auth"]["token"].as_str(), Some("value"));
        let got: Vec<(String, String)> = problems.into_iter().map(|p| (p.key, p.message)).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, "auth.client_secret");
        assert!(got[0].1.contains("never as a literal"));
        assert_eq!(
            got[1],
            (
                "auth.other".into(),
                "environment variable `GONE` is not set".into()
            )
        );
        assert_eq!(
            got[2],
            (
                "auth.signing_secrets[1]".into(),
                "environment variable `NOPE` is not set".into()
            )
        );
    }

    #[test]
    fn secret_keys() {
        for k in [
            "token",
            "client_secret",
            "signing_secrets",
            "shared_token",
            "private_key",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["email", "base_url", "client_id", "tokens_url"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
