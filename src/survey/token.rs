//! Survey link tokens: the links in the e-mail and the page carry everything the answer needs,
//! so no database is kept, and whoever holds a link (the customer, a mail scanner) reads nothing
//! out of it: a blind survey does not tell the customer what the vendor knows.
//!
//! A token is `base64url(nonce ‖ ChaCha20-Poly1305(key, nonce, JSON claims))` with a random
//! 96-bit nonce and the associated data `eg-survey-v2`. Each configured secret gives its key by
//! HKDF-SHA256 (a context of its own, so the key is not the secret itself). The first secret's
//! key seals; every key opens (rotation). The claims name the connector, ticket, partner,
//! score and expiry.
//!
//! Links sent before tokens were sealed are signed and readable:
//! `base64url(JSON claims) "." base64url(HMAC-SHA256(secret, "eg-survey-v1." + claims))`. They
//! are still accepted, verified with every secret, until they expire (`link_valid_days` after
//! they were sent); none are issued any more.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::Mac;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::checks::hmac_sha256;

/// What a sealed token's tag authenticates besides the claims.
const AAD: &[u8] = b"eg-survey-v2";
/// HKDF's salt and context for the sealing keys.
const KEY_SALT: &[u8] = b"escalation-gate survey links";
const KEY_INFO: &[u8] = b"eg-survey-v2 chacha20-poly1305 key";
/// The HMAC context of the signed tokens issued before sealing.
const LEGACY_CONTEXT: &[u8] = b"eg-survey-v1.";
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

/// The claims a token carries.
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
    #[error("the link was not issued with a configured key, or was altered")]
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

/// The link keys: the first seals, all open (and verify the signed tokens of before).
#[derive(Clone)]
pub struct Keys {
    secrets: Vec<SecretString>,
    sealing: Vec<LessSafeKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// `keys` must not be empty (validation checks it).
    pub fn new(keys: Vec<SecretString>) -> Keys {
        assert!(!keys.is_empty(), "at least one survey key");
        let sealing = keys
            .iter()
            .map(|k| sealing_key(k.expose_secret()))
            .collect();
        Keys {
            secrets: keys,
            sealing,
        }
    }

    /// The opaque token of `claims`, sealed with the first key.
    pub fn seal(&self, claims: &Claims) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source gives a nonce");
        let mut sealed = serde_json::to_vec(claims).expect("claims serialize");
        self.sealing[0]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut sealed,
            )
            .expect("a token's claims are far below the cipher's limit");
        let mut token = nonce.to_vec();
        token.append(&mut sealed);
        B64.encode(token)
    }

    /// Opens the token (every key; a signed token of before: its signature, constant-time,
    /// every key), then checks purpose, connector and expiry.
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
        let token = token.trim();
        let raw = match token.split_once('.') {
            Some((payload, sig)) => self.legacy_payload(payload, sig)?,
            None => self.open(token)?,
        };
        let claims: Claims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
        if claims.purpose != purpose || claims.connector != connector {
            return Err(TokenError::Mismatch);
        }
        if now.timestamp() > claims.expires {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The claims' JSON of a sealed token.
    fn open(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        let raw = B64.decode(token).map_err(|_| TokenError::Malformed)?;
        if raw.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(TokenError::Malformed);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        self.sealing
            .iter()
            .find_map(|key| {
                let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
                let mut buf = sealed.to_vec();
                let plain = key.open_in_place(nonce, Aad::from(AAD), &mut buf).ok()?;
                Some(plain.to_vec())
            })
            .ok_or(TokenError::Forged)
    }

    /// The claims' JSON of a signed token issued before tokens were sealed.
    fn legacy_payload(&self, payload: &str, sig: &str) -> Result<Vec<u8>, TokenError> {
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let signed = self.secrets.iter().any(|k| {
            let mut mac = hmac_sha256(k.expose_secret().as_bytes());
            mac.update(LEGACY_CONTEXT);
            mac.update(payload.as_bytes());
            mac.verify_slice(&sig).is_ok()
        });
        if !signed {
            return Err(TokenError::Forged);
        }
        B64.decode(payload).map_err(|_| TokenError::Malformed)
    }
}

fn sealing_key(secret: &str) -> LessSafeKey {
    let prk = Salt::new(HKDF_SHA256, KEY_SALT).extract(secret.as_bytes());
    let okm = prk
        .expand(&[KEY_INFO], &CHACHA20_POLY1305)
        .expect("one key's length is a valid HKDF output length");
    LessSafeKey::new(UnboundKey::from(okm))
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

    /// A token as the versions before sealing signed it.
    fn legacy(secret: &str, c: &Claims) -> String {
        let payload = B64.encode(serde_json::to_vec(c).unwrap());
        let mut mac = hmac_sha256(secret.as_bytes());
        mac.update(LEGACY_CONTEXT);
        mac.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn round_trip_rotation_forgery_and_expiry() {
        let now = Utc.with_ymd_and_hms(2024, 5, 2, 9, 0, 0).unwrap();
        let exp = now.timestamp() + 60;
        let old = keys(&["old-key-0123456789abcdef"]);
        let token = old.seal(&claims(exp));
        // Rotation: the new key seals, the old one still opens.
        let rotated = keys(&["new-key-0123456789abcdef", "old-key-0123456789abcdef"]);
        assert_eq!(
            rotated.verify(&token, Purpose::Rate, "acme", now).unwrap(),
            claims(exp)
        );
        let fresh = rotated.seal(&claims(exp));
        assert_eq!(
            old.verify(&fresh, Purpose::Rate, "acme", now),
            Err(TokenError::Forged),
            "the old key alone does not open what the new one sealed"
        );
        // Retired: the old key is gone.
        let retired = keys(&["new-key-0123456789abcdef"]);
        assert_eq!(
            retired.verify(&token, Purpose::Rate, "acme", now),
            Err(TokenError::Forged)
        );
        // Any changed byte of the sealed claims breaks the tag.
        let mut raw = B64.decode(&token).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            assert_eq!(
                old.verify(&B64.encode(&raw), Purpose::Rate, "acme", now),
                Err(TokenError::Forged),
                "byte {i}"
            );
            raw[i] ^= 1;
        }
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
        for bad in ["", "abc", "a.b.c", "%%%.%%%", "%%%", &"x".repeat(3000)] {
            assert!(
                old.verify(bad, Purpose::Rate, "acme", now).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_token_shows_nothing_of_its_claims_and_is_never_the_same_twice() {
        let k = keys(&["key-0123456789abcdef0123456789"]);
        let c = claims(2_000_000_000);
        let (a, b) = (k.seal(&c), k.seal(&c));
        assert_ne!(a, b, "a random nonce each time");
        let raw = B64.decode(&a).unwrap();
        let json = serde_json::to_vec(&c).unwrap();
        assert_eq!(
            raw.len(),
            NONCE_LEN + json.len() + CHACHA20_POLY1305.tag_len()
        );
        for shown in ["Acme IT", "9001", "\"x\":true", "\"t\":\"42\""] {
            assert!(
                !raw.windows(shown.len()).any(|w| w == shown.as_bytes()),
                "{shown}"
            );
        }
    }

    #[test]
    fn signed_tokens_of_before_are_accepted_until_they_expire() {
        let now = Utc.with_ymd_and_hms(2024, 5, 2, 9, 0, 0).unwrap();
        let exp = now.timestamp() + 60;
        let k = keys(&["new-key-0123456789abcdef", "old-key-0123456789abcdef"]);
        for secret in ["new-key-0123456789abcdef", "old-key-0123456789abcdef"] {
            let token = legacy(secret, &claims(exp));
            assert_eq!(
                k.verify(&token, Purpose::Rate, "acme", now),
                Ok(claims(exp))
            );
        }
        let token = legacy("old-key-0123456789abcdef", &claims(exp));
        assert_eq!(
            k.verify(
                &token,
                Purpose::Rate,
                "acme",
                now + chrono::Duration::seconds(61)
            ),
            Err(TokenError::Expired)
        );
        // Tampering with the claims (score 4 → 5) breaks the signature.
        let (_, sig) = token.split_once('.').unwrap();
        let mut c = claims(exp);
        c.score = 5;
        let forged = format!("{}.{sig}", B64.encode(serde_json::to_vec(&c).unwrap()));
        assert_eq!(
            k.verify(&forged, Purpose::Rate, "acme", now),
            Err(TokenError::Forged)
        );
        let other = legacy("attacker-key-0123456789abcdef", &claims(exp));
        assert_eq!(
            k.verify(&other, Purpose::Rate, "acme", now),
            Err(TokenError::Forged)
        );
    }
}
