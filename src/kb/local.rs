//! The embedded knowledge base: a tantivy index over a folder of Markdown articles with front
//! matter (or articles handed over directly: the `eval` command), and the one copy of the
//! articles in a flat store beside it ([`store`]). Persisted in a folder (memory-mapped, reused
//! while the articles are unchanged: see [`lifecycle`]) or built in memory.

pub mod lifecycle;
pub mod store;

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;
use tantivy::collector::TopDocs;
use tantivy::directory::{MmapDirectory, OwnedBytes};
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, ReloadPolicy, Term, doc};

use super::{Article, ArticleRef, KbError};
use store::Store;

const ANALYZER: &str = "kb_en";
/// Title matches count twice a body match (chosen on the evaluation's dev split).
const TITLE_BOOST: f32 = 2.0;
/// Longer queries are cut to their first distinct terms.
const MAX_QUERY_TERMS: usize = 64;
const INDEX_MEMORY_BYTES: usize = 50_000_000;
/// Changes whenever the schema, the analyzer or the store's layout does: a persisted index of
/// another format is rebuilt, never read.
pub const FORMAT: &str = "escalation-gate kb index 4 (tantivy 0.25)";

/// Why the local knowledge base could not be built or opened.
#[derive(Debug, thiserror::Error)]
pub enum LocalKbError {
    #[error("{path}: {message}")]
    Article { path: PathBuf, message: String },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write the index: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("two articles have the id `{0}` in the same locale")]
    DuplicateId(String),
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("{path}: cannot open the index: {message}")]
    Open { path: PathBuf, message: String },
}

/// The index and the articles it finds. Searches borrow from it; it is shared behind an `Arc`
/// and replaced whole when the articles change.
pub struct LocalIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    store: Store,
    /// The content fingerprint it was built from (empty for one built in memory).
    fingerprint: String,
}

#[derive(Clone, Copy)]
struct Fields {
    ord: Field,
    title: Field,
    body: Field,
    locale: Field,
    /// Seconds when the article was withdrawn (`i64::MAX`: public now).
    withdrawn: Field,
    /// `withdrawn` for an article kept for its history, else nothing.
    state: Field,
}

/// The `state` of an article a mirror keeps for its history.
const WITHDRAWN: &str = "withdrawn";

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Frequencies only: the search is a bag of terms (no phrase queries), so positions would
    // only double the index.
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        ord: builder.add_u64_field("ord", FAST),
        title: builder.add_text_field("title", text.clone()),
        body: builder.add_text_field("body", text),
        locale: builder.add_text_field("locale", STRING),
        withdrawn: builder.add_i64_field("withdrawn", INDEXED),
        state: builder.add_text_field("state", STRING),
    };
    (builder.build(), fields)
}

impl LocalIndex {
    /// Builds the index in memory.
    pub fn build(articles: Vec<Article>) -> Result<LocalIndex, LocalKbError> {
        check_ids(&articles)?;
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        write_index(&index, fields, &articles, "")?;
        let store = Store::open(OwnedBytes::new(store::encode(&articles))).map_err(|e| {
            LocalKbError::Index(tantivy::TantivyError::InternalError(e.to_string()))
        })?;
        LocalIndex::with(index, fields, store, String::new())
    }

    /// Builds the index in the folder `dir` (created; it must not hold an index yet), with
    /// `fingerprint` recorded in its commit; [`LocalIndex::open`] serves it.
    pub fn build_in(
        dir: &Path,
        articles: &[Article],
        fingerprint: &str,
    ) -> Result<(), LocalKbError> {
        check_ids(articles)?;
        let write_error = |source| LocalKbError::Write {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let path = dir.join(store::FILE_NAME);
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(write_error)?);
        store::write(&mut file, articles)
            .and_then(|()| std::io::Write::flush(&mut file))
            .map_err(write_error)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(dir, schema)?;
        write_index(&index, fields, articles, fingerprint)
    }

    /// Opens an index a [`LocalIndex::build_in`] wrote, memory-mapped: nothing is read until a
    /// search needs it.
    pub fn open(dir: &Path) -> Result<LocalIndex, LocalKbError> {
        let open_error = |message: String| LocalKbError::Open {
            path: dir.to_path_buf(),
            message,
        };
        let mmap = MmapDirectory::open(dir).map_err(|e| open_error(e.to_string()))?;
        let bytes = tantivy::directory::Directory::open_read(&mmap, Path::new(store::FILE_NAME))
            .map_err(|e| open_error(e.to_string()))?
            .read_bytes()
            .map_err(|e| open_error(e.to_string()))?;
        let store = Store::open(bytes).map_err(|e| open_error(e.to_string()))?;
        let index = Index::open(mmap)?;
        let fingerprint = index.load_metas()?.payload.unwrap_or_default();
        let (schema, fields) = schema();
        if index.schema() != schema {
            return Err(open_error("written with another schema".into()));
        }
        LocalIndex::with(index, fields, store, fingerprint)
    }

    fn with(
        index: Index,
        fields: Fields,
        store: Store,
        fingerprint: String,
    ) -> Result<LocalIndex, LocalKbError> {
        index.tokenizers().register(ANALYZER, analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let docs = reader.searcher().num_docs() as usize;
        if docs != store.len() {
            return Err(LocalKbError::Index(tantivy::TantivyError::InternalError(
                format!("{docs} documents indexed for {} articles", store.len()),
            )));
        }
        Ok(LocalIndex {
            index,
            reader,
            fields,
            store,
            fingerprint,
        })
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Every article, in the store's order (reports look articles up by id).
    pub fn articles(&self) -> impl Iterator<Item = ArticleRef<'_>> {
        (0..self.store.len()).filter_map(|ord| self.store.get(ord).ok())
    }

    /// The content fingerprint the index was built from (empty when built in memory).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Up to `limit` candidate articles for `query`, best first, read in place from the store.
    /// `locale` narrows the search. Articles kept for their history (withdrawn) are left out.
    /// What `eval` and the bench search with.
    pub fn search(
        &self,
        query: &str,
        locale: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ArticleRef<'_>>, KbError> {
        self.search_at(query, locale, limit, None)
    }

    /// [`LocalIndex::search`] as of `at`: an article withdrawn then or before is left out, one
    /// withdrawn later is a candidate (it was public at `at`); `None`: every withdrawn article is
    /// left out. What the service searches with, as of each escalation.
    pub fn search_at(
        &self,
        query: &str,
        locale: Option<&str>,
        limit: usize,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ArticleRef<'_>>, KbError> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.fields.body)
            .map_err(|e| KbError::Invalid(e.to_string()))?;
        let mut stream = analyzer.token_stream(query);
        let mut terms: Vec<String> = Vec::new();
        while let Some(token) = stream.next() {
            if !terms.contains(&token.text) {
                terms.push(token.text.clone());
                if terms.len() == MAX_QUERY_TERMS {
                    break;
                }
            }
        }
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * 2);
        for t in &terms {
            for (field, boost) in [(self.fields.title, TITLE_BOOST), (self.fields.body, 1.0)] {
                let q = TermQuery::new(
                    Term::from_field_text(field, t),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
            }
        }
        let text_query: Box<dyn Query> = Box::new(BooleanQuery::new(clauses));
        let searcher = self.reader.searcher();
        let locale_term = locale
            .map(|l| Term::from_field_text(self.fields.locale, &l.to_ascii_lowercase()))
            .map(|term| {
                let docs = searcher
                    .doc_freq(&term)
                    .map_err(|e| KbError::Invalid(e.to_string()))?;
                Ok::<_, KbError>((docs, term))
            })
            .transpose()?;
        let mut filters: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        // When every article has the locale, the clause would only add the same score to each:
        // leaving it out ranks the same, and lets the search skip blocks of articles that cannot
        // reach the top (block-max WAND), which a conjunction cannot.
        if let Some((docs, term)) = locale_term
            && docs < searcher.num_docs()
        {
            filters.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        let withdrawn = Term::from_field_text(self.fields.state, WITHDRAWN);
        if searcher
            .doc_freq(&withdrawn)
            .map_err(|e| KbError::Invalid(e.to_string()))?
            > 0
        {
            filters.push(match at {
                None => (
                    Occur::MustNot,
                    Box::new(TermQuery::new(withdrawn, IndexRecordOption::Basic)),
                ),
                Some(at) => (
                    Occur::Must,
                    Box::new(RangeQuery::new(
                        Bound::Excluded(Term::from_field_i64(
                            self.fields.withdrawn,
                            at.timestamp(),
                        )),
                        Bound::Unbounded,
                    )),
                ),
            });
        }
        let query: Box<dyn Query> = if filters.is_empty() {
            text_query
        } else {
            filters.insert(0, (Occur::Must, text_query));
            Box::new(BooleanQuery::new(filters))
        };
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit))
            .map_err(|e| KbError::Invalid(e.to_string()))?;
        let mut out = Vec::with_capacity(top.len());
        for (_score, address) in top {
            let ords = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("ord")
                .map_err(|e| KbError::Invalid(e.to_string()))?;
            let ord = ords
                .first(address.doc_id)
                .ok_or_else(|| KbError::Invalid("document without ordinal".into()))?;
            out.push(
                self.store
                    .get(ord as usize)
                    .map_err(|e| KbError::Invalid(e.to_string()))?,
            );
        }
        Ok(out)
    }
}

/// An id names one article in each locale: a translation keeps its original's id (Zendesk,
/// Salesforce and Freshdesk all give translations the article's id).
fn check_ids(articles: &[Article]) -> Result<(), LocalKbError> {
    let mut seen = BTreeSet::new();
    for a in articles {
        if !seen.insert((a.id.as_str(), a.locale.as_str())) {
            return Err(LocalKbError::DuplicateId(a.id.clone()));
        }
    }
    Ok(())
}

/// Indexes the articles in order (document `n` is store record `n`) with one writer thread,
/// then merges them into one segment, so the same articles always give the same index.
fn write_index(
    index: &Index,
    fields: Fields,
    articles: &[Article],
    fingerprint: &str,
) -> Result<(), LocalKbError> {
    index.tokenizers().register(ANALYZER, analyzer());
    let mut writer = index.writer_with_num_threads(1, INDEX_MEMORY_BYTES)?;
    writer.set_merge_policy(Box::new(NoMergePolicy));
    for (ord, a) in articles.iter().enumerate() {
        let mut document = doc!(
            fields.ord => ord as u64,
            fields.title => a.title.as_str(),
            fields.body => a.body.as_str(),
            fields.locale => a.locale.as_str(),
            fields.withdrawn => a.withdrawn_at.map_or(i64::MAX, |t| t.timestamp()),
        );
        if a.withdrawn_at.is_some() {
            document.add_text(fields.state, WITHDRAWN);
        }
        writer.add_document(document)?;
    }
    writer.commit()?;
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
    }
    let mut commit = writer.prepare_commit()?;
    commit.set_payload(fingerprint);
    commit.commit()?;
    writer.wait_merging_threads()?;
    Ok(())
}

/// Every `*.md` file below `dir`, sorted by path.
pub fn markdown_files(dir: &Path) -> Result<Vec<PathBuf>, LocalKbError> {
    let mut paths = Vec::new();
    collect_markdown(dir, &mut paths)?;
    Ok(paths)
}

/// Reads and parses the article files, in the order given.
pub fn read_dir_articles(paths: &[PathBuf]) -> Result<Vec<Article>, LocalKbError> {
    let mut articles = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| LocalKbError::Io {
            path: path.clone(),
            source,
        })?;
        let article = parse_markdown(&text).map_err(|message| LocalKbError::Article {
            path: path.clone(),
            message,
        })?;
        articles.push(article);
    }
    Ok(articles)
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::new(Language::English).expect("tantivy ships English stop words"))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Depth first, each folder's entries sorted by name: the order of the paths sorted whole.
fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LocalKbError> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
        .map_err(|source| LocalKbError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        // The entry's type comes with the listing; only a link needs a look at its target.
        let is_dir = match entry.file_type() {
            Ok(t) if !t.is_symlink() => t.is_dir(),
            _ => path.is_dir(),
        };
        if is_dir {
            collect_markdown(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses one article: a front matter block between `---` lines with `key: value` pairs
/// (`id`, `title`, `url`, `locale`, `published`, optional `draft`), then the Markdown body.
pub fn parse_markdown(text: &str) -> Result<Article, String> {
    let text = text.trim_start_matches('\u{feff}');
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or("no front matter: the file must start with a `---` line")?;
    let end = rest
        .find("\n---")
        .ok_or("front matter is not closed by a `---` line")?;
    let (front, body) = (&rest[..end], &rest[end + 4..]);
    let body = body
        .trim_start_matches(['\r', '\n'])
        .trim_start_matches('-');
    let (mut id, mut title, mut url, mut locale, mut published, mut draft) =
        (None, None, None, None, None, false);
    for (n, line) in front.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("front matter line {}: expected `key: value`", n + 2))?;
        // A value in double quotes loses its quotes; quotes inside a value stay (a title may end
        // with a quoted message).
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
            .to_string();
        match key.trim() {
            "id" => id = Some(value),
            "title" => title = Some(value),
            "url" => url = Some(value),
            "locale" => locale = Some(value.to_ascii_lowercase()),
            "published" => published = Some(parse_date(&value)?),
            "draft" => {
                draft = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    other => return Err(format!("draft: expected true or false, found `{other}`")),
                }
            }
            other => {
                return Err(format!(
                    "front matter: unknown key `{other}` (known: id, title, url, locale, published, draft)"
                ));
            }
        }
    }
    let need = |v: Option<String>, key: &str| v.ok_or(format!("front matter: `{key}` is missing"));
    Ok(Article {
        withdrawn_at: None,
        id: need(id, "id")?,
        title: need(title, "title")?,
        url: need(url, "url")?,
        locale: need(locale, "locale")?,
        published_at: Some(published.ok_or("front matter: `published` is missing")?),
        draft,
        body: markdown_to_text(body),
    })
}

/// The article's Markdown as plain text, for re-scoring and for quoting in notes: heading marks,
/// emphasis, code ticks and link targets dropped.
pub fn markdown_to_text(md: &str) -> String {
    static LINK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"!?\[([^\]]*)\]\([^)]*\)").expect("valid regex"));
    let mut out = Vec::new();
    for line in md.lines() {
        let line = line.trim_start().trim_start_matches('#').trim_start();
        let line = LINK.replace_all(line, "$1");
        out.push(line.replace("**", "").replace("__", "").replace('`', ""));
    }
    out.join("\n").trim().to_string()
}

fn parse_date(value: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| {
            format!("published: expected a date (2024-05-01) or RFC 3339 time, found `{value}`")
        })
}

#[cfg(test)]
mod tests {

    #[test]
    fn front_matter_quotes_are_taken_off_a_quoted_value_only() {
        let a = parse_markdown(
            "---\nid: kb-1\nlocale: en-us\npublished: 2024-01-01T00:00:00Z\ntitle: SSO fails with \"assertion not yet valid\"\nurl: \"https://kb.example/1\"\n---\nBody.\n",
        )
        .unwrap();
        assert_eq!(a.title, "SSO fails with \"assertion not yet valid\"");
        assert_eq!(a.url, "https://kb.example/1");
    }
    use super::*;

    fn article(id: &str, title: &str, body: &str, locale: &str) -> Article {
        Article {
            withdrawn_at: None,
            id: id.into(),
            title: title.into(),
            body: body.into(),
            url: format!("https://kb.example/{id}"),
            locale: locale.into(),
            published_at: None,
            draft: false,
        }
    }

    #[test]
    fn finds_by_stemmed_terms_and_locale() {
        let idx = LocalIndex::build(vec![
            article("1", "Resetting passwords", "Use the reset link", "en-us"),
            article("2", "Exporting invoices", "Invoices export as CSV", "en-us"),
            article("3", "Exporting invoices", "Rechnungen exportieren", "de"),
        ])
        .unwrap();
        let hits = idx
            .search("how do I export an invoice", Some("en-us"), 5)
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, "2");
        assert_eq!(idx.search("invoice", None, 5).unwrap().len(), 2);
        assert!(idx.search("   ", None, 5).unwrap().is_empty());
    }

    #[test]
    fn markdown_becomes_text() {
        assert_eq!(
            markdown_to_text(
                "## Cause\n1. Click **Connect**, see [the guide](https://x/y) and `sync`."
            ),
            "Cause\n1. Click Connect, see the guide and sync."
        );
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let a = article("1", "a", "b", "en-us");
        assert!(matches!(
            LocalIndex::build(vec![a.clone(), a]),
            Err(LocalKbError::DuplicateId(_))
        ));
    }

    #[test]
    fn parses_front_matter() {
        let a = parse_markdown(
            "---\nid: kb-1\ntitle: \"Reset\"\nurl: https://kb/1\nlocale: en-US\npublished: 2024-05-01\ndraft: true\n---\nBody text\n",
        )
        .unwrap();
        assert_eq!(
            (a.id.as_str(), a.title.as_str(), a.locale.as_str()),
            ("kb-1", "Reset", "en-us")
        );
        assert!(a.draft);
        assert_eq!(a.body, "Body text");
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2024-05-01T00:00:00+00:00"
        );
    }

    #[test]
    fn front_matter_errors_name_the_problem() {
        let cases = [
            ("no header", "no front matter"),
            ("---\nid: 1\n", "not closed"),
            ("---\nid: 1\ncolour: red\n---\n", "unknown key `colour`"),
            (
                "---\nid: 1\ntitle: t\nurl: u\nlocale: en\n---\n",
                "`published` is missing",
            ),
            (
                "---\nid: 1\ntitle: t\nurl: u\nlocale: en\npublished: soon\n---\n",
                "expected a date",
            ),
        ];
        for (text, want) in cases {
            let err = parse_markdown(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
