//! Signed survey tokens: the links in the e-mail and the page carry everything the answer needs,
//! so no database is kept.
//!
//! A token is `base64url(JSON claims) "." base64url(HMAC-SHA256(key, "eg-survey-v1." + claims))`.
//! The first configured key signs; every key verifies (rotation). The claims name the
//! connector, ticket, partner, score and expiry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const CONTEXT: &[u8] = b"eg-survey-v1.";
/// Longest token accepted (a link is far shorter); longer input is refused before decoding.
pub const MAX_TOKEN_CHARS: usize = 2048;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// A one-click rating link; `score` is the clicked CSAT (1–5).
    #[serde(rename = "r")]
    Rate,
    /// The unsubscribe link (`List-Unsubscribe`).
    #[serde(rename = "u")]
    Unsubscribe,
    /// The answer page's hidden field: when the page was issued.
    #[serde(rename = "p")]
    Page,
}

/// The signed claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "k")]
    pub purpose: Purpose,
    #[serde(rename = "c")]
    pub connector: String,
    #[serde(rename = "t")]
    pub ticket: String,
    #[serde(rename = "p")]
    pub partner: String,
    /// CSAT 1–5 for [`Purpose::Rate`], 0 otherwise.
    #[serde(rename = "s")]
    pub score: u8,
    /// Unix seconds after which the token is refused.
    #[serde(rename = "e")]
    pub expires: i64,
    /// Whether the case was escalated to the vendor (for the escalated-vs-not CSAT split).
    #[serde(rename = "x", default)]
    pub escalated: bool,
    /// The customer's record in the helpdesk (for an opt-out), when known.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// When a page was issued (unix seconds), for [`Purpose::Page`].
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature is not valid")]
    Forged,
    #[error("the link has expired")]
    Expired,
    #[error("the link is for another purpose or connector")]
    Mismatch,
}

impl TokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Forged => "forged",
            TokenError::Expired => "expired",
            TokenError::Mismatch => "mismatch",
        }
    }
}

/// Signing keys: the first signs, all verify.
#[derive(Debug, Clone)]
pub struct Keys(Vec<SecretString>);

impl Keys {
    /// `keys` must not be empty (validation checks it).
    pub fn new(keys: Vec<SecretString>) -> Keys {
        assert!(!keys.is_empty(), "at least one survey key");
        Keys(keys)
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut mac = mac(self.0[0].expose_secret());
        mac.update(CONTEXT);
        mac.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// Verifies the signature (constant-time, every key), then purpose, connector and expiry.
    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        connector: &str,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let (payload, sig) = token.trim().split_once('.').ok_or(TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let signed = self.0.iter().any(|k| {
            let mut mac = mac(k.expose_secret());
            mac.update(CONTEXT);
            mac.update(payload.as_bytes());
            mac.verify_slice(&sig).is_ok()
        });
        if !signed {
            return Err(TokenError::Forged);
        }
        let raw = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
        if claims.purpose != purpose || claims.connector != connector {
            return Err(TokenError::Mismatch);
        }
        if now.timestamp() > claims.expires {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

fn mac(key: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn claims(exp: i64) -> Claims {
        Claims {
            purpose: Purpose::Rate,
            connector: "acme".into(),
            ticket: "42".into(),
            partner: "Acme IT".into(),
            score: 4,
            expires: exp,
            escalated: true,
            customer: Some("9001".into()),
            issued: None,
        }
    }

    fn keys(k: &[&str]) -> Keys {
        Keys::new(k.iter().map(|s| SecretString::from(*s)).collect())
    }

    #[test]
    fn round_trip_rotation_forgery_and_expiry() {
        let now = Utc.with_ymd_and_hms(2024, 5, 2, 9, 0, 0).unwrap();
        let exp = now.timestamp() + 60;
        let old = keys(&["old-key-0123456789abcdef"]);
        let token = old.sign(&claims(exp));
        // Rotation: the new key signs, the old one still verifies.
        let rotated = keys(&["new-key-0123456789abcdef", "old-key-0123456789abcdef"]);
        assert_eq!(
            rotated.verify(&token, Purpose::Rate, "acme", now).unwrap(),
            claims(exp)
        );
        // Retired: the old key is gone.
        let retired = keys(&["new-key-0123456789abcdef"]);
        assert_eq!(
            retired.verify(&token, Purpose::Rate, "acme", now),
            Err(TokenError::Forged)
        );
        // Tampering with the claims (score 4 → 5) breaks the signature.
        let (payload, sig) = token.split_once('.').unwrap();
        let mut c: Claims = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
        c.score = 5;
        let forged = format!("{}.{sig}", B64.encode(serde_json::to_vec(&c).unwrap()));
        assert_eq!(
            old.verify(&forged, Purpose::Rate, "acme", now),
            Err(TokenError::Forged)
        );
        assert_eq!(
            old.verify(
                &token,
                Purpose::Rate,
                "acme",
                now + chrono::Duration::seconds(61)
            ),
            Err(TokenError::Expired)
        );
        assert_eq!(
            old.verify(&token, Purpose::Unsubscribe, "acme", now),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            old.verify(&token, Purpose::Rate, "other", now),
            Err(TokenError::Mismatch)
        );
        for bad in ["", "abc", "a.b.c", "%%%.%%%", &"x".repeat(3000)] {
            assert!(
                old.verify(bad, Purpose::Rate, "acme", now).is_err(),
                "{bad}"
            );
        }
    }
}
