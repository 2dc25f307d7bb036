//! Architecture invariants (ARCHITECTURE.md), checked on the source: the "may use" column of the
//! code map is exactly what each backend module imports, the modules form no cycle, each heavy
//! dependency is named by one module only, and analyses read no store and no file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::root;

/// Every `.rs` file under `dir`, as (path relative to `backend/src`, text).
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root().join("backend/src")).unwrap().to_string_lossy().replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

fn backend_sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    sources(&root().join("backend/src"), &mut files);
    assert!(files.len() > 10, "backend/src holds {} files", files.len());
    files
}

/// The top-level module a file belongs to (`pipeline/browse.rs` → `pipeline`, `net.rs` → `net`);
/// `None` for the crate roots.
fn module_of(file: &str) -> Option<&str> {
    if file == "lib.rs" || file == "main.rs" {
        return None;
    }
    let first = file.split('/').next().unwrap();
    Some(first.strip_suffix(".rs").unwrap_or(first))
}

/// The code of a line: empty for comment lines, the part before a trailing `//` comment otherwise.
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match t.find(" //") {
        Some(i) => &t[..i],
        None => t,
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether a line of code names the crate `krate` as the root of a path: `krate::…` where the
/// name starts a path (not preceded by an identifier character or `::`, so `report::` does not
/// name `ort`), or `use krate;` / `extern crate krate`.
fn names_crate(line: &str, krate: &str) -> bool {
    let line = code(line);
    line.match_indices(krate).any(|(at, _)| {
        let before = &line[..at];
        let after = &line[at + krate.len()..];
        let starts_path = !before.ends_with(is_ident_char) && !before.ends_with(':');
        let whole_word = !after.starts_with(is_ident_char);
        starts_path
            && whole_word
            && (after.starts_with("::")
                || before.trim_end() == "use" && after.starts_with([';', ' '])
                || before.trim_end().ends_with("extern crate"))
    })
}

/// The crate-local paths a line refers to: `crate::a::b::Type` → `a::b` (module and function
/// segments: lower-case identifiers).
fn crate_paths(line: &str) -> Vec<String> {
    let line = code(line);
    let mut out = Vec::new();
    for (at, _) in line.match_indices("crate::") {
        if line[..at].ends_with(is_ident_char) {
            continue;
        }
        let rest = &line[at + "crate::".len()..];
        let segments: Vec<&str> = rest
            .split("::")
            .map(|s| s.split(|c: char| !is_ident_char(c)).next().unwrap_or(""))
            .take_while(|s| s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        if !segments.is_empty() {
            out.push(segments.join("::"));
        }
    }
    out
}

/// Whether `path` (`a::b::c`) lies inside the module path `entry` (`a` or `a::b`).
fn within(path: &str, entry: &str) -> bool {
    path == entry || path.starts_with(&format!("{entry}::"))
}

/// ARCHITECTURE.md's code map: module → the module paths its "may use" cell names in backticks.
fn architecture_table(text: &str) -> BTreeMap<String, Vec<String>> {
    let section = text.split("## Backend modules (code map)").nth(1).expect("ARCHITECTURE.md has the code map section");
    let section = section.split("\n## ").next().unwrap();
    let mut table = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 3, "a code-map row has three cells: {line}");
        let module = cells[0].trim_matches('`').to_owned();
        let may_use: Vec<String> = cells[2].split('`').skip(1).step_by(2).map(str::to_owned).collect();
        assert!(
            !may_use.is_empty() || cells[2] == "—",
            "the may-use cell of `{module}` names modules in backticks or is `—`: {line}"
        );
        assert!(table.insert(module.clone(), may_use).is_none(), "`{module}` has two rows");
    }
    table
}

/// What the code map gets wrong about the files: imports it does not allow, entries nothing
/// imports, modules without a row and rows without a module.
fn layering_violations(table: &BTreeMap<String, Vec<String>>, files: &[(String, String)]) -> Vec<String> {
    let mut uses: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in files {
        let Some(module) = module_of(file) else { continue };
        let used = uses.entry(module).or_default();
        for line in text.lines() {
            used.extend(crate_paths(line).into_iter().filter(|p| !within(p, module)));
        }
    }
    let mut problems = Vec::new();
    for (module, used) in &uses {
        let Some(allowed) = table.get(*module) else {
            problems.push(format!("module `{module}` has no row in ARCHITECTURE.md's code map"));
            continue;
        };
        for path in used {
            if !allowed.iter().any(|entry| within(path, entry)) {
                problems.push(format!("`{module}` uses `crate::{path}`, which its may-use cell does not allow"));
            }
        }
        for entry in allowed {
            if !used.iter().any(|path| within(path, entry)) {
                problems.push(format!("the code map lets `{module}` use `{entry}`, which it does not use"));
            }
        }
    }
    for module in table.keys() {
        if !uses.contains_key(module.as_str()) {
            problems.push(format!("the code map has a row for `{module}`, which is not a module of backend/src"));
        }
    }
    problems
}

/// A cycle among the modules of the code map, if there is one (as the modules along it).
fn find_cycle(table: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        table: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for dep in table.get(m).into_iter().flatten() {
            let top = dep.split("::").next().unwrap();
            if let Some(c) = visit(top, table, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    table.keys().find_map(|m| visit(m, table, &mut Vec::new(), &mut done))
}

/// Each heavy dependency and the places that may name it (the retry delays belong to the two
/// clients of remote servers).
const HOMES: [(&str, &[&str]); 9] = [
    ("duckdb", &["store/"]),
    ("ort", &["score/"]),
    ("tokenizers", &["score/"]),
    ("actix_web", &["http/"]),
    ("tantivy", &["search.rs"]),
    ("backon", &["llm/", "oip/"]),
    ("tonic", &["oip/"]),
    ("prost", &["oip/"]),
    ("clap", &["cli"]),
];

fn heavy_dependency_violations(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, text) in files {
        for (krate, homes) in HOMES {
            if !homes.iter().any(|home| file.starts_with(home)) {
                for (n, line) in text.lines().enumerate() {
                    if names_crate(line, krate) {
                        let home = homes.join(" and ");
                        problems.push(format!("{file}:{} names `{krate}`, which belongs to {home}", n + 1));
                    }
                }
            }
        }
    }
    problems
}

#[test]
fn the_code_map_is_exactly_what_the_modules_import() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let table = architecture_table(&text);
    assert!(table.len() >= 15, "the code map has {} rows", table.len());
    let problems = layering_violations(&table, &backend_sources());
    assert!(problems.is_empty(), "ARCHITECTURE.md and backend/src disagree:\n{}", problems.join("\n"));
    assert_eq!(find_cycle(&table), None, "the modules import each other in a cycle");
}

#[test]
fn the_layering_check_catches_drift() {
    let table = architecture_table(
        "## Backend modules (code map)\n\n| module | owns | may use |\n|---|---|---|\n\
         | `domain` | types | — |\n| `ingest` | parsing | `domain` |\n\
         | `features` | taxonomy | `ingest::transcript` |\n\n## Next\n",
    );
    assert_eq!(table["features"], ["ingest::transcript"]);
    let file = |name: &str, text: &str| (name.to_owned(), text.to_owned());
    let clean = [
        file("domain.rs", "pub struct Pair;"),
        file("ingest/mod.rs", "use crate::domain::Pair;\n// crate::features::x is a comment"),
        file("features/mod.rs", "fn f() { crate::ingest::transcript::turns(\"\"); }"),
    ];
    assert_eq!(layering_violations(&table, &clean), Vec::<String>::new());
    // An import outside the cell, a submodule outside the allowed one, an unused entry, a
    // module without a row.
    let drifted = [
        file("domain.rs", "use crate::ingest::Columns;"),
        file("ingest/mod.rs", "pub fn parse() {}"),
        file("features/mod.rs", "use crate::ingest::Columns;"),
        file("extra.rs", "use crate::domain::Pair;"),
    ];
    let problems = layering_violations(&table, &drifted);
    for expected in [
        "`domain` uses `crate::ingest`",
        "`features` uses `crate::ingest`",
        "lets `ingest` use `domain`",
        "lets `features` use `ingest::transcript`",
        "`extra` has no row",
    ] {
        assert!(problems.iter().any(|p| p.contains(expected)), "missing {expected:?} in {problems:#?}");
    }
    let cyclic = architecture_table(
        "## Backend modules (code map)\n| `a` | x | `b` |\n| `b` | y | `c::d` |\n| `c` | z | `a` |\n",
    );
    assert_eq!(find_cycle(&cyclic), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}

#[test]
fn heavy_dependencies_stay_in_their_module() {
    let problems = heavy_dependency_violations(&backend_sources());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_planted_inline_heavy_dependency_is_caught() {
    let planted = vec![
        ("pipeline/x.rs".to_owned(), "fn f() {\n    let s = ort::session::Session::builder();\n}".to_owned()),
        ("http/y.rs".to_owned(), "fn g() -> duckdb::Result<()> { Ok(()) }".to_owned()),
        ("cli.rs".to_owned(), "use tantivy;".to_owned()),
    ];
    let problems = heavy_dependency_violations(&planted);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("pipeline/x.rs:2 names `ort`"), "{problems:#?}");
    // Word boundaries: paths that merely contain a crate's name, comments and its home.
    let innocent = vec![
        ("pipeline/x.rs".to_owned(), "use crate::report::Summary;\nlet p = support::x();".to_owned()),
        ("http/y.rs".to_owned(), "// duckdb::Connection is the store's\nlet sort::by = 1;".to_owned()),
        ("score/z.rs".to_owned(), "use ort::session::Session;".to_owned()),
        ("cli.rs".to_owned(), "let abort::now = 1; let myduckdb::x = 2;".to_owned()),
    ];
    assert_eq!(heavy_dependency_violations(&innocent), Vec::<String>::new());
}

#[test]
fn stage_modules_do_not_import_each_other() {
    let stages = ["ingest", "store", "score"];
    for (file, text) in &backend_sources() {
        let Some(own) = stages.iter().find(|s| module_of(file) == Some(**s)) else { continue };
        let used: Vec<String> = text.lines().flat_map(crate_paths).collect();
        for other in stages.iter().chain(&["pipeline", "http", "cli"]).filter(|s| *s != own) {
            assert!(!used.iter().any(|p| within(p, other)), "{file} imports crate::{other}");
        }
    }
}

#[test]
fn analyses_read_no_store_and_no_file() {
    let files = backend_sources();
    let analysis: Vec<_> = files.iter().filter(|(f, _)| f.starts_with("analysis/")).collect();
    assert!(analysis.len() >= 3);
    for (file, text) in analysis {
        for other in ["store", "score", "ingest", "pipeline", "http", "cli", "net", "config"] {
            assert!(!text.contains(&format!("crate::{other}")), "{file} imports crate::{other}");
        }
        assert!(!text.contains("std::fs"), "{file} touches files");
    }
}

#[test]
fn only_the_command_line_prints() {
    for (file, text) in &backend_sources() {
        if module_of(file) == Some("cli") || file == "main.rs" {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let line = code(line);
            for mac in ["println!", "eprintln!", "print!", "eprint!", "dbg!"] {
                let printing = line.match_indices(mac).any(|(at, _)| !line[..at].ends_with(is_ident_char));
                assert!(!printing, "{file}:{}: `{mac}` in library code; report through `tracing` or a callback", n + 1);
            }
        }
    }
}
