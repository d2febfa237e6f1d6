//! The queries a knowledge base is searched with for one escalation: the cleaned case text and
//! locale, and the short queries a remote knowledge base takes.

use super::rescore::clean_query;
use crate::escalation::Escalation;

/// The query and the locale an escalation's knowledge base is searched with: the cleaned case
/// text, and the requester's locale or the connector's default. `eval` searches with the same.
pub fn kb_query(esc: &Escalation, default_locale: &str) -> (String, String) {
    (
        clean_query(&esc.case_text()),
        case_locale(esc, default_locale),
    )
}

/// The locale of an escalation's case: the requester's, or the connector's default.
pub fn case_locale(esc: &Escalation, default_locale: &str) -> String {
    esc.requester
        .locale
        .clone()
        .unwrap_or_else(|| default_locale.to_string())
}

/// Most queries a remote knowledge base is asked per escalation (see [`remote_queries`]).
pub const MAX_REMOTE_QUERIES: usize = 4;
/// Identifiers queried on their own.
const IDENTIFIER_QUERIES: usize = 2;
/// Words of the subject query.
const SUBJECT_WORDS: usize = 4;

/// The short queries a remote knowledge base is searched with for one cleaned case text (first
/// line: the subject). Salesforce Knowledge (SOSL) and the Zendesk Help Center join a query's
/// words with AND, so a long text finds nothing; these find candidates, and enough of them for
/// the judge to compare: each of the case's first identifiers alone, the subject's most
/// distinctive words, and the case's most distinctive word alone (identifiers are not repeated
/// in the word queries). At most [`MAX_REMOTE_QUERIES`], each once, in that order.
pub fn remote_queries(text: &str) -> Vec<String> {
    let ids = super::ident::identifiers(text);
    let is_id = |w: &str| ids.iter().any(|i| i.text.eq_ignore_ascii_case(w));
    let mut out: Vec<String> = Vec::new();
    let mut push = |q: String| {
        if !q.is_empty() && !out.contains(&q) && out.len() < MAX_REMOTE_QUERIES {
            out.push(q);
        }
    };
    for id in ids.iter().take(IDENTIFIER_QUERIES) {
        push(id.text.clone());
    }
    let subject = text.lines().next().unwrap_or("");
    push(distinctive_in_order(subject, SUBJECT_WORDS, &is_id));
    push(distinctive_in_order(text, 1, &is_id));
    out
}

/// The `n` most distinctive words of `text` that are not `skip`ped, in the order they appear.
fn distinctive_in_order(text: &str, n: usize, skip: &dyn Fn(&str) -> bool) -> String {
    let words: Vec<(String, f64)> = super::rescore::content_words(text)
        .into_iter()
        .filter(|(w, _)| !skip(w))
        .collect();
    let mut ranked: Vec<usize> = (0..words.len()).collect();
    ranked.sort_by(|&a, &b| words[b].1.total_cmp(&words[a].1).then(a.cmp(&b)));
    ranked.truncate(n);
    ranked.sort_unstable();
    ranked
        .into_iter()
        .map(|i| words[i].0.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_queries_are_short_and_distinct() {
        let q = remote_queries(
            "Calendar sync stops with error E1234 after password change\nThe sync log shows \
             error E1234 authorization expired for the mailbox.",
        );
        assert_eq!(q[0], "E1234");
        assert!(q.len() >= 3 && q.len() <= MAX_REMOTE_QUERIES, "{q:?}");
        for words in &q {
            assert!(words.split(' ').count() <= SUBJECT_WORDS, "{q:?}");
        }
        assert!(q[1..].iter().all(|w| !w.contains("e1234")), "{q:?}");
        assert!(q[1].contains("calendar"), "{q:?}");
        assert!(remote_queries("").is_empty());
    }
}
