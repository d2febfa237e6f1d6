//! A knowledge base behind any HTTP search API that answers JSON: `GET {url}?{query_param}=...`
//! (plus the locale and the limit where the API takes them), with the results array and each
//! article's fields found by JSON pointers (RFC 6901) set in the connector file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{Article, HttpKbSettings, KbError, KnowledgeBase, html_to_text};
use crate::escalation::locale_of;
use crate::http::Upstream;

pub struct HttpKb {
    upstream: Upstream,
    settings: HttpKbSettings,
}

impl HttpKb {
    pub fn new(settings: HttpKbSettings) -> Result<HttpKb, reqwest::Error> {
        Ok(HttpKb {
            upstream: Upstream::new("knowledge_base", settings.retry)?,
            settings,
        })
    }

    /// One result as an [`Article`]; `None` when it lacks an id, a title or a body.
    fn article(&self, r: &Value) -> Option<Article> {
        let f = &self.settings.fields;
        let text = |p: &str| match r.pointer(p)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let optional = |p: &Option<String>| p.as_deref().and_then(text);
        Some(Article {
            withdrawn_at: None,
            id: text(&f.id)?,
            title: text(&f.title)?,
            body: html_to_text(&text(&f.body)?),
            url: text(&f.url).unwrap_or_default(),
            locale: optional(&f.locale)
                .map(|l| locale_of(&l))
                .unwrap_or_else(|| self.settings.default_locale.clone()),
            published_at: optional(&f.published_at)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
            draft: f
                .draft
                .as_deref()
                .and_then(|p| r.pointer(p))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

#[async_trait]
impl KnowledgeBase for HttpKb {
    async fn search(
        &self,
        query: &str,
        locale: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Article>, KbError> {
        let s = &self.settings;
        let limit_text = limit.to_string();
        let mut params: Vec<(&str, &str)> = vec![(s.query_param.as_str(), query)];
        if let (Some(p), Some(l)) = (&s.locale_param, locale) {
            params.push((p, l));
        }
        if let Some(p) = &s.limit_param {
            params.push((p, &limit_text));
        }
        let resp = self
            .upstream
            .send("search", |c| {
                let req = c.get(s.url.clone()).query(&params);
                match &s.auth {
                    Some((name, value)) => req.header(name.as_str(), value.expose_secret()),
                    None => req,
                }
            })
            .await
            .map_err(|e| KbError::Unavailable(e.to_string()))?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(KbError::Unavailable(format!(
                "the search answered HTTP {status}"
            )));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| KbError::Invalid(format!("the search answer is not JSON: {e}")))?;
        let results = body
            .pointer(&s.results)
            .and_then(Value::as_array)
            .ok_or_else(|| {
                KbError::Invalid(format!("the search answer has no array at `{}`", s.results))
            })?;
        Ok(results
            .iter()
            .filter_map(|r| self.article(r))
            .take(limit)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RetrySettings;
    use crate::kb::Pointers;

    fn kb(locale: Option<&str>, published_at: Option<&str>) -> HttpKb {
        HttpKb::new(HttpKbSettings {
            url: "http://127.0.0.1:9/search".parse().unwrap(),
            query_param: "q".into(),
            locale_param: None,
            limit_param: None,
            auth: None,
            results: "".into(),
            fields: Pointers {
                id: "/id".into(),
                title: "/t".into(),
                body: "/b".into(),
                url: "/u".into(),
                locale: locale.map(str::to_string),
                published_at: published_at.map(str::to_string),
                draft: None,
            },
            default_locale: "de-ch".into(),
            retry: RetrySettings::from_file(None, None, None, "test", &mut Vec::new()),
        })
        .unwrap()
    }

    #[test]
    fn results_map_to_articles_and_incomplete_ones_are_left_out() {
        let with = kb(Some("/l"), Some("/p"));
        let a = with
            .article(&serde_json::json!({
                "id": 42, "t": "Title", "b": "<p>A &amp; B</p>", "l": "en_US",
                "p": "2024-01-02T03:04:05+01:00"
            }))
            .unwrap();
        assert_eq!(
            (
                a.id.as_str(),
                a.body.trim(),
                a.locale.as_str(),
                a.url.as_str()
            ),
            ("42", "A & B", "en-us", "")
        );
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2024-01-02T02:04:05+00:00"
        );
        assert!(!a.draft);
        assert!(
            with.article(&serde_json::json!({"id": 1, "b": "x"}))
                .is_none()
        );
        // Without the pointers: the default locale, and no publication time (never counted).
        let without = kb(None, None);
        let a = without
            .article(
                &serde_json::json!({"id": "x", "t": "T", "b": "B", "p": "2024-01-01T00:00:00Z"}),
            )
            .unwrap();
        assert_eq!(a.locale, "de-ch");
        assert!(a.published_at.is_none());
    }
}
