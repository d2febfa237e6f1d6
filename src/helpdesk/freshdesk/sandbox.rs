//! A fake Freshdesk (API v2) on loopback, following the documented shapes:
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v2/tickets?email=&updated_since=` | 200 the requester's tickets changed since then, latest change first (100 at most) |
//! | `GET /api/v2/tickets/{id}` | 200 the ticket; `include=requester,company` embeds `requester` (id, name, email, mobile, phone) and `company` (id, name) |
//! | `PUT /api/v2/tickets/{id}` | 200 the ticket; `tags` **replaces** the whole list, `custom_fields` merges by name (an unknown `cf_` answers 400), `status` sets it |
//! | `POST /api/v2/tickets/{id}/notes` | 201 the note (`body` HTML, `body_text`, `private`, `incoming`, `user_id`, `ticket_id`, ...); no `body`: 400 |
//! | `GET /api/v2/tickets/{id}/conversations` | 200 the ticket's notes, oldest first |
//! | `GET /api/v2/contacts/{id}`, `PUT /api/v2/contacts/{id}` | 200 the contact (`custom_fields` merged) |
//! | `GET /api/v2/contacts?email=` | 200 an array of contacts |
//! | `GET /api/v2/search/tickets?query="..."&page=n` | 200 `{"results", "total"}`, 30 a page, pages 1 to 10; the query in double quotes: clauses joined by `AND`, a parenthesised group of `OR`, terms `tag:'x'`, `updated_at:>'yyyy-mm-dd'` (on or after) and `{custom field}:'x'` |
//! | `GET /api/v2/search/solutions?term=` | 200 an array of articles whose title or text holds every word of the term, with `hierarchy`, `status` (1 draft, 2 published), `description`, `description_text`, times |
//! | `GET /api/v2/solutions/categories` | 200 the Solutions categories (`id`, `name`, `description`, `visible_in_portals`, times) |
//! | `GET /api/v2/solutions/categories/{id}/folders` | 200 the category's top folders (`id`, `name`, `hierarchy`, `articles_count`, `sub_folders_count`, `visibility`, times); unknown category 404 |
//! | `GET /api/v2/solutions/folders/{id}/subfolders` | 200 the folder's subfolders (as folders, with `parent_folder_id`); unknown folder 404 |
//! | `GET /api/v2/solutions/folders/{id}/articles?page=&per_page=` | 200 one page of the folder's articles in the primary language (`en`), drafts included, as the search answers them; `per_page` 30 by default, at most 100 (else 400); a `Link: <...>; rel="next"` header while a page follows; unknown folder 404 |
//! | `GET /api/v2/solutions/folders/{id}/articles/{language}` | the same for the folder's translations into a supported language (a language the account does not support: 404) |
//! | `GET /api/v2/settings/helpdesk` | 200 `primary_language` (`en`), `supported_languages` (the other languages the articles are in), `portal_languages` |
//!
//! The categories and folders are the ones the articles' `hierarchy` names (an article without
//! a folder in it is in folder `folder_id` of category `category_id`).
//!
//! Every route needs HTTP Basic `{api key}:X`, else 401 `{"code": "invalid_credentials",
//! "message": ...}`. Unknown records answer 404 with an empty body; validation errors 400
//! `{"description": "Validation failed", "errors": [{"field", "message", "code"}]}`. A
//! rate-limited call answers 429 with `Retry-After` (seconds) and the `X-RateLimit-*` headers.
//! Every update bumps `updated_at`. Every request is recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub const API_KEY: &str = "fd-api-key-8d2f61c0b7a4e935";

#[derive(Debug, Clone)]
pub struct Note {
    pub id: u64,
    pub ticket_id: u64,
    pub body: String,
    pub body_text: String,
    pub private: bool,
}

/// An answer to give instead of the real one, `times` times, to requests whose method and path
/// match: a status (429 carries `Retry-After: retry_after`).
#[derive(Debug, Clone)]
pub struct Fail {
    pub method: &'static str,
    pub path_contains: String,
    pub status: u16,
    pub retry_after: Option<u64>,
    pub times: usize,
}

impl crate::helpdesk::sandbox::Injected for Fail {
    fn target(&mut self) -> (&str, &str, &mut usize) {
        (self.method, &self.path_contains, &mut self.times)
    }
}

#[derive(Default)]
pub struct State_ {
    pub tickets: HashMap<u64, Map<String, Value>>,
    pub contacts: HashMap<u64, Map<String, Value>>,
    pub companies: HashMap<u64, String>,
    pub notes: Vec<Note>,
    /// Solutions articles as the search answers them.
    pub articles: Vec<Value>,
    pub fails: Vec<Fail>,
    /// `METHOD path` of every request, in order, with the status answered.
    pub log: Vec<(String, u16)>,
    /// A tag an agent adds to the ticket while the next note is being written (a change made
    /// after the service read the ticket).
    pub tag_during_note: Option<String>,
    /// The `query` of every ticket search.
    pub searches: Vec<String>,
    next_note: u64,
}

pub type Shared = Arc<Mutex<State_>>;

pub struct FakeFreshdesk {
    pub base: String,
    pub state: Shared,
}

impl FakeFreshdesk {
    pub async fn start(state: State_) -> FakeFreshdesk {
        let state: Shared = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/api/v2/tickets", get(list_tickets))
            .route("/api/v2/tickets/{id}", get(get_ticket).put(put_ticket))
            .route("/api/v2/tickets/{id}/notes", axum::routing::post(add_note))
            .route("/api/v2/tickets/{id}/conversations", get(conversations))
            .route("/api/v2/contacts", get(list_contacts))
            .route("/api/v2/contacts/{id}", get(get_contact).put(put_contact))
            .route("/api/v2/search/tickets", get(search_tickets))
            .route("/api/v2/search/solutions", get(search_solutions))
            .route("/api/v2/solutions/categories", get(list_categories))
            .route(
                "/api/v2/solutions/categories/{id}/folders",
                get(category_folders),
            )
            .route("/api/v2/solutions/folders/{id}/subfolders", get(subfolders))
            .route(
                "/api/v2/solutions/folders/{id}/articles",
                get(folder_articles),
            )
            .route(
                "/api/v2/solutions/folders/{id}/articles/{language}",
                get(translated_articles),
            )
            .route("/api/v2/settings/helpdesk", get(helpdesk_settings))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                authorize,
            ))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeFreshdesk { base, state }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap()
    }

    pub fn fail(&self, f: Fail) {
        self.lock().fails.push(f);
    }

    /// How many requests matched `method` and a path containing `part`.
    pub fn count(&self, method: &str, part: &str) -> usize {
        crate::helpdesk::sandbox::count(&self.lock().log, method, part)
    }

    pub fn tags(&self, ticket: u64) -> Vec<String> {
        self.lock().tickets[&ticket]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    pub fn notes_on(&self, ticket: u64) -> Vec<Note> {
        self.lock()
            .notes
            .iter()
            .filter(|n| n.ticket_id == ticket)
            .cloned()
            .collect()
    }

    /// Changes a ticket as an agent would (its `updated_at` moves).
    pub fn edit(&self, ticket: u64, field: &str, value: Value) {
        let mut s = self.lock();
        let t = s.tickets.get_mut(&ticket).unwrap();
        t.insert(field.into(), value);
        touch(t);
    }

    /// Changes Solutions article `id` in `language` as an author would: `change` edits it,
    /// and its `modified_at` and `updated_at` move to now.
    pub fn edit_article(&self, id: u64, language: &str, change: impl FnOnce(&mut Value)) {
        let mut s = self.lock();
        let a = s
            .articles
            .iter_mut()
            .find(|a| a["id"] == id && language_of(a) == language)
            .expect("the fake holds the article");
        change(a);
        a["modified_at"] = json!(now());
        a["updated_at"] = json!(now());
    }

    /// Deletes Solutions article `id`, every translation of it.
    pub fn delete_article(&self, id: u64) {
        self.lock().articles.retain(|a| a["id"] != id);
    }

    pub fn contact_field(&self, contact: u64, field: &str) -> Value {
        self.lock().contacts[&contact]["custom_fields"][field].clone()
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Moves `updated_at` on, strictly later than before (second precision).
fn touch(t: &mut Map<String, Value>) {
    let before = t
        .get("updated_at")
        .and_then(Value::as_str)
        .unwrap_or_default();
    t.insert(
        "updated_at".into(),
        json!(crate::helpdesk::zendesk::sandbox::next_stamp(before)),
    );
}

fn validation(field: &str, code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "description": "Validation failed",
            "errors": [{"field": field, "message": message, "code": code}]
        })),
    )
        .into_response()
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// Records the request; answers 401 without the API key, or an injected failure.
async fn authorize(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let line = format!("{} {}", req.method(), req.uri().path());
    let expected = format!("Basic {}", B64.encode(format!("{API_KEY}:X")));
    let authed = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    {
        let mut s = state.lock().unwrap();
        if !authed {
            s.log.push((line, 401));
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({
                    "code": "invalid_credentials",
                    "message": "You have to be logged in to perform this action."
                })),
            )
                .into_response();
        }
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        if let Some(f) = crate::helpdesk::sandbox::next_failure(&mut s.fails, &method, &path) {
            s.log.push((line, f.status));
            let status = StatusCode::from_u16(f.status).unwrap();
            let mut resp = match f.status {
                429 => (
                    status,
                    axum::Json(
                        json!({"message": "You have exceeded the limit of requests per minute"}),
                    ),
                )
                    .into_response(),
                _ => (
                    status,
                    axum::Json(json!({"code": "internal_error", "message": "Injected failure"})),
                )
                    .into_response(),
            };
            if let Some(secs) = f.retry_after {
                let h = resp.headers_mut();
                h.insert("retry-after", secs.into());
                h.insert("x-ratelimit-total", 200.into());
                h.insert("x-ratelimit-remaining", 0.into());
                h.insert("x-ratelimit-used-currentrequest", 1.into());
            }
            return resp;
        }
    }
    let resp = next.run(req).await;
    state
        .lock()
        .unwrap()
        .log
        .push((line, resp.status().as_u16()));
    resp
}

fn with_includes(s: &State_, t: &Map<String, Value>, include: &str) -> Value {
    let mut out = t.clone();
    for part in include.split(',').map(str::trim) {
        match part {
            "requester" => {
                let c = t
                    .get("requester_id")
                    .and_then(Value::as_u64)
                    .and_then(|id| s.contacts.get(&id));
                if let Some(c) = c {
                    out.insert(
                        "requester".into(),
                        json!({"id": c["id"], "name": c["name"], "email": c["email"],
                               "mobile": c["mobile"], "phone": c["phone"]}),
                    );
                }
            }
            "company" => {
                let c = t
                    .get("company_id")
                    .and_then(Value::as_u64)
                    .and_then(|id| s.companies.get(&id).map(|name| (id, name)));
                if let Some((id, name)) = c {
                    out.insert("company".into(), json!({"id": id, "name": name}));
                }
            }
            _ => {}
        }
    }
    Value::Object(out)
}

async fn get_ticket(
    State(state): State<Shared>,
    Path(id): Path<u64>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().unwrap();
    let Some(t) = s.tickets.get(&id) else {
        return not_found();
    };
    let include = q.get("include").map(String::as_str).unwrap_or("");
    for part in include.split(',').filter(|p| !p.is_empty()) {
        if !["requester", "company", "conversations", "stats"].contains(&part.trim()) {
            return validation(
                "include",
                "invalid_value",
                "It should be one of these values: 'conversations,requester,company,stats'",
            );
        }
    }
    axum::Json(with_includes(&s, t, include)).into_response()
}

async fn list_tickets(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().unwrap();
    let since = match q
        .get("updated_since")
        .map(|t| DateTime::parse_from_rfc3339(t))
    {
        None => None,
        Some(Ok(t)) => Some(t.with_timezone(&Utc)),
        Some(Err(_)) => {
            return validation(
                "updated_since",
                "invalid_date",
                "It should be in the 'valid date' format",
            );
        }
    };
    let email = q.get("email").map(|e| e.to_lowercase());
    let mut list: Vec<&Map<String, Value>> = s
        .tickets
        .values()
        .filter(|t| {
            let requester = t
                .get("requester_id")
                .and_then(Value::as_u64)
                .and_then(|id| s.contacts.get(&id))
                .and_then(|c| c.get("email"))
                .and_then(Value::as_str)
                .map(str::to_lowercase);
            email.as_ref().is_none_or(|e| requester.as_ref() == Some(e))
        })
        .filter(|t| {
            let updated = t
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(|u| DateTime::parse_from_rfc3339(u).ok());
            since.is_none_or(|since| updated.is_some_and(|u| u >= since))
        })
        .collect();
    list.sort_by(|a, b| b["updated_at"].as_str().cmp(&a["updated_at"].as_str()));
    let list: Vec<Value> = list
        .into_iter()
        .take(100)
        .map(|t| Value::Object(t.clone()))
        .collect();
    axum::Json(json!(list)).into_response()
}

async fn put_ticket(
    State(state): State<Shared>,
    Path(id): Path<u64>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    let Some(t) = s.tickets.get_mut(&id) else {
        return not_found();
    };
    let Some(fields) = body.as_object() else {
        return validation("body", "invalid_value", "Invalid JSON");
    };
    for (k, v) in fields {
        match k.as_str() {
            "tags" => {
                let Some(list) = v.as_array().filter(|l| l.iter().all(Value::is_string)) else {
                    return validation(
                        "tags",
                        "datatype_mismatch",
                        "It should be an Array of Strings",
                    );
                };
                // The update replaces the whole list.
                t.insert("tags".into(), json!(list));
            }
            "custom_fields" => {
                let Some(cf) = v.as_object() else {
                    return validation(
                        "custom_fields",
                        "datatype_mismatch",
                        "It should be a key/value pair",
                    );
                };
                let current = t
                    .get_mut("custom_fields")
                    .and_then(Value::as_object_mut)
                    .unwrap();
                for (name, value) in cf {
                    if !current.contains_key(name) {
                        return validation(
                            name,
                            "invalid_field",
                            "Unexpected/invalid field in request",
                        );
                    }
                    current.insert(name.clone(), value.clone());
                }
            }
            "status" | "priority" | "type" | "subject" => {
                t.insert(k.clone(), v.clone());
            }
            other => {
                return validation(
                    other,
                    "invalid_field",
                    "Unexpected/invalid field in request",
                );
            }
        }
    }
    touch(t);
    axum::Json(Value::Object(t.clone())).into_response()
}

/// Plain text of a note's HTML, as Freshdesk gives `body_text`.
fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let html = html.replace("<br>", "\n");
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

async fn add_note(
    State(state): State<Shared>,
    Path(id): Path<u64>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    if !s.tickets.contains_key(&id) {
        return not_found();
    }
    let Some(html) = body.get("body").and_then(Value::as_str) else {
        return validation("body", "missing_field", "It should be a/an String");
    };
    // Notes are public unless `private` says otherwise.
    let private = body
        .get("private")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(tag) = s.tag_during_note.take() {
        let t = s.tickets.get_mut(&id).unwrap();
        t["tags"].as_array_mut().unwrap().push(json!(tag));
        touch(t);
    }
    s.next_note += 1;
    let note = Note {
        id: 5000 + s.next_note,
        ticket_id: id,
        body: html.to_string(),
        body_text: html_text(html),
        private,
    };
    s.notes.push(note.clone());
    let t = s.tickets.get_mut(&id).unwrap();
    touch(t);
    (StatusCode::CREATED, axum::Json(note_json(&note))).into_response()
}

fn note_json(n: &Note) -> Value {
    json!({
        "id": n.id, "body": n.body, "body_text": n.body_text, "private": n.private,
        "incoming": false, "source": 2, "user_id": 77, "ticket_id": n.ticket_id,
        "to_emails": [], "attachments": [], "created_at": now(), "updated_at": now()
    })
}

async fn conversations(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    let s = state.lock().unwrap();
    if !s.tickets.contains_key(&id) {
        return not_found();
    }
    let list: Vec<Value> = s
        .notes
        .iter()
        .filter(|n| n.ticket_id == id)
        .map(note_json)
        .collect();
    axum::Json(json!(list)).into_response()
}

async fn get_contact(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    match state.lock().unwrap().contacts.get(&id) {
        Some(c) => axum::Json(Value::Object(c.clone())).into_response(),
        None => not_found(),
    }
}

async fn list_contacts(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().unwrap();
    let email = q.get("email").map(|e| e.to_lowercase());
    let list: Vec<Value> = s
        .contacts
        .values()
        .filter(|c| {
            email.as_ref().is_none_or(|e| {
                c.get("email")
                    .and_then(Value::as_str)
                    .map(str::to_lowercase)
                    == Some(e.clone())
            })
        })
        .map(|c| Value::Object(c.clone()))
        .collect();
    axum::Json(json!(list)).into_response()
}

async fn put_contact(
    State(state): State<Shared>,
    Path(id): Path<u64>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    let Some(c) = s.contacts.get_mut(&id) else {
        return not_found();
    };
    if let Some(cf) = body.get("custom_fields").and_then(Value::as_object) {
        let current = c
            .get_mut("custom_fields")
            .and_then(Value::as_object_mut)
            .unwrap();
        for (k, v) in cf {
            if !current.contains_key(k) {
                return validation(k, "invalid_field", "Unexpected/invalid field in request");
            }
            current.insert(k.clone(), v.clone());
        }
    }
    axum::Json(Value::Object(c.clone())).into_response()
}

/// One term of the filter query.
fn term_holds(t: &Map<String, Value>, term: &str) -> Option<bool> {
    let term = term.trim();
    let (key, value) = term.split_once(':')?;
    let unquote = |v: &str| v.trim().trim_matches('\'').to_string();
    Some(match key.trim() {
        "tag" => t["tags"]
            .as_array()?
            .iter()
            .any(|x| x.as_str() == Some(&unquote(value))),
        "updated_at" => {
            let day = unquote(value.trim().strip_prefix('>')?);
            let updated = t.get("updated_at")?.as_str()?;
            // `:>` is "greater than or equal to".
            updated[..10] >= *day.as_str()
        }
        custom => t["custom_fields"].get(format!("cf_{custom}"))?.as_str() == Some(&unquote(value)),
    })
}

async fn search_tickets(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().unwrap();
    let Some(query) = q
        .get("query")
        .and_then(|q| q.strip_prefix('"'))
        .and_then(|q| q.strip_suffix('"'))
    else {
        return validation(
            "query",
            "invalid_value",
            "It should be in the format \"query\"",
        );
    };
    let page = match q.get("page").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(p)) if (1..=10).contains(&p) => p,
        Some(_) => {
            return validation(
                "page",
                "invalid_value",
                "It should be a Positive Integer less than or equal to 10",
            );
        }
    };
    s.searches.push(query.to_string());
    let mut results = Vec::new();
    let mut ids: Vec<u64> = s.tickets.keys().copied().collect();
    ids.sort_unstable();
    for t in ids.iter().map(|id| &s.tickets[id]) {
        let mut all = true;
        for clause in query.split(" AND ") {
            let clause = clause.trim();
            let holds = match clause.strip_prefix('(').and_then(|c| c.strip_suffix(')')) {
                Some(group) => group
                    .split(" OR ")
                    .map(|term| term_holds(t, term))
                    .try_fold(false, |any, h| h.map(|h| any || h)),
                None => term_holds(t, clause),
            };
            match holds {
                Some(h) => all &= h,
                None => {
                    return validation("query", "invalid_value", "Given query is invalid");
                }
            }
        }
        if all {
            results.push(Value::Object(t.clone()));
        }
    }
    let total = results.len();
    let page: Vec<Value> = results.into_iter().skip((page - 1) * 30).take(30).collect();
    axum::Json(json!({"results": page, "total": total})).into_response()
}

async fn search_solutions(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().unwrap();
    let term = q.get("term").map(|t| t.to_lowercase()).unwrap_or_default();
    if term.trim().is_empty() {
        return validation("term", "missing_field", "It should be a/an String");
    }
    let words: Vec<&str> = term.split_whitespace().collect();
    let found: Vec<Value> = s
        .articles
        .iter()
        .filter(|a| {
            let text = format!(
                "{} {}",
                a["title"].as_str().unwrap_or(""),
                a["description_text"].as_str().unwrap_or("")
            )
            .to_lowercase();
            words.iter().all(|w| text.contains(w))
        })
        .cloned()
        .collect();
    axum::Json(json!(found)).into_response()
}

/// The account's primary language: the folder lists hold its articles (a translation is read
/// through its own language's endpoints).
const PRIMARY_LANGUAGE: &str = "en";

/// An article's language: its category's, as its `hierarchy` says.
fn language_of(a: &Value) -> &str {
    a["hierarchy"]
        .as_array()
        .and_then(|h| h.first())
        .and_then(|c| c.pointer("/data/language"))
        .and_then(Value::as_str)
        .unwrap_or(PRIMARY_LANGUAGE)
}

/// A category or folder the articles' hierarchies name.
struct Node {
    id: u64,
    name: String,
    /// The category, for a folder; `None` for a category.
    category: Option<u64>,
    parent: Option<u64>,
    /// The hierarchy down to this node.
    hierarchy: Vec<Value>,
}

/// The categories and folders of the primary language's articles, in id order.
fn tree(s: &State_) -> Vec<Node> {
    let mut nodes: std::collections::BTreeMap<(bool, u64), Node> = Default::default();
    for a in s
        .articles
        .iter()
        .filter(|a| language_of(a) == PRIMARY_LANGUAGE)
    {
        let mut chain: Vec<Value> = a["hierarchy"].as_array().cloned().unwrap_or_default();
        chain.sort_by_key(|l| l["level"].as_u64());
        if chain.is_empty() {
            chain.push(json!({"level": 0, "type": "category", "data": {"id": a["category_id"], "name": "Solutions", "language": PRIMARY_LANGUAGE}}));
        }
        if chain.len() < 2 {
            chain.push(json!({"level": 1, "type": "folder", "data": {"id": a["folder_id"], "name": "General", "language": PRIMARY_LANGUAGE}}));
        }
        let category = chain[0]["data"]["id"].as_u64().unwrap_or_default();
        for (i, level) in chain.iter().enumerate() {
            let id = level["data"]["id"].as_u64().unwrap_or_default();
            nodes.entry((i > 0, id)).or_insert_with(|| Node {
                id,
                name: level["data"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                category: (i > 0).then_some(category),
                parent: (i > 1).then(|| chain[i - 1]["data"]["id"].as_u64().unwrap_or_default()),
                hierarchy: chain[..=i].to_vec(),
            });
        }
    }
    nodes.into_values().collect()
}

const CREATED: &str = "2023-01-01T00:00:00Z";

fn folder_json(s: &State_, nodes: &[Node], f: &Node) -> Value {
    let articles = s
        .articles
        .iter()
        .filter(|a| language_of(a) == PRIMARY_LANGUAGE && a["folder_id"] == f.id)
        .count();
    let subfolders = nodes.iter().filter(|n| n.parent == Some(f.id)).count();
    let mut v = json!({
        "id": f.id, "name": f.name, "description": null, "hierarchy": f.hierarchy,
        "articles_count": articles, "sub_folders_count": subfolders, "visibility": 1,
        "created_at": CREATED, "updated_at": CREATED,
    });
    if let Some(parent) = f.parent {
        v["parent_folder_id"] = json!(parent);
    }
    v
}

async fn list_categories(State(state): State<Shared>) -> Response {
    let s = state.lock().unwrap();
    let list: Vec<Value> = tree(&s)
        .iter()
        .filter(|n| n.category.is_none())
        .map(|c| {
            json!({"id": c.id, "name": c.name, "description": null, "visible_in_portals": [],
                   "created_at": CREATED, "updated_at": CREATED})
        })
        .collect();
    axum::Json(json!(list)).into_response()
}

/// The folders under category `parent` (top folders) or folder `parent` (subfolders); 404 when
/// there is no such category or folder.
fn folders_under(state: &Shared, parent: u64, of_category: bool) -> Response {
    let s = state.lock().unwrap();
    let nodes = tree(&s);
    let exists = nodes
        .iter()
        .any(|n| n.id == parent && n.category.is_none() == of_category);
    if !exists {
        return not_found();
    }
    let list: Vec<Value> = nodes
        .iter()
        .filter(|n| match of_category {
            true => n.category == Some(parent) && n.parent.is_none(),
            false => n.parent == Some(parent),
        })
        .map(|f| folder_json(&s, &nodes, f))
        .collect();
    axum::Json(json!(list)).into_response()
}

async fn category_folders(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    folders_under(&state, id, true)
}

async fn subfolders(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    folders_under(&state, id, false)
}

/// The languages the account supports besides its primary one: those its articles are in.
fn supported_languages(s: &State_) -> Vec<String> {
    let mut languages: Vec<String> = s
        .articles
        .iter()
        .map(|a| language_of(a).to_string())
        .filter(|l| l != PRIMARY_LANGUAGE)
        .collect();
    languages.sort();
    languages.dedup();
    languages
}

async fn helpdesk_settings(State(state): State<Shared>) -> Response {
    let s = state.lock().unwrap();
    let supported = supported_languages(&s);
    axum::Json(json!({
        "primary_language": PRIMARY_LANGUAGE,
        "supported_languages": supported,
        "portal_languages": supported,
        "help_widget_languages": [],
    }))
    .into_response()
}

async fn folder_articles(
    state: State<Shared>,
    Path(id): Path<u64>,
    q: Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    articles_page(state, id, PRIMARY_LANGUAGE.into(), q, headers)
}

async fn translated_articles(
    state: State<Shared>,
    Path((id, language)): Path<(u64, String)>,
    q: Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !supported_languages(&state.lock().unwrap()).contains(&language) {
        return not_found();
    }
    articles_page(state, id, language, q, headers)
}

/// One page of folder `id`'s articles in `language`.
fn articles_page(
    State(state): State<Shared>,
    id: u64,
    language: String,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let number = |k: &str, default: usize| match q.get(k) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1),
    };
    let Some(page) = number("page", 1) else {
        return validation("page", "invalid_value", "It should be a Positive Integer");
    };
    let Some(per_page) = number("per_page", 30).filter(|n| *n <= 100) else {
        return validation(
            "per_page",
            "invalid_value",
            "It should be a Positive Integer less than or equal to 100",
        );
    };
    let s = state.lock().unwrap();
    if !tree(&s).iter().any(|n| n.id == id && n.category.is_some()) {
        return not_found();
    }
    let mut list: Vec<&Value> = s
        .articles
        .iter()
        .filter(|a| language_of(a) == language && a["folder_id"] == id)
        .collect();
    list.sort_by_key(|a| a["id"].as_u64());
    let more = list.len() > page * per_page;
    let items: Vec<Value> = list
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let mut resp = axum::Json(json!(items)).into_response();
    if more {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let path = match language.as_str() {
            PRIMARY_LANGUAGE => format!("/api/v2/solutions/folders/{id}/articles"),
            other => format!("/api/v2/solutions/folders/{id}/articles/{other}"),
        };
        let link = format!(
            "<http://{host}{path}?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        );
        resp.headers_mut()
            .insert("link", link.parse().expect("a header value"));
    }
    resp
}
