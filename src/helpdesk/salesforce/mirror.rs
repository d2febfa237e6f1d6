//! Salesforce Knowledge as the mirror reads it: SOQL on `KnowledgeArticleVersion` (every
//! article type, Lightning Knowledge or Classic), one query per active Knowledge language
//! (Salesforce wants a single `PublishStatus` and a single `Language` in such a query), each
//! read behind its `nextRecordsUrl`. Each version listed is then read as the search reads it
//! (`/support/knowledgeArticles/{id}` in its language and the connector's channel) and mapped by
//! the same function, so an article is the same whichever backend found it.
//!
//! A full pass lists the `Online` versions. An incremental pass first lists the articles
//! archived since the cursor (`ArticleArchivedDate`: the article as a whole, not the versions a
//! new publication archives) as removed, then the `Online` versions changed since
//! (`LastModifiedDate`: an online version is read-only, so that is when it was published).
//! `Draft` versions are not public, so no pass reads them. The cursor is the latest of those
//! times seen, to the second; the next pass takes that second again (`>=`), so a change within
//! it is listed twice rather than missed. A pass resumed after its query locator expired (15
//! minutes without use, or released for newer queries) sends its query again from the last
//! change it read, to the second, and passes over the versions it listed already.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api::{Knowledge, next_records_url, parse_datetime, soql_quote};
use crate::escalation::locale_of;
use crate::http::UpstreamError;
use crate::kb::KbError;
use crate::kb::mirror::{KbSource, Page, Start};

/// The calls' name in logs and metrics.
const CALL: &str = "list_articles";

/// Salesforce Knowledge listed whole or by changes.
pub struct KnowledgeSource(pub std::sync::Arc<Knowledge>);

/// One query of a pass: the online versions, or the archived articles, of one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Step {
    language: String,
    archived: bool,
}

/// Where a pass goes on (the cursor of its next page, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Walk {
    /// The queries still to read, the current one first.
    steps: Vec<Step>,
    /// The current query's next batch (`nextRecordsUrl`); `None`: the query is still to send.
    locator: Option<String>,
    /// The latest change the current query has listed: where it starts again when its locator
    /// is no longer valid.
    resume: Option<Resume>,
    /// The latest change seen so far in this pass.
    newest: Option<DateTime<Utc>>,
}

/// The latest change a query has listed, and the versions listed with that time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Resume {
    at: DateTime<Utc>,
    versions: Vec<String>,
}

fn invalid(what: &str) -> KbError {
    KbError::Invalid(format!(
        "{what} is not a cursor of the Salesforce Knowledge source: the mirror must start a full pass"
    ))
}

fn unavailable(e: UpstreamError) -> KbError {
    KbError::Unavailable(e.to_string())
}

/// A cursor: a time to the second, as a SOQL datetime literal.
fn cursor_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The SOQL of one step of a pass that lists changes from `since` (all when `None`).
fn soql(step: &Step, since: Option<&str>) -> String {
    let (fields, status, time) = if step.archived {
        (
            "Id, KnowledgeArticleId, ArticleArchivedDate",
            "Archived",
            "ArticleArchivedDate",
        )
    } else {
        (
            "Id, KnowledgeArticleId, Language, LastModifiedDate",
            "Online",
            "LastModifiedDate",
        )
    };
    let changed = since
        .map(|s| format!(" AND {time} >= {s}"))
        .unwrap_or_default();
    format!(
        "SELECT {fields} FROM KnowledgeArticleVersion WHERE PublishStatus = '{status}' AND \
         Language = {}{changed} ORDER BY {time}, Id",
        soql_quote(&step.language)
    )
}

impl KnowledgeSource {
    /// The first walk of a pass: one query per active language (the archived ones first on an
    /// incremental pass, so an article archived and published again ends up listed).
    async fn first_walk(&self, incremental: bool) -> Result<Walk, KbError> {
        let languages = self
            .0
            .api
            .knowledge_languages()
            .await
            .map_err(unavailable)?;
        if languages.is_empty() {
            return Err(KbError::Unavailable(
                "Salesforce Knowledge is not enabled in the org, or has no active language \
                 (Setup > Knowledge Settings)"
                    .into(),
            ));
        }
        let mut steps = Vec::new();
        if incremental {
            steps.extend(languages.iter().map(|l| Step {
                language: l.clone(),
                archived: true,
            }));
        }
        steps.extend(languages.into_iter().map(|language| Step {
            language,
            archived: false,
        }));
        Ok(Walk {
            steps,
            locator: None,
            resume: None,
            newest: None,
        })
    }
}

#[async_trait]
impl KbSource for KnowledgeSource {
    async fn page(&self, start: &Start, next: Option<&str>) -> Result<Page, KbError> {
        let since = match start {
            Start::Full => None,
            Start::Since(c) => Some(parse_datetime(c).ok_or_else(|| invalid(c))?),
        };
        let mut walk = match next {
            None => self.first_walk(since.is_some()).await?,
            Some(n) => serde_json::from_str(n).map_err(|_| invalid("the page cursor"))?,
        };
        let step = walk
            .steps
            .first()
            .cloned()
            .ok_or_else(|| invalid("the page cursor"))?;
        let api = &self.0.api;
        let from = since.max(walk.resume.as_ref().map(|r| r.at)).map(cursor_of);
        let query = soql(&step, from.as_deref());
        let mut batch = match &walk.locator {
            Some(locator) => match api.query_more(CALL, locator).await {
                Err(UpstreamError::Rejected { detail, .. })
                    if detail.contains("INVALID_QUERY_LOCATOR") =>
                {
                    tracing::info!(
                        language = %step.language,
                        "Salesforce no longer holds the Knowledge query's next batch; querying again from the last change read"
                    );
                    api.query_page(CALL, &query).await
                }
                other => other,
            },
            None => api.query_page(CALL, &query).await,
        }
        .map_err(unavailable)?;
        let mut page = Page::default();
        loop {
            self.read_batch(&step, &batch, &mut walk, &mut page).await?;
            walk.locator = next_records_url(&batch);
            // A query sent again may answer a whole batch already read: go on to the next one.
            match &walk.locator {
                Some(locator) if page.articles.is_empty() && page.removed.is_empty() => {
                    batch = api.query_more(CALL, locator).await.map_err(unavailable)?;
                }
                _ => break,
            }
        }
        if walk.locator.is_none() {
            walk.steps.remove(0);
            walk.resume = None;
        }
        if walk.steps.is_empty() {
            let newest = walk.newest.max(since).unwrap_or(DateTime::UNIX_EPOCH);
            page.since = Some(cursor_of(newest));
        } else {
            page.next =
                Some(serde_json::to_string(&walk).map_err(|e| KbError::Invalid(e.to_string()))?);
        }
        Ok(page)
    }
}

impl KnowledgeSource {
    /// The records of one batch of `step`'s query into `page`: archived articles as removed,
    /// online versions read as the search reads them. A version the current query listed
    /// already (it was sent again) is passed over.
    async fn read_batch(
        &self,
        step: &Step,
        batch: &Value,
        walk: &mut Walk,
        page: &mut Page,
    ) -> Result<(), KbError> {
        let records = batch
            .get("records")
            .and_then(Value::as_array)
            .ok_or_else(|| KbError::Invalid("a Knowledge query answered no `records`".into()))?;
        let time_field = if step.archived {
            "ArticleArchivedDate"
        } else {
            "LastModifiedDate"
        };
        for r in records {
            let field = |k: &str| r.get(k).and_then(Value::as_str);
            let (Some(id), Some(version)) = (field("KnowledgeArticleId"), field("Id")) else {
                continue;
            };
            if let Some(t) = field(time_field).and_then(parse_datetime) {
                match &mut walk.resume {
                    Some(r)
                        if t < r.at || (t == r.at && r.versions.iter().any(|v| v == version)) =>
                    {
                        continue;
                    }
                    Some(r) if t == r.at => r.versions.push(version.to_string()),
                    _ => {
                        walk.resume = Some(Resume {
                            at: t,
                            versions: vec![version.to_string()],
                        })
                    }
                }
                walk.newest = walk.newest.max(Some(t));
            }
            if step.archived {
                page.removed.push(id.to_string());
                continue;
            }
            let locale = locale_of(field("Language").unwrap_or(&step.language));
            // Not online in the connector's channel: the search cannot find it either.
            page.articles.extend(
                self.0
                    .detailed(&serde_json::json!({ "id": id }), &locale)
                    .await?,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_one_status_and_one_language() {
        let online = Step {
            language: "en_US".into(),
            archived: false,
        };
        assert_eq!(
            soql(&online, None),
            "SELECT Id, KnowledgeArticleId, Language, LastModifiedDate FROM \
             KnowledgeArticleVersion WHERE PublishStatus = 'Online' AND Language = 'en_US' \
             ORDER BY LastModifiedDate, Id"
        );
        let archived = Step {
            language: "de".into(),
            archived: true,
        };
        assert_eq!(
            soql(&archived, Some("2024-05-03T09:00:00Z")),
            "SELECT Id, KnowledgeArticleId, ArticleArchivedDate FROM KnowledgeArticleVersion \
             WHERE PublishStatus = 'Archived' AND Language = 'de' AND ArticleArchivedDate >= \
             2024-05-03T09:00:00Z ORDER BY ArticleArchivedDate, Id"
        );
    }

    #[test]
    fn cursors_are_whole_seconds_and_refuse_anything_else() {
        let t = parse_datetime("2024-05-03T09:00:00.640+0000").unwrap();
        assert_eq!(cursor_of(t), "2024-05-03T09:00:00Z");
        assert!(parse_datetime("2024-05-03 OR Id != null").is_none());
    }
}
