//! Inbound Zendesk webhooks: signature check, the trigger's JSON body, and the inbound role.
//!
//! Zendesk signs every webhook request: `X-Zendesk-Webhook-Signature` is
//! `base64(HMAC-SHA256(signing secret as text, X-Zendesk-Webhook-Signature-Timestamp + raw body))`.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::Zendesk;
use super::config::TicketSource;
use crate::checks::hmac_sha256;
use crate::helpdesk::mapping::ticket_number;
use crate::helpdesk::{Call, Delivery, Event, HookError, Inbound, TicketRef};

pub const SIGNATURE: &str = "x-zendesk-webhook-signature";
pub const TIMESTAMP: &str = "x-zendesk-webhook-signature-timestamp";
pub const INVOCATION_ID: &str = "x-zendesk-webhook-invocation-id";

/// The signature Zendesk sends for this timestamp and body.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = hmac_sha256(secret.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

/// Checks the signature against every configured secret (constant-time), then the timestamp
/// against `now` ± `tolerance`. Returns the signed timestamp.
pub fn verify(
    secrets: &[SecretString],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<DateTime<Utc>, HookError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .ok_or_else(|| HookError::Unauthorized(format!("the `{name}` header is missing")))
    };
    let signature = header(SIGNATURE)?;
    let timestamp = header(TIMESTAMP)?;
    let given = BASE64
        .decode(signature)
        .map_err(|_| HookError::Unauthorized("the signature is not base64".into()))?;
    let valid = secrets.iter().any(|secret| {
        let mut mac = hmac_sha256(secret.expose_secret().as_bytes());
        mac.update(timestamp.as_bytes());
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    });
    if !valid {
        return Err(HookError::Unauthorized(
            "the signature does not match the body".into(),
        ));
    }
    let at = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| {
            HookError::Unauthorized(format!("the `{TIMESTAMP}` header is not an ISO-8601 time"))
        })?
        .with_timezone(&Utc);
    if at < now - tolerance {
        return Err(HookError::Unauthorized(format!(
            "the signed timestamp is {} s old; at most {} s are accepted",
            (now - at).num_seconds(),
            tolerance.num_seconds()
        )));
    }
    if at > now + tolerance {
        return Err(HookError::Unauthorized(format!(
            "the signed timestamp is {} s in the future; at most {} s are accepted",
            (at - now).num_seconds(),
            tolerance.num_seconds()
        )));
    }
    Ok(at)
}

/// What the trigger's body names.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerBody {
    pub ticket_id: String,
    /// `escalated` unless the body says otherwise; `solved` asks for the blind survey.
    pub event: String,
    /// The whole body, when it carries the ticket (`{"ticket": {...}, "users": [...], ...}`).
    pub snapshot: Option<Value>,
}

/// Parses the trigger body, tolerant of how Zendesk substitutes placeholders: the id may be a
/// number or a string with spaces around it.
pub fn parse_body(body: &[u8], want_snapshot: bool) -> Result<TriggerBody, HookError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| HookError::BadRequest("the body is not UTF-8 text".into()))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| HookError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| HookError::BadRequest("the body must be a JSON object".into()))?;
    let from_ticket = obj
        .get("ticket")
        .and_then(|t| t.get("id"))
        .filter(|_| want_snapshot);
    let raw = obj.get("ticket_id").or(from_ticket).ok_or_else(|| {
        HookError::BadRequest("the body has no `ticket_id` (use \"{{ticket.id}}\")".into())
    })?;
    let ticket_id = ticket_number(raw).ok_or_else(|| {
        HookError::BadRequest(format!("`ticket_id` must be a ticket number, found {raw}"))
    })?;
    let event = match obj.get("event") {
        None => "escalated".to_string(),
        Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
        Some(other) => {
            return Err(HookError::BadRequest(format!(
                "`event` must be a string, found {other}"
            )));
        }
    };
    if event != "escalated" && event != "solved" {
        return Err(HookError::BadRequest(format!(
            "unknown event `{event}` (known: escalated, solved)"
        )));
    }
    // A solved case is always read through the API: its state is what counts.
    let snapshot = if want_snapshot && event == "escalated" {
        if !obj.get("ticket").is_some_and(Value::is_object) {
            return Err(HookError::BadRequest(
                "this connector takes the ticket from the body: a `ticket` object is missing"
                    .into(),
            ));
        }
        Some(value.clone())
    } else {
        None
    };
    Ok(TriggerBody {
        ticket_id,
        event,
        snapshot,
    })
}

/// The inbound role: a trigger's signed webhook.
impl Inbound for Zendesk {
    fn accept_event(&self, call: &Call<'_>) -> Result<Event, HookError> {
        let escalated_at = verify(
            &self.cfg.signing_secrets,
            call.headers,
            call.body,
            call.now,
            self.cfg.tolerance,
        )?;
        let body = parse_body(
            call.body,
            self.cfg.ticket_source == TicketSource::WebhookBody,
        )?;
        let delivery = Delivery {
            delivery_id: call
                .headers
                .get(INVOCATION_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            tickets: vec![TicketRef {
                id: body.ticket_id,
                escalated_at,
                escalated_at_unknown: false,
                snapshot: body.snapshot,
            }],
        };
        Ok(match body.event.as_str() {
            "solved" => Event::Solved(delivery),
            _ => Event::Escalated(delivery),
        })
    }

    fn sign(&self, body: &[u8], now: DateTime<Utc>) -> Result<Vec<(String, String)>, String> {
        let secret = self
            .cfg
            .signing_secrets
            .first()
            .ok_or("the connector has no signing secret")?;
        let timestamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let signature = sign(secret.expose_secret(), &timestamp, body);
        Ok(vec![
            (TIMESTAMP.to_string(), timestamp),
            (SIGNATURE.to_string(), signature),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use chrono::TimeZone;

    // From the Zendesk documentation's formula (see docs/src/helpdesks/zendesk.md).
    const SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";

    fn headers(sig: &str, ts: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE, HeaderValue::from_str(sig).unwrap());
        h.insert(TIMESTAMP, HeaderValue::from_str(ts).unwrap());
        h
    }

    fn at(ts: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(ts)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn documented_vectors() {
        assert_eq!(
            sign(SECRET, "2021-07-25T10:00:00Z", br#"{"say": "hello"}"#),
            "gf3v0LzLRHPUnIdhbvwRDVEvzSb07/QN0GYjSNlkBT0="
        );
        assert_eq!(
            sign(SECRET, "2021-03-25T05:09:27Z", br#"{"ticket_id":"123"}"#),
            "YmkQCnSLfGdf5pcvqNFcuOtUpzUb/ss09fM0NCi/wvw="
        );
        let secrets = [SecretString::from(SECRET)];
        let ts = "2021-03-25T05:09:27Z";
        let ok = verify(
            &secrets,
            &headers("YmkQCnSLfGdf5pcvqNFcuOtUpzUb/ss09fM0NCi/wvw=", ts),
            br#"{"ticket_id":"123"}"#,
            at(ts),
            Duration::minutes(5),
        );
        assert_eq!(ok.unwrap(), at(ts));
    }

    #[test]
    fn old_body_then_timestamp_order_is_refused() {
        // An older documentation page concatenated body + timestamp; that example must fail.
        let secrets = [SecretString::from(
            "HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA=",
        )];
        let ts = "2021-07-25T10:00:00Z";
        let err = verify(
            &secrets,
            &headers("tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw=", ts),
            br#"{"say": "hello"}"#,
            at(ts),
            Duration::minutes(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not match"));
    }

    #[test]
    fn rotation_tampering_and_time_window() {
        let ts = "2024-05-02T09:00:00Z";
        let body = br#"{"ticket_id": 7}"#;
        let sig = sign("new", ts, body);
        let secrets = [SecretString::from("old"), SecretString::from("new")];
        let now = Utc.with_ymd_and_hms(2024, 5, 2, 9, 0, 0).unwrap();
        let tol = Duration::minutes(5);
        assert!(verify(&secrets, &headers(&sig, ts), body, now, tol).is_ok());
        let tampered = br#"{"ticket_id": 8}"#;
        assert!(verify(&secrets, &headers(&sig, ts), tampered, now, tol).is_err());
        let late = now + Duration::seconds(301);
        assert!(
            verify(&secrets, &headers(&sig, ts), body, late, tol)
                .unwrap_err()
                .to_string()
                .contains("old")
        );
        let early = now - Duration::seconds(301);
        assert!(
            verify(&secrets, &headers(&sig, ts), body, early, tol)
                .unwrap_err()
                .to_string()
                .contains("future")
        );
        assert!(
            verify(
                &secrets,
                &headers(&sig, ts),
                body,
                now + Duration::seconds(300),
                tol
            )
            .is_ok()
        );
        assert!(verify(&secrets, &headers("%%%", ts), body, now, tol).is_err());
        assert!(
            verify(&secrets, &HeaderMap::new(), body, now, tol)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }

    #[test]
    fn bodies() {
        let b = parse_body(br#"{"ticket_id": " 123 "}"#, false).unwrap();
        assert_eq!(
            (b.ticket_id.as_str(), b.event.as_str()),
            ("123", "escalated")
        );
        assert_eq!(
            parse_body(br#"{"ticket_id": 9}"#, false).unwrap().ticket_id,
            "9"
        );
        for (body, want) in [
            (&b"not json"[..], "not valid JSON"),
            (b"[1]", "JSON object"),
            (b"{}", "no `ticket_id`"),
            (br#"{"ticket_id": "abc"}"#, "ticket number"),
            (br#"{"ticket_id": 1, "event": "deleted"}"#, "unknown event"),
            (b"\xff", "UTF-8"),
        ] {
            let err = parse_body(body, false).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let snap = parse_body(br#"{"ticket": {"id": 5, "subject": "x"}}"#, true).unwrap();
        assert_eq!(snap.ticket_id, "5");
        assert!(snap.snapshot.is_some());
        assert!(parse_body(br#"{"ticket_id": 5}"#, true).is_err());
        let solved = parse_body(br#"{"ticket_id": "5", "event": " Solved "}"#, true).unwrap();
        assert_eq!((solved.event.as_str(), solved.snapshot), ("solved", None));
    }
}
