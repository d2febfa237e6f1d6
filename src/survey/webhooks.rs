//! Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature` =
//! `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), the key being the base64 part of
//! `whsec_...`. Used for the survey request (instead of e-mail) and the answer sink.

use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::http::standard_webhooks::{self, ID, SECRET_PREFIX, SIGNATURE, TIMESTAMP};
use crate::http::{Upstream, UpstreamError};

/// A decoded `whsec_` key.
#[derive(Clone)]
pub struct WebhookSecret(std::sync::Arc<SecretBox<Vec<u8>>>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    pub fn parse(secret: &SecretString) -> Result<WebhookSecret, String> {
        let raw = secret.expose_secret();
        if !raw.starts_with(SECRET_PREFIX) {
            return Err(
                "must be a Standard Webhooks key `whsec_` + base64 (24 to 64 bytes)".into(),
            );
        }
        let key = standard_webhooks::decode_secret(raw)?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!(
                "the key is {} bytes; Standard Webhooks keys are 24 to 64 bytes",
                key.len()
            ));
        }
        Ok(WebhookSecret(std::sync::Arc::new(SecretBox::new(
            Box::new(key),
        ))))
    }

    /// The `webhook-signature` value for this message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        standard_webhooks::sign(self.0.expose_secret(), id, timestamp, body)
    }
}

/// POSTs `body` signed to the target. `id` is the message id (the same on every retry of one
/// message, so the receiver can drop duplicates).
pub async fn post(
    upstream: &Upstream,
    call: &'static str,
    target: &WebhookTarget,
    id: &str,
    body: &serde_json::Value,
) -> Result<(), UpstreamError> {
    let bytes = serde_json::to_vec(body).expect("JSON serializes");
    let ts = chrono::Utc::now().timestamp();
    let signature = target.secret.sign(id, ts, &bytes);
    let resp = upstream
        .send(call, |c| {
            c.post(target.url.clone())
                .header("content-type", "application/json")
                .header(ID, id)
                .header(TIMESTAMP, ts.to_string())
                .header(SIGNATURE, &signature)
                .body(bytes.clone())
        })
        .await?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(UpstreamError::Rejected {
            call,
            host: crate::http::host_of(&target.url),
            status: resp.status(),
            detail: "the receiver refused the webhook".into(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: reqwest::Url,
    pub secret: WebhookSecret,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vector() {
        // From the Standard Webhooks reference libraries (shared/specs/README.md).
        let s = WebhookSecret::parse(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ))
        .unwrap();
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(format!("{s:?}").contains("redacted"));
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_%%%",
            "whsec_c2hvcnQ=",
        ] {
            assert!(
                WebhookSecret::parse(&SecretString::from(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
