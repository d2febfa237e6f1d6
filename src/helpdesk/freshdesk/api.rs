//! The Freshdesk API v2 calls escalation-gate makes: tickets with their requester and company,
//! private notes, tags, contacts, ticket search, and Solutions search as a knowledge base.
//! Every call authenticates with HTTP Basic `{api_key}:X` and goes through the shared client
//! (429 and 5xx retried within the connector's `[helpdesk.http]` budget, `Retry-After` honoured).

use crate::helpdesk::mapping::time_at;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{RequestBuilder, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::assess::kb::query::remote_queries;
use crate::http::{Upstream, UpstreamError};
use crate::kb::{Article, KbError, KnowledgeBase, html_to_text, interleave};

pub struct FreshdeskApi {
    upstream: Upstream,
    base: Url,
    api_key: SecretString,
}

/// The longest Solutions search term sent.
const SOLUTIONS_TERM_CHARS: usize = 200;
/// Pages of the ticket search: 30 tickets each, 10 at most (300 tickets).
pub const SEARCH_PAGES: u32 = 10;
pub const SEARCH_PAGE_SIZE: usize = 30;
/// Articles a page of a folder's list holds (Freshdesk's most).
pub const FOLDER_PAGE_SIZE: usize = 100;
/// Solutions article status: published (1 is draft).
const PUBLISHED: u64 = 2;

impl FreshdeskApi {
    pub fn new(upstream: Upstream, base: Url, api_key: SecretString) -> FreshdeskApi {
        FreshdeskApi {
            upstream,
            base,
            api_key,
        }
    }

    fn url(&self, path: &str) -> Url {
        crate::http::join_path(&self.base, path)
    }

    fn authed(&self, req: RequestBuilder) -> RequestBuilder {
        req.basic_auth(self.api_key.expose_secret(), Some("X"))
    }

    /// `GET` of `path`; `None` on 404.
    async fn get(
        &self,
        call: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Value>, UpstreamError> {
        Ok(self.get_page(call, path, query).await?.map(|(v, _)| v))
    }

    /// `GET` of one page of a list at `path`, and whether another page follows (the `Link`
    /// header's `rel="next"`); `None` on 404.
    async fn get_page(
        &self,
        call: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<(Value, bool)>, UpstreamError> {
        let url = self.url(path);
        let resp = self
            .upstream
            .send(call, |c| self.authed(c.get(url.clone())).query(query))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let more = resp
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("rel=\"next\""));
        Ok(Some((json_of(call, resp).await?, more)))
    }

    /// A list of Solutions categories or folders at `path` (`GET`): their ids, with whether
    /// each has subfolders (`sub_folders_count`). `None`: it is gone (404).
    pub async fn solution_folders(
        &self,
        call: &'static str,
        path: &str,
    ) -> Result<Option<Vec<(u64, bool)>>, UpstreamError> {
        let Some(list) = self.get(call, path, &[]).await? else {
            return Ok(None);
        };
        let list = list.as_array().ok_or_else(|| UpstreamError::Invalid {
            call,
            detail: "the answer is not an array".into(),
        })?;
        Ok(Some(
            list.iter()
                .filter_map(|f| {
                    let id = f.get("id")?.as_u64()?;
                    let nested = f.get("sub_folders_count").and_then(Value::as_u64);
                    Some((id, nested.is_some_and(|n| n > 0)))
                })
                .collect(),
        ))
    }

    /// `GET /api/v2/settings/helpdesk`: the account's languages, the primary one first, then
    /// the ones Solutions articles may be translated into (`supported_languages`).
    pub async fn languages(&self) -> Result<Vec<String>, UpstreamError> {
        let settings = self
            .get("helpdesk_settings", "/api/v2/settings/helpdesk", &[])
            .await?
            .unwrap_or(Value::Null);
        let primary = settings
            .get("primary_language")
            .and_then(Value::as_str)
            .ok_or_else(|| UpstreamError::Invalid {
                call: "helpdesk_settings",
                detail: "no `primary_language`".into(),
            })?;
        let mut languages = vec![primary.to_string()];
        languages.extend(
            settings
                .get("supported_languages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|l| *l != primary)
                .map(str::to_string),
        );
        Ok(languages)
    }

    /// `GET /api/v2/solutions/folders/{id}/articles?page=n&per_page=...` (the primary
    /// language), or `.../articles/{language}` (a translation): one page of a folder's articles
    /// (drafts included) as knowledge-base articles, and whether another page follows. `None`:
    /// the folder, or its translation, is not there (404).
    pub async fn folder_articles(
        &self,
        folder: u64,
        translation: Option<&str>,
        page: u32,
    ) -> Result<Option<(Vec<Article>, bool)>, UpstreamError> {
        let page = page.to_string();
        let per_page = FOLDER_PAGE_SIZE.to_string();
        let path = match translation {
            None => format!("/api/v2/solutions/folders/{folder}/articles"),
            Some(l) => format!("/api/v2/solutions/folders/{folder}/articles/{l}"),
        };
        let Some((list, more)) = self
            .get_page(
                "list_folder_articles",
                &path,
                &[("page", page.as_str()), ("per_page", per_page.as_str())],
            )
            .await?
        else {
            return Ok(None);
        };
        let list = list.as_array().ok_or_else(|| UpstreamError::Invalid {
            call: "list_folder_articles",
            detail: "the answer is not an array of articles".into(),
        })?;
        Ok(Some((
            list.iter().filter_map(|a| self.article(a)).collect(),
            more,
        )))
    }

    /// A write (`PUT`/`POST` with a JSON body); the answer's body is not needed.
    async fn write(
        &self,
        call: &'static str,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<(), UpstreamError> {
        let url = self.url(path);
        let resp = self
            .upstream
            .send(call, |c| {
                self.authed(c.request(method.clone(), url.clone()))
                    .json(body)
            })
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(rejected(call, resp).await)
        }
    }

    /// `GET /api/v2/tickets/{id}?include=requester,company`: the ticket with its requester
    /// (`requester`: id, name, email) and company (`company`: id, name). `None`: no such ticket.
    pub async fn ticket(&self, id: &str) -> Result<Option<Value>, UpstreamError> {
        self.get(
            "get_ticket",
            &format!("/api/v2/tickets/{id}"),
            &[("include", "requester,company")],
        )
        .await
    }

    /// `GET /api/v2/contacts/{id}`: the contact (its `language`, `custom_fields`).
    async fn contact(&self, id: &str) -> Result<Option<Value>, UpstreamError> {
        self.get("get_contact", &format!("/api/v2/contacts/{id}"), &[])
            .await
    }

    /// The contact of the ticket's requester (its language), when the ticket names one.
    pub async fn requester_contact(&self, ticket: &Value) -> Result<Option<Value>, UpstreamError> {
        match ticket.get("requester_id").and_then(Value::as_u64) {
            Some(id) => self.contact(&id.to_string()).await,
            None => Ok(None),
        }
    }

    /// `GET /api/v2/contacts?email=...`: the contacts with this address.
    pub async fn contacts_by_email(&self, email: &str) -> Result<Vec<Value>, UpstreamError> {
        let found = self
            .get("list_contacts", "/api/v2/contacts", &[("email", email)])
            .await?;
        Ok(found
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default())
    }

    /// `GET /api/v2/tickets?email=...&updated_since=...`: the first page (100) of the tickets
    /// this address requested that changed since `since`, latest change first.
    pub async fn tickets_of_requester(
        &self,
        email: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Value>, UpstreamError> {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let found = self
            .get(
                "list_tickets",
                "/api/v2/tickets",
                &[
                    ("email", email),
                    ("updated_since", since.as_str()),
                    ("order_by", "updated_at"),
                    ("per_page", "100"),
                ],
            )
            .await?;
        Ok(found
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default())
    }

    /// `PUT /api/v2/contacts/{id}` with the fields to change.
    pub async fn update_contact(&self, id: &str, contact: &Value) -> Result<(), UpstreamError> {
        self.write(
            "update_contact",
            reqwest::Method::PUT,
            &format!("/api/v2/contacts/{id}"),
            contact,
        )
        .await
    }

    /// `POST /api/v2/tickets/{id}/notes` with `private: true`: a note only agents see. `text`
    /// is plain text; Freshdesk takes HTML, so it is escaped and its line breaks kept.
    pub async fn add_private_note(&self, id: &str, text: &str) -> Result<(), UpstreamError> {
        self.write(
            "add_note",
            reqwest::Method::POST,
            &format!("/api/v2/tickets/{id}/notes"),
            &json!({"body": text_to_html(text), "private": true}),
        )
        .await
    }

    /// `GET /api/v2/tickets/{id}/conversations`: the ticket's replies and notes, oldest first (the
    /// first page: 30).
    pub async fn conversations(&self, id: &str) -> Result<Vec<Value>, UpstreamError> {
        let found = self
            .get(
                "list_conversations",
                &format!("/api/v2/tickets/{id}/conversations"),
                &[],
            )
            .await?;
        Ok(found
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default())
    }

    /// `PUT /api/v2/tickets/{id}` with the fields to change. `tags` replaces the whole list.
    pub async fn update_ticket(&self, id: &str, ticket: &Value) -> Result<(), UpstreamError> {
        self.write(
            "update_ticket",
            reqwest::Method::PUT,
            &format!("/api/v2/tickets/{id}"),
            ticket,
        )
        .await
    }

    /// `GET /api/v2/search/tickets?query="..."&page=n`: one page (30 tickets, `page` from 1 to
    /// [`SEARCH_PAGES`]) of the tickets the filter query finds.
    pub async fn search_tickets(
        &self,
        query: &str,
        page: u32,
    ) -> Result<Vec<Value>, UpstreamError> {
        let quoted = format!("\"{query}\"");
        let page = page.to_string();
        let found = self
            .get(
                "search_tickets",
                "/api/v2/search/tickets",
                &[("query", quoted.as_str()), ("page", page.as_str())],
            )
            .await?
            .unwrap_or(Value::Null);
        found
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| UpstreamError::Invalid {
                call: "search_tickets",
                detail: "no `results` array".into(),
            })
    }

    /// `GET /api/v2/search/solutions?term=...`: Solutions articles, drafts included (the judge
    /// drops them).
    pub async fn search_solutions(&self, term: &str) -> Result<Vec<Article>, UpstreamError> {
        let term: String = term.chars().take(SOLUTIONS_TERM_CHARS).collect();
        let found = self
            .get(
                "search_solutions",
                "/api/v2/search/solutions",
                &[("term", term.as_str())],
            )
            .await?
            .unwrap_or(Value::Null);
        let list = found.as_array().ok_or_else(|| UpstreamError::Invalid {
            call: "search_solutions",
            detail: "the answer is not an array of articles".into(),
        })?;
        Ok(list.iter().filter_map(|a| self.article(a)).collect())
    }

    /// A Solutions article as a knowledge-base article: its locale is its category's language
    /// (the search answer's `hierarchy`), its publication time the latest of `created_at`,
    /// `modified_at` and `updated_at` (the text as it stands existed only from its last change
    /// on), and anything but status 2 (published) is a draft.
    fn article(&self, v: &Value) -> Option<Article> {
        let time = |k: &str| time_at(v, k);
        let id = match v.get("id")? {
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let locale = v
            .get("hierarchy")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|level| level.pointer("/data/language").and_then(Value::as_str))
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = match v.get("description_text").and_then(Value::as_str) {
            Some(text) => text.to_string(),
            None => html_to_text(v.get("description").and_then(Value::as_str).unwrap_or("")),
        };
        Some(Article {
            withdrawn_at: None,
            url: self
                .url(&format!("/support/solutions/articles/{id}"))
                .to_string(),
            id,
            title: v.get("title")?.as_str()?.to_string(),
            body,
            locale,
            published_at: ["created_at", "modified_at", "updated_at"]
                .into_iter()
                .filter_map(time)
                .max(),
            draft: v.get("status").and_then(Value::as_u64) != Some(PUBLISHED),
        })
    }
}

/// Plain text as note HTML: escaped, each line break kept.
pub fn text_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

async fn json_of(call: &'static str, resp: reqwest::Response) -> Result<Value, UpstreamError> {
    if !resp.status().is_success() {
        return Err(rejected(call, resp).await);
    }
    crate::http::read_json(call, resp).await
}

/// A refusal, with Freshdesk's own words: `{"code", "message"}` (401, 403) or
/// `{"description", "errors": [{"field", "message", "code"}]}` (400, 409). Never the request,
/// which may carry customer text.
async fn rejected(call: &'static str, resp: reqwest::Response) -> UpstreamError {
    let status = resp.status();
    let host = crate::http::host_of(resp.url());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut parts: Vec<String> = [text(&body, "code"), text(&body, "message")]
        .into_iter()
        .chain([text(&body, "description")])
        .flatten()
        .collect();
    parts.extend(
        body.get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| {
                [text(e, "field"), text(e, "code"), text(e, "message")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
    );
    UpstreamError::Rejected {
        call,
        host,
        status,
        detail: parts.join(": "),
    }
}

/// Freshdesk Solutions as a knowledge-base backend: several short searches, their articles
/// merged (the judge drops drafts, other languages and articles newer than the escalation).
pub struct Solutions(pub std::sync::Arc<FreshdeskApi>);

#[async_trait]
impl KnowledgeBase for Solutions {
    async fn search(
        &self,
        query: &str,
        _locale: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Article>, KbError> {
        let mut found = Vec::new();
        for q in remote_queries(query) {
            let articles = self
                .0
                .search_solutions(&q)
                .await
                .map_err(|e| KbError::Unavailable(e.to_string()))?;
            // A translation keeps its article's id: an article is its id in one language.
            found.push(
                articles
                    .into_iter()
                    .map(|a| (format!("{}/{}", a.id, a.locale), a))
                    .collect(),
            );
        }
        Ok(interleave(found, |(key, _)| key, limit)
            .into_iter()
            .map(|(_, a)| a)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> FreshdeskApi {
        let retry = crate::http::RetrySettings::from_file(None, None, None, "t", &mut Vec::new());
        FreshdeskApi::new(
            Upstream::new("freshdesk", retry).unwrap(),
            Url::parse("https://acme.freshdesk.com").unwrap(),
            SecretString::from("key"),
        )
    }

    #[test]
    fn article_reads_the_search_answer() {
        let a = api()
            .article(&json!({
                "id": 2, "title": "Reset", "status": 2,
                "description": "<p>Do &amp; done</p>", "description_text": "Do & done",
                "hierarchy": [{"level": 0, "type": "category", "data": {"id": 3, "name": "c", "language": "en"}}],
                "created_at": "2024-01-01T00:00:00Z", "modified_at": "2024-03-01T00:00:00Z",
                "updated_at": "2024-02-01T00:00:00Z"
            }))
            .unwrap();
        assert_eq!(a.id, "2");
        assert_eq!(a.body, "Do & done");
        assert_eq!(a.locale, "en");
        assert_eq!(
            a.url,
            "https://acme.freshdesk.com/support/solutions/articles/2"
        );
        assert!(!a.draft);
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2024-03-01T00:00:00+00:00"
        );
        let draft = api()
            .article(&json!({"id": 3, "title": "Draft", "status": 1}))
            .unwrap();
        assert!(draft.draft);
        assert!(api().article(&json!({"title": "no id"})).is_none());
    }

    #[test]
    fn notes_are_escaped_html() {
        assert_eq!(
            text_to_html("a <b> & \"c\"\nnext"),
            "a &lt;b&gt; &amp; &quot;c&quot;<br>next"
        );
    }
}
