//! Freshdesk Solutions as the mirror reads it: the categories
//! (`GET /api/v2/solutions/categories`), each one's folders
//! (`/categories/{id}/folders`) and their subfolders (`/folders/{id}/subfolders`, for a folder
//! whose `sub_folders_count` says it has some), then each folder's articles
//! (`/folders/{id}/articles`, 100 a page, the next page while the `Link` header names one) and
//! their translations into each language the account supports
//! (`GET /api/v2/settings/helpdesk`: `supported_languages`; `/folders/{id}/articles/{language}`,
//! paged alike). Articles are mapped by the function that maps the Solutions search, drafts (status 1)
//! included with `draft: true`. Freshdesk lists no changes by time: every pass is a full one
//! (`since` is `None`). The cursor holds the walk's position (categories and folders still to
//! read, the page), so an interrupted pass goes on where it stopped; a category or folder
//! deleted meanwhile (404) is passed over.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::api::FreshdeskApi;
use crate::http::UpstreamError;
use crate::kb::KbError;
use crate::kb::mirror::{KbSource, Page, Start};

/// Freshdesk Solutions listed whole.
pub struct SolutionsSource(pub Arc<FreshdeskApi>);

/// Where a pass goes on (the cursor of its next page, as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Walk {
    /// Categories whose folders are still to list.
    categories: Vec<u64>,
    /// Folders whose articles are still to list, the current one first.
    folders: Vec<u64>,
    /// The account's languages, the primary one first.
    languages: Vec<String>,
    /// The current folder's language still to list (an index into `languages`).
    language: usize,
    /// The current folder's next page in that language (from 1).
    page: u32,
}

fn unavailable(e: UpstreamError) -> KbError {
    KbError::Unavailable(e.to_string())
}

impl SolutionsSource {
    /// The folders of category `id`, and the subfolders of those that have some, and theirs.
    async fn folders(&self, id: u64) -> Result<Vec<u64>, KbError> {
        let mut folders = Vec::new();
        let mut pending = vec![(
            "list_folders",
            format!("/api/v2/solutions/categories/{id}/folders"),
        )];
        while let Some((call, path)) = pending.pop() {
            let found = self
                .0
                .solution_folders(call, &path)
                .await
                .map_err(unavailable)?
                .unwrap_or_default();
            for (folder, nested) in found {
                folders.push(folder);
                if nested {
                    pending.push((
                        "list_subfolders",
                        format!("/api/v2/solutions/folders/{folder}/subfolders"),
                    ));
                }
            }
        }
        Ok(folders)
    }
}

#[async_trait]
impl KbSource for SolutionsSource {
    /// Every pass is full, whatever `start` says: Freshdesk cannot list changes.
    async fn page(&self, _start: &Start, next: Option<&str>) -> Result<Page, KbError> {
        let mut walk = match next {
            Some(n) => serde_json::from_str(n).map_err(|_| {
                KbError::Invalid(format!(
                    "`{n}` is not a cursor of the Freshdesk Solutions source: the mirror must \
                     start a full pass"
                ))
            })?,
            None => {
                let languages = self.0.languages().await.map_err(unavailable)?;
                let categories = self
                    .0
                    .solution_folders("list_categories", "/api/v2/solutions/categories")
                    .await
                    .map_err(unavailable)?
                    .unwrap_or_default();
                Walk {
                    categories: categories.into_iter().map(|(id, _)| id).collect(),
                    languages,
                    ..Walk::default()
                }
            }
        };
        let mut page = Page::default();
        loop {
            if let Some(&folder) = walk.folders.first() {
                let number = walk.page.max(1);
                let translation = match walk.language {
                    0 => None,
                    i => Some(walk.languages.get(i).ok_or_else(|| {
                        KbError::Invalid("a Freshdesk Solutions cursor names no language".into())
                    })?),
                };
                let listed = self
                    .0
                    .folder_articles(folder, translation.map(String::as_str), number)
                    .await
                    .map_err(unavailable)?;
                let more = match listed {
                    Some((articles, more)) => {
                        page.articles = articles;
                        more
                    }
                    None => false,
                };
                walk.page = number + 1;
                if !more {
                    walk.page = 1;
                    walk.language += 1;
                    if walk.language >= walk.languages.len() {
                        walk.folders.remove(0);
                        walk.language = 0;
                    }
                }
                break;
            }
            if walk.categories.is_empty() {
                break;
            }
            let category = walk.categories.remove(0);
            walk.folders = self.folders(category).await?;
        }
        if !walk.folders.is_empty() || !walk.categories.is_empty() {
            page.next =
                Some(serde_json::to_string(&walk).map_err(|e| KbError::Invalid(e.to_string()))?);
        }
        Ok(page)
    }
}
