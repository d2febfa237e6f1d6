//! The Salesforce REST API calls escalation-gate makes: the Case (and its Account's name),
//! CaseComments, the Case PATCH, and the Knowledge articles list.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::oauth::Tokens;
use crate::assess::kb::query::remote_queries;
use crate::http::{Upstream, UpstreamError};
use crate::kb::{Article, KbError, KnowledgeBase, html_to_text, interleave};
use crate::metrics as m;

pub const SERVICE: &str = "salesforce";
/// The most pages of CaseComments read when looking for an earlier verdict.
const MAX_COMMENT_PAGES: usize = 10;
const QUERY_CHARS: usize = 250;

pub struct SalesforceApi {
    upstream: Upstream,
    base: Url,
    version: String,
    tokens: Tokens,
}

/// Whether a 4xx is worth another try: Salesforce's API request limit (403
/// `REQUEST_LIMIT_EXCEEDED`).
pub fn retry_when(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::FORBIDDEN
        && error_codes(body)
            .iter()
            .any(|c| c == "REQUEST_LIMIT_EXCEEDED")
}

/// The `errorCode`s of Salesforce's error array `[{"message","errorCode","fields"}]`.
pub fn error_codes(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("errorCode").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// A text a helpdesk user reads, as far as it can go into a log: Salesforce's own codes and
/// field names, and its message cut short (messages name fields and rules, not case text).
fn describe_errors(body: &Value) -> String {
    match body.as_array() {
        Some(errors) if !errors.is_empty() => errors
            .iter()
            .map(|e| {
                let code = e.get("errorCode").and_then(Value::as_str).unwrap_or("?");
                let msg: String = e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(120)
                    .collect();
                let fields = e
                    .get("fields")
                    .and_then(Value::as_array)
                    .map(|f| {
                        f.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                if fields.is_empty() {
                    format!("{code}: {msg}")
                } else {
                    format!("{code} [{fields}]: {msg}")
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no Salesforce error array".into(),
    }
}

/// Turns a refused answer into an error, with its error array in the log and its codes in the
/// metrics.
async fn rejected(call: &'static str, resp: Response) -> UpstreamError {
    let status = resp.status();
    let host = crate::http::host_of(resp.url());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    for e in body.as_array().into_iter().flatten() {
        if let Some(code) = e.get("errorCode").and_then(Value::as_str) {
            // Codes are Salesforce's closed list of upper-case names; anything else is bucketed.
            let code =
                if code.len() <= 64 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                    code
                } else {
                    "OTHER"
                };
            m::upstream_error(SERVICE, call, code);
        }
    }
    let detail = describe_errors(&body);
    tracing::warn!(call, status = status.as_u16(), errors = %detail, "Salesforce refused a call");
    let limited = body
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e.get("errorCode").and_then(Value::as_str) == Some("REQUEST_LIMIT_EXCEEDED"));
    if limited {
        return UpstreamError::Unavailable {
            call,
            attempts: 1,
            last: format!("{host}: {detail}"),
            retry_after: None,
        };
    }
    UpstreamError::Rejected {
        call,
        host,
        status,
        detail,
    }
}

async fn json_of(call: &'static str, resp: Response) -> Result<Value, UpstreamError> {
    if !resp.status().is_success() {
        return Err(rejected(call, resp).await);
    }
    crate::http::read_json(call, resp).await
}

/// How a conditional update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Applied,
    /// 412: the record changed since the given time.
    Conflict,
}

/// An HTTP date (`Mon, 30 Nov 2020 08:34:54 GMT`), rounded up to the next whole second.
pub fn http_date(t: DateTime<Utc>) -> String {
    let whole = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(whole, 0)
        .unwrap_or(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// A SOQL string literal: quotes and backslashes escaped.
pub fn soql_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The `records` of a query page.
fn records<'a>(call: &'static str, page: &'a Value) -> Result<&'a Vec<Value>, UpstreamError> {
    page.get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| UpstreamError::Invalid {
            call,
            detail: "no `records` array".into(),
        })
}

/// The link to a query answer's next page, while it is not `done`.
pub fn next_records_url(page: &Value) -> Option<String> {
    match page.get("nextRecordsUrl").and_then(Value::as_str) {
        Some(n) if page.get("done") == Some(&Value::Bool(false)) => Some(n.to_string()),
        _ => None,
    }
}

/// A locale (`en-us`) as Salesforce's language tag (`en-US`); [`locale_of`] goes the other way.
pub fn accept_language(locale: &str) -> String {
    match locale.split_once(['-', '_']) {
        Some((l, r)) => format!("{}-{}", l.to_ascii_lowercase(), r.to_ascii_uppercase()),
        None => locale.to_ascii_lowercase(),
    }
}

impl SalesforceApi {
    pub fn new(upstream: Upstream, base: Url, version: String, tokens: Tokens) -> SalesforceApi {
        SalesforceApi {
            upstream,
            base,
            version,
            tokens,
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        crate::http::join_path(
            &self.base,
            &format!("/services/data/v{}{path}", self.version),
        )
    }

    /// Sends with the cached token; on 401 (`INVALID_SESSION_ID`) fetches a new token once and
    /// sends again.
    async fn send(
        &self,
        call: &'static str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, UpstreamError> {
        self.send_read(call, build, |resp| async move { Ok(resp) })
            .await
    }

    /// [`Self::send`] for a read: `read` turns the answer into its value, and an answer it
    /// cannot read is asked for again ([`Upstream::send_read`]).
    async fn send_read<T, Fut>(
        &self,
        call: &'static str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
        read: impl Fn(Response) -> Fut,
    ) -> Result<T, UpstreamError>
    where
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        let token = self.tokens.get().await?;
        let read = &read;
        let first = self
            .upstream
            .send_read(
                call,
                |c| build(c).bearer_auth(token.expose_secret()),
                |resp| async move {
                    if resp.status() == StatusCode::UNAUTHORIZED {
                        return Ok(None);
                    }
                    read(resp).await.map(Some)
                },
            )
            .await?;
        if let Some(value) = first {
            return Ok(value);
        }
        tracing::info!(call, "Salesforce session expired; fetching a new token");
        self.tokens.invalidate(&token).await;
        let token = self.tokens.get().await?;
        self.upstream
            .send_read(call, |c| build(c).bearer_auth(token.expose_secret()), read)
            .await
    }

    /// `GET /sobjects/Case/{id}?fields=...`; `None` when there is no such Case.
    pub async fn case(&self, id: &str, fields: &[String]) -> Result<Option<Value>, UpstreamError> {
        let url = self.url(&format!("/sobjects/Case/{id}"));
        let fields = fields.join(",");
        let resp = self
            .send("get_case", |c| {
                c.get(url.clone()).query(&[("fields", fields.as_str())])
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        json_of("get_case", resp).await.map(Some)
    }

    /// `GET /sobjects/Case/describe`: the active values of `field` when it is a restricted
    /// picklist of Case; `None` when it is another kind of field or not there.
    pub async fn restricted_picklist(
        &self,
        field: &str,
    ) -> Result<Option<Vec<String>>, UpstreamError> {
        let url = self.url("/sobjects/Case/describe");
        let resp = self.send("describe_case", |c| c.get(url.clone())).await?;
        let described = json_of("describe_case", resp).await?;
        let Some(f) = described
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|f| f.get("name").and_then(Value::as_str) == Some(field))
        else {
            return Ok(None);
        };
        if f.get("restrictedPicklist").and_then(Value::as_bool) != Some(true) {
            return Ok(None);
        }
        Ok(Some(
            f.get("picklistValues")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|v| v.get("active").and_then(Value::as_bool) != Some(false))
                .filter_map(|v| v.get("value").and_then(Value::as_str))
                .map(str::to_string)
                .collect(),
        ))
    }

    /// `GET /sobjects/Account/{id}?fields=Name`.
    pub async fn account_name(&self, id: &str) -> Result<Option<String>, UpstreamError> {
        let url = self.url(&format!("/sobjects/Account/{id}"));
        let resp = self
            .send("get_account", |c| {
                c.get(url.clone()).query(&[("fields", "Name")])
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(json_of("get_account", resp)
            .await?
            .get("Name")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// The Case's comments as (id, body), read with SOQL (`/query`), oldest first.
    pub async fn comments(&self, case_id: &str) -> Result<Vec<(String, String)>, UpstreamError> {
        let soql = format!(
            "SELECT Id, CommentBody FROM CaseComment WHERE ParentId = {} ORDER BY CreatedDate, Id",
            soql_quote(case_id)
        );
        let mut page = self.query_page("query_comments", &soql).await?;
        let mut bodies = Vec::new();
        for _ in 0..MAX_COMMENT_PAGES {
            bodies.extend(records("query_comments", &page)?.iter().filter_map(|r| {
                Some((
                    r.get("Id")?.as_str()?.to_string(),
                    r.get("CommentBody")?.as_str()?.to_string(),
                ))
            }));
            let Some(next) = next_records_url(&page) else {
                return Ok(bodies);
            };
            page = self.query_more("query_comments", &next).await?;
        }
        Ok(bodies)
    }

    /// The next page of a query answer (`GET {nextRecordsUrl}`), on this instance whatever
    /// host the link would name.
    pub async fn query_more(&self, call: &'static str, next: &str) -> Result<Value, UpstreamError> {
        let mut url = self.base.clone();
        url.set_path(next.split('?').next().unwrap_or(next));
        self.send_read(call, |c| c.get(url.clone()), |resp| json_of(call, resp))
            .await
    }

    /// `DELETE /sobjects/CaseComment/{id}` (204); a comment already gone (404) is no error.
    pub async fn delete_comment(&self, comment_id: &str) -> Result<(), UpstreamError> {
        let url = self.url(&format!("/sobjects/CaseComment/{comment_id}"));
        let resp = self
            .send("delete_comment", |c| c.delete(url.clone()))
            .await?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(rejected("delete_comment", resp).await),
        }
    }

    /// `POST /sobjects/CaseComment`: one internal comment (`IsPublished: false`).
    pub async fn add_comment(&self, case_id: &str, body: &str) -> Result<String, UpstreamError> {
        let url = self.url("/sobjects/CaseComment");
        let payload = json!({"ParentId": case_id, "CommentBody": body, "IsPublished": false});
        let resp = self
            .send("add_comment", |c| c.post(url.clone()).json(&payload))
            .await?;
        let v = json_of("add_comment", resp).await?;
        if v.get("success") != Some(&Value::Bool(true)) {
            return Err(UpstreamError::Invalid {
                call: "add_comment",
                detail: describe_errors(v.get("errors").unwrap_or(&Value::Null)),
            });
        }
        Ok(v.get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    /// `PATCH /sobjects/Case/{id}` (204).
    pub async fn update_case(
        &self,
        case_id: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), UpstreamError> {
        self.update("update_case", "Case", case_id, fields, None)
            .await
            .map(|_| ())
    }

    /// `PATCH /sobjects/Case/{id}` with `If-Unmodified-Since` (Salesforce's weak conditional
    /// request, compared to the record's `LastModifiedDate`): 412 means the Case changed since.
    /// The header has whole seconds; `since` is rounded up, so a change within the second of
    /// `since` itself goes unseen.
    pub async fn update_case_if_unmodified(
        &self,
        case_id: &str,
        fields: &Map<String, Value>,
        since: DateTime<Utc>,
    ) -> Result<Update, UpstreamError> {
        self.update("update_case", "Case", case_id, fields, Some(since))
            .await
    }

    /// `PATCH /sobjects/Contact/{id}` (204).
    pub async fn update_contact(
        &self,
        contact_id: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), UpstreamError> {
        self.update("update_contact", "Contact", contact_id, fields, None)
            .await
            .map(|_| ())
    }

    async fn update(
        &self,
        call: &'static str,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Update, UpstreamError> {
        let url = self.url(&format!("/sobjects/{object}/{id}"));
        let since = since.map(http_date);
        let resp = self
            .send(call, |c| {
                let req = c.patch(url.clone()).json(fields);
                match &since {
                    Some(s) => req.header(reqwest::header::IF_UNMODIFIED_SINCE, s.as_str()),
                    None => req,
                }
            })
            .await?;
        if resp.status() == StatusCode::PRECONDITION_FAILED && since.is_some() {
            return Ok(Update::Conflict);
        }
        if resp.status().is_success() {
            Ok(Update::Applied)
        } else {
            Err(rejected(call, resp).await)
        }
    }

    /// `GET /sobjects/Contact/{id}?fields=...`; `None` when there is no such Contact.
    pub async fn contact(&self, id: &str, fields: &[&str]) -> Result<Option<Value>, UpstreamError> {
        let url = self.url(&format!("/sobjects/Contact/{id}"));
        let fields = fields.join(",");
        let resp = self
            .send("get_contact", |c| {
                c.get(url.clone()).query(&[("fields", fields.as_str())])
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        json_of("get_contact", resp).await.map(Some)
    }

    /// The records of one SOQL query's first page (`GET /query?q=...`); callers `LIMIT` it.
    pub async fn query(&self, call: &'static str, soql: &str) -> Result<Vec<Value>, UpstreamError> {
        let page = self.query_page(call, soql).await?;
        records(call, &page).cloned()
    }

    /// `GET /query?q=...`: the first page of the answer.
    pub async fn query_page(&self, call: &'static str, soql: &str) -> Result<Value, UpstreamError> {
        let url = self.url("/query");
        self.send_read(
            call,
            |c| c.get(url.clone()).query(&[("q", soql)]),
            |resp| json_of(call, resp),
        )
        .await
    }

    /// `GET /knowledgeManagement/settings`: the org's active Knowledge languages (`en_US`,
    /// `de`, ...), the default first; none when Knowledge is not enabled.
    pub async fn knowledge_languages(&self) -> Result<Vec<String>, UpstreamError> {
        let url = self.url("/knowledgeManagement/settings");
        let settings = self
            .send_read(
                "knowledge_settings",
                |c| c.get(url.clone()),
                |resp| json_of("knowledge_settings", resp),
            )
            .await?;
        if settings.get("knowledgeEnabled") != Some(&Value::Bool(true)) {
            return Ok(Vec::new());
        }
        let default = settings.get("defaultLanguage").and_then(Value::as_str);
        let mut languages: Vec<String> = settings
            .get("languages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|l| l.get("active") == Some(&Value::Bool(true)))
            .filter_map(|l| l.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        languages.sort_by_key(|l| Some(l.as_str()) != default);
        Ok(languages)
    }

    /// `GET /support/knowledgeArticles?q=...` in the language of `locale` (online articles only):
    /// the list items, best first.
    pub async fn list_articles(
        &self,
        query: &str,
        locale: &str,
        limit: usize,
        channel: Option<&str>,
    ) -> Result<Vec<Value>, UpstreamError> {
        let url = self.url("/support/knowledgeArticles");
        let q: String = query.chars().take(QUERY_CHARS).collect();
        let size = limit.clamp(1, 100).to_string();
        let lang = accept_language(locale);
        let resp = self
            .send("search_articles", |c| {
                let mut params = vec![("q", q.as_str()), ("pageSize", size.as_str())];
                if let Some(ch) = channel {
                    params.push(("channel", ch));
                }
                c.get(url.clone())
                    .query(&params)
                    .header(reqwest::header::ACCEPT_LANGUAGE, lang.as_str())
            })
            .await?;
        let list = json_of("search_articles", resp).await?;
        let items = list
            .get("articles")
            .and_then(Value::as_array)
            .ok_or_else(|| UpstreamError::Invalid {
                call: "search_articles",
                detail: "no `articles` array".into(),
            })?;
        Ok(items
            .iter()
            .filter(|item| {
                item.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()))
            })
            .take(limit)
            .cloned()
            .collect())
    }

    /// `GET /support/knowledgeArticles/{id}`: a list item's detail for its text, merged with the
    /// item; `None` when the article is gone.
    pub async fn article_detail(
        &self,
        item: &Value,
        locale: &str,
        channel: Option<&str>,
    ) -> Result<Option<Value>, UpstreamError> {
        let id = item.get("id").and_then(Value::as_str).unwrap_or("");
        let lang = accept_language(locale);
        let detail_url = self.url(&format!("/support/knowledgeArticles/{id}"));
        let resp = self
            .send("get_article", |c| {
                let mut params = vec![];
                if let Some(ch) = channel {
                    params.push(("channel", ch));
                }
                c.get(detail_url.clone())
                    .query(&params)
                    .header(reqwest::header::ACCEPT_LANGUAGE, lang.as_str())
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let mut detail = json_of("get_article", resp).await?;
        if let Some(obj) = detail.as_object_mut() {
            for k in [
                "title",
                "summary",
                "lastPublishedDate",
                "urlName",
                "articleNumber",
            ] {
                if !obj.contains_key(k)
                    && let Some(v) = item.get(k)
                {
                    obj.insert(k.into(), v.clone());
                }
            }
        }
        Ok(Some(detail))
    }
}

/// A Knowledge article (list item merged with its detail) as a knowledge-base article. Its text
/// is the summary and every text layout item; the publication time is `lastPublishedDate`.
pub fn article(v: &Value, locale: &str, url_template: &str) -> Option<Article> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let id = s("id")?.to_string();
    let mut body = String::new();
    if let Some(summary) = s("summary") {
        body.push_str(summary);
        body.push('\n');
    }
    for item in v
        .get("layoutItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(
            kind,
            "TEXT" | "TEXT_AREA" | "RICH_TEXT_AREA" | "LONG_TEXT_AREA"
        ) {
            continue;
        }
        if let Some(text) = item.get("value").and_then(Value::as_str) {
            body.push_str(&html_to_text(text));
            body.push('\n');
        }
    }
    let draft = s("publishStatus").is_some_and(|p| !p.eq_ignore_ascii_case("online"));
    Some(Article {
        withdrawn_at: None,
        url: url_template
            .replace("{id}", &id)
            .replace("{urlName}", s("urlName").unwrap_or(""))
            .replace("{articleNumber}", s("articleNumber").unwrap_or("")),
        id,
        title: s("title")?.to_string(),
        body,
        locale: locale.to_string(),
        published_at: s("lastPublishedDate").and_then(parse_datetime),
        draft,
    })
}

/// Salesforce Knowledge as a knowledge-base backend: several short queries (SOSL joins words
/// with AND), their articles merged, then each merged article's detail.
pub struct Knowledge {
    pub api: Arc<SalesforceApi>,
    pub channel: Option<String>,
    pub url_template: String,
    pub default_locale: String,
}

#[async_trait]
impl KnowledgeBase for Knowledge {
    async fn search(
        &self,
        query: &str,
        locale: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Article>, KbError> {
        let locale = locale.unwrap_or(&self.default_locale).to_ascii_lowercase();
        let channel = self.channel.as_deref();
        let unavailable = |e: UpstreamError| KbError::Unavailable(e.to_string());
        let mut lists = Vec::new();
        for q in remote_queries(query) {
            lists.push(
                self.api
                    .list_articles(&q, &locale, limit, channel)
                    .await
                    .map_err(unavailable)?,
            );
        }
        let items = interleave(
            lists,
            |item| item.get("id").and_then(Value::as_str).unwrap_or(""),
            limit,
        );
        let mut out = Vec::new();
        for item in &items {
            out.extend(self.detailed(item, &locale).await?);
        }
        Ok(out)
    }

    async fn article(&self, id: &str) -> Result<Option<Article>, KbError> {
        // Knowledge article ids are 15 or 18 letters and digits: anything else names none.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let locale = self.default_locale.to_ascii_lowercase();
        self.detailed(&json!({ "id": id }), &locale).await
    }
}

impl Knowledge {
    /// A list item (at least its `id`) with its detail in `locale` (`en-us`), in the
    /// connector's channel, as a knowledge-base article; `None` when the article is not online
    /// there.
    pub async fn detailed(&self, item: &Value, locale: &str) -> Result<Option<Article>, KbError> {
        let detail = self
            .api
            .article_detail(item, locale, self.channel.as_deref())
            .await
            .map_err(|e| KbError::Unavailable(e.to_string()))?;
        Ok(detail.and_then(|v| article(&v, locale, &self.url_template)))
    }
}

/// A record id: 15 or 18 letters and digits starting with the object's key `prefix` (`500`
/// Case, `003` Contact).
pub fn is_id_of(id: &str, prefix: &str) -> bool {
    (id.len() == 15 || id.len() == 18)
        && id.starts_with(prefix)
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Salesforce date-times: `2024-05-03T09:00:00.000Z`, `2024-05-03T09:00:00.000+0000`.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn http_dates_round_up_to_the_second() {
        let t = Utc.with_ymd_and_hms(2020, 11, 30, 8, 34, 54).unwrap();
        assert_eq!(http_date(t), "Mon, 30 Nov 2020 08:34:54 GMT");
        let later = t + chrono::Duration::milliseconds(1);
        assert_eq!(http_date(later), "Mon, 30 Nov 2020 08:34:55 GMT");
    }

    #[test]
    fn soql_literals_escape_quotes_and_backslashes() {
        assert_eq!(soql_quote("dana@x.example"), "'dana@x.example'");
        assert_eq!(
            soql_quote("o'hara\\' OR Id != '"),
            "'o\\'hara\\\\\\' OR Id != \\''"
        );
    }

    use super::*;
    use crate::escalation::locale_of;

    #[test]
    fn request_limit_is_retried_and_other_403s_are_not() {
        let limit = br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(retry_when(StatusCode::FORBIDDEN, limit));
        let access = br#"[{"message":"no","errorCode":"INSUFFICIENT_ACCESS"}]"#;
        assert!(!retry_when(StatusCode::FORBIDDEN, access));
        assert!(!retry_when(StatusCode::BAD_REQUEST, limit));
        assert!(!retry_when(StatusCode::FORBIDDEN, b"<html>"));
    }

    #[test]
    fn error_arrays_are_described() {
        let v: Value = serde_json::from_str(
            r#"[{"message":"No such column","errorCode":"INVALID_FIELD","fields":["Foo__c"]},{"message":"x","errorCode":"OTHER"}]"#,
        )
        .unwrap();
        assert_eq!(
            describe_errors(&v),
            "INVALID_FIELD [Foo__c]: No such column; OTHER: x"
        );
    }

    #[test]
    fn languages_and_articles() {
        assert_eq!(locale_of("en_US"), "en-us");
        assert_eq!(accept_language("en-us"), "en-US");
        assert_eq!(accept_language("de"), "de");
        let a = article(
            &json!({
                "id": "kA0000000000001", "title": "Reset", "urlName": "reset",
                "summary": "Short.", "lastPublishedDate": "2024-02-12T00:00:00Z",
                "layoutItems": [
                    {"type": "RICH_TEXT_AREA", "name": "Answer__c", "value": "<p>Do &amp; done</p>"},
                    {"type": "LOOKUP", "name": "Owner", "value": "005"}
                ]
            }),
            "en-us",
            "https://help.example/s/article/{urlName}",
        )
        .unwrap();
        assert_eq!(a.body, "Short.\nDo & done\n\n");
        assert_eq!(a.url, "https://help.example/s/article/reset");
        assert!(!a.draft);
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2024-02-12T00:00:00+00:00"
        );
        let draft = article(
            &json!({"id": "kA1", "title": "D", "publishStatus": "Draft"}),
            "en-us",
            "{id}",
        )
        .unwrap();
        assert!(draft.draft);
    }
}
