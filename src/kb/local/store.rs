//! The embedded knowledge base's one copy of its articles: a flat file beside the index,
//! memory-mapped (through tantivy's directory) and read in place, so a search hands the judge
//! borrowed views instead of clones, and the articles cost no heap.
//!
//! Layout (little-endian): the records one after the other, then `n + 1` record offsets (`u64`),
//! then `n` (`u64`). A record: `published_at` seconds (`i64`, `i64::MIN` for none) and
//! nanoseconds (`u32`), `draft` (`u8`), `withdrawn_at` seconds (`i64`, `i64::MIN` for none), then
//! `id`, `title`, `url`, `locale` and `body`, each as a
//! `u32` length and its UTF-8 bytes.

use chrono::{DateTime, Utc};
use tantivy::directory::OwnedBytes;

use crate::kb::{Article, ArticleRef};

/// What the store is called in an index folder.
pub const FILE_NAME: &str = "articles.store";

/// The store's bytes as written.
pub fn encode(articles: &[Article]) -> Vec<u8> {
    let text: usize = articles
        .iter()
        .map(|a| a.id.len() + a.title.len() + a.url.len() + a.locale.len() + a.body.len())
        .sum();
    let mut out = Vec::with_capacity(text + articles.len() * 49 + 16);
    write(&mut out, articles).expect("writing to memory does not fail");
    out
}

/// Writes the store to `out` as it goes (a knowledge base written to a file is never held a
/// second time in memory).
pub fn write(out: &mut impl std::io::Write, articles: &[Article]) -> std::io::Result<()> {
    let mut offsets = Vec::with_capacity(articles.len() + 1);
    let mut at = 0u64;
    for a in articles {
        offsets.push(at);
        let (secs, nanos) = a.published_at.map_or((i64::MIN, 0), |t| {
            (t.timestamp(), t.timestamp_subsec_nanos())
        });
        out.write_all(&secs.to_le_bytes())?;
        out.write_all(&nanos.to_le_bytes())?;
        out.write_all(&[u8::from(a.draft)])?;
        let withdrawn = a.withdrawn_at.map_or(i64::MIN, |t| t.timestamp());
        out.write_all(&withdrawn.to_le_bytes())?;
        at += 21;
        for field in [&a.id, &a.title, &a.url, &a.locale, &a.body] {
            out.write_all(&(field.len() as u32).to_le_bytes())?;
            out.write_all(field.as_bytes())?;
            at += 4 + field.len() as u64;
        }
    }
    offsets.push(at);
    for o in offsets {
        out.write_all(&o.to_le_bytes())?;
    }
    out.write_all(&(articles.len() as u64).to_le_bytes())
}

/// A store opened for reading: the bytes stay where they are (a memory map, or memory).
pub struct Store {
    bytes: OwnedBytes,
    /// Where the offset table starts.
    table: usize,
    len: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("the article store is damaged: {0}")]
pub struct Damaged(&'static str);

impl Store {
    pub fn open(bytes: OwnedBytes) -> Result<Store, Damaged> {
        let data = bytes.as_slice();
        let n = data
            .len()
            .checked_sub(8)
            .map(|at| u64_at(data, at) as usize)
            .ok_or(Damaged("shorter than its header"))?;
        let table = n
            .checked_add(1)
            .and_then(|k| k.checked_mul(8))
            .and_then(|size| (data.len() - 8).checked_sub(size))
            .ok_or(Damaged("the offset table does not fit"))?;
        let store = Store {
            bytes,
            table,
            len: n,
        };
        if store.offset(n) != table {
            return Err(Damaged(
                "the records do not end where the offset table starts",
            ));
        }
        Ok(store)
    }

    /// How many articles it holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn offset(&self, i: usize) -> usize {
        u64_at(self.bytes.as_slice(), self.table + i * 8) as usize
    }

    /// Article `ord` (its position when the store was written), read in place.
    pub fn get(&self, ord: usize) -> Result<ArticleRef<'_>, Damaged> {
        if ord >= self.len {
            return Err(Damaged("an article number beyond the store"));
        }
        let (start, end) = (self.offset(ord), self.offset(ord + 1));
        let record = self
            .bytes
            .as_slice()
            .get(start..end)
            .ok_or(Damaged("a record outside the store"))?;
        let mut r = Reader(record);
        let secs = i64::from_le_bytes(r.take()?);
        let nanos = u32::from_le_bytes(r.take()?);
        let [draft] = r.take::<1>()?;
        let withdrawn = i64::from_le_bytes(r.take()?);
        let withdrawn_at = if withdrawn == i64::MIN {
            None
        } else {
            Some(
                DateTime::<Utc>::from_timestamp(withdrawn, 0)
                    .ok_or(Damaged("a withdrawal time out of range"))?,
            )
        };
        let published_at = if secs == i64::MIN {
            None
        } else {
            Some(
                DateTime::<Utc>::from_timestamp(secs, nanos)
                    .ok_or(Damaged("a publication time out of range"))?,
            )
        };
        Ok(ArticleRef {
            id: r.text()?,
            title: r.text()?,
            url: r.text()?,
            locale: r.text()?,
            body: r.text()?,
            published_at,
            draft: draft != 0,
            withdrawn_at,
        })
    }
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(b)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Damaged> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(Damaged("a record cut short"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn text(&mut self) -> Result<&'a str, Damaged> {
        let len = u32::from_le_bytes(self.take()?) as usize;
        if len > self.0.len() {
            return Err(Damaged("a field longer than its record"));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(head).map_err(|_| Damaged("a field that is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::ArticleView;
    use chrono::TimeZone;

    #[test]
    fn articles_read_back_as_written() {
        let articles = vec![
            Article {
                withdrawn_at: None,
                id: "kb-1".into(),
                title: "Réinitialiser".into(),
                body: "Corps\nwith lines".into(),
                url: "https://kb/1".into(),
                locale: "fr".into(),
                published_at: Some(Utc.with_ymd_and_hms(2024, 5, 1, 9, 30, 1).unwrap()),
                draft: true,
            },
            Article {
                withdrawn_at: None,
                id: "kb-2".into(),
                title: String::new(),
                body: String::new(),
                url: "u".into(),
                locale: "en-us".into(),
                published_at: None,
                draft: false,
            },
        ];
        let store = Store::open(OwnedBytes::new(encode(&articles))).unwrap();
        assert_eq!(store.len(), 2);
        for (i, a) in articles.iter().enumerate() {
            assert_eq!(store.get(i).unwrap(), a.view());
        }
        assert!(store.get(2).is_err());
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let bytes = encode(&[Article {
            withdrawn_at: None,
            id: "1".into(),
            title: "t".into(),
            body: "b".into(),
            url: "u".into(),
            locale: "en".into(),
            published_at: None,
            draft: false,
        }]);
        for cut in 0..bytes.len() {
            if let Ok(store) = Store::open(OwnedBytes::new(bytes[..cut].to_vec())) {
                let _ = store.get(0);
            }
        }
        let mut flipped = bytes.clone();
        flipped[20] = 0xff;
        let store = Store::open(OwnedBytes::new(flipped)).unwrap();
        assert!(store.get(0).is_err());
    }
}
