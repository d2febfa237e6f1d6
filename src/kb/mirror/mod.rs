//! A local mirror of a helpdesk's own knowledge base, kept as the connector's persisted embedded
//! index, so the judge that runs searches what `eval` measured: the whole knowledge base, the
//! full article text, our own ranking.
//!
//! A sync is one pass over the helpdesk's [`KbSource`]: a full pass (every article there is;
//! what it does not list is gone) when the mirror is empty or a full pass is due, otherwise the
//! changes since the last pass. Each page is appended to a journal before it is applied, so a
//! pass cut short (an error, a `kill -9`) resumes from its last page. A finished pass builds a
//! new index generation beside the one that serves (see [`crate::kb::local::lifecycle`]),
//! records it in `mirror.json` (written whole, then renamed), and only then swaps it in: a
//! judgement never sees half a sync. Nothing is written while a pass runs but the journal.
//!
//! Folder layout, `{index_dir}/{connector}/`: `mirror.json` (the generation that serves, the
//! cursor of the next pass, the times of the last passes), `mirror.journal` (the pass under
//! way), `mirror.lock` (one pass at a time across processes), and the generations.

pub mod source;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

pub use source::{Cursor, KbSource, Page, Start};

use super::local::lifecycle::Generation;
use super::local::{FORMAT, LocalIndex, LocalKbError};
use super::{Article, ArticleRef, ArticleView, KbError, MirrorSettings};

const SAVED: &str = "mirror.json";
const JOURNAL: &str = "mirror.journal";
const LOCK: &str = "mirror.lock";

/// What `/healthz` says of a mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorState {
    /// The first pass runs: nothing to serve yet (the helpdesk's search serves meanwhile).
    Syncing,
    /// Serving, last pass recent enough.
    Ready,
    /// Serving, but no pass succeeded for longer than `stale_after`.
    Stale,
    /// Nothing to serve, and the last pass failed (the helpdesk's search serves meanwhile).
    Failed,
}

/// A mirror's state as `/healthz` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorStatus {
    pub state: MirrorState,
    /// Public articles in the mirror that serves (drafts included).
    pub articles: usize,
    /// When the last pass that reached the helpdesk's present ended.
    pub last_sync: Option<DateTime<Utc>>,
    /// Seconds since then.
    pub lag_seconds: Option<i64>,
    /// A pass runs now.
    pub syncing: bool,
    /// Why the last pass failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a pass did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// `full` or `changes`.
    pub pass: &'static str,
    /// Pages read from the helpdesk by this process (a resumed pass counts only its new ones).
    pub pages: usize,
    /// Articles listed (each page's articles, repeats included).
    pub listed: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    /// Public articles in the mirror after the pass.
    pub articles: usize,
    /// Articles no longer public, kept for escalations judged as of an earlier time.
    pub withdrawn: usize,
    pub seconds: f64,
    /// The pass went on from a journal a previous process left.
    pub resumed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("the helpdesk's knowledge base: {0}")]
    Source(#[from] KbError),
    #[error(transparent)]
    Index(#[from] LocalKbError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another process is syncing this mirror ({0} is locked)")]
    Busy(PathBuf),
}

/// `mirror.json`: the generation that serves and where the next pass starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    /// The embedded index's format: a mirror of another format is synced again from the start.
    format: String,
    fingerprint: String,
    articles: usize,
    /// Where the next pass of changes starts; `None`: the next pass is a full one.
    since: Option<Cursor>,
    last_sync: DateTime<Utc>,
    last_full: DateTime<Utc>,
}

/// The journal's lines: the pass's start, then each page as read. Written from borrowed values
/// (`Line<&Start, &Page>`: a page is not copied to be journalled), read back owned.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line<S = Start, P = Page> {
    Start(S),
    Page(P),
}

struct Shared {
    index: Option<Arc<LocalIndex>>,
    saved: Option<Saved>,
    syncing: bool,
    error: Option<String>,
}

/// One connector's mirror: the index that serves, and the passes that replace it.
pub struct Mirror {
    name: String,
    source: Arc<dyn KbSource>,
    /// `None`: kept in memory only (synced from the start at every start).
    folder: Option<PathBuf>,
    pub settings: MirrorSettings,
    shared: watch::Sender<Shared>,
    /// One pass at a time in this process.
    pass: tokio::sync::Mutex<()>,
    /// Articles the helpdesk said are no longer public since the last pass
    /// ([`Mirror::confirm`]): never candidates, and gone from the next generation.
    gone: std::sync::Mutex<HashSet<String>>,
}

impl Mirror {
    /// Opens the mirror kept in `folder` (its last generation serves at once: nothing is read
    /// until a search needs it), or an empty one. Never calls the helpdesk.
    pub fn open(
        name: &str,
        source: Arc<dyn KbSource>,
        folder: Option<&Path>,
        settings: MirrorSettings,
    ) -> Arc<Mirror> {
        let (saved, index) = match folder.and_then(|f| read_saved(f).map(|s| (f, s))) {
            Some((folder, saved)) => match Generation::new(folder, &saved.fingerprint).open() {
                Some(index) => {
                    tracing::info!(connector = name, articles = index.len(), last_sync = %saved.last_sync, "Knowledge-base mirror opened");
                    (Some(saved), Some(Arc::new(index)))
                }
                None => {
                    tracing::warn!(
                        connector = name,
                        "The mirror's index cannot be opened; it is synced again from the start"
                    );
                    (None, None)
                }
            },
            None => (None, None),
        };
        Arc::new(Mirror {
            name: name.to_string(),
            source,
            folder: folder.map(Path::to_path_buf),
            settings,
            shared: watch::Sender::new(Shared {
                index,
                saved,
                syncing: false,
                error: None,
            }),
            pass: tokio::sync::Mutex::new(()),
            gone: std::sync::Mutex::default(),
        })
    }

    /// When the last pass ended: the mirror holds the helpdesk as it stood then.
    pub fn last_sync(&self) -> Option<DateTime<Utc>> {
        self.shared.borrow().saved.as_ref().map(|s| s.last_sync)
    }

    /// The articles found no longer public since the last pass.
    pub fn gone(&self) -> HashSet<String> {
        self.gone.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Asks the helpdesk whether the article that would make an escalation bad is still public
    /// (for a helpdesk whose passes of changes do not list removals). `false` records it as gone:
    /// it is no candidate any more, and the next pass leaves it out. An answer that does not
    /// come keeps the mirror's word (`true`).
    pub async fn confirm(&self, id: &str) -> bool {
        match self.source.is_public(id).await {
            Ok(Some(false)) => {
                tracing::info!(connector = %self.name, article = id, "An article of the mirror is no longer public in the helpdesk; it no longer counts");
                if let Ok(mut gone) = self.gone.lock() {
                    gone.insert(id.to_string());
                }
                false
            }
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(connector = %self.name, article = id, error = %e, "Could not confirm that an article is still public; the mirror's copy counts");
                true
            }
        }
    }

    /// The index that serves now, if a pass ever completed.
    pub fn index(&self) -> Option<Arc<LocalIndex>> {
        self.shared.borrow().index.clone()
    }

    pub fn status(&self, now: DateTime<Utc>) -> MirrorStatus {
        let shared = self.shared.borrow();
        let last_sync = shared.saved.as_ref().map(|s| s.last_sync);
        let lag_seconds = last_sync.map(|t| (now - t).num_seconds().max(0));
        let stale = lag_seconds.is_some_and(|lag| lag as u64 > self.settings.stale_after.as_secs());
        let state = match (&shared.index, shared.syncing, &shared.error) {
            (Some(_), _, _) if stale => MirrorState::Stale,
            (Some(_), _, _) => MirrorState::Ready,
            (None, true, _) | (None, false, None) => MirrorState::Syncing,
            (None, false, Some(_)) => MirrorState::Failed,
        };
        MirrorStatus {
            state,
            articles: shared
                .saved
                .as_ref()
                .filter(|_| shared.index.is_some())
                .map_or(0, |s| s.articles),
            last_sync,
            lag_seconds,
            syncing: shared.syncing,
            error: shared.error.clone(),
        }
    }

    /// When the next pass is due: at once for an empty mirror, else `every` after the last.
    pub fn next_due(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match &self.shared.borrow().saved {
            None => now,
            Some(s) => s.last_sync + self.settings.every,
        }
    }

    /// Runs one pass: a pass left unfinished in the journal goes on; otherwise a full pass when
    /// the mirror is empty, `full` is asked, the source lists no changes, or `full_every` has
    /// passed; the changes since the last pass else. The new index serves once it is complete.
    pub async fn sync(&self, full: bool) -> Result<SyncReport, MirrorError> {
        let pass = self.pass.lock().await;
        self.sync_locked(full, pass).await
    }

    /// Makes sure the mirror can serve: when no pass ever completed (here or in another
    /// process), runs one; `None` when it already serves.
    pub async fn ensure(&self) -> Option<Result<SyncReport, MirrorError>> {
        let pass = self.pass.lock().await;
        self.adopt_newer();
        if self.index().is_some() {
            return None;
        }
        Some(self.sync_locked(false, pass).await)
    }

    async fn sync_locked(
        &self,
        full: bool,
        _pass: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<SyncReport, MirrorError> {
        let _lock = match &self.folder {
            Some(folder) => Some(lock(folder)?),
            None => None,
        };
        self.adopt_newer();
        self.shared.send_modify(|s| s.syncing = true);
        let result = self.run_pass(full).await;
        self.shared.send_modify(|s| {
            s.syncing = false;
            s.error = result.as_ref().err().map(ToString::to_string);
        });
        crate::metrics::kb_mirror_sync(
            &self.name,
            result.as_ref().map_or("failed", |_| "ok"),
            result.as_ref().ok().map(|r| r.articles),
        );
        match &result {
            Ok(r) => {
                tracing::info!(connector = %self.name, pass = r.pass, pages = r.pages, added = r.added, changed = r.changed, removed = r.removed, articles = r.articles, seconds = r.seconds, "Knowledge-base mirror synced")
            }
            Err(e) => {
                tracing::warn!(connector = %self.name, error = %e, "Knowledge-base mirror sync failed; the last good mirror keeps serving")
            }
        }
        result
    }

    /// Another process (`kb sync`) may have completed a pass since this one read `mirror.json`.
    fn adopt_newer(&self) {
        let Some(folder) = &self.folder else { return };
        let Some(saved) = read_saved(folder) else {
            return;
        };
        let current = self.shared.borrow().saved.as_ref().map(|s| s.last_sync);
        if current.is_some_and(|t| t >= saved.last_sync) {
            return;
        }
        if let Some(index) = Generation::new(folder, &saved.fingerprint).open() {
            self.shared.send_modify(|s| {
                s.index = Some(Arc::new(index));
                s.saved = Some(saved);
            });
        }
    }

    async fn run_pass(&self, full: bool) -> Result<SyncReport, MirrorError> {
        let started = std::time::Instant::now();
        let now = Utc::now();
        let journal = self.folder.as_ref().map(|f| f.join(JOURNAL));
        let saved = self.shared.borrow().saved.clone();
        let serving = self.index();
        // A pass of changes goes on only over the mirror it started from.
        let left = journal
            .as_deref()
            .and_then(open_journal)
            .filter(|(start, _)| *start == Start::Full || serving.is_some());
        let resumed = left.is_some();
        let (start, replayed) = match left {
            Some((start, pages)) => (start, Some(pages)),
            None => {
                let due_full = saved.as_ref().is_none_or(|s| {
                    full || s.since.is_none()
                        || now - s.last_full
                            >= chrono::Duration::from_std(self.settings.full_every)
                                .unwrap_or(chrono::TimeDelta::MAX)
                });
                let start = match (due_full, saved.as_ref().and_then(|s| s.since.clone())) {
                    (false, Some(since)) => Start::Since(since),
                    _ => Start::Full,
                };
                if let Some(path) = &journal {
                    write_journal(path, &Line::<_, &Page>::Start(&start), true)?;
                }
                (start, None)
            }
        };
        let gone = self.gone();
        let mut pass = Pass::new(&start, serving.as_deref(), &gone, now);
        let mut last: Option<(Option<Cursor>, Option<Cursor>)> = None;
        for page in replayed.into_iter().flatten() {
            last = Some((page.next.clone(), page.since.clone()));
            pass.apply(page);
        }
        let mut new_pages = 0;
        let since = loop {
            let next = match last {
                Some((None, since)) => break since,
                Some((next, _)) => next,
                None => None,
            };
            let page = self.source.page(&start, next.as_deref()).await?;
            last = Some(self.journalled(journal.as_deref(), &mut pass, page)?);
            new_pages += 1;
        };
        let listed = pass.listed;
        let applied = pass.finish(
            start == Start::Full,
            serving.as_deref(),
            chrono::TimeDelta::from_std(self.settings.history).unwrap_or(chrono::TimeDelta::MAX),
        );
        let articles = applied.articles;
        let fingerprint = fingerprint(&articles);
        let count = applied.public;
        let kept = articles.len() - count;
        let record = Saved {
            format: FORMAT.to_string(),
            fingerprint: fingerprint.clone(),
            articles: count,
            since,
            last_sync: now,
            last_full: match (&start, &saved) {
                (Start::Since(_), Some(s)) => s.last_full,
                _ => now,
            },
        };
        let index = match &self.folder {
            Some(folder) => {
                let generation = Generation::new(folder, &fingerprint);
                let index = match generation.open() {
                    Some(index) => index,
                    None => generation.build(&self.name, articles)?.0,
                };
                write_saved(folder, &record)?;
                if let Some(path) = &journal {
                    let _ = std::fs::remove_file(path);
                }
                generation.remove_older();
                index
            }
            None => LocalIndex::build(articles)?,
        };
        self.shared.send_modify(|s| {
            s.index = Some(Arc::new(index));
            s.saved = Some(record);
        });
        if let Ok(mut now_gone) = self.gone.lock() {
            now_gone.retain(|id| !gone.contains(id));
        }
        Ok(SyncReport {
            pass: match start {
                Start::Full => "full",
                Start::Since(_) => "changes",
            },
            pages: new_pages,
            listed,
            added: applied.added,
            changed: applied.changed,
            removed: applied.removed,
            articles: count,
            withdrawn: kept,
            seconds: started.elapsed().as_secs_f64(),
            resumed,
        })
    }

    /// Appends a page read from the helpdesk to the journal, then applies it; where the pass
    /// goes on (`next`, `since`).
    fn journalled(
        &self,
        journal: Option<&Path>,
        pass: &mut Pass,
        page: Page,
    ) -> Result<(Option<Cursor>, Option<Cursor>), MirrorError> {
        if let Some(path) = journal {
            write_journal(path, &Line::<&Start, _>::Page(&page), false)?;
        }
        let cursors = (page.next.clone(), page.since.clone());
        pass.apply(page);
        Ok(cursors)
    }
}

/// The articles after a pass, and what it changed.
struct Applied {
    /// Public ones and the ones kept for their history (`withdrawn_at`).
    articles: Vec<Article>,
    public: usize,
    added: usize,
    changed: usize,
    removed: usize,
}

/// A pass under way: the articles as its pages leave them, and a digest of each public article
/// before it (to count what it changed without a second copy of the knowledge base).
struct Pass {
    /// By id and locale: a translation is an article of its own with its original's id.
    after: BTreeMap<(String, String), Article>,
    before: HashMap<(String, String), u64>,
    /// Articles no longer public: kept, withdrawn at this time.
    now: DateTime<Utc>,
    listed: usize,
}

impl Pass {
    /// A full pass starts from the articles kept for their history (it keeps what it lists,
    /// and withdraws the others at its end); a pass of changes from the whole mirror. Articles
    /// found `gone` are withdrawn now.
    fn new(
        start: &Start,
        index: Option<&LocalIndex>,
        gone: &HashSet<String>,
        now: DateTime<Utc>,
    ) -> Pass {
        let mut before = HashMap::new();
        let mut after = BTreeMap::new();
        for a in index.into_iter().flat_map(LocalIndex::articles) {
            let public = a.withdrawn_at.is_none();
            if public {
                before.insert(key(a.id, a.locale), digest(&a));
            }
            if !public || matches!(start, Start::Since(_)) {
                let mut kept = a.to_article();
                if gone.contains(a.id) && public {
                    kept.withdrawn_at = Some(now);
                }
                after.insert(key(a.id, a.locale), kept);
            }
        }
        Pass {
            after,
            before,
            now,
            listed: 0,
        }
    }

    /// A pass of changes replaces what a page lists and withdraws what it names removed (in
    /// every locale); a full pass takes what it lists.
    fn apply(&mut self, page: Page) {
        self.listed += page.articles.len();
        for id in &page.removed {
            for (_, a) in self
                .after
                .range_mut(key(id, "")..)
                .take_while(|(k, _)| k.0 == *id)
            {
                a.withdrawn_at.get_or_insert(self.now);
            }
        }
        for a in page.articles {
            self.after.insert(key(&a.id, &a.locale), a);
        }
    }

    /// The articles sorted by id (the same articles always give the same index), and the
    /// counts. A full pass withdraws the public articles it did not list (read again from the
    /// mirror they were in); articles withdrawn longer than `history` ago are dropped.
    fn finish(
        mut self,
        full: bool,
        index: Option<&LocalIndex>,
        history: chrono::TimeDelta,
    ) -> Applied {
        if full {
            for a in index.into_iter().flat_map(LocalIndex::articles) {
                let k = key(a.id, a.locale);
                if a.withdrawn_at.is_none() && !self.after.contains_key(&k) {
                    let mut kept = a.to_article();
                    kept.withdrawn_at = Some(self.now);
                    self.after.insert(k, kept);
                }
            }
        }
        let oldest = self.now - history;
        self.after
            .retain(|_, a| a.withdrawn_at.is_none_or(|t| t > oldest));
        let (mut public, mut added, mut changed, mut still) = (0, 0, 0, 0);
        for (k, a) in self.after.iter().filter(|(_, a)| a.withdrawn_at.is_none()) {
            public += 1;
            match self.before.get(k) {
                None => added += 1,
                Some(d) => {
                    still += 1;
                    if *d != digest(&a.view()) {
                        changed += 1;
                    }
                }
            }
        }
        let removed = self.before.len() - still;
        let mut articles: Vec<Article> = self.after.into_values().collect();
        articles
            .sort_by(|a, b| (a.id.len(), &a.id, &a.locale).cmp(&(b.id.len(), &b.id, &b.locale)));
        Applied {
            articles,
            public,
            added,
            changed,
            removed,
        }
    }
}

fn key(id: &str, locale: &str) -> (String, String) {
    (id.to_string(), locale.to_string())
}

/// A digest of everything the index holds of an article.
fn digest(a: &ArticleRef<'_>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        a.id,
        a.title,
        a.body,
        a.url,
        a.locale,
        a.published_at,
        a.draft,
    )
        .hash(&mut h);
    h.finish()
}

/// SHA-256 (hex) over the index format and every article as the index holds it.
fn fingerprint(articles: &[Article]) -> String {
    let mut all = Sha256::new();
    all.update(FORMAT.as_bytes());
    all.update(b"\0mirror\0");
    for a in articles {
        all.update(serde_json::to_vec(a).unwrap_or_default());
        all.update([0]);
    }
    format!("{:x}", all.finalize())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> MirrorError + '_ {
    move |source| MirrorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Holds the folder's lock file while a pass runs; another process's pass makes this fail.
fn lock(folder: &Path) -> Result<std::fs::File, MirrorError> {
    std::fs::create_dir_all(folder).map_err(io_error(folder))?;
    let path = folder.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(MirrorError::Busy(path)),
        Err(std::fs::TryLockError::Error(e)) => Err(io_error(&path)(e)),
    }
}

/// `mirror.json`, when it is there, whole, and of this index format.
fn read_saved(folder: &Path) -> Option<Saved> {
    let text = std::fs::read_to_string(folder.join(SAVED)).ok()?;
    serde_json::from_str::<Saved>(&text)
        .ok()
        .filter(|s| s.format == FORMAT && s.fingerprint.len() >= 32)
}

/// Writes `mirror.json` beside itself, flushed, then renames it into place.
fn write_saved(folder: &Path, saved: &Saved) -> Result<(), MirrorError> {
    let path = folder.join(SAVED);
    let partial = folder.join(format!("{SAVED}.partial-{}", std::process::id()));
    let text = serde_json::to_vec_pretty(saved).unwrap_or_default();
    let mut file = std::fs::File::create(&partial).map_err(io_error(&partial))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&partial))?;
    std::fs::rename(&partial, &path).map_err(io_error(&path))
}

/// Appends one line to the journal (`fresh`: starts a new journal).
fn write_journal(path: &Path, line: &impl Serialize, fresh: bool) -> Result<(), MirrorError> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(io_error(folder))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(path)
        .map_err(io_error(path))?;
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    bytes.push(b'\n');
    file.write_all(&bytes)
        .and_then(|()| file.sync_data())
        .map_err(io_error(path))
}

/// The pass a journal holds: its start, and its pages as they are read back. A line cut short
/// (the process died while writing it) ends the pages; a journal without a start is none.
fn open_journal(path: &Path) -> Option<(Start, impl Iterator<Item = Page>)> {
    let file = std::fs::File::open(path).ok()?;
    let mut lines = std::io::BufReader::new(file).split(b'\n');
    let start = match serde_json::from_slice::<Line>(&lines.next()?.ok()?).ok()? {
        Line::Start(start) => start,
        Line::Page(_) => return None,
    };
    let pages = lines.map_while(
        |line| match serde_json::from_slice::<Line>(&line.ok()?).ok()? {
            Line::Page(page) => Some(page),
            Line::Start(_) => None,
        },
    );
    Some((start, pages))
}

#[cfg(test)]
mod tests;
