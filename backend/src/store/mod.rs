//! The only module that names `duckdb`: opening the store file, migrations, and typed reads and
//! writes. Bulk writes run as transaction → Appender → explicit `flush()` → commit, so a killed
//! process leaves either all of a batch or none of it.
//!
//! May use: `domain`, `features` (the label vocabulary). Must not use: `ingest`, `score`, `http`, `pipeline`.

mod browse;
mod llm;
mod migrate;
mod variants;

pub use browse::{score_pair, PairIndexColumns, PairRecord, PreviewTexts, Transcript};
pub use llm::{CacheEntry, CachedAnswer, LabelFailure};
pub use variants::{variant_dataset, VariantRecord};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use duckdb::{params, Connection, OptionalExt};

use crate::domain::{
    Agreement, InputFormat, ModelKind, ModelRecord, NewPair, PairScore, PairTexts, RejectedLine, Side, Truncation,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path} is in use by another process ({detail}); stop it (e.g. `seal serve`) or wait for it to finish")]
    Locked { path: String, detail: String },
    #[error("store {path}: {source}")]
    Open { path: String, source: duckdb::Error },
    #[error("schema migration {version} failed: {source}")]
    Migration { version: u32, source: duckdb::Error },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Db { context: String, source: duckdb::Error },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

trait Context<T> {
    fn ctx(self, context: &str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, duckdb::Error> {
    fn ctx(self, context: &str) -> Result<T> {
        self.map_err(|source| StoreError::Db { context: context.to_owned(), source })
    }
}

/// A file format the store can export to or import from, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Parquet,
    Jsonl,
}

impl FileFormat {
    pub fn from_path(path: &Path) -> Result<FileFormat> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") {
            Ok(FileFormat::Csv)
        } else if name.ends_with(".parquet") {
            Ok(FileFormat::Parquet)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
            Ok(FileFormat::Jsonl)
        } else {
            Err(StoreError::Invalid(format!(
                "{}: unknown file type; use a .csv, .parquet or .jsonl extension",
                path.display()
            )))
        }
    }

    fn copy_options(self) -> &'static str {
        match self {
            FileFormat::Csv => "FORMAT csv, HEADER true",
            FileFormat::Parquet => "FORMAT parquet, COMPRESSION zstd",
            FileFormat::Jsonl => "FORMAT json",
        }
    }

    fn reader(self, path: &str) -> String {
        let p = sql_literal(path);
        match self {
            FileFormat::Csv => format!("read_csv({p}, header = true, auto_detect = true)"),
            FileFormat::Parquet => format!("read_parquet({p})"),
            FileFormat::Jsonl => format!("read_json({p}, format = 'newline_delimited')"),
        }
    }
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

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
    Replaced { scores_invalidated: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSummary {
    pub name: String,
    pub format: String,
    pub n_pairs: u64,
    pub n_rejected: u64,
    pub sources: Vec<SourceRecord>,
}

/// Accuracy counts of one model on one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgreementCounts {
    pub n: u64,
    pub agree: u64,
    pub disagree: u64,
    pub tie: u64,
    pub truncated_texts: u64,
}

/// Provenance of one scoring run.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub dataset: String,
    pub model: String,
    pub model_sha256: Option<String>,
    pub provider: String,
    pub truncation: Truncation,
    pub max_length: Option<u32>,
    pub batch_tokens: Option<u32>,
    pub runtime_version: Option<String>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Shared by every connection cloned from this one.
    version: Arc<VersionCache>,
}

/// What readers cache by: a counter that every write through this process bumps, and the data
/// version last computed for it. DuckDB lets one process open a store file for writing, so no
/// other process changes the data behind a running server's back.
#[derive(Default)]
struct VersionCache {
    generation: AtomicU64,
    last: Mutex<Option<(u64, String)>>,
}

impl Store {
    /// Opens (creating if needed) the store file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Invalid(format!("{}: {e}", parent.display())))?;
        }
        let display = path.display().to_string();
        let conn = Connection::open(path).map_err(|source| {
            let msg = source.to_string();
            if msg.contains("lock") {
                StoreError::Locked { path: display.clone(), detail: msg }
            } else {
                StoreError::Open { path: display.clone(), source }
            }
        })?;
        let store = Store { conn, path: path.to_owned(), version: Default::default() };
        migrate::run(&store.conn)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second connection to the same database, for another thread.
    pub fn try_clone(&self) -> Result<Store> {
        Ok(Store {
            conn: self.conn.try_clone().ctx("clone connection")?,
            path: self.path.clone(),
            version: self.version.clone(),
        })
    }

    /// Marks the data as changed (after a committed write of pairs, scores, labels or models).
    fn changed(&self) {
        self.version.generation.fetch_add(1, Ordering::SeqCst);
    }

    // ---------------------------------------------------------------- datasets and pairs

    pub fn source_sha256(&self, dataset: &str, uri: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT sha256 FROM sources WHERE dataset = ? AND uri = ?", params![dataset, uri], |r| r.get(0))
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
        let existed = self.source_sha256(dataset, &source.uri)?.is_some();
        if existed && !replace {
            return Err(StoreError::Conflict(format!(
                "{}: already ingested into `{dataset}` with other content; pass --replace to re-ingest it",
                source.uri
            )));
        }
        // Pairs of the old version whose text changed or that vanished lose their scores.
        let mut stale: Vec<String> = Vec::new();
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
                let same =
                    new.get(o.pair_id.as_str()).is_some_and(|n| n.chosen == o.chosen && n.rejected == o.rejected);
                if !same {
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
        let mut invalidated = 0;
        if existed {
            {
                let mut del =
                    tx.prepare("DELETE FROM scores WHERE dataset = ? AND pair_id = ?").ctx("invalidate scores")?;
                for id in &stale {
                    invalidated += del.execute(params![dataset, id]).ctx("invalidate scores")? as u64;
                }
            }
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
        self.changed();
        Ok(if existed { IngestOutcome::Replaced { scores_invalidated: invalidated } } else { IngestOutcome::Added })
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
                    n_pairs: r.get::<_, i64>(2)? as u64,
                    n_rejected: r.get::<_, i64>(3)? as u64,
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

    fn sources(&self, dataset: &str) -> Result<Vec<SourceRecord>> {
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
                    n_lines: r.get::<_, i64>(4)? as u64,
                    n_pairs: r.get::<_, i64>(5)? as u64,
                    n_rejected: r.get::<_, i64>(6)? as u64,
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
            .query_map(params![dataset], |r| {
                Ok((r.get(0)?, RejectedLine { line: r.get::<_, i64>(1)? as u64, reason: r.get(2)? }))
            })
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
    pub fn export_pairs(&self, dataset: &str, out: &Path) -> Result<u64> {
        self.require_dataset(dataset)?;
        let query = format!(
            "SELECT pair_id, subset, split, source_uri, line,
                    chosen_context AS context,
                    chosen_response, rejected_response,
                    chosen_context = rejected_context AS same_context,
                    rejected_context
             FROM pairs WHERE dataset = {} ORDER BY subset, split, line",
            sql_literal(dataset)
        );
        self.copy_to(&query, out)
    }

    /// Scores of one model on one dataset, with agreement, to CSV, Parquet or JSONL.
    pub fn export_scores(&self, dataset: &str, model: &str, out: &Path) -> Result<u64> {
        self.require_dataset(dataset)?;
        self.model(model)?;
        let query = format!(
            "SELECT pair_id, subset, split, chosen_score, rejected_score, margin, agreement,
                    agreement = 'agree' AS agrees,
                    chosen_tokens, rejected_tokens, chosen_truncated, rejected_truncated, run_id
             FROM pair_scores WHERE dataset = {} AND model = {} ORDER BY subset, split, line",
            sql_literal(dataset),
            sql_literal(model)
        );
        self.copy_to(&query, out)
    }

    fn copy_to(&self, query: &str, out: &Path) -> Result<u64> {
        let fmt = FileFormat::from_path(out)?;
        let file_name = out.file_name().and_then(|n| n.to_str()).unwrap_or("export");
        let tmp = out.with_file_name(format!(".{file_name}.partial"));
        let n: i64 = self.conn.query_row(&format!("SELECT count(*) FROM ({query})"), [], |r| r.get(0)).ctx("count")?;
        let compression = if out.extension().is_some_and(|e| e == "gz") && fmt != FileFormat::Parquet {
            ", COMPRESSION gzip"
        } else {
            ""
        };
        self.conn
            .execute_batch(&format!(
                "COPY ({query}) TO {} ({}{compression})",
                sql_literal(&tmp.to_string_lossy()),
                fmt.copy_options()
            ))
            .ctx(&format!("export to {}", out.display()))?;
        std::fs::rename(&tmp, out).map_err(|e| StoreError::Invalid(format!("{}: {e}", out.display())))?;
        Ok(n as u64)
    }

    /// Reads a Parquet file's rows as JSON objects (one string per row), for generic pair ingest.
    pub fn parquet_rows_as_json(&self, path: &Path) -> Result<Vec<String>> {
        let sql = format!("SELECT to_json(t)::VARCHAR FROM {} t", FileFormat::Parquet.reader(&path.to_string_lossy()));
        let mut stmt = self.conn.prepare(&sql).ctx(&format!("read {}", path.display()))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .ctx(&format!("read {}", path.display()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx(&format!("read {}", path.display()))?;
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

    // ---------------------------------------------------------------- models

    pub fn add_model(&self, m: &ModelRecord, replace: bool) -> Result<()> {
        if !replace && self.model_opt(&m.name)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "a model named `{}` exists; pick another --name or pass --replace",
                m.name
            )));
        }
        self.conn
            .execute(
                "INSERT OR REPLACE INTO models (name, kind, folder, onnx_sha256, tokenizer_sha256, inputs,
                    input_format, max_length, truncation, is_test_model, precision)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    m.name,
                    m.kind.as_str(),
                    m.folder,
                    m.onnx_sha256,
                    m.tokenizer_sha256,
                    m.inputs.join(","),
                    m.input_format.to_string(),
                    m.max_length,
                    m.truncation.to_string(),
                    m.is_test_model,
                    m.precision
                ],
            )
            .ctx("insert model")?;
        self.changed();
        Ok(())
    }

    fn model_opt(&self, name: &str) -> Result<Option<ModelRecord>> {
        self.conn
            .query_row(&format!("{MODEL_COLUMNS} WHERE name = ?"), params![name], model_row)
            .optional()
            .ctx("read model")
    }

    pub fn model(&self, name: &str) -> Result<ModelRecord> {
        self.model_opt(name)?
            .ok_or_else(|| StoreError::NotFound(format!("no model named `{name}` (see `seal models list`)")))
    }

    pub fn models(&self) -> Result<Vec<ModelRecord>> {
        let mut stmt = self.conn.prepare(&format!("{MODEL_COLUMNS} ORDER BY added_at, name")).ctx("list models")?;
        let rows = stmt
            .query_map([], model_row)
            .ctx("list models")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list models")?;
        Ok(rows)
    }

    // ---------------------------------------------------------------- scores

    pub fn count_pairs(&self, dataset: &str) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM pairs WHERE dataset = ?", params![dataset], |r| r.get(0))
            .ctx("count pairs")?;
        Ok(n as u64)
    }

    pub fn count_unscored(&self, dataset: &str, model: &str) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM pairs p WHERE p.dataset = ? AND NOT EXISTS
                 (SELECT 1 FROM scores s WHERE s.dataset = p.dataset AND s.model = ? AND s.pair_id = p.pair_id)",
                params![dataset, model],
                |r| r.get(0),
            )
            .ctx("count unscored")?;
        Ok(n as u64)
    }

    /// The next `limit` pairs without a score from `model`, in a stable order.
    pub fn unscored_pairs(&self, dataset: &str, model: &str, limit: usize) -> Result<Vec<PairTexts>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.pair_id, p.chosen_context, p.chosen_response, p.rejected_context, p.rejected_response
                 FROM pairs p WHERE p.dataset = ? AND NOT EXISTS
                 (SELECT 1 FROM scores s WHERE s.dataset = p.dataset AND s.model = ? AND s.pair_id = p.pair_id)
                 ORDER BY p.subset, p.split, p.line LIMIT ?",
            )
            .ctx("read unscored")?;
        let rows = stmt
            .query_map(params![dataset, model, limit as i64], pair_texts_row)
            .ctx("read unscored")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read unscored")?;
        Ok(rows)
    }

    pub fn start_run(&self, run: &RunInfo) -> Result<i64> {
        self.conn
            .query_row(
                "INSERT INTO score_runs (dataset, model, model_sha256, provider, truncation, max_length,
                    batch_tokens, runtime_version, seal_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
                params![
                    run.dataset,
                    run.model,
                    run.model_sha256,
                    run.provider,
                    run.truncation.to_string(),
                    run.max_length,
                    run.batch_tokens,
                    run.runtime_version,
                    env!("CARGO_PKG_VERSION")
                ],
                |r| r.get(0),
            )
            .ctx("start run")
            .inspect(|_| self.changed())
    }

    pub fn finish_run(&self, run_id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE score_runs SET finished_at = current_timestamp,
                    n_scored = (SELECT count(*) FROM scores WHERE run_id = ?) WHERE run_id = ?",
                params![run_id, run_id],
            )
            .ctx("finish run")?;
        self.changed();
        Ok(())
    }

    /// Appends one chunk of scores in its own transaction: after a crash either the whole chunk
    /// is there or none of it, and the primary key refuses a second score for a pair.
    pub fn insert_scores(&mut self, dataset: &str, model: &str, run_id: i64, rows: &[PairScore]) -> Result<()> {
        let tx = self.conn.transaction().ctx("begin")?;
        {
            let mut app = tx.appender("scores").ctx("appender")?;
            for s in rows {
                app.append_row(params![
                    dataset,
                    model,
                    s.pair_id,
                    s.chosen.score,
                    s.rejected.score,
                    s.chosen.n_tokens,
                    s.rejected.n_tokens,
                    s.chosen.truncated,
                    s.rejected.truncated,
                    run_id
                ])
                .ctx("append score")?;
            }
            app.flush().ctx("flush scores")?;
        }
        tx.commit().ctx("commit scores")?;
        self.changed();
        Ok(())
    }

    /// Imports scores computed elsewhere from CSV, JSONL or Parquet with columns `pair_id`,
    /// `chosen_score`, `rejected_score`. Every id must name a pair of the dataset, once, with
    /// finite scores; otherwise nothing is stored and the offending rows are listed.
    pub fn import_scores(&mut self, dataset: &str, model: &str, file: &Path, run: &RunInfo) -> Result<u64> {
        self.require_dataset(dataset)?;
        let fmt = FileFormat::from_path(file)?;
        let shown = file.display().to_string();
        let tx = self.conn.transaction().ctx("begin")?;
        tx.execute_batch(&format!(
            "CREATE OR REPLACE TEMP TABLE imported AS SELECT row_number() OVER () AS _row, * FROM {}",
            fmt.reader(&file.to_string_lossy())
        ))
        .ctx(&format!("read {shown}"))?;
        let mut stmt = tx.prepare("SELECT column_name FROM (DESCRIBE imported)").ctx("describe")?;
        let columns: Vec<String> =
            stmt.query_map([], |r| r.get(0)).ctx("describe")?.collect::<std::result::Result<_, _>>().ctx("describe")?;
        drop(stmt);
        for needed in ["pair_id", "chosen_score", "rejected_score"] {
            if !columns.iter().any(|c| c == needed) {
                return Err(StoreError::Invalid(format!(
                    "{shown}: missing column `{needed}` (found: {})",
                    columns[1..].join(", ")
                )));
            }
        }
        let line_base = if fmt == FileFormat::Csv { 1 } else { 0 };
        let problems: Vec<String> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT _row + {line_base}, CASE
                        WHEN i.pair_id IS NULL THEN 'missing pair_id'
                        WHEN TRY_CAST(i.chosen_score AS DOUBLE) IS NULL THEN 'chosen_score is missing or not a number'
                        WHEN TRY_CAST(i.rejected_score AS DOUBLE) IS NULL THEN 'rejected_score is missing or not a number'
                        WHEN NOT isfinite(TRY_CAST(i.chosen_score AS DOUBLE)) OR NOT isfinite(TRY_CAST(i.rejected_score AS DOUBLE))
                            THEN 'score is not finite'
                        WHEN p.pair_id IS NULL THEN 'unknown pair_id `' || i.pair_id::VARCHAR || '` in dataset {ds}'
                        WHEN count(*) OVER (PARTITION BY i.pair_id) > 1 THEN 'pair_id `' || i.pair_id::VARCHAR || '` appears more than once'
                     END AS problem
                     FROM imported i LEFT JOIN pairs p ON p.dataset = {ds_lit} AND p.pair_id = i.pair_id::VARCHAR
                     QUALIFY problem IS NOT NULL ORDER BY _row LIMIT 21",
                    ds = dataset.replace('\'', "''"),
                    ds_lit = sql_literal(dataset)
                ))
                .ctx("validate import")?;
            let rows = stmt
                .query_map([], |r| Ok(format!("  {shown}:{}: {}", r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .ctx("validate import")?;
            rows.collect::<std::result::Result<_, _>>().ctx("validate import")?
        };
        if !problems.is_empty() {
            let more = if problems.len() > 20 { "\n  … and more" } else { "" };
            let list: Vec<&str> = problems.iter().take(20).map(String::as_str).collect();
            return Err(StoreError::Invalid(format!(
                "{shown}: invalid rows; nothing was stored:\n{}{more}",
                list.join("\n")
            )));
        }
        let run_id: i64 = tx
            .query_row(
                "INSERT INTO score_runs (dataset, model, provider, truncation, seal_version)
                 VALUES (?, ?, ?, ?, ?) RETURNING run_id",
                params![dataset, model, run.provider, run.truncation.to_string(), env!("CARGO_PKG_VERSION")],
                |r| r.get(0),
            )
            .ctx("start import run")?;
        tx.execute(
            "DELETE FROM scores WHERE dataset = ? AND model = ? AND pair_id IN (SELECT pair_id::VARCHAR FROM imported)",
            params![dataset, model],
        )
        .ctx("replace imported scores")?;
        let n = tx
            .execute(
                "INSERT INTO scores (dataset, model, pair_id, chosen_score, rejected_score, run_id)
                 SELECT ?, ?, pair_id::VARCHAR, chosen_score::DOUBLE, rejected_score::DOUBLE, ? FROM imported",
                params![dataset, model, run_id],
            )
            .ctx("insert imported scores")?;
        tx.execute(
            "UPDATE score_runs SET finished_at = current_timestamp, n_scored = ? WHERE run_id = ?",
            params![n as i64, run_id],
        )
        .ctx("finish import run")?;
        tx.execute_batch("DROP TABLE imported").ctx("drop staging")?;
        tx.commit().ctx("commit import")?;
        self.changed();
        Ok(n as u64)
    }

    pub fn agreement(&self, dataset: &str, model: &str) -> Result<AgreementCounts> {
        self.conn
            .query_row(
                "SELECT count(*),
                        count(*) FILTER (WHERE chosen_score > rejected_score),
                        count(*) FILTER (WHERE chosen_score < rejected_score),
                        count(*) FILTER (WHERE chosen_score = rejected_score),
                        coalesce(sum(chosen_truncated::INT + rejected_truncated::INT), 0)
                 FROM scores WHERE dataset = ? AND model = ?",
                params![dataset, model],
                |r| {
                    Ok(AgreementCounts {
                        n: r.get::<_, i64>(0)? as u64,
                        agree: r.get::<_, i64>(1)? as u64,
                        disagree: r.get::<_, i64>(2)? as u64,
                        tie: r.get::<_, i64>(3)? as u64,
                        truncated_texts: r.get::<_, i64>(4)? as u64,
                    })
                },
            )
            .ctx("agreement")
    }

    /// (dataset, model) combinations that have scores.
    pub fn scored(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT dataset, model FROM scores ORDER BY dataset, model")
            .ctx("list scored")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("list scored")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list scored")?;
        Ok(rows)
    }

    /// All scores of a model on a dataset, keyed by pair id (tests and small reports).
    pub fn scores(&self, dataset: &str, model: &str) -> Result<Vec<(String, f64, f64, Agreement)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pair_id, chosen_score, rejected_score FROM scores WHERE dataset = ? AND model = ?
                 ORDER BY pair_id",
            )
            .ctx("read scores")?;
        let rows = stmt
            .query_map(params![dataset, model], |r| {
                let (c, rj): (f64, f64) = (r.get(1)?, r.get(2)?);
                Ok((r.get(0)?, c, rj, Agreement::of(c, rj)))
            })
            .ctx("read scores")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read scores")?;
        Ok(rows)
    }

    /// Number of score rows for (dataset, model) and of distinct pairs among them.
    pub fn score_row_counts(&self, dataset: &str, model: &str) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT count(*), count(DISTINCT pair_id) FROM scores WHERE dataset = ? AND model = ?",
                params![dataset, model],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .ctx("count scores")
    }

    pub fn run_providers(&self, dataset: &str, model: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT provider FROM score_runs WHERE dataset = ? AND model = ? ORDER BY provider")
            .ctx("list runs")?;
        let rows = stmt
            .query_map(params![dataset, model], |r| r.get(0))
            .ctx("list runs")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list runs")?;
        Ok(rows)
    }
}

const MODEL_COLUMNS: &str = "SELECT name, kind, folder, onnx_sha256, tokenizer_sha256, inputs, input_format,
    max_length, truncation, is_test_model, precision FROM models";

fn model_row(r: &duckdb::Row<'_>) -> duckdb::Result<ModelRecord> {
    let kind: String = r.get(1)?;
    let inputs: String = r.get(5)?;
    let input_format: String = r.get(6)?;
    let truncation: String = r.get(8)?;
    Ok(ModelRecord {
        name: r.get(0)?,
        kind: if kind == "onnx" { ModelKind::Onnx } else { ModelKind::Imported },
        folder: r.get(2)?,
        onnx_sha256: r.get(3)?,
        tokenizer_sha256: r.get(4)?,
        inputs: inputs.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        input_format: input_format.parse().unwrap_or(InputFormat::Pair),
        max_length: r.get(7)?,
        truncation: truncation.parse().unwrap_or(Truncation::None),
        is_test_model: r.get(9)?,
        precision: r.get(10)?,
    })
}

fn pair_texts_row(r: &duckdb::Row<'_>) -> duckdb::Result<PairTexts> {
    Ok(PairTexts {
        pair_id: r.get(0)?,
        chosen: Side { context: r.get(1)?, response: r.get(2)? },
        rejected: Side { context: r.get(3)?, response: r.get(4)? },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TextScore;

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
        store.add_model(&imported_model("m"), false).unwrap();
        let run = store.start_run(&run_info()).unwrap();
        store.insert_scores("d", "m", run, &[score("s/test/0"), score("s/test/1"), score("s/test/2")]).unwrap();

        let err = store.ingest_source("d", "hh-rlhf", &source("f", "h2", 2), &v1[..2], &[], false).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");

        let v2 = [pair("s/test/0", 0, "a"), pair("s/test/1", 1, "CHANGED")];
        let outcome = store.ingest_source("d", "hh-rlhf", &source("f", "h2", 2), &v2, &[], true).unwrap();
        assert_eq!(outcome, IngestOutcome::Replaced { scores_invalidated: 2 });
        let left: Vec<String> = store.scores("d", "m").unwrap().into_iter().map(|s| s.0).collect();
        assert_eq!(left, ["s/test/0"]);
        assert_eq!(store.count_pairs("d").unwrap(), 2);
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
        assert_eq!(outcome, IngestOutcome::Replaced { scores_invalidated: 0 });
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
        let err = store
            .ingest_source("d", "hh-rlhf", &source("b", "h", 1), &[pair("s/test/0", 0, "a")], &[], false)
            .unwrap_err();
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
        assert_eq!(store.count_unscored("d", "m").unwrap(), 0);
    }

    fn imported_model(name: &str) -> ModelRecord {
        ModelRecord {
            name: name.into(),
            kind: ModelKind::Imported,
            folder: None,
            onnx_sha256: None,
            tokenizer_sha256: None,
            inputs: vec![],
            input_format: InputFormat::Pair,
            max_length: None,
            truncation: Truncation::None,
            is_test_model: false,
            precision: None,
        }
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
        }
    }
}

// -------------------------------------------------------------------- labels and studies

/// A label set as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSetRecord {
    pub dataset: String,
    pub name: String,
    pub labeler: Option<String>,
    pub prompt_version: Option<String>,
    pub source_uri: String,
    pub sha256: String,
    pub n_texts: u64,
    pub n_off_list: u64,
    /// The taxonomy keys the set holds, in SEAL's order (all 19 unless chosen otherwise).
    pub keys: Vec<String>,
}

impl LabelSetRecord {
    pub fn has_key(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// The error for a key the set does not hold.
    pub fn missing_key(&self, key: &str) -> StoreError {
        StoreError::Invalid(format!(
            "label set `{}` of `{}` has no key `{key}` (its keys: {})",
            self.name,
            self.dataset,
            self.keys.join(", ")
        ))
    }
}

/// The columns of a study, aligned by pair, in dataset order (source, line).
#[derive(Debug, Clone, Default)]
pub struct StudyColumns {
    pub pair_ids: Vec<String>,
    pub subsets: Vec<String>,
    pub pre: (Vec<f64>, Vec<f64>),
    pub post: (Vec<f64>, Vec<f64>),
    /// Token counts of the post-D model's inputs (None where scores were imported).
    pub post_tokens: (Vec<Option<f64>>, Vec<Option<f64>>),
    /// Requested label keys, numerically encoded (spec §B.3): (key, chosen, rejected).
    pub labels: Vec<(String, Vec<f64>, Vec<f64>)>,
    /// (chosen context, chosen response, rejected context, rejected response) when asked for.
    pub texts: Vec<[String; 4]>,
    pub n_dataset_pairs: u64,
    /// Pairs with scores from both models.
    pub n_scored: u64,
}

const LIST_KEYS: [&str; 2] = ["last_response_is_discriminating_against", "topics"];

fn label_expr(alias: &str, key: &str) -> String {
    if key == "last_response_sentiment" {
        format!("(CASE {alias}.{key} WHEN 'negative' THEN -1 WHEN 'neutral' THEN 0 ELSE 1 END)::DOUBLE")
    } else {
        format!("{alias}.{key}::INTEGER::DOUBLE")
    }
}

impl Store {
    /// Stores a label set in one transaction. `records` are already validated; ids must name pairs
    /// of the dataset (checked here, all-or-nothing). Same name and content again is a no-op
    /// (returns false); other content needs `replace`.
    pub fn import_labels(
        &mut self,
        set: &LabelSetRecord,
        records: &[crate::features::LabelRecord],
        replace: bool,
    ) -> Result<bool> {
        self.require_dataset(&set.dataset)?;
        let old: Option<String> = self
            .conn
            .query_row(
                "SELECT sha256 FROM label_sets WHERE dataset = ? AND name = ?",
                params![set.dataset, set.name],
                |r| r.get(0),
            )
            .optional()
            .ctx("read label sets")?;
        if old.as_deref() == Some(set.sha256.as_str()) {
            return Ok(false);
        }
        if old.is_some() && !replace {
            return Err(StoreError::Conflict(format!(
                "label set `{}` of `{}` exists with other content; pass --replace to overwrite it",
                set.name, set.dataset
            )));
        }
        let known: std::collections::HashSet<String> = {
            let mut stmt = self.conn.prepare("SELECT pair_id FROM pairs WHERE dataset = ?").ctx("read pair ids")?;
            let ids = stmt
                .query_map(params![set.dataset], |r| r.get::<_, String>(0))
                .ctx("read pair ids")?
                .collect::<std::result::Result<_, _>>()
                .ctx("read pair ids")?;
            ids
        };
        let unknown: Vec<&str> =
            records.iter().map(|r| r.pair_id.as_str()).filter(|id| !known.contains(*id)).take(6).collect();
        if !unknown.is_empty() {
            return Err(StoreError::Invalid(format!(
                "{}: pair ids not in dataset `{}` (nothing was stored): {}",
                set.source_uri,
                set.dataset,
                unknown.iter().take(5).map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        if let Some(r) =
            records.iter().find(|r| r.values.len() != set.keys.len() || !r.values.keys().all(|k| set.has_key(k)))
        {
            return Err(StoreError::Invalid(format!(
                "{}: `{}` {} has keys {:?}, not the set's keys (nothing was stored)",
                set.source_uri,
                r.pair_id,
                r.side.as_str(),
                r.values.keys().collect::<Vec<_>>()
            )));
        }
        let tx = self.conn.transaction().ctx("begin")?;
        tx.execute("DELETE FROM labels WHERE dataset = ? AND label_set = ?", params![set.dataset, set.name])
            .ctx("replace labels")?;
        tx.execute("DELETE FROM label_sets WHERE dataset = ? AND name = ?", params![set.dataset, set.name])
            .ctx("replace labels")?;
        {
            let mut app = tx.appender("labels").ctx("appender")?;
            for r in records {
                let mut row: Vec<Box<dyn duckdb::ToSql>> = vec![
                    Box::new(set.dataset.clone()),
                    Box::new(set.name.clone()),
                    Box::new(r.pair_id.clone()),
                    Box::new(r.side.as_str()),
                ];
                for (key, _) in crate::features::KEYS {
                    // Keys outside the set's are NULL.
                    row.push(match r.values.get(key) {
                        None => Box::new(Option::<String>::None),
                        Some(crate::features::LabelValue::Bool(b)) => Box::new(*b),
                        Some(crate::features::LabelValue::Sentiment(s)) => {
                            Box::new(crate::features::sentiment_name(*s))
                        }
                        Some(v @ crate::features::LabelValue::List(_)) => Box::new(v.to_json().to_string()),
                    });
                }
                let refs: Vec<&dyn duckdb::ToSql> = row.iter().map(|b| b.as_ref()).collect();
                app.append_row(refs.as_slice()).ctx("append label")?;
            }
            app.flush().ctx("flush labels")?;
        }
        tx.execute(
            "INSERT INTO label_sets (dataset, name, labeler, prompt_version, source_uri, sha256, n_texts, n_off_list, keys)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                set.dataset,
                set.name,
                set.labeler,
                set.prompt_version,
                set.source_uri,
                set.sha256,
                records.len() as i64,
                set.n_off_list as i64,
                serde_json::to_string(&set.keys).expect("strings serialize")
            ],
        )
        .ctx("insert label set")?;
        tx.commit().ctx("commit labels")?;
        self.changed();
        Ok(true)
    }

    pub fn label_sets(&self, dataset: Option<&str>) -> Result<Vec<LabelSetRecord>> {
        let filter = dataset.map(|d| format!("WHERE dataset = {}", sql_literal(d))).unwrap_or_default();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT dataset, name, labeler, prompt_version, source_uri, sha256, n_texts, n_off_list, keys FROM label_sets
                 {filter} ORDER BY dataset, name"
            ))
            .ctx("list label sets")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(LabelSetRecord {
                    dataset: r.get(0)?,
                    name: r.get(1)?,
                    labeler: r.get(2)?,
                    prompt_version: r.get(3)?,
                    source_uri: r.get(4)?,
                    sha256: r.get(5)?,
                    n_texts: r.get::<_, i64>(6)? as u64,
                    n_off_list: r.get::<_, i64>(7)? as u64,
                    keys: r
                        .get::<_, Option<String>>(8)?
                        .and_then(|k| serde_json::from_str(&k).ok())
                        .unwrap_or_else(|| crate::features::all_keys().into_iter().map(String::from).collect()),
                })
            })
            .ctx("list label sets")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list label sets")?;
        Ok(rows)
    }

    /// The label set `name` of `dataset`, or a not-found error.
    pub fn require_label_set(&self, dataset: &str, name: &str) -> Result<LabelSetRecord> {
        self.label_sets(Some(dataset))?.into_iter().find(|s| s.name == name).ok_or_else(|| {
            StoreError::NotFound(format!("no label set `{name}` in dataset `{dataset}` (see `seal labels list`)"))
        })
    }

    /// Writes a label set back in its import format (pair_id, side, the set's keys; lists as JSON
    /// arrays), to CSV, Parquet or JSONL, atomically.
    pub fn export_labels(&self, dataset: &str, name: &str, out: &Path) -> Result<u64> {
        let set = self.require_label_set(dataset, name)?;
        let fmt = FileFormat::from_path(out)?;
        let cols: Vec<String> = crate::features::known_keys(&set.keys)
            .iter()
            .map(|k| {
                if LIST_KEYS.contains(k) && fmt == FileFormat::Jsonl {
                    format!("{k}::JSON AS {k}")
                } else {
                    k.to_string()
                }
            })
            .collect();
        let query = format!(
            "SELECT l.pair_id, l.side, {} FROM labels l JOIN pairs p ON p.dataset = l.dataset AND p.pair_id = l.pair_id
             WHERE l.dataset = {} AND l.label_set = {} ORDER BY p.source_uri, p.line, l.side",
            cols.iter().map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", "),
            sql_literal(dataset),
            sql_literal(name)
        );
        self.copy_to(&query, out)
    }

    /// Pairs of a dataset that two label sets both label, with the requested keys encoded
    /// numerically, side by side: (key, values in set a, values in set b) over texts.
    pub fn label_pairs(
        &self,
        dataset: &str,
        a: &str,
        b: &str,
        keys: &[&str],
    ) -> Result<Vec<(String, Vec<f64>, Vec<f64>)>> {
        for set in [self.require_label_set(dataset, a)?, self.require_label_set(dataset, b)?] {
            if let Some(k) = keys.iter().find(|k| !set.has_key(k)) {
                return Err(set.missing_key(k));
            }
        }
        let sel: Vec<String> = keys.iter().flat_map(|k| [label_expr("x", k), label_expr("y", k)]).collect();
        let sql = format!(
            "SELECT {} FROM labels x JOIN labels y ON y.dataset = x.dataset AND y.pair_id = x.pair_id AND y.side = x.side
               AND y.label_set = ? WHERE x.dataset = ? AND x.label_set = ? ORDER BY x.pair_id, x.side",
            sel.join(", ")
        );
        let mut out: Vec<(String, Vec<f64>, Vec<f64>)> = keys.iter().map(|k| (k.to_string(), vec![], vec![])).collect();
        let mut stmt = self.conn.prepare(&sql).ctx("join label sets")?;
        let mut rows = stmt.query(params![b, dataset, a]).ctx("join label sets")?;
        while let Some(row) = rows.next().ctx("join label sets")? {
            for (j, o) in out.iter_mut().enumerate() {
                o.1.push(row.get(2 * j).ctx("join label sets")?);
                o.2.push(row.get(2 * j + 1).ctx("join label sets")?);
            }
        }
        Ok(out)
    }

    /// Loads a study: pairs scored by both models (and labelled on both sides when `label_set`
    /// is given), with the requested label keys encoded per spec §B.3.
    pub fn study(
        &self,
        dataset: &str,
        pre: &str,
        post: &str,
        label_set: Option<&str>,
        label_keys: &[&str],
        with_texts: bool,
    ) -> Result<StudyColumns> {
        use duckdb::arrow::array::AsArray;
        use duckdb::arrow::datatypes::Float64Type;

        self.require_dataset(dataset)?;
        self.model(pre)?;
        self.model(post)?;
        let set = label_set.map(|set| self.require_label_set(dataset, set)).transpose()?;
        for k in label_keys {
            if !crate::features::KEYS.iter().any(|(key, kind)| key == k && *kind != crate::features::KeyKind::List) {
                return Err(StoreError::Invalid(format!("`{k}` is not a numeric label key")));
            }
            match &set {
                Some(set) if !set.has_key(k) => return Err(set.missing_key(k)),
                None => return Err(StoreError::Invalid(format!("label key `{k}` asked for without a label set"))),
                Some(_) => {}
            }
        }
        let n_dataset_pairs = self.count_pairs(dataset)?;
        let mut select = vec![
            "p.pair_id".to_string(),
            "p.subset".into(),
            "a.chosen_score".into(),
            "a.rejected_score".into(),
            "b.chosen_score".into(),
            "b.rejected_score".into(),
            "b.chosen_tokens::DOUBLE".into(),
            "b.rejected_tokens::DOUBLE".into(),
        ];
        for k in label_keys {
            select.push(label_expr("lc", k));
            select.push(label_expr("lr", k));
        }
        if with_texts {
            select.extend(
                ["p.chosen_context", "p.chosen_response", "p.rejected_context", "p.rejected_response"]
                    .map(String::from),
            );
        }
        let labels_join = match label_set {
            Some(set) => format!(
                "JOIN labels lc ON lc.dataset = p.dataset AND lc.label_set = {s} AND lc.pair_id = p.pair_id AND lc.side = 'chosen'
                 JOIN labels lr ON lr.dataset = p.dataset AND lr.label_set = {s} AND lr.pair_id = p.pair_id AND lr.side = 'rejected'",
                s = sql_literal(set)
            ),
            None => String::new(),
        };
        let sql = format!(
            "SELECT {} FROM pairs p
             JOIN scores a ON a.dataset = p.dataset AND a.pair_id = p.pair_id AND a.model = {pre}
             JOIN scores b ON b.dataset = p.dataset AND b.pair_id = p.pair_id AND b.model = {post}
             {labels_join}
             WHERE p.dataset = {ds} ORDER BY p.source_uri, p.line",
            select.join(", "),
            pre = sql_literal(pre),
            post = sql_literal(post),
            ds = sql_literal(dataset)
        );
        let n_scored: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM scores a JOIN scores b ON b.dataset = a.dataset AND b.pair_id = a.pair_id AND b.model = ?
                 WHERE a.dataset = ? AND a.model = ?",
                params![post, dataset, pre],
                |r| r.get(0),
            )
            .ctx("count scored pairs")?;
        let mut out = StudyColumns {
            labels: label_keys.iter().map(|k| (k.to_string(), vec![], vec![])).collect(),
            n_dataset_pairs,
            n_scored: n_scored as u64,
            ..Default::default()
        };
        let mut stmt = self.conn.prepare(&sql).ctx("load study")?;
        let strings = browse::arrow_strings;
        for batch in stmt.query_arrow([]).ctx("load study")? {
            let f = |i: usize| batch.column(i).as_primitive::<Float64Type>();
            out.pair_ids.extend(strings(batch.column(0).as_ref()));
            out.subsets.extend(strings(batch.column(1).as_ref()));
            out.pre.0.extend(f(2).values().iter());
            out.pre.1.extend(f(3).values().iter());
            out.post.0.extend(f(4).values().iter());
            out.post.1.extend(f(5).values().iter());
            out.post_tokens.0.extend(f(6).iter());
            out.post_tokens.1.extend(f(7).iter());
            for (j, l) in out.labels.iter_mut().enumerate() {
                l.1.extend(f(8 + 2 * j).values().iter());
                l.2.extend(f(9 + 2 * j).values().iter());
            }
            if with_texts {
                let base = 8 + 2 * label_keys.len();
                let cols: Vec<Vec<String>> = (0..4).map(|k| strings(batch.column(base + k).as_ref())).collect();
                for i in 0..batch.num_rows() {
                    out.texts.push([cols[0][i].clone(), cols[1][i].clone(), cols[2][i].clone(), cols[3][i].clone()]);
                }
            }
        }
        Ok(out)
    }
}
