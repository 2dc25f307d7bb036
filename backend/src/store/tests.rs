//! Unit tests of the store that span several table families (pairs, models, scores) and the
//! migrations.

use super::*;
use crate::domain::{InputFormat, ModelKind, ModelRecord, NewPair, PairScore, Side, TextScore, Truncation};

fn pair(id: &str, line: u64, resp: &str) -> NewPair {
    NewPair {
        pair_id: id.into(),
        subset: "s".into(),
        split: "test".into(),
        line,
        chosen: Side { context: "\n\nHuman: q\n\n".into(), response: format!("Assistant: {resp}") },
        rejected: Side { context: "\n\nHuman: q\n\n".into(), response: "Assistant: no".into() },
    }
}

fn source(uri: &str, sha: &str, n: u64) -> SourceRecord {
    SourceRecord {
        uri: uri.into(),
        sha256: sha.into(),
        subset: "s".into(),
        split: "test".into(),
        n_lines: n,
        n_pairs: n,
        n_rejected: 0,
    }
}

fn score(id: &str) -> PairScore {
    let t = TextScore { score: 1.0, n_tokens: 3, truncated: false };
    PairScore { pair_id: id.into(), chosen: t, rejected: TextScore { score: 0.5, ..t } }
}

#[test]
fn a_store_of_a_newer_schema_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seal.duckdb");
    let store = Store::open(&path).unwrap();
    let known = migrate::MIGRATIONS.last().unwrap().0;
    store.conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", [known + 1]).unwrap();
    drop(store);
    let e = Store::open(&path).err().expect("a newer schema is refused").to_string();
    let newer = format!("schema version {}", known + 1);
    assert!(e.contains(&newer) && e.contains(&format!("knows ({known})")), "{e}");
    assert!(e.contains(&path.display().to_string()), "{e}");
}

#[test]
fn migrations_apply_once_and_reopen_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seal.duckdb");
    drop(Store::open(&path).unwrap());
    let store = Store::open(&path).unwrap();
    let n: i64 = store.conn.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    assert_eq!(n as usize, migrate::MIGRATIONS.len());
}

#[test]
fn replacing_a_source_drops_only_scores_of_changed_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    let v1 = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "b"), pair("s/test/2", 2, "c")];
    store.ingest_source("d", "hh-rlhf", &source("f", "h1", 3), &v1, &[], false).unwrap();
    store.add_model(&ModelRecord::imported("m"), false, false).unwrap();
    let run = store.start_run(&run_info()).unwrap();
    store.insert_scores("d", "m", run, &[score("s/test/0"), score("s/test/1"), score("s/test/2")]).unwrap();

    let err = store.ingest_source("d", "hh-rlhf", &source("f", "h2", 2), &v1[..2], &[], false).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    let v2 = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "CHANGED")];
    let outcome = store.ingest_source("d", "hh-rlhf", &source("f", "h2", 2), &v2, &[], true).unwrap();
    assert_eq!(
        outcome,
        IngestOutcome::Replaced { scores_invalidated: 2, labels_invalidated: 0, variant_pairs_removed: 0 }
    );
    let left: Vec<String> = store.scores("d", "m").unwrap().into_iter().map(|s| s.0).collect();
    assert_eq!(left, ["s/test/0"]);
    assert_eq!(store.count_pairs("d").unwrap(), 2);
}

#[test]
fn replacing_a_source_removes_the_rewrites_of_changed_pairs_from_its_variants() {
    use crate::domain::{Sides, VariantKind};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    let v1 = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "b"), pair("s/test/2", 2, "c")];
    store.ingest_source("d", "hh-rlhf", &source("f", "h1", 3), &v1, &[], false).unwrap();
    // A variant of the three, scored, labelled and embedded; and a dataset that is none.
    let rewritten = [pair("s/test/0", 0, "A"), pair("s/test/1", 1, "B"), pair("s/test/2", 2, "C")];
    for name in ["d@p", "other"] {
        store.ingest_source(name, "hh-rlhf", &source("rewrite", "v1", 3), &rewritten, &[], false).unwrap();
    }
    store
        .record_variant(&crate::store::VariantRecord {
            dataset: "d@p".into(),
            base_dataset: "d".into(),
            name: "p".into(),
            kind: VariantKind::Perturbation,
            method: "typos".into(),
            sides: Sides::Both,
            prompt_version: None,
            params: None,
            n_pairs: 3,
            n_skipped: 0,
        })
        .unwrap();
    store.add_model(&ModelRecord::imported("m"), false, false).unwrap();
    let ids = ["s/test/0", "s/test/1", "s/test/2"];
    let records: Vec<_> = ids.iter().flat_map(|id| [label(id, "chosen"), label(id, "rejected")]).collect();
    for name in ["d@p", "other"] {
        let run = store.start_run(&run_info()).unwrap();
        store.insert_scores(name, "m", run, &ids.map(score)).unwrap();
        let set = LabelSetRecord {
            dataset: name.into(),
            name: "gpt".into(),
            labeler: None,
            prompt_version: None,
            source_uri: "labels.jsonl".into(),
            sha256: "l1".into(),
            n_texts: 6,
            n_off_list: 0,
            keys: crate::features::all_keys().iter().map(|k| (*k).to_owned()).collect(),
        };
        assert!(store.import_labels(&set, &records, false).unwrap());
        store.insert_similarity(name, "e", &ids.map(|id| (id.to_owned(), 0.9, 0.8))).unwrap();
    }

    // Pair 1 changes and pair 2 vanishes: the variant loses both, with all computed on them.
    let v2 = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "CHANGED")];
    let outcome = store.ingest_source("d", "hh-rlhf", &source("f", "h2", 2), &v2, &[], true).unwrap();
    assert_eq!(
        outcome,
        IngestOutcome::Replaced { scores_invalidated: 0, labels_invalidated: 0, variant_pairs_removed: 2 }
    );
    let held = |name: &str| -> (Vec<String>, Vec<String>, Vec<String>, u64) {
        let pairs = store.pairs_of(name).unwrap().into_iter().map(|p| p.pair_id).collect();
        let scored = store.scores(name, "m").unwrap().into_iter().map(|s| s.0).collect();
        let embedded = store.similarity_pairs(name, "e").unwrap().into_iter().map(|s| s.0).collect();
        (pairs, scored, embedded, store.label_sets(Some(name)).unwrap()[0].n_texts)
    };
    let kept = vec!["s/test/0".to_owned()];
    assert_eq!(held("d@p"), (kept.clone(), kept.clone(), kept, 2));
    assert_eq!(store.variants(Some("d")).unwrap()[0].n_pairs, 1);
    assert_eq!(store.label_sets(Some("d@p")).unwrap()[0].sha256, "");
    // A dataset that is not a variant of `d` keeps its pairs.
    let all: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(held("other"), (all.clone(), all.clone(), all, 6));
}

/// A label of one text with every taxonomy key.
fn label(id: &str, side: &str) -> crate::features::LabelRecord {
    let mut row = serde_json::Map::new();
    row.insert("pair_id".into(), id.into());
    row.insert("side".into(), side.into());
    for key in crate::features::all_keys() {
        let value = match crate::features::key_kind(key) {
            Some(crate::features::KeyKind::Bool) => serde_json::Value::Bool(true),
            Some(crate::features::KeyKind::Sentiment) => "positive".into(),
            _ => serde_json::Value::Array(Vec::new()),
        };
        row.insert(key.into(), value);
    }
    crate::features::parse_label_row(&row, &crate::features::all_keys()).unwrap()
}

#[test]
fn replacing_a_source_drops_the_labels_of_each_text_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    let v1 = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "b"), pair("s/test/2", 2, "c")];
    store.ingest_source("d", "hh-rlhf", &source("f", "h1", 3), &v1, &[], false).unwrap();
    let records: Vec<_> =
        v1.iter().flat_map(|p| [label(&p.pair_id, "chosen"), label(&p.pair_id, "rejected")]).collect();
    let set = LabelSetRecord {
        dataset: "d".into(),
        name: "gpt".into(),
        labeler: None,
        prompt_version: None,
        source_uri: "labels.jsonl".into(),
        sha256: "l1".into(),
        n_texts: records.len() as u64,
        n_off_list: 0,
        keys: crate::features::all_keys().iter().map(|k| (*k).to_owned()).collect(),
    };
    assert!(store.import_labels(&set, &records, false).unwrap());
    let labelled = |store: &Store| -> Vec<(String, String)> {
        let mut stmt =
            store.conn.prepare("SELECT pair_id, side FROM labels WHERE dataset = 'd' ORDER BY pair_id, side").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(labelled(&store).len(), 6);
    // Pair 1's chosen text changes, pair 2 vanishes, pair 0 stays as it was.
    let v2 = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "CHANGED")];
    let outcome = store.ingest_source("d", "hh-rlhf", &source("f", "h2", 2), &v2, &[], true).unwrap();
    assert_eq!(
        outcome,
        IngestOutcome::Replaced { scores_invalidated: 0, labels_invalidated: 3, variant_pairs_removed: 0 }
    );
    let left = labelled(&store);
    let want = [("s/test/0", "chosen"), ("s/test/0", "rejected"), ("s/test/1", "rejected")];
    assert_eq!(left, want.map(|(i, s)| (i.to_owned(), s.to_owned())));
    // The set says how many texts it holds now, and the same answers for the changed text
    // store it whole again (with --replace: the set changed), not "unchanged".
    let sets = store.label_sets(Some("d")).unwrap();
    assert_eq!((sets[0].n_texts, sets[0].sha256.as_str()), (3, ""));
    let relabelled: Vec<_> =
        [("s/test/0", "chosen"), ("s/test/0", "rejected"), ("s/test/1", "chosen"), ("s/test/1", "rejected")]
            .iter()
            .map(|(id, side)| label(id, side))
            .collect();
    let again = LabelSetRecord { n_texts: 4, ..set.clone() };
    assert!(store.import_labels(&again, &relabelled, false).is_err(), "other content than the set holds");
    assert!(store.import_labels(&again, &relabelled, true).unwrap(), "stored");
    assert_eq!(labelled(&store).len(), 4);
    // A second source of the dataset replaced as it was touches no set.
    store.ingest_source("d", "hh-rlhf", &source("f", "h3", 2), &v2, &[], true).unwrap();
    assert_eq!(store.label_sets(Some("d")).unwrap()[0].sha256, "l1");
}

#[test]
fn a_source_larger_than_a_row_group_is_stored_whole() {
    // DuckDB writes row groups of 122,880 rows; a source beyond that must still land whole,
    // and replacing it must too.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    let n = 130_000;
    let many: Vec<NewPair> = (0..n).map(|i| pair(&format!("s/train/{i}"), i, "x")).collect();
    store.ingest_source("d", "hh-rlhf", &source("big", "h1", n), &many, &[], false).unwrap();
    assert_eq!(store.count_pairs("d").unwrap(), n);
    let outcome = store.ingest_source("d", "hh-rlhf", &source("big", "h2", n), &many, &[], true).unwrap();
    assert_eq!(
        outcome,
        IngestOutcome::Replaced { scores_invalidated: 0, labels_invalidated: 0, variant_pairs_removed: 0 }
    );
    assert_eq!(store.count_pairs("d").unwrap(), n);
    drop(store);
    let store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    assert_eq!(store.count_pairs("d").unwrap(), n, "still there after reopening");
}

#[test]
fn ids_from_two_sources_may_not_clash() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    store.ingest_source("d", "hh-rlhf", &source("a", "h", 1), &[pair("s/test/0", 0, "a")], &[], false).unwrap();
    let err =
        store.ingest_source("d", "hh-rlhf", &source("b", "h", 1), &[pair("s/test/0", 0, "a")], &[], false).unwrap_err();
    assert!(err.to_string().contains("already in dataset `d` from a"), "{err}");
    assert_eq!(store.count_pairs("d").unwrap(), 1);
}

#[test]
fn a_pair_cannot_be_scored_twice_by_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    store.ingest_source("d", "hh-rlhf", &source("a", "h", 1), &[pair("s/test/0", 0, "a")], &[], false).unwrap();
    let run = store.start_run(&run_info()).unwrap();
    store.insert_scores("d", "m", run, &[score("s/test/0")]).unwrap();
    assert!(store.insert_scores("d", "m", run, &[score("s/test/0")]).is_err());
    assert_eq!(store.score_row_counts("d", "m").unwrap(), (1, 1));
    assert_eq!(store.count_unscored("d", "m", None).unwrap(), 0);
}

fn run_info() -> RunInfo {
    RunInfo {
        dataset: "d".into(),
        model: "m".into(),
        model_sha256: None,
        provider: "test".into(),
        truncation: Truncation::None,
        max_length: None,
        batch_tokens: None,
        runtime_version: None,
        device: None,
        input_format: None,
        tokenizer_sha256: None,
    }
}

#[test]
fn a_study_version_changes_with_what_the_study_reads_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    let pairs = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "b")];
    store.ingest_source("d", "hh-rlhf", &source("f", "h1", 2), &pairs, &[], false).unwrap();
    for m in ["pre", "post", "other"] {
        store.add_model(&ModelRecord::imported(m), false, false).unwrap();
    }
    let study = |s: &Store| s.study_version("d", &["pre", "post"]).unwrap();
    let before = study(&store);
    // Another model's scores, another dataset's pairs: the study is as it was.
    let run = store.start_run(&RunInfo { model: "other".into(), ..run_info() }).unwrap();
    store.insert_scores("d", "other", run, &[score("s/test/0")]).unwrap();
    store.finish_run(run).unwrap();
    store.ingest_source("e", "hh-rlhf", &source("g", "h2", 2), &pairs, &[], false).unwrap();
    assert_eq!(study(&store), before);
    // One of its models' scores: changed.
    let run = store.start_run(&RunInfo { model: "post".into(), ..run_info() }).unwrap();
    let after_start = study(&store);
    assert_ne!(after_start, before);
    store.insert_scores("d", "post", run, &[score("s/test/1")]).unwrap();
    assert_ne!(study(&store), after_start);
    // Its dataset's pairs (or a variant of it): changed.
    let now = study(&store);
    store.ingest_source("d@typos", "hh-rlhf", &source("v", "h3", 2), &pairs, &[], false).unwrap();
    assert_ne!(study(&store), now);
}

#[test]
fn a_replacement_is_judged_by_each_runs_own_pipeline_and_older_runs_by_the_registration_they_ran_under() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    let pairs = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "b")];
    store.ingest_source("d", "hh-rlhf", &source("f", "h1", 2), &pairs, &[], false).unwrap();
    let pair_format = ModelRecord {
        kind: ModelKind::Onnx,
        onnx_sha256: Some("g1".into()),
        tokenizer_sha256: Some("t1".into()),
        ..ModelRecord::imported("m")
    };
    store.add_model(&pair_format, false, false).unwrap();
    // A run recorded before runs kept their input pipeline (as a store migrated from an older
    // version holds them), and one that kept it.
    let old = store.start_run(&RunInfo { model_sha256: Some("g1".into()), ..run_info() }).unwrap();
    store.insert_scores("d", "m", old, &[score("s/test/0")]).unwrap();
    store.finish_run(old).unwrap();
    let kept = RunInfo {
        model_sha256: Some("g1".into()),
        input_format: Some(InputFormat::Pair),
        tokenizer_sha256: Some("t1".into()),
        ..run_info()
    };
    let new = store.start_run(&kept).unwrap();
    store.insert_scores("d", "m", new, &[score("s/test/1")]).unwrap();
    store.finish_run(new).unwrap();
    assert_eq!(store.stale_scores(&pair_format).unwrap(), vec![]);
    // Another tokenizer: both runs' scores would not be computed alike (the old run's through
    // the registration it ran under).
    let retokenized = ModelRecord { tokenizer_sha256: Some("t2".into()), ..pair_format.clone() };
    let stale = store.stale_scores(&retokenized).unwrap();
    assert_eq!((stale.len(), stale[0].count), (1, 2), "{stale:?}");
    assert_eq!(stale[0].differs, vec!["tokenizer sha256 t1 where this one is t2".to_owned()]);
    assert!(matches!(store.add_model(&retokenized, true, false), Err(StoreError::Conflict(_))));
    assert_eq!(store.model("m").unwrap().tokenizer_sha256.as_deref(), Some("t1"), "nothing changed");
    // A run still going when the model is replaced (a killed `seal score`, a preempted task)
    // keeps its row, but no longer speaks for the scores there are.
    let unended = store.start_run(&RunInfo { provider: "gone".into(), ..kept.clone() }).unwrap();
    store.ingest_source("d", "hh-rlhf", &source("g", "h2", 1), &[pair("s/test/2", 0, "c")], &[], false).unwrap();
    store.insert_scores("d", "m", unended, &[score("s/test/2")]).unwrap();
    assert_eq!(store.run_providers("d", "m").unwrap(), vec!["gone".to_owned(), "test".to_owned()]);
    // Dropped on request: the scores and the runs left without any go, in one transaction.
    assert_eq!(store.add_model(&retokenized, true, true).unwrap(), 3);
    assert_eq!(store.run_providers("d", "m").unwrap(), Vec::<String>::new());
    assert_eq!(store.score_row_counts("d", "m").unwrap(), (0, 0));
    assert_eq!(store.run_model_sha256s("m").unwrap(), Vec::<String>::new());
    assert_eq!(store.model("m").unwrap().tokenizer_sha256.as_deref(), Some("t2"));
    // Scores imported from a file that did not say how they were computed are not taken for
    // any registration's.
    let imported = ModelRecord::imported("x");
    store.add_model(&imported, false, false).unwrap();
    let run = store.start_run(&RunInfo { model: "x".into(), ..run_info() }).unwrap();
    store.insert_scores("d", "x", run, &[score("s/test/0")]).unwrap();
    let onnx = ModelRecord { name: "x".into(), ..pair_format.clone() };
    let stale = store.stale_scores(&onnx).unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(stale[0].differs.contains(&"input format unknown where this one is pair".to_owned()), "{stale:?}");
}

#[test]
fn a_parquet_file_larger_than_the_cap_uncompressed_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("seal.duckdb")).unwrap();
    // About 24 MB of text that compresses to a few kB.
    let bomb = dir.path().join("pairs.parquet");
    store
        .conn
        .execute_batch(&format!(
            "COPY (SELECT i AS id, repeat('a', 3000) AS chosen, repeat('b', 3000) AS rejected FROM range(4000) t(i))
             TO {} (FORMAT parquet, COMPRESSION zstd)",
            sql_literal(&bomb.to_string_lossy())
        ))
        .unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20, "small on disk");
    // A name with glob characters reads that file, not those the glob would match.
    for (name, other) in
        [("pairs[1].parquet", "pairs1.parquet"), ("p?.parquet", "pq.parquet"), ("p*.parquet", "px.parquet")]
    {
        for (file, id) in [(name, 1), (other, 2)] {
            store
                .conn
                .execute_batch(&format!(
                    "COPY (SELECT {id} AS id) TO {} (FORMAT parquet)",
                    sql_literal(&dir.path().join(file).to_string_lossy())
                ))
                .unwrap();
        }
        for cap in [None, Some(1_000_000)] {
            let rows = store.parquet_rows_as_json(&dir.path().join(name), cap).unwrap();
            assert_eq!(rows, ["{\"id\":1}"], "{name}");
        }
    }
    // The cap in the settings' megabytes (10^6 bytes), named as set.
    let err = store.parquet_rows_as_json(&bomb, Some(8_000_000)).unwrap_err().to_string();
    assert!(err.contains("pairs.parquet: holds more than the 8 MB cap once decompressed"), "{err}");
    assert_eq!(store.parquet_rows_as_json(&bomb, Some(64_000_000)).unwrap().len(), 4000);
    assert_eq!(store.parquet_rows_as_json(&bomb, None).unwrap().len(), 4000);
}

#[test]
fn an_export_for_readers_names_each_source_file_by_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
    for (uri, id) in
        [("/srv/data/a.jsonl", "s/test/0"), ("upload:3f/b.jsonl", "s/test/1"), ("C:\\d\\c.csv", "s/test/2")]
    {
        store.ingest_source("d", "hh-rlhf", &source(uri, uri, 1), &[pair(id, 0, "a")], &[], false).unwrap();
    }
    let read = |full: bool| -> Vec<String> {
        let out = dir.path().join(format!("pairs-{full}.jsonl"));
        assert_eq!(store.export_pairs("d", &out, full).unwrap(), 3);
        let mut uris: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["source_uri"].as_str().unwrap().to_owned())
            .collect();
        uris.sort();
        uris
    };
    assert_eq!(read(true), ["/srv/data/a.jsonl", "C:\\d\\c.csv", "upload:3f/b.jsonl"]);
    assert_eq!(read(false), ["a.jsonl", "c.csv", "upload:3f/b.jsonl"]);
}
