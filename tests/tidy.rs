//! Architecture invariants (ARCHITECTURE.md), checked on the source: each heavy dependency is
//! named by one module only, and stage modules do not import each other.

use std::path::Path;

use crate::support::root;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root().join("backend/src")).unwrap().to_string_lossy().into_owned();
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn heavy_dependencies_stay_in_their_module() {
    let mut files = Vec::new();
    sources(&root().join("backend/src"), &mut files);
    assert!(files.len() > 10);
    let rules = [
        ("duckdb", "store/"),
        ("ort::", "score/"),
        ("tokenizers", "score/"),
        ("actix_web", "http/"),
        ("tantivy", "search.rs"),
        ("backon", "llm/"),
    ];
    for (file, text) in &files {
        for (needle, home) in rules {
            let uses = text.lines().any(|l| {
                let l = l.trim_start();
                !l.starts_with("//")
                    && (l.contains(&format!("use {needle}"))
                        || l.contains(&format!("{needle}::"))
                        || l.contains(&format!(" {needle}")) && l.starts_with("use "))
            });
            assert!(!uses || file.starts_with(home), "{file} names `{needle}`, which belongs to {home}");
        }
    }
}

#[test]
fn stage_modules_do_not_import_each_other() {
    let stages = ["ingest", "store", "score"];
    let mut files = Vec::new();
    sources(&root().join("backend/src"), &mut files);
    for (file, text) in &files {
        let Some(own) = stages.iter().find(|s| file.starts_with(&format!("{s}/"))) else { continue };
        for other in stages.iter().filter(|s| *s != own) {
            assert!(!text.contains(&format!("crate::{other}")), "{file} imports crate::{other}");
        }
        for upper in ["pipeline", "http", "cli", "demo"] {
            assert!(!text.contains(&format!("crate::{upper}")), "{file} imports crate::{upper}");
        }
    }
}

#[test]
fn analyses_read_no_store_and_no_file() {
    let mut files = Vec::new();
    sources(&root().join("backend/src"), &mut files);
    let analysis: Vec<_> = files.iter().filter(|(f, _)| f.starts_with("analysis/")).collect();
    assert!(analysis.len() >= 3);
    for (file, text) in analysis {
        for other in ["store", "score", "ingest", "pipeline", "http", "cli", "net", "config"] {
            assert!(!text.contains(&format!("crate::{other}")), "{file} imports crate::{other}");
        }
        assert!(!text.contains("std::fs"), "{file} touches files");
    }
}
