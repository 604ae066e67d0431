//! The crate's layout keeps its promise that dependencies point one way: no top-level module of
//! `src/` imports one that imports it back, directly or through others. The check reads the source
//! (every `crate::name` outside comments), so a cycle fails the suite the moment it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where one module refers to another: the file and line, for the failure message.
type Edges = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn no_top_level_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_edges(&src);
    for module in ["api", "federation", "http", "cli", "store", "crypto", "domain", "auth", "identity"] {
        assert!(
            edges.contains_key(module),
            "src/{module} was not read: is the layout check looking in the right place?"
        );
    }
    if let Some(cycle) = find_cycle(&edges) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|pair| format!("{} -> {} ({})", pair[0], pair[1], edges[&pair[0]][&pair[1]]))
            .collect();
        panic!("an import cycle between top-level modules:\n  {}", steps.join("\n  "));
    }
}

#[test]
fn the_layout_check_finds_a_cycle_when_there_is_one() {
    let mut edges = Edges::new();
    for (from, to) in [("api", "federation"), ("federation", "http"), ("http", "api"), ("api", "domain")] {
        edges.entry(from.to_owned()).or_default().insert(to.to_owned(), "test".to_owned());
    }
    edges.entry("domain".to_owned()).or_default();
    let cycle = find_cycle(&edges).expect("the cycle api -> federation -> http -> api");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    edges.get_mut("http").unwrap().remove("api");
    assert_eq!(find_cycle(&edges), None);
}

/// For each top-level module (a file `src/x.rs` or a folder `src/x/`), the other top-level modules
/// it names as `crate::other`, with the first place it does.
fn module_edges(src: &Path) -> Edges {
    let mut edges = Edges::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if ["lib", "main"].contains(&name.as_str()) {
            continue;
        }
        let targets = edges.entry(name.clone()).or_default();
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for (at, _) in code.match_indices("crate::") {
                    let rest = &code[at + "crate::".len()..];
                    let target: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    // `$crate::` in a macro is this crate's root, like `crate::`; the module is `target`.
                    if !target.is_empty() && target != name {
                        let place = format!("{}:{}", file.strip_prefix(src).unwrap().display(), number + 1);
                        targets.entry(target).or_insert(place);
                    }
                }
            }
        }
    }
    edges
}

/// Every `.rs` file at `path` (itself, or under it).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(path).unwrap().flat_map(|entry| rust_files(&entry.unwrap().path())).collect();
        files.sort();
        files
    } else if path.extension().is_some_and(|e| e == "rs") {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    }
}

/// A cycle as the modules along it, first and last the same; `None` if the graph has none.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    fn visit(node: &str, edges: &Edges, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flat_map(|targets| targets.keys()) {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}
