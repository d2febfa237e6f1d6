//! Whether the case says an article's fix was already tried, without the article being listed in
//! the tried-articles field: "we ran the renew command and signed out and in, as the article
//! says; the error comes back after a minute".
//!
//! [`Statements::of`] reads the case text and the hand-off fields for statements that something
//! was done (a verb in the past, "already", "tried", "applied", "followed", "as the article says",
//! and a few German, French, Spanish, Portuguese and Dutch forms) and did not help ("still", "comes
//! back", "did not help", "no luck", "same result", ...), in the same sentence or one of the next
//! two. A hand-off field whose name says it holds what was tried (`troubleshooting`, `tried`,
//! `attempted`) is such a statement sentence by sentence: it was escalated, so it did not help.
//!
//! [`steps`] reads an article's resolution steps: the sentences and list items after a heading
//! such as "Resolution", "Resolving the problem", "Fix", "Steps", "Workaround", "Local fix" or
//! "Answer" (up to the next heading), or, in an article without one, its imperative sentences
//! ("Run the renew command.", "Then click Save.", "You need to restart the server.").
//!
//! [`Statements::tried`] matches the two by the distinctive words of each step (weighted by how
//! rare they are in English, verbs in any tense): a step counts as done when the statements hold
//! at least [`STEP_COVERAGE`] of its weight and two of its words (its only word, for a one-word
//! step). The article counts as tried when the steps done carry at least [`ARTICLE_COVERAGE`] of
//! the weight of its resolution, or are two or more of its steps, or when a statement names the
//! article (its id, or its title in quotes). A case that only mentions a command, or says it did
//! something the article does not say, does not make the article tried.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::rescore::{content_words, excerpt, stem};
use crate::escalation::Escalation;
use crate::kb::ArticleRef;

/// Share of a step's weight the case's statements must hold for the step to count as done.
pub const STEP_COVERAGE: f64 = 0.5;
/// Share of the resolution's weight the steps done must carry for the article to count as tried
/// (two steps done are enough whatever their weight).
pub const ARTICLE_COVERAGE: f64 = 0.5;
/// Share of an article title's weight a quoted span must hold to name the article.
const TITLE_COVERAGE: f64 = 0.8;
/// Steps read from one article at most: the first ones, where a resolution starts.
const MAX_STEPS: usize = 12;
/// Characters of a step or statement the note quotes at most.
const QUOTE_CHARS: usize = 200;

/// How an article is known to have been tried.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "tried_by", rename_all = "snake_case")]
pub enum TriedBy {
    /// The partner listed it in the tried-articles field.
    Listed,
    /// The case says steps of its resolution were done without success.
    Steps { steps: Vec<StepDone> },
    /// The case names it (its id, or its title in quotes) as done without success.
    Named { said: String },
}

/// One step of an article's resolution, and the case's words that say it was done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDone {
    pub step: String,
    pub said: String,
}

/// The statements of one case that something was done and did not help.
#[derive(Debug, Clone, Default)]
pub struct Statements(Vec<Statement>);

#[derive(Debug, Clone)]
struct Statement {
    /// The sentence as written, for the note.
    sentence: String,
    /// What it says was done: from the first sign of it to the first sign that it failed.
    action: String,
    terms: Terms,
    /// The terms of each span it quotes after it says something was done.
    quoted: Vec<Terms>,
}

/// Distinctive words by their tense-free key, with their weight (in key order, so sums of weights
/// come out the same every run).
type Terms = BTreeMap<String, f64>;

static RE_DONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)\b(?:
            tried | attempted | applied | followed | ran | re-?ran | executed | performed | did
          | done | completed | carried\s+out | went\s+through | already
          | (?:we|i|they|he|she|customer|user|client|partner|admin)\s+
            (?:(?:have|has|had|also|then|even|first|just|already|both)\s+)*[a-z-]+ed
          | (?:have|has|had|was|were|been)\s+(?:already\s+|also\s+)?[a-z-]+(?:ed|en)
          | as\s+(?:the|your|this|that)\s+(?:article|kb|technote|doc\w*|guide|instructions?)
            \s+(?:says|said|suggests|suggested|describes|described|recommends|recommended)
          | (?:as\s+described\s+in|as\s+instructed\s+in|per|according\s+to|following)\s+
            (?:the|your|this|that)\s+(?:article|kb|technote|doc\w*|guide|instructions?)
          | versucht | ausgeführt | angewendet | angewandt | befolgt | durchgeführt | gemacht
          | essayé | appliqué | exécuté | suivi | effectué | probado | intentado | aplicado
          | ejecutado | seguido | realizado | tentamos | aplicamos | executamos | seguimos
          | geprobeerd | uitgevoerd | toegepast | gevolgd
        )\b",
    )
    .unwrap()
});

static RE_FAILED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)\b(?:
            still | comes?\s+back | came\s+back | coming\s+back | persists? | persisted
          | persisting | remains? | remained | reappears? | reappeared | recurs? | recurred
          | keeps?\s+(?:failing|happening|coming|showing|appearing|crashing)
          | same\s+(?:error|result|issue|problem|behaviou?r|message|outcome|thing)
          | no\s+(?:luck|change|difference|success|improvement|effect|joy)
          | to\s+no\s+avail | in\s+vain | unsuccessful(?:ly)?
          | (?:did|does|do|has|have|had|would|could|will)\s*(?:n['’]?t|\s+not)\s+
            (?:help|work|fix|solve|resolve|change|succeed|make\s+(?:a|any)\s+difference)
          | not\s+(?:help|work|fix|solve|resolve)(?:ed|ing|s)?
          | without\s+(?:success|luck|effect|any\s+(?:change|effect|success))
          | (?:it|this|that|which)\s+failed
          | immer\s+noch | weiterhin | ohne\s+erfolg | nicht\s+geholfen | half\s+nicht
          | kein\s+erfolg | toujours | sans\s+succès | n['’]a\s+pas\s+(?:aidé|fonctionné|marché|résolu)
          | persiste | sigue | sin\s+éxito | no\s+(?:ha\s+)?(?:funcionó|funciona|ayudó|sirvió|resolvió)
          | continua | ainda | nog\s+steeds | zonder\s+succes
        )\b",
    )
    .unwrap()
});

/// List marks at the start of an item: `-`, `*`, `•`, `1)`, `(2)`, `a)`.
static RE_LIST_MARK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\s*(?:[-*•–·]+|\(?[0-9]{1,2}[.)]|\(?[a-zA-Z]\))\s*)+").unwrap()
});

/// Where what was done ends: a sign it failed, or a turn.
static RE_TURN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:but|however|yet|although|though|unfortunately|nevertheless|aber|mais|pero|mas|maar)\b").unwrap()
});

/// A heading that opens an article's resolution (`#` marks and a trailing colon aside).
static RE_RESOLUTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^(?:
            resolving\s+the\s+problem | resolution | resolutions | resolve | solution | solutions
          | fix | fixes | the\s+fix | how\s+to\s+fix(?:\s+it|\s+this)? | workarounds? | local\s+fix
          | steps | steps\s+to\s+(?:fix|resolve|solve)(?:\s+(?:it|this|the\s+problem|the\s+issue))?
          | to\s+(?:fix|resolve|solve)\s+(?:it|this|the\s+problem|the\s+issue|this\s+problem|this\s+issue)
          | answer | lösung | solución | solução | oplossing
        )$",
    )
    .unwrap()
});

/// `Resolution: do this` on one line.
static RE_RESOLUTION_INLINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:resolution|solution|fix|workaround|steps)\s*:\s*(\S.*)$").unwrap()
});

/// A clause before the step itself: `To renew the token, run ...`, `If it fails, ...`.
static RE_LEAD_CLAUSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:to|if|when|in|on|from|after|once|under|for|where)\b[^,]{0,80},\s*")
        .unwrap()
});

/// `you need to restart ...`: a step said as advice.
static RE_ADVICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:you|users?|administrators?)\s+(?:can|could|need\s+to|must|should|have\s+to|may\s+need\s+to|will\s+need\s+to)\s+(\w+)").unwrap()
});

/// Verbs a resolution step starts with, and their past tense (how a case says it did them).
pub const VERBS: &[(&str, &str)] = &[
    ("activate", "activated"),
    ("add", "added"),
    ("adjust", "adjusted"),
    ("allow", "allowed"),
    ("apply", "applied"),
    ("assign", "assigned"),
    ("attach", "attached"),
    ("authorise", "authorised"),
    ("authorize", "authorized"),
    ("back", "backed"),
    ("bind", "bound"),
    ("build", "built"),
    ("call", "called"),
    ("change", "changed"),
    ("check", "checked"),
    ("choose", "chose"),
    ("clean", "cleaned"),
    ("clear", "cleared"),
    ("click", "clicked"),
    ("close", "closed"),
    ("compile", "compiled"),
    ("configure", "configured"),
    ("connect", "connected"),
    ("copy", "copied"),
    ("create", "created"),
    ("deactivate", "deactivated"),
    ("define", "defined"),
    ("delete", "deleted"),
    ("deploy", "deployed"),
    ("detach", "detached"),
    ("disable", "disabled"),
    ("disconnect", "disconnected"),
    ("do", "did"),
    ("download", "downloaded"),
    ("drag", "dragged"),
    ("drop", "dropped"),
    ("edit", "edited"),
    ("empty", "emptied"),
    ("enable", "enabled"),
    ("ensure", "ensured"),
    ("enter", "entered"),
    ("execute", "executed"),
    ("export", "exported"),
    ("extract", "extracted"),
    ("find", "found"),
    ("flush", "flushed"),
    ("follow", "followed"),
    ("generate", "generated"),
    ("get", "got"),
    ("give", "gave"),
    ("go", "went"),
    ("grant", "granted"),
    ("import", "imported"),
    ("include", "included"),
    ("increase", "increased"),
    ("insert", "inserted"),
    ("install", "installed"),
    ("kill", "killed"),
    ("launch", "launched"),
    ("link", "linked"),
    ("load", "loaded"),
    ("log", "logged"),
    ("make", "made"),
    ("migrate", "migrated"),
    ("modify", "modified"),
    ("mount", "mounted"),
    ("move", "moved"),
    ("navigate", "navigated"),
    ("obtain", "obtained"),
    ("open", "opened"),
    ("patch", "patched"),
    ("press", "pressed"),
    ("purge", "purged"),
    ("put", "put"),
    ("reactivate", "reactivated"),
    ("reboot", "rebooted"),
    ("rebuild", "rebuilt"),
    ("recompile", "recompiled"),
    ("reconnect", "reconnected"),
    ("recreate", "recreated"),
    ("redeploy", "redeployed"),
    ("refresh", "refreshed"),
    ("regenerate", "regenerated"),
    ("register", "registered"),
    ("reinstall", "reinstalled"),
    ("reload", "reloaded"),
    ("remove", "removed"),
    ("rename", "renamed"),
    ("renew", "renewed"),
    ("repair", "repaired"),
    ("replace", "replaced"),
    ("rerun", "reran"),
    ("reset", "reset"),
    ("restart", "restarted"),
    ("restore", "restored"),
    ("retry", "retried"),
    ("revert", "reverted"),
    ("roll", "rolled"),
    ("run", "ran"),
    ("save", "saved"),
    ("select", "selected"),
    ("send", "sent"),
    ("set", "set"),
    ("shut", "shut"),
    ("sign", "signed"),
    ("specify", "specified"),
    ("start", "started"),
    ("stop", "stopped"),
    ("submit", "submitted"),
    ("switch", "switched"),
    ("sync", "synced"),
    ("take", "took"),
    ("tap", "tapped"),
    ("turn", "turned"),
    ("type", "typed"),
    ("uncheck", "unchecked"),
    ("uninstall", "uninstalled"),
    ("unzip", "unzipped"),
    ("update", "updated"),
    ("upgrade", "upgraded"),
    ("upload", "uploaded"),
    ("use", "used"),
    ("verify", "verified"),
    ("wait", "waited"),
    ("write", "wrote"),
];

/// The past tense of a verb a step starts with (`run` → `ran`), as [`VERBS`] has it.
pub fn past_tense(verb: &str) -> Option<&'static str> {
    VERBS
        .iter()
        .find(|(base, _)| base.eq_ignore_ascii_case(verb))
        .map(|(_, past)| *past)
}

/// The key two tenses of one word share: `ran`, `run` and `running` give one key, as do
/// `removed` and `remove`, `applied` and `apply`, `stopped` and `stop`.
fn key(word: &str) -> String {
    let w: String = word
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_lowercase();
    let base = VERBS
        .iter()
        .find(|(base, past)| *past == w && !past.starts_with(base))
        .map_or(w.as_str(), |(base, _)| base);
    let mut k = stem(base);
    if k.ends_with('i') {
        k.pop();
        k.push('y');
    }
    if k.len() > 3 && k.ends_with('e') {
        k.pop();
    }
    let bytes = k.as_bytes();
    if bytes.len() > 3 && bytes[bytes.len() - 1] == bytes[bytes.len() - 2] {
        k.pop();
    }
    k
}

fn terms(text: &str) -> Terms {
    let mut out = Terms::new();
    for (word, weight) in content_words(text) {
        let w = out.entry(key(&word)).or_insert(0.0);
        *w = w.max(weight);
    }
    out
}

/// A text cut into sentences and list items: at line ends, and after `.`, `!`, `?` or `;` that a
/// space follows. List marks (`-`, `*`, `•`, `1.`, `2)`) are left out, and pieces without a letter
/// (the `1` of `1. Open`) dropped.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let bytes = line.as_bytes();
        // A quoted title is not cut at its own full stops.
        let mut in_quote = false;
        for (i, c) in line.char_indices() {
            let end = i + c.len_utf8();
            match c {
                '"' => in_quote = !in_quote,
                '“' | '«' | '„' => in_quote = true,
                '”' | '»' => in_quote = false,
                _ => {}
            }
            let cut = !in_quote
                && matches!(c, '.' | '!' | '?' | ';')
                && bytes.get(end).is_none_or(|b| b.is_ascii_whitespace());
            if cut {
                out.push(&line[start..end]);
                start = end;
            }
        }
        out.push(&line[start..]);
    }
    out.into_iter()
        .map(|s| {
            let mark = RE_LIST_MARK.find(s).map_or(0, |m| m.end());
            s[mark..].trim()
        })
        .filter(|s| s.chars().any(char::is_alphabetic))
        .collect()
}

/// The quoted spans of a text (between double quotes of any kind), and, when there are several,
/// the stretch from the first opening quote to the last closing one: a title that holds quotes
/// of its own (`Console shows SQLCODE=-206 "<name> is not valid"`) is quoted whole that way.
fn quoted(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    let mut outer: Option<(usize, usize)> = None;
    for (i, c) in text.char_indices() {
        match (c, open) {
            ('"' | '“' | '”' | '«' | '»' | '„', Some(s)) => {
                out.push(&text[s..i]);
                outer = Some((outer.map_or(s, |(first, _)| first), i));
                open = None;
            }
            ('"' | '“' | '«' | '„', None) => open = Some(i + c.len_utf8()),
            _ => {}
        }
    }
    if out.len() > 1
        && let Some((first, last)) = outer
    {
        out.push(&text[first..last]);
    }
    out
}

impl Statements {
    /// The case's statements that something was done and did not help: in its text (subject and
    /// description) and its hand-off fields.
    pub fn of(esc: &Escalation) -> Statements {
        let text = esc.case_text();
        let mut blocks: Vec<(&str, bool)> = text.split("\n\n").map(|b| (b, false)).collect();
        for (name, value) in &esc.handoff {
            let name = name.to_ascii_lowercase();
            let lists_tries = ["troubleshoot", "tried", "attempt"]
                .iter()
                .any(|n| name.contains(n));
            blocks.push((value, lists_tries));
        }
        let mut out = Vec::new();
        for (block, lists_tries) in blocks {
            read_block(block, lists_tries, &mut out);
        }
        Statements(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How the case says `article` was tried, if it does.
    pub fn tried(&self, article: &ArticleRef) -> Option<TriedBy> {
        if let Some(s) = self.0.iter().find(|s| names(s, article)) {
            return Some(TriedBy::Named {
                said: excerpt(&s.sentence, QUOTE_CHARS),
            });
        }
        let steps: Vec<(&str, Terms)> = steps(article.body)
            .into_iter()
            .map(|s| (s, terms(s)))
            .filter(|(_, t)| !t.is_empty())
            .collect();
        let total: f64 = steps.iter().map(|(_, t)| t.values().sum::<f64>()).sum();
        let mut done = Vec::new();
        let mut done_weight = 0.0;
        for (step, step_terms) in &steps {
            if let Some(said) = self.done(step_terms) {
                done_weight += step_terms.values().sum::<f64>();
                done.push(StepDone {
                    step: excerpt(step, QUOTE_CHARS),
                    said: excerpt(&said.sentence, QUOTE_CHARS),
                });
            }
        }
        let enough = done.len() >= 2 || (total > 0.0 && done_weight >= ARTICLE_COVERAGE * total);
        (enough && !done.is_empty()).then_some(TriedBy::Steps { steps: done })
    }

    /// The statement that says most of a step was done, when the statements together hold
    /// enough of it.
    fn done(&self, step: &Terms) -> Option<&Statement> {
        let weight: f64 = step.values().sum();
        let held: Vec<(&String, &f64)> = step
            .iter()
            .filter(|(k, _)| self.0.iter().any(|s| s.terms.contains_key(*k)))
            .collect();
        let held_weight: f64 = held.iter().map(|(_, w)| **w).sum();
        if held.len() < step.len().min(2) || held_weight < STEP_COVERAGE * weight {
            return None;
        }
        self.0.iter().max_by(|a, b| {
            let share = |s: &Statement| -> f64 {
                held.iter()
                    .filter(|(k, _)| s.terms.contains_key(*k))
                    .map(|(_, w)| **w)
                    .sum()
            };
            share(a).total_cmp(&share(b))
        })
    }
}

/// Whether a statement names the article as what was done: its id as a word, or its title in
/// quotes.
fn names(s: &Statement, article: &ArticleRef) -> bool {
    let id = article.id.trim();
    let by_id = id.chars().count() >= 4
        && s.action
            .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
            .any(|w| w.trim_matches(['-', '_']).eq_ignore_ascii_case(id));
    by_id || {
        let title = terms(article.title);
        let title_weight: f64 = title.values().sum();
        title_weight > 0.0
            && s.quoted.iter().any(|q| {
                let held: f64 = title
                    .iter()
                    .filter(|(k, _)| q.contains_key(*k))
                    .map(|(_, w)| w)
                    .sum();
                held >= TITLE_COVERAGE * title_weight
            })
    }
}

/// The statements of one block (a paragraph of the description, or one hand-off field).
fn read_block(block: &str, lists_tries: bool, out: &mut Vec<Statement>) {
    let sents = sentences(block);
    let mut i = 0;
    while i < sents.len() {
        let s = sents[i];
        let done_at = if lists_tries {
            Some(0)
        } else {
            RE_DONE.find(s).map(|m| m.start())
        };
        let Some(at) = done_at else {
            i += 1;
            continue;
        };
        let rest = &s[at..];
        // From after the marker, so `did not help` does not end what it starts.
        let from = RE_DONE.find(rest).map_or(0, |m| m.end());
        let said = action(rest, from);
        // `Steps done so far:` or `We did what the article says: ...`: the sentences after it
        // were done too, up to the one that says it failed. A listed step may hold a turn of its
        // own (`..., but nothing is charged`); only a failure ends the list.
        let listed = if said.contains(':') && said.len() == rest.len() {
            sents[i + 1..]
                .iter()
                .take_while(|t| !RE_FAILED.is_match(t))
                .count()
        } else {
            0
        };
        let end = i + 1 + listed;
        let fails = lists_tries
            || sents[i..(end + 2).min(sents.len())]
                .iter()
                .any(|t| RE_FAILED.is_match(t));
        if fails {
            push(out, s, said, rest);
            for t in &sents[i + 1..end] {
                push(out, t, t, t);
            }
            if listed > 0
                && let Some(last) = sents.get(end)
            {
                push(out, last, action(last, 0), last);
            }
        }
        i = end;
    }
}

/// What a sentence says was done: up to the first sign (from `from` on) that it failed, or a turn.
fn action(sentence: &str, from: usize) -> &str {
    let end = [&*RE_FAILED, &*RE_TURN]
        .iter()
        .filter_map(|re| re.find_at(sentence, from).map(|m| m.start()))
        .min()
        .unwrap_or(sentence.len());
    &sentence[..end]
}

/// Keeps a statement whose action has a distinctive word; `rest` is the sentence from where it
/// says something was done (where the titles it quotes are read).
fn push(out: &mut Vec<Statement>, sentence: &str, action: &str, rest: &str) {
    let words = terms(action);
    if !words.is_empty() {
        out.push(Statement {
            sentence: sentence.to_string(),
            action: action.to_string(),
            terms: words,
            quoted: quoted(rest).into_iter().map(terms).collect(),
        });
    }
}

/// An article's resolution steps (see the module documentation), at most [`MAX_STEPS`].
pub fn steps(body: &str) -> Vec<&str> {
    let mut section = Vec::new();
    let mut inside = false;
    for line in body.lines() {
        let t = line.trim().trim_start_matches('#').trim();
        let heading = t.trim_end_matches(':').trim();
        if RE_RESOLUTION.is_match(heading) {
            inside = true;
            continue;
        }
        if let Some(c) = RE_RESOLUTION_INLINE.captures(t) {
            inside = true;
            section.extend(sentences(c.get(1).map_or("", |m| m.as_str())));
            continue;
        }
        if inside && is_heading(line) {
            inside = false;
        }
        if inside {
            section.extend(sentences(line));
        }
    }
    if section.is_empty() {
        section = sentences(body)
            .into_iter()
            .filter(|s| is_imperative(s))
            .collect();
    }
    // `Steps to resolve the issue:` introduces steps; `Add these parameters:` is one.
    section.retain(|s| !s.ends_with(':') || is_imperative(s));
    section.truncate(MAX_STEPS);
    section
}

/// A line that opens a section: `# Cause`, or a short line of capitals (`CAUSE`, `RELATED
/// INFORMATION`).
fn is_heading(line: &str) -> bool {
    let t = line.trim();
    let letters = t.chars().filter(|c| c.is_alphabetic()).count();
    t.starts_with('#')
        || (letters >= 3
            && t.chars().count() <= 40
            && t.chars()
                .all(|c| c.is_uppercase() || c.is_whitespace() || c == ':' || c == '&'))
}

/// A sentence that tells the reader to do something: it starts with a verb of [`VERBS`] (after
/// `Then`, `Next`, `Please` or a lead clause such as `To renew the token,`), or says `you need to`
/// (`can`, `must`, `should`) do one.
fn is_imperative(sentence: &str) -> bool {
    let s = RE_LEAD_CLAUSE.replace(sentence, "");
    let mut words = s
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .peekable();
    while let Some(w) = words.peek() {
        let lead = [
            "then", "next", "finally", "first", "now", "please", "also", "and",
        ];
        if lead.iter().any(|l| w.eq_ignore_ascii_case(l)) {
            words.next();
        } else {
            break;
        }
    }
    let first = words.next().unwrap_or("");
    let verb = |w: &str| {
        let known = |w: &str| VERBS.iter().any(|(base, _)| base.eq_ignore_ascii_case(w));
        // `re-authorise`, `reconnect`: the verb again.
        known(w)
            || w.strip_prefix("re-")
                .or(w.strip_prefix("re"))
                .is_some_and(known)
    };
    verb(first)
        || RE_ADVICE
            .captures(&s)
            .is_some_and(|c| verb(c.get(1).map_or("", |m| m.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::tests::{article, escalation};
    use crate::kb::ArticleView;

    const RENEW: &str = "Symptom\nSign-in fails with error T401 token expired for every user.\n\n\
        Resolution\n1. Run the renew command in the admin console.\n2. Sign out and sign in again.\n\n\
        RELATED INFORMATION\nTokens expire after 90 days.";

    fn said(description: &str) -> Statements {
        let mut esc = escalation();
        esc.description = description.into();
        Statements::of(&esc)
    }

    fn tried_by(description: &str) -> Option<TriedBy> {
        let a = article("kb-7", "Sign-in fails with error T401", RENEW);
        said(description).tried(&a.view())
    }

    #[test]
    fn tenses_share_a_key() {
        for (a, b) in [
            ("ran", "run"),
            ("running", "Run"),
            ("removed", "remove"),
            ("applied", "apply"),
            ("stopped", "stop"),
            ("signed", "sign"),
            ("re-authorised", "reauthorise"),
            ("went", "go"),
        ] {
            assert_eq!(key(a), key(b), "{a} {b}");
        }
        assert_ne!(key("renew"), key("run"));
    }

    #[test]
    fn steps_follow_the_resolution_heading_up_to_the_next_heading() {
        assert_eq!(
            steps(RENEW),
            [
                "Run the renew command in the admin console.",
                "Sign out and sign in again."
            ]
        );
        let inline =
            "The export stops at 80 percent.\nFix: increase the export timeout to 600 seconds.";
        assert_eq!(
            steps(inline),
            ["increase the export timeout to 600 seconds."]
        );
    }

    #[test]
    fn without_a_heading_the_steps_are_the_imperative_sentences() {
        let body = "Calendar sync stops after a password change. To fix it, open Settings, \
                    Integrations, Calendar. Then re-authorise the calendar connection. You need to \
                    restart the app afterwards. The sync resumes within minutes.";
        assert_eq!(
            steps(body),
            [
                "To fix it, open Settings, Integrations, Calendar.",
                "Then re-authorise the calendar connection.",
                "You need to restart the app afterwards."
            ]
        );
    }

    #[test]
    fn a_statement_says_something_was_done_and_did_not_help() {
        for text in [
            "We ran the renew command and signed out and in, as the article says; the error comes back after a minute.",
            "Already renewed the token with the renew command, no luck.",
            "The customer signed out and in again. Same error.",
            "Steps done so far:\n- ran the renew command\n- signed out and in\nStill failing.",
            "Wir haben den renew-Befehl ausgeführt, aber der Fehler kommt immer noch.",
            "Nous avons exécuté la commande renew mais l'erreur revient toujours.",
        ] {
            assert!(!said(text).is_empty(), "{text}");
        }
        for text in [
            "How do we run the renew command?",
            "We ran the renew command.",
            "The renew command did not exist in version 2.",
            "Sign-in fails with error T401 for every user.",
        ] {
            assert!(said(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn an_article_whose_steps_the_case_says_were_done_is_tried() {
        let by = tried_by(
            "We ran the renew command and signed out and in, as the article says; the error comes \
             back after a minute.",
        );
        let Some(TriedBy::Steps { steps }) = by else {
            panic!("not tried: {by:?}")
        };
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].step, "Run the renew command in the admin console.");
        assert!(
            steps[0].said.starts_with("We ran the renew command"),
            "{steps:?}"
        );
        assert_eq!(steps[1].step, "Sign out and sign in again.");
    }

    #[test]
    fn a_hand_off_field_of_what_was_tried_says_it_sentence_by_sentence() {
        let mut esc = escalation();
        esc.handoff.insert(
            "troubleshooting".into(),
            "Renewed the token with the renew command in the admin console. Signed out and in."
                .into(),
        );
        let a = article("kb-7", "Sign-in fails with error T401", RENEW);
        assert!(matches!(
            Statements::of(&esc).tried(&a.view()),
            Some(TriedBy::Steps { .. })
        ));
        // The same words in a field of steps to reproduce say nothing was tried.
        let mut esc = escalation();
        esc.handoff.insert(
            "steps".into(),
            "Run the renew command in the admin console. Sign out and in.".into(),
        );
        assert!(Statements::of(&esc).is_empty());
    }

    #[test]
    fn a_mention_a_different_fix_or_one_step_of_many_is_not_enough() {
        // The command is named, but not as done without success.
        assert_eq!(
            tried_by("Should we run the renew command in the admin console?"),
            None
        );
        assert_eq!(
            tried_by("We ran the renew command in the admin console."),
            None
        );
        // Done and failed, but not what the article says.
        assert_eq!(
            tried_by(
                "We restarted the server and cleared the browser cache, but the error is still there."
            ),
            None
        );
        // One step of a longer resolution.
        let a = article(
            "kb-8",
            "Sign-in fails with error T401",
            "Resolution\nRun the renew command in the admin console. Import the new signing \
             certificate into the trust store. Set the token lifetime to 30 days in the policy \
             editor. Sign out and sign in again.",
        );
        assert_eq!(
            said("We signed out and in again, still T401.").tried(&a.view()),
            None
        );
    }

    #[test]
    fn a_case_that_names_the_article_as_tried_counts_it() {
        let a = article(
            "kb-7",
            "Sign-in fails with error T401 after the token expires",
            RENEW,
        );
        for text in [
            "We followed kb-7 but the error still comes back.",
            "We followed \"Sign-in fails with error T401 after the token expires\" and it did not help.",
        ] {
            assert!(
                matches!(said(text).tried(&a.view()), Some(TriedBy::Named { .. })),
                "{text}"
            );
        }
        // Found, but something else was done.
        assert_eq!(
            said("kb-7 looks related; we restarted the server but it still fails.")
                .tried(&a.view()),
            None
        );
    }

    /// A title that holds quotation marks of its own, quoted whole by the case.
    #[test]
    fn a_quoted_title_with_quotes_inside_names_the_article() {
        let a = article(
            "kb-9",
            "Console shows SQLCODE=-206 \"<name> is not valid in the context where it is used\"",
            RENEW,
        );
        let text = "We followed the article \"Console shows SQLCODE=-206 \"<name> is not valid in \
                    the context where it is used\"\" but it did not help.";
        assert!(
            matches!(said(text).tried(&a.view()), Some(TriedBy::Named { .. })),
            "{text}"
        );
    }

    /// Steps listed after "what the article says:", one of which holds a "but" of its own (not
    /// the turn to what failed): the list goes on to the sentence that says it failed.
    #[test]
    fn a_listed_step_that_says_but_does_not_end_the_list() {
        let body = "Resolution\n1. Open Billing and check the voucher's expiry date.\n\
                    2. Enter the payment details when claiming the voucher, but nothing is charged.\n\
                    3. Apply the voucher to the yearly plan.";
        let a = article("kb-8", "Voucher does not show at checkout", body);
        let by = said(
            "We already did what the article says: Open Billing and check the voucher's expiry \
             date. Enter the payment details when claiming the voucher, but nothing is charged. \
             Apply the voucher to the yearly plan. The problem is still there.",
        )
        .tried(&a.view());
        let Some(TriedBy::Steps { steps }) = by else {
            panic!("not tried: {by:?}")
        };
        assert_eq!(steps.len(), 3, "{steps:?}");
    }
}
