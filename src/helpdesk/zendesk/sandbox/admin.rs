//! The admin resources of the fake Zendesk, for `install zendesk`: webhooks, triggers,
//! automations, macros and user fields.
//!
//! Every request body is checked against `admin.openapi.json` (next to this file), the
//! trimmed copy of Zendesk's Support OpenAPI document (plus the Webhooks API, which Zendesk
//! documents apart): the path and method must be an operation of it, a required body must be
//! there, and the body must match its schema (`$ref`, `allOf`, `oneOf`, `type`, `nullable`,
//! `enum`, `required`; a `readOnly` property or one the schema does not name is refused). A body
//! that does not match answers 400 `{"error":"InvalidRequest"}` and is kept in
//! [`Admin::violations`], which tests assert empty.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /api/v2/webhooks` (`page[size]`, `page[after]`, `filter[name_contains]`) | 200 `{"webhooks","meta":{"has_more","after_cursor","before_cursor"},"links"}` |
//! | `POST /api/v2/webhooks` `{"webhook"}` | 201 `{"webhook"}` (string id; a new signing secret) |
//! | `GET`/`PUT`/`DELETE /api/v2/webhooks/{id}` | 200 `{"webhook"}` / 204 / 204; changing `subscriptions` answers 400 (the connection method cannot change); deleting one a trigger or automation calls answers 400 `WebhookInUse` (as Zendesk refuses it; the document lists only the 204) |
//! | `GET /api/v2/webhooks/{id}/signing_secret` | 200 `{"signing_secret":{"algorithm":"sha256","secret"}}` |
//! | `GET /api/v2/{triggers,automations,macros,user_fields}` (`page`, `per_page`) | 200 `{"<kind>s","count","next_page","previous_page"}` |
//! | `POST` (201; macros 200 as the document says), `GET`, `PUT` (200), `DELETE` (204) of one | `{"<kind>"}` |
//!
//! Zendesk's own checks: a `notification_webhook` action must name an existing webhook, an
//! automation needs a time-based condition and one on `status`, `type`, `group_id`,
//! `assignee_id` or `requester_id` (422 `RecordInvalid`), a user field's `key` is unique (422).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Page, Reply, error, not_found, record_invalid, stamp};

const SPEC: &str = include_str!("admin.openapi.json");

/// The collections served, with the key one record is wrapped in.
const KINDS: [(&str, &str); 4] = [
    ("triggers", "trigger"),
    ("automations", "automation"),
    ("macros", "macro"),
    ("user_fields", "user_field"),
];

/// Time-based automation conditions (the conditions reference's "hours since" fields).
const TIME_FIELDS: [&str; 9] = [
    "NEW",
    "OPEN",
    "PENDING",
    "SOLVED",
    "CLOSED",
    "assigned_at",
    "updated_at",
    "requester_updated_at",
    "assignee_updated_at",
];

pub struct Admin {
    spec: Value,
    webhooks: BTreeMap<String, Value>,
    secrets: BTreeMap<String, String>,
    records: BTreeMap<&'static str, BTreeMap<u64, Value>>,
    next_id: u64,
    violations: Vec<String>,
    /// The signing secret every new webhook gets instead of a random one.
    preset_secret: Option<String>,
}

impl Admin {
    pub(super) fn new() -> Admin {
        Admin {
            spec: serde_json::from_str(SPEC).expect("admin.openapi.json is JSON"),
            webhooks: BTreeMap::new(),
            secrets: BTreeMap::new(),
            records: KINDS.iter().map(|(k, _)| (*k, BTreeMap::new())).collect(),
            next_id: 50_000_000_000,
            violations: Vec::new(),
            preset_secret: None,
        }
    }

    /// Every webhook created from now on gets `secret` as its signing secret (a sandbox whose
    /// connector file holds it before `install zendesk` creates the webhook).
    pub fn hand_out_signing_secret(&mut self, secret: &str) {
        self.preset_secret = Some(secret.to_string());
    }

    /// Request bodies that did not match the document, as `METHOD path: what`.
    pub fn violations(&self) -> Vec<String> {
        self.violations.clone()
    }

    /// The records of a collection (`webhooks`, `triggers`, ...), by id order.
    pub fn list(&self, collection: &str) -> Vec<Value> {
        if collection == "webhooks" {
            return self.webhooks.values().cloned().collect();
        }
        self.records
            .get(collection)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A webhook's signing secret.
    pub fn signing_secret(&self, id: &str) -> Option<String> {
        self.secrets.get(id).cloned()
    }

    /// Seeds a record as if an admin made it in Admin Center; returns its id.
    pub fn seed(&mut self, collection: &str, record: Value) -> String {
        let Value::Object(fields) = record else {
            panic!("fake zendesk: a record is an object");
        };
        if collection == "webhooks" {
            return self.create_webhook(fields);
        }
        let key = KINDS
            .iter()
            .find(|(k, _)| *k == collection)
            .map(|(k, _)| *k)
            .expect("fake zendesk: a known collection");
        self.insert(key, fields).to_string()
    }

    fn insert(&mut self, collection: &'static str, mut fields: Map<String, Value>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let now = stamp(super::now_secs());
        fields.insert("id".into(), json!(id));
        fields.insert("created_at".into(), json!(now));
        fields.insert("updated_at".into(), json!(now));
        if let Some(title) = fields.get("title").cloned() {
            fields.entry("raw_title").or_insert(title);
        }
        fields.entry("active").or_insert(json!(true));
        let records = self.records.get_mut(collection).expect("known collection");
        fields.entry("position").or_insert(json!(records.len() + 1));
        records.insert(id, Value::Object(fields));
        id
    }

    fn create_webhook(&mut self, mut fields: Map<String, Value>) -> String {
        self.next_id += 1;
        let id = format!("01FAKEWEBHOOK{:013}", self.next_id);
        let now = stamp(super::now_secs());
        fields.insert("id".into(), json!(id));
        fields.insert("created_at".into(), json!(now));
        fields.insert("created_by".into(), json!("361900000001"));
        fields.entry("subscriptions").or_insert(json!([]));
        self.webhooks.insert(id.clone(), Value::Object(fields));
        let secret = self.preset_secret.clone().unwrap_or_else(|| {
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        });
        self.secrets.insert(id.clone(), secret);
        id
    }

    /// Serves `/api/v2/{rest}` when it is an admin route; `None` otherwise.
    pub(super) fn serve(
        &mut self,
        method: &str,
        rest: &[&str],
        query: &[(String, String)],
        body: &[u8],
        base_url: &str,
    ) -> Option<Reply> {
        let collection = *rest.first()?;
        // The record kind and its wrapper key; `None` for webhooks.
        let kind = match collection {
            "webhooks" => None,
            _ => Some(*KINDS.iter().find(|(k, _)| *k == collection)?),
        };
        let (template, wrapper) = match kind {
            None => {
                let t = match rest.len() {
                    1 => "/api/v2/webhooks",
                    2 => "/api/v2/webhooks/{webhook_id}",
                    3 if rest[2] == "signing_secret" => {
                        "/api/v2/webhooks/{webhook_id}/signing_secret"
                    }
                    _ => return None,
                };
                (t.to_string(), "webhook")
            }
            Some((kind, wrapper)) => {
                let t = match rest.len() {
                    1 => format!("/api/v2/{kind}"),
                    2 if rest[1].parse::<u64>().is_ok() => {
                        format!("/api/v2/{kind}/{{{wrapper}_id}}")
                    }
                    _ => return None,
                };
                (t, wrapper)
            }
        };
        let route = format!("{method} /api/v2/{}", rest.join("/"));
        let parsed = match self.checked(method, &template, body) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.violations.push(format!("{route}: {why}"));
                return Some(error(400, "InvalidRequest", &why));
            }
        };
        let record = parsed
            .get(wrapper)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Some(match kind {
            None => self.serve_webhooks(method, rest, query, record, base_url),
            Some((kind, wrapper)) => {
                self.serve_records(method, kind, wrapper, rest.get(1), query, record, base_url)
            }
        })
    }

    fn serve_webhooks(
        &mut self,
        method: &str,
        rest: &[&str],
        query: &[(String, String)],
        record: Map<String, Value>,
        base_url: &str,
    ) -> Reply {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        match (method, rest) {
            ("GET", [_]) => {
                let size = param("page[size]")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(20)
                    .clamp(1, 100);
                let contains = param("filter[name_contains]").unwrap_or("");
                let after = param("page[after]").unwrap_or("");
                let all: Vec<&Value> = self
                    .webhooks
                    .iter()
                    .filter(|(id, _)| after.is_empty() || id.as_str() > after)
                    .map(|(_, w)| w)
                    .filter(|w| w["name"].as_str().unwrap_or("").contains(contains))
                    .collect();
                let page: Vec<Value> = all.iter().take(size).map(|w| (*w).clone()).collect();
                let has_more = all.len() > size;
                let last = page
                    .last()
                    .and_then(|w| w["id"].as_str())
                    .map(str::to_string);
                let next = match (&last, has_more) {
                    (Some(l), true) => json!(format!(
                        "{base_url}/api/v2/webhooks?page[size]={size}&page[after]={l}"
                    )),
                    _ => Value::Null,
                };
                Reply::json(
                    200,
                    json!({
                        "webhooks": page,
                        "meta": {"has_more": has_more, "after_cursor": last, "before_cursor": null},
                        "links": {"next": next, "prev": null},
                    }),
                )
            }
            ("POST", [_]) => {
                let id = self.create_webhook(record);
                Reply::json(201, json!({"webhook": self.webhooks[&id]}))
            }
            (_, [_, id, ..]) if !self.webhooks.contains_key(*id) => webhook_not_found(),
            ("GET", [_, id]) => Reply::json(200, json!({"webhook": self.webhooks[*id]})),
            ("GET", [_, id, _]) => Reply::json(
                200,
                json!({"signing_secret": {"algorithm": "sha256", "secret": self.secrets[*id]}}),
            ),
            ("PUT", [_, id]) => {
                let current = &self.webhooks[*id];
                let was = current.get("subscriptions").cloned().unwrap_or(json!([]));
                if record.get("subscriptions").is_some_and(|s| *s != was) {
                    return Reply::json(
                        400,
                        json!({"errors": [{"code": "InvalidSubscriptions",
                            "title": "Invalid subscriptions",
                            "detail": "A webhook's connection method can't be changed"}]}),
                    );
                }
                let mut merged = current.as_object().cloned().unwrap_or_default();
                merged.extend(record);
                merged.insert("updated_at".into(), json!(stamp(super::now_secs())));
                self.webhooks
                    .insert((*id).to_string(), Value::Object(merged));
                Reply::json(204, Value::Null)
            }
            ("DELETE", [_, id]) if self.called(id) => Reply::json(
                400,
                json!({"errors": [{"code": "WebhookInUse", "title": "Webhook in use",
                    "detail": "The webhook is used by a trigger or automation and can't be deleted"}]}),
            ),
            ("DELETE", [_, id]) => {
                self.webhooks.remove(*id);
                self.secrets.remove(*id);
                Reply::json(204, Value::Null)
            }
            _ => error(405, "MethodNotAllowed", "Method not allowed"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn serve_records(
        &mut self,
        method: &str,
        collection: &'static str,
        wrapper: &str,
        id: Option<&&str>,
        query: &[(String, String)],
        record: Map<String, Value>,
        base_url: &str,
    ) -> Reply {
        let id = id.and_then(|i| i.parse::<u64>().ok());
        match (method, id) {
            ("GET", None) => {
                let items = self.list(collection);
                let count = items.len();
                let path = format!("/api/v2/{collection}");
                let (items, next, previous) =
                    Page::of(query, 100, 100).slice(items, base_url, &path, query, &[]);
                Reply::json(
                    200,
                    json!({collection: items, "count": count, "next_page": next, "previous_page": previous}),
                )
            }
            ("POST", None) => {
                if let Some(reply) = self.rejected(collection, &record, None) {
                    return reply;
                }
                let id = self.insert(collection, record);
                let status = if collection == "macros" { 200 } else { 201 };
                Reply::json(status, json!({wrapper: self.records[collection][&id]}))
            }
            (_, Some(id)) if !self.records[collection].contains_key(&id) => not_found(),
            ("GET", Some(id)) => Reply::json(200, json!({wrapper: self.records[collection][&id]})),
            ("PUT", Some(id)) => {
                if let Some(reply) = self.rejected(collection, &record, Some(id)) {
                    return reply;
                }
                let records = self.records.get_mut(collection).expect("known collection");
                let current = records.get_mut(&id).expect("checked above");
                let fields = current.as_object_mut().expect("records are objects");
                fields.extend(record);
                if let Some(title) = fields.get("title").cloned() {
                    fields.insert("raw_title".into(), title);
                }
                fields.insert("updated_at".into(), json!(stamp(super::now_secs())));
                Reply::json(200, json!({wrapper: current}))
            }
            ("DELETE", Some(id)) => {
                self.records
                    .get_mut(collection)
                    .expect("known collection")
                    .remove(&id);
                Reply::json(204, Value::Null)
            }
            _ => error(405, "MethodNotAllowed", "Method not allowed"),
        }
    }

    /// Whether a trigger or automation calls the webhook `id`.
    fn called(&self, id: &str) -> bool {
        ["triggers", "automations"]
            .iter()
            .flat_map(|c| self.records[c].values())
            .flat_map(|r| r["actions"].as_array().into_iter().flatten())
            .any(|a| a["field"] == "notification_webhook" && a["value"][0] == id)
    }

    /// Zendesk's own validation of a record beyond the document's schema.
    fn rejected(
        &self,
        collection: &str,
        record: &Map<String, Value>,
        id: Option<u64>,
    ) -> Option<Reply> {
        for action in record
            .get("actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if action["field"] == "notification_webhook" {
                let target = action["value"][0].as_str().unwrap_or("");
                if !self.webhooks.contains_key(target) {
                    return Some(record_invalid(
                        "actions",
                        &format!("Webhook {target} does not exist"),
                    ));
                }
            }
        }
        if collection == "automations" {
            let all: Vec<&Value> = record
                .get("conditions")
                .and_then(|c| c.get("all"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            let has = |fields: &[&str]| {
                all.iter()
                    .any(|c| fields.contains(&c["field"].as_str().unwrap_or("")))
            };
            if !has(&TIME_FIELDS) {
                return Some(record_invalid(
                    "base",
                    "Automations must have a time based condition",
                ));
            }
            if !has(&["status", "type", "group_id", "assignee_id", "requester_id"]) {
                return Some(record_invalid(
                    "base",
                    "Automations must have a condition that checks status, type, group, assignee or requester",
                ));
            }
        }
        if collection == "user_fields"
            && let Some(key) = record.get("key")
        {
            let taken = self.records["user_fields"]
                .iter()
                .any(|(other, f)| Some(*other) != id && f["key"] == *key);
            if taken {
                return Some(record_invalid("key", "Key has already been taken"));
            }
        }
        None
    }

    // ----- the document --------------------------------------------------------------------

    /// The body parsed and checked against the operation `method template` of the document.
    fn checked(&self, method: &str, template: &str, body: &[u8]) -> Result<Value, String> {
        let op = self
            .spec
            .pointer(&format!(
                "/paths/{}/{}",
                template.replace('~', "~0").replace('/', "~1"),
                method.to_ascii_lowercase()
            ))
            .ok_or_else(|| format!("{method} {template} is not an operation of the document"))?;
        let Some(request) = op.get("requestBody") else {
            return if body.iter().all(u8::is_ascii_whitespace) {
                Ok(Value::Null)
            } else {
                Err("the operation takes no body".into())
            };
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            return if request["required"] == true {
                Err("the request body is required".into())
            } else {
                Ok(Value::Null)
            };
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let schema = &request["content"]["application/json"]["schema"];
        let mut errors = Vec::new();
        self.check(&value, schema, "body", &mut errors);
        if errors.is_empty() {
            Ok(value)
        } else {
            Err(errors.join("; "))
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let target = self
                    .spec
                    .pointer(r.trim_start_matches('#'))
                    .unwrap_or_else(|| panic!("fake zendesk: dangling {r}"));
                self.resolve(target)
            }
            None => schema,
        }
    }

    /// The properties a schema names and the ones it requires, with its `allOf` branches.
    fn shape<'a>(
        &'a self,
        schema: &'a Value,
        props: &mut Map<String, Value>,
        required: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        if let Some(p) = schema.get("properties").and_then(Value::as_object) {
            props.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        required.extend(
            schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
        for branch in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.shape(branch, props, required);
        }
    }

    fn check(&self, value: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if value.is_null() {
            if schema["nullable"] != true {
                errors.push(format!("{at} is null"));
            }
            return;
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            let fits = branches.iter().any(|b| {
                let mut e = Vec::new();
                self.check(value, b, at, &mut e);
                e.is_empty()
            });
            if !fits {
                errors.push(format!("{at} matches none of its oneOf shapes"));
            }
            return;
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            errors.push(format!(
                "{at} = {value} is not one of {}",
                Value::from(options.clone())
            ));
        }
        let mut props = Map::new();
        let mut required = Vec::new();
        self.shape(schema, &mut props, &mut required);
        let ty = schema
            .get("type")
            .and_then(Value::as_str)
            .or(if props.is_empty() {
                None
            } else {
                Some("object")
            });
        let fits = match ty {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => true,
        };
        if !fits {
            errors.push(format!(
                "{at} should be {}, found {value}",
                ty.unwrap_or("?")
            ));
            return;
        }
        if let Value::Array(items) = value
            && let Some(item) = schema.get("items")
        {
            for (i, v) in items.iter().enumerate() {
                self.check(v, item, &format!("{at}[{i}]"), errors);
            }
        }
        let Value::Object(fields) = value else { return };
        for r in &required {
            if !fields.contains_key(r) {
                errors.push(format!("{at}.{r} is required"));
            }
        }
        let open = schema["additionalProperties"] == true || props.is_empty();
        for (k, v) in fields {
            match props.get(k) {
                Some(p) if self.resolve(p)["readOnly"] == true => {
                    errors.push(format!("{at}.{k} is read-only"));
                }
                Some(p) => self.check(v, p, &format!("{at}.{k}"), errors),
                None if !open => errors.push(format!("{at}.{k} is not a property of the document")),
                None => {}
            }
        }
    }
}

fn webhook_not_found() -> Reply {
    Reply::json(
        404,
        json!({"errors": [{"code": "WebhookNotFound", "title": "Webhook not found",
            "detail": "The webhook could not be found"}]}),
    )
}
