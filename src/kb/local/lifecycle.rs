//! The embedded knowledge base over its life: opened from its folder when the articles have not
//! changed since it was built, built (in the background, while an older index serves if there
//! is one) when they have, and what `/healthz` says about it.
//!
//! A connector's index folder holds one generation per content fingerprint (SHA-256 over the
//! index format, each article file's path and its bytes), in a folder named after it. A
//! generation is built in a `.building-*` folder and renamed into place only once complete, so
//! a folder with a generation's name is always a whole index; older generations are removed
//! once a newer one serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{FORMAT, LocalIndex, LocalKbError, markdown_files, read_dir_articles};
use crate::kb::Article;

/// Characters of the fingerprint a generation's folder is named with.
const GENERATION_NAME_LEN: usize = 32;

/// Can the knowledge base judge?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No index yet: the first one is being built.
    Building,
    Ready,
    /// No index, and building one failed (see `error`).
    Failed,
}

/// Where the index that serves came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Opened from its folder: the articles had not changed.
    Reused,
    /// Built by this process and persisted in its folder.
    Built,
    /// Built by this process in memory (no index folder, or it could not be written).
    Memory,
    /// An older generation from the folder, serving while the current one is built.
    Stale,
}

/// The knowledge base's state as `/healthz` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state: State,
    /// Articles in the index that serves.
    pub articles: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<Origin>,
    /// A newer index is being built (the one that serves, if any, stays until it is done).
    pub rebuilding: bool,
    /// Why the last build failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the knowledge base holds now; [`Status`] is derived from it.
struct Shared {
    /// The index that serves, and where it came from.
    index: Option<(Arc<LocalIndex>, Origin)>,
    rebuilding: bool,
    /// Why the last build failed.
    error: Option<String>,
}

impl Shared {
    fn state(&self) -> State {
        match (&self.index, &self.error) {
            (Some(_), _) => State::Ready,
            (None, Some(_)) => State::Failed,
            (None, None) => State::Building,
        }
    }
}

/// A connector's embedded knowledge base: the index that serves now, replaced whole when a
/// newer one is ready.
pub struct LocalKb {
    state: watch::Sender<Shared>,
}

impl LocalKb {
    /// Lists and fingerprints the articles below `articles`, then opens this connector's index
    /// from `folder` if it was built from the same content; otherwise reads the articles (a
    /// broken article is an error here) and builds the index on a thread of its own, in `folder`
    /// (or in memory without one), while an older generation from `folder` serves if there is one.
    pub fn start(
        name: &str,
        articles: &Path,
        folder: Option<&Path>,
    ) -> Result<Arc<LocalKb>, LocalKbError> {
        let paths = markdown_files(articles)?;
        let Some(folder) = folder else {
            let list = read_checked(&paths)?;
            let kb = LocalKb::with(None, true);
            kb.spawn_build(name, list, None);
            return Ok(kb);
        };
        let fingerprint = fingerprint(articles, &paths, Some(&folder.join(MANIFEST)))?;
        let current = folder.join(&fingerprint[..GENERATION_NAME_LEN]);
        if current.is_dir() {
            match LocalIndex::open(&current) {
                Ok(index) if index.fingerprint() == fingerprint => {
                    tracing::info!(
                        connector = name,
                        articles = index.len(),
                        folder = %current.display(),
                        "Knowledge base index reused: the articles have not changed"
                    );
                    return Ok(LocalKb::with(Some((index, Origin::Reused)), false));
                }
                Ok(_) => {
                    tracing::warn!(connector = name, folder = %current.display(), "Index folder holds another fingerprint; rebuilding")
                }
                Err(e) => {
                    tracing::warn!(connector = name, error = %e, "Index cannot be opened; rebuilding")
                }
            }
            // Out of the way of the new generation, which takes its name.
            if let Err(e) = std::fs::remove_dir_all(&current) {
                tracing::warn!(connector = name, error = %e, "Unusable index folder cannot be removed");
            }
        }
        let list = read_checked(&paths)?;
        let old = older_generation(folder, &current);
        let kb = match old {
            Some(index) => {
                tracing::info!(
                    connector = name,
                    articles = index.len(),
                    "Articles changed; an older index serves while the new one is built"
                );
                LocalKb::with(Some((index, Origin::Stale)), true)
            }
            None => LocalKb::with(None, true),
        };
        kb.spawn_build(
            name,
            list,
            Some(Generation {
                folder: folder.to_path_buf(),
                current,
                fingerprint,
            }),
        );
        Ok(kb)
    }

    fn with(index: Option<(LocalIndex, Origin)>, rebuilding: bool) -> Arc<LocalKb> {
        Arc::new(LocalKb {
            state: watch::Sender::new(Shared {
                index: index.map(|(i, o)| (Arc::new(i), o)),
                rebuilding,
                error: None,
            }),
        })
    }

    /// The index that serves now, if any.
    pub fn index(&self) -> Option<Arc<LocalIndex>> {
        self.state
            .borrow()
            .index
            .as_ref()
            .map(|(i, _)| Arc::clone(i))
    }

    pub fn status(&self) -> Status {
        let shared = self.state.borrow();
        Status {
            state: shared.state(),
            articles: shared.index.as_ref().map_or(0, |(i, _)| i.len()),
            index: shared.index.as_ref().map(|(_, o)| *o),
            rebuilding: shared.rebuilding,
            error: shared.error.clone(),
        }
    }

    /// Waits until an index serves (or the first build failed, the error).
    pub async fn ready(&self) -> Result<(), String> {
        let mut rx = self.state.subscribe();
        let shared = rx
            .wait_for(|s| s.state() != State::Building)
            .await
            .map_err(|e| e.to_string())?;
        match &shared.index {
            Some(_) => Ok(()),
            None => Err(shared.error.clone().unwrap_or_else(|| "no index".into())),
        }
    }

    fn spawn_build(self: &Arc<Self>, name: &str, articles: Vec<Article>, into: Option<Generation>) {
        let kb = Arc::clone(self);
        let name = name.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("kb-build-{name}"))
            .spawn(move || {
                let started = std::time::Instant::now();
                let n = articles.len();
                let built = match &into {
                    Some(generation) => generation.build(&name, articles),
                    None => LocalIndex::build(articles).map(|i| (i, Origin::Memory)),
                };
                match built {
                    Ok((index, origin)) => {
                        // The index that serves until now keeps its files open (mapped).
                        if let Some(generation) = &into {
                            generation.remove_older();
                        }
                        tracing::info!(connector = %name, articles = n, index = ?origin, seconds = started.elapsed().as_secs_f64(), "Knowledge base index built");
                        kb.state.send_modify(|s| {
                            s.index = Some((Arc::new(index), origin));
                            s.rebuilding = false;
                            s.error = None;
                        });
                    }
                    Err(e) => {
                        tracing::error!(connector = %name, error = %e, "Knowledge base index could not be built");
                        kb.build_failed(e.to_string());
                    }
                }
            });
        if let Err(e) = spawned {
            self.build_failed(format!("cannot start the build thread: {e}"));
        }
    }

    /// Records a build that did not end in an index: an index that serves keeps serving.
    fn build_failed(&self, error: String) {
        self.state.send_modify(|s| {
            s.rebuilding = false;
            s.error = Some(error);
        });
    }
}

/// Reads and parses the article files and checks their ids: a broken article is an error.
fn read_checked(paths: &[PathBuf]) -> Result<Vec<Article>, LocalKbError> {
    let list = read_dir_articles(paths)?;
    super::check_ids(&list)?;
    Ok(list)
}

/// Where a new generation goes.
pub(crate) struct Generation {
    folder: PathBuf,
    current: PathBuf,
    fingerprint: String,
}

impl Generation {
    /// The generation of `fingerprint` in `folder`.
    pub(crate) fn new(folder: &Path, fingerprint: &str) -> Generation {
        Generation {
            folder: folder.to_path_buf(),
            current: folder.join(&fingerprint[..GENERATION_NAME_LEN]),
            fingerprint: fingerprint.to_string(),
        }
    }

    /// The generation's index when it is in place and was built from the same fingerprint.
    pub(crate) fn open(&self) -> Option<LocalIndex> {
        LocalIndex::open(&self.current)
            .ok()
            .filter(|i| i.fingerprint() == self.fingerprint)
    }

    /// Builds in a `.building-*` folder and renames it into place; when the folder cannot be
    /// written, builds in memory (the service works, the next start builds again).
    pub(crate) fn build(
        &self,
        name: &str,
        articles: Vec<Article>,
    ) -> Result<(LocalIndex, Origin), LocalKbError> {
        let building = self.folder.join(format!(
            ".building-{}-{}",
            &self.fingerprint[..GENERATION_NAME_LEN],
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&building);
        let persisted = LocalIndex::build_in(&building, &articles, &self.fingerprint)
            .and_then(|()| {
                match std::fs::rename(&building, &self.current) {
                    Ok(()) => Ok(()),
                    // Another process put the same generation in place first.
                    Err(_) if self.current.is_dir() => {
                        let _ = std::fs::remove_dir_all(&building);
                        Ok(())
                    }
                    Err(source) => Err(LocalKbError::Write {
                        path: self.current.clone(),
                        source,
                    }),
                }
            })
            .and_then(|()| LocalIndex::open(&self.current));
        match persisted {
            Ok(index) => Ok((index, Origin::Built)),
            Err(e @ (LocalKbError::Write { .. } | LocalKbError::Index(_))) => {
                let _ = std::fs::remove_dir_all(&building);
                tracing::warn!(connector = name, error = %e, "Index folder cannot be written; building the index in memory");
                LocalIndex::build(articles).map(|i| (i, Origin::Memory))
            }
            Err(e) => Err(e),
        }
    }

    /// Removes the other generations (a search under way keeps its files until it ends).
    pub(crate) fn remove_older(&self) {
        for (path, _) in generations(&self.folder) {
            if path != self.current {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}

/// The generation folders below `folder`, newest first.
fn generations(folder: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut found: Vec<_> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.len() == GENERATION_NAME_LEN && name.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
        .collect();
    found.sort_by_key(|g| std::cmp::Reverse(g.1));
    found
}

/// The newest generation other than `current` that opens.
fn older_generation(folder: &Path, current: &Path) -> Option<LocalIndex> {
    generations(folder)
        .into_iter()
        .filter(|(path, _)| path != current)
        .find_map(|(path, _)| LocalIndex::open(&path).ok())
}

/// What a start learnt of each article file: its size and modification time, and the SHA-256
/// of its bytes. The next start reads only the files whose size or time changed (as git's
/// index does), so an unchanged knowledge base is checked without reading it.
const MANIFEST: &str = "files.manifest";

/// Files changed this recently are not recorded in the manifest: a change within the clock's
/// granularity could keep their size and time.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

struct Seen {
    size: u64,
    modified: Option<u128>,
    digest: [u8; 32],
}

/// SHA-256 (hex) over the index format, then each article file's path below `root` and the
/// SHA-256 of its bytes. A file whose size and modification time match `manifest` (in the index
/// folder) keeps the digest recorded there; the others are read, on every core. The manifest is
/// then rewritten.
pub fn fingerprint(
    root: &Path,
    paths: &[PathBuf],
    manifest: Option<&Path>,
) -> Result<String, LocalKbError> {
    let before = manifest
        .and_then(|m| std::fs::read_to_string(m).ok())
        .unwrap_or_default();
    let known = read_manifest(&before);
    let relative: Vec<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let chunk = paths.len().div_ceil(threads).max(1);
    let seen: Vec<(Seen, bool)> = std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .zip(relative.chunks(chunk))
            .map(|(part, names)| {
                let known = &known;
                scope.spawn(move || {
                    part.iter()
                        .zip(names)
                        .map(|(path, name)| look(path, known.get(name.as_str())))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("hashing does not panic"))
            .collect::<Result<Vec<_>, _>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    let mut all = Sha256::new();
    all.update(FORMAT.as_bytes());
    for (name, (file, _)) in relative.iter().zip(&seen) {
        all.update(name.as_bytes());
        all.update([0]);
        all.update(file.digest);
    }
    let read = seen.iter().filter(|(_, read)| *read).count();
    if let Some(manifest) = manifest
        && (read > 0 || known.len() != seen.len())
    {
        write_manifest(manifest, &relative, &seen);
    }
    Ok(format!("{:x}", all.finalize()))
}

/// The file's size, time and digest (the recorded one when size and time are unchanged), and
/// whether the file was read.
fn look(path: &Path, known: Option<&Seen>) -> Result<(Seen, bool), LocalKbError> {
    let io = |source| LocalKbError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos());
    if let Some(k) = known
        && k.size == meta.len()
        && modified.is_some()
        && k.modified == modified
    {
        let seen = Seen {
            size: k.size,
            modified,
            digest: k.digest,
        };
        return Ok((seen, false));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let seen = Seen {
        size: bytes.len() as u64,
        modified,
        digest: Sha256::digest(&bytes).into(),
    };
    Ok((seen, true))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Option<u8> {
    HEX.iter().position(|h| *h == c).map(|n| n as u8)
}

/// Lines `size<TAB>mtime-ns<TAB>sha256-hex<TAB>relative path`; a damaged or missing manifest
/// only means every file is read.
fn read_manifest(text: &str) -> std::collections::HashMap<String, Seen> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(4, '\t');
            let size = f.next()?.parse().ok()?;
            let modified = Some(f.next()?.parse().ok()?);
            let hex = f.next()?;
            let name = f.next()?;
            let mut digest = [0u8; 32];
            if hex.len() != 64 {
                return None;
            }
            for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
                *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
            }
            Some((
                name.to_string(),
                Seen {
                    size,
                    modified,
                    digest,
                },
            ))
        })
        .collect()
}

fn write_manifest(path: &Path, names: &[String], seen: &[(Seen, bool)]) {
    let settled = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|now| now.saturating_sub(SETTLED).as_nanos())
        .unwrap_or_default();
    let mut text = String::with_capacity(names.len() * 120);
    for (name, (file, _)) in names.iter().zip(seen) {
        let Some(modified) = file.modified.filter(|m| *m < settled) else {
            continue;
        };
        if name.contains(['\n', '\t']) {
            continue;
        }
        text.push_str(&format!("{}\t{modified}\t", file.size));
        for b in file.digest {
            text.push(HEX[usize::from(b >> 4)] as char);
            text.push(HEX[usize::from(b & 15)] as char);
        }
        text.push('\t');
        text.push_str(name);
        text.push('\n');
    }
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let partial = path.with_extension(format!("partial-{}", std::process::id()));
            std::fs::write(&partial, text)?;
            std::fs::rename(&partial, path)
        });
    if let Err(e) = written {
        tracing::warn!(file = %path.display(), error = %e, "Article manifest not written; the next start reads every article");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_content_with_or_without_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("articles");
        std::fs::create_dir_all(&root).unwrap();
        let long_ago = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30);
        for (name, text) in [("a.md", "alpha"), ("b.md", "beta")] {
            let path = root.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        let paths = super::super::markdown_files(&root).unwrap();
        let manifest = dir.path().join(MANIFEST);
        let plain = fingerprint(&root, &paths, None).unwrap();
        assert_eq!(fingerprint(&root, &paths, Some(&manifest)).unwrap(), plain);
        assert_eq!(
            read_manifest(&std::fs::read_to_string(&manifest).unwrap()).len(),
            2
        );
        assert_eq!(fingerprint(&root, &paths, Some(&manifest)).unwrap(), plain);

        std::fs::write(root.join("b.md"), "beta, edited").unwrap();
        let edited = fingerprint(&root, &paths, Some(&manifest)).unwrap();
        assert_ne!(edited, plain);
        assert_eq!(edited, fingerprint(&root, &paths, None).unwrap());
    }
}
