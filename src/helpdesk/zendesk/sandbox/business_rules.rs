//! The fake Zendesk's business rules: the triggers that run when a ticket is created or
//! updated, the automations that run on the clock, and the webhook calls their
//! `notification_webhook` actions make, signed as Zendesk signs them.
//!
//! Off by default (the tests seed rules they only read); [`Handle::deliver_webhooks`] turns it
//! on. Then, after every ticket create or update (through the API or a [`Handle`] method), the
//! active triggers run in `position` order (the trigger cycle: a trigger that fires and changes
//! the ticket starts the cycle again; each fires at most once per update), and
//! [`Handle::run_automations`] runs the active automations over every ticket that is not closed,
//! as Zendesk's hourly run does, at a clock moved forward by the hours it is given.
//!
//! Conditions served (anything else never holds):
//! - `update_type` `is` `Create` / `Change` (triggers);
//! - `status` `is`, `is_not`, `less_than`, `greater_than` (new < open < pending < hold < solved
//!   < closed), and for triggers `changed`, `not_changed`, `value`, `not_value`,
//!   `value_previous`, `not_value_previous`;
//! - `current_tags` `includes` (at least one of the space-separated tags) and `not_includes`
//!   (none of them);
//! - `type`, `priority`, `group_id`, `organization_id`, `requester_id`, `assignee_id` `is` /
//!   `is_not`;
//! - automations: `NEW`, `OPEN`, `PENDING`, `HOLD`, `SOLVED`, `CLOSED` (hours since the ticket
//!   last became that status) and `updated_at` (hours since its last update) `is`,
//!   `greater_than`, `less_than`.
//!
//! Actions served: `notification_webhook` (`[webhook id, body]`), `current_tags` (adds),
//! `remove_tags`, `set_tags`, `status`; others are left out. A webhook call is a `POST` of the
//! body with its placeholders (`{{ticket.id}}`, `{{ticket.title}}`, `{{ticket.status}}`,
//! `{{ticket.url}}`, `{{ticket.tags}}`, `{{ticket.requester.email}}`,
//! `{{ticket.requester.name}}`, `{{ticket.organization.name}}`; any other placeholder renders
//! empty) replaced as plain text, with the headers of Zendesk's "Anatomy of a webhook request",
//! signed with the documented formula ([`crate::helpdesk::zendesk::webhook::sign`], whose tests
//! hold Zendesk's vectors). Only an active webhook is called, and only on a loopback address. A
//! call that answers 409, or 429 / 503 with a `Retry-After` of at most 60 seconds, is tried
//! again, at most [`MAX_ATTEMPTS`] times; every call is kept ([`Handle::invocations`]).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use axum::http::{Method, Uri};

use super::{
    Inner, Reply, Shared, TicketRec, change, lock, parse_instant, stamp, status_rank, tags_of,
};

/// The `x-zendesk-account-id` the fake's calls carry.
pub const ACCOUNT_ID: &str = "90000001";
/// How often a call that asks to be tried again is made, the first time included.
pub const MAX_ATTEMPTS: u32 = 4;
/// Zendesk waits about 10 seconds for an answer.
const CALL_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// The longest `Retry-After` a call waits out.
const MAX_RETRY_AFTER_SECS: u64 = 60;
/// The calls kept for [`Handle::invocations`].
pub const KEPT_INVOCATIONS: usize = 500;

/// One webhook call a rule made, and how it ended.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub id: u64,
    pub webhook_id: String,
    pub ticket_id: u64,
    /// The trigger's or automation's title.
    pub rule: String,
    pub endpoint: String,
    pub body: String,
    pub at: String,
    /// The last answer's status; `None` while under way or when no answer came.
    pub status: Option<u16>,
    /// Why no answer came (refused, timed out, not a loopback endpoint).
    pub error: Option<String>,
    pub attempts: u32,
}

/// A call to make once the fake's state is unlocked.
pub(super) struct Call {
    invocation: u64,
    endpoint: String,
    secret: String,
    webhook_id: String,
    body: String,
}

/// What a ticket looked like before an update, for the triggers' `changed` conditions.
pub(super) enum Update {
    Create,
    Change { previous_status: Option<String> },
}

/// A ticket write through the API, noted before it is served so that the triggers can run on
/// it after: a create, or an update and the ticket's status before it.
pub(super) enum Written {
    Other,
    Create,
    Update {
        id: u64,
        previous_status: Option<String>,
    },
}

impl Written {
    pub(super) fn before(inner: &Inner, method: &Method, uri: &Uri) -> Written {
        let path = uri.path().trim_end_matches(".json");
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match (method.as_str(), segments.as_slice()) {
            ("POST", ["api", "v2", "tickets"]) => Written::Create,
            ("PUT", ["api", "v2", "tickets", id]) => match id.parse::<u64>() {
                Ok(id) => Written::Update {
                    id,
                    previous_status: inner.status_of(id),
                },
                Err(_) => Written::Other,
            },
            _ => Written::Other,
        }
    }

    /// Runs the triggers when the write was applied.
    pub(super) fn after(self, inner: &mut Inner, reply: &Reply) {
        if !(200..300).contains(&reply.status) {
            return;
        }
        match self {
            Written::Create => {
                if let Some(id) = reply.body["ticket"]["id"].as_u64() {
                    inner.run_triggers(id, Update::Create);
                }
            }
            Written::Update {
                id,
                previous_status,
            } => inner.run_triggers(id, Update::Change { previous_status }),
            Written::Other => {}
        }
    }
}

/// A handle on the fake's state for what runs beside its API: new tickets as end users submit
/// them, agents' updates, the business rules and their calls. Cheap to clone.
#[derive(Clone)]
pub struct Handle(pub(super) Shared);

impl Handle {
    /// Makes the triggers and automations call their webhooks (off by default).
    pub fn deliver_webhooks(&self, on: bool) {
        lock(&self.0).deliver = on;
    }

    /// Creates a ticket as an end user or partner submits it (`ticket` as for
    /// [`super::FakeZendesk::put_ticket`], without `id`); the triggers run. Returns its id.
    pub fn submit(&self, mut ticket: Value) -> u64 {
        let calls = {
            let mut inner = lock(&self.0);
            let id = inner.next_id();
            ticket["id"] = json!(id);
            inner.seed_ticket(ticket);
            inner.run_triggers(id, Update::Create);
            (id, inner.take_calls())
        };
        spawn_calls(&self.0, calls.1);
        calls.0
    }

    /// An agent solves ticket `id` (as a `PUT` with `status: solved` would); the triggers run.
    /// `false` when there is no such ticket or it is closed.
    pub fn solve(&self, id: u64) -> bool {
        let (solved, calls) = {
            let mut inner = lock(&self.0);
            let previous_status = inner.status_of(id);
            let reply = inner.update_ticket(id, br#"{"ticket": {"status": "solved"}}"#);
            let solved = reply.status == 200;
            if solved {
                inner.run_triggers(id, Update::Change { previous_status });
            }
            (solved, inner.take_calls())
        };
        spawn_calls(&self.0, calls);
        solved
    }

    /// Runs the active automations as Zendesk's hourly run would `hours_later` hours from now
    /// (time conditions are measured at that clock). Returns how many (automation, ticket)
    /// pairs fired.
    pub fn run_automations(&self, hours_later: i64) -> usize {
        let now = Utc::now() + Duration::hours(hours_later.clamp(0, 24 * 365));
        let (fired, calls) = {
            let mut inner = lock(&self.0);
            let fired = inner.run_automations(now);
            (fired, inner.take_calls())
        };
        spawn_calls(&self.0, calls);
        fired
    }

    /// The webhook calls made so far, oldest first (the last [`KEPT_INVOCATIONS`]).
    pub fn invocations(&self) -> Vec<Invocation> {
        lock(&self.0).invocations.clone()
    }

    /// The ticket as `GET /api/v2/tickets/{id}` shows it, with its comments under `comments`.
    pub fn ticket(&self, id: u64) -> Option<Value> {
        let inner = lock(&self.0);
        let rec = inner.tickets.get(&id)?;
        let mut ticket = inner.ticket_json(rec);
        ticket["comments"] = json!(rec.comments);
        Some(ticket)
    }

    /// The ids of the tickets that carry `tag`, newest first, at most `limit`.
    pub fn tagged(&self, tag: &str, limit: usize) -> Vec<u64> {
        let inner = lock(&self.0);
        inner
            .tickets
            .iter()
            .rev()
            .filter(|(_, rec)| {
                rec.fields
                    .get("tags")
                    .map(tags_of)
                    .unwrap_or_default()
                    .iter()
                    .any(|t| t == tag)
            })
            .map(|(id, _)| *id)
            .take(limit)
            .collect()
    }
}

/// Starts the calls, each on a task of its own.
pub(super) fn spawn_calls(state: &Shared, calls: Vec<Call>) {
    for call in calls {
        tokio::spawn(send(state.clone(), call));
    }
}

/// Makes one call, trying again while it asks to, and records how it ended.
async fn send(state: Shared, call: Call) {
    let client = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .user_agent("Zendesk Webhook")
        .build();
    let mut attempts = 0;
    let outcome: Result<u16, String> = loop {
        attempts += 1;
        let at = stamp(super::now_secs());
        let signature =
            crate::helpdesk::zendesk::webhook::sign(&call.secret, &at, call.body.as_bytes());
        let sent = match &client {
            Ok(c) => {
                c.post(&call.endpoint)
                    .header("content-type", "application/json")
                    .header("x-zendesk-account-id", ACCOUNT_ID)
                    .header("x-zendesk-webhook-id", &call.webhook_id)
                    .header(
                        "x-zendesk-webhook-invocation-id",
                        call.invocation.to_string(),
                    )
                    .header("x-zendesk-webhook-signature", signature)
                    .header("x-zendesk-webhook-signature-timestamp", &at)
                    .body(call.body.clone())
                    .send()
                    .await
            }
            Err(e) => break Err(format!("no HTTP client: {e}")),
        };
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) if e.is_timeout() => break Err("no answer within 10 seconds".into()),
            Err(e) => break Err(format!("not delivered: {e}")),
        };
        let status = resp.status().as_u16();
        let wait = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let again = match status {
            409 => Some(1),
            429 | 503 => wait.filter(|w| *w <= MAX_RETRY_AFTER_SECS),
            _ => None,
        };
        match again {
            Some(secs) if attempts < MAX_ATTEMPTS => {
                tokio::time::sleep(StdDuration::from_secs(secs)).await;
            }
            _ => break Ok(status),
        }
    };
    let mut inner = lock(&state);
    if let Some(i) = inner
        .invocations
        .iter_mut()
        .find(|i| i.id == call.invocation)
    {
        i.attempts = attempts;
        match outcome {
            Ok(status) => i.status = Some(status),
            Err(e) => i.error = Some(e),
        }
    }
}

/// Whether `url` is http(s) on a loopback address (where the fake calls).
fn loopback(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some_and(crate::checks::is_loopback_host)
    })
}

/// The moment a condition is measured at, and what the update changed.
struct Context<'a> {
    now: DateTime<Utc>,
    /// `None` for an automation.
    update: Option<&'a Update>,
}

impl Inner {
    fn status_of(&self, id: u64) -> Option<String> {
        self.tickets
            .get(&id)
            .and_then(|r| r.fields.get("status"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn take_calls(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.outbox)
    }

    /// The active rules of a collection (`triggers`, `automations`), in position order.
    fn active_rules(&self, collection: &str) -> Vec<Value> {
        let mut rules: Vec<Value> = self
            .admin
            .list(collection)
            .into_iter()
            .filter(|r| r["active"] != json!(false))
            .collect();
        rules.sort_by_key(|r| r["position"].as_u64().unwrap_or(u64::MAX));
        rules
    }

    /// The trigger cycle for ticket `id` after `update`.
    pub(super) fn run_triggers(&mut self, id: u64, update: Update) {
        if !self.deliver {
            return;
        }
        let triggers = self.active_rules("triggers");
        let mut fired = vec![false; triggers.len()];
        loop {
            let ctx = Context {
                now: Utc::now(),
                update: Some(&update),
            };
            let next = triggers.iter().enumerate().position(|(i, t)| {
                !fired[i]
                    && self
                        .tickets
                        .get(&id)
                        .is_some_and(|rec| self.conditions_hold(t, rec, &ctx))
            });
            let Some(i) = next else { return };
            fired[i] = true;
            self.apply(&triggers[i], id);
        }
    }

    /// One run of the automations at `now`; how many (automation, ticket) pairs fired.
    fn run_automations(&mut self, now: DateTime<Utc>) -> usize {
        if !self.deliver {
            return 0;
        }
        let ctx = Context { now, update: None };
        let mut fired = 0;
        for automation in self.active_rules("automations") {
            let ids: Vec<u64> = self
                .tickets
                .iter()
                .filter(|(_, rec)| {
                    rec.fields.get("status").and_then(Value::as_str) != Some("closed")
                })
                .filter(|(_, rec)| self.conditions_hold(&automation, rec, &ctx))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.apply(&automation, id);
                fired += 1;
            }
        }
        fired
    }

    fn conditions_hold(&self, rule: &Value, rec: &TicketRec, ctx: &Context<'_>) -> bool {
        let list = |key: &str| -> Vec<Value> {
            rule["conditions"][key]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let (all, any) = (list("all"), list("any"));
        all.iter().all(|c| self.condition_holds(c, rec, ctx))
            && (any.is_empty() || any.iter().any(|c| self.condition_holds(c, rec, ctx)))
    }

    fn condition_holds(&self, c: &Value, rec: &TicketRec, ctx: &Context<'_>) -> bool {
        let field = c["field"].as_str().unwrap_or("");
        let operator = c["operator"].as_str().unwrap_or("");
        let value = super::value_text(&c["value"]);
        let f = &rec.fields;
        let text = |k: &str| f.get(k).map(super::value_text).unwrap_or_default();
        match field {
            "update_type" => match ctx.update {
                Some(Update::Create) => operator == "is" && value.eq_ignore_ascii_case("create"),
                Some(Update::Change { .. }) => {
                    operator == "is" && value.eq_ignore_ascii_case("change")
                }
                None => false,
            },
            "status" => {
                let current = text("status");
                let previous = match ctx.update {
                    Some(Update::Change { previous_status }) => previous_status.clone(),
                    _ => None,
                };
                let changed = previous.as_ref().is_some_and(|p| *p != current);
                let rank = |s: &str| status_rank(s);
                match operator {
                    "is" => current == value,
                    "is_not" => current != value,
                    "less_than" => rank(&current) < rank(&value),
                    "greater_than" => rank(&current) > rank(&value),
                    "changed" => changed,
                    "not_changed" => !changed,
                    "value" => changed && current == value,
                    "not_value" => changed && current != value,
                    "value_previous" => changed && previous.as_deref() == Some(value.as_str()),
                    "not_value_previous" => changed && previous.as_deref() != Some(value.as_str()),
                    _ => false,
                }
            }
            "current_tags" => {
                let tags = f.get("tags").map(tags_of).unwrap_or_default();
                let wanted: Vec<&str> = value.split_whitespace().collect();
                let any = wanted.iter().any(|w| tags.iter().any(|t| t == w));
                match operator {
                    "includes" => any,
                    "not_includes" => !any,
                    _ => false,
                }
            }
            "type" | "priority" | "group_id" | "organization_id" | "requester_id"
            | "assignee_id" => {
                let current = text(field);
                match operator {
                    "is" => current == value,
                    "is_not" => current != value,
                    _ => false,
                }
            }
            "NEW" | "OPEN" | "PENDING" | "HOLD" | "SOLVED" | "CLOSED" | "updated_at"
                if ctx.update.is_none() =>
            {
                let since = if field == "updated_at" {
                    f.get("updated_at")
                        .and_then(Value::as_str)
                        .and_then(parse_instant)
                } else {
                    became(rec, &field.to_ascii_lowercase())
                };
                let (Some(since), Ok(hours)) = (since, value.trim().parse::<i64>()) else {
                    return false;
                };
                let passed = (ctx.now - since).num_hours();
                match operator {
                    "is" => passed == hours,
                    "greater_than" => passed > hours,
                    "less_than" => passed < hours,
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Applies a rule's actions to ticket `id`; whether the ticket changed.
    fn apply(&mut self, rule: &Value, id: u64) -> bool {
        let Some(rec) = self.tickets.get(&id) else {
            return false;
        };
        let mut fields = rec.fields.clone();
        let mut events = Vec::new();
        let mut tags = fields.get("tags").map(tags_of).unwrap_or_default();
        let title = super::value_text(&rule["title"]);
        for action in rule["actions"].as_array().into_iter().flatten() {
            let value = &action["value"];
            match action["field"].as_str().unwrap_or("") {
                "notification_webhook" => {
                    let webhook = super::value_text(&value[0]);
                    let body = self.render(&super::value_text(&value[1]), &fields);
                    self.queue_call(&webhook, id, &title, body);
                }
                "current_tags" => {
                    for t in tags_of(value) {
                        if !tags.contains(&t) {
                            tags.push(t);
                        }
                    }
                }
                "remove_tags" => {
                    let remove = tags_of(value);
                    tags.retain(|t| !remove.contains(t));
                }
                "set_tags" => tags = tags_of(value),
                "status" => {
                    let status = super::value_text(value);
                    if super::STATUSES.contains(&status.as_str()) {
                        change(&mut fields, &mut events, "status", json!(status));
                    }
                }
                _ => {}
            }
        }
        change(&mut fields, &mut events, "tags", json!(tags));
        if events.is_empty() {
            return false;
        }
        self.commit(id, fields, events, None, json!({}));
        true
    }

    /// A webhook call of `rule` for ticket `id`, made once the state is unlocked.
    fn queue_call(&mut self, webhook_id: &str, ticket_id: u64, rule: &str, body: String) {
        let webhook = self
            .admin
            .list("webhooks")
            .into_iter()
            .find(|w| w["id"].as_str() == Some(webhook_id));
        let endpoint = webhook
            .as_ref()
            .map(|w| super::value_text(&w["endpoint"]))
            .unwrap_or_default();
        let id = self.next_id();
        let mut invocation = Invocation {
            id,
            webhook_id: webhook_id.to_string(),
            ticket_id,
            rule: rule.to_string(),
            endpoint: endpoint.clone(),
            body: body.clone(),
            at: stamp(super::now_secs()),
            status: None,
            error: None,
            attempts: 0,
        };
        let secret = self.admin.signing_secret(webhook_id);
        match (webhook, secret) {
            (Some(w), _) if w["status"] == json!("inactive") => {
                invocation.error = Some("the webhook is inactive".into());
            }
            (Some(_), Some(secret)) if loopback(&endpoint) => self.outbox.push(Call {
                invocation: id,
                endpoint,
                secret,
                webhook_id: webhook_id.to_string(),
                body,
            }),
            (Some(_), _) => {
                invocation.error =
                    Some("not called: the sandbox calls endpoints on loopback only".into());
            }
            (None, _) => invocation.error = Some("no such webhook".into()),
        }
        self.invocations.push(invocation);
        let extra = self.invocations.len().saturating_sub(KEPT_INVOCATIONS);
        self.invocations.drain(..extra);
    }

    /// `body` with the ticket's placeholders replaced as plain text.
    fn render(&self, body: &str, fields: &Map<String, Value>) -> String {
        let text = |k: &str| fields.get(k).map(super::value_text).unwrap_or_default();
        let user = fields
            .get("requester_id")
            .and_then(Value::as_u64)
            .and_then(|id| self.users.get(&id));
        let org = fields
            .get("organization_id")
            .and_then(Value::as_u64)
            .and_then(|id| self.organizations.get(&id));
        let of = |v: Option<&Value>, k: &str| {
            v.and_then(|v| v.get(k))
                .map(super::value_text)
                .unwrap_or_default()
        };
        // Liquid renders a variable it does not know as nothing.
        crate::survey::email::fill(body, |name| {
            Some(match name {
                "ticket.id" => text("id"),
                "ticket.title" => text("subject"),
                "ticket.status" => text("status"),
                "ticket.url" => format!("{}/agent/tickets/{}", self.base_url, text("id")),
                "ticket.tags" => fields
                    .get("tags")
                    .map(tags_of)
                    .unwrap_or_default()
                    .join(" "),
                "ticket.requester.email" => of(user, "email"),
                "ticket.requester.name" => of(user, "name"),
                "ticket.organization.name" => of(org, "name"),
                _ => String::new(),
            })
        })
    }
}

/// When the ticket last became `status` (its audits' status events), if it did.
fn became(rec: &TicketRec, status: &str) -> Option<DateTime<Utc>> {
    rec.audits
        .iter()
        .filter(|a| {
            a["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["field_name"] == "status" && super::value_text(&e["value"]) == status)
        })
        .filter_map(|a| a["created_at"].as_str().and_then(parse_instant))
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_are_called() {
        assert!(loopback("http://127.0.0.1:8080/hooks/sandbox"));
        assert!(loopback("http://localhost:8080/hooks/sandbox"));
        assert!(loopback("http://[::1]:8080/hooks/sandbox"));
        assert!(!loopback("https://eg.example.com/hooks/sandbox"));
        assert!(!loopback("http://10.0.0.1/hooks/sandbox"));
        assert!(!loopback("ftp://127.0.0.1/x"));
    }
}
