//! Inbound Salesforce calls: SOAP outbound messages (parsed with quick-xml; no DTD, no entity
//! but the five predefined ones and character references) and signed JSON from a Flow HTTP
//! Callout or Apex, and the inbound role built on them (the server renders the SOAP answers, `Ack`
//! or fault).

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;
use serde_json::Value;

use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::Salesforce;
use super::api::{is_id_of, parse_datetime};
use crate::helpdesk::{
    Call, Delivery, Event as CallEvent, HookError, Inbound, ReplyFormat, TicketRef,
};
use crate::http::standard_webhooks;

pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Salesforce sends at most 100 notifications per message.
pub const MAX_NOTIFICATIONS: usize = 100;
const MAX_DEPTH: usize = 16;
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// One outbound message, as far as escalation-gate reads it. The `SessionId` is never kept.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub organization_id: String,
    pub action_id: Option<String>,
    pub notifications: Vec<Notification>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub case_id: String,
    /// `sf:LastModifiedDate`, when the outbound message sends that field.
    pub last_modified: Option<DateTime<Utc>>,
}

/// Whether a call is signed JSON (Standard Webhooks headers) rather than an outbound message.
pub fn is_signed_json(headers: &HeaderMap) -> bool {
    headers.contains_key(standard_webhooks::SIGNATURE)
        || headers.contains_key(standard_webhooks::ID)
}

/// A Case id.
pub fn is_case_id(id: &str) -> bool {
    is_id_of(id, "500")
}

fn bad(msg: impl Into<String>) -> HookError {
    HookError::BadRequest(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ns {
    Soap,
    Outbound,
    Sobject,
    Other,
}

fn ns_of(r: &ResolveResult<'_>) -> Ns {
    match r {
        ResolveResult::Bound(Namespace(n)) => match *n {
            SOAP_ENV_NS => Ns::Soap,
            OUTBOUND_NS => Ns::Outbound,
            n if is_sobject_ns(n) => Ns::Sobject,
            _ => Ns::Other,
        },
        _ => Ns::Other,
    }
}

/// `urn:sobject.enterprise.soap.sforce.com` or `urn:sobject.partner.soap.sforce.com`.
fn is_sobject_ns(n: &str) -> bool {
    n.starts_with("urn:sobject.") && n.ends_with(".soap.sforce.com")
}

/// Where in the envelope the parser is.
#[derive(Debug, Clone, PartialEq)]
enum At {
    Envelope,
    Header,
    Body,
    Notifications,
    Notification,
    SObject,
    /// A leaf whose text is kept: (parent, local name).
    Leaf(Box<At>, String),
    /// Anything else: skipped with its children.
    Skip,
}

/// The notification being read: its id, its Case id and `LastModifiedDate`.
#[derive(Default)]
struct Current {
    id: Option<String>,
    case: Option<String>,
    modified: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Draft {
    org: Option<String>,
    action: Option<String>,
    notifications: Vec<Notification>,
    current: Option<Current>,
    saw_notifications: bool,
}

/// Parses an outbound message. Any DTD, any entity other than the predefined ones, a wrong
/// namespace, a non-Case sObject or a missing id is a `BadRequest`.
pub fn parse_outbound(body: &[u8]) -> Result<OutboundMessage, HookError> {
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8 text"))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<At> = Vec::new();
    let mut draft = Draft::default();
    let mut leaf_text = String::new();
    let mut root_seen = false;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| bad(format!("malformed XML: {e}")))?;
        let ns = ns_of(&ns);
        match event {
            Event::DocType(_) => {
                return Err(bad(
                    "a DOCTYPE is not allowed: outbound messages carry no DTD and no entities",
                ));
            }
            Event::Decl(d) => {
                if let Some(Ok(enc)) = d.encoding()
                    && !enc.eq_ignore_ascii_case("utf-8")
                {
                    return Err(bad("only UTF-8 XML is accepted"));
                }
            }
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(bad("the XML nests too deeply"));
                }
                let next = enter(&reader, stack.last(), root_seen, ns, &e, &mut draft)?;
                root_seen = true;
                if matches!(next, At::Leaf(..)) {
                    leaf_text.clear();
                }
                stack.push(next);
            }
            Event::Empty(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(bad("the XML nests too deeply"));
                }
                let next = enter(&reader, stack.last(), root_seen, ns, &e, &mut draft)?;
                root_seen = true;
                if let At::Leaf(parent, name) = next {
                    leaf(&mut draft, &parent, &name, "")?;
                } else {
                    leave(&mut draft, &next)?;
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(bad("malformed XML: unexpected end tag"));
                };
                if let At::Leaf(parent, name) = &done {
                    leaf(&mut draft, parent, name, leaf_text.trim())?;
                } else {
                    leave(&mut draft, &done)?;
                }
            }
            Event::Text(t) => {
                if matches!(stack.last(), Some(At::Leaf(..))) {
                    push_text(&mut leaf_text, &t.xml10_content())?;
                }
            }
            Event::CData(t) => {
                if matches!(stack.last(), Some(At::Leaf(..))) {
                    push_text(&mut leaf_text, &t.xml10_content())?;
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .ok()
                        .flatten()
                        .ok_or_else(|| bad("malformed XML: invalid character reference"))?
                } else {
                    match r.xml10_content().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        _ => {
                            return Err(bad(
                                "an entity reference other than &amp; &lt; &gt; &quot; &apos; is not allowed",
                            ));
                        }
                    }
                };
                if matches!(stack.last(), Some(At::Leaf(..))) {
                    push_text(&mut leaf_text, c.encode_utf8(&mut [0; 4]))?;
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::PI(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad("malformed XML: the document ends inside an element"));
    }
    if !draft.saw_notifications {
        return Err(bad(format!(
            "no `notifications` element in the namespace {OUTBOUND_NS} inside a SOAP Body"
        )));
    }
    let organization_id = draft
        .org
        .filter(|o| !o.is_empty())
        .ok_or_else(|| bad("the message has no OrganizationId"))?;
    if draft.notifications.is_empty() {
        return Err(bad("the message has no Notification"));
    }
    Ok(OutboundMessage {
        organization_id,
        action_id: draft.action,
        notifications: draft.notifications,
    })
}

fn push_text(buf: &mut String, s: &str) -> Result<(), HookError> {
    if buf.len() + s.len() > MAX_TEXT_BYTES {
        return Err(bad("an element's text is too long"));
    }
    buf.push_str(s);
    Ok(())
}

/// The state an opening tag leads to.
fn enter(
    reader: &NsReader<&[u8]>,
    parent: Option<&At>,
    root_seen: bool,
    ns: Ns,
    e: &BytesStart<'_>,
    draft: &mut Draft,
) -> Result<At, HookError> {
    let local = e.local_name().as_ref().to_string();
    let Some(parent) = parent else {
        if root_seen {
            return Err(bad("malformed XML: more than one root element"));
        }
        return match (ns, local.as_str()) {
            (Ns::Soap, "Envelope") => Ok(At::Envelope),
            (_, "Envelope") => Err(bad(format!(
                "the Envelope is not in the SOAP 1.1 namespace {SOAP_ENV_NS}"
            ))),
            _ => Err(bad("the body is not a SOAP envelope")),
        };
    };
    Ok(match (parent, ns, local.as_str()) {
        (At::Envelope, Ns::Soap, "Header") => At::Header,
        (At::Envelope, Ns::Soap, "Body") => At::Body,
        (At::Body, Ns::Outbound, "notifications") => {
            if draft.saw_notifications {
                return Err(bad("more than one `notifications` element"));
            }
            draft.saw_notifications = true;
            At::Notifications
        }
        (At::Body, _, "notifications") => {
            return Err(bad(format!(
                "`notifications` is not in the namespace {OUTBOUND_NS}"
            )));
        }
        (At::Body, _, other) => {
            return Err(bad(format!(
                "unexpected `{other}` in the SOAP Body (want `notifications`)"
            )));
        }
        (At::Notifications, Ns::Outbound, "Notification") => {
            if draft.notifications.len() >= MAX_NOTIFICATIONS {
                return Err(bad(format!(
                    "more than {MAX_NOTIFICATIONS} notifications in one message"
                )));
            }
            draft.current = Some(Current::default());
            At::Notification
        }
        (At::Notifications, Ns::Outbound, name @ ("OrganizationId" | "ActionId")) => {
            At::Leaf(Box::new(At::Notifications), name.to_string())
        }
        (At::Notification, Ns::Outbound, "Id") => At::Leaf(Box::new(At::Notification), "Id".into()),
        (At::Notification, Ns::Outbound, "sObject") => {
            check_case_type(reader, e)?;
            At::SObject
        }
        (At::SObject, Ns::Sobject, name @ ("Id" | "LastModifiedDate")) => {
            At::Leaf(Box::new(At::SObject), name.to_string())
        }
        (At::Leaf(..), _, _) => return Err(bad("unexpected markup inside a value")),
        _ => At::Skip,
    })
}

/// The sObject must be `xsi:type="sf:Case"` with `sf` bound to an sObject namespace.
fn check_case_type(reader: &NsReader<&[u8]>, e: &BytesStart<'_>) -> Result<(), HookError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|e| bad(format!("malformed XML attribute: {e}")))?;
        let (ns, local) = reader.resolver().resolve_attribute(attr.key);
        let is_xsi = matches!(ns, ResolveResult::Bound(Namespace(n)) if n == XSI_NS);
        if !is_xsi || local.as_ref() != "type" {
            continue;
        }
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|_| bad("malformed xsi:type attribute"))?;
        let (name, prefix) = quick_xml::name::QName(value.as_ref()).decompose();
        let bound = reader.resolver().resolve_prefix(prefix, true);
        let in_sobject_ns = matches!(bound, ResolveResult::Bound(Namespace(n)) if is_sobject_ns(n));
        if name.as_ref() == "Case" && in_sobject_ns {
            return Ok(());
        }
        return Err(bad(format!(
            "the notification's sObject is `{}`, not a Case (sf:Case)",
            value.chars().take(64).collect::<String>()
        )));
    }
    Err(bad("the notification's sObject has no xsi:type"))
}

fn leaf(draft: &mut Draft, parent: &At, name: &str, text: &str) -> Result<(), HookError> {
    match (parent, name) {
        (At::Notifications, "OrganizationId") => draft.org = Some(text.to_string()),
        (At::Notifications, "ActionId") => draft.action = Some(text.to_string()),
        (At::Notification, "Id") => {
            if let Some(c) = &mut draft.current {
                c.id = Some(text.to_string());
            }
        }
        (At::SObject, "Id") => {
            if let Some(c) = &mut draft.current {
                c.case = Some(text.to_string());
            }
        }
        (At::SObject, "LastModifiedDate") => {
            if let Some(c) = &mut draft.current {
                c.modified = parse_datetime(text);
            }
        }
        _ => {}
    }
    Ok(())
}

fn leave(draft: &mut Draft, done: &At) -> Result<(), HookError> {
    if *done == At::Notification {
        let Current { id, case, modified } = draft.current.take().unwrap_or_default();
        let case_id = case
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("a Notification has no sObject with an sf:Id"))?;
        if !is_case_id(&case_id) {
            return Err(bad(
                "a Notification's sf:Id is not a Case id (15 or 18 characters starting with 500)",
            ));
        }
        draft.notifications.push(Notification {
            id: id.unwrap_or_default(),
            case_id,
            last_modified: modified,
        });
    }
    Ok(())
}

/// What a call asks for: judge escalated Cases, or survey solved ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseEvent {
    Escalated,
    Solved,
}

impl CaseEvent {
    /// `escalated` (the default when absent) or `solved`, any case, spaces around ignored.
    pub fn parse(value: Option<&str>) -> Result<CaseEvent, HookError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("escalated") => Ok(CaseEvent::Escalated),
            Some("solved") => Ok(CaseEvent::Solved),
            Some(other) => Err(bad(format!(
                "unknown event `{}` (known: escalated, solved)",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

/// The body of signed JSON: `{"case_id": "500..."}` or `{"case_ids": ["500...", ...]}`, with
/// an optional `"event": "escalated" | "solved"`.
pub fn parse_signed_body(body: &[u8]) -> Result<(Vec<String>, CaseEvent), HookError> {
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8 text"))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("the body must be a JSON object"))?;
    let ids: Vec<&Value> = match (obj.get("case_id"), obj.get("case_ids")) {
        (Some(id), None) => vec![id],
        (None, Some(Value::Array(ids))) => ids.iter().collect(),
        (None, Some(_)) => return Err(bad("`case_ids` must be an array")),
        (Some(_), Some(_)) => return Err(bad("send `case_id` or `case_ids`, not both")),
        (None, None) => return Err(bad("the body has no `case_id`")),
    };
    if ids.is_empty() || ids.len() > MAX_NOTIFICATIONS {
        return Err(bad(format!(
            "send 1 to {MAX_NOTIFICATIONS} Case ids, found {}",
            ids.len()
        )));
    }
    let event = match obj.get("event") {
        None => CaseEvent::Escalated,
        Some(Value::String(s)) => CaseEvent::parse(Some(s))?,
        Some(_) => return Err(bad("`event` must be a string")),
    };
    let ids = ids
        .into_iter()
        .map(|v| match v.as_str().map(str::trim) {
            Some(id) if is_case_id(id) => Ok(id.to_string()),
            _ => Err(bad(
                "a Case id must be 15 or 18 letters and digits starting with 500",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ids, event))
}

/// The inbound role: outbound messages (SOAP) and signed JSON.
impl Inbound for Salesforce {
    fn accept_event(&self, call: &Call<'_>) -> Result<CallEvent, HookError> {
        let (delivery, event) = if is_signed_json(call.headers) {
            self.accept_signed(call)?
        } else {
            self.accept_outbound(call)?
        };
        Ok(match event {
            CaseEvent::Escalated => CallEvent::Escalated(delivery),
            CaseEvent::Solved => CallEvent::Solved(delivery),
        })
    }

    /// Outbound messages take SOAP answers; signed JSON takes JSON.
    fn reply_format(&self, call: &Call<'_>) -> ReplyFormat {
        if is_signed_json(call.headers) {
            ReplyFormat::Json
        } else {
            ReplyFormat::SoapAck
        }
    }

    /// Signed JSON (Standard Webhooks) with the first of `signing_secrets`.
    fn sign(&self, body: &[u8], now: DateTime<Utc>) -> Result<Vec<(String, String)>, String> {
        let secret = self
            .cfg
            .signing_secrets
            .first()
            .ok_or("the connector has no signing_secrets (it takes outbound messages only)")?;
        let key = standard_webhooks::decode_secret(secret.expose_secret())?;
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let timestamp = now.timestamp();
        let signature = standard_webhooks::sign(&key, &id, timestamp, body);
        Ok(vec![
            (standard_webhooks::ID.to_string(), id),
            (
                standard_webhooks::TIMESTAMP.to_string(),
                timestamp.to_string(),
            ),
            (standard_webhooks::SIGNATURE.to_string(), signature),
        ])
    }
}

impl Salesforce {
    fn accept_signed(&self, call: &Call<'_>) -> Result<(Delivery, CaseEvent), HookError> {
        if self.cfg.signing_secrets.is_empty() {
            return Err(HookError::Unauthorized(
                "this connector takes no signed JSON (no signing_secrets)".into(),
            ));
        }
        let verified = standard_webhooks::verify(
            &self.cfg.signing_secrets,
            call.headers,
            call.body,
            call.now,
            self.cfg.tolerance,
        )
        .map_err(|e| HookError::Unauthorized(e.to_string()))?;
        let (ids, event) = parse_signed_body(call.body)?;
        let delivery = Delivery {
            delivery_id: Some(verified.id),
            tickets: ids
                .into_iter()
                .map(|id| TicketRef {
                    id,
                    escalated_at: verified.timestamp,
                    escalated_at_unknown: false,
                    snapshot: None,
                })
                .collect(),
        };
        Ok((delivery, event))
    }

    /// An outbound message; its endpoint URL's `&event=solved` makes it a `solved` event (a
    /// second outbound message, sent from the flow's scheduled path).
    fn accept_outbound(&self, call: &Call<'_>) -> Result<(Delivery, CaseEvent), HookError> {
        let Some(org) = &self.cfg.org_id else {
            return Err(HookError::Forbidden(
                "this connector takes no outbound messages (no organization_id)".into(),
            ));
        };
        let param = |name: &str| {
            call.query.and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            })
        };
        // Validation requires the token with `organization_id`; without one, nothing passes.
        let given = param("token").unwrap_or_default();
        let same: bool = self.cfg.endpoint_token.as_ref().is_some_and(|expected| {
            given
                .as_bytes()
                .ct_eq(expected.expose_secret().as_bytes())
                .into()
        });
        if !same {
            return Err(HookError::Unauthorized(
                "the endpoint URL's `token` is missing or wrong".into(),
            ));
        }
        let event = CaseEvent::parse(param("event").as_deref())?;
        let msg = parse_outbound(call.body)?;
        if msg.organization_id.get(..15) != Some(org.as_str()) {
            return Err(HookError::Forbidden(
                "the message comes from another Salesforce org than this connector's organization_id"
                    .into(),
            ));
        }
        let delivery = Delivery {
            delivery_id: msg.notifications.first().map(|n| n.id.clone()),
            tickets: msg
                .notifications
                .into_iter()
                .map(|n| TicketRef {
                    id: n.case_id,
                    escalated_at: n.last_modified.unwrap_or(call.now),
                    escalated_at_unknown: false,
                    snapshot: None,
                })
                .collect(),
        };
        Ok((delivery, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn envelope(org: &str, cases: &[&str]) -> String {
        let notes: String = cases
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    r#"<Notification><Id>04l00000000000{i}AAA</Id><sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>{c}</sf:Id><sf:CaseNumber>0000100{i}</sf:CaseNumber><sf:LastModifiedDate>2024-05-03T11:30:00.000Z</sf:LastModifiedDate></sObject></Notification>"#
                )
            })
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000062</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D000000000062</PartnerUrl>
   {notes}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
        )
    }

    const ORG: &str = "00D000000000062EAA";

    #[test]
    fn parses_a_batch() {
        let m =
            parse_outbound(envelope(ORG, &["500000000000001AAA", "500000000000002"]).as_bytes())
                .unwrap();
        assert_eq!(m.organization_id, ORG);
        assert_eq!(m.action_id.as_deref(), Some("04k000000000001AAA"));
        let ids: Vec<_> = m.notifications.iter().map(|n| n.case_id.as_str()).collect();
        assert_eq!(ids, ["500000000000001AAA", "500000000000002"]);
        assert_eq!(m.notifications[0].id, "04l000000000000AAA");
        assert_eq!(
            m.notifications[0].last_modified.unwrap().to_rfc3339(),
            "2024-05-03T11:30:00+00:00"
        );
    }

    #[test]
    fn any_prefixes_and_entities_in_values() {
        let xml = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><o:notifications xmlns:o="http://soap.sforce.com/2005/09/outbound"><o:OrganizationId>00D000000000062&#69;AA</o:OrganizationId><o:Notification><o:Id>x</o:Id><o:sObject xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns:s="urn:sobject.partner.soap.sforce.com" i:type="s:Case"><s:Id>500000000000001AAA</s:Id></o:sObject></o:Notification></o:notifications></e:Body></e:Envelope>"#;
        let m = parse_outbound(xml.as_bytes()).unwrap();
        assert_eq!(m.organization_id, ORG);
        assert_eq!(m.notifications[0].case_id, "500000000000001AAA");
    }

    #[test]
    fn refuses_hostile_and_malformed_xml() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>&lol2;</soapenv:Body></soapenv:Envelope>"#;
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>&xxe;</soapenv:Body></soapenv:Envelope>"#;
        let undeclared = envelope("&lol9;", &["500000000000001AAA"]);
        let wrong_ns = envelope(ORG, &["500000000000001AAA"]).replace(OUTBOUND_NS, "urn:other");
        let wrong_env = envelope(ORG, &["500000000000001AAA"]).replace(SOAP_ENV_NS, "urn:soap12");
        let account = envelope(ORG, &["500000000000001AAA"]).replace("sf:Case", "sf:Account");
        let no_id =
            envelope(ORG, &["500000000000001AAA"]).replace("<sf:Id>500000000000001AAA</sf:Id>", "");
        let not_case = envelope(ORG, &["001000000000001AAA"]);
        let none = envelope(ORG, &[]);
        let no_org = envelope("", &["500000000000001AAA"]);
        let latin1 = envelope(ORG, &["500000000000001AAA"]).replace("UTF-8", "ISO-8859-1");
        let too_many = envelope(ORG, &["500000000000001AAA"; 101]);
        let cases: Vec<(&[u8], &str)> = vec![
            (laughs.as_bytes(), "DOCTYPE"),
            (xxe.as_bytes(), "DOCTYPE"),
            (undeclared.as_bytes(), "entity reference"),
            (wrong_ns.as_bytes(), "namespace"),
            (wrong_env.as_bytes(), "SOAP 1.1 namespace"),
            (account.as_bytes(), "not a Case"),
            (no_id.as_bytes(), "no sObject with an sf:Id"),
            (not_case.as_bytes(), "not a Case id"),
            (none.as_bytes(), "no Notification"),
            (no_org.as_bytes(), "no OrganizationId"),
            (latin1.as_bytes(), "UTF-8"),
            (too_many.as_bytes(), "more than 100"),
            (b"\xff\xfe<x/>", "UTF-8"),
            (b"<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>", "ends inside"),
            (b"<a></b>", "not a SOAP envelope"),
            (b"<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body></soapenv:Bodyx></soapenv:Envelope>", "malformed XML"),
            (b"{\"case_id\": 1}", "no `notifications`"),
            (b"", "no `notifications`"),
        ];
        for (body, want) in cases {
            let err = parse_outbound(body).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{want:?} not in {err:?} for {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn signed_bodies() {
        assert_eq!(
            parse_signed_body(br#"{"case_id": " 500000000000001AAA "}"#).unwrap(),
            (vec!["500000000000001AAA".to_string()], CaseEvent::Escalated)
        );
        assert_eq!(
            parse_signed_body(br#"{"case_ids": ["500000000000001", "500000000000002AAA"]}"#)
                .unwrap()
                .0
                .len(),
            2
        );
        assert_eq!(
            parse_signed_body(br#"{"case_id": "500000000000001AAA", "event": " Solved "}"#)
                .unwrap()
                .1,
            CaseEvent::Solved
        );
        for (body, want) in [
            (&br#"{}"#[..], "no `case_id`"),
            (br#"{"case_id": "001000000000001"}"#, "starting with 500"),
            (br#"{"case_ids": []}"#, "1 to 100"),
            (br#"{"case_ids": "x"}"#, "array"),
            (b"nope", "not valid JSON"),
            (
                br#"{"case_id": "500000000000001", "event": "deleted"}"#,
                "unknown event",
            ),
            (br#"{"case_id": "500000000000001", "event": 1}"#, "a string"),
            (b"\xff", "UTF-8"),
        ] {
            let err = parse_signed_body(body).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn datetimes() {
        for s in [
            "2024-05-03T09:00:00.000+0000",
            "2024-05-03T09:00:00Z",
            "2024-05-03T09:00:00.000Z",
        ] {
            assert_eq!(
                parse_datetime(s).unwrap().to_rfc3339(),
                "2024-05-03T09:00:00+00:00",
                "{s}"
            );
        }
        assert!(parse_datetime("yesterday").is_none());
    }
}
