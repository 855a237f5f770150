//! The module layering of ops-core, checked from its source: no module imports a module that
//! imports it back, and the vocabulary (`vocab`) imports no behaviour module.
//!
//! A node is a top-level module of `ops-core/src` (`journal`, `run`, `incident`, ...); inside
//! [`SPLIT`] modules each submodule is a node of its own as well (`run::context`,
//! `incident::postmortem`), so cycles between them are found too. An edge is a `crate::…` path
//! (in a `use` or in code, `use` groups expanded) or, in a submodule of a split module, a
//! `super::…` path. Comments, string literals and `#[cfg(test)]` items are skipped: unit tests
//! may use anything. A path through a re-export (`crate::run::Mode`, `crate::OpsError`) is
//! resolved to the module that defines the name, as far as the parent's `pub use` lines say.
//!
//! The check needs no tool: cargo-modules' `--acyclic` would need a long build here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Modules whose submodules are checked against each other as well as against the rest.
const SPLIT: [&str; 2] = ["run", "incident"];

/// The leaf module of vocabulary types, and what it may import.
const VOCAB: &str = "vocab";
const VOCAB_MAY_IMPORT: [&str; 3] = ["error", "text", "serde_util"];

#[test]
fn ops_core_modules_have_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_tree(&src).expect("read ops-core/src");
    let graph = build(&files);
    let top = graph.collapse_to_top_level();
    // `cargo test --test layering -- --nocapture` shows the graph docs/architecture.md draws.
    println!("{}", describe(&top));
    let mut problems = String::new();
    for cycle in cycles(&top) {
        let _ = writeln!(
            problems,
            "cycle between top-level modules: {}",
            cycle.join(" -> ")
        );
    }
    for split in SPLIT {
        for cycle in cycles(&graph.inside(split)) {
            let _ = writeln!(problems, "cycle inside {split}: {}", cycle.join(" -> "));
        }
    }
    assert!(
        problems.is_empty(),
        "{problems}\nedges of the top-level graph:\n{}",
        describe(&top)
    );
}

#[test]
fn vocabulary_imports_no_behaviour_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = build(&read_tree(&src).expect("read ops-core/src")).collapse_to_top_level();
    let imports = graph.get(VOCAB).cloned().unwrap_or_default();
    let bad: Vec<_> = imports
        .keys()
        .filter(|m| !VOCAB_MAY_IMPORT.contains(&m.as_str()))
        .collect();
    assert!(
        graph.contains_key(VOCAB),
        "ops-core has no `{VOCAB}` module"
    );
    assert!(bad.is_empty(), "`{VOCAB}` imports {bad:?}: {imports:?}");
}

/// The checker itself finds a cycle planted in a tree that looks like the real one, through a
/// re-export, a `use` group and a `super::` path, and ignores comments, strings and unit tests.
#[test]
fn checker_finds_a_planted_cycle_and_ignores_tests_and_comments() {
    let files = vec![
        file("lib.rs", "pub mod a; pub mod run;\npub use a::Thing;"),
        file(
            "a.rs",
            "use crate::run::{Mode, other::X};\n// use crate::b;\nconst S: &str = \"crate::b\";",
        ),
        file("run/mod.rs", "mod ids; mod ctx;\npub use ids::Mode;"),
        file("run/ids.rs", "pub enum Mode {}"),
        file(
            "run/ctx.rs",
            "use super::Mode;\nfn f() { crate::Thing::new(); }\n#[cfg(test)]\nmod tests { use crate::z; }",
        ),
    ];
    let graph = build(&files);
    let top = graph.collapse_to_top_level();
    assert_eq!(cycles(&top), vec![vec!["a", "run", "a"]]);
    assert_eq!(cycles(&graph.inside("run")), Vec::<Vec<String>>::new());
    let inner = &graph["run::ctx"];
    assert!(
        inner.contains_key("a") && inner.contains_key("run::ids"),
        "{inner:?}"
    );
    assert!(
        !graph["a"].contains_key("b"),
        "a comment or a string made an edge"
    );
    assert!(!inner.contains_key("z"), "a unit test made an edge");
    assert_eq!(
        graph["a"].keys().collect::<Vec<_>>(),
        ["run", "run::ids"],
        "`run::other` is no submodule, so it stays `run`; `Mode` resolves to `run::ids`"
    );
}

fn file(path: &str, text: &str) -> (PathBuf, String) {
    (PathBuf::from(path), text.to_owned())
}

/// Every `.rs` file under `root`, as (path relative to `root`, text).
fn read_tree(root: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)?;
                let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                out.push((relative, text));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Module path of a file: `run/context.rs` -> `["run", "context"]`, `run/mod.rs` -> `["run"]`.
fn module_of(path: &Path) -> Vec<String> {
    let mut parts: Vec<String> = path
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Node of a module path: the top-level module, or `split::sub` inside a split module.
fn node_of(module: &[String]) -> Option<String> {
    let top = module.first()?;
    match module.get(1) {
        Some(sub) if SPLIT.contains(&top.as_str()) => Some(format!("{top}::{sub}")),
        _ => Some(top.clone()),
    }
}

/// node -> (imported node -> one path that shows the edge).
type Edges = BTreeMap<String, BTreeMap<String, String>>;

/// The import graph of a source tree, with a node per module as [`node_of`] says.
fn build(files: &[(PathBuf, String)]) -> Edges {
    let code: Vec<(Vec<String>, Vec<Token>)> = files
        .iter()
        .map(|(p, text)| (module_of(p), strip_cfg_test(&lex(text))))
        .collect();
    // Module tree: which names are modules, and which names a module re-exports from where.
    let modules: BTreeSet<Vec<String>> = code.iter().map(|(m, _)| m.clone()).collect();
    let mut reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (module, tokens) in &code {
        for path in use_paths(tokens) {
            if path.len() < 2 {
                continue;
            }
            let mut full = module.clone();
            match path[0].as_str() {
                "crate" => full = path[1..path.len() - 1].to_vec(),
                "super" | "self" => continue,
                _ => full.extend(path[..path.len() - 1].iter().cloned()),
            }
            if modules.contains(&full) {
                let name = path[path.len() - 1].clone();
                reexports
                    .entry(module.clone())
                    .or_default()
                    .insert(name, full);
            }
        }
    }
    let resolve = |path: &[String]| -> Vec<String> {
        // The longest module prefix, then one re-export hop for the next name.
        let mut module: Vec<String> = Vec::new();
        for seg in path {
            let mut next = module.clone();
            next.push(seg.clone());
            if modules.contains(&next) {
                module = next;
            } else if let Some(target) = reexports.get(&module).and_then(|r| r.get(seg)) {
                return target.clone();
            } else {
                break;
            }
        }
        module
    };
    let mut edges = Edges::new();
    for (module, tokens) in &code {
        let Some(from) = node_of(module) else {
            continue;
        };
        edges.entry(from.clone()).or_default();
        for path in all_paths(tokens) {
            let absolute: Vec<String> = match path[0].as_str() {
                "crate" => path[1..].to_vec(),
                "super" => {
                    let ups = path.iter().take_while(|s| *s == "super").count();
                    if ups > module.len() {
                        continue;
                    }
                    let mut base = module[..module.len() - ups].to_vec();
                    base.extend(path[ups..].iter().cloned());
                    base
                }
                _ => continue,
            };
            let Some(to) = node_of(&resolve(&absolute)) else {
                continue;
            };
            if to != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| format!("{}: {}", module.join("::"), path.join("::")));
            }
        }
    }
    edges
}

trait GraphExt {
    fn collapse_to_top_level(&self) -> Edges;
    fn inside(&self, split: &str) -> Edges;
}

impl GraphExt for Edges {
    fn collapse_to_top_level(&self) -> Edges {
        let top = |n: &str| n.split("::").next().unwrap_or(n).to_owned();
        let mut out = Edges::new();
        for (from, tos) in self {
            let entry = out.entry(top(from)).or_default();
            for (to, why) in tos {
                if top(to) != top(from) {
                    entry.entry(top(to)).or_insert_with(|| why.clone());
                }
            }
        }
        out
    }

    fn inside(&self, split: &str) -> Edges {
        let prefix = format!("{split}::");
        let mine = |n: &str| n == split || n.starts_with(&prefix);
        self.iter()
            .filter(|(from, _)| mine(from))
            .map(|(from, tos)| {
                let tos = tos
                    .iter()
                    .filter(|(to, _)| mine(to))
                    .map(|(to, why)| (to.clone(), why.clone()))
                    .collect();
                (from.clone(), tos)
            })
            .collect()
    }
}

fn describe(graph: &Edges) -> String {
    let mut out = String::new();
    for (from, tos) in graph {
        for (to, why) in tos {
            let _ = writeln!(out, "  {from} -> {to}   ({why})");
        }
    }
    out
}

/// One cycle per strongly connected component with more than one node, as `a -> b -> a`.
fn cycles(graph: &Edges) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    for start in graph.keys() {
        if done.contains(start) {
            continue;
        }
        // Shortest path back to `start` (breadth first), if any.
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut back = None;
        while let Some(n) = queue.pop_front() {
            for to in graph.get(&n).into_iter().flat_map(BTreeMap::keys) {
                if to == start {
                    back = Some(n.clone());
                    break;
                }
                if !prev.contains_key(to) {
                    prev.insert(to.clone(), n.clone());
                    queue.push_back(to.clone());
                }
            }
            if back.is_some() {
                break;
            }
        }
        if let Some(mut n) = back {
            let mut cycle = vec![start.clone()];
            let mut rest = vec![n.clone()];
            while let Some(p) = prev.get(&n).filter(|p| *p != start) {
                rest.push(p.clone());
                n = p.clone();
            }
            rest.reverse();
            cycle.extend(rest);
            cycle.push(start.clone());
            done.extend(cycle.iter().cloned());
            found.push(cycle);
        }
    }
    found
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
}

/// Identifiers and punctuation of Rust source, without comments, strings and char literals.
fn lex(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if (ch == 'r' || ch == 'b')
            && let Some(end) = raw_string_end(&c, i)
        {
            i = end;
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(c[start..i].iter().collect()));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                i += 1;
            }
        } else {
            if !ch.is_whitespace() {
                out.push(Token::Punct(ch));
            }
            i += 1;
        }
    }
    out
}

/// End of a raw string (`r"…"`, `r#"…"#`, `br"…"`) starting at `i`, if one starts there.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if c[j] == 'b' {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&h| h == '#').count();
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// The tokens without items under `#[cfg(test)]` (an attribute, then an item up to its `;` or
/// its braces).
fn strip_cfg_test(tokens: &[Token]) -> Vec<Token> {
    let pattern = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Ident("cfg".into()),
        Token::Punct('('),
        Token::Ident("test".into()),
        Token::Punct(')'),
        Token::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i..].starts_with(&pattern) {
            i += pattern.len();
            let mut depth = 0;
            while i < tokens.len() {
                match &tokens[i] {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    Token::Punct(';') if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    out
}

fn is_path_sep(tokens: &[Token], i: usize) -> bool {
    tokens.get(i) == Some(&Token::Punct(':')) && tokens.get(i + 1) == Some(&Token::Punct(':'))
}

/// Expand the path starting at `i` (`a::b::{c, d::e}`) into full paths; returns where it ends.
fn expand(tokens: &[Token], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(i) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                i += 1;
            }
            Some(Token::Punct('{')) => {
                i += 1;
                loop {
                    match tokens.get(i) {
                        Some(Token::Punct('}')) | None => return i + 1,
                        Some(Token::Punct(',')) => i += 1,
                        _ => i = expand(tokens, i, &path, out),
                    }
                }
            }
            Some(Token::Punct('*')) => {
                i += 1;
                break;
            }
            _ => break,
        }
        if is_path_sep(tokens, i) {
            i += 2;
        } else {
            break;
        }
    }
    // `self` in a group names the module itself; `as alias` is dropped.
    if path.last().is_some_and(|p| p == "self") && path.len() > 1 {
        path.pop();
    }
    if tokens.get(i) == Some(&Token::Ident("as".into())) {
        i += 2;
    }
    if !path.is_empty() {
        out.push(path);
    }
    i
}

/// Every `use` path of a token stream (`pub` or not: a parent's `use` names what its children
/// reach through `super::`).
fn use_paths(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if *t == Token::Ident("use".into()) {
            expand(tokens, i + 1, &[], &mut out);
        }
    }
    out
}

/// Every path that starts with `crate` or `super`, in `use` items and in code.
fn all_paths(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let starts = matches!(t, Token::Ident(s) if s == "crate" || s == "super");
        let continues_path = i >= 2 && is_path_sep(tokens, i - 2);
        if starts && !continues_path && is_path_sep(tokens, i + 1) {
            expand(tokens, i, &[], &mut out);
        }
    }
    out.retain(|p| p.len() > 1);
    out
}
