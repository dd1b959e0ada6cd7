//! The runner's source tree is the pipeline: `runner/src/lib.rs` maps its modules in the
//! order the data flows (the first word of each line of its `text` block), and this test holds
//! the code to that map.
//!
//! - every module of the crate is on the map, and every module on the map exists;
//! - a module uses (`use crate::...`, `crate::...` paths, `super::` out of a folder) only
//!   modules above it on the map;
//! - inside one folder, its files do not import each other in a circle (a folder's `mod.rs`
//!   may use its children, as the stage's entry does).
//!
//! Test code (`tests.rs`, `tests/` folders, modules and items under `#[cfg(test)]`) is left
//! out: a test may use whatever it needs. Sources are parsed with `syn`, so comments, strings
//! and doc links do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The map of `lib.rs`: module names in pipeline order.
fn pipeline_order(lib_rs: &str) -> Vec<String> {
    let mut lines = lib_rs
        .lines()
        .map(|line| line.trim_start_matches("//!").trim());
    lines
        .by_ref()
        .find(|line| *line == "```text")
        .expect("lib.rs has a ```text map of the stages");
    lines
        .take_while(|line| *line != "```")
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Whether `attrs` hold `#[cfg(test)]`.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// One parsed source file of the library.
struct SourceFile {
    /// Its module path (`["output", "report", "embed"]`; a folder's `mod.rs` is the folder).
    module: Vec<String>,
    path: PathBuf,
    ast: syn::File,
}

/// Every file of the library's module tree from `lib.rs` down, without test-only modules.
fn library_files() -> Vec<SourceFile> {
    let mut files = Vec::new();
    let lib = src_dir().join("lib.rs");
    walk(&lib, Vec::new(), true, &mut files);
    files
}

/// Reads `path` (the file of `module`) and, through its `mod name;` items, its children.
/// `owns_dir` is true for `lib.rs` and `mod.rs`, whose children sit beside them.
fn walk(path: &Path, module: Vec<String>, owns_dir: bool, files: &mut Vec<SourceFile>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = if owns_dir {
        path.parent().unwrap().to_owned()
    } else {
        path.with_extension("")
    };
    for item in &ast.items {
        let syn::Item::Mod(item) = item else { continue };
        if item.content.is_some() || is_test_only(&item.attrs) {
            continue;
        }
        let name = item.ident.to_string();
        let mut child = module.clone();
        child.push(name.clone());
        let (file, folder) = (
            dir.join(format!("{name}.rs")),
            dir.join(&name).join("mod.rs"),
        );
        if file.is_file() {
            walk(&file, child, false, files);
        } else if folder.is_file() {
            walk(&folder, child, true, files);
        } else {
            panic!("{}: no file for `mod {name};`", path.display());
        }
    }
    files.push(SourceFile {
        module,
        path: path.to_owned(),
        ast,
    });
}

/// The module paths a file names, made absolute (`crate::plan::Plan` -> `["plan", "Plan"]`;
/// `super::x` from `a::b` -> `["a", "x"]`), outside test-only items.
struct Uses<'a> {
    here: &'a [String],
    found: BTreeSet<Vec<String>>,
}

impl Uses<'_> {
    fn absolute(&self, segments: Vec<String>) -> Option<Vec<String>> {
        let (first, rest) = segments.split_first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.here.to_vec(),
            "super" => self.here[..self.here.len().checked_sub(1)?].to_vec(),
            _ => return None,
        };
        let mut rest = rest.iter().peekable();
        while rest.peek().is_some_and(|segment| *segment == "super") {
            rest.next();
            base.pop();
        }
        base.extend(rest.cloned());
        Some(base)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => self.record(prefix, Some(name.ident.to_string())),
            syn::UseTree::Rename(rename) => self.record(prefix, Some(rename.ident.to_string())),
            syn::UseTree::Glob(_) => self.record(prefix, None),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    fn record(&mut self, prefix: &[String], last: Option<String>) {
        let segments: Vec<String> = prefix.iter().cloned().chain(last).collect();
        if let Some(path) = self.absolute(segments) {
            self.found.insert(path);
        }
    }
}

impl<'ast> Visit<'ast> for Uses<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(item) => &item.attrs,
            syn::Item::Fn(item) => &item.attrs,
            syn::Item::Impl(item) => &item.attrs,
            syn::Item::Use(item) => &item.attrs,
            syn::Item::Struct(item) => &item.attrs,
            syn::Item::Enum(item) => &item.attrs,
            syn::Item::Const(item) => &item.attrs,
            syn::Item::Static(item) => &item.attrs,
            _ => &Vec::new(),
        };
        if is_test_only(attrs) {
            return;
        }
        if let syn::Item::Use(item) = item {
            self.use_tree(&mut Vec::new(), &item.tree);
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(path) = self.absolute(segments) {
            self.found.insert(path);
        }
        syn::visit::visit_path(self, path);
    }
}

fn uses_of(file: &SourceFile) -> BTreeSet<Vec<String>> {
    let mut uses = Uses {
        here: &file.module,
        found: BTreeSet::new(),
    };
    uses.visit_file(&file.ast);
    uses.found
}

/// The circles of a directed graph (its strongly connected components of more than one node).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reaches = |from: &String, to: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(node) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    };
    let mut found: Vec<Vec<String>> = Vec::new();
    for node in edges.keys() {
        if found.iter().any(|circle| circle.contains(node)) || !reaches(node, node) {
            continue;
        }
        let circle = edges
            .keys()
            .filter(|other| *other == node || (reaches(node, other) && reaches(other, node)))
            .cloned()
            .collect();
        found.push(circle);
    }
    found
}

#[test]
fn the_map_names_every_module_once() {
    let lib_rs = fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    let order = pipeline_order(&lib_rs);
    let on_map: BTreeSet<&String> = order.iter().collect();
    assert_eq!(
        on_map.len(),
        order.len(),
        "a module twice on the map: {order:?}"
    );
    let modules: BTreeSet<String> = library_files()
        .into_iter()
        .filter_map(|file| file.module.first().cloned())
        .collect();
    assert_eq!(
        modules,
        on_map.into_iter().cloned().collect(),
        "lib.rs's modules and its map differ"
    );
}

#[test]
fn a_stage_uses_only_the_stages_before_it() {
    let lib_rs = fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    let order = pipeline_order(&lib_rs);
    let rank = |module: &str| order.iter().position(|name| name == module);
    let mut wrong = Vec::new();
    for file in library_files() {
        let Some(stage) = file.module.first() else {
            continue;
        };
        let here = rank(stage).unwrap();
        for used in uses_of(&file) {
            let Some(other) = used.first() else { continue };
            if rank(other).is_some_and(|there| there > here) {
                wrong.push(format!(
                    "{} uses crate::{} ({other} comes after {stage})",
                    file.path.strip_prefix(src_dir()).unwrap().display(),
                    used.join("::")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the pipeline:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_files_of_a_folder_import_each_other_without_a_circle() {
    let files = library_files();
    let children: BTreeSet<(String, String)> = files
        .iter()
        .filter(|file| file.module.len() >= 2)
        .map(|file| (file.module[0].clone(), file.module[1].clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files.iter().filter(|file| file.module.len() >= 2) {
        let (folder, child) = (&file.module[0], &file.module[1]);
        for used in uses_of(file) {
            if used.len() >= 2
                && &used[0] == folder
                && &used[1] != child
                && children.contains(&(folder.clone(), used[1].clone()))
            {
                edges
                    .entry(folder.clone())
                    .or_default()
                    .entry(child.clone())
                    .or_default()
                    .insert(used[1].clone());
            }
        }
    }
    let found: Vec<String> = edges
        .iter()
        .flat_map(|(folder, edges)| {
            circles(edges)
                .into_iter()
                .map(move |circle| format!("{folder}/: {}", circle.join(" <-> ")))
        })
        .collect();
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_back_import_and_a_circle() {
    // The checks above pass only if they can fail: a stage file that reaches forward, and two
    // files of a folder that import each other.
    let file = |module: &[&str], text: &str| SourceFile {
        module: module.iter().map(|s| s.to_string()).collect(),
        path: PathBuf::from("x.rs"),
        ast: syn::parse_file(text).unwrap(),
    };
    let forward = file(
        &["plan", "shard"],
        "use crate::{lab::run_lab, scenario::Scenario};\nuse super::Plan;\n\
         fn f() { crate::records::load_all(); }\n\
         #[cfg(test)] mod tests { use crate::output::write_outputs; }\n\
         /// [`crate::vm`] in a doc link does not count.\nfn g() {}",
    );
    let used = uses_of(&forward);
    assert!(
        used.contains(&vec!["lab".to_owned(), "run_lab".to_owned()]),
        "{used:?}"
    );
    assert!(used.contains(&vec!["scenario".to_owned(), "Scenario".to_owned()]));
    assert!(used.contains(&vec!["plan".to_owned(), "Plan".to_owned()]));
    assert!(used.contains(&vec!["records".to_owned(), "load_all".to_owned()]));
    assert!(
        !used
            .iter()
            .any(|path| path[0] == "output" || path[0] == "vm"),
        "{used:?}"
    );

    let edges = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        (
            "b".to_owned(),
            BTreeSet::from(["a".to_owned(), "c".to_owned()]),
        ),
        ("c".to_owned(), BTreeSet::new()),
    ]);
    assert_eq!(circles(&edges), [["a", "b"]]);
    assert_eq!(
        pipeline_order("//! ```text\n//! first  x\n//! second y\n//! ```\n"),
        ["first", "second"]
    );
}
