//! Property tests of what parses untrusted input or signs it: webhook bodies and signatures from
//! the helpdesks, survey link tokens from the customer's browser, and the judge's text handling.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use escalation_gate::assess::kb::rescore::{Candidate, clean_query, rescore};
use escalation_gate::helpdesk::freshdesk::webhook as freshdesk;
use escalation_gate::helpdesk::salesforce::webhook::{parse_outbound, parse_signed_body};
use escalation_gate::helpdesk::zendesk::webhook as zendesk;
use escalation_gate::http::standard_webhooks as standard;
use escalation_gate::survey::token::{Claims, Keys, Purpose};
use proptest::prelude::*;
use secrecy::SecretString;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

/// A body with one byte changed.
fn tampered(body: &[u8], at: usize) -> Vec<u8> {
    let mut b = body.to_vec();
    let i = at % b.len();
    b[i] ^= 0x01;
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn webhook_body_parsers_refuse_garbage_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_outbound(&body);
        let _ = parse_signed_body(&body);
        let _ = zendesk::parse_body(&body, false);
        let _ = zendesk::parse_body(&body, true);
        let _ = freshdesk::parse_body(&body);
    }

    #[test]
    fn a_freshdesk_secret_passes_exactly_as_given(
        secret in "[!-~]{32,64}",
        other in "[!-~]{0,64}",
    ) {
        let secrets = vec![SecretString::from(secret.clone())];
        let name = axum::http::HeaderName::from_static("x-escalation-gate-secret");
        let given = |v: &str| headers(&[("x-escalation-gate-secret", v)]);
        prop_assert!(freshdesk::verify(&secrets, &name, &given(&secret)).is_ok());
        prop_assume!(other != secret);
        prop_assert!(freshdesk::verify(&secrets, &name, &given(&other)).is_err());
    }

    #[test]
    fn soap_like_text_never_panics_the_outbound_parser(
        inner in "[<>/a-zA-Z:=\" 0-9!?&;#\\[\\]-]{0,400}",
    ) {
        let body = format!(
            "<?xml version=\"1.0\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"
        );
        let _ = parse_outbound(body.as_bytes());
    }

    #[test]
    fn a_zendesk_signature_verifies_exactly_its_body(
        secret in "[ -~]{1,64}",
        body in proptest::collection::vec(any::<u8>(), 1..512),
        at in any::<usize>(),
    ) {
        let ts = now().to_rfc3339();
        let sig = zendesk::sign(&secret, &ts, &body);
        let h = headers(&[(zendesk::SIGNATURE, &sig), (zendesk::TIMESTAMP, &ts)]);
        let secrets = [SecretString::from(secret.clone())];
        prop_assert!(zendesk::verify(&secrets, &h, &body, now(), Duration::minutes(5)).is_ok());
        prop_assert!(zendesk::verify(&secrets, &h, &tampered(&body, at), now(), Duration::minutes(5)).is_err());
        let other = [SecretString::from(format!("{secret}x"))];
        prop_assert!(zendesk::verify(&other, &h, &body, now(), Duration::minutes(5)).is_err());
    }

    #[test]
    fn a_standard_webhooks_signature_verifies_exactly_its_message(
        key in proptest::collection::vec(any::<u8>(), 24..64),
        id in "[a-zA-Z0-9_]{1,40}",
        body in proptest::collection::vec(any::<u8>(), 1..512),
        at in any::<usize>(),
    ) {
        let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let ts = now().timestamp();
        let sig = standard::sign(&key, &id, ts, &body);
        let ts_text = ts.to_string();
        let h = headers(&[(standard::ID, &id), (standard::TIMESTAMP, &ts_text), (standard::SIGNATURE, &sig)]);
        let secrets = [SecretString::from(secret)];
        let ok = standard::verify(&secrets, &h, &body, now(), Duration::minutes(5));
        prop_assert_eq!(ok.map(|v| v.id), Ok(id.clone()));
        prop_assert!(standard::verify(&secrets, &h, &tampered(&body, at), now(), Duration::minutes(5)).is_err());
    }

    #[test]
    fn survey_tokens_round_trip_and_any_other_string_is_refused(
        ticket in "[0-9A-Za-z]{1,18}",
        partner in "\\PC{0,40}",
        score in 1u8..=5,
        customer in proptest::option::of("[0-9]{1,12}"),
        noise in "\\PC{0,300}",
        at in any::<usize>(),
    ) {
        let keys = Keys::new(vec![SecretString::from("a-survey-key-of-at-least-24-chars".to_string())]);
        let claims = Claims {
            purpose: Purpose::Rate,
            connector: "acme".into(),
            ticket,
            partner,
            score,
            expires: now().timestamp() + 3600,
            escalated: true,
            customer,
            issued: None,
        };
        let token = keys.seal(&claims);
        prop_assert_eq!(keys.verify(&token, Purpose::Rate, "acme", now()), Ok(claims));
        prop_assert!(keys.verify(&noise, Purpose::Rate, "acme", now()).is_err());
        let mut bytes = token.into_bytes();
        let i = at % bytes.len();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(bytes).unwrap();
        prop_assert!(keys.verify(&forged, Purpose::Rate, "acme", now()).is_err());
    }

    #[test]
    fn the_judge_takes_any_text_and_repeats_itself(
        case in "\\PC{0,600}",
        titles in proptest::collection::vec("\\PC{0,80}", 1..6),
        bodies in proptest::collection::vec("\\PC{0,400}", 6),
    ) {
        let _ = clean_query(&case);
        let candidates: Vec<Candidate> = titles
            .iter()
            .zip(&bodies)
            .map(|(t, b)| Candidate { title: t, body: b })
            .collect();
        let first = rescore(&case, &candidates);
        let again = rescore(&case, &candidates);
        prop_assert_eq!(first.len(), candidates.len());
        for (a, b) in first.iter().zip(&again) {
            prop_assert!((0.0..=1.0).contains(&a.confidence), "{}", a.confidence);
            prop_assert_eq!((a.index, a.confidence.to_bits()), (b.index, b.confidence.to_bits()));
        }
    }
}
