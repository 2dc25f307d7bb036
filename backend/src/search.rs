//! Full-text search over a dataset's transcripts: one tantivy index per dataset, kept on disk
//! beside the store and rebuilt when the dataset's sources change.
//!
//! A pair is one document: the chosen transcript and the rejected response (and the rejected
//! context when it differs), tokenized into lower-cased words. Queries use tantivy's syntax:
//! words (all must occur), `"quoted phrases"`, `OR`, `-excluded`, parentheses.
//!
//! The only module that names tantivy.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};
use tantivy::collector::DocSetCollector;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, Schema, FAST, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

use crate::store::Store;

/// Bumped whenever what goes into a document or how it is tokenized changes.
const FORMAT: u32 = 1;
/// The indexer's memory budget (split between its threads).
const WRITER_BUDGET: usize = 200_000_000;

/// A query the index cannot parse (a 400 for the API).
#[derive(Debug, thiserror::Error)]
#[error("`q`: {0}")]
pub struct QueryError(pub String);

/// A dataset's search index: maps a query to the positions (dataset order) of matching pairs.
pub struct TextIndex {
    /// What the index was built from; a different fingerprint means a rebuild.
    pub fingerprint: String,
    reader: IndexReader,
    parser: QueryParser,
    pairs: usize,
}

struct Fields {
    text: Field,
    row: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = b.add_text_field("text", TEXT);
    let row = b.add_u64_field("row", FAST);
    (b.build(), Fields { text, row })
}

/// Identifies a dataset's content: its sources (URI, SHA-256, pair count) and the index format.
pub fn fingerprint(store: &Store, dataset: &str) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("seal-search-v{FORMAT}\0{dataset}\0").as_bytes());
    for (uri, sha, n) in store.source_digests(dataset)? {
        h.update(format!("{uri}\0{sha}\0{n}\0").as_bytes());
    }
    Ok(hex::encode(&h.finalize()[..12]))
}

fn dataset_dir(root: &Path, dataset: &str) -> PathBuf {
    root.join(hex::encode(&Sha256::digest(dataset.as_bytes())[..8]))
}

impl TextIndex {
    /// Opens the index of `dataset` under `root` if it was built from the dataset as it is now,
    /// else builds it (into a temporary folder renamed into place, so a killed build leaves
    /// nothing that looks finished) and removes older builds. Without `root`, builds in memory.
    pub fn open_or_build(store: &Store, dataset: &str, root: Option<&Path>) -> Result<TextIndex> {
        let fingerprint = fingerprint(store, dataset)?;
        let pairs = store.count_pairs(dataset)? as usize;
        let Some(root) = root else {
            let (schema, fields) = schema();
            let index = Index::create_in_ram(schema);
            fill(store, dataset, &index, &fields)?;
            return TextIndex::over(index, fields, fingerprint, pairs);
        };
        let dir = dataset_dir(root, dataset);
        let done = dir.join(&fingerprint);
        if done.join("meta.json").is_file() {
            match Index::open_in_dir(&done).map_err(anyhow::Error::from).and_then(|index| {
                let fields = Fields { text: index.schema().get_field("text")?, row: index.schema().get_field("row")? };
                TextIndex::over(index, fields, fingerprint.clone(), pairs)
            }) {
                Ok(found) if found.documents() == pairs as u64 => return Ok(found),
                Ok(_) | Err(_) => {
                    tracing::warn!("search index {} is unreadable or incomplete; rebuilding it", done.display());
                    std::fs::remove_dir_all(&done).with_context(|| format!("remove {}", done.display()))?;
                }
            }
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let building = dir.join(format!(".building-{fingerprint}-{}", std::process::id()));
        if building.exists() {
            std::fs::remove_dir_all(&building).with_context(|| format!("remove {}", building.display()))?;
        }
        std::fs::create_dir_all(&building).with_context(|| format!("create {}", building.display()))?;
        {
            let (schema, fields) = schema();
            let index = Index::create_in_dir(&building, schema)
                .with_context(|| format!("create index in {}", building.display()))?;
            fill(store, dataset, &index, &fields)?;
        }
        if done.exists() {
            std::fs::remove_dir_all(&done).with_context(|| format!("remove {}", done.display()))?;
        }
        std::fs::rename(&building, &done)
            .with_context(|| format!("move {} to {}", building.display(), done.display()))?;
        // Older builds (and leftovers of killed ones) of this dataset.
        for old in std::fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))? {
            let old = old?.path();
            if old != done {
                let _ = std::fs::remove_dir_all(&old);
            }
        }
        let index = Index::open_in_dir(&done).with_context(|| format!("open index {}", done.display()))?;
        let (_, fields) = schema();
        TextIndex::over(index, fields, fingerprint, pairs)
    }

    fn over(index: Index, fields: Fields, fingerprint: String, pairs: usize) -> Result<TextIndex> {
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let mut parser = QueryParser::for_index(&index, vec![fields.text]);
        parser.set_conjunction_by_default();
        let _ = fields.row;
        Ok(TextIndex { fingerprint, reader, parser, pairs })
    }

    /// Documents in the index.
    pub fn documents(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Positions (in dataset order) of the pairs that match `query`, ascending.
    pub fn search(&self, query: &str) -> Result<Vec<usize>> {
        // One field only, so no `field:` syntax: a pasted "Human: …" searches its words.
        let parsed =
            self.parser.parse_query(&query.replace(':', " ")).map_err(|e| anyhow!(QueryError(e.to_string())))?;
        let searcher = self.reader.searcher();
        let hits = searcher.search(&parsed, &DocSetCollector)?;
        let columns = searcher
            .segment_readers()
            .iter()
            .map(|s| s.fast_fields().u64("row"))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let mut rows: Vec<usize> = hits
            .iter()
            .filter_map(|a| columns[a.segment_ord as usize].first(a.doc_id))
            .map(|r| r as usize)
            .filter(|&r| r < self.pairs)
            .collect();
        rows.sort_unstable();
        Ok(rows)
    }
}

/// Adds one document per pair, in dataset order, and commits.
fn fill(store: &Store, dataset: &str, index: &Index, fields: &Fields) -> Result<()> {
    let mut writer: IndexWriter<TantivyDocument> = index.writer(WRITER_BUDGET).context("start the search indexer")?;
    let mut row = 0u64;
    store.for_each_transcript(dataset, |t| -> Result<()> {
        let mut d = TantivyDocument::default();
        d.add_u64(fields.row, row);
        d.add_text(fields.text, t.chosen_context);
        d.add_text(fields.text, t.chosen_response);
        d.add_text(fields.text, t.rejected_response);
        if t.rejected_context != t.chosen_context {
            d.add_text(fields.text, t.rejected_context);
        }
        writer.add_document(d).map_err(|e| anyhow!("index pair {row}: {e}"))?;
        row += 1;
        Ok(())
    })?;
    writer.commit().context("commit the search index")?;
    writer.wait_merging_threads().context("merge the search index")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NewPair, Side};
    use crate::store::SourceRecord;

    fn source(uri: &str, pairs: &[(&str, &str, &str)], first: u64) -> (SourceRecord, Vec<NewPair>) {
        let rows: Vec<NewPair> = pairs
            .iter()
            .enumerate()
            .map(|(i, (context, chosen, rejected))| NewPair {
                pair_id: format!("s/test/{}", first + i as u64),
                subset: "s".into(),
                split: "test".into(),
                line: i as u64,
                chosen: Side { context: context.to_string(), response: chosen.to_string() },
                rejected: Side { context: context.to_string(), response: rejected.to_string() },
            })
            .collect();
        let n = rows.len() as u64;
        let record = SourceRecord {
            uri: uri.into(),
            sha256: format!("sha-of-{uri}"),
            subset: "s".into(),
            split: "test".into(),
            n_lines: n,
            n_pairs: n,
            n_rejected: 0,
        };
        (record, rows)
    }

    fn store_with(pairs: &[(&str, &str, &str)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.duckdb")).unwrap();
        let (record, rows) = source("a", pairs, 0);
        store.ingest_source("d", "hh-rlhf", &record, &rows, &[], false).unwrap();
        (dir, store)
    }

    #[test]
    fn finds_words_phrases_and_exclusions_in_dataset_order() {
        let (dir, store) = store_with(&[
            ("\n\nHuman: How do I sharpen a knife?", "\n\nAssistant: Use a whetstone.", "\n\nAssistant: No."),
            ("\n\nHuman: Tell me a joke.", "\n\nAssistant: Knock knock.", "\n\nAssistant: A knife walks into a bar."),
            ("\n\nHuman: Hi", "\n\nAssistant: Hello there!", "\n\nAssistant: Go away."),
        ]);
        let root = dir.path().join("search");
        let idx = TextIndex::open_or_build(&store, "d", Some(&root)).unwrap();
        assert_eq!(idx.documents(), 3);
        assert_eq!(idx.search("KNIFE").unwrap(), vec![0, 1], "case-insensitive, both responses searched");
        assert_eq!(idx.search("knife -joke").unwrap(), vec![0]);
        assert_eq!(idx.search("\"hello there\"").unwrap(), vec![2]);
        assert_eq!(idx.search("\"there hello\"").unwrap(), Vec::<usize>::new());
        assert_eq!(idx.search("whetstone OR bar").unwrap(), vec![0, 1]);
        assert_eq!(idx.search("knife whetstone").unwrap(), vec![0], "all words must occur");
        assert_eq!(idx.search("Human: how do I sharpen").unwrap(), vec![0], "a pasted speaker tag is not a field");
        let err = idx.search("-joke").err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.starts_with("`q`:")), "{err:?}");

        // Reopened from disk without rebuilding: the folder is the same, no temporary left.
        let built: Vec<_> = std::fs::read_dir(dataset_dir(&root, "d")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(built.len(), 1);
        let modified = std::fs::metadata(built[0].join("meta.json")).unwrap().modified().unwrap();
        let again = TextIndex::open_or_build(&store, "d", Some(&root)).unwrap();
        assert_eq!(again.search("knock").unwrap(), vec![1]);
        assert_eq!(std::fs::metadata(built[0].join("meta.json")).unwrap().modified().unwrap(), modified);

        // In memory, the same answers.
        let ram = TextIndex::open_or_build(&store, "d", None).unwrap();
        assert_eq!(ram.search("knife").unwrap(), vec![0, 1]);
    }

    #[test]
    fn a_changed_dataset_gets_a_new_index_and_the_old_one_goes() {
        let (dir, mut store) = store_with(&[("\n\nHuman: a", "\n\nAssistant: apple", "\n\nAssistant: pear")]);
        let root = dir.path().join("search");
        let first = TextIndex::open_or_build(&store, "d", Some(&root)).unwrap();
        assert_eq!(first.search("banana").unwrap(), Vec::<usize>::new());
        let (record, rows) = source("b", &[("\n\nHuman: b", "\n\nAssistant: banana", "\n\nAssistant: plum")], 7);
        store.ingest_source("d", "hh-rlhf", &record, &rows, &[], false).unwrap();
        let second = TextIndex::open_or_build(&store, "d", Some(&root)).unwrap();
        assert_ne!(first.fingerprint, second.fingerprint);
        assert_eq!(second.documents(), 2);
        assert_eq!(second.search("banana").unwrap().len(), 1);
        let left: Vec<_> = std::fs::read_dir(dataset_dir(&root, "d")).unwrap().collect();
        assert_eq!(left.len(), 1, "the stale build is removed");
    }

    #[test]
    fn a_half_built_index_is_rebuilt() {
        let (dir, store) = store_with(&[("\n\nHuman: a", "\n\nAssistant: apple", "\n\nAssistant: pear")]);
        let root = dir.path().join("search");
        let fp = fingerprint(&store, "d").unwrap();
        // What a killed build leaves: a temporary folder, and a final folder without meta.json.
        let d = dataset_dir(&root, "d");
        std::fs::create_dir_all(d.join(format!(".building-{fp}-1"))).unwrap();
        std::fs::create_dir_all(d.join(&fp)).unwrap();
        let idx = TextIndex::open_or_build(&store, "d", Some(&root)).unwrap();
        assert_eq!(idx.search("apple").unwrap(), vec![0]);
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
