//! A fake Salesforce org on loopback, following the documented shapes: the OAuth token endpoint
//! (client credentials and JWT bearer), `sobjects/Case` GET and PATCH (204; a value outside a
//! restricted picklist answers 400 `INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST` naming the field),
//! `sobjects/Case/describe` (the picklists' values), `sobjects/Account`
//! GET, `sobjects/Contact` GET and PATCH, `sobjects/CaseComment` POST (201) and DELETE (204),
//! SOQL `query` for CaseComments, Contacts by e-mail, recently surveyed Cases, escalated Cases
//! without a verdict, the (escalated) Cases of a period (in batches behind `nextRecordsUrl` query
//! locators) and a Case's `CaseHistory` rows, `If-Unmodified-Since` on a
//! PATCH (412 when `LastModifiedDate` is later; every PATCH sets it), the Knowledge articles
//! list and detail (online articles in the `Accept-Language` only), the Knowledge language
//! settings (`knowledgeManagement/settings`: the languages its articles are in), SOQL on
//! `KnowledgeArticleVersion` (one `PublishStatus` and one `Language`, as Salesforce requires;
//! an online version's `LastModifiedDate` is its publication, an archived article's versions
//! carry its `ArticleArchivedDate`), error arrays
//! (`INVALID_SESSION_ID` 401, `REQUEST_LIMIT_EXCEEDED` 403, ...). Every request is recorded.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Map, Value, json};

pub const API: &str = "/services/data/v62.0";

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: String,
    pub parent: String,
    pub body: String,
    pub published: bool,
}

#[derive(Debug, Clone)]
pub struct FakeArticle {
    pub id: String,
    pub number: String,
    pub title: String,
    pub url_name: String,
    pub summary: String,
    pub answer_html: String,
    /// `en_US`, `de`, ...
    pub language: String,
    /// `Online`, `Draft`, `Archived`.
    pub status: String,
    pub last_published: String,
}

/// An answer to give instead of the real one, `times` times, to requests whose method and path
/// match.
#[derive(Debug, Clone)]
pub struct Fail {
    pub method: &'static str,
    pub path_contains: String,
    pub status: u16,
    pub error_code: &'static str,
    pub times: usize,
}

impl crate::helpdesk::sandbox::Injected for Fail {
    fn target(&mut self) -> (&str, &str, &mut usize) {
        (self.method, &self.path_contains, &mut self.times)
    }
}

#[derive(Debug, Clone)]
pub struct JwtClient {
    pub client_id: String,
    pub username: String,
    pub audience: String,
    /// The RSA public key (PKCS#1 DER) assertions must be signed with.
    pub public_key: Vec<u8>,
}

#[derive(Default)]
pub struct State_ {
    pub cases: HashMap<String, Map<String, Value>>,
    pub contacts: HashMap<String, Map<String, Value>>,
    pub accounts: HashMap<String, String>,
    pub comments: Vec<Comment>,
    pub articles: Vec<FakeArticle>,
    pub client: Option<(String, String)>,
    pub jwt: Option<JwtClient>,
    pub tokens: HashSet<String>,
    /// The grant of every token issued.
    pub grants: Vec<String>,
    pub fails: Vec<Fail>,
    /// `METHOD path` of every request, in order, with the status answered.
    pub log: Vec<(String, u16)>,
    /// A comment body another delivery "adds" just before the next comment insert lands (a
    /// race): it is inserted first, then the request's own comment.
    pub racing_comment: Option<String>,
    /// Records a query answer holds at most (Salesforce's default batch is 2,000); 0: 2,000.
    pub query_batch: usize,
    /// `CaseHistory` rows (`CaseId`, `Field`, `OldValue`, `NewValue`, `CreatedDate`), as field
    /// history tracking records them.
    pub case_history: Vec<Map<String, Value>>,
    /// The restricted picklists of Case and their active values.
    pub picklists: Picklists,
    /// When each archived Knowledge article (by its `KnowledgeArticleId`) was archived.
    pub archived_at: HashMap<String, String>,
    /// Query locators: the records still to serve through `nextRecordsUrl`.
    cursors: HashMap<String, Vec<Value>>,
    locators: usize,
    issued: usize,
    comments_made: usize,
}

/// Restricted picklist fields of Case → their active values; by default the ones
/// `install salesforce` deploys.
#[derive(Debug, Clone)]
pub struct Picklists(pub HashMap<String, Vec<String>>);

impl Default for Picklists {
    fn default() -> Picklists {
        let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Picklists(HashMap::from([
            (
                "Escalation_Quality__c".to_string(),
                values(&["Good", "Bad", "Review"]),
            ),
            (
                "Escalation_Reviewed_Quality__c".to_string(),
                values(&["Good", "Bad"]),
            ),
        ]))
    }
}

pub type Shared = Arc<Mutex<State_>>;

pub struct FakeSalesforce {
    pub base: String,
    pub state: Shared,
}

impl FakeSalesforce {
    pub async fn start(state: State_) -> FakeSalesforce {
        let state: Shared = Arc::new(Mutex::new(state));
        let api = Router::new()
            .route(&format!("{API}/sobjects/Case/describe"), get(describe_case))
            .route(
                &format!("{API}/sobjects/Case/{{id}}"),
                get(get_case).patch(patch_case),
            )
            .route(&format!("{API}/sobjects/Account/{{id}}"), get(get_account))
            .route(
                &format!("{API}/sobjects/Contact/{{id}}"),
                get(get_contact).patch(patch_contact),
            )
            .route(&format!("{API}/sobjects/CaseComment"), post(add_comment))
            .route(
                &format!("{API}/sobjects/CaseComment/{{id}}"),
                delete(delete_comment),
            )
            .route(&format!("{API}/query"), get(query))
            .route(&format!("{API}/query/{{locator}}"), get(query_more))
            .route(
                &format!("{API}/knowledgeManagement/settings"),
                get(knowledge_settings),
            )
            .route(&format!("{API}/support/knowledgeArticles"), get(articles))
            .route(
                &format!("{API}/support/knowledgeArticles/{{id}}"),
                get(article),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                authorize,
            ));
        let app = Router::new()
            .route("/services/oauth2/token", post(token))
            .merge(api)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeSalesforce { base, state }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap()
    }

    /// Every issued token stops working (the org's session timeout passed).
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    pub fn fail(&self, f: Fail) {
        self.lock().fails.push(f);
    }

    /// How many requests matched `method` and a path containing `part`.
    /// The requests but the ones `serve` sends at start: the token and the Case describe (the
    /// verdict picklist's values).
    pub fn log_after_start(&self) -> Vec<(String, u16)> {
        self.lock()
            .log
            .iter()
            .filter(|(l, _)| {
                l != "POST /services/oauth2/token" && !l.ends_with("/sobjects/Case/describe")
            })
            .cloned()
            .collect()
    }

    pub fn count(&self, method: &str, part: &str) -> usize {
        crate::helpdesk::sandbox::count(&self.lock().log, method, part)
    }

    pub fn comments_on(&self, case: &str) -> Vec<Comment> {
        self.lock()
            .comments
            .iter()
            .filter(|c| c.parent == case)
            .cloned()
            .collect()
    }

    pub fn contact_field(&self, contact: &str, field: &str) -> Value {
        self.lock().contacts[contact]
            .get(field)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Publishes a new version of article `id` in `language` as an author would: `change`
    /// edits it, and it is online from now on.
    pub fn publish_edit(&self, id: &str, language: &str, change: impl FnOnce(&mut FakeArticle)) {
        let mut s = self.lock();
        let a = s
            .articles
            .iter_mut()
            .find(|a| a.id == id && a.language == language)
            .expect("the fake holds the article");
        change(a);
        a.status = "Online".into();
        a.last_published = sf_now();
    }

    /// Every open query locator is released (15 minutes without use, or newer queries took
    /// their place): a `nextRecordsUrl` answers `INVALID_QUERY_LOCATOR`.
    pub fn expire_query_locators(&self) {
        self.lock().cursors.clear();
    }

    /// Archives article `id` (every language of it) now.
    pub fn archive_article(&self, id: &str) {
        let mut s = self.lock();
        for a in s.articles.iter_mut().filter(|a| a.id == id) {
            a.status = "Archived".into();
        }
        s.archived_at.insert(id.to_string(), sf_now());
    }

    pub fn field(&self, case: &str, field: &str) -> Value {
        self.lock().cases[case]
            .get(field)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!([{ "message": message, "errorCode": code, "fields": [] }])),
    )
        .into_response()
}

/// Records the request; answers 401 without a valid token, or an injected failure.
fn gate(
    state: &Shared,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    let mut s = state.lock().unwrap();
    let line = format!("{method} {path}");
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !s.tokens.contains(token) {
        s.log.push((line, 401));
        return Err(Box::new(errors(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )));
    }
    if let Some(f) = crate::helpdesk::sandbox::next_failure(&mut s.fails, method, path) {
        s.log.push((line, f.status));
        let status = StatusCode::from_u16(f.status).unwrap();
        return Err(Box::new(errors(status, f.error_code, "Injected failure")));
    }
    s.log.push((line, 200));
    Ok(())
}

/// Every REST call passes the session check and the injected failures first, as the org would
/// refuse it before looking at the resource.
async fn authorize(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    if let Err(r) = gate(&state, &method, &path, req.headers()) {
        return *r;
    }
    next.run(req).await
}

async fn token(State(state): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut s = state.lock().unwrap();
    s.log.push(("POST /services/oauth2/token".into(), 200));
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    let ok = match grant {
        "client_credentials" => s.client.as_ref().is_some_and(|(id, secret)| {
            form.get("client_id") == Some(id) && form.get("client_secret") == Some(secret)
        }),
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => match (&s.jwt, form.get("assertion")) {
            (Some(client), Some(a)) => verify_assertion(client, a),
            _ => false,
        },
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"})),
            )
                .into_response();
        }
    };
    if !ok {
        let (error, description) = if grant == "client_credentials" {
            ("invalid_client", "invalid client credentials")
        } else {
            ("invalid_grant", "invalid assertion")
        };
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response();
    }
    s.issued += 1;
    let token = format!("00D000000000062!fake-token-{}", s.issued);
    s.tokens.insert(token.clone());
    s.grants.push(grant.to_string());
    axum::Json(json!({
        "access_token": token,
        "signature": "c2lnbmF0dXJl",
        "scope": "api",
        "instance_url": "https://acme.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00D000000000062EAA/005000000000001AAA",
        "token_type": "Bearer",
        "issued_at": "1714730000000"
    }))
    .into_response()
}

/// RS256 over `header.claims` with the client's public key; iss, sub, aud and a short exp.
fn verify_assertion(client: &JwtClient, assertion: &str) -> bool {
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let Ok(sig) = B64URL.decode(parts[2]) else {
        return false;
    };
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &client.public_key,
    );
    if key
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .is_err()
    {
        return false;
    }
    let header: Value =
        serde_json::from_slice(&B64URL.decode(parts[0]).unwrap_or_default()).unwrap_or(Value::Null);
    let claims: Value =
        serde_json::from_slice(&B64URL.decode(parts[1]).unwrap_or_default()).unwrap_or(Value::Null);
    let now = chrono::Utc::now().timestamp();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    header["alg"] == "RS256"
        && claims["iss"] == client.client_id.as_str()
        && claims["sub"] == client.username.as_str()
        && claims["aud"] == client.audience.as_str()
        && exp > now
        && exp <= now + 300
}

async fn get_case(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().unwrap();
    let Some(case) = s.cases.get(&id) else {
        return not_found();
    };
    match select(case, q.get("fields").map(String::as_str), "Case") {
        Ok(mut out) => {
            out["attributes"]["url"] = json!(format!("{API}/sobjects/Case/{id}"));
            axum::Json(out).into_response()
        }
        Err(refused) => *refused,
    }
}

/// `GET sobjects/Case/describe`: `{"name": "Case", "fields": [...]}`, each field with `name`,
/// `type`, `restrictedPicklist` and `picklistValues` (`value`, `label`, `active`,
/// `defaultValue`, `validFor`): the restricted picklists of [`Picklists`], and every other field
/// a Case of the org holds as a string field.
async fn describe_case(State(state): State<Shared>) -> Response {
    let s = state.lock().unwrap();
    let mut names: Vec<&String> = s
        .cases
        .values()
        .flat_map(|c| c.keys())
        .chain(s.picklists.0.keys())
        .filter(|k| *k != "attributes")
        .collect();
    names.sort();
    names.dedup();
    let fields: Vec<Value> = names
        .into_iter()
        .map(|name| match s.picklists.0.get(name) {
            Some(values) => json!({
                "name": name, "type": "picklist", "restrictedPicklist": true,
                "picklistValues": values.iter().map(|v| json!({
                    "active": true, "defaultValue": false, "label": v, "validFor": null, "value": v,
                })).collect::<Vec<_>>(),
            }),
            None => json!({
                "name": name, "type": "string", "restrictedPicklist": false, "picklistValues": [],
            }),
        })
        .collect();
    axum::Json(json!({"name": "Case", "fields": fields})).into_response()
}

async fn patch_case(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Map<String, Value>>,
) -> Response {
    let mut guard = state.lock().unwrap();
    let s = &mut *guard;
    let Some(case) = s.cases.get_mut(&id) else {
        return not_found();
    };
    if let Some(r) = unknown_field(case, &body, "Case") {
        return r;
    }
    for (k, v) in &body {
        let allowed = s.picklists.0.get(k);
        if let Some(values) = allowed
            && !v.as_str().is_some_and(|v| values.iter().any(|a| a == v))
        {
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!([{
                    "message": format!("bad value for restricted picklist field: {shown}"),
                    "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    "fields": [k],
                }])),
            )
                .into_response();
        }
    }
    if let Some(since) = headers.get("if-unmodified-since") {
        let Some(since) = since
            .to_str()
            .ok()
            .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok())
        else {
            return errors(
                StatusCode::BAD_REQUEST,
                "INVALID_HEADER_TYPE",
                "If-Unmodified-Since is not a valid HTTP date",
            );
        };
        let modified = case
            .get("LastModifiedDate")
            .and_then(Value::as_str)
            .and_then(sf_datetime);
        if modified.is_some_and(|m| m > since) {
            return errors(
                StatusCode::PRECONDITION_FAILED,
                "PRECONDITION_FAILED",
                "The record has been modified since the If-Unmodified-Since date",
            );
        }
    }
    case.extend(body);
    case.insert("LastModifiedDate".into(), json!(sf_now()));
    StatusCode::NO_CONTENT.into_response()
}

fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

/// A PATCH naming a field the record does not have, refused as Salesforce does.
fn unknown_field(
    record: &Map<String, Value>,
    body: &Map<String, Value>,
    sobject: &str,
) -> Option<Response> {
    body.keys().find(|k| !record.contains_key(*k)).map(|k| {
        errors(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            &format!("No such column '{k}' on sobject of type {sobject}"),
        )
    })
}

/// Salesforce's date-time form: `2024-05-03T09:00:00.000+0000`.
pub fn sf_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

fn sf_datetime(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
}

async fn get_contact(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().unwrap();
    let Some(contact) = s.contacts.get(&id) else {
        return not_found();
    };
    match select(contact, q.get("fields").map(String::as_str), "Contact") {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => *r,
    }
}

/// The record with only `fields` (all without), or INVALID_FIELD for an unknown one.
fn select(
    record: &Map<String, Value>,
    fields: Option<&str>,
    object: &str,
) -> Result<Value, Box<Response>> {
    let mut out = Map::new();
    out.insert("attributes".into(), json!({ "type": object }));
    match fields {
        Some(fields) => {
            for f in fields.split(',').map(str::trim) {
                match record.get(f) {
                    Some(v) => {
                        out.insert(f.to_string(), v.clone());
                    }
                    None => {
                        return Err(Box::new(errors(
                            StatusCode::BAD_REQUEST,
                            "INVALID_FIELD",
                            &format!("No such column '{f}' on entity '{object}'."),
                        )));
                    }
                }
            }
        }
        None => out.extend(record.clone()),
    }
    Ok(Value::Object(out))
}

async fn patch_contact(
    State(state): State<Shared>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Map<String, Value>>,
) -> Response {
    let mut s = state.lock().unwrap();
    let Some(contact) = s.contacts.get_mut(&id) else {
        return not_found();
    };
    if let Some(r) = unknown_field(contact, &body, "Contact") {
        return r;
    }
    for (k, v) in &body {
        if k == "HasOptedOutOfEmail" && !v.is_boolean() {
            return errors(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                "Cannot deserialize instance of boolean",
            );
        }
    }
    contact.extend(body);
    StatusCode::NO_CONTENT.into_response()
}

async fn get_account(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let s = state.lock().unwrap();
    match s.accounts.get(&id) {
        Some(name) => axum::Json(json!({
            "attributes": {"type": "Account", "url": format!("{API}/sobjects/Account/{id}")},
            "Name": name
        }))
        .into_response(),
        None => not_found(),
    }
}

async fn add_comment(
    State(state): State<Shared>,
    axum::Json(body): axum::Json<Map<String, Value>>,
) -> Response {
    let mut s = state.lock().unwrap();
    let parent = body.get("ParentId").and_then(Value::as_str).unwrap_or("");
    if !s.cases.contains_key(parent) {
        return errors(
            StatusCode::BAD_REQUEST,
            "FIELD_INTEGRITY_EXCEPTION",
            "Parent ID: id value of incorrect type",
        );
    }
    let text = body
        .get("CommentBody")
        .and_then(Value::as_str)
        .unwrap_or("");
    if text.len() > 4000 {
        return errors(
            StatusCode::BAD_REQUEST,
            "STRING_TOO_LONG",
            "Body: data value too large",
        );
    }
    if let Some(racing) = s.racing_comment.take() {
        s.comments_made += 1;
        let id = format!("00a{:015}", s.comments_made);
        s.comments.push(Comment {
            id,
            parent: parent.to_string(),
            body: racing,
            published: false,
        });
    }
    s.comments_made += 1;
    let id = format!("00a{:015}", s.comments_made);
    let comment = Comment {
        id: id.clone(),
        parent: parent.to_string(),
        body: text.to_string(),
        published: body
            .get("IsPublished")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    };
    s.comments.push(comment);
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response()
}

async fn delete_comment(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let mut s = state.lock().unwrap();
    match s.comments.iter().position(|c| c.id == id) {
        Some(i) => {
            s.comments.remove(i);
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(),
    }
}

async fn query(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let soql = q.get("q").cloned().unwrap_or_default();
    if soql.contains(" FROM Contact ") {
        return query_contacts(&state, &soql);
    }
    if soql.starts_with("SELECT Id FROM Case ") {
        return query_cases(&state, &soql);
    }
    if soql.contains(" FROM KnowledgeArticleVersion ") {
        return query_versions(&state, &soql);
    }
    if soql.contains(" FROM CaseHistory ") {
        return query_history(&state, &soql);
    }
    if soql.contains(" FROM Case WHERE CreatedDate >= ")
        || soql.contains(" FROM Case WHERE IsEscalated = true AND CreatedDate >= ")
    {
        return query_period(&state, &soql);
    }
    if soql.starts_with("SELECT Id, CreatedDate FROM Case ") {
        return query_escalated(&state, &soql);
    }
    let re = regex::Regex::new(
        r"^SELECT Id, CommentBody FROM CaseComment WHERE ParentId = '([A-Za-z0-9]{15,18})' ORDER BY CreatedDate, Id$",
    )
    .unwrap();
    let Some(caps) = re.captures(&soql) else {
        return malformed("unexpected token");
    };
    let s = state.lock().unwrap();
    let list: Vec<Value> = s
        .comments
        .iter()
        .filter(|c| c.parent == caps[1])
        .map(|c| {
            json!({
                "attributes": {"type": "CaseComment", "url": format!("{API}/sobjects/CaseComment/{}", c.id)},
                "Id": c.id,
                "CommentBody": c.body,
            })
        })
        .collect();
    records(list)
}

fn malformed(detail: &str) -> Response {
    errors(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", detail)
}

/// A SOQL string literal's value: `\'` and `\\` unescaped.
fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

const LITERAL: &str = r"'((?:[^'\\]|\\.)*)'";

fn records(list: Vec<Value>) -> Response {
    axum::Json(json!({"totalSize": list.len(), "done": true, "records": list})).into_response()
}

/// `SELECT f, ... FROM Case WHERE [IsEscalated = true AND] CreatedDate >= A AND CreatedDate < B
/// ORDER BY CreatedDate, Id` (datetime literals unquoted; a Case without `IsEscalated` is not
/// escalated): every field must exist on the Case (else `INVALID_FIELD`);
/// `Account.Name` reads the Account as a nested record, as SOQL relationship queries answer.
/// The answer holds at most [`State_::query_batch`] records; the rest wait behind a query
/// locator (`nextRecordsUrl`, `done: false`).
fn query_period(state: &Shared, soql: &str) -> Response {
    let re = regex::Regex::new(
        r"^SELECT ([A-Za-z0-9_., ]+) FROM Case WHERE (IsEscalated = true AND )?CreatedDate >= (\S+) AND CreatedDate < (\S+) ORDER BY CreatedDate, Id$",
    )
    .unwrap();
    let Some(caps) = re.captures(soql) else {
        return malformed("unexpected token in the Case query");
    };
    let escalated_only = caps.get(2).is_some();
    let (Some(from), Some(to)) = (sf_datetime(&caps[3]), sf_datetime(&caps[4])) else {
        return malformed("a datetime literal is like 2024-05-03T09:00:00Z");
    };
    let fields: Vec<&str> = caps[1].split(',').map(str::trim).collect();
    let mut s = state.lock().unwrap();
    let mut found: Vec<(chrono::DateTime<chrono::FixedOffset>, String)> = s
        .cases
        .values()
        .filter(|c| !escalated_only || c.get("IsEscalated") == Some(&json!(true)))
        .filter_map(|c| {
            let at = c
                .get("CreatedDate")
                .and_then(Value::as_str)
                .and_then(sf_datetime)?;
            (at >= from && at < to).then(|| (at, c["Id"].as_str().unwrap_or_default().to_string()))
        })
        .collect();
    found.sort();
    let mut list = Vec::new();
    for (_, id) in &found {
        let c = &s.cases[id];
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            json!({"type": "Case", "url": format!("{API}/sobjects/Case/{id}")}),
        );
        for f in &fields {
            if *f == "Account.Name" {
                let account = c
                    .get("AccountId")
                    .and_then(Value::as_str)
                    .and_then(|a| s.accounts.get(a).map(|name| (a, name)));
                out.insert(
                    "Account".into(),
                    match account {
                        Some((a, name)) => json!({
                            "attributes": {"type": "Account", "url": format!("{API}/sobjects/Account/{a}")},
                            "Name": name,
                        }),
                        None => Value::Null,
                    },
                );
            } else {
                match c.get(*f) {
                    Some(v) => {
                        out.insert(f.to_string(), v.clone());
                    }
                    None => {
                        return errors(
                            StatusCode::BAD_REQUEST,
                            "INVALID_FIELD",
                            &format!("No such column '{f}' on entity 'Case'."),
                        );
                    }
                }
            }
        }
        list.push(Value::Object(out));
    }
    page(&mut s, list, None, 0)
}

/// One page of a query answer: at most [`State_::query_batch`] of `records` (2000 when 0), the
/// rest kept behind query locator `locator` (a new one when `None`), `offset` records into the
/// answer; `totalSize` counts the whole answer.
fn page(s: &mut State_, mut records: Vec<Value>, locator: Option<&str>, offset: usize) -> Response {
    let batch = if s.query_batch == 0 {
        2000
    } else {
        s.query_batch
    };
    let later = records.split_off(batch.min(records.len()));
    let total = offset + records.len() + later.len();
    let mut answer = json!({"totalSize": total, "done": later.is_empty(), "records": records});
    if !later.is_empty() {
        let locator = match locator {
            Some(l) => l.to_string(),
            None => {
                s.locators += 1;
                format!("01gD000000{:08}", s.locators)
            }
        };
        answer["nextRecordsUrl"] = json!(format!("{API}/query/{locator}-{}", offset + batch));
        s.cursors.insert(locator, later);
    }
    axum::Json(answer).into_response()
}

/// `SELECT Field, NewValue, CreatedDate FROM CaseHistory WHERE CaseId = '...' AND Field IN
/// ('a', 'b') ORDER BY CreatedDate`: the Case's history rows of those fields, oldest first.
fn query_history(state: &Shared, soql: &str) -> Response {
    let re = regex::Regex::new(&format!(
        r"^SELECT Field, NewValue, CreatedDate FROM CaseHistory WHERE CaseId = {LITERAL} AND Field IN \(({LITERAL}(?:, {LITERAL})*)\) ORDER BY CreatedDate$"
    ))
    .unwrap();
    let Some(caps) = re.captures(soql) else {
        return malformed("unexpected token in the CaseHistory query");
    };
    let case = unquote(&caps[1]);
    let names: Vec<String> = regex::Regex::new(LITERAL)
        .unwrap()
        .captures_iter(&caps[2])
        .map(|c| unquote(&c[1]))
        .collect();
    let s = state.lock().unwrap();
    let mut rows: Vec<&Map<String, Value>> = s
        .case_history
        .iter()
        .filter(|r| r["CaseId"].as_str() == Some(case.as_str()))
        .filter(|r| {
            names
                .iter()
                .any(|n| r["Field"].as_str() == Some(n.as_str()))
        })
        .collect();
    rows.sort_by_key(|r| r["CreatedDate"].as_str().and_then(sf_datetime));
    records(
        rows.into_iter()
            .map(|r| {
                json!({
                    "attributes": {"type": "CaseHistory"},
                    "Field": r["Field"],
                    "NewValue": r["NewValue"],
                    "CreatedDate": r["CreatedDate"],
                })
            })
            .collect(),
    )
}

/// `GET /query/{locator}-{offset}`: the next batch of a query answer.
async fn query_more(State(state): State<Shared>, Path(locator): Path<String>) -> Response {
    let mut s = state.lock().unwrap();
    let Some((id, offset)) = locator.rsplit_once('-') else {
        return errors(
            StatusCode::NOT_FOUND,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    };
    let offset: usize = offset.parse().unwrap_or(0);
    let Some(rest) = s.cursors.remove(id) else {
        return errors(
            StatusCode::NOT_FOUND,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    };
    page(&mut s, rest, Some(id), offset)
}

/// `SELECT f, ... FROM Contact WHERE Email = '...' LIMIT n` (e-mail compared without case).
fn query_contacts(state: &Shared, soql: &str) -> Response {
    let re = regex::Regex::new(&format!(
        r"^SELECT ([A-Za-z_, ]+) FROM Contact WHERE Email = {LITERAL} LIMIT (\d+)$"
    ))
    .unwrap();
    let Some(caps) = re.captures(soql) else {
        return malformed("unexpected token in the Contact query");
    };
    let email = unquote(&caps[2]);
    let limit: usize = caps[3].parse().unwrap();
    let s = state.lock().unwrap();
    let mut ids: Vec<&String> = s.contacts.keys().collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids.into_iter().take(limit) {
        let c = &s.contacts[id];
        if c.get("Email")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case(&email))
        {
            match select(c, Some(&caps[1]), "Contact") {
                Ok(v) => out.push(v),
                Err(r) => return *r,
            }
        }
    }
    records(out)
}

/// `SELECT Id, CreatedDate FROM Case WHERE IsEscalated = true AND V = null AND
/// LastModifiedDate > DATETIME ORDER BY LastModifiedDate LIMIT n` (a datetime literal is
/// unquoted, e.g. `2024-05-03T09:00:00Z`). A Case without `IsEscalated` counts as not escalated.
fn query_escalated(state: &Shared, soql: &str) -> Response {
    let re = regex::Regex::new(
        r"^SELECT Id, CreatedDate FROM Case WHERE IsEscalated = true AND (\w+) = null AND LastModifiedDate > (\S+) ORDER BY LastModifiedDate LIMIT (\d+)$",
    )
    .unwrap();
    let Some(caps) = re.captures(soql) else {
        return malformed("unexpected token in the escalated Case query");
    };
    let verdict = &caps[1];
    let Ok(since) = chrono::DateTime::parse_from_rfc3339(&caps[2]) else {
        return malformed("a datetime literal is like 2024-05-03T09:00:00Z");
    };
    let limit: usize = caps[3].parse().unwrap();
    let changed = |c: &Map<String, Value>| {
        c.get("LastModifiedDate")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
    };
    let s = state.lock().unwrap();
    let mut found: Vec<(chrono::DateTime<chrono::FixedOffset>, &Map<String, Value>)> = s
        .cases
        .values()
        .filter(|c| c.get("IsEscalated") == Some(&json!(true)))
        .filter(|c| c.get(verdict).is_none_or(Value::is_null))
        .filter_map(|c| changed(c).filter(|t| *t > since).map(|t| (t, c)))
        .collect();
    found.sort_by_key(|(t, _)| *t);
    let list: Vec<Value> = found
        .into_iter()
        .take(limit)
        .map(|(_, c)| {
            json!({
                "attributes": {"type": "Case", "url": format!("{API}/sobjects/Case/{}", c["Id"].as_str().unwrap_or_default())},
                "Id": c["Id"],
                "CreatedDate": c["CreatedDate"],
            })
        })
        .collect();
    records(list)
}

/// `SELECT Id FROM Case WHERE S IN ('a', 'b', 'c') AND T = LAST_N_DAYS:n AND (F = '...' OR ...)
/// LIMIT n`. LAST_N_DAYS:n starts at midnight (UTC here) n days ago.
fn query_cases(state: &Shared, soql: &str) -> Response {
    let re = regex::Regex::new(&format!(
        r"^SELECT Id FROM Case WHERE (\w+) IN \({LITERAL}, {LITERAL}, {LITERAL}\) AND (\w+) = LAST_N_DAYS:(\d+) AND \((.+)\) LIMIT (\d+)$"
    ))
    .unwrap();
    let Some(caps) = re.captures(soql) else {
        return malformed("unexpected token in the Case query");
    };
    let status_field = &caps[1];
    let statuses = [unquote(&caps[2]), unquote(&caps[3]), unquote(&caps[4])];
    let at_field = &caps[5];
    let days: i64 = caps[6].parse().unwrap();
    let clause = regex::Regex::new(&format!(r"^(\w+) = {LITERAL}$")).unwrap();
    let mut who = Vec::new();
    for part in caps[7].split(" OR ") {
        let Some(c) = clause.captures(part) else {
            return malformed("unexpected token in the OR list");
        };
        who.push((c[1].to_string(), unquote(&c[2])));
    }
    let limit: usize = caps[8].parse().unwrap();
    let since = (chrono::Utc::now() - chrono::Duration::days(days))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let s = state.lock().unwrap();
    let mut ids: Vec<&String> = s.cases.keys().collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        let c = &s.cases[id];
        for f in [status_field, at_field]
            .into_iter()
            .chain(who.iter().map(|(f, _)| f.as_str()))
        {
            if !c.contains_key(f) {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    &format!("No such column '{f}' on entity 'Case'."),
                );
            }
        }
        let status_ok = c
            .get(status_field)
            .and_then(Value::as_str)
            .is_some_and(|v| statuses.iter().any(|s| s == v));
        let recent = c
            .get(at_field)
            .and_then(Value::as_str)
            .and_then(sf_datetime)
            .is_some_and(|t| t >= since);
        let matches = who.iter().any(|(f, v)| {
            c.get(f)
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case(v))
        });
        if status_ok && recent && matches && out.len() < limit {
            out.push(json!({"attributes": {"type": "Case"}, "Id": id}));
        }
    }
    records(out)
}

/// `en-US` → `en_US`.
fn language(headers: &HeaderMap) -> Option<String> {
    headers
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .map(|l| l.replace('-', "_"))
}

fn summary(a: &FakeArticle) -> Value {
    json!({
        "id": a.id,
        "articleNumber": a.number,
        "title": a.title,
        "urlName": a.url_name,
        "summary": a.summary,
        "lastPublishedDate": a.last_published,
        "url": format!("{API}/support/knowledgeArticles/{}", a.id),
        "viewCount": 0, "viewScore": 0.0, "upVoteCount": 0, "downVoteCount": 0,
        "categoryGroups": []
    })
}

async fn articles(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = language(&headers) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "Accept-Language header is required",
        );
    };
    // SOSL joins the words of a search with AND: every word (of two or more characters) must be
    // in the article.
    let words: Vec<String> = q
        .get("q")
        .map(|s| {
            s.split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() > 1)
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let size: usize = q.get("pageSize").and_then(|s| s.parse().ok()).unwrap_or(20);
    let s = state.lock().unwrap();
    let mut hits: Vec<(usize, &FakeArticle)> = s
        .articles
        .iter()
        .filter(|a| a.status == "Online" && a.language.eq_ignore_ascii_case(&lang))
        .map(|a| {
            let text = format!("{} {} {}", a.title, a.summary, a.answer_html).to_lowercase();
            let all = !words.is_empty() && words.iter().all(|w| text.contains(w.as_str()));
            (usize::from(all) * words.len(), a)
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    hits.sort_by_key(|h| std::cmp::Reverse(h.0));
    let list: Vec<Value> = hits.iter().take(size).map(|(_, a)| summary(a)).collect();
    axum::Json(json!({
        "articles": list,
        "currentPageUrl": format!("{API}/support/knowledgeArticles?pageNumber=1"),
        "nextPageUrl": null,
        "pageNumber": 1
    }))
    .into_response()
}

async fn article(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let lang = language(&headers).unwrap_or_default();
    let s = state.lock().unwrap();
    match s
        .articles
        .iter()
        .find(|a| a.id == id && a.status == "Online" && a.language.eq_ignore_ascii_case(&lang))
    {
        Some(a) => {
            let mut v = summary(a);
            v["layoutItems"] = json!([
                {"type": "RICH_TEXT_AREA", "name": "Answer__c", "label": "Answer", "value": a.answer_html},
                {"type": "CHECKBOX", "name": "IsVisibleInPkb", "label": "Visible", "value": "true"}
            ]);
            v["versionNumber"] = json!(1);
            axum::Json(v).into_response()
        }
        None => not_found(),
    }
}

/// `GET knowledgeManagement/settings`: Knowledge is enabled, in the languages its articles are
/// in (`en_US`, the default, when it has none).
async fn knowledge_settings(State(state): State<Shared>) -> Response {
    let s = state.lock().unwrap();
    let mut languages: Vec<&str> = s.articles.iter().map(|a| a.language.as_str()).collect();
    languages.push("en_US");
    languages.sort();
    languages.dedup();
    axum::Json(json!({
        "defaultLanguage": "en_US",
        "knowledgeEnabled": true,
        "languages": languages
            .iter()
            .map(|l| json!({"active": true, "name": l}))
            .collect::<Vec<_>>(),
    }))
    .into_response()
}

/// `SELECT f, ... FROM KnowledgeArticleVersion WHERE PublishStatus = 'S' AND Language = 'L'
/// [AND T >= DATETIME] ORDER BY T, Id` (`T`: `LastModifiedDate` or `ArticleArchivedDate`).
/// Salesforce refuses a query of article versions without one `PublishStatus` and one
/// `Language`. An online version's `LastModifiedDate` is its publication (it is read-only once
/// published); an archived article's versions carry when it was archived. The answer is batched
/// as every query answer is.
fn query_versions(state: &Shared, soql: &str) -> Response {
    let re = regex::Regex::new(&format!(
        r"^SELECT ([A-Za-z, ]+) FROM KnowledgeArticleVersion WHERE PublishStatus = {LITERAL} AND Language = {LITERAL}(?: AND (LastModifiedDate|ArticleArchivedDate) (>=?) (\S+))? ORDER BY (LastModifiedDate|ArticleArchivedDate), Id$"
    ))
    .unwrap();
    let Some(caps) = re.captures(soql) else {
        return malformed(
            "Implementation restriction: When querying the KnowledgeArticleVersion object, you \
             must filter on a single PublishStatus and a single Language",
        );
    };
    let status = unquote(&caps[2]);
    let language = unquote(&caps[3]);
    let since = match caps.get(6) {
        Some(t) => match sf_datetime(t.as_str()) {
            Some(t) => Some(t),
            None => return malformed("a datetime literal is like 2024-05-03T09:00:00Z"),
        },
        None => None,
    };
    let strictly = caps.get(5).is_some_and(|op| op.as_str() == ">");
    let filter_on = caps.get(4).map(|f| f.as_str());
    let order_on = &caps[7];
    let mut s = state.lock().unwrap();
    let sf = |t: &str| {
        sf_datetime(t).map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string()
        })
    };
    let mut found: Vec<(String, Value)> = Vec::new();
    for a in s
        .articles
        .iter()
        .filter(|a| a.status.eq_ignore_ascii_case(&status) && a.language == language)
    {
        let archived = s.archived_at.get(&a.id).and_then(|t| sf(t));
        let modified = if a.status == "Archived" {
            archived.clone()
        } else {
            sf(&a.last_published)
        };
        let version = format!("ka{}", &a.id[2..]);
        let row = json!({
            "Id": version,
            "KnowledgeArticleId": a.id,
            "Language": a.language,
            "PublishStatus": a.status,
            "Title": a.title,
            "UrlName": a.url_name,
            "ArticleNumber": a.number,
            "Summary": a.summary,
            "LastPublishedDate": sf(&a.last_published),
            "LastModifiedDate": modified,
            "ArticleArchivedDate": archived,
        });
        let at = |f: &str| row[f].as_str().and_then(sf_datetime);
        if let (Some(f), Some(since)) = (filter_on, since) {
            match at(f) {
                Some(t) if t > since || (t == since && !strictly) => {}
                _ => continue,
            }
        }
        let record = row.as_object().expect("an object");
        let mut out = match select(record, Some(&caps[1]), "KnowledgeArticleVersion") {
            Ok(out) => out,
            Err(refused) => return *refused,
        };
        out["attributes"]["url"] =
            json!(format!("{API}/sobjects/KnowledgeArticleVersion/{version}"));
        let key = format!("{}{version}", row[order_on].as_str().unwrap_or_default());
        found.push((key, out));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let list = found.into_iter().map(|(_, r)| r).collect();
    page(&mut s, list, None, 0)
}
