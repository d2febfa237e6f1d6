//! The crate's modules import one another without a cycle.
//!
//! Granularity: a *top-level module*, i.e. a file or folder directly under `src/` (`config/`,
//! `connector.rs`, `helpdesk/`, ...), with everything inside it. A module depends on another when
//! any of its files names it by a `crate::` path (`use crate::kb::Article;`, `use crate::{a, b};`,
//! or an inline `crate::metrics::webhook(...)`). The crate roots `lib.rs` and `main.rs` declare
//! every module and are left out. Paths inside one top-level module (`super::`, `self::`) stay
//! inside it, so a reference to another top-level module must be written `crate::...`, which is
//! the house style anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

/// Edges `module -> modules it names`, and for each edge the files that make it.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn without_comments(text: &str) -> String {
    let block = Regex::new(r"(?s)/\*.*?\*/").unwrap();
    let line = Regex::new(r"//[^\n]*").unwrap();
    line.replace_all(&block.replace_all(text, ""), "")
        .into_owned()
}

/// The top-level modules one file's text names.
fn named_modules(text: &str) -> BTreeSet<String> {
    let text = without_comments(text);
    let group = Regex::new(r"(?s)use\s+crate::\{(.*?)\};").unwrap();
    let path = Regex::new(r"crate::(\w+)").unwrap();
    let mut names = BTreeSet::new();
    for g in group.captures_iter(&text) {
        // The first segment of each path of the group, at the group's own depth.
        let mut depth = 0;
        let mut current = String::new();
        for c in g[1].chars().chain([',']) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    let first = current.trim().split("::").next().unwrap_or("").to_string();
                    names.insert(first);
                    current.clear();
                }
                c if depth == 0 => current.push(c),
                _ => {}
            }
        }
    }
    let rest = group.replace_all(&text, "");
    names.extend(path.captures_iter(&rest).map(|c| c[1].to_string()));
    names.retain(|n| !n.is_empty() && n != "self");
    names
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
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        if rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let first = rel.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for named in named_modules(&text) {
            if named != module {
                edges
                    .entry(named)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    graph
}

/// A cycle of the graph as `a -> b -> ... -> a`, each edge with the files that make it.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        graph: &Graph,
        node: &str,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap();
                let mut cycle: Vec<String> = stack[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(graph, next, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(graph, node, &mut marks, &mut Vec::new()) {
            return Some(
                cycle
                    .windows(2)
                    .map(|w| format!("{} -> {} ({:?})", w[0], w[1], graph[&w[0]][&w[1]]))
                    .collect(),
            );
        }
    }
    None
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = crate_graph(&src);
    assert!(
        graph.contains_key("helpdesk") && graph["helpdesk"].contains_key("checks"),
        "the graph is read from the sources: {graph:#?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("the modules form a cycle:\n{}", cycle.join("\n"));
    }
}

#[test]
fn a_cycle_through_a_use_group_or_an_inline_path_is_found() {
    assert_eq!(
        named_modules(
            "use crate::{a::{B, C}, b};\n// crate::commented\n/* crate::gone */\nfn f() { crate::c::go(); }"
        ),
        BTreeSet::from(["a".to_string(), "b".to_string(), "c".to_string()])
    );
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")] {
        graph
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_default()
            .insert(format!("src/{from}.rs"));
    }
    let cycle = find_cycle(&graph).expect("a -> b -> c -> a is a cycle");
    assert_eq!(cycle.len(), 3, "{cycle:?}");
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&graph), None);
}
