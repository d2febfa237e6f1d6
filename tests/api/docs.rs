//! The book (`docs/`): every page is in its summary, and every link between pages, and from the
//! README into the book, reaches a page and a heading that exist. `mdbook build docs` renders it
//! (CI runs it); these checks need no mdBook.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn book() -> PathBuf {
    repo().join("docs/src")
}

/// Every Markdown file under `dir`, relative to it.
fn pages(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found
}

/// The lines of a page outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// mdBook's id of a heading: lower case, letters, digits, `-` and `_` kept, spaces to `-`,
/// the rest dropped; a repeated id gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose(text) {
        let Some(title) = line.strip_prefix('#').map(|t| t.trim_start_matches('#')) else {
            continue;
        };
        if !title.starts_with(' ') {
            continue;
        }
        let id: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(id.clone()).or_insert(0);
        out.insert(if *n == 0 {
            id.clone()
        } else {
            format!("{id}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of the inline links `[text](target)` of a page, outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push(target.to_string());
            rest = &after[end..];
        }
    }
    out
}

/// `base/relative` with `.` and `..` resolved, without touching the file system.
fn joined(base: &Path, relative: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(relative).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What is wrong with each local link of `page` (a path under `root`).
fn broken_links(root: &Path, page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join(page)).unwrap();
    let mut broken = Vec::new();
    for target in links(&text) {
        if target.starts_with("http://")
            || target.starts_with("https://")
            || target.starts_with("mailto:")
        {
            continue;
        }
        let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
        let file = if file.is_empty() {
            page.to_path_buf()
        } else {
            joined(page.parent().unwrap_or(Path::new("")), file)
        };
        if file.starts_with("..") || !root.join(&file).is_file() {
            broken.push(format!(
                "{}: `{target}`: no file {}",
                page.display(),
                file.display()
            ));
            continue;
        }
        if !anchor.is_empty() {
            let there = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
            if !anchors(&there).contains(anchor) {
                broken.push(format!(
                    "{}: `{target}`: no heading #{anchor} in {}",
                    page.display(),
                    file.display()
                ));
            }
        }
    }
    broken
}

#[test]
fn every_page_is_in_the_summary_and_every_summary_entry_is_a_page() {
    let summary = std::fs::read_to_string(book().join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<PathBuf> = links(&summary).into_iter().map(PathBuf::from).collect();
    let mut on_disk = pages(&book());
    on_disk.remove(Path::new("SUMMARY.md"));
    assert_eq!(
        listed, on_disk,
        "SUMMARY.md must list exactly the pages under docs/src"
    );
}

#[test]
fn every_link_of_the_book_and_the_readme_reaches_a_page_and_a_heading() {
    let mut broken = Vec::new();
    for page in pages(&book()) {
        broken.extend(broken_links(&book(), &page));
    }
    broken.extend(broken_links(&repo(), Path::new("README.md")));
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_catches_a_missing_page_and_a_missing_heading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("a.md"),
        "# A\n\n## Twice\n\n## Twice\n\n## What `x` does: here\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sub/b.md"),
        "[ok](../a.md#twice-1) [ok](../a.md#what-x-does-here) [web](https://x.example/y)\n\
         [no page](../c.md) [no heading](../a.md#thrice) [out](../../x.md)\n\
         ```\n[in code](nowhere.md)\n```\n",
    )
    .unwrap();
    let broken = broken_links(dir.path(), Path::new("sub/b.md"));
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("no file c.md"), "{broken:#?}");
    assert!(broken[1].contains("no heading #thrice"), "{broken:#?}");
    assert!(broken[2].contains("`../../x.md`"), "{broken:#?}");
}
