//! Datasets, sources, pairs and rejected lines: the tables `datasets`, `sources`, `pairs` and
//! `rejected_lines` (ingest, export, Parquet reads, pair lookups and counts).

use std::path::Path;

use duckdb::{params, OptionalExt};

use super::{sql_literal, u64_at, Context, FileFormat, Result, Store, StoreError};
use crate::domain::{NewPair, PairTexts, RejectedLine, Side};

/// A source as recorded after ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub uri: String,
    pub sha256: String,
    pub subset: String,
    pub split: String,
    pub n_lines: u64,
    pub n_pairs: u64,
    pub n_rejected: u64,
}

/// What happened to a source on ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Added,
    /// Re-ingested: the scores of pairs whose texts changed or that vanished were deleted, and
    /// the labels of each text that changed or vanished, in every label set of the dataset; so
    /// were those pairs in the dataset's variants (rewrites of texts it no longer holds), with
    /// their scores, labels and similarities.
    Replaced {
        scores_invalidated: u64,
        labels_invalidated: u64,
        variant_pairs_removed: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSummary {
    pub name: String,
    pub format: String,
    pub n_pairs: u64,
    pub n_rejected: u64,
    pub sources: Vec<SourceRecord>,
}

impl Store {
    pub fn source_sha256(&self, dataset: &str, uri: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT sha256 FROM sources WHERE dataset = ? AND uri = ?", params![dataset, uri], |r| r.get(0))
            .optional()
            .ctx("read sources")
    }

    /// A source's sha256, subset and split as stored.
    pub fn source_identity(&self, dataset: &str, uri: &str) -> Result<Option<(String, String, String)>> {
        self.conn
            .query_row(
                "SELECT sha256, subset, split FROM sources WHERE dataset = ? AND uri = ?",
                params![dataset, uri],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .ctx("read sources")
    }

    pub fn dataset_format(&self, dataset: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT format FROM datasets WHERE name = ?", params![dataset], |r| r.get(0))
            .optional()
            .ctx("read datasets")
    }

    /// Stores one parsed source in a single transaction. A source already present (same URI) is
    /// replaced only when `replace` is set: its pairs are swapped and the scores of pairs whose
    /// texts changed or vanished are deleted, so no score outlives the text it was computed on.
    pub fn ingest_source(
        &mut self,
        dataset: &str,
        format: &str,
        source: &SourceRecord,
        pairs: &[NewPair],
        rejected: &[RejectedLine],
        replace: bool,
    ) -> Result<IngestOutcome> {
        // Checks run before anything is written. (Pairs are appended straight into `pairs`:
        // a staging table written and dropped in the same transaction lost rows once a source
        // passed DuckDB's row-group size.)
        let mut seen = std::collections::HashSet::with_capacity(pairs.len());
        for p in pairs {
            if !seen.insert(p.pair_id.as_str()) {
                return Err(StoreError::Conflict(format!(
                    "{}: pair id `{}` occurs twice in this source",
                    source.uri, p.pair_id
                )));
            }
        }
        {
            let mut stmt = self
                .conn
                .prepare("SELECT pair_id, source_uri FROM pairs WHERE dataset = ? AND source_uri <> ?")
                .ctx("check id clash")?;
            let mut rows = stmt.query(params![dataset, source.uri]).ctx("check id clash")?;
            while let Some(row) = rows.next().ctx("check id clash")? {
                let id: String = row.get(0).ctx("check id clash")?;
                if seen.contains(id.as_str()) {
                    let other: String = row.get(1).ctx("check id clash")?;
                    return Err(StoreError::Conflict(format!(
                        "{}: pair id `{id}` is already in dataset `{dataset}` from {other}; ingest it into another dataset or pass --subset",
                        source.uri
                    )));
                }
            }
        }
        let stored = self.source_identity(dataset, &source.uri)?;
        let existed = stored.is_some();
        if let (Some((sha, subset, split)), false) = (&stored, replace) {
            let what = if *sha == source.sha256 {
                format!("as subset `{subset}`, split `{split}`")
            } else {
                "with other content".to_owned()
            };
            return Err(StoreError::Conflict(format!(
                "{}: already ingested into `{dataset}` {what}; pass --replace to re-ingest it",
                source.uri
            )));
        }
        // Pairs of the old version whose text changed or that vanished lose their scores, and
        // each changed or vanished text its labels (a side left as it was keeps them).
        let mut stale: Vec<String> = Vec::new();
        let mut stale_sides: Vec<(String, &'static str)> = Vec::new();
        if existed {
            let new: std::collections::HashMap<&str, &NewPair> =
                pairs.iter().map(|p| (p.pair_id.as_str(), p)).collect();
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT pair_id, chosen_context, chosen_response, rejected_context, rejected_response
                     FROM pairs WHERE dataset = ? AND source_uri = ?",
                )
                .ctx("read old pairs")?;
            let old = stmt
                .query_map(params![dataset, source.uri], pair_texts_row)
                .ctx("read old pairs")?
                .collect::<std::result::Result<Vec<_>, _>>()
                .ctx("read old pairs")?;
            for o in old {
                let n = new.get(o.pair_id.as_str());
                let chosen_same = n.is_some_and(|n| n.chosen == o.chosen);
                let rejected_same = n.is_some_and(|n| n.rejected == o.rejected);
                if !chosen_same {
                    stale_sides.push((o.pair_id.clone(), "chosen"));
                }
                if !rejected_same {
                    stale_sides.push((o.pair_id.clone(), "rejected"));
                }
                if !(chosen_same && rejected_same) {
                    stale.push(o.pair_id);
                }
            }
        }
        let tx = self.conn.transaction().ctx("begin")?;
        tx.execute(
            "INSERT INTO datasets (name, format) VALUES (?, ?) ON CONFLICT DO NOTHING",
            params![dataset, format],
        )
        .ctx("insert dataset")?;
        let (mut invalidated, mut labels_invalidated, mut variant_pairs_removed) = (0, 0, 0);
        if existed {
            // The stale pairs and sides in temporary tables, deleted from each table at once.
            tx.execute_batch(
                "CREATE OR REPLACE TEMP TABLE stale_pairs (pair_id TEXT); \
                 CREATE OR REPLACE TEMP TABLE stale_sides (pair_id TEXT, side TEXT);",
            )
            .ctx("invalidate")?;
            {
                let mut app = tx.appender("stale_pairs").ctx("appender")?;
                for id in &stale {
                    app.append_row(params![id]).ctx("invalidate")?;
                }
                app.flush().ctx("invalidate")?;
            }
            {
                let mut app = tx.appender("stale_sides").ctx("appender")?;
                for (id, side) in &stale_sides {
                    app.append_row(params![id, side]).ctx("invalidate")?;
                }
                app.flush().ctx("invalidate")?;
            }
            invalidated = tx
                .execute(
                    "DELETE FROM scores WHERE dataset = ? AND pair_id IN (SELECT pair_id FROM stale_pairs)",
                    params![dataset],
                )
                .ctx("invalidate scores")? as u64;
            let stale_side = |table: &str| {
                format!(
                    "DELETE FROM {table} WHERE dataset = ? AND EXISTS (SELECT 1 FROM stale_sides s \
                     WHERE s.pair_id = {table}.pair_id AND s.side = {table}.side)"
                )
            };
            labels_invalidated = tx.execute(&stale_side("labels"), params![dataset]).ctx("invalidate labels")? as u64;
            tx.execute(&stale_side("label_failures"), params![dataset]).ctx("invalidate labels")?;
            // The dataset's variants rewrote the old texts: a rewrite does not outlive its
            // original, nor does what was computed on it.
            const VARIANTS: &str = "SELECT dataset FROM variants WHERE base_dataset = ?";
            for table in ["scores", "labels", "label_failures", "variant_similarity"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE dataset IN ({VARIANTS}) \
                         AND pair_id IN (SELECT pair_id FROM stale_pairs)"
                    ),
                    params![dataset],
                )
                .ctx("invalidate variants")?;
            }
            variant_pairs_removed = tx
                .execute(
                    &format!(
                        "DELETE FROM pairs WHERE dataset IN ({VARIANTS}) AND pair_id IN (SELECT pair_id FROM stale_pairs)"
                    ),
                    params![dataset],
                )
                .ctx("invalidate variants")? as u64;
            if labels_invalidated > 0 || variant_pairs_removed > 0 {
                // The label sets of the dataset and its variants that now hold fewer texts than
                // they were stored with: their counts say so, and their content hash no longer
                // matches any run, so relabelling (with --replace) stores the set again even
                // when the answers come out the same.
                tx.execute(
                    &format!(
                        "UPDATE label_sets SET sha256 = '', n_texts = held.n FROM (SELECT s.dataset, s.name, \
                         (SELECT count(*) FROM labels l WHERE l.dataset = s.dataset AND l.label_set = s.name) AS n \
                         FROM label_sets s WHERE s.dataset = ? OR s.dataset IN ({VARIANTS})) held \
                         WHERE label_sets.dataset = held.dataset AND label_sets.name = held.name \
                         AND label_sets.n_texts <> held.n"
                    ),
                    params![dataset, dataset],
                )
                .ctx("invalidate labels")?;
            }
            if variant_pairs_removed > 0 {
                // The variants' counts say what they hold now.
                tx.execute(
                    "UPDATE variants SET n_pairs = held.n FROM (SELECT v.dataset, \
                     (SELECT count(*) FROM pairs p WHERE p.dataset = v.dataset) AS n \
                     FROM variants v WHERE v.base_dataset = ?) held WHERE variants.dataset = held.dataset",
                    params![dataset],
                )
                .ctx("invalidate variants")?;
                tx.execute(
                    &format!(
                        "UPDATE sources SET n_pairs = held.n FROM (SELECT s.dataset, s.uri, \
                         (SELECT count(*) FROM pairs p WHERE p.dataset = s.dataset AND p.source_uri = s.uri) AS n \
                         FROM sources s WHERE s.dataset IN ({VARIANTS})) held \
                         WHERE sources.dataset = held.dataset AND sources.uri = held.uri"
                    ),
                    params![dataset],
                )
                .ctx("invalidate variants")?;
            }
            tx.execute_batch("DROP TABLE stale_pairs; DROP TABLE stale_sides;").ctx("invalidate")?;
            tx.execute("DELETE FROM pairs WHERE dataset = ? AND source_uri = ?", params![dataset, source.uri])
                .ctx("delete old pairs")?;
            tx.execute("DELETE FROM rejected_lines WHERE dataset = ? AND source_uri = ?", params![dataset, source.uri])
                .ctx("delete old rejects")?;
            tx.execute("DELETE FROM sources WHERE dataset = ? AND uri = ?", params![dataset, source.uri])
                .ctx("delete old source")?;
        }
        {
            let mut app = tx.appender("pairs").ctx("appender")?;
            for p in pairs {
                app.append_row(params![
                    dataset,
                    p.pair_id,
                    p.subset,
                    p.split,
                    source.uri,
                    p.line as i64,
                    p.chosen.context,
                    p.chosen.response,
                    p.rejected.context,
                    p.rejected.response
                ])
                .ctx("append pair")?;
            }
            app.flush().ctx("flush pairs")?;
        }
        {
            let mut app = tx.appender("rejected_lines").ctx("appender")?;
            for r in rejected {
                app.append_row(params![dataset, source.uri, r.line as i64, r.reason]).ctx("append reject")?;
            }
            app.flush().ctx("flush rejects")?;
        }
        tx.execute(
            "INSERT INTO sources (dataset, uri, sha256, subset, split, n_lines, n_pairs, n_rejected)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                dataset,
                source.uri,
                source.sha256,
                source.subset,
                source.split,
                source.n_lines as i64,
                source.n_pairs as i64,
                source.n_rejected as i64
            ],
        )
        .ctx("insert source")?;
        tx.commit().ctx("commit")?;
        self.changed_data(dataset);
        Ok(if existed {
            IngestOutcome::Replaced { scores_invalidated: invalidated, labels_invalidated, variant_pairs_removed }
        } else {
            IngestOutcome::Added
        })
    }

    pub fn datasets(&self) -> Result<Vec<DatasetSummary>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT d.name, d.format,
                        (SELECT count(*) FROM pairs p WHERE p.dataset = d.name),
                        (SELECT count(*) FROM rejected_lines r WHERE r.dataset = d.name)
                 FROM datasets d ORDER BY d.name",
            )
            .ctx("list datasets")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DatasetSummary {
                    name: r.get(0)?,
                    format: r.get(1)?,
                    n_pairs: u64_at(r, 2)?,
                    n_rejected: u64_at(r, 3)?,
                    sources: Vec::new(),
                })
            })
            .ctx("list datasets")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list datasets")?;
        let mut out = Vec::with_capacity(rows.len());
        for mut d in rows {
            d.sources = self.sources(&d.name)?;
            out.push(d);
        }
        Ok(out)
    }

    pub(super) fn sources(&self, dataset: &str) -> Result<Vec<SourceRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT uri, sha256, subset, split, n_lines, n_pairs, n_rejected FROM sources
                 WHERE dataset = ? ORDER BY ingested_at, uri",
            )
            .ctx("list sources")?;
        let rows = stmt
            .query_map(params![dataset], |r| {
                Ok(SourceRecord {
                    uri: r.get(0)?,
                    sha256: r.get(1)?,
                    subset: r.get(2)?,
                    split: r.get(3)?,
                    n_lines: u64_at(r, 4)?,
                    n_pairs: u64_at(r, 5)?,
                    n_rejected: u64_at(r, 6)?,
                })
            })
            .ctx("list sources")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list sources")?;
        Ok(rows)
    }

    pub fn rejected_lines(&self, dataset: &str) -> Result<Vec<(String, RejectedLine)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT source_uri, line, reason FROM rejected_lines WHERE dataset = ? ORDER BY source_uri, line")
            .ctx("list rejected lines")?;
        let rows = stmt
            .query_map(params![dataset], |r| Ok((r.get(0)?, RejectedLine { line: u64_at(r, 1)?, reason: r.get(2)? })))
            .ctx("list rejected lines")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list rejected lines")?;
        Ok(rows)
    }

    pub fn require_dataset(&self, dataset: &str) -> Result<()> {
        match self.dataset_format(dataset)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("no dataset named `{dataset}` (see `seal datasets list`)"))),
        }
    }

    /// Writes every pair of a dataset to a CSV, Parquet or JSONL file, atomically.
    /// Writes a dataset's pairs to `out`. Without `full_paths`, a source that is a file of the
    /// machine is named by its last component (URLs and uploads as they are), as the API shows
    /// sources to anyone but an admin (a backslash separates too, as on Windows).
    pub fn export_pairs(&self, dataset: &str, out: &Path, full_paths: bool) -> Result<u64> {
        self.require_dataset(dataset)?;
        let source = if full_paths {
            "source_uri"
        } else {
            r"CASE WHEN source_uri LIKE 'upload:%'
                     OR (regexp_matches(source_uri, '^[A-Za-z][A-Za-z0-9+.-]*://')
                         AND NOT lower(source_uri) LIKE 'file://%')
                   THEN source_uri
                   ELSE regexp_extract(rtrim(replace(source_uri, chr(92), '/'), '/'), '[^/]*$') END AS source_uri"
        };
        let query = format!(
            "SELECT pair_id, subset, split, {source}, line,
                    chosen_context AS context,
                    chosen_response, rejected_response,
                    chosen_context = rejected_context AS same_context,
                    rejected_context
             FROM pairs WHERE dataset = {} ORDER BY subset, split, line",
            sql_literal(dataset)
        );
        self.copy_to(&query, out)
    }

    /// Reads a Parquet file's rows as JSON objects (one string per row), for generic pair ingest.
    /// With `cap`, a file whose pages hold more than `cap` bytes uncompressed (as its footer
    /// says) is refused before it is read, and reading stops once the rows read hold more than
    /// `cap` bytes (dictionary- or run-length-encoded columns say little in the footer): a
    /// small, highly compressed file cannot fill memory.
    pub fn parquet_rows_as_json(&self, path: &Path, cap: Option<u64>) -> Result<Vec<String>> {
        if let Some(cap) = cap {
            let size: i64 = self
                .conn
                .query_row(
                    &format!(
                        "SELECT coalesce(sum(total_uncompressed_size), 0)::BIGINT FROM parquet_metadata({})",
                        sql_literal(&super::glob_literal(&path.to_string_lossy()))
                    ),
                    [],
                    |r| r.get(0),
                )
                .ctx(&format!("read {}", path.display()))?;
            if size.max(0) as u64 > cap {
                return Err(too_big(path, cap));
            }
        }
        let sql = format!("SELECT to_json(t)::VARCHAR FROM {} t", FileFormat::Parquet.reader(&path.to_string_lossy()));
        let mut stmt = self.conn.prepare(&sql).ctx(&format!("read {}", path.display()))?;
        let mut rows = Vec::new();
        let mut bytes = 0u64;
        for row in stmt.query_map([], |r| r.get::<_, String>(0)).ctx(&format!("read {}", path.display()))? {
            let row = row.ctx(&format!("read {}", path.display()))?;
            bytes += row.len() as u64;
            if cap.is_some_and(|cap| bytes > cap) {
                return Err(too_big(path, cap.unwrap_or_default()));
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// The texts of one pair.
    pub fn pair(&self, dataset: &str, pair_id: &str) -> Result<PairTexts> {
        self.conn
            .query_row(
                "SELECT pair_id, chosen_context, chosen_response, rejected_context, rejected_response
                 FROM pairs WHERE dataset = ? AND pair_id = ?",
                params![dataset, pair_id],
                pair_texts_row,
            )
            .optional()
            .ctx("read pair")?
            .ok_or_else(|| StoreError::NotFound(format!("no pair `{pair_id}` in dataset `{dataset}`")))
    }

    pub fn count_pairs(&self, dataset: &str) -> Result<u64> {
        self.count_shard_pairs(dataset, None)
    }
}

/// A Parquet file past `ingest.max_decompressed_mb`.
fn too_big(path: &Path, cap: u64) -> StoreError {
    StoreError::Invalid(format!(
        "{}: holds more than the {} MB cap once decompressed (ingest.max_decompressed_mb)",
        path.display(),
        cap / 1_000_000
    ))
}

pub(super) fn pair_texts_row(r: &duckdb::Row<'_>) -> duckdb::Result<PairTexts> {
    Ok(PairTexts {
        pair_id: r.get(0)?,
        chosen: Side { context: r.get(1)?, response: r.get(2)? },
        rejected: Side { context: r.get(3)?, response: r.get(4)? },
    })
}
