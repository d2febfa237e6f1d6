//! What a helpdesk gives the mirror: its knowledge base listed page by page, either whole (a
//! full pass) or changed since an earlier pass (an incremental pass). Each helpdesk implements
//! [`KbSource`] with its own documented paging; the mirror only keeps the cursors it hands back.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::kb::{Article, KbError};

/// Where a pass goes on, as the source wrote it (a URL, a time, a page number...). Opaque to
/// the mirror, which stores it so that an interrupted pass resumes where it stopped.
pub type Cursor = String;

/// How a pass starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Start {
    /// Every article there is now: what the pass does not list is gone from the mirror at its
    /// end (deleted or archived in the helpdesk).
    Full,
    /// The articles changed since the pass that handed back this cursor
    /// ([`Page::since`]).
    Since(Cursor),
}

/// One page of a pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Page {
    /// Articles as they stand now, drafts included (`draft: true`; they never count against a
    /// partner). `published_at` is when the article's current text became public.
    pub articles: Vec<Article>,
    /// Ids of articles that are no longer public (archived, unpublished, deleted), when the
    /// helpdesk says so in a listing of changes.
    pub removed: Vec<String>,
    /// Where the next page of this pass starts; `None`: this was the last page.
    pub next: Option<Cursor>,
    /// On the last page: the cursor of the next incremental pass. `None`: the source lists no
    /// changes, and every pass is a full one.
    pub since: Option<Cursor>,
}

/// A helpdesk's knowledge base as the mirror reads it. Rate limits (429 with `Retry-After`) are
/// waited out inside [`KbSource::page`] by the helpdesk's HTTP client, as every call is; an
/// error means the pass stops here and is resumed from the same cursor later.
#[async_trait]
pub trait KbSource: Send + Sync {
    /// The first page of a pass (`Start`), or the page at `next` (a [`Page::next`] of the same
    /// pass).
    async fn page(&self, start: &Start, next: Option<&str>) -> Result<Page, KbError>;

    /// Whether the article is public in the helpdesk now (`false`: deleted, archived or back to
    /// draft), asked before the mirror's article makes an escalation bad, for a helpdesk whose
    /// passes of changes do not list removals. `None`: the source cannot tell (its passes do).
    async fn is_public(&self, id: &str) -> Result<Option<bool>, KbError> {
        let _ = id;
        Ok(None)
    }
}
