//! Standard Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`, a space-separated list of `v1,{base64 HMAC-SHA256}` over
//! `{id}.{timestamp}.{body}`, keyed with the base64-decoded part of a `whsec_...` secret.
//!
//! Any helpdesk (or the survey, to sign what it sends) can use it: it knows no helpdesk.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::checks::hmac_sha256;

pub const ID: &str = "webhook-id";
pub const TIMESTAMP: &str = "webhook-timestamp";
pub const SIGNATURE: &str = "webhook-signature";

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The fewest bytes of a decoded secret (the specification: 24 to 64 random bytes).
pub const MIN_KEY_BYTES: usize = 24;

/// The longest `webhook-id` accepted (it goes into logs).
const MAX_ID_CHARS: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    #[error("the `{0}` header is missing")]
    Missing(&'static str),
    #[error("the `{0}` header is not valid: {1}")]
    Invalid(&'static str, &'static str),
    #[error("no signature matches the body")]
    NoMatch,
    #[error("the signed timestamp is {0} s old; at most {1} s are accepted")]
    TooOld(i64, i64),
    #[error("the signed timestamp is {0} s in the future; at most {1} s are accepted")]
    TooNew(i64, i64),
}

/// What a verified call says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub id: String,
    pub timestamp: DateTime<Utc>,
}

/// The HMAC key of a secret: the base64 after `whsec_` (the prefix is optional).
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, &'static str> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = BASE64
        .decode(b64)
        .map_err(|_| "a Standard Webhooks secret is `whsec_` followed by base64")?;
    if key.len() < MIN_KEY_BYTES {
        return Err(
            "a Standard Webhooks secret must hold at least 24 random bytes (`whsec_` + base64, \
             e.g. `echo whsec_$(openssl rand -base64 32)`)",
        );
    }
    Ok(key)
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = hmac_sha256(key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for this message: `v1,{base64}`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1,{}", BASE64.encode(tag))
}

/// Verifies the three headers against every secret (constant-time), then the timestamp against
/// `now` ± `tolerance`. Secrets that do not decode never match.
pub fn verify(
    secrets: &[SecretString],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<Verified, VerifyError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .ok_or(VerifyError::Missing(name))?
            .to_str()
            .map(str::trim)
            .map_err(|_| VerifyError::Invalid(name, "not visible ASCII"))
    };
    let id = header(ID)?;
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err(VerifyError::Invalid(ID, "empty or too long"));
    }
    let ts_text = header(TIMESTAMP)?;
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| VerifyError::Invalid(TIMESTAMP, "not Unix seconds"))?;
    let signatures: Vec<Vec<u8>> = header(SIGNATURE)?
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| BASE64.decode(s).ok())
        .collect();
    if signatures.is_empty() {
        return Err(VerifyError::Invalid(SIGNATURE, "no `v1,` signature"));
    }
    let keys: Vec<Vec<u8>> = secrets
        .iter()
        .filter_map(|s| decode_secret(s.expose_secret()).ok())
        .collect();
    let matched = keys.iter().any(|key| {
        let expected = mac(key, id, ts_text, body);
        signatures
            .iter()
            .any(|sig| expected.clone().verify_slice(sig).is_ok())
    });
    if !matched {
        return Err(VerifyError::NoMatch);
    }
    let at =
        DateTime::from_timestamp(ts, 0).ok_or(VerifyError::Invalid(TIMESTAMP, "out of range"))?;
    let tol = tolerance.num_seconds();
    if at < now - tolerance {
        return Err(VerifyError::TooOld((now - at).num_seconds(), tol));
    }
    if at > now + tolerance {
        return Err(VerifyError::TooNew((at - now).num_seconds(), tol));
    }
    Ok(Verified {
        id: id.to_string(),
        timestamp: at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    // The specification's reference-library vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ID, HeaderValue::from_str(id).unwrap());
        h.insert(TIMESTAMP, HeaderValue::from_str(ts).unwrap());
        h.insert(SIGNATURE, HeaderValue::from_str(sig).unwrap());
        h
    }

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap()
    }

    #[test]
    fn spec_vector_signs_and_verifies() {
        let key = decode_secret(SECRET).unwrap();
        assert_eq!(sign(&key, MSG_ID, TS, BODY), SIG);
        let v = verify(
            &[SecretString::from(SECRET)],
            &headers(MSG_ID, &TS.to_string(), SIG),
            BODY,
            at(TS),
            Duration::minutes(5),
        )
        .unwrap();
        assert_eq!(v.id, MSG_ID);
        assert_eq!(v.timestamp, at(TS));
    }

    #[test]
    fn rotation_several_signatures_and_tampering() {
        let secrets = [
            SecretString::from("whsec_b2xkIHNlY3JldCBvbGQgc2VjcmV0IQ=="),
            SecretString::from(SECRET),
        ];
        let h = headers(MSG_ID, &TS.to_string(), &format!("v1,AAAA {SIG} v2,zzz"));
        assert!(verify(&secrets, &h, BODY, at(TS), Duration::minutes(5)).is_ok());
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify(&secrets, &h, tampered, at(TS), Duration::minutes(5)),
            Err(VerifyError::NoMatch)
        );
        let other_id = headers("msg_other", &TS.to_string(), SIG);
        assert_eq!(
            verify(&secrets, &other_id, BODY, at(TS), Duration::minutes(5)),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn time_window_and_bad_headers() {
        let secrets = [SecretString::from(SECRET)];
        let h = headers(MSG_ID, &TS.to_string(), SIG);
        let tol = Duration::minutes(5);
        assert!(matches!(
            verify(&secrets, &h, BODY, at(TS + 301), tol),
            Err(VerifyError::TooOld(301, 300))
        ));
        assert!(matches!(
            verify(&secrets, &h, BODY, at(TS - 301), tol),
            Err(VerifyError::TooNew(301, 300))
        ));
        assert!(verify(&secrets, &h, BODY, at(TS + 300), tol).is_ok());
        assert_eq!(
            verify(&secrets, &HeaderMap::new(), BODY, at(TS), tol),
            Err(VerifyError::Missing(ID))
        );
        let bad_ts = headers(MSG_ID, "2021-02-25T15:02:10Z", SIG);
        assert!(matches!(
            verify(&secrets, &bad_ts, BODY, at(TS), tol),
            Err(VerifyError::Invalid(TIMESTAMP, _))
        ));
        let no_v1 = headers(MSG_ID, &TS.to_string(), "v1a,abc");
        assert!(matches!(
            verify(&secrets, &no_v1, BODY, at(TS), tol),
            Err(VerifyError::Invalid(SIGNATURE, _))
        ));
        assert!(decode_secret("whsec_%%%").is_err());
        assert!(decode_secret("whsec_c2hvcnQ=").is_err());
        // 23 random bytes are too few; the specification's 24 are enough.
        let b64 = |n: usize| format!("whsec_{}", BASE64.encode(vec![7u8; n]));
        assert!(decode_secret(&b64(23)).is_err());
        assert_eq!(decode_secret(&b64(24)).map(|k| k.len()), Ok(24));
    }
}
