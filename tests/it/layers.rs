//! The library's modules are layers (see src/lib.rs): each may use only the layers below it. This test
//! reads every `crate::` path in src/ and fails when a module reaches up or sideways, so the layers stay
//! put as the code grows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module and its layer; a module may use modules of lower layers only.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("domain", 1),
    ("secret", 1),
    ("schema", 1),
    ("config", 2),
    ("inventory", 2),
    ("db", 3),
    ("store", 4),
    ("fields", 5),
    ("queue", 5),
    ("pool", 6),
    ("output", 6),
    ("report", 6),
    ("devstack", 6),
    ("commands", 7),
    ("cli", 8),
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file of src/ belongs to (`src/store/nodes.rs` → `store`), `None` for the crate
/// root and the binary.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!["lib", "main"].contains(&name)).then(|| name.to_owned())
}

/// Every module named after `crate::` in `text`, including inside nested `use crate::{a, b::{c}}`
/// groups.
fn used_modules(text: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.push(ident(rest));
            continue;
        };
        // The top-level items of the group: split at commas outside nested braces.
        let mut depth = 0;
        let mut start = 0;
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    found.push(ident(group[start..j].trim()));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    found.push(ident(group[start..j].trim()));
                    start = j + 1;
                }
                _ => {}
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// The violations in the tree at `src`: `file uses module` where module is not below the file's layer.
fn violations(src: &Path) -> Vec<String> {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut found = Vec::new();
    for file in rust_files(src) {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        let own = *layers
            .get(module.as_str())
            .unwrap_or_else(|| panic!("{} is in no layer: add it to LAYERS", file.display()));
        let text = std::fs::read_to_string(&file).unwrap();
        if text.contains("super::super") {
            // Reaching past the parent module hides which layer is used: name it with crate:: instead.
            found.push(format!(
                "{} uses super::super (write crate::...)",
                file.display()
            ));
        }
        for used in used_modules(&text) {
            if used == module {
                continue;
            }
            match layers.get(used.as_str()) {
                Some(&layer) if layer < own => {}
                Some(&layer) => found.push(format!(
                    "{} (layer {own}) uses crate::{used} (layer {layer})",
                    file.display()
                )),
                None => found.push(format!("{} uses unknown crate::{used}", file.display())),
            }
        }
    }
    found
}

#[test]
fn no_module_uses_a_module_of_its_own_or_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(found.is_empty(), "layer violations:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_an_upward_use_in_a_group_and_in_a_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("store")).unwrap();
    std::fs::write(
        dir.path().join("store/nodes.rs"),
        "use crate::{domain::NodeState, output::Format};\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("error.rs"),
        "fn f() { crate::db::connect(); }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.rs"),
        "use crate::{domain::{NodeState, plain}, store::nodes};\nuse super::super::x;\n",
    )
    .unwrap();
    let found = violations(dir.path());
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(
        found
            .iter()
            .any(|v| v.contains("config.rs (layer 2) uses crate::store"))
    );
    assert!(found.iter().any(|v| v.contains("super::super")));
    assert!(found[0].contains("uses crate::db") || found[1].contains("uses crate::db"));
    assert!(
        found
            .iter()
            .any(|v| v.contains("uses crate::output (layer 6)"))
    );
}

/// Lines of `src` that begin a transaction themselves (diesel's `.transaction(`, `.build_transaction(`,
/// `Connection::transaction(`, `begin_transaction_sql(`, or a BEGIN sent as a statement) instead
/// of through `db::transaction`, which sets molteniron's timeouts in the same message as its BEGIN.
fn own_transactions(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(src) {
        if file.strip_prefix(src).unwrap() == Path::new("db.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let begins = [
                ".transaction(",
                ".build_transaction(",
                "Connection::transaction(",
                "begin_transaction_sql(",
                "execute(\"BEGIN",
                "sql_query(\"BEGIN",
            ];
            if begins.iter().any(|b| code.contains(b)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn every_transaction_begins_through_db_transaction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = own_transactions(&src);
    assert!(
        found.is_empty(),
        "transactions without molteniron's timeouts (use db::transaction):\n{}",
        found.join("\n")
    );
    // The check sees one.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("queue.rs"),
        "fn f(c: &mut C) { c.transaction(|c| g(c)) }\n// c.transaction( in a comment\n\
         fn g(c: &mut C) { c.batch_execute(\"BEGIN; UPDATE nodes\") }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("db.rs"),
        "fn t(c: &mut C) { c.transaction(f) }\n",
    )
    .unwrap();
    assert_eq!(own_transactions(dir.path()).len(), 2);
}
