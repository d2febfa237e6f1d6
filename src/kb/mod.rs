//! Knowledge-base search: one trait, several backends. Backends only find candidates; whether a
//! candidate resolves the case is decided in `assess`, on our own scale. This file holds the
//! trait, the article types and a connector's validated choice of backend (with the settings
//! of the [`http`] backend); each backend is a file that implements the trait.

pub mod http;
pub mod local;
pub mod mirror;

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::http::RetrySettings;

/// A knowledge-base article as a backend returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: String,
    pub title: String,
    /// Plain text (HTML already stripped).
    pub body: String,
    pub url: String,
    /// Lower-case locale such as `en-us`.
    pub locale: String,
    /// When the article became visible; `None` when the backend does not say.
    pub published_at: Option<DateTime<Utc>>,
    pub draft: bool,
    /// When it stopped being public (archived, deleted), for an article a mirror keeps for its
    /// history: it counts only for escalations before then. `None`: public now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// An article's title and link, as reports and backfill lines name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleLink {
    pub id: String,
    pub title: String,
    pub url: String,
}

impl ArticleRef<'_> {
    pub fn link(&self) -> ArticleLink {
        ArticleLink {
            id: self.id.to_string(),
            title: self.title.to_string(),
            url: self.url.to_string(),
        }
    }
}

/// An article's fields borrowed from where they live (an [`Article`], or the embedded index's
/// memory-mapped store): what the judge reads, without copying a body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArticleRef<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub url: &'a str,
    pub locale: &'a str,
    pub published_at: Option<DateTime<Utc>>,
    pub draft: bool,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

impl ArticleRef<'_> {
    /// An owned copy, for callers that keep candidates beyond the search (`eval`).
    pub fn to_article(&self) -> Article {
        Article {
            id: self.id.to_string(),
            title: self.title.to_string(),
            body: self.body.to_string(),
            url: self.url.to_string(),
            locale: self.locale.to_string(),
            published_at: self.published_at,
            draft: self.draft,
            withdrawn_at: self.withdrawn_at,
        }
    }
}

/// Anything the judge can read as an article.
pub trait ArticleView {
    fn view(&self) -> ArticleRef<'_>;
}

impl ArticleView for Article {
    fn view(&self) -> ArticleRef<'_> {
        ArticleRef {
            id: &self.id,
            title: &self.title,
            body: &self.body,
            url: &self.url,
            locale: &self.locale,
            published_at: self.published_at,
            draft: self.draft,
            withdrawn_at: self.withdrawn_at,
        }
    }
}

impl ArticleView for ArticleRef<'_> {
    fn view(&self) -> ArticleRef<'_> {
        *self
    }
}

/// Where a connector's knowledge base lives, validated.
#[derive(Debug, Clone)]
pub enum KbBackend {
    Local(PathBuf),
    Helpdesk,
    Http(Box<HttpKbSettings>),
    /// A local mirror of the helpdesk's own knowledge base.
    Mirror(MirrorSettings),
}

impl KbBackend {
    /// Whether the articles are the helpdesk's own (searched there, or mirrored from there).
    pub fn is_helpdesks(&self) -> bool {
        matches!(self, KbBackend::Helpdesk | KbBackend::Mirror(_))
    }
}

/// How often a connector's mirror is brought up to date (`[knowledge_base.mirror]`).
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorSettings {
    /// Between two passes.
    pub every: std::time::Duration,
    /// Between two full passes (the ones that see deletions in a helpdesk that does not list
    /// them as changes).
    pub full_every: std::time::Duration,
    /// A mirror whose last good pass is older than this is `stale` (it keeps serving).
    pub stale_after: std::time::Duration,
    /// How long an article no longer public is kept, for escalations judged as of a time
    /// before it was withdrawn (`backfill`).
    pub history: std::time::Duration,
}

/// Where each article field sits inside one result (JSON pointers), as
/// `[knowledge_base.http.fields]` gives them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointers {
    pub id: String,
    pub title: String,
    /// HTML or plain text; tags are stripped either way.
    pub body: String,
    pub url: String,
    pub locale: Option<String>,
    /// RFC 3339. Without it an article is never counted against a partner.
    pub published_at: Option<String>,
    pub draft: Option<String>,
}

/// A validated `[knowledge_base.http]` table.
#[derive(Debug, Clone)]
pub struct HttpKbSettings {
    pub url: reqwest::Url,
    pub query_param: String,
    pub locale_param: Option<String>,
    pub limit_param: Option<String>,
    /// `(header name, value)`; the value is the scheme (if any) and the secret token.
    pub auth: Option<(String, SecretString)>,
    /// Pointer to the results array in the answer; empty: the answer is the array.
    pub results: String,
    pub fields: Pointers,
    /// Used when an article states no locale.
    pub default_locale: String,
    pub retry: RetrySettings,
}

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("knowledge base unavailable: {0}")]
    Unavailable(String),
    #[error("knowledge base answered something unexpected: {0}")]
    Invalid(String),
}

#[async_trait]
pub trait KnowledgeBase: Send + Sync {
    /// Up to `limit` candidate articles for `query`, best first by the backend's own order.
    /// `locale` narrows the search where the backend can; the judgement re-checks it anyway.
    async fn search(
        &self,
        query: &str,
        locale: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Article>, KbError>;

    /// The article with this id (reports name the articles that tickets record by id);
    /// `None` when there is none, or when the backend has no way to show one article (a
    /// search API alone): reports then name it by its id.
    async fn article(&self, id: &str) -> Result<Option<Article>, KbError> {
        let _ = id;
        Ok(None)
    }
}

/// Merges the candidates of several queries: the first of each, then the second of each, ...,
/// each article once (by id), at most `limit`.
pub fn interleave<T>(lists: Vec<Vec<T>>, id: impl Fn(&T) -> &str, limit: usize) -> Vec<T> {
    let mut lists: Vec<std::vec::IntoIter<T>> = lists.into_iter().map(Vec::into_iter).collect();
    let mut out: Vec<T> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while out.len() < limit {
        let mut any = false;
        for list in &mut lists {
            if let Some(item) = list.next() {
                any = true;
                if out.len() < limit && seen.insert(id(&item).to_string()) {
                    out.push(item);
                }
            }
        }
        if !any {
            break;
        }
    }
    out
}

/// Turns an HTML article body into plain text for re-scoring and quoting.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let closing = tag.starts_with('/');
                let name = tag
                    .trim_start_matches('/')
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let block = matches!(
                    name.as_str(),
                    "p" | "div" | "li" | "h1" | "h2" | "h3" | "h4" | "tr" | "pre"
                );
                if name == "br" || (closing && block) {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    decode_entities(&out)
}

fn decode_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_takes_turns_and_dedupes() {
        let merged = interleave(vec![vec!["a", "b", "c"], vec!["b", "d"], vec![]], |s| s, 4);
        assert_eq!(merged, ["a", "b", "d", "c"]);
        assert_eq!(interleave(vec![vec!["a", "b"]], |s| s, 1), ["a"]);
    }

    #[test]
    fn html_becomes_text() {
        assert_eq!(
            html_to_text("<p>Reset the <b>cache</b>&nbsp;&amp; retry</p><p>Done</p>"),
            "Reset the cache & retry\nDone\n"
        );
    }
}
