//! Our own re-score of candidate articles against the case text. It uses only the two texts (no
//! backend score, no corpus statistics), so candidates from any backend are judged alike.

use std::collections::{BTreeMap, BTreeSet};

pub struct Candidate<'a> {
    pub title: &'a str,
    pub body: &'a str,
}

pub struct Scored {
    /// Index into the candidates handed in.
    pub index: usize,
    /// 0 to 1.
    pub confidence: f64,
    pub passage: String,
    pub signals: Vec<(&'static str, f64)>,
}

/// The confidence at or above which a case is judged resolvable when the connector says nothing.
pub const DEFAULT_THRESHOLD: f64 = 0.6;

const WINDOW_TOKENS: usize = 60;
const PASSAGE_CHARS: usize = 300;

const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "but", "by", "can", "could", "did", "do", "does", "for", "from", "get", "got", "had",
    "has", "have", "hello", "hi", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my",
    "no", "not", "of", "on", "or", "our", "please", "regards", "so", "some", "thank", "thanks",
    "that", "the", "their", "them", "then", "there", "this", "to", "up", "us", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you",
    "your",
];

/// Lower-case word tokens without stop words.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .filter(|t| !STOP_WORDS.contains(&t.as_str()))
        .collect()
}

/// The case text as a search query: quoted replies and signatures dropped.
pub fn clean_query(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('>') {
            continue;
        }
        if l == "--" || l.starts_with("-----Original Message") {
            break;
        }
        out.push(l);
    }
    out.join("\n")
}

/// Re-scores candidates against the case text, best first.
pub fn rescore(case_text: &str, candidates: &[Candidate]) -> Vec<Scored> {
    let query: BTreeSet<String> = tokens(case_text).into_iter().collect();
    if query.is_empty() || candidates.is_empty() {
        return Vec::new();
    }
    // Rarity among the candidates: a term every candidate has tells them apart from nothing.
    let docs: Vec<BTreeSet<String>> = candidates
        .iter()
        .map(|c| {
            tokens(&format!("{} {}", c.title, c.body))
                .into_iter()
                .collect()
        })
        .collect();
    let n = docs.len() as f64;
    let weight: BTreeMap<&str, f64> = query
        .iter()
        .map(|t| {
            let df = docs.iter().filter(|d| d.contains(t)).count() as f64;
            (t.as_str(), ((n + 1.0) / (df + 0.5)).ln() + 0.1)
        })
        .collect();
    let total: f64 = weight.values().sum();
    let mut out: Vec<Scored> = candidates
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let title: BTreeSet<String> = tokens(c.title).into_iter().collect();
            let title_cover = query
                .iter()
                .filter(|t| title.contains(*t))
                .map(|t| weight[t.as_str()])
                .sum::<f64>()
                / total;
            let (window_cover, passage) = best_window(c.body, &query, &weight, total);
            let z = -4.0 + 6.0 * window_cover + 3.0 * title_cover;
            let confidence = 1.0 / (1.0 + (-z).exp());
            Scored {
                index,
                confidence,
                passage,
                signals: vec![
                    ("title_cover", title_cover),
                    ("passage_cover", window_cover),
                ],
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.index.cmp(&b.index))
    });
    out
}

/// The body window that covers the most query weight, and its text.
fn best_window(
    body: &str,
    query: &BTreeSet<String>,
    weight: &BTreeMap<&str, f64>,
    total: f64,
) -> (f64, String) {
    let words: Vec<&str> = body.split_whitespace().collect();
    let step = WINDOW_TOKENS / 2;
    let mut best = (0.0, 0usize);
    let mut start = 0;
    loop {
        let end = (start + WINDOW_TOKENS).min(words.len());
        let seen: BTreeSet<String> = tokens(&words[start..end].join(" ")).into_iter().collect();
        let cover = seen
            .iter()
            .filter(|t| query.contains(*t))
            .map(|t| weight[t.as_str()])
            .sum::<f64>()
            / total;
        if cover > best.0 {
            best = (cover, start);
        }
        if end == words.len() {
            break;
        }
        start += step;
    }
    let end = (best.1 + WINDOW_TOKENS).min(words.len());
    let text = words[best.1..end].join(" ");
    let passage = if text.chars().count() > PASSAGE_CHARS {
        format!("{}…", text.chars().take(PASSAGE_CHARS).collect::<String>())
    } else {
        text
    };
    (best.0, passage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answering_article_scores_highest() {
        let cands = [
            Candidate {
                title: "Printing invoices",
                body: "Open billing and press print.",
            },
            Candidate {
                title: "Error E1234 when syncing calendars",
                body: "If calendar sync fails with error E1234, re-authorise the calendar connection in settings.",
            },
        ];
        let scored = rescore(
            "Calendar sync fails with error E1234 since yesterday",
            &cands,
        );
        assert_eq!(scored[0].index, 1);
        assert!(scored[0].confidence > scored[1].confidence);
        assert!(scored[0].passage.contains("E1234"));
        assert!((0.0..=1.0).contains(&scored[0].confidence));
    }

    #[test]
    fn nothing_to_score() {
        assert!(
            rescore(
                "the and of",
                &[Candidate {
                    title: "x",
                    body: "y"
                }]
            )
            .is_empty()
        );
        assert!(rescore("calendar", &[]).is_empty());
    }
}
