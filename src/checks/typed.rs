//! Typing a connector file: every unknown key and wrong type in one run, each at its full key
//! path (`helpdesk.auth.token`), and TOML syntax errors at their line and column.
//!
//! serde stops at the first error, so [`typed`] types the file, sets the entry that failed
//! aside, and types the rest again until nothing fails. An entry that was set aside and was
//! required makes its table fail in turn ("missing field"); that table is then set aside too,
//! silently, and the search goes on above it. serde reports a missing field only after every
//! present entry of the table typed well, so nothing else is hidden that way.
//!
//! Tables tagged by a key (`type = "zendesk"`, `kind = "email"`, ...) are typed by [`tagged`]:
//! serde's own internally tagged enums buffer the table and lose the key paths inside it.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};

use super::Problem;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A dotted key path: `helpdesk.fields.foo`, `handoff.rules[0].min`.
pub fn display(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) if out.is_empty() => out.push_str(k),
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The most entries set aside in one file before typing gives up.
const MAX_ROUNDS: usize = 256;

/// Every structural problem of a value that did not type, and what typed once the entries at
/// fault were set aside.
#[derive(Debug)]
pub struct Untyped<T> {
    /// Unknown keys, wrong types, missing keys, each at its full key path.
    pub problems: Vec<Problem>,
    /// The rest of the value, typed, when it types without the entries set aside: its values
    /// can still be checked in the same run.
    pub rest: Option<T>,
    /// The key paths set aside, as the file has them.
    pub set_aside: Vec<String>,
}

impl<T> Untyped<T> {
    /// Whether a problem found in [`Untyped::rest`] at `key` may come from an entry set aside:
    /// at or under it, or under an array that lost an entry (the indexes after it moved).
    pub fn may_come_from_set_aside(&self, key: &str) -> bool {
        self.set_aside.iter().any(|gone| {
            let parent_array = gone
                .strip_suffix(']')
                .and_then(|g| g.rfind('[').map(|at| &gone[..=at]));
            key == gone
                || key.starts_with(&format!("{gone}."))
                || key.starts_with(&format!("{gone}["))
                || parent_array.is_some_and(|array| key.starts_with(array))
        })
    }
}

/// Types `value` as `T`, or returns every structural problem in it (unknown keys, wrong types,
/// missing keys), each at its full key path, with the rest of the value typed where it can be.
pub fn typed<T: DeserializeOwned>(value: toml::Value) -> Result<T, Untyped<T>> {
    let mut pruned = Pruned {
        value,
        removed: Vec::new(),
    };
    let mut problems = Vec::new();
    let mut rest = None;
    for _ in 0..MAX_ROUNDS {
        let (path, message) = match serde_path_to_error::deserialize(pruned.value.clone()) {
            Ok(t) if problems.is_empty() => return Ok(t),
            Ok(t) => {
                rest = Some(t);
                break;
            }
            Err(e) => located(e),
        };
        let original = pruned.original(&path);
        let consequence = missing_field(&message).is_some_and(|field| {
            let mut child = original.clone();
            child.push(Segment::Key(field.to_string()));
            pruned.removed.contains(&child)
        });
        if !consequence {
            problems.push(Problem::new(display(&original), message));
        }
        if path.is_empty() || !pruned.remove(&path, original) {
            break;
        }
    }
    Err(Untyped {
        problems,
        rest,
        set_aside: pruned.removed.iter().map(|p| display(p)).collect(),
    })
}

/// An enum read from a table that names its variant with the key [`Tagged::TAG`]; typed with
/// [`tagged`] or [`optional`].
pub trait Tagged: DeserializeOwned {
    const TAG: &'static str;
}

/// `deserialize_with` for a table tagged by `T::TAG`: the variant's keys keep their paths.
/// `T` derives serde's default (externally tagged) form; this reads `{TAG = "name", keys...}`
/// as `{name = {keys...}}`.
pub fn tagged<'de, D: Deserializer<'de>, T: Tagged>(d: D) -> Result<T, D::Error> {
    let mut table = toml::Table::deserialize(d)?;
    let name = match table.remove(T::TAG) {
        Some(toml::Value::String(name)) => name,
        Some(other) => {
            return Err(D::Error::custom(nested(
                &[Segment::Key(T::TAG.into())],
                &format!("invalid type: {}, expected a string", other.type_str()),
            )));
        }
        None => return Err(D::Error::missing_field(T::TAG)),
    };
    let first_key = table.keys().next().cloned();
    let mut variant = toml::Table::new();
    variant.insert(name.clone(), toml::Value::Table(table));
    serde_path_to_error::deserialize(toml::Value::Table(variant)).map_err(|e| {
        let (path, message) = located(e);
        let (path, message) = match (path.is_empty(), first_key) {
            (true, _) if message.starts_with("unknown variant") => {
                (vec![Segment::Key(T::TAG.into())], message)
            }
            // A variant without keys, given some.
            (true, Some(key)) if message == "expected empty table" => (
                vec![Segment::Key(key.clone())],
                format!(
                    "unknown field `{key}`: `{} = \"{name}\"` takes no other keys",
                    T::TAG
                ),
            ),
            _ => (path, message),
        };
        D::Error::custom(nested(&path, &message))
    })
}

/// [`tagged`] for an optional table.
pub fn optional<'de, D: Deserializer<'de>, T: Tagged>(d: D) -> Result<Option<T>, D::Error> {
    tagged(d).map(Some)
}

/// A TOML syntax error at its line and column (1-based), on one line.
pub fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let message = e.message().trim().replace('\n', "; ");
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        format!("line {line}, column {column}: ")
    });
    Problem::new(
        "",
        format!("{}not valid TOML: {message}", at.unwrap_or_default()),
    )
}

/// The value being typed, with what was set aside so far.
struct Pruned {
    value: toml::Value,
    /// Paths set aside, as the file has them (array indexes before any removal).
    removed: Vec<Vec<Segment>>,
}

impl Pruned {
    /// The path in the file of a path in the value as it is now: array entries set aside
    /// shifted the ones after them.
    fn original(&self, path: &[Segment]) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::with_capacity(path.len());
        for s in path {
            let s = match s {
                Segment::Index(now) => {
                    let mut gone: Vec<usize> = self
                        .removed
                        .iter()
                        .filter_map(|r| match r.split_last() {
                            Some((Segment::Index(i), parent)) if parent == out.as_slice() => {
                                Some(*i)
                            }
                            _ => None,
                        })
                        .collect();
                    gone.sort_unstable();
                    let mut index = *now;
                    for g in gone {
                        if g <= index {
                            index += 1;
                        }
                    }
                    Segment::Index(index)
                }
                key => key.clone(),
            };
            out.push(s);
        }
        out
    }

    /// Sets aside the entry at `path` (as the value is now); `original` is its path in the file.
    fn remove(&mut self, path: &[Segment], original: Vec<Segment>) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = &mut self.value;
        for s in parents {
            node = match (node, s) {
                (toml::Value::Table(t), Segment::Key(k)) => match t.get_mut(k) {
                    Some(n) => n,
                    None => return false,
                },
                (toml::Value::Array(a), Segment::Index(i)) => match a.get_mut(*i) {
                    Some(n) => n,
                    None => return false,
                },
                _ => return false,
            };
        }
        let removed = match (node, last) {
            (toml::Value::Table(t), Segment::Key(k)) => t.remove(k).is_some(),
            (toml::Value::Array(a), Segment::Index(i)) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => false,
        };
        if removed {
            self.removed.push(original);
        }
        removed
    }
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// Marks a problem found inside a [`tagged`] table, so the key path inside it survives the
/// error type: `\u{1}` + the path as JSON + `\u{1}` + the message.
const NESTED: char = '\u{1}';

fn nested(path: &[Segment], message: &str) -> String {
    let steps: Vec<serde_json::Value> = path
        .iter()
        .map(|s| match s {
            Segment::Key(k) => serde_json::Value::from(k.as_str()),
            Segment::Index(i) => serde_json::Value::from(*i),
        })
        .collect();
    format!(
        "{NESTED}{}{NESTED}{message}",
        serde_json::Value::from(steps)
    )
}

/// The path (as the value is now) and message of an error, including a [`nested`] path.
fn located(e: serde_path_to_error::Error<toml::de::Error>) -> (Vec<Segment>, String) {
    use serde_path_to_error::Segment as S;
    let mut path: Vec<Segment> = e
        .path()
        .iter()
        .filter_map(|s| match s {
            S::Map { key } => Some(Segment::Key(key.clone())),
            S::Seq { index } => Some(Segment::Index(*index)),
            S::Enum { .. } | S::Unknown => None,
        })
        .collect();
    let message = e.into_inner().message().to_string();
    let inner = message
        .strip_prefix(NESTED)
        .and_then(|rest| rest.split_once(NESTED))
        .and_then(|(steps, message)| {
            let steps: Vec<serde_json::Value> = serde_json::from_str(steps).ok()?;
            let steps = steps
                .into_iter()
                .map(|s| match s {
                    serde_json::Value::String(k) => Some(Segment::Key(k)),
                    n => n.as_u64().map(|i| Segment::Index(i as usize)),
                })
                .collect::<Option<Vec<_>>>()?;
            Some((steps, message.to_string()))
        });
    match inner {
        Some((steps, message)) => {
            path.extend(steps);
            (path, message)
        }
        None => (path, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        name: String,
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default, deserialize_with = "optional")]
        auth: Option<Auth>,
        limits: Option<Limits>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        field: String,
        min: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        max: u32,
        min: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Auth {
        Token { token: String },
        Anonymous,
    }

    impl Tagged for Auth {
        const TAG: &'static str = "kind";
    }

    fn problems(text: &str) -> Vec<(String, String)> {
        let value = toml::Value::Table(toml::from_str(text).unwrap());
        match typed::<File>(value) {
            Ok(_) => vec![],
            Err(u) => u.problems.into_iter().map(|p| (p.key, p.message)).collect(),
        }
    }

    #[test]
    fn every_problem_at_its_full_path() {
        let found = problems(
            r#"
            name = "x"
            colour = "red"
            [[rules]]
            field = 1
            [[rules]]
            field = "a"
            min = "two"
            extra = true
            [[rules]]
            min = 1
            [[rules]]
            field = "b"
            mni = 3
            [auth]
            kind = "token"
            token = 7
            scope = "all"
            [limits]
            max = "ten"
            min = -1
            "#,
        );
        let mut keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "auth.scope",
                "auth.token",
                "colour",
                "limits.max",
                "limits.min",
                "rules[0].field",
                "rules[1].extra",
                "rules[1].min",
                "rules[2]",
                "rules[3].mni",
            ],
            "{found:?}"
        );
        let message = |key: &str| &found.iter().find(|(k, _)| k == key).unwrap().1;
        assert!(message("auth.scope").contains("unknown field `scope`"));
        assert!(message("auth.token").contains("invalid type: integer `7`"));
        assert!(message("rules[2]").contains("missing field `field`"));
        assert!(!found.iter().any(|(_, m)| m.contains(NESTED)));
    }

    #[test]
    fn tags_are_checked_like_any_key() {
        let found = problems("name = \"x\"\n[auth]\nkind = \"password\"\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "auth.kind");
        assert!(
            found[0].1.contains("unknown variant `password`"),
            "{found:?}"
        );
        let found = problems("name = \"x\"\n[auth]\ntoken = \"t\"\n");
        assert_eq!(found, [("auth".into(), "missing field `kind`".into())]);
        let found = problems("name = \"x\"\n[auth]\nkind = \"anonymous\"\ntoken = \"t\"\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "auth.token");
        assert!(found[0].1.contains("takes no other keys"), "{found:?}");
        assert_eq!(
            problems("name = \"x\"\n[auth]\nkind = \"anonymous\"\n"),
            vec![]
        );
        assert_eq!(
            problems("name = \"x\"\n[auth]\nkind = \"token\"\ntoken = \"t\"\n"),
            vec![]
        );
    }

    #[test]
    fn a_missing_required_key_is_reported_once() {
        let found = problems("[limits]\nmax = 1\n");
        assert_eq!(found, [(String::new(), "missing field `name`".into())]);
        // A wrong type of a required key: the type, not also its absence.
        let found = problems("name = 3\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "name");
    }

    #[test]
    fn syntax_errors_have_a_line_and_column() {
        let text = "a = 1\n[table\nb = 2\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let p = syntax_problem(text, &e);
        assert!(
            p.message.starts_with("line 2, column 7: not valid TOML: "),
            "{p:?}"
        );
        assert!(!p.message.contains('\n'));
    }

    #[test]
    fn value_problems_near_an_entry_set_aside_are_recognised() {
        let untyped = Untyped::<()> {
            problems: vec![],
            rest: None,
            set_aside: vec!["handoff.rules[1]".into(), "helpdesk.auth".into()],
        };
        for key in [
            "handoff.rules[1]",
            "handoff.rules[2].min",
            "helpdesk.auth",
            "helpdesk.auth.token",
        ] {
            assert!(untyped.may_come_from_set_aside(key), "{key}");
        }
        for key in [
            "handoff.overrides[0]",
            "helpdesk.authority",
            "knowledge_base.threshold",
        ] {
            assert!(!untyped.may_come_from_set_aside(key), "{key}");
        }
    }
}
