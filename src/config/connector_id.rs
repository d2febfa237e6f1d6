//! A connector's id: its file's name without `.toml`, the `{connector}` of `/hooks/{connector}`
//! and the `connector` label of the metrics. Parsed once where it comes in (a file name, a
//! `--connector` argument), so a path built from it stays in the connectors folder and a
//! checked `String` is never passed around in its place.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// Letters, digits, `-` and `_` only, not empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorId(String);

impl ConnectorId {
    /// `id` as a connector id; the error says which characters one may hold.
    pub fn parse(id: &str) -> Result<ConnectorId, String> {
        let valid = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(ConnectorId(id.to_string()))
        } else {
            Err(format!(
                "`{id}` is not a connector id: letters, digits, - and _ only"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// For clap's `--connector`.
impl FromStr for ConnectorId {
    type Err = String;

    fn from_str(s: &str) -> Result<ConnectorId, String> {
        ConnectorId::parse(s)
    }
}

impl Deref for ConnectorId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ConnectorId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Connectors by id are looked up by the `&str` of a route.
impl Borrow<str> for ConnectorId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_letters_digits_dashes_and_underscores() {
        for id in ["demo", "acme-sf", "acme_zd_2", "A1"] {
            assert_eq!(ConnectorId::parse(id).unwrap().as_str(), id);
        }
        for bad in ["", "../demo", "acme sf", "acme.toml", "a/b", "é"] {
            assert_eq!(
                ConnectorId::parse(bad).unwrap_err(),
                format!("`{bad}` is not a connector id: letters, digits, - and _ only")
            );
        }
    }
}
