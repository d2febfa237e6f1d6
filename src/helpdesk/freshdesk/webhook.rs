//! The automation rule's "Trigger webhook" call, and the inbound role: Freshdesk signs nothing,
//! so the rule sends a shared secret (in a custom header, or as the Basic auth password), and a
//! JSON body the admin writes with placeholders:
//! `{"ticket_id": "{{ticket.id}}", "event": "escalated"}`.

use axum::http::{HeaderMap, HeaderName, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::Freshdesk;
use crate::helpdesk::mapping::ticket_number;
use crate::helpdesk::{Call, Delivery, Event, HookError, Inbound, TicketRef};

/// What a verified call asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleBody {
    pub ticket_id: String,
    pub event: RuleEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleEvent {
    /// The rule that fires when a partner escalates (the default when the body names none).
    Escalated,
    /// The rule that fires when the ticket is resolved: the blind survey.
    Solved,
}

/// Whether the call carries one of `secrets`, in `secret_header` or as the Basic auth password
/// (any user name); every secret is compared in constant time.
pub fn verify(
    secrets: &[SecretString],
    secret_header: &HeaderName,
    headers: &HeaderMap,
) -> Result<(), HookError> {
    let mut given: Vec<Vec<u8>> = headers
        .get_all(secret_header)
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect();
    given.extend(basic_password(headers));
    if given.is_empty() {
        return Err(HookError::Unauthorized(format!(
            "no secret: the automation rule's webhook must send it in the `{secret_header}` header or as the Basic auth password"
        )));
    }
    let matches = |g: &[u8]| {
        secrets.iter().fold(false, |any, s| {
            any | bool::from(g.ct_eq(s.expose_secret().as_bytes()))
        })
    };
    if given.iter().any(|g| matches(g)) {
        Ok(())
    } else {
        Err(HookError::Unauthorized(
            "the webhook's secret is wrong".into(),
        ))
    }
}

/// The password of an `Authorization: Basic` header, when there is one.
fn basic_password(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// Parses the body the rule sends: `ticket_id` (the `{{ticket.id}}` placeholder, a number or a
/// string of digits, within 64 bits) and `event` (`escalated` or `solved`; `escalated` when absent).
pub fn parse_body(body: &[u8]) -> Result<RuleBody, HookError> {
    let bad = |m: &str| HookError::BadRequest(m.to_string());
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| HookError::BadRequest(format!("the body is not JSON: {e}")))?;
    let ticket_id = match v.get("ticket_id") {
        Some(raw) => ticket_number(raw).ok_or_else(|| {
            bad("`ticket_id` is not a 64-bit ticket number: use the placeholder {{ticket.id}}")
        })?,
        None => return Err(bad("the body has no `ticket_id`")),
    };
    let event = match v.get("event").and_then(Value::as_str) {
        None | Some("escalated") => RuleEvent::Escalated,
        Some("solved") => RuleEvent::Solved,
        Some(other) => {
            return Err(HookError::BadRequest(format!(
                "unknown event `{other}`: use `escalated` or `solved`"
            )));
        }
    };
    Ok(RuleBody { ticket_id, event })
}

/// The inbound role: an automation rule's webhook with the shared secret.
impl Inbound for Freshdesk {
    fn accept_event(&self, call: &Call<'_>) -> Result<Event, HookError> {
        verify(
            &self.cfg.webhook_secrets,
            &self.cfg.secret_header,
            call.headers,
        )?;
        let parsed = parse_body(call.body)?;
        let delivery = Delivery {
            delivery_id: None,
            tickets: vec![TicketRef {
                id: parsed.ticket_id,
                // The rule fires when the ticket becomes an escalation: the call is its time.
                escalated_at: call.now,
                escalated_at_unknown: false,
                snapshot: None,
            }],
        };
        Ok(match parsed.event {
            RuleEvent::Solved => Event::Solved(delivery),
            RuleEvent::Escalated => Event::Escalated(delivery),
        })
    }

    /// The first secret in the connector's header: what the automation rule sends.
    fn sign(&self, _body: &[u8], _now: DateTime<Utc>) -> Result<Vec<(String, String)>, String> {
        let secret = self
            .cfg
            .webhook_secrets
            .first()
            .ok_or("the connector has no webhook secret")?;
        Ok(vec![(
            self.cfg.secret_header.to_string(),
            secret.expose_secret().to_string(),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "freshdesk-webhook-secret-5b8e1d42c97a";

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::try_from(*k).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn check(h: &HeaderMap) -> Result<(), HookError> {
        let secrets = vec![
            SecretString::from("retired-freshdesk-secret-0c1d2e3f4a5b"),
            SecretString::from(SECRET),
        ];
        verify(
            &secrets,
            &HeaderName::from_static("x-escalation-gate-secret"),
            h,
        )
    }

    #[test]
    fn takes_the_secret_in_the_header_or_as_basic_password() {
        assert!(check(&headers(&[("x-escalation-gate-secret", SECRET.into())])).is_ok());
        let basic = B64.encode(format!("freshdesk:{SECRET}"));
        assert!(check(&headers(&[("authorization", format!("Basic {basic}"))])).is_ok());
    }

    #[test]
    fn refuses_a_missing_or_wrong_secret() {
        let missing = check(&HeaderMap::new()).unwrap_err();
        assert!(missing.to_string().contains("x-escalation-gate-secret"));
        assert!(check(&headers(&[("x-escalation-gate-secret", "wrong".into())])).is_err());
        let prefix = &SECRET[..SECRET.len() - 1];
        assert!(check(&headers(&[("x-escalation-gate-secret", prefix.into())])).is_err());
        let basic = B64.encode(format!("{SECRET}:X"));
        assert!(check(&headers(&[("authorization", format!("Basic {basic}"))])).is_err());
        assert!(check(&headers(&[("authorization", format!("Bearer {SECRET}"))])).is_err());
    }

    #[test]
    fn parses_the_rule_body() {
        let call = parse_body(br#"{"ticket_id": "42", "event": "solved"}"#).unwrap();
        assert_eq!(
            call,
            RuleBody {
                ticket_id: "42".into(),
                event: RuleEvent::Solved
            }
        );
        let call = parse_body(br#"{"ticket_id": 7}"#).unwrap();
        assert_eq!(call.event, RuleEvent::Escalated);
        for bad in [
            &br#"{"ticket_id": "{{ticket.id}}"}"#[..],
            br#"{"event": "escalated"}"#,
            br#"{"ticket_id": "42", "event": "closed"}"#,
            b"ticket_id=42",
        ] {
            assert!(
                matches!(parse_body(bad), Err(HookError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
