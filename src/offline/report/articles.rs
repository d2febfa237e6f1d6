//! The titles and links of the articles a scorecard names: tickets record an article by its id
//! only (Zendesk's `escalation_kb_article_<id>` tag, Salesforce's `kb_article=` detail), so the
//! scorecard looks each one up once in the connector's knowledge base.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::helpdesk::tags::tag_safe;
use crate::kb::local::{LocalIndex, markdown_files, read_dir_articles};
use crate::kb::{ArticleLink, ArticleRef, ArticleView, KbBackend, KnowledgeBase};

/// Where the articles a scorecard names are looked up.
pub enum Articles<'a> {
    /// A knowledge base that shows one article by its id ([`KnowledgeBase::article`]).
    Backend(&'a dyn KnowledgeBase),
    /// The embedded index that serves.
    Index(Arc<LocalIndex>),
    /// The embedded knowledge base's article folder, read for this (no index is built).
    Folder(&'a Path),
    /// Nowhere: articles are named by their id.
    Unnamed,
}

impl<'a> Articles<'a> {
    /// Where a connector's articles are looked up without building its index: the article
    /// folder of an embedded knowledge base, the helpdesk's own knowledge base (`helpdesk`, when
    /// it has one), none for an HTTP search API (it cannot show one article).
    pub fn of(backend: &'a KbBackend, helpdesk: Option<&'a dyn KnowledgeBase>) -> Articles<'a> {
        match backend {
            KbBackend::Local(dir) => Articles::Folder(dir),
            KbBackend::Helpdesk | KbBackend::Mirror(_) => {
                helpdesk.map_or(Articles::Unnamed, Articles::Backend)
            }
            KbBackend::Http(_) => Articles::Unnamed,
        }
    }
}

impl Articles<'_> {
    /// The title and link of each of `ids` found, by the id asked for. An article that cannot
    /// be looked up stays named by its id (logged, without the article's text): the scorecard
    /// is still written.
    pub async fn links(&self, ids: &BTreeSet<String>) -> BTreeMap<String, ArticleLink> {
        if ids.is_empty() {
            return BTreeMap::new();
        }
        match self {
            Articles::Backend(kb) => {
                let mut out = BTreeMap::new();
                for id in ids {
                    match kb.article(id).await {
                        Ok(Some(a)) => {
                            out.insert(id.clone(), a.view().link());
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(article = %id, error = %e, "Article not looked up; the scorecard names it by its id");
                        }
                    }
                }
                out
            }
            Articles::Index(index) => matching(index.articles(), ids),
            Articles::Folder(dir) => {
                match markdown_files(dir).and_then(|paths| read_dir_articles(&paths)) {
                    Ok(articles) => matching(articles.iter().map(ArticleView::view), ids),
                    Err(e) => {
                        tracing::warn!(error = %e, "Articles not read; the scorecard names them by their ids");
                        BTreeMap::new()
                    }
                }
            }
            Articles::Unnamed => BTreeMap::new(),
        }
    }
}

/// The articles among `all` whose id is one of `ids`, as recorded (a Zendesk tag holds the id
/// in lower case, with anything but letters, digits, `-` and `_` as `_`).
fn matching<'a>(
    all: impl Iterator<Item = ArticleRef<'a>>,
    ids: &BTreeSet<String>,
) -> BTreeMap<String, ArticleLink> {
    let mut out = BTreeMap::new();
    for a in all {
        for key in [a.id.to_string(), tag_safe(a.id)] {
            if ids.contains(&key) {
                out.insert(key, a.link());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::Article;

    #[test]
    fn articles_match_by_their_id_or_its_tag_form() {
        let article = |id: &str| Article {
            withdrawn_at: None,
            id: id.into(),
            title: format!("Title of {id}"),
            body: String::new(),
            url: format!("https://help.example/{id}"),
            locale: "en-us".into(),
            published_at: None,
            draft: false,
        };
        let all = [article("KB-1002"), article("kb 7"), article("kb-9")];
        let ids: BTreeSet<String> = ["kb-1002", "kb_7", "kb-404"].map(String::from).into();
        let found = matching(all.iter().map(ArticleView::view), &ids);
        assert_eq!(
            found.keys().collect::<Vec<_>>(),
            ["kb-1002", "kb_7"],
            "{found:?}"
        );
        assert_eq!(found["kb_7"].title, "Title of kb 7");
        assert_eq!(found["kb-1002"].id, "KB-1002");
    }
}
