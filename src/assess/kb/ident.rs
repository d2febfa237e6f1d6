//! Identifying tokens (error codes, message ids, APAR/KB/technote ids, exception names, status
//! codes, `MQRC_*`-style constants) and their families, told apart by shape, not by product.
//!
//! A family is what two identifiers of the same kind share: the letters before the number
//! (`SQL0805N` and `SQL0911N` are both `SQL…`, `CWSIA0241E` and `CWSIA0117W` both `CWSIA…`,
//! `ORA-12154` and `ORA-00942` both `ORA…`, `E1234` and `E5678` both `E…`), the first word of a
//! constant (`MQRC_NOT_AUTHORIZED` and `MQRC_Q_FULL`), the kind of a CamelCase name
//! (`NullPointerException` and `ClassCastException`), `CVE`, or an HTTP status. An article that
//! names other identifiers of a family the case names, and none of the case's, is about a
//! neighbouring problem: [`near_miss`] says so.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// One identifying token: how it was written, its family and the key two spellings of the same
/// identifier share (`SQL0805N`, `SQL-805N` and `SQL0805` all give `sql/805`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub text: String,
    pub family: String,
    pub key: String,
    pub shape: Shape,
}

/// The shapes identifiers are found by. Two identifiers of one family have the same shape, so an
/// article need only be searched for the shapes of the case's identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Cve,
    Code,
    Constant,
    Exception,
    Http,
}

const ALL: [Shape; 5] = [
    Shape::Cve,
    Shape::Code,
    Shape::Constant,
    Shape::Exception,
    Shape::Http,
];

/// Letters, an optional `-`/`_`, digits, optional trailing letters: `E1234`, `CWSIA0241E`,
/// `ORA-12154`, `PI19804`, `swg21978641`, `KB4012212`.
static RE_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)([A-Za-z]{1,8})[-_]?([0-9]{3,10})([A-Za-z]{0,2})(?-u:\b)").unwrap()
});
static RE_CVE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)(?i:cve)-([0-9]{4})-([0-9]{4,7})(?-u:\b)").unwrap());
/// Upper-case constants of two or more words: `MQRC_NOT_AUTHORIZED`, `ERR_FOO_BAR`.
static RE_CONST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)([A-Z][A-Z0-9]{1,9})_[A-Z0-9]+(?:_[A-Z0-9]+)*(?-u:\b)").unwrap()
});
/// CamelCase exception and error names: `NullPointerException`, `OutOfMemoryError`.
static RE_EXCEPTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)[A-Z][A-Za-z0-9]*(Exception|Error|Fault)(?-u:\b)").unwrap()
});
/// A status code that is clearly one: `HTTP 404`, `HTTP/1.1 503`, `HTTP error 500`,
/// `status code 401`, `response code 502`.
static RE_HTTP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(?:https?(?:/[0-9](?:\.[0-9])?)?(?:\s+(?:error|status|code|response))*|status\s+code|response\s+code)\s*:?\s+([1-5][0-9][0-9])(?-u:\b)").unwrap()
});

/// Whether a letters-and-digits token is an identifier rather than a word with a number: an
/// upper-case prefix (`E1234`, `SQL0805N`) or a long number (`swg21978641`), and never a
/// version-like token (`v700`) or a unit (`500ms` does not match the shape at all).
fn is_code(prefix: &str, digits: &str) -> bool {
    let upper = prefix.bytes().all(|b| b.is_ascii_uppercase());
    let version = prefix.eq_ignore_ascii_case("v") || prefix.eq_ignore_ascii_case("version");
    !version && (upper || digits.len() >= 5)
}

/// Whether one token (`E1234`, `SQL0805N`, `PI19804`) is an error code, message id or similar
/// id as [`identifiers`] finds them.
pub fn is_code_token(token: &str) -> bool {
    RE_CODE
        .captures(token)
        .is_some_and(|c| c[0].len() == token.len() && is_code(&c[1], &c[2]))
}

/// The identifying tokens of a text, each once, in order of appearance.
pub fn identifiers(text: &str) -> Vec<Ident> {
    identifiers_of(text, &ALL)
}

/// The identifying tokens of a text that have one of these shapes.
pub fn identifiers_of(text: &str, shapes: &[Shape]) -> Vec<Ident> {
    let mut out: Vec<Ident> = Vec::new();
    let mut push = |text: &str, family: String, key: String, shape: Shape| {
        if !out.iter().any(|i| i.key == key) {
            out.push(Ident {
                text: text.to_string(),
                family,
                key,
                shape,
            });
        }
    };
    let has = |shape| shapes.contains(&shape);
    if has(Shape::Cve) {
        for c in RE_CVE.captures_iter(text) {
            let key = format!("cve/{}-{}", &c[1], &c[2]);
            push(&c[0], "cve".into(), key, Shape::Cve);
        }
    }
    if has(Shape::Code) {
        for c in RE_CODE.captures_iter(text) {
            let (prefix, digits) = (&c[1], &c[2]);
            if prefix.eq_ignore_ascii_case("cve") || !is_code(prefix, digits) {
                continue;
            }
            let family = prefix.to_ascii_lowercase();
            let key = format!("{family}/{}", digits.trim_start_matches('0'));
            push(&c[0], family, key, Shape::Code);
        }
    }
    if has(Shape::Constant) {
        for c in RE_CONST.captures_iter(text) {
            let family = format!("{}_", c[1].to_ascii_lowercase());
            push(&c[0], family, c[0].to_ascii_lowercase(), Shape::Constant);
        }
    }
    if has(Shape::Exception) {
        for c in RE_EXCEPTION.captures_iter(text) {
            let name = &c[0];
            if name != &c[1] {
                let family = c[1].to_ascii_lowercase();
                push(name, family, name.to_ascii_lowercase(), Shape::Exception);
            }
        }
    }
    if has(Shape::Http) {
        for c in RE_HTTP.captures_iter(text) {
            let key = format!("http/{}", &c[1]);
            push(&c[0], "http".into(), key, Shape::Http);
        }
    }
    out
}

/// Why an article about a neighbouring problem cannot count against the partner: the case's
/// identifiers, none of which the article names, and the article's identifiers of the same
/// families.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearMiss {
    pub case_ids: Vec<String>,
    pub article_ids: Vec<String>,
}

/// At most this many identifiers of each side are kept as evidence.
const SHOWN: usize = 5;

/// `Some` when the case names identifiers, the article names none of them, and the article names
/// other identifiers of a family the case names.
pub fn near_miss(case: &[Ident], article: &[Ident]) -> Option<NearMiss> {
    if case.is_empty() || case.iter().any(|c| article.iter().any(|a| a.key == c.key)) {
        return None;
    }
    let others: Vec<String> = article
        .iter()
        .filter(|a| case.iter().any(|c| c.family == a.family))
        .map(|a| a.text.clone())
        .take(SHOWN)
        .collect();
    (!others.is_empty()).then(|| NearMiss {
        case_ids: case.iter().map(|c| c.text.clone()).take(SHOWN).collect(),
        article_ids: others,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<(String, String)> {
        identifiers(text)
            .into_iter()
            .map(|i| (i.family, i.key))
            .collect()
    }

    fn pair(f: &str, k: &str) -> (String, String) {
        (f.into(), k.into())
    }

    #[test]
    fn families_by_shape() {
        assert_eq!(
            keys(
                "SQL0805N, CWSIA0241E and ORA-12154 after E1234; APAR PI19804, technote swg21978641"
            ),
            vec![
                pair("sql", "sql/805"),
                pair("cwsia", "cwsia/241"),
                pair("ora", "ora/12154"),
                pair("e", "e/1234"),
                pair("pi", "pi/19804"),
                pair("swg", "swg/21978641"),
            ]
        );
        assert_eq!(
            keys("MQRC_NOT_AUTHORIZED (2035), ERR_FOO_BAR, CVE-2017-3156"),
            vec![
                pair("cve", "cve/2017-3156"),
                pair("mqrc_", "mqrc_not_authorized"),
                pair("err_", "err_foo_bar"),
            ]
        );
        assert_eq!(
            keys("java.lang.NullPointerException then OutOfMemoryError, IOException; an Exception"),
            vec![
                pair("exception", "nullpointerexception"),
                pair("error", "outofmemoryerror"),
                pair("exception", "ioexception"),
            ]
        );
        assert_eq!(
            keys("the server answers HTTP 503, then status code 401"),
            vec![pair("http", "http/503"), pair("http", "http/401")]
        );
    }

    #[test]
    fn versions_words_and_numbers_are_not_identifiers() {
        assert!(
            keys("version 8.5.7, v700, DB2 v10.5, Windows 2008, 500 users, port 9443").is_empty()
        );
        assert!(keys("we waited 500ms; TLS v1.2; win10 and x86").is_empty());
    }

    #[test]
    fn spellings_of_one_identifier_share_a_key() {
        let a = identifiers("SQL0805N");
        let b = identifiers("error SQL-805N");
        assert_eq!(a[0].key, b[0].key);
        assert!(near_miss(&a, &b).is_none());
    }

    #[test]
    fn another_identifier_of_the_same_family_is_a_near_miss() {
        let case = identifiers("Calendar sync fails with error E1234");
        let other = identifiers("Error E5678 when the calendar sync token expires");
        let nm = near_miss(&case, &other).expect("a near miss");
        assert_eq!(nm.case_ids, ["E1234"]);
        assert_eq!(nm.article_ids, ["E5678"]);
        // Naming the case's code too, or naming only codes of other families, is not one.
        assert!(near_miss(&case, &identifiers("E1234 and E5678")).is_none());
        assert!(near_miss(&case, &identifiers("SQL0911N deadlock")).is_none());
        assert!(near_miss(&case, &identifiers("no identifiers here")).is_none());
        assert!(near_miss(&[], &other).is_none());
    }

    #[test]
    fn an_article_is_searched_for_the_case_shapes_only() {
        let text = "E5678, MQRC_Q_FULL and NullPointerException";
        let codes = identifiers_of(text, &[Shape::Code]);
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0].text, "E5678");
        assert_eq!(identifiers(text).len(), 3);
    }
}
