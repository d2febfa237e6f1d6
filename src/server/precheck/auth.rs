//! Who calls the precheck: a shared secret or an HS256 JWT signed with one (`Authorization:
//! Bearer ...`), or, without a credential, a page of an allowed origin (a public request form).

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::checks::hmac_sha256;
use crate::config::precheck::PrecheckSettings;

/// Latest `exp` a JWT may carry, from now: one hour, the `expiry` Zendesk apps commonly give
/// the JWTs their request proxy signs (`client.request({jwt: {expiry: 3600, ...}})`).
pub const MAX_JWT_SECS: i64 = 3600;
/// Clock difference allowed between the JWT's issuer and this service.
pub const JWT_LEEWAY_SECS: i64 = 30;
/// Characters of a JWT's `sub` that name a client for the rate limit.
const MAX_SUB_CHARS: usize = 128;
/// Longest credential read; longer ones are refused before decoding.
const MAX_CREDENTIAL_CHARS: usize = 4096;

/// Who made the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A shared secret or a JWT signed with one: may read a ticket. `client` names the caller
    /// for the rate limit (which secret, and the JWT's `sub`), never the secret itself.
    Trusted { client: String },
    /// No credential, from an allowed origin: answers hold only published article facts and
    /// the field rules' messages.
    Public { origin: String },
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no credential where one is needed, or a wrong one.
    Unauthorized(String),
    /// 403: a page of an origin that is not allowed.
    Forbidden(String),
}

impl Refusal {
    /// A page whose origin the connector does not allow.
    pub fn origin_not_allowed() -> Refusal {
        Refusal::Forbidden(
            "this page's origin is not in the connector's `precheck.allowed_origins`".into(),
        )
    }
}

/// The `Origin` header, when the call came from a browser page.
pub fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// Whether `origin` is one of the allowed origins (exact match).
pub fn allowed<'a>(settings: &PrecheckSettings, origin: Option<&'a str>) -> Option<&'a str> {
    origin.filter(|o| settings.allowed_origins.iter().any(|a| a == o))
}

/// Authenticates a call made at `now`.
pub fn authenticate(
    settings: &PrecheckSettings,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Caller, Refusal> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return match origin(headers) {
            Some(o) if allowed(settings, Some(o)).is_some() => Ok(Caller::Public {
                origin: o.to_string(),
            }),
            Some(_) => Err(Refusal::origin_not_allowed()),
            None => Err(Refusal::Unauthorized(
                "no credential: send `Authorization: Bearer <secret or JWT>`".into(),
            )),
        };
    };
    let token = auth
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_CREDENTIAL_CHARS)
        .ok_or_else(|| {
            Refusal::Unauthorized(
                "the `Authorization` header must be `Bearer <secret or JWT>`".into(),
            )
        })?;
    if let Some(i) = matching_secret(&settings.secrets, token.as_bytes()) {
        return Ok(Caller::Trusted {
            client: format!("secret-{i}"),
        });
    }
    if token.split('.').count() == 3 {
        let (i, claims) =
            verify_jwt(&settings.secrets, token, now).map_err(Refusal::Unauthorized)?;
        return Ok(Caller::Trusted {
            client: format!(
                "jwt-{i}-{}",
                claims
                    .sub
                    .unwrap_or_default()
                    .chars()
                    .take(MAX_SUB_CHARS)
                    .collect::<String>()
            ),
        });
    }
    Err(Refusal::Unauthorized(
        "the credential is neither one of the connector's precheck secrets nor a JWT signed with one".into(),
    ))
}

/// The index of the secret equal to `given`; every secret is compared, in constant time.
fn matching_secret(secrets: &[SecretString], given: &[u8]) -> Option<usize> {
    secrets.iter().enumerate().fold(None, |found, (i, s)| {
        let eq = bool::from(given.ct_eq(s.expose_secret().as_bytes()));
        found.or(eq.then_some(i))
    })
}

#[derive(Debug, Deserialize)]
struct JwtHeader {
    alg: String,
}

/// The claims the precheck reads; others are ignored.
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    /// Who the token was made for: the rate limit counts each one on its own.
    pub sub: Option<String>,
}

/// Verifies an HS256 JWT against each secret (signature first, in constant time), then its
/// times: `exp` required, in the future and at most [`MAX_JWT_SECS`] ahead; `nbf` when given.
/// The index of the secret that signed it, and its claims.
pub fn verify_jwt(
    secrets: &[SecretString],
    token: &str,
    now: DateTime<Utc>,
) -> Result<(usize, Claims), String> {
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a JWT has three parts separated by dots".into());
    };
    let decode = |part: &str, what: &str| {
        B64.decode(part)
            .map_err(|_| format!("the JWT's {what} is not base64url"))
    };
    let header: JwtHeader = serde_json::from_slice(&decode(head, "header")?)
        .map_err(|_| "the JWT's header is not JSON with `alg`".to_string())?;
    if header.alg != "HS256" {
        return Err(format!(
            "the JWT is signed with `{}`; only HS256 is taken",
            header.alg.chars().take(16).collect::<String>()
        ));
    }
    let sig = decode(sig, "signature")?;
    let signed = &token[..head.len() + 1 + body.len()];
    let index = secrets
        .iter()
        .position(|s| {
            let mut mac = hmac_sha256(s.expose_secret().as_bytes());
            mac.update(signed.as_bytes());
            mac.verify_slice(&sig).is_ok()
        })
        .ok_or("the JWT is not signed with one of the connector's precheck secrets")?;
    let claims: Claims = serde_json::from_slice(&decode(body, "payload")?)
        .map_err(|_| "the JWT's payload is not JSON with numeric `exp`".to_string())?;
    let now = now.timestamp();
    let exp = claims.exp.ok_or("the JWT has no `exp`; it is required")?;
    if exp + JWT_LEEWAY_SECS <= now {
        return Err("the JWT has expired".into());
    }
    if exp > now + MAX_JWT_SECS + JWT_LEEWAY_SECS {
        return Err(format!(
            "the JWT's `exp` is more than {MAX_JWT_SECS} seconds ahead; make short-lived tokens"
        ));
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + JWT_LEEWAY_SECS) {
        return Err("the JWT is not valid yet (`nbf`)".into());
    }
    Ok((index, claims))
}

/// An HS256 JWT of `claims` signed with `secret`, as a caller's server makes one.
pub fn sign_jwt(secret: &str, claims: &serde_json::Value) -> String {
    let head = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = B64.encode(claims.to_string());
    let mut mac = hmac_sha256(secret.as_bytes());
    mac.update(format!("{head}.{body}").as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "precheck-secret-0123456789abcdefghij";

    fn secrets() -> Vec<SecretString> {
        vec![
            SecretString::from("other-secret-zyxwvutsrqponmlkjihgfedcba"),
            SecretString::from(KEY),
        ]
    }

    #[test]
    fn a_jwt_is_taken_only_signed_short_lived_and_unexpired() {
        let now = Utc::now();
        let t = now.timestamp();
        let ok = sign_jwt(KEY, &json!({"exp": t + 300, "sub": "agent-7"}));
        let (i, claims) = verify_jwt(&secrets(), &ok, now).unwrap();
        assert_eq!((i, claims.sub.as_deref()), (1, Some("agent-7")));
        let hour = sign_jwt(KEY, &json!({"exp": t + 3600}));
        assert!(
            verify_jwt(&secrets(), &hour, now).is_ok(),
            "a Zendesk app's hour"
        );
        for (token, why) in [
            (sign_jwt(KEY, &json!({"exp": t - 120})), "expired"),
            (sign_jwt(KEY, &json!({"exp": t + 7200})), "ahead"),
            (sign_jwt(KEY, &json!({"sub": "x"})), "no `exp`"),
            (
                sign_jwt(KEY, &json!({"exp": t + 60, "nbf": t + 300})),
                "not valid yet",
            ),
            (
                sign_jwt(
                    "wrong-secret-abcdefghijklmnopqrstuvwxyz",
                    &json!({"exp": t + 60}),
                ),
                "not signed",
            ),
        ] {
            let err = verify_jwt(&secrets(), &token, now).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none"}"#),
            B64.encode(json!({"exp": t + 60}).to_string())
        );
        assert!(
            verify_jwt(&secrets(), &none, now)
                .unwrap_err()
                .contains("HS256")
        );
    }
}
