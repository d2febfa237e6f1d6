//! The Zendesk Support and Help Center API calls escalation-gate makes.

use crate::helpdesk::mapping::time_at;
use async_trait::async_trait;
use reqwest::{RequestBuilder, StatusCode, Url};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::config::Auth;
use crate::assess::kb::query::remote_queries;
use crate::http::{Upstream, UpstreamError};
use crate::kb::mirror::{KbSource, Page, Start};
use crate::kb::{Article, KbError, KnowledgeBase, html_to_text, interleave};

pub struct ZendeskApi {
    upstream: Upstream,
    base: Url,
    auth: Auth,
}

/// How a conditional ticket update ended.
pub enum Update {
    Applied,
    /// `safe_update` found a newer ticket: re-read and decide again.
    Conflict,
}

const HELP_CENTER_QUERY_CHARS: usize = 200;
/// Articles on a full page of the incremental article export.
const EXPORT_ARTICLES_PER_PAGE: usize = 1000;
/// Export Search Results page size: Zendesk recommends 100 (up to 1,000 can time out).
const EXPORT_PAGE_SIZE: usize = 100;

/// The key of the verdict write's audit metadata.
const WRITE_METADATA: &str = "escalation_gate";

impl ZendeskApi {
    pub fn new(upstream: Upstream, base: Url, auth: Auth) -> ZendeskApi {
        ZendeskApi {
            upstream,
            base,
            auth,
        }
    }

    fn url(&self, path: &str) -> Url {
        crate::http::join_path(&self.base, path)
    }

    fn authed(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Auth::ApiToken { email, token } => {
                req.basic_auth(format!("{email}/token"), Some(token.expose_secret()))
            }
            Auth::Bearer(token) => req.bearer_auth(token.expose_secret()),
        }
    }

    /// One authenticated request to `path` (the admin calls of `install zendesk`); the answer
    /// is returned as it is, for the caller to judge. A `POST` is sent once (a create whose
    /// answer is lost may have been applied: the caller reads back before creating again);
    /// every other call is retried as every call is.
    pub async fn send_admin(
        &self,
        call: &'static str,
        method: reqwest::Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.url(path);
        let once = method == reqwest::Method::POST;
        let build = |c: &reqwest::Client| {
            let req = self
                .authed(c.request(method.clone(), url.clone()))
                .query(query);
            match body {
                Some(b) => req.json(b),
                None => req,
            }
        };
        if once {
            self.upstream.send_once(call, build).await
        } else {
            self.upstream.send(call, build).await
        }
    }

    /// `POST /api/v2/apps/uploads`: an app package (`zip`, named `file_name`) as the
    /// multipart form field `uploaded_data`, sent once (an upload whose answer is lost only
    /// leaves an unused upload behind). The answer is returned as it is.
    pub async fn upload_app_package(
        &self,
        file_name: &str,
        zip: &[u8],
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.url("/api/v2/apps/uploads");
        self.upstream
            .send_once("install_upload", |c| {
                let package = reqwest::multipart::Part::bytes(zip.to_vec())
                    .file_name(file_name.to_string())
                    .mime_str("application/zip")
                    .expect("application/zip is a media type");
                self.authed(c.post(url.clone()))
                    .multipart(reqwest::multipart::Form::new().part("uploaded_data", package))
            })
            .await
    }

    /// `GET /api/v2/tickets/{id}.json?include=users,organizations`: the ticket with its
    /// requester and organization sideloaded. `None` when there is no such ticket.
    pub async fn ticket(&self, id: &str) -> Result<Option<Value>, UpstreamError> {
        let url = self.url(&format!("/api/v2/tickets/{id}.json"));
        let resp = self
            .upstream
            .send("get_ticket", |c| {
                self.authed(c.get(url.clone()))
                    .query(&[("include", "users,organizations")])
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        json_of("get_ticket", resp).await.map(Some)
    }

    /// `PUT /api/v2/tickets/{id}.json` with `safe_update`: one internal note and tags, applied
    /// together or not at all. `write_id` goes into the audit's metadata
    /// (`metadata.custom.escalation_gate.write`), so a write whose answer was lost can be
    /// recognised as this one ([`Self::has_write`]).
    pub async fn add_note_and_tags(
        &self,
        id: &str,
        note: &str,
        tags: &[String],
        updated_stamp: &str,
        write_id: &str,
    ) -> Result<Update, UpstreamError> {
        self.update_ticket(
            id,
            json!({
                "comment": { "body": note, "public": false },
                "additional_tags": tags,
                "metadata": { WRITE_METADATA: { "write": write_id } },
            }),
            Some(updated_stamp),
        )
        .await
    }

    /// Whether one of the ticket's latest 100 audits is the write `write_id`
    /// (`GET /api/v2/tickets/{id}/audits.json?sort_order=desc`).
    pub async fn has_write(&self, id: &str, write_id: &str) -> Result<bool, UpstreamError> {
        let url = self.url(&format!("/api/v2/tickets/{id}/audits.json"));
        let resp = self
            .upstream
            .send("list_audits", |c| {
                self.authed(c.get(url.clone()))
                    .query(&[("sort_order", "desc"), ("per_page", "100")])
            })
            .await?;
        let body = json_of("list_audits", resp).await?;
        Ok(body
            .get("audits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|a| {
                a.pointer(&format!("/metadata/custom/{WRITE_METADATA}/write"))
                    .and_then(Value::as_str)
                    == Some(write_id)
            }))
    }

    /// One page of the ticket's audits, oldest first (`GET /api/v2/tickets/{id}/audits.json`,
    /// offset pagination, 100 a page, `page` from 1); the answer's `next_page` says whether
    /// more follow.
    pub async fn audits_page(&self, id: &str, page: u32) -> Result<Value, UpstreamError> {
        let url = self.url(&format!("/api/v2/tickets/{id}/audits.json"));
        let page = page.to_string();
        self.upstream
            .send_read(
                "list_audits",
                |c| {
                    self.authed(c.get(url.clone())).query(&[
                        ("sort_order", "asc"),
                        ("per_page", "100"),
                        ("page", page.as_str()),
                    ])
                },
                |resp| json_of("list_audits", resp),
            )
            .await
    }

    /// `PUT /api/v2/tickets/{id}.json`: a partial update (`{"ticket": {...}}`), conditional on
    /// `updated_stamp` when given.
    pub async fn update_ticket(
        &self,
        id: &str,
        mut ticket: Value,
        updated_stamp: Option<&str>,
    ) -> Result<Update, UpstreamError> {
        if let Some(stamp) = updated_stamp {
            ticket["safe_update"] = json!(true);
            ticket["updated_stamp"] = json!(stamp);
        }
        let url = self.url(&format!("/api/v2/tickets/{id}.json"));
        let body = json!({ "ticket": ticket });
        let resp = self
            .upstream
            .send("update_ticket", |c| {
                self.authed(c.put(url.clone())).json(&body)
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Update::Applied),
            StatusCode::CONFLICT => Ok(Update::Conflict),
            _ => Err(rejected("update_ticket", resp).await),
        }
    }

    /// `POST /api/v2/tickets.json` with `{"ticket": {...}}`; returns the new ticket's id. The
    /// `Idempotency-Key` makes a resent request (a lost answer, a retry) create nothing new:
    /// within two hours Zendesk answers it with the first creation's answer.
    pub async fn create_ticket(
        &self,
        ticket: Value,
        idempotency_key: &str,
    ) -> Result<u64, UpstreamError> {
        let url = self.url("/api/v2/tickets.json");
        let body = json!({ "ticket": ticket });
        let resp = self
            .upstream
            .send("create_ticket", |c| {
                self.authed(c.post(url.clone()))
                    .header("Idempotency-Key", idempotency_key)
                    .json(&body)
            })
            .await?;
        let created = json_of("create_ticket", resp).await?;
        created["ticket"]["id"]
            .as_u64()
            .ok_or_else(|| UpstreamError::Invalid {
                call: "create_ticket",
                detail: "no ticket id in the answer".into(),
            })
    }

    /// `GET /api/v2/search.json?query=...`: the first page of results (up to 100), with more
    /// parameters such as `sort_by`.
    pub async fn search_tickets(
        &self,
        query: &str,
        more: &[(&str, &str)],
    ) -> Result<Vec<Value>, UpstreamError> {
        let url = self.url("/api/v2/search.json");
        let resp = self
            .upstream
            .send("search", |c| {
                self.authed(c.get(url.clone()))
                    .query(&[("query", query), ("per_page", "100")])
                    .query(more)
            })
            .await?;
        let body = json_of("search", resp).await?;
        Ok(body
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// One page of `GET /api/v2/search/export.json` (Export Search Results: tickets, cursor
    /// pagination, no 1,000-result cap, ordered by `created_at`): `query` must not name the type
    /// (`filter[type]=ticket` does), `after` is the previous page's `meta.after_cursor`.
    pub async fn export_tickets(
        &self,
        query: &str,
        include: Option<&str>,
        after: Option<&str>,
    ) -> Result<Value, UpstreamError> {
        let url = self.url("/api/v2/search/export.json");
        let size = EXPORT_PAGE_SIZE.to_string();
        self.upstream
            .send_read(
                "search_export",
                |c| {
                    let mut params = vec![
                        ("query", query),
                        ("filter[type]", "ticket"),
                        ("page[size]", size.as_str()),
                    ];
                    params.extend(include.map(|i| ("include", i)));
                    params.extend(after.map(|a| ("page[after]", a)));
                    self.authed(c.get(url.clone())).query(&params)
                },
                |resp| json_of("search_export", resp),
            )
            .await
    }

    /// `GET /api/v2/organizations/show_many.json?ids=...` (Show Many Organizations, at most 100
    /// ids): the organizations that exist.
    pub async fn organizations(&self, ids: &[u64]) -> Result<Vec<Value>, UpstreamError> {
        let url = self.url("/api/v2/organizations/show_many.json");
        let ids = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let resp = self
            .upstream
            .send("show_many_organizations", |c| {
                self.authed(c.get(url.clone()))
                    .query(&[("ids", ids.as_str())])
            })
            .await?;
        let body = json_of("show_many_organizations", resp).await?;
        match body.get("organizations") {
            Some(Value::Array(orgs)) => Ok(orgs.clone()),
            _ => Err(UpstreamError::Invalid {
                call: "show_many_organizations",
                detail: "no `organizations` array".into(),
            }),
        }
    }

    /// `GET /api/v2/users/search.json?query=email:...`: the users with this address.
    pub async fn users_by_email(&self, email: &str) -> Result<Vec<Value>, UpstreamError> {
        let url = self.url("/api/v2/users/search.json");
        let query = format!("email:{email}");
        let resp = self
            .upstream
            .send("search_users", |c| {
                self.authed(c.get(url.clone()))
                    .query(&[("query", query.as_str())])
            })
            .await?;
        let body = json_of("search_users", resp).await?;
        Ok(body
            .get("users")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// `PUT /api/v2/users/{id}.json` with `{"user": {...}}`.
    pub async fn update_user(&self, id: &str, user: Value) -> Result<(), UpstreamError> {
        let url = self.url(&format!("/api/v2/users/{id}.json"));
        let body = json!({ "user": user });
        let resp = self
            .upstream
            .send("update_user", |c| {
                self.authed(c.put(url.clone())).json(&body)
            })
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(rejected("update_user", resp).await)
        }
    }

    /// `GET /api/v2/help_center/articles/{id}.json` (Show Article): `None` when there is no
    /// such article.
    pub async fn show_article(&self, id: &str) -> Result<Option<Article>, UpstreamError> {
        let url = self.url(&format!("/api/v2/help_center/articles/{id}.json"));
        let resp = self
            .upstream
            .send("show_article", |c| self.authed(c.get(url.clone())))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = json_of("show_article", resp).await?;
        Ok(body.get("article").and_then(article))
    }

    /// `GET /api/v2/help_center/incremental/articles.json?start_time=`: up to 1,000 articles
    /// whose metadata changed at or after `start_time`, oldest change first, drafts included,
    /// and the `start_time` of the next page (the change time of the page's last article, as
    /// `next_page` carries it; `None` when there is no next page), and the latest `updated_at`
    /// on the page.
    pub async fn incremental_articles(
        &self,
        start_time: i64,
    ) -> Result<(Vec<Article>, Option<i64>, Option<i64>), UpstreamError> {
        let url = self.url("/api/v2/help_center/incremental/articles.json");
        let start = start_time.to_string();
        let resp = self
            .upstream
            .send("export_articles", |c| {
                self.authed(c.get(url.clone()))
                    .query(&[("start_time", start.as_str())])
            })
            .await?;
        let body = json_of("export_articles", resp).await?;
        let invalid = |detail: &str| UpstreamError::Invalid {
            call: "export_articles",
            detail: detail.into(),
        };
        let articles = body
            .get("articles")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("no `articles` array"))?;
        let next = match body.get("next_page") {
            None | Some(Value::Null) => None,
            Some(Value::String(page)) => Some(
                reqwest::Url::parse(page)
                    .ok()
                    .and_then(|u| {
                        u.query_pairs()
                            .find(|(k, _)| k == "start_time")
                            .and_then(|(_, v)| v.parse::<i64>().ok())
                    })
                    .ok_or_else(|| invalid("`next_page` without a `start_time`"))?,
            ),
            Some(_) => return Err(invalid("`next_page` is not a URL")),
        };
        let mapped: Vec<Article> = articles.iter().filter_map(article).collect();
        if mapped.len() != articles.len() {
            return Err(invalid("an article without `id` or `title`"));
        }
        let last = articles
            .iter()
            .filter_map(|a| time_at(a, "updated_at"))
            .map(|t| t.timestamp())
            .max();
        Ok((mapped, next, last))
    }

    /// `GET /api/v2/help_center/articles/search.json`.
    pub async fn search_articles(
        &self,
        query: &str,
        locale: Option<&str>,
        per_page: usize,
    ) -> Result<Vec<Article>, UpstreamError> {
        let url = self.url("/api/v2/help_center/articles/search.json");
        let query: String = query.chars().take(HELP_CENTER_QUERY_CHARS).collect();
        let per_page = per_page.clamp(1, 100).to_string();
        let resp = self
            .upstream
            .send("search_articles", |c| {
                let mut params = vec![("query", query.as_str()), ("per_page", per_page.as_str())];
                if let Some(l) = locale {
                    params.push(("locale", l));
                }
                self.authed(c.get(url.clone())).query(&params)
            })
            .await?;
        let body = json_of("search_articles", resp).await?;
        let results = body
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| UpstreamError::Invalid {
                call: "search_articles",
                detail: "no `results` array".into(),
            })?;
        Ok(results
            .iter()
            .filter(|r| {
                r.get("result_type")
                    .and_then(Value::as_str)
                    .unwrap_or("article")
                    == "article"
            })
            .filter_map(article)
            .collect())
    }
}

/// A Help Center article as a knowledge-base article. Its publication time is the later of
/// `created_at` and `edited_at`: the text as it stands existed only from its last edit on, and a
/// partner cannot be blamed for a text that did not exist yet.
fn article(v: &Value) -> Option<Article> {
    let time = |k: &str| time_at(v, k);
    let published_at = match (time("created_at"), time("edited_at")) {
        (Some(c), Some(e)) => Some(c.max(e)),
        (c, e) => c.or(e),
    };
    Some(Article {
        withdrawn_at: None,
        id: match v.get("id")? {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return None,
        },
        title: v.get("title")?.as_str()?.to_string(),
        body: html_to_text(v.get("body").and_then(Value::as_str).unwrap_or("")),
        url: v
            .get("html_url")
            .or_else(|| v.get("url"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        locale: v
            .get("locale")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase(),
        published_at,
        draft: v.get("draft").and_then(Value::as_bool).unwrap_or(false),
    })
}

async fn json_of(call: &'static str, resp: reqwest::Response) -> Result<Value, UpstreamError> {
    if !resp.status().is_success() {
        return Err(rejected(call, resp).await);
    }
    crate::http::read_json(call, resp).await
}

/// A refusal, with Zendesk's own `error`/`description` (never the request, which may carry
/// customer text).
async fn rejected(call: &'static str, resp: reqwest::Response) -> UpstreamError {
    let status = resp.status();
    let host = crate::http::host_of(resp.url());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let detail = [body.get("error"), body.get("description")]
        .into_iter()
        .flatten()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ");
    UpstreamError::Rejected {
        call,
        host,
        status,
        detail,
    }
}

/// The Help Center as a knowledge-base backend: several short queries (its search joins words
/// with AND), their articles merged.
pub struct HelpCenter(pub std::sync::Arc<ZendeskApi>);

#[async_trait]
impl KnowledgeBase for HelpCenter {
    async fn search(
        &self,
        query: &str,
        locale: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Article>, KbError> {
        let mut found = Vec::new();
        for q in remote_queries(query) {
            found.push(
                self.0
                    .search_articles(&q, locale, limit)
                    .await
                    .map_err(|e| KbError::Unavailable(e.to_string()))?,
            );
        }
        Ok(interleave(found, |a| &a.id, limit))
    }

    async fn article(&self, id: &str) -> Result<Option<Article>, KbError> {
        // Help Center article ids are numbers: anything else names no article.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        self.0
            .show_article(id)
            .await
            .map_err(|e| KbError::Unavailable(e.to_string()))
    }
}

/// The Help Center as the mirror reads it: the incremental article export. A full pass starts at
/// time 0; a pass of changes starts at the change time the previous pass ended on (articles
/// changed in that same second come again, and count once). The export lists no archived
/// article: those leave the mirror at its next full pass.
#[async_trait]
impl KbSource for HelpCenter {
    async fn page(&self, start: &Start, next: Option<&str>) -> Result<Page, KbError> {
        let from = match next.or(match start {
            Start::Since(cursor) => Some(cursor.as_str()),
            Start::Full => None,
        }) {
            Some(n) => n
                .parse::<i64>()
                .map_err(|_| KbError::Invalid(format!("not an export start time: `{n}`")))?,
            None => 0,
        };
        let (articles, following, last) = self
            .0
            .incremental_articles(from)
            .await
            .map_err(|e| KbError::Unavailable(e.to_string()))?;
        // Zendesk points every page at the next one, the last included: a next start that does
        // not move on ends the pass, unless the page was full of articles changed in one second
        // (the export cannot page past them).
        let following = following.filter(|t| *t > from);
        if following.is_none() && articles.len() >= EXPORT_ARTICLES_PER_PAGE {
            return Err(KbError::Invalid(format!(
                "more than {EXPORT_ARTICLES_PER_PAGE} articles changed at {from}: the export cannot page past them"
            )));
        }
        let last = last.unwrap_or(from).max(from);
        Ok(Page {
            articles,
            removed: Vec::new(),
            next: following.map(|t| t.to_string()),
            since: Some(last.to_string()),
        })
    }

    /// Show Article: gone (404) or a draft is not public.
    async fn is_public(&self, id: &str) -> Result<Option<bool>, KbError> {
        let shown = self
            .0
            .show_article(id)
            .await
            .map_err(|e| KbError::Unavailable(e.to_string()))?;
        Ok(Some(shown.is_some_and(|a| !a.draft)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn article_takes_the_later_of_created_and_edited() {
        let a = article(&json!({
            "id": 360001, "title": "Reset", "body": "<p>Do &amp; done</p>",
            "html_url": "https://acme.zendesk.com/hc/en-us/articles/360001-Reset",
            "locale": "en-US", "draft": false,
            "created_at": "2024-01-01T00:00:00Z", "edited_at": "2024-03-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(a.id, "360001");
        assert_eq!(a.body, "Do & done\n");
        assert_eq!(a.locale, "en-us");
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2024-03-01T00:00:00+00:00"
        );
        assert!(article(&json!({"title": "no id"})).is_none());
    }
}
