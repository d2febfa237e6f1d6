//! The crate's files import one another without a cycle, and so do its top-level modules.
//!
//! Granularity: a *file*, named by its module path (`src/lib.rs` is `crate`,
//! `src/helpdesk/mod.rs` is `crate::helpdesk`, `src/helpdesk/zendesk/api.rs` is
//! `crate::helpdesk::zendesk::api`). A file depends on another when it names something of it by
//! a path that starts with `crate::`, `super::` or `self::`, or with the name of one of its own
//! child modules (`store::Store` in `kb/local.rs`): in a `use` (groups expanded:
//! `use super::{a::B, c};` names `super::a::B` and `super::c`) or inline in the code
//! (`crate::metrics::webhook(...)`). Each path is resolved to the deepest module of it that is a
//! file. Comments, string literals and the bodies of `#[cfg(test)] mod` blocks are left out: a
//! test module may use what it tests. `main.rs` is the binary's own crate and names the library
//! as `escalation_gate::`, so it is left out; `mod x;` declarations are not edges.
//!
//! The top-level modules (`config/`, `runtime/`, `escalation.rs`, ...) are the same graph with
//! each file counted in the module directly under `src/` that holds it; `lib.rs`, which declares
//! them all and wires them in `run`, is left out there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

/// Edges `file -> files it names`, and for each edge the paths that make it; every file of the
/// crate is a key.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// The text's code: comments left out, and string and character literals emptied (`""`, `' '`),
/// so that neither a path in a message nor a brace in a format string counts.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let ident = |i: usize| chars[i].is_alphanumeric() || chars[i] == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let at = |k: usize| chars.get(i + k).copied();
        match chars[i] {
            '/' if at(1) == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(1) == Some('*') => {
                let mut depth = 0;
                loop {
                    match (chars.get(i), chars.get(i + 1)) {
                        (Some('/'), Some('*')) => (depth, i) = (depth + 1, i + 2),
                        (Some('*'), Some('/')) => (depth, i) = (depth - 1, i + 2),
                        (Some(_), _) => i += 1,
                        (None, _) => break,
                    }
                    if depth == 0 {
                        break;
                    }
                }
            }
            'r' if (i == 0
                || !ident(i - 1)
                || (chars[i - 1] == 'b' && (i < 2 || !ident(i - 2))))
                && matches!(at(1), Some('"' | '#')) =>
            {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + 1 + hashes) != Some(&'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let body: String = chars[i + 2 + hashes..].iter().collect();
                let end = body.find(&close).expect("a raw string is closed");
                i += 2 + hashes + body[..end].chars().count() + close.chars().count();
                out.push_str("\"\"");
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            '\'' if at(1) == Some('\\') => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            '\'' if at(2) == Some('\'') => {
                i += 3;
                out.push_str("' '");
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `code` without the bodies of its `#[cfg(test)] mod ... { ... }` blocks.
fn without_test_modules(code: &str) -> String {
    let start = Regex::new(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{").unwrap();
    let mut out = String::new();
    let mut rest = code;
    while let Some(m) = start.find(rest) {
        out.push_str(&rest[..m.start()]);
        let mut depth = 0;
        let mut end = rest.len();
        for (i, c) in rest[m.end() - 1..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = m.end() - 1 + i + 1;
                break;
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The paths of a `use` tree (`crate::{a::{B, C as D}, b::*}`): `crate::a::B`, `crate::a::C`,
/// `crate::b`; `self` in a group is the group's own path.
fn use_paths(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or("").replace(' ', "");
        let path = path.trim_end_matches("::*").to_string();
        return vec![path];
    };
    let prefix = tree[..open].replace(' ', "");
    let prefix = prefix.trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').expect("a use group is closed")];
    let mut items = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in inner.chars().chain([',']) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                if !current.trim().is_empty() {
                    items.push(std::mem::take(&mut current));
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items
        .iter()
        .flat_map(|item| use_paths(item))
        .map(|path| match path.as_str() {
            "self" | "*" => prefix.to_string(),
            _ if prefix.is_empty() => path,
            _ => format!("{prefix}::{path}"),
        })
        .collect()
}

/// The files that the file of `module` names in `text`, each with the paths that name it.
/// `files` holds every file's module path; a path resolves to the deepest of them it passes.
fn named_files(
    module: &str,
    text: &str,
    files: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let code = without_test_modules(&code_only(text));
    let uses = Regex::new(r"\buse\s+([^;]*);").unwrap();
    // Every lower-case path; `resolve` keeps those of the crate.
    let inline = Regex::new(r"(?:^|[^\w:])([a-z_]\w*(?:::\w+)+)").unwrap();
    let mut paths: Vec<String> = uses
        .captures_iter(&code)
        .flat_map(|c| use_paths(&c[1]))
        .collect();
    let rest = uses.replace_all(&code, ";");
    paths.extend(inline.captures_iter(&rest).map(|c| c[1].to_string()));
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in paths {
        if let Some(file) = resolve(module, &path, files)
            && file != module
        {
            named.entry(file).or_default().insert(path);
        }
    }
    named
}

/// The file that `path`, written in the file of `module`, names: the deepest module of it that
/// is a file. `None` for a path outside the crate (`std::`, `serde::`, a local `Type::item`).
fn resolve(module: &str, path: &str, files: &BTreeSet<String>) -> Option<String> {
    let mut segments = path.split("::").peekable();
    let mut base: Vec<&str> = match *segments.peek()? {
        "crate" => {
            segments.next();
            vec!["crate"]
        }
        "self" => {
            segments.next();
            module.split("::").collect()
        }
        "super" => module.split("::").collect(),
        child if files.contains(&format!("{module}::{child}")) => module.split("::").collect(),
        _ => return None,
    };
    while segments.peek() == Some(&"super") {
        segments.next();
        base.pop();
    }
    let mut deepest = base.join("::");
    for segment in segments {
        base.push(segment);
        let candidate = base.join("::");
        if !files.contains(&candidate) {
            break;
        }
        deepest = candidate;
    }
    files.contains(&deepest).then_some(deepest)
}

/// The module path of a file under `src/`: `lib.rs` is `crate`, `a/mod.rs` and `a.rs` are
/// `crate::a`.
fn module_path(rel: &Path) -> String {
    let mut parts = vec!["crate".to_string()];
    for part in rel.with_extension("").components() {
        parts.push(part.as_os_str().to_string_lossy().into_owned());
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crate_graph(src: &Path) -> Graph {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    paths.retain(|p| p.strip_prefix(src).unwrap() != Path::new("main.rs"));
    let modules: BTreeMap<String, std::path::PathBuf> = paths
        .into_iter()
        .map(|p| (module_path(p.strip_prefix(src).unwrap()), p))
        .collect();
    let files: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, path)| {
            let text = std::fs::read_to_string(path).unwrap();
            (module.clone(), named_files(module, &text, &files))
        })
        .collect()
}

/// The graph of the top-level modules: an edge from `a` to `b` for every edge between a file
/// under `a` and one under `b`, with the files that make it; `lib.rs` (`crate`) is left out.
fn top_level(files: &Graph) -> Graph {
    let top = |module: &str| module.split("::").nth(1).map(str::to_string);
    let mut graph = Graph::new();
    for (from, edges) in files {
        let Some(a) = top(from) else { continue };
        let node = graph.entry(a.clone()).or_default();
        for to in edges.keys() {
            if let Some(b) = top(to).filter(|b| *b != a) {
                node.entry(b).or_default().insert(from.clone());
            }
        }
    }
    graph
}

/// A group of files that reach one another (a strongly connected component of more than one
/// file): its files, and the shortest cycle through the first of them as `a -> b (paths)` lines.
#[derive(Debug, PartialEq)]
struct Circle {
    files: BTreeSet<String>,
    cycle: Vec<String>,
}

/// Every [`Circle`] of the graph.
fn circles(graph: &Graph) -> Vec<Circle> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(node) = todo.pop() {
            for next in graph.get(&node).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    let mut placed = BTreeSet::new();
    let mut found = Vec::new();
    for node in graph.keys() {
        if placed.contains(node) || !reaches[node].contains(node) {
            continue;
        }
        let group: BTreeSet<&String> = reaches[node]
            .iter()
            .filter(|other| reaches.get(other).is_some_and(|r| r.contains(node)))
            .collect();
        placed.extend(group.iter().map(|n| (*n).clone()));
        // The shortest way back to `node` within the group (breadth first).
        let mut before: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([node]);
        'search: while let Some(at) = queue.pop_front() {
            for next in graph[at].keys().filter(|n| group.contains(n)) {
                if next == node {
                    before.insert(node, at);
                    break 'search;
                }
                if !before.contains_key(next) {
                    before.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        let mut way = vec![node];
        while let Some(prev) = before.get(way.last().unwrap()).copied()
            && prev != node
        {
            way.push(prev);
        }
        way.push(node);
        way.reverse();
        found.push(Circle {
            files: group.into_iter().cloned().collect(),
            cycle: way
                .windows(2)
                .map(|w| format!("{} -> {} ({:?})", w[0], w[1], graph[w[0]][w[1]]))
                .collect(),
        });
    }
    found
}

/// The circles found, for a failed test: each group of `what` and a cycle through it.
fn shown(found: &[Circle], what: &str) -> String {
    let groups: Vec<String> = found
        .iter()
        .map(|c| format!("{:?}, e.g.\n{}", c.files, c.cycle.join("\n")))
        .collect();
    format!(
        "{} group(s) of {what} import one another:\n\n{}",
        found.len(),
        groups.join("\n\n")
    )
}

#[test]
fn the_crate_s_files_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = crate_graph(&src);
    // One edge of each kind, to know the graph is read from the sources: `crate::`, `super::`,
    // and a child module's name (`use store::Store;` in `kb/local.rs`).
    for (from, to) in [
        ("crate::helpdesk::zendesk::webhook", "crate::helpdesk"),
        (
            "crate::helpdesk::zendesk::history",
            "crate::helpdesk::zendesk::api",
        ),
        ("crate::kb::local", "crate::kb::local::store"),
    ] {
        assert!(
            graph.get(from).is_some_and(|e| e.contains_key(to)),
            "{from} -> {to} is not in the graph: {:?}",
            graph.get(from)
        );
    }
    let found = circles(&graph);
    assert!(found.is_empty(), "{}", shown(&found, "files"));
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = top_level(&crate_graph(&src));
    assert!(
        graph
            .get("helpdesk")
            .is_some_and(|e| e.contains_key("checks")),
        "the graph is read from the sources: {graph:#?}"
    );
    let found = circles(&graph);
    assert!(found.is_empty(), "{}", shown(&found, "top-level modules"));
}

/// A graph of `edges`, each made by the path `to`; every node is a key.
fn graph_of(edges: &[(&str, &str)]) -> Graph {
    let mut graph = Graph::new();
    for (from, to) in edges {
        graph
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_default()
            .insert(to.to_string());
        graph.entry(to.to_string()).or_default();
    }
    graph
}

#[test]
fn a_cycle_is_found_once_for_each_group_of_files_that_reach_one_another() {
    let mut graph = graph_of(&[
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "b"),
        ("d", "a"),
        ("e", "f"),
        ("f", "e"),
    ]);
    let found = circles(&graph);
    let files = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0].files,
        files(&["a", "b", "c"]),
        "d reaches them, not back"
    );
    assert_eq!(
        found[0].cycle,
        [
            r#"a -> b ({"b"})"#,
            r#"b -> c ({"c"})"#,
            r#"c -> a ({"a"})"#
        ]
    );
    assert_eq!(found[1].files, files(&["e", "f"]));
    graph.get_mut("c").unwrap().remove("a");
    let found = circles(&graph);
    assert_eq!(found[0].files, files(&["b", "c"]), "{found:?}");
    assert_eq!(found[0].cycle.len(), 2, "{found:?}");
    graph.get_mut("c").unwrap().clear();
    graph.get_mut("f").unwrap().clear();
    assert_eq!(circles(&graph), Vec::new());
}

#[test]
fn super_self_child_and_grouped_paths_resolve_to_the_deepest_file() {
    let files: BTreeSet<String> = [
        "crate",
        "crate::a",
        "crate::a::b",
        "crate::a::b::c",
        "crate::a::d",
        "crate::kb",
        "crate::metrics",
        "crate::x",
    ]
    .map(String::from)
    .into();
    let text = r#"
use super::{d::Thing, self as b2};
use super::super::kb::{self, Article as A};
use crate::{x, metrics::{self, webhook}};
use self::c::Inner;
use std::collections::HashMap;
// use crate::commented::Out;
/* crate::gone */
fn f() {
    let s = "crate::in_a_string::{";
    let c = '{';
    crate::metrics::count(1);
    c::helper();
    Self::go();
}
#[cfg(test)]
mod tests {
    use crate::a::d::Only;
    fn g() { let brace = "}"; }
}
"#;
    let named = named_files("crate::a::b", text, &files);
    let names: BTreeSet<&str> = named.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "crate::a",
            "crate::a::b::c",
            "crate::a::d",
            "crate::kb",
            "crate::metrics",
            "crate::x"
        ])
    );
    assert_eq!(
        named["crate::a::b::c"],
        BTreeSet::from(["self::c::Inner".to_string(), "c::helper".to_string()])
    );
    assert_eq!(
        named["crate::a"],
        BTreeSet::from(["super".to_string()]),
        "`self` in a group is the group's own path"
    );
    assert_eq!(
        named["crate::a::d"],
        BTreeSet::from(["super::d::Thing".to_string()]),
        "the test module's use is left out"
    );
    assert_eq!(module_path(Path::new("a/mod.rs")), "crate::a");
    assert_eq!(module_path(Path::new("a/b.rs")), "crate::a::b");
    assert_eq!(module_path(Path::new("lib.rs")), "crate");
}

#[test]
fn files_count_in_the_top_level_module_that_holds_them() {
    let files = graph_of(&[
        ("crate::a::x", "crate::b"),
        ("crate::a", "crate::a::x"),
        ("crate::b::y", "crate::a::x"),
        ("crate", "crate::b::y"),
    ]);
    let graph = top_level(&files);
    assert_eq!(
        graph,
        Graph::from([
            (
                "a".to_string(),
                BTreeMap::from([("b".to_string(), BTreeSet::from(["crate::a::x".to_string()]))])
            ),
            (
                "b".to_string(),
                BTreeMap::from([("a".to_string(), BTreeSet::from(["crate::b::y".to_string()]))])
            ),
        ])
    );
    assert_eq!(circles(&graph).len(), 1, "a and b reach one another");
}
