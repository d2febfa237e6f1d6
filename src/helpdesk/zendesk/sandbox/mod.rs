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
//! | `GET /api/v2/help_center/incremental/articles?start_time=` (agents only) | 200 `{"articles","count","next_page","end_time"}` (HC `ArticlesResponse` with the incremental export's fields): the articles whose `updated_at` is at or after `start_time`, oldest change first, up to 1,000 ([`FakeZendesk::set_export_page_size`]); `next_page` carries the last article's change time as the next `start_time` (null on a page that is not full); archived articles are not listed |
//!
//! | webhooks, triggers, automations, macros, user fields | see [`admin`]: bodies checked against the trimmed OpenAPI document |
//! | private apps: uploads, build jobs, installations | see [`apps`] |
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

pub use business_rules::{Handle, Invocation};

pub mod apps;

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

    /// Articles per page of the incremental article export (default 1,000, Zendesk's).
    pub fn set_export_page_size(&self, n: usize) {
        self.lock().export_page_size = n.max(1);
    }

    /// Archives an article, as Help Center's "archive" does: it is no longer shown, searched
    /// or exported. Panics if there is none.
    pub fn archive_article(&self, id: u64) {
        if self.lock().articles.remove(&id).is_none() {
            panic!("fake zendesk: no article {id}");
        }
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

    /// Reads the private apps and their installations, or sets up a failing build; see
    /// [`apps`].
    pub fn apps<R>(&self, f: impl FnOnce(&mut apps::Apps) -> R) -> R {
        f(&mut self.lock().apps)
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
    export_page_size: usize,
    next_id: u64,
    admin: admin::Admin,
    apps: apps::Apps,
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
            export_page_size: 1000,
            next_id: 9_000_000_001,
            admin: admin::Admin::new(),
            apps: apps::Apps::default(),
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
        if rest == ["help_center", "incremental", "articles"] && method == Method::GET {
            return self.incremental_articles(&query);
        }
        if let Some(reply) = self
            .admin
            .serve(method.as_str(), rest, &query, body, &self.base_url)
        {
            return reply;
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Some((status, body)) =
            self.apps
                .serve(method.as_str(), rest, content_type, body, &self.base_url)
        {
            return Reply::json(status, body);
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

    /// List Articles Incrementally: every article changed at or after `start_time`, oldest change
    /// first; a full page points at the next one by the change time of its last article.
    fn incremental_articles(&self, query: &[(String, String)]) -> Reply {
        let Some(Ok(start)) = query_param(query, "start_time").map(str::parse::<i64>) else {
            return Reply::json(
                400,
                json!({"error": "InvalidParameter", "description": "start_time must be a Unix epoch time"}),
            );
        };
        let changed = |a: &Value| {
            a["updated_at"]
                .as_str()
                .and_then(parse_instant)
                .map_or(0, |t| t.timestamp())
        };
        let mut found: Vec<&Value> = self
            .articles
            .values()
            .filter(|a| changed(a) >= start)
            .collect();
        found.sort_by_key(|a| (changed(a), a["id"].as_u64()));
        found.truncate(self.export_page_size);
        let end_time = found.last().map_or(start, |a| changed(a));
        let next_page = (found.len() == self.export_page_size).then(|| {
            format!(
                "{}/api/v2/help_center/incremental/articles.json?start_time={end_time}",
                self.base_url
            )
        });
        Reply::json(
            200,
            json!({
                "articles": found,
                "count": found.len(),
                "next_page": next_page,
                "end_time": end_time,
            }),
        )
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

// ----- admin routes ----------------------------------------------------------------------------
// Inline: the admin routes and the business rules are methods of the fake's state, which lives
// in this file; as files of their own they would import this file and be imported by it.

pub mod admin {
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
                ("GET", Some(id)) => {
                    Reply::json(200, json!({wrapper: self.records[collection][&id]}))
                }
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
                .ok_or_else(|| {
                    format!("{method} {template} is not an operation of the document")
                })?;
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
                    None if !open => {
                        errors.push(format!("{at}.{k} is not a property of the document"))
                    }
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
}

// ----- business rules --------------------------------------------------------------------------

pub mod business_rules {
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
                    Some(Update::Create) => {
                        operator == "is" && value.eq_ignore_ascii_case("create")
                    }
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
                        "not_value_previous" => {
                            changed && previous.as_deref() != Some(value.as_str())
                        }
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
                a["events"].as_array().into_iter().flatten().any(|e| {
                    e["field_name"] == "status" && super::value_text(&e["value"]) == status
                })
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
}
