//! A faithful fake of the Zendesk Support and Help Center APIs, for integration tests.
//!
//! A real HTTP server on `127.0.0.1:0` (axum 0.8 + tokio) whose state lives in memory behind
//! `Arc<Mutex<..>>`. The test seeds it ([`FakeZendesk::put_ticket`] and friends), points the
//! service at [`FakeZendesk::url`], then asserts on the state ([`FakeZendesk::ticket`],
//! [`FakeZendesk::comments`]) and on the recorded traffic ([`FakeZendesk::requests`],
//! [`FakeZendesk::count`]). Canned failures are queued with [`FakeZendesk::fail_next`];
//! [`FakeZendesk::set_down`] makes every request answer 503.
//!
//! Shapes follow `shared/specs/zendesk/support.openapi.yaml` (S) and `help-center.openapi.yaml`
//! (HC). Every path is served with and without the `.json` suffix.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /api/v2/tickets/{id}` (`?include=users,organizations` sideloads) | 200 `{"ticket"}` (S `TicketResponse`) |
//! | `POST /api/v2/tickets` `{"ticket": {..}}` (`via_followup_source_id`: a follow-up of a closed ticket; `Idempotency-Key` header, see below) | 201 `{"ticket","audit"}` |
//! | `PUT /api/v2/tickets/{id}` `{"ticket": {..}}` | 200 `{"ticket","audit"}` (S `TicketUpdateResponse`); 409 on a stale `updated_stamp` |
//! | `GET /api/v2/tickets/{id}/audits` (`sort_order`, `page`, `per_page`) | 200 `{"audits","count","next_page","previous_page"}` (S `TicketAuditsResponseNoneCursor`): a seeded ticket's history (its `audits` key, `{"created_at","events"}` each, else one audit at creation with `Create` events of its `tags` and `group_id`), then the audits of API updates; a `metadata` object on an update is its audit's `metadata.custom` |
//! | `PUT /api/v2/users/{id}` | 200 `{"user"}` |
//! | `GET /api/v2/users/search?query=` | 200 `{"users","count","next_page","previous_page"}` (S `UsersResponse`) |
//! | `GET /api/v2/search?query=` | 200 `{"results","count","next_page","previous_page","facets":null}` |
//! | `GET /api/v2/search/export?query=&filter[type]=ticket` | 200 `{"results","facets","links":{"prev","next"},"meta":{"has_more","after_cursor","before_cursor"}}` (S `SearchExportResponse`); `include=organizations` sideloads the page's organizations unless [`FakeZendesk::set_export_sideloads`] turns that off |
//! | `GET /api/v2/organizations/show_many?ids=1,2` (up to 100 ids) | 200 `{"organizations","next_page","previous_page","count"}` (S `OrganizationsResponse`): the organizations that exist, in id order; no or more than 100 ids: 400 |
//! | `GET /api/v2/help_center/articles/search` | 200 `{"results","count","next_page","previous_page","page","per_page","page_count"}` |
//! | `GET /api/v2/help_center/articles/{id}` | 200 `{"article"}` (HC `ArticleResponse`); an article restricted to a user segment only for agents; else 404 `RecordNotFound` |
//!
//! | webhooks, triggers, automations, macros, user fields | see [`admin`]: bodies checked against the trimmed OpenAPI document |
//!
//! The triggers and automations run, and call their webhooks, once
//! [`Handle::deliver_webhooks`] is on: see [`business_rules`].
//!
//! Unknown routes answer 404 `{"error":"InvalidEndpoint","description":"Not found"}`, unknown
//! records 404 `{"error":"RecordNotFound","description":"Not found"}`.
//!
//! # Authentication
//! Every `/api` route needs either HTTP Basic `{email}/token:{token}` with
//! [`FakeZendesk::api_token`], or `Authorization: Bearer` with [`FakeZendesk::bearer_token`]; otherwise
//! 401 `{"error":"Couldn't authenticate you"}`. Help Center search is "Allowed for anonymous
//! users" (HC spec): without credentials it answers, but only with articles visible to everyone
//! (`user_segment_id` null); wrong credentials still get 401. OAuth scopes are not enforced.
//!
//! # Ticket updates
//! `comment` (`html_body` wins over `body`; `public` defaults to **true** as in Zendesk, so an
//! internal note needs `"public": false`; `author_id` defaults to the API user), `tags` (set;
//! array or one string), `additional_tags`, `remove_tags`, `custom_fields` (merged by id),
//! `status` and the plain scalar fields (subject, priority, type, group_id, assignee_id, ...).
//! Tags are split on whitespace and deduplicated, not lowercased. With `safe_update` (any value:
//! S says `false` acts like `true`) and `updated_stamp`, a stamp that differs from the ticket's
//! `updated_at` answers 409 `{"error":"UpdateConflict","description":"Safe Update prevented the
//! update due to outdated ticket data. Please fetch the latest ticket data and try again."}` and
//! applies nothing. A closed ticket answers 422 `RecordInvalid`. Every update that changes something bumps
//! `updated_at` to `max(now, previous + 1 s)` (second precision, strictly increasing) and
//! answers with its audit (a `Comment` event for the comment, `Change` events for fields).
//!
//! # Idempotent ticket creation
//! As the Ticketing API's introduction documents ("Idempotency"): a `POST /api/v2/tickets` with an
//! `Idempotency-Key: {key}` header answers with `x-idempotency-lookup: miss` and keeps its answer
//! for [`IDEMPOTENCY_KEY_HOURS`]. The same key with the same body within that time creates nothing
//! and answers the first answer again, with `x-idempotency-lookup: hit`; the same key with another
//! body answers 400 `{"error":"IdempotentRequestError","description":..}`. Only a created ticket's
//! answer is kept: a refused request may be sent again with its key. Bodies are compared as JSON.
//!
//! # Search subset (`/api/v2/search`)
//! Only tickets are searchable. Tokens are separated by spaces (double quotes group a value);
//! `key:value`, `key>value`, `key<value`, `key>=value`, `key<=value`; a leading `-` negates.
//! Several positive `key:value` terms with the same key are OR-ed, everything else is AND-ed.
//! - `type:ticket` (any other type gives no results);
//! - `tags:X` / `tag:X`, `status:open` (also `status<solved` etc. in the order
//!   new < open < pending < hold < solved < closed);
//! - `requester:EMAIL` or `requester:ID`, `organization:ID`, `group:ID`,
//!   `custom_field_{id}:VALUE`;
//! - `created` / `updated` against a relative age (`24hours`, `30minutes`, `2days`, `1weeks`,
//!   `3months` = 30 days, `1years` = 365 days; `updated>24hours` = within the last 24 hours), a
//!   date `YYYY-MM-DD` (`:` that day, `>` after it, `<` before it, UTC) or an RFC 3339 instant;
//! - bare words and any other keyword are ignored (real Zendesk would match them as text).
//!
//! Results are ordered by id unless `sort_by` (`created_at`, `updated_at`, `status`,
//! `priority`, `ticket_type`) is given; `sort_order` defaults to `desc`. Offset pagination with
//! `page` and `per_page` (default and maximum 100); `count` is the total.
//!
//! # User search subset (`/api/v2/users/search`)
//! `query` is required (else 400). `email:ADDRESS` matches the address exactly
//! (case-insensitive); any other text matches users whose name or e-mail contains it, as
//! Zendesk's "partial or full value of any user property" does. Ordered by id, one page of at
//! most 100. (`external_id` is not served.)
//!
//! # Help Center search
//! At least one of `query`, `section`, `label_names` (or `category`, accepted and ignored as
//! articles carry no category here) is required, else 400 `{"errors": {..}}`. `locale` filters
//! case-insensitively; without it the default locale `en-us` is searched; `locale=*` searches
//! all. `label_names` keeps articles with all the labels. Every distinct query word must match
//! (AND, as the real search rewards short queries: a long text finds nothing). Ranking: for each
//! query word, 2 points if it starts a word of the title, 1 if it starts a word of the body (HTML
//! stripped), 1 if it is a label; ties keep id order. `sort_by`
//! (`created_at`/`updated_at`) overrides that. `snippet` is plain text around the first match
//! with the matching words in `<em>`. Drafts are never returned unless
//! [`FakeZendesk::set_search_returns_drafts`] is on (a draft "leaking" through).
//!
//! # Failures
//! [`FakeZendesk::fail_next`] queues failures for requests whose `"METHOD path"` starts with the
//! given route at a boundary (`"PUT /api/v2/tickets/7"` matches `.../7.json` and `.../7/tags`,
//! not `.../70`). A rate limit answers 429 with `Retry-After` and
//! `{"error":"APIRateLimitExceeded","description":..}`; [`Failure::Conflict`] bumps the
//! ticket's `updated_at` (another agent's update) and then serves the request normally, so a
//! `safe_update` with the old stamp meets a real 409; [`Failure::Truncated`] serves the request
//! and cuts its answer's body in half; [`Failure::LostAnswer`] serves it (an update is applied)
//! and holds the answer back longer than any client waits; [`Failure::HtmlPage`] answers 200
//! with an HTML page in place of JSON; [`Failure::Served`] answers normally, so the failures
//! queued after it hit later requests. While [`FakeZendesk::set_down`] is on,
//! every request answers 503 with `Retry-After: 1`. Failed requests are recorded too.

pub mod admin;
pub mod business_rules;

pub use business_rules::{Handle, Invocation};

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

const AGENT_EMAIL: &str = "fake-agent@example.com";
const AGENT_API_TOKEN: &str = "fake-api-token-6f1c0d2e9a";
const AGENT_USER_ID: u64 = 361_900_000_001;
const STATIC_BEARER_TOKEN: &str = "fake-oauth-access-token-3c5e";
const DEFAULT_HC_LOCALE: &str = "en-us";
const DOWN_RETRY_AFTER_SECS: u64 = 1;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const STATUSES: [&str; 6] = ["new", "open", "pending", "hold", "solved", "closed"];
/// Ticket properties a `PUT` may set as they are.
const PLAIN_TICKET_FIELDS: [&str; 13] = [
    "subject",
    "priority",
    "type",
    "group_id",
    "assignee_id",
    "organization_id",
    "requester_id",
    "brand_id",
    "external_id",
    "due_at",
    "problem_id",
    "custom_status_id",
    "ticket_form_id",
];
/// User properties a `PUT` may set as they are (`user_fields` merge, `tags` replace).
const PLAIN_USER_FIELDS: [&str; 11] = [
    "name",
    "email",
    "locale",
    "organization_id",
    "notes",
    "details",
    "role",
    "phone",
    "external_id",
    "time_zone",
    "alias",
];

/// A canned failure, queued with [`FakeZendesk::fail_next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `Retry-After: retry_after_secs` and Zendesk's rate-limit body.
    RateLimited { retry_after_secs: u64 },
    /// This status with the body Zendesk sends for it (401, 403, 404, 409, 422, 429, 500, 503
    /// have their documented bodies; others a generic `{"error","description"}`).
    Status(u16),
    /// Another agent updates the ticket first: its `updated_at` moves on, then the request is
    /// served normally (a `safe_update` with the old stamp gets 409).
    Conflict,
    /// The request is served normally, but its answer is cut off after half its body (a proxy
    /// or a connection that dropped mid-answer): the client sees a truncated JSON body.
    Truncated,
    /// The request is served normally (an update is applied), but its answer is held back for
    /// [`LOST_ANSWER_SECS`], longer than any client here waits: the answer is lost.
    LostAnswer,
    /// 200 with an HTML page instead of the API's JSON (a proxy or maintenance page in front of
    /// the API); nothing is served.
    HtmlPage,
    /// Served normally: queued first, it puts the failures after it on later requests (e.g.
    /// the second page of an export).
    Served,
}

/// How long Zendesk keeps the answer of a ticket creation under its `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_HOURS: i64 = 2;

/// The page a [`Failure::HtmlPage`] answers.
const MAINTENANCE_PAGE: &str = "<!DOCTYPE html><html><head><title>Maintenance</title></head>\
    <body><h1>We'll be back shortly</h1></body></html>";

/// How long a [`Failure::LostAnswer`] answer is held back.
pub const LOST_ANSWER_SECS: u64 = 30;

/// One request as the fake received it, with the answer's status.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The path as sent, e.g. `/api/v2/tickets/7.json`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// All headers, names lowercased; the `authorization` value reads `[redacted]`.
    pub headers: Vec<(String, String)>,
    /// The scheme of the `Authorization` header (`Basic`, `Bearer`, ...), whose value was
    /// redacted; `None` when the request carried none.
    pub auth_scheme: Option<String>,
    /// The body, as (lossy) UTF-8.
    pub body: String,
    /// The status the fake answered.
    pub status: u16,
}

impl Recorded {
    /// `"METHOD path"`, the form [`FakeZendesk::fail_next`] and [`FakeZendesk::count`] match.
    pub fn route(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The running fake; the server stops when this is dropped.
pub struct FakeZendesk {
    base_url: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

type Shared = Arc<Mutex<Inner>>;

impl FakeZendesk {
    /// Binds `127.0.0.1:0` and serves in a tokio task. Needs a tokio runtime.
    pub async fn start() -> FakeZendesk {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake zendesk: bind 127.0.0.1:0");
        FakeZendesk::start_with(listener, |_| Router::new()).expect("fake zendesk: local addr")
    }

    /// Serves on `listener` in a tokio task: the routes `pages` makes (given a [`Handle`] on
    /// the fake's state) first, the Zendesk API for every other path. Needs a tokio runtime.
    pub fn start_with(
        listener: tokio::net::TcpListener,
        pages: impl FnOnce(Handle) -> Router,
    ) -> std::io::Result<FakeZendesk> {
        let base_url = format!("http://{}", listener.local_addr()?);
        let state: Shared = Arc::new(Mutex::new(Inner::new(base_url.clone())));
        let api = Router::new().fallback(handle).with_state(state.clone());
        let app = pages(Handle(state.clone())).fallback_service(api);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeZendesk {
            base_url,
            state,
            server,
        })
    }

    /// A handle on the fake's state for the business rules and what runs beside the API.
    pub fn handle(&self) -> Handle {
        Handle(self.state.clone())
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.base_url.clone()
    }

    /// `(email, token)` accepted as Basic `{email}/token:{token}`.
    pub fn api_token(&self) -> (&str, &str) {
        (AGENT_EMAIL, AGENT_API_TOKEN)
    }

    /// An OAuth access token accepted as `Authorization: Bearer` from the start.
    pub fn bearer_token(&self) -> &str {
        STATIC_BEARER_TOKEN
    }

    /// The user id of the agent whose credentials these are (the author of what the API writes).
    pub fn agent_id(&self) -> u64 {
        AGENT_USER_ID
    }

    /// Seeds or overwrites a ticket (`id` required). Fills Zendesk's defaults (url, status
    /// `open`, `tags: []`, `custom_fields: []`, `created_at`/`updated_at` = now, via web, ...).
    /// A `comments` array is stored as the ticket's comments; without one, a non-empty
    /// `description` becomes the first, public comment by the requester, as in Zendesk.
    pub fn put_ticket(&self, ticket: Value) {
        self.lock().seed_ticket(ticket);
    }

    /// Seeds or overwrites an organization (`id` required); fills defaults.
    pub fn put_organization(&self, org: Value) {
        self.lock().seed_organization(org);
    }

    /// Seeds or overwrites a user (`id` required); fills defaults.
    pub fn put_user(&self, user: Value) {
        self.lock().seed_user(user);
    }

    /// Seeds or overwrites a Help Center article (`id` required); fills defaults (locale
    /// `en-us`, `draft: false`, urls, timestamps, `label_names: []`, ...).
    pub fn put_article(&self, article: Value) {
        self.lock().seed_article(article);
    }

    /// The ticket as `GET /api/v2/tickets/{id}` would show it. Panics if there is none.
    pub fn ticket(&self, id: u64) -> Value {
        let inner = self.lock();
        match inner.tickets.get(&id) {
            Some(rec) => inner.ticket_json(rec),
            None => panic!("fake zendesk: no ticket {id}"),
        }
    }

    /// The ticket's comments, oldest first. Panics if there is no such ticket.
    pub fn comments(&self, id: u64) -> Vec<Value> {
        match self.lock().tickets.get(&id) {
            Some(rec) => rec.comments.clone(),
            None => panic!("fake zendesk: no ticket {id}"),
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// How many requests matched `route` (`"METHOD path-prefix"`, as in [`Self::fail_next`]).
    pub fn count(&self, route: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| route_matches(route, &r.route()))
            .count()
    }

    /// Queues failures for the next requests matching `route` (e.g. `"PUT /api/v2/tickets/7"`),
    /// one failure per request, in order; later requests are served normally.
    pub fn fail_next(&self, route: &str, failures: Vec<Failure>) {
        let mut inner = self.lock();
        match inner.failures.iter_mut().find(|(r, _)| r == route) {
            Some((_, queue)) => queue.extend(failures),
            None => inner.failures.push((route.to_string(), failures.into())),
        }
    }

    /// While down, every request answers 503 with `Retry-After: 1`.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// When on, Help Center search also returns draft articles (default off: drafts never
    /// show up in search results).
    pub fn set_search_returns_drafts(&self, on: bool) {
        self.lock().search_returns_drafts = on;
    }

    /// When off, Export Search Results answers without the sideloads `include` asks for (default
    /// on). Zendesk documents the `include` parameter of search ("the available sideloads
    /// depend on the search result types") but not which ones the export honours.
    pub fn set_export_sideloads(&self, on: bool) {
        self.lock().export_sideloads = on;
    }

    /// Reads or seeds the admin resources (webhooks, triggers, ...); see [`admin`].
    pub fn admin<R>(&self, f: impl FnOnce(&mut admin::Admin) -> R) -> R {
        f(&mut self.lock().admin)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.state)
    }
}

impl Drop for FakeZendesk {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(state: &Shared) -> MutexGuard<'_, Inner> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn handle(State(state): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY_BYTES).await.unwrap_or_default();
    let (reply, calls) = {
        let mut inner = lock(&state);
        let reply = inner.process(&parts.method, &parts.uri, &parts.headers, &body);
        (reply, std::mem::take(&mut inner.outbox))
    };
    business_rules::spawn_calls(&state, calls);
    if reply.lost {
        tokio::time::sleep(std::time::Duration::from_secs(LOST_ANSWER_SECS)).await;
    }
    reply.into_response()
}

// ---------------------------------------------------------------------------------------------
// Replies

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
    /// Send only the first half of the body.
    truncated: bool,
    /// Hold the answer back ([`Failure::LostAnswer`]).
    lost: bool,
    /// An HTML page sent in place of `body` ([`Failure::HtmlPage`]).
    html: Option<&'static str>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
            truncated: false,
            lost: false,
            html: None,
        }
    }

    fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    fn into_response(self) -> Response {
        let mut text = match self.html {
            Some(page) => page.to_string(),
            None if self.status == 204 => String::new(),
            None => self.body.to_string(),
        };
        if self.truncated {
            text.truncate(text.len() / 2);
        }
        let mut response = Response::new(Body::from(text));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if self.html.is_some() {
                "text/html; charset=utf-8"
            } else {
                "application/json; charset=utf-8"
            }),
        );
        headers.insert("x-zendesk-api-version", HeaderValue::from_static("v2"));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(name, value);
            }
        }
        response
    }
}

fn error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(status, json!({"error": error, "description": description}))
}

fn unauthorized() -> Reply {
    Reply::json(401, json!({"error": "Couldn't authenticate you"}))
        .with_header("www-authenticate", "Basic realm=\"Web Password\"".into())
}

fn not_found() -> Reply {
    error(404, "RecordNotFound", "Not found")
}

fn invalid_endpoint() -> Reply {
    error(404, "InvalidEndpoint", "Not found")
}

fn bad_request(description: &str) -> Reply {
    error(400, "BadRequest", description)
}

fn update_conflict() -> Reply {
    error(
        409,
        "UpdateConflict",
        "Safe Update prevented the update due to outdated ticket data. \
         Please fetch the latest ticket data and try again.",
    )
}

fn record_invalid(field: &str, description: &str) -> Reply {
    Reply::json(
        422,
        json!({
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field: [{"description": description, "error": "InvalidValue"}]},
        }),
    )
}

fn rate_limited(retry_after_secs: u64) -> Reply {
    error(
        429,
        "APIRateLimitExceeded",
        "Number of allowed API requests per minute exceeded",
    )
    .with_header("retry-after", retry_after_secs.to_string())
    .with_header("x-rate-limit", "700".into())
    .with_header("x-rate-limit-remaining", "0".into())
}

fn unavailable(retry_after_secs: u64) -> Reply {
    error(
        503,
        "ServiceUnavailable",
        "Zendesk is temporarily unavailable. Please try again later.",
    )
    .with_header("retry-after", retry_after_secs.to_string())
}

fn canned(status: u16) -> Reply {
    match status {
        401 => unauthorized(),
        403 => error(
            403,
            "Forbidden",
            "You do not have access to this page. Please contact the account owner of this help desk for further help.",
        ),
        404 => not_found(),
        409 => update_conflict(),
        422 => record_invalid("base", "Record validation errors"),
        429 => rate_limited(DOWN_RETRY_AFTER_SECS),
        500 => error(500, "InternalServerError", "Something went wrong"),
        503 => unavailable(DOWN_RETRY_AFTER_SECS),
        other => {
            let reason = StatusCode::from_u16(other)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            error(other, reason, reason)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State

struct TicketRec {
    fields: Map<String, Value>,
    comments: Vec<Value>,
    /// The audits of updates made through the API, oldest first.
    audits: Vec<Value>,
}

enum Caller {
    Anonymous,
    Agent,
    Rejected,
}

struct Inner {
    base_url: String,
    tickets: BTreeMap<u64, TicketRec>,
    organizations: BTreeMap<u64, Value>,
    users: BTreeMap<u64, Value>,
    articles: BTreeMap<u64, Value>,
    requests: Vec<Recorded>,
    failures: Vec<(String, VecDeque<Failure>)>,
    down: bool,
    search_returns_drafts: bool,
    export_sideloads: bool,
    next_id: u64,
    admin: admin::Admin,
    /// The business rules run and call their webhooks ([`Handle::deliver_webhooks`]).
    deliver: bool,
    /// Webhook calls to make once the state is unlocked.
    outbox: Vec<business_rules::Call>,
    invocations: Vec<Invocation>,
    /// Ticket creations by `Idempotency-Key`.
    idempotent: BTreeMap<String, Kept>,
}

/// A ticket creation's answer kept under its `Idempotency-Key`.
struct Kept {
    request: Value,
    at: DateTime<Utc>,
    status: u16,
    answer: Value,
}

impl Inner {
    fn new(base_url: String) -> Inner {
        let mut inner = Inner {
            base_url,
            tickets: BTreeMap::new(),
            organizations: BTreeMap::new(),
            users: BTreeMap::new(),
            articles: BTreeMap::new(),
            requests: Vec::new(),
            failures: Vec::new(),
            down: false,
            search_returns_drafts: false,
            export_sideloads: true,
            next_id: 9_000_000_001,
            admin: admin::Admin::new(),
            idempotent: BTreeMap::new(),
            deliver: false,
            outbox: Vec::new(),
            invocations: Vec::new(),
        };
        inner.seed_user(json!({
            "id": AGENT_USER_ID,
            "name": "Fake Agent",
            "email": AGENT_EMAIL,
            "role": "admin",
        }));
        inner
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn process(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
        let route = format!("{} {}", method, uri.path());
        let written = business_rules::Written::before(self, method, uri);
        let reply = self.serve(method, uri, headers, body, &route);
        written.after(self, &reply);
        let mut auth_scheme = None;
        let recorded_headers = headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                if *name == header::AUTHORIZATION {
                    auth_scheme = value.split_whitespace().next().map(str::to_string);
                    (name.to_string(), "[redacted]".to_string())
                } else {
                    (name.to_string(), value)
                }
            })
            .collect();
        self.requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers: recorded_headers,
            auth_scheme,
            body: String::from_utf8_lossy(body).into_owned(),
            status: reply.status,
        });
        reply
    }

    fn take_failure(&mut self, route: &str) -> Option<Failure> {
        self.failures
            .iter_mut()
            .filter(|(r, queue)| !queue.is_empty() && route_matches(r, route))
            .find_map(|(_, queue)| queue.pop_front())
    }

    fn serve(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        route: &str,
    ) -> Reply {
        if self.down {
            return unavailable(DOWN_RETRY_AFTER_SECS);
        }
        let segments: Vec<String> = {
            let mut segments: Vec<String> = uri
                .path()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(percent_decode)
                .collect();
            if let Some(last) = segments.last_mut()
                && let Some(stripped) = last.strip_suffix(".json")
            {
                *last = stripped.to_string();
            }
            segments
        };
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match self.take_failure(route) {
            Some(Failure::RateLimited { retry_after_secs }) => {
                return rate_limited(retry_after_secs);
            }
            Some(Failure::Status(status)) => return canned(status),
            Some(Failure::Truncated) => {
                // Served as usual (an empty route takes no further failure), then cut.
                let mut reply = self.serve(method, uri, headers, body, "");
                reply.truncated = true;
                return reply;
            }
            Some(Failure::LostAnswer) => {
                let mut reply = self.serve(method, uri, headers, body, "");
                reply.lost = true;
                return reply;
            }
            Some(Failure::HtmlPage) => {
                return Reply {
                    html: Some(MAINTENANCE_PAGE),
                    ..Reply::json(200, Value::Null)
                };
            }
            Some(Failure::Served) => {
                return self.serve(method, uri, headers, body, "");
            }
            Some(Failure::Conflict) => {
                if let ["api", "v2", "tickets", id, ..] = segs.as_slice()
                    && let Ok(id) = id.parse::<u64>()
                {
                    self.concurrent_update(id);
                }
            }
            None => {}
        }
        let query = parse_urlencoded(uri.query().unwrap_or(""));
        let caller = self.authenticate(headers);
        if let Caller::Rejected = caller {
            return unauthorized();
        }
        let Some(rest) = segs.strip_prefix(&["api", "v2"]) else {
            return invalid_endpoint();
        };
        if rest == ["help_center", "articles", "search"] && method == Method::GET {
            return self.help_center_search(&query, matches!(caller, Caller::Agent));
        }
        // Show Article is allowed for anonymous users too (HC spec).
        if let ["help_center", "articles", id] = rest
            && method == Method::GET
        {
            let agent = matches!(caller, Caller::Agent);
            return with_id(id, |id| self.show_article(id, agent));
        }
        if let Caller::Anonymous = caller {
            return unauthorized();
        }
        if let Some(reply) = self
            .admin
            .serve(method.as_str(), rest, &query, body, &self.base_url)
        {
            return reply;
        }
        match (method.as_str(), rest) {
            ("GET", ["search"]) => self.search(&query),
            ("GET", ["search", "export"]) => self.search_export(&query),
            ("GET", ["organizations", "show_many"]) => self.show_many_organizations(&query),
            ("GET", ["users", "search"]) => self.search_users(&query),
            ("PUT", ["users", id]) => with_id(id, |id| self.update_user(id, body)),
            ("GET", ["tickets", id]) => with_id(id, |id| self.show_ticket(id, &query)),
            ("GET", ["tickets", id, "audits"]) => with_id(id, |id| self.list_audits(id, &query)),
            ("PUT", ["tickets", id]) => with_id(id, |id| self.update_ticket(id, body)),
            ("POST", ["tickets"]) => self.create_ticket_once(headers, body),
            _ => invalid_endpoint(),
        }
    }

    fn authenticate(&self, headers: &HeaderMap) -> Caller {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Caller::Anonymous;
        };
        let value = value.to_str().unwrap_or("").trim();
        let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
        let credentials = credentials.trim();
        let ok = if scheme.eq_ignore_ascii_case("basic") {
            BASE64
                .decode(credentials)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|decoded| {
                    let (user, password) = decoded.split_once(':')?;
                    let email = user.strip_suffix("/token")?;
                    Some(email.eq_ignore_ascii_case(AGENT_EMAIL) && password == AGENT_API_TOKEN)
                })
                .unwrap_or(false)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            credentials == STATIC_BEARER_TOKEN
        } else {
            false
        };
        if ok { Caller::Agent } else { Caller::Rejected }
    }

    // ----- tickets -----------------------------------------------------------------------------

    fn seed_ticket(&mut self, ticket: Value) {
        let Value::Object(mut fields) = ticket else {
            panic!("fake zendesk: a ticket must be a JSON object");
        };
        let id = fields
            .get("id")
            .and_then(Value::as_u64)
            .expect("fake zendesk: a ticket needs a numeric id");
        let now = stamp(now_secs());
        let updated_at = fields
            .get("updated_at")
            .and_then(Value::as_str)
            .map(normalize_stamp)
            .unwrap_or_else(|| now.clone());
        let created_at = fields
            .get("created_at")
            .and_then(Value::as_str)
            .map(normalize_stamp)
            .unwrap_or_else(|| updated_at.clone());
        let requester = fields.get("requester_id").cloned().unwrap_or(Value::Null);
        let subject = fields.get("subject").cloned().unwrap_or(Value::Null);
        let tags = fields.get("tags").map(tags_of).unwrap_or_default();
        let defaults = json!({
            "url": format!("{}/api/v2/tickets/{id}.json", self.base_url),
            "external_id": null,
            "type": null,
            "subject": null,
            "raw_subject": subject,
            "description": "",
            "priority": null,
            "status": "open",
            "recipient": null,
            "requester_id": requester,
            "submitter_id": requester,
            "assignee_id": null,
            "organization_id": null,
            "group_id": null,
            "brand_id": null,
            "collaborator_ids": [],
            "follower_ids": [],
            "followup_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": null,
            "problem_id": null,
            "has_incidents": false,
            "is_public": true,
            "due_at": null,
            "custom_fields": [],
            "satisfaction_rating": null,
            "sharing_agreement_ids": [],
            "ticket_form_id": null,
            "allow_channelback": false,
            "allow_attachments": true,
            "from_messaging_channel": false,
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": null}},
        });
        if let Value::Object(defaults) = defaults {
            for (key, value) in defaults {
                fields.entry(key).or_insert(value);
            }
        }
        fields.insert("id".into(), json!(id));
        fields.insert("tags".into(), json!(tags));
        fields.insert("created_at".into(), json!(created_at));
        fields.insert("updated_at".into(), json!(updated_at));
        fields.remove("fields");
        let history = match fields.remove("audits") {
            Some(Value::Array(audits)) => audits,
            _ => vec![json!({"created_at": created_at, "events": [
                {"type": "Create", "field_name": "tags", "value": tags},
                {"type": "Create", "field_name": "group_id", "value": fields.get("group_id").cloned().unwrap_or(Value::Null)},
            ]})],
        };
        let audits = history
            .into_iter()
            .map(|mut audit| {
                audit["id"] = json!(self.next_id());
                audit["ticket_id"] = json!(id);
                audit["author_id"] = json!(AGENT_USER_ID);
                audit["metadata"] = json!({"system": {}, "custom": {}});
                audit["via"] =
                    json!({"channel": "web", "source": {"from": {}, "to": {}, "rel": null}});
                for event in audit["events"].as_array_mut().into_iter().flatten() {
                    event["id"] = json!(self.next_id());
                }
                audit
            })
            .collect();
        let comments = match fields.remove("comments") {
            Some(Value::Array(comments)) => comments
                .into_iter()
                .map(|c| self.seed_comment(c, &created_at, &requester))
                .collect(),
            _ => {
                let description = fields
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if description.is_empty() {
                    Vec::new()
                } else {
                    let comment = json!({"body": description, "public": true});
                    vec![self.seed_comment(comment, &created_at, &requester)]
                }
            }
        };
        self.tickets.insert(
            id,
            TicketRec {
                fields,
                comments,
                audits,
            },
        );
    }

    fn seed_comment(&mut self, comment: Value, created_at: &str, requester: &Value) -> Value {
        let map = comment.as_object().cloned().unwrap_or_default();
        let audit_id = self.next_id();
        let mut built = self.build_comment(&map, audit_id, created_at, requester.as_u64());
        if let Some(id) = map.get("id") {
            built["id"] = id.clone();
        }
        if let Some(at) = map.get("created_at").and_then(Value::as_str) {
            built["created_at"] = json!(normalize_stamp(at));
        }
        built
    }

    /// A comment in Zendesk's shape (S `TicketCommentObject`) from a `comment` write object.
    fn build_comment(
        &mut self,
        map: &Map<String, Value>,
        audit_id: u64,
        created_at: &str,
        default_author: Option<u64>,
    ) -> Value {
        let html = map.get("html_body").and_then(Value::as_str);
        let text = map.get("body").and_then(Value::as_str);
        let (body, html_body) = match (html, text) {
            (Some(html), _) => (html_to_text(html), html.to_string()),
            (None, text) => {
                let text = text.unwrap_or("");
                (text.to_string(), text_to_html(text))
            }
        };
        let public = map.get("public").map(truthy).unwrap_or(true);
        let author = map
            .get("author_id")
            .and_then(Value::as_u64)
            .or(default_author)
            .unwrap_or(AGENT_USER_ID);
        json!({
            "id": self.next_id(),
            "type": "Comment",
            "author_id": author,
            "body": body,
            "html_body": html_body,
            "plain_body": body,
            "public": public,
            "attachments": [],
            "audit_id": audit_id,
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": null}},
            "metadata": {"system": {}, "custom": {}},
            "created_at": created_at,
        })
    }

    fn ticket_json(&self, rec: &TicketRec) -> Value {
        let mut fields = rec.fields.clone();
        let custom = fields.get("custom_fields").cloned().unwrap_or(json!([]));
        fields.insert("fields".into(), custom);
        let generated = fields
            .get("updated_at")
            .and_then(Value::as_str)
            .and_then(parse_instant)
            .map(|t| t.timestamp())
            .unwrap_or(0);
        fields.insert("generated_timestamp".into(), json!(generated));
        Value::Object(fields)
    }

    fn concurrent_update(&mut self, id: u64) {
        if let Some(rec) = self.tickets.get_mut(&id) {
            let previous = rec.fields["updated_at"].as_str().unwrap_or("").to_string();
            rec.fields
                .insert("updated_at".into(), json!(next_stamp(&previous)));
        }
    }

    fn show_ticket(&self, id: u64, query: &[(String, String)]) -> Reply {
        let Some(rec) = self.tickets.get(&id) else {
            return not_found();
        };
        let mut answer = json!({"ticket": self.ticket_json(rec)});
        let includes: Vec<String> = query_param(query, "include")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        if includes.iter().any(|i| i == "users") {
            let mut ids: Vec<u64> = ["requester_id", "submitter_id", "assignee_id"]
                .iter()
                .filter_map(|k| rec.fields.get(*k).and_then(Value::as_u64))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let users: Vec<Value> = ids
                .iter()
                .filter_map(|id| self.users.get(id).cloned())
                .collect();
            answer["users"] = json!(users);
        }
        if includes.iter().any(|i| i == "organizations") {
            let orgs: Vec<Value> = rec
                .fields
                .get("organization_id")
                .and_then(Value::as_u64)
                .and_then(|id| self.organizations.get(&id).cloned())
                .into_iter()
                .collect();
            answer["organizations"] = json!(orgs);
        }
        Reply::json(200, answer)
    }

    /// `POST /api/v2/tickets` with or without an `Idempotency-Key` (see the module's
    /// "Idempotent ticket creation").
    fn create_ticket_once(&mut self, headers: &HeaderMap, body: &[u8]) -> Reply {
        let Some(key) = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
        else {
            return self.create_ticket(body);
        };
        let request = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        let now = Utc::now();
        self.idempotent
            .retain(|_, kept| now - kept.at < Duration::hours(IDEMPOTENCY_KEY_HOURS));
        if let Some(kept) = self.idempotent.get(&key) {
            if kept.request != request {
                return error(
                    400,
                    "IdempotentRequestError",
                    "The request parameters do not match the original request with this \
                     idempotency key",
                );
            }
            return Reply::json(kept.status, kept.answer.clone())
                .with_header("x-idempotency-lookup", "hit".into());
        }
        let reply = self.create_ticket(body);
        if reply.status == 201 {
            self.idempotent.insert(
                key,
                Kept {
                    request,
                    at: now,
                    status: reply.status,
                    answer: reply.body.clone(),
                },
            );
        }
        reply.with_header("x-idempotency-lookup", "miss".into())
    }

    /// `POST /api/v2/tickets` `{"ticket": {..}}`: `comment` is required (it becomes the
    /// description; its author is the API user). With `via_followup_source_id` naming a closed
    /// ticket, the new ticket is its follow-up: it takes the source's requester and, unless the
    /// request gives `tags`, its tags, and its id joins the source's `followup_ids`; for any
    /// other ticket the parameter has no effect. 201 `{"ticket","audit"}`.
    fn create_ticket(&mut self, body: &[u8]) -> Reply {
        let Ok(payload) = serde_json::from_slice::<Value>(body) else {
            return bad_request("The request body is not valid JSON");
        };
        let Some(req) = payload.get("ticket").and_then(Value::as_object) else {
            return bad_request("ticket parameter is required");
        };
        let Some(comment) = req
            .get("comment")
            .and_then(Value::as_object)
            .filter(|c| c.get("body").or(c.get("html_body")).is_some())
        else {
            return record_invalid("comment", "Description: cannot be blank");
        };
        let status = req.get("status").and_then(Value::as_str).unwrap_or("new");
        if !STATUSES.contains(&status) {
            return record_invalid("status", "Status: is not valid");
        }
        let source = req
            .get("via_followup_source_id")
            .and_then(Value::as_u64)
            .filter(|s| {
                self.tickets.get(s).is_some_and(|r| {
                    r.fields.get("status").and_then(Value::as_str) == Some("closed")
                })
            });
        let id = self.next_id();
        let mut fields = Map::new();
        for key in PLAIN_TICKET_FIELDS {
            if let Some(value) = req.get(key) {
                fields.insert(key.into(), value.clone());
            }
        }
        let inherited = source.map(|s| self.tickets[&s].fields.clone());
        if !fields.contains_key("requester_id") {
            let requester = inherited
                .as_ref()
                .and_then(|f| f.get("requester_id").cloned())
                .unwrap_or(json!(AGENT_USER_ID));
            fields.insert("requester_id".into(), requester);
        }
        let tags = match (req.get("tags"), &inherited) {
            (Some(t), _) => tags_of(t),
            (None, Some(f)) => f.get("tags").map(tags_of).unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        fields.insert("id".into(), json!(id));
        fields.insert("status".into(), json!(status));
        fields.insert("tags".into(), json!(tags));
        if let Some(custom) = req.get("custom_fields") {
            fields.insert("custom_fields".into(), custom.clone());
        }
        let text = comment
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        fields.insert("description".into(), json!(text));
        let via = match source {
            Some(s) => {
                json!({"channel": "api", "source": {"from": {"ticket_id": s}, "to": {}, "rel": "follow_up"}})
            }
            None => json!({"channel": "api", "source": {"from": {}, "to": {}, "rel": null}}),
        };
        fields.insert("via".into(), via);
        let mut first = comment.clone();
        first.entry("author_id").or_insert(json!(AGENT_USER_ID));
        fields.insert("comments".into(), json!([Value::Object(first)]));
        let now = stamp(now_secs());
        fields.insert("created_at".into(), json!(now));
        fields.insert("updated_at".into(), json!(now));
        self.seed_ticket(Value::Object(fields));
        let audit_id = self.next_id();
        let audit = json!({
            "id": audit_id,
            "ticket_id": id,
            "created_at": now,
            "author_id": AGENT_USER_ID,
            "metadata": {"system": {}, "custom": {}},
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": null}},
            "events": [{"id": self.next_id(), "type": "Create", "field_name": "status", "value": status}],
        });
        if let Some(rec) = self.tickets.get_mut(&id) {
            rec.audits.push(audit.clone());
        }
        if let Some(rec) = source.and_then(|s| self.tickets.get_mut(&s)) {
            if let Some(Value::Array(ids)) = rec.fields.get_mut("followup_ids") {
                ids.push(json!(id));
            } else {
                rec.fields.insert("followup_ids".into(), json!([id]));
            }
        }
        let ticket = self.ticket_json(&self.tickets[&id]);
        Reply::json(201, json!({"ticket": ticket, "audit": audit}))
    }

    /// `GET /api/v2/tickets/{id}/audits` (offset pagination, `sort_order` `asc` by default).
    fn list_audits(&self, id: u64, query: &[(String, String)]) -> Reply {
        let Some(rec) = self.tickets.get(&id) else {
            return not_found();
        };
        let mut audits = rec.audits.clone();
        if query_param(query, "sort_order") == Some("desc") {
            audits.reverse();
        }
        let count = audits.len();
        let page = Page::of(query, 100, 100);
        let path = format!("/api/v2/tickets/{id}/audits.json");
        let (audits, next, previous) =
            page.slice(audits, &self.base_url, &path, query, &["sort_order"]);
        Reply::json(
            200,
            json!({"audits": audits, "count": count, "next_page": next, "previous_page": previous}),
        )
    }

    fn update_ticket(&mut self, id: u64, body: &[u8]) -> Reply {
        let Ok(payload) = serde_json::from_slice::<Value>(body) else {
            return bad_request("The request body is not valid JSON");
        };
        let Some(patch) = payload.get("ticket").and_then(Value::as_object) else {
            return bad_request("ticket parameter is required");
        };
        let Some(rec) = self.tickets.get(&id) else {
            return not_found();
        };
        if stale(&rec.fields, patch) {
            return update_conflict();
        }
        if rec.fields.get("status").and_then(Value::as_str) == Some("closed") {
            return record_invalid("status", "Status: closed prevents ticket update");
        }
        let mut fields = rec.fields.clone();
        let mut events = Vec::new();
        if let Some(status) = patch.get("status") {
            let Some(status) = status.as_str().filter(|s| STATUSES.contains(s)) else {
                return record_invalid("status", "Status: is not valid");
            };
            change(&mut fields, &mut events, "status", json!(status));
        }
        for key in PLAIN_TICKET_FIELDS {
            if let Some(value) = patch.get(key) {
                change(&mut fields, &mut events, key, value.clone());
                if key == "subject" {
                    fields.insert("raw_subject".into(), value.clone());
                }
            }
        }
        let mut tags = fields.get("tags").map(tags_of).unwrap_or_default();
        if let Some(set) = patch.get("tags") {
            tags = tags_of(set);
        }
        if let Some(add) = patch.get("additional_tags") {
            for tag in tags_of(add) {
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        if let Some(remove) = patch.get("remove_tags") {
            let remove = tags_of(remove);
            tags.retain(|t| !remove.contains(t));
        }
        change(&mut fields, &mut events, "tags", json!(tags));
        if let Some(Value::Array(updates)) = patch.get("custom_fields") {
            let mut custom = match fields.get("custom_fields") {
                Some(Value::Array(custom)) => custom.clone(),
                _ => Vec::new(),
            };
            for update in updates {
                let Some(field_id) = update.get("id").and_then(Value::as_u64) else {
                    continue;
                };
                let value = update.get("value").cloned().unwrap_or(Value::Null);
                match custom
                    .iter_mut()
                    .find(|c| c["id"].as_u64() == Some(field_id))
                {
                    Some(existing) if existing["value"] == value => {}
                    Some(existing) => {
                        events.push(json!({"type": "Change", "field_name": field_id.to_string(),
                            "value": value, "previous_value": existing["value"].clone()}));
                        existing["value"] = value;
                    }
                    None => {
                        events.push(json!({"type": "Change", "field_name": field_id.to_string(),
                            "value": value, "previous_value": null}));
                        custom.push(json!({"id": field_id, "value": value}));
                    }
                }
            }
            fields.insert("custom_fields".into(), Value::Array(custom));
        }
        let comment = patch
            .get("comment")
            .and_then(Value::as_object)
            .filter(|c| {
                ["body", "html_body"].iter().any(|k| {
                    c.get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                })
            })
            .cloned();
        let custom = match patch.get("metadata") {
            Some(Value::Object(m)) => Value::Object(m.clone()),
            _ => json!({}),
        };
        let audit = self.commit(id, fields, events, comment.as_ref(), custom);
        let ticket = self.ticket_json(&self.tickets[&id]);
        Reply::json(200, json!({"ticket": ticket, "audit": audit}))
    }

    /// Stores the new fields, appends the comment and the audit, bumps `updated_at` when
    /// anything changed; returns the audit.
    fn commit(
        &mut self,
        id: u64,
        mut fields: Map<String, Value>,
        mut events: Vec<Value>,
        comment: Option<&Map<String, Value>>,
        custom: Value,
    ) -> Value {
        let audit_id = self.next_id();
        let previous = fields["updated_at"].as_str().unwrap_or("").to_string();
        let changed = !events.is_empty() || comment.is_some();
        let now = if changed {
            next_stamp(&previous)
        } else {
            previous
        };
        let mut new_comment = None;
        if let Some(comment) = comment {
            let built = self.build_comment(comment, audit_id, &now, None);
            let mut event = built.clone();
            if let Value::Object(event) = &mut event {
                for key in ["via", "metadata", "created_at"] {
                    event.remove(key);
                }
            }
            events.insert(0, event);
            new_comment = Some(built);
        }
        for event in events.iter_mut() {
            if event.get("id").is_none() {
                event["id"] = json!(self.next_id());
            }
        }
        fields.insert("updated_at".into(), json!(now));
        let author = new_comment
            .as_ref()
            .and_then(|c| c["author_id"].as_u64())
            .unwrap_or(AGENT_USER_ID);
        let audit = json!({
            "id": audit_id,
            "ticket_id": id,
            "created_at": now,
            "author_id": author,
            "metadata": {"system": {}, "custom": custom},
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": null}},
            "events": events,
        });
        let rec = self.tickets.get_mut(&id).expect("ticket checked by caller");
        rec.fields = fields;
        rec.comments.extend(new_comment);
        rec.audits.push(audit.clone());
        audit
    }

    // ----- organizations and users -------------------------------------------------------------

    fn seed_organization(&mut self, org: Value) {
        let (id, mut fields) = object_with_id(org, "organization");
        let now = stamp(now_secs());
        let defaults = json!({
            "url": format!("{}/api/v2/organizations/{id}.json", self.base_url),
            "name": format!("Organization {id}"),
            "shared_tickets": false,
            "shared_comments": false,
            "external_id": null,
            "domain_names": [],
            "details": "",
            "notes": "",
            "group_id": null,
            "tags": [],
            "organization_fields": {},
            "created_at": now,
            "updated_at": now,
        });
        fill_defaults(&mut fields, defaults);
        self.organizations.insert(id, Value::Object(fields));
    }

    /// Show Many Organizations: `ids` (or `external_ids`) is a comma-separated list of up to
    /// 100; the organizations that exist, in id order, without paging.
    fn show_many_organizations(&self, query: &[(String, String)]) -> Reply {
        let Some(ids) = query_param(query, "ids") else {
            return bad_request("ids parameter is required");
        };
        let ids: Vec<&str> = ids.split(',').map(str::trim).collect();
        if ids.len() > 100 {
            return bad_request("at most 100 ids");
        }
        let found: Vec<Value> = self
            .organizations
            .iter()
            .filter(|(id, _)| ids.contains(&id.to_string().as_str()))
            .map(|(_, org)| org.clone())
            .collect();
        Reply::json(
            200,
            json!({"organizations": found, "next_page": null, "previous_page": null, "count": found.len()}),
        )
    }

    fn seed_user(&mut self, user: Value) {
        let (id, mut fields) = object_with_id(user, "user");
        let now = stamp(now_secs());
        let defaults = json!({
            "url": format!("{}/api/v2/users/{id}.json", self.base_url),
            "name": format!("User {id}"),
            "email": format!("user{id}@example.com"),
            "locale": "en-US",
            "locale_id": 1,
            "time_zone": "UTC",
            "organization_id": null,
            "role": "end-user",
            "verified": true,
            "active": true,
            "suspended": false,
            "external_id": null,
            "alias": null,
            "details": "",
            "notes": "",
            "phone": null,
            "tags": [],
            "user_fields": {},
            "created_at": now,
            "updated_at": now,
        });
        fill_defaults(&mut fields, defaults);
        self.users.insert(id, Value::Object(fields));
    }

    fn search_users(&self, query: &[(String, String)]) -> Reply {
        let Some(text) = query_param(query, "query") else {
            return bad_request("query parameter is required");
        };
        let text = text.trim().trim_matches('"').to_lowercase();
        let field = |u: &Value, k: &str| {
            u.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase()
        };
        let users: Vec<Value> = self
            .users
            .values()
            .filter(|u| match text.strip_prefix("email:") {
                Some(email) => field(u, "email") == email.trim_matches('"'),
                None => field(u, "email").contains(&text) || field(u, "name").contains(&text),
            })
            .take(100)
            .cloned()
            .collect();
        let count = users.len();
        Reply::json(
            200,
            json!({"users": users, "count": count, "next_page": null, "previous_page": null}),
        )
    }

    fn update_user(&mut self, id: u64, body: &[u8]) -> Reply {
        let Ok(payload) = serde_json::from_slice::<Value>(body) else {
            return bad_request("The request body is not valid JSON");
        };
        let Some(patch) = payload.get("user").and_then(Value::as_object) else {
            return bad_request("user parameter is required");
        };
        let Some(Value::Object(user)) = self.users.get_mut(&id) else {
            return not_found();
        };
        for key in PLAIN_USER_FIELDS {
            if let Some(value) = patch.get(key) {
                user.insert(key.into(), value.clone());
            }
        }
        if let Some(tags) = patch.get("tags") {
            user.insert("tags".into(), json!(tags_of(tags)));
        }
        if let Some(Value::Object(updates)) = patch.get("user_fields") {
            let entry = user.entry("user_fields").or_insert_with(|| json!({}));
            if let Value::Object(current) = entry {
                for (k, v) in updates {
                    current.insert(k.clone(), v.clone());
                }
            }
        }
        let previous = user["updated_at"].as_str().unwrap_or("").to_string();
        user.insert("updated_at".into(), json!(next_stamp(&previous)));
        Reply::json(200, json!({"user": Value::Object(user.clone())}))
    }

    // ----- search ------------------------------------------------------------------------------

    fn search(&self, query: &[(String, String)]) -> Reply {
        let Some(text) = query_param(query, "query") else {
            return bad_request("query parameter is required");
        };
        let terms = parse_search(text);
        let types: Vec<&str> = terms
            .iter()
            .filter(|t| t.key == "type" && !t.negated)
            .map(|t| t.value.as_str())
            .collect();
        let mut results: Vec<&TicketRec> = if types.is_empty() || types.contains(&"ticket") {
            self.tickets
                .values()
                .filter(|rec| self.ticket_matches(rec, &terms))
                .collect()
        } else {
            Vec::new()
        };
        if let Some(sort_by) = query_param(query, "sort_by") {
            let key = |rec: &&TicketRec| -> (i64, u64) {
                let f = &rec.fields;
                let primary = match sort_by {
                    "created_at" | "updated_at" => f
                        .get(sort_by)
                        .and_then(Value::as_str)
                        .and_then(parse_instant)
                        .map(|t| t.timestamp())
                        .unwrap_or(0),
                    "status" => f
                        .get("status")
                        .and_then(Value::as_str)
                        .map(status_rank)
                        .unwrap_or(-1),
                    "priority" => match f.get("priority").and_then(Value::as_str) {
                        Some("low") => 1,
                        Some("normal") => 2,
                        Some("high") => 3,
                        Some("urgent") => 4,
                        _ => 0,
                    },
                    "ticket_type" => match f.get("type").and_then(Value::as_str) {
                        Some("question") => 1,
                        Some("incident") => 2,
                        Some("problem") => 3,
                        Some("task") => 4,
                        _ => 0,
                    },
                    _ => 0,
                };
                (primary, f["id"].as_u64().unwrap_or(0))
            };
            results.sort_by_key(key);
            if query_param(query, "sort_order") != Some("asc") {
                results.reverse();
            }
        }
        let results: Vec<Value> = results
            .into_iter()
            .take(1000)
            .map(|rec| {
                let mut ticket = self.ticket_json(rec);
                ticket["result_type"] = json!("ticket");
                ticket
            })
            .collect();
        let total = results.len();
        let page = Page::of(query, 100, 100);
        let keep = ["query", "sort_by", "sort_order"];
        let (results, next, previous) =
            page.slice(results, &self.base_url, "/api/v2/search.json", query, &keep);
        Reply::json(
            200,
            json!({"results": results, "count": total, "next_page": next,
                   "previous_page": previous, "facets": null}),
        )
    }

    /// Export Search Results: `filter[type]` must be `ticket` and the query must not name a
    /// type; ordered by `created_at` (then id); cursor pagination with `page[size]` (default
    /// 100, at most 1000) and `page[after]` (an opaque cursor of the last result's key, so
    /// tickets added meanwhile are not skipped); `include=organizations` sideloads the page's
    /// organizations. No `count`.
    fn search_export(&self, query: &[(String, String)]) -> Reply {
        let Some(text) = query_param(query, "query") else {
            return bad_request("query parameter is required");
        };
        match query_param(query, "filter[type]") {
            Some("ticket") => {}
            Some(_) => return bad_request("only the ticket type is served here"),
            None => return bad_request("filter[type] is required"),
        }
        let terms = parse_search(text);
        if terms.iter().any(|t| t.key == "type") {
            return bad_request("type is not allowed in the query: use filter[type]");
        }
        let size = match query_param(query, "page[size]").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) if (1..=1000).contains(&n) => n,
            Some(_) => return bad_request("page[size] must be 1 to 1000"),
        };
        let after: Option<(i64, u64)> = match query_param(query, "page[after]") {
            None => None,
            Some(c) => match BASE64
                .decode(c)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|k| {
                    let (t, id) = k.split_once(':')?;
                    Some((t.parse().ok()?, id.parse().ok()?))
                }) {
                Some(key) => Some(key),
                None => return bad_request("page[after] is not a valid cursor"),
            },
        };
        let key = |rec: &TicketRec| -> (i64, u64) {
            let f = &rec.fields;
            let created = f
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(parse_instant)
                .map(|t| t.timestamp())
                .unwrap_or(0);
            (created, f["id"].as_u64().unwrap_or(0))
        };
        let mut found: Vec<((i64, u64), &TicketRec)> = self
            .tickets
            .values()
            .map(|rec| (key(rec), rec))
            .filter(|(k, _)| after.is_none_or(|a| *k > a))
            .filter(|(_, rec)| self.ticket_matches(rec, &terms))
            .collect();
        found.sort_by_key(|(k, _)| *k);
        let has_more = found.len() > size;
        found.truncate(size);
        let cursor = found
            .last()
            .map(|((t, id), _)| BASE64.encode(format!("{t}:{id}")));
        let mut answer = json!({
            "results": found.iter().map(|(_, rec)| {
                let mut ticket = self.ticket_json(rec);
                ticket["result_type"] = json!("ticket");
                ticket
            }).collect::<Vec<_>>(),
            "facets": null,
            "links": {
                "prev": null,
                "next": match (&cursor, has_more) {
                    (Some(c), true) => json!(format!(
                        "{}/api/v2/search/export.json?filter%5Btype%5D=ticket&page%5Bafter%5D={}&page%5Bsize%5D={size}&query={}",
                        self.base_url, percent_encode(c), percent_encode(text)
                    )),
                    _ => Value::Null,
                },
            },
            "meta": {"has_more": has_more, "after_cursor": cursor, "before_cursor": null},
        });
        let includes = query_param(query, "include").unwrap_or("");
        if self.export_sideloads && includes.split(',').any(|i| i.trim() == "organizations") {
            let mut ids: Vec<u64> = found
                .iter()
                .filter_map(|(_, rec)| rec.fields.get("organization_id").and_then(Value::as_u64))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            answer["organizations"] = json!(
                ids.iter()
                    .filter_map(|id| self.organizations.get(id).cloned())
                    .collect::<Vec<_>>()
            );
        }
        Reply::json(200, answer)
    }

    fn ticket_matches(&self, rec: &TicketRec, terms: &[Term]) -> bool {
        let known = |t: &&Term| t.key != "type" && self.term_applies(rec, t).is_some();
        let mut any_of: BTreeMap<&str, bool> = BTreeMap::new();
        for term in terms.iter().filter(known) {
            let hit = self.term_applies(rec, term).unwrap_or(false);
            if term.negated {
                if hit {
                    return false;
                }
            } else if term.op == Op::Eq {
                *any_of.entry(term.key.as_str()).or_insert(false) |= hit;
            } else if !hit {
                return false;
            }
        }
        any_of.values().all(|hit| *hit)
    }

    /// Whether the term holds for the ticket; `None` for terms outside the subset (ignored).
    fn term_applies(&self, rec: &TicketRec, term: &Term) -> Option<bool> {
        let f = &rec.fields;
        let value = term.value.to_lowercase();
        let id_is = |key: &str| {
            let id = f.get(key).and_then(Value::as_u64);
            if value == "none" {
                id.is_none()
            } else {
                id.map(|id| id.to_string()) == Some(value.clone())
            }
        };
        Some(match term.key.as_str() {
            "tags" | "tag" => f
                .get("tags")
                .map(tags_of)
                .unwrap_or_default()
                .iter()
                .any(|t| t.to_lowercase() == value),
            "status" => {
                let status = status_rank(f.get("status").and_then(Value::as_str).unwrap_or(""));
                term.op.compare(status.cmp(&status_rank(&value)))
            }
            "requester" => {
                let requester = f.get("requester_id").and_then(Value::as_u64);
                let email = requester
                    .and_then(|id| self.users.get(&id))
                    .and_then(|u| u.get("email"))
                    .and_then(Value::as_str)
                    .map(str::to_lowercase);
                id_is("requester_id") || email.as_deref() == Some(value.as_str())
            }
            "organization" => id_is("organization_id"),
            "group" => id_is("group_id"),
            "created" | "updated" => {
                let field = format!("{}_at", term.key);
                let at = f
                    .get(&field)
                    .and_then(Value::as_str)
                    .and_then(parse_instant)?;
                date_term_holds(at, term.op, &term.value)?
            }
            key => {
                let field_id: u64 = key.strip_prefix("custom_field_")?.parse().ok()?;
                let custom = f.get("custom_fields").and_then(Value::as_array)?;
                custom
                    .iter()
                    .filter(|c| c["id"].as_u64() == Some(field_id))
                    .any(|c| match &c["value"] {
                        Value::Array(values) => {
                            values.iter().any(|v| value_text(v).to_lowercase() == value)
                        }
                        other => value_text(other).to_lowercase() == value,
                    })
            }
        })
    }

    // ----- Help Center -------------------------------------------------------------------------

    fn seed_article(&mut self, article: Value) {
        let (id, mut fields) = object_with_id(article, "article");
        let locale = fields
            .get("locale")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_HC_LOCALE)
            .to_lowercase();
        let title = fields
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let slug: String = title
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let now = stamp(now_secs());
        let created = fields
            .get("created_at")
            .and_then(Value::as_str)
            .map(normalize_stamp)
            .unwrap_or(now);
        let updated = fields
            .get("updated_at")
            .and_then(Value::as_str)
            .map(normalize_stamp)
            .unwrap_or_else(|| created.clone());
        let defaults = json!({
            "url": format!("{}/api/v2/help_center/{locale}/articles/{id}.json", self.base_url),
            "html_url": format!("{}/hc/{locale}/articles/{id}-{slug}", self.base_url),
            "author_id": AGENT_USER_ID,
            "comments_disabled": false,
            "draft": false,
            "promoted": false,
            "position": 0,
            "vote_sum": 0,
            "vote_count": 0,
            "section_id": null,
            "user_segment_id": null,
            "permission_group_id": 1,
            "content_tag_ids": [],
            "label_names": [],
            "title": title,
            "source_locale": locale,
            "outdated": false,
            "outdated_locales": [],
            "body": "",
            "edited_at": updated,
        });
        fields.insert("locale".into(), json!(locale));
        fields.insert("created_at".into(), json!(created));
        fields.insert("updated_at".into(), json!(updated));
        fill_defaults(&mut fields, defaults);
        self.articles.insert(id, Value::Object(fields));
    }

    /// Show Article: any article for an agent, only those visible to everyone otherwise.
    fn show_article(&self, id: u64, agent: bool) -> Reply {
        match self.articles.get(&id) {
            Some(a) if agent || a["user_segment_id"].is_null() => {
                Reply::json(200, json!({"article": a}))
            }
            _ => not_found(),
        }
    }

    fn help_center_search(&self, query: &[(String, String)], agent: bool) -> Reply {
        let text = query_param(query, "query").unwrap_or("").trim();
        let section = query_param(query, "section");
        let labels: Vec<String> = query_param(query, "label_names")
            .map(|l| {
                l.split(',')
                    .map(|s| s.trim().to_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if text.is_empty()
            && section.is_none()
            && labels.is_empty()
            && query_param(query, "category").is_none()
        {
            return Reply::json(
                400,
                json!({"errors": {"query": ["At least one of query, category, section or label_names must be provided"]}}),
            );
        }
        let per_page = match query_param(query, "per_page").map(str::parse::<usize>) {
            None => 25,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            Some(_) => {
                return Reply::json(
                    400,
                    json!({"errors": {"per_page": ["must be an integer between 1 and 100"]}}),
                );
            }
        };
        let page = match query_param(query, "page").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => {
                return Reply::json(
                    400,
                    json!({"errors": {"page": ["must be an integer greater than 0"]}}),
                );
            }
        };
        let locale = query_param(query, "locale")
            .unwrap_or(DEFAULT_HC_LOCALE)
            .to_lowercase();
        let words = words_of(text);
        let mut scored: Vec<(usize, &Value)> = self
            .articles
            .values()
            .filter(|a| locale == "*" || a["locale"].as_str() == Some(locale.as_str()))
            .filter(|a| self.search_returns_drafts || a["draft"] != json!(true))
            .filter(|a| agent || a["user_segment_id"].is_null())
            .filter(|a| section.is_none_or(|s| value_text(&a["section_id"]) == s))
            .filter(|a| {
                let have: Vec<String> = a["label_names"]
                    .as_array()
                    .map(|l| l.iter().map(|v| value_text(v).to_lowercase()).collect())
                    .unwrap_or_default();
                labels.iter().all(|l| have.contains(l))
            })
            .map(|a| (article_score(a, &words), a))
            .filter(|(score, _)| words.is_empty() || *score > 0)
            .collect();
        match query_param(query, "sort_by") {
            Some(field @ ("created_at" | "updated_at")) => {
                scored.sort_by_key(|(_, a)| {
                    a[field]
                        .as_str()
                        .and_then(parse_instant)
                        .map(|t| t.timestamp())
                        .unwrap_or(0)
                });
                if query_param(query, "sort_order") != Some("asc") {
                    scored.reverse();
                }
            }
            _ => scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score)),
        }
        let results: Vec<Value> = scored
            .into_iter()
            .take(1000)
            .map(|(_, a)| {
                let mut article = a.clone();
                article["snippet"] = json!(snippet(a, &words));
                article["result_type"] = json!("article");
                article
            })
            .collect();
        let total = results.len();
        let page = Page { page, per_page };
        let keep = [
            "query",
            "locale",
            "section",
            "label_names",
            "category",
            "sort_by",
            "sort_order",
        ];
        let (results, next, previous) = page.slice(
            results,
            &self.base_url,
            "/api/v2/help_center/articles/search.json",
            query,
            &keep,
        );
        Reply::json(
            200,
            json!({
                "results": results,
                "count": total,
                "next_page": next,
                "previous_page": previous,
                "page": page.page,
                "per_page": page.per_page,
                "page_count": total.div_ceil(page.per_page),
            }),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn with_id(id: &str, f: impl FnOnce(u64) -> Reply) -> Reply {
    match id.parse::<u64>() {
        Ok(id) => f(id),
        Err(_) => not_found(),
    }
}

/// `route` (`"METHOD prefix"`) matches `actual` when it is a prefix ending at a boundary.
fn route_matches(route: &str, actual: &str) -> bool {
    actual.strip_prefix(route).is_some_and(|rest| {
        rest.is_empty() || route.ends_with('/') || rest.starts_with(['.', '/', '?'])
    })
}

fn object_with_id(value: Value, what: &str) -> (u64, Map<String, Value>) {
    let Value::Object(fields) = value else {
        panic!("fake zendesk: a {what} must be a JSON object");
    };
    let id = fields
        .get("id")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("fake zendesk: a {what} needs a numeric id"));
    (id, fields)
}

fn fill_defaults(fields: &mut Map<String, Value>, defaults: Value) {
    if let Value::Object(defaults) = defaults {
        for (key, value) in defaults {
            fields.entry(key).or_insert(value);
        }
    }
}

/// Sets `fields[key]` and records a `Change` audit event when the value differs.
fn change(fields: &mut Map<String, Value>, events: &mut Vec<Value>, key: &str, value: Value) {
    let previous = fields.get(key).cloned().unwrap_or(Value::Null);
    if previous != value {
        events.push(json!({"type": "Change", "field_name": key, "value": value,
            "previous_value": previous}));
        fields.insert(key.into(), value);
    }
}

/// A `safe_update` (any value) with an `updated_stamp` that is not the ticket's `updated_at`.
fn stale(ticket: &Map<String, Value>, patch: &Map<String, Value>) -> bool {
    if patch.get("safe_update").is_none_or(Value::is_null) {
        return false;
    }
    let Some(given) = patch.get("updated_stamp").filter(|v| !v.is_null()) else {
        return false;
    };
    let current = ticket
        .get("updated_at")
        .and_then(Value::as_str)
        .and_then(parse_instant);
    let given = given.as_str().and_then(parse_instant);
    match (current, given) {
        (Some(current), Some(given)) => current.timestamp() != given.timestamp(),
        _ => true,
    }
}

fn tags_of(value: &Value) -> Vec<String> {
    let raw: Vec<String> = match value {
        Value::Array(items) => items.iter().map(value_text).collect(),
        Value::Null => Vec::new(),
        other => vec![value_text(other)],
    };
    let mut tags: Vec<String> = Vec::new();
    for tag in raw.iter().flat_map(|t| t.split_whitespace()) {
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    tags
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => !matches!(s.as_str(), "false" | "0" | ""),
        Value::Number(n) => n.as_i64() != Some(0),
        _ => false,
    }
}

fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn status_rank(status: &str) -> i64 {
    STATUSES
        .iter()
        .position(|s| s.eq_ignore_ascii_case(status))
        .map(|p| p as i64)
        .unwrap_or(-1)
}

// ----- time ------------------------------------------------------------------------------------

fn now_secs() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default()
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn normalize_stamp(text: &str) -> String {
    parse_instant(text)
        .map(|t| stamp(DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()))
        .unwrap_or_else(|| text.to_string())
}

/// `max(now, previous + 1 s)`: strictly increasing at second precision, so two changes within
/// one second still move `updated_at` (the fake Freshdesk uses it too).
pub fn next_stamp(previous: &str) -> String {
    let now = now_secs();
    let next = match parse_instant(previous) {
        Some(previous) if previous + Duration::seconds(1) > now => previous + Duration::seconds(1),
        _ => now,
    };
    stamp(next)
}

// ----- search query language -------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Lt,
    Ge,
    Le,
}

impl Op {
    fn compare(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Op::Eq => ordering == Equal,
            Op::Gt => ordering == Greater,
            Op::Lt => ordering == Less,
            Op::Ge => ordering != Less,
            Op::Le => ordering != Greater,
        }
    }
}

struct Term {
    negated: bool,
    key: String,
    op: Op,
    value: String,
}

fn parse_search(text: &str) -> Vec<Term> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
        .into_iter()
        .filter_map(|token| {
            let (negated, token) = match token.strip_prefix('-') {
                Some(rest) => (true, rest.to_string()),
                None => (false, token),
            };
            let at = token.find([':', '<', '>'])?;
            let (key, rest) = token.split_at(at);
            let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
                (Op::Ge, v)
            } else if let Some(v) = rest.strip_prefix("<=") {
                (Op::Le, v)
            } else if let Some(v) = rest.strip_prefix('>') {
                (Op::Gt, v)
            } else if let Some(v) = rest.strip_prefix('<') {
                (Op::Lt, v)
            } else {
                (Op::Eq, &rest[1..])
            };
            Some(Term {
                negated,
                key: key.to_lowercase(),
                op,
                value: value.to_string(),
            })
        })
        .collect()
}

/// `created`/`updated` terms: a relative age, a date or an instant. `None` if unparseable.
fn date_term_holds(at: DateTime<Utc>, op: Op, value: &str) -> Option<bool> {
    let value = value.trim().to_lowercase();
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    let unit = &value[digits.len()..];
    if !digits.is_empty() && !unit.is_empty() && unit.chars().all(|c| c.is_ascii_alphabetic()) {
        let n: i64 = digits.parse().ok()?;
        // An age past any calendar is out of the subset (ignored), not a panic.
        let span = match unit.trim_end_matches('s') {
            "minute" | "min" => Duration::try_minutes(n),
            "hour" | "h" => Duration::try_hours(n),
            "day" | "d" => Duration::try_days(n),
            "week" | "w" => Duration::try_weeks(n),
            "month" => Duration::try_days(n.checked_mul(30)?),
            "year" => Duration::try_days(n.checked_mul(365)?),
            _ => return None,
        }?;
        let threshold = Utc::now().checked_sub_signed(span)?;
        // `updated>24hours`: within the last 24 hours; `updated<24hours`: longer ago.
        let op = if op == Op::Eq { Op::Gt } else { op };
        return Some(op.compare(at.cmp(&threshold)));
    }
    if let Ok(date) = NaiveDate::parse_from_str(&value, "%Y-%m-%d") {
        let start = date.and_hms_opt(0, 0, 0)?.and_utc();
        let end = start.checked_add_signed(Duration::days(1))?;
        return Some(match op {
            Op::Eq => at >= start && at < end,
            Op::Gt => at >= end,
            Op::Ge => at >= start,
            Op::Lt => at < start,
            Op::Le => at < end,
        });
    }
    let instant = parse_instant(&value)?;
    Some(op.compare(at.timestamp().cmp(&instant.timestamp())))
}

// ----- Help Center ranking -----------------------------------------------------------------------

fn words_of(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !words.iter().any(|w| w == word) {
            words.push(word.to_string());
        }
    }
    words
}

/// Whether some word of `text` starts with `term` (Zendesk matches prefixes, not infixes).
fn has_word_starting(text_words: &[String], term: &str) -> bool {
    text_words.iter().any(|w| w.starts_with(term))
}

fn article_score(article: &Value, terms: &[String]) -> usize {
    let title = words_of(article["title"].as_str().unwrap_or(""));
    let body = words_of(&html_to_text(article["body"].as_str().unwrap_or("")));
    let labels: Vec<String> = article["label_names"]
        .as_array()
        .map(|l| l.iter().map(|v| value_text(v).to_lowercase()).collect())
        .unwrap_or_default();
    let points: Vec<usize> = terms
        .iter()
        .map(|term| {
            2 * usize::from(has_word_starting(&title, term))
                + usize::from(has_word_starting(&body, term))
                + usize::from(labels.contains(term))
        })
        .collect();
    // Every word of the query must match (the real search joins them with AND).
    if points.contains(&0) {
        0
    } else {
        points.iter().sum()
    }
}

/// Up to ~160 characters of the body's text around the first match, matches in `<em>`.
fn snippet(article: &Value, terms: &[String]) -> String {
    let text = html_to_text(article["body"].as_str().unwrap_or(""));
    let words: Vec<&str> = text.split_whitespace().collect();
    let matches = |w: &str| {
        let w = w.to_lowercase();
        let core = w.trim_matches(|c: char| !c.is_alphanumeric());
        !core.is_empty() && terms.iter().any(|t| core.starts_with(t.as_str()))
    };
    let first = words.iter().position(|w| matches(w)).unwrap_or(0);
    let start = first.saturating_sub(8);
    let mut out = Vec::new();
    let mut length = 0;
    for word in &words[start..] {
        if length > 160 {
            break;
        }
        length += word.len() + 1;
        let escaped = escape_html(word);
        if matches(word) {
            out.push(format!("<em>{escaped}</em>"));
        } else {
            out.push(escaped);
        }
    }
    out.join(" ")
}

// ----- text ------------------------------------------------------------------------------------

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text_to_html(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape_html(p.trim()).replace('\n', "<br>")))
        .collect();
    format!(
        "<div class=\"zd-comment\" dir=\"auto\">{}</div>",
        paragraphs.join("")
    )
}

fn html_to_text(html: &str) -> String {
    const BLOCKS: [&str; 14] = [
        "p",
        "br",
        "div",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "h1",
        "h2",
        "h3",
        "h4",
        "pre",
        "blockquote",
    ];
    let mut out = String::new();
    let mut tag: Option<String> = None;
    for c in html.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(inside), '>') => {
                let name: String = inside
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .to_ascii_lowercase();
                if BLOCKS.contains(&name.as_str()) {
                    out.push(' ');
                }
                tag = None;
            }
            (Some(inside), c) => inside.push(c),
            (None, c) => out.push(c),
        }
    }
    let out = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ----- urls ------------------------------------------------------------------------------------

fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Page {
    page: usize,
    per_page: usize,
}

impl Page {
    fn of(query: &[(String, String)], default: usize, max: usize) -> Page {
        let number = |name: &str| query_param(query, name).and_then(|v| v.parse::<usize>().ok());
        Page {
            page: number("page").filter(|p| *p > 0).unwrap_or(1),
            per_page: number("per_page")
                .filter(|p| *p > 0)
                .unwrap_or(default)
                .min(max),
        }
    }

    /// This page's items and the `next_page`/`previous_page` urls (keeping `keep` params).
    fn slice(
        self,
        items: Vec<Value>,
        base: &str,
        path: &str,
        query: &[(String, String)],
        keep: &[&str],
    ) -> (Vec<Value>, Value, Value) {
        let total = items.len();
        let start = (self.page - 1).saturating_mul(self.per_page).min(total);
        let end = start.saturating_add(self.per_page).min(total);
        let url = |page: usize| {
            let mut params = vec![
                format!("page={page}"),
                format!("per_page={}", self.per_page),
            ];
            for (k, v) in query.iter().filter(|(k, _)| keep.contains(&k.as_str())) {
                params.push(format!("{}={}", percent_encode(k), percent_encode(v)));
            }
            json!(format!("{base}{path}?{}", params.join("&")))
        };
        let next = if end < total {
            url(self.page + 1)
        } else {
            Value::Null
        };
        let previous = if self.page > 1 {
            url(self.page - 1)
        } else {
            Value::Null
        };
        let items = items.into_iter().skip(start).take(end - start).collect();
        (items, next, previous)
    }
}

#[cfg(test)]
mod tests;
