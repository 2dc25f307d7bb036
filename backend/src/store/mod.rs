//! The only module that names `duckdb`: opening the store file, migrations, and typed reads and
//! writes. Bulk writes run as transaction → Appender → explicit `flush()` → commit, so a killed
//! process leaves either all of a batch or none of it.
//!
//! One file per table family, each with its own `impl Store`: `pairs` (datasets, sources, pairs,
//! rejected lines), `models`, `scores` (scores and score runs), `labels` (label sets), `studies`
//! (the study join), `variants`, `llm` (the LM answer cache, label failures), `browse` (the
//! example browser's reads, notes, the versions readers cache by) and `accounts` (users, API tokens,
//! sessions, the audit log). This file keeps the `Store` itself and
//! the helpers they share.

mod accounts;
mod browse;
mod jobs;
mod labels;
mod llm;
mod migrate;
mod models;
mod pairs;
mod scores;
mod studies;
mod variants;

pub use accounts::{unix_now, AuditRecord, SessionRecord, ShareRecord, TokenRecord, UserRecord};
pub use browse::{score_pair, PairIndexColumns, PairRecord, PreviewTexts, Transcript};
pub use jobs::JobRecord;
pub use labels::{LabelColumns, LabelSetRecord};
pub use llm::{CacheEntry, CachedAnswer, LabelFailure};
pub use pairs::{DatasetSummary, IngestOutcome, SourceRecord};
pub use scores::{AgreementCounts, RunInfo, ShardExpectation, ShardImport};
pub use studies::StudyColumns;
pub use variants::{variant_dataset, VariantRecord};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use duckdb::Connection;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path} is in use by another process ({detail}); stop it (e.g. `seal serve`) or wait for it to finish")]
    Locked { path: String, detail: String },
    #[error("store {path}: {source}")]
    Open { path: String, source: duckdb::Error },
    #[error("the store {path} has schema version {found}, newer than the newest this seal {version} knows ({known}); use a newer seal, or restore a backup made by this version", version = env!("CARGO_PKG_VERSION"))]
    NewerSchema { path: String, found: i64, known: u32 },
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

    /// The table function that reads the file at `path`.
    fn reader(self, path: &str) -> String {
        let p = sql_literal(&glob_literal(path));
        match self {
            FileFormat::Csv => format!("read_csv({p}, header = true, auto_detect = true)"),
            FileFormat::Parquet => format!("read_parquet({p})"),
            FileFormat::Jsonl => format!("read_json({p}, format = 'newline_delimited')"),
        }
    }
}

/// `path` as a glob that matches only itself, for DuckDB's file readers (which take globs):
/// its `*`, `?` and `[` each put in a class of their own. Unescaped, `train[1].parquet` would
/// read `train1.parquet`, and `a?b.csv` every three-letter name from `a` to `b`.
pub(crate) fn glob_literal(path: &str) -> String {
    path.chars().map(|c| if matches!(c, '*' | '?' | '[') { format!("[{c}]") } else { c.to_string() }).collect()
}

/// Why the store file at `path` cannot be opened here because another process holds it (a
/// running `seal serve`): DuckDB's lock on it. `None` when it can be opened, or fails for
/// another reason (damaged, of a newer DuckDB).
pub fn held_elsewhere(path: &Path) -> Option<String> {
    duckdb::Connection::open(path).err().map(|e| e.to_string()).filter(|e| e.contains("lock"))
}

#[cfg(unix)]
fn owner_only(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))
}

#[cfg(not(unix))]
fn owner_only(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Column `i` of a row as a count: `r.get::<_, i64>(i)? as u64`, so a NULL is an error and a
/// negative value wraps, as in the hand-written reads this replaces.
fn u64_at(r: &duckdb::Row<'_>, i: usize) -> duckdb::Result<u64> {
    Ok(r.get::<_, i64>(i)? as u64)
}

/// Column `i` of a row as a word of one of the contract's closed vocabularies; a stored word
/// outside it is a conversion error of that column, never a silent default.
fn word_at<T: std::str::FromStr<Err = seal_shared::UnknownValue>>(r: &duckdb::Row<'_>, i: usize) -> duckdb::Result<T> {
    let word: String = r.get(i)?;
    word.parse().map_err(|e| duckdb::Error::FromSqlConversionFailure(i, duckdb::types::Type::Text, Box::new(e)))
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Shared by every connection cloned from this one.
    version: Arc<VersionCache>,
}

/// What readers cache by: a counter per [`Scope`] that every write through this process bumps.
/// DuckDB lets one process open a store file for writing, so no other process changes the data
/// behind a running server's back. A scoring job's chunk of model M on dataset D changes the
/// studies of D that read M, and no other.
#[derive(Default)]
struct VersionCache {
    scopes: Mutex<std::collections::HashMap<Scope, u64>>,
}

/// What a write touched. A dataset and its variants (`D@name`) count as one family: a study
/// of D reads its variants for robustness.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    /// Pairs, labels, variants or similarities of a dataset family.
    Data(String),
    /// Scores (and score runs) of one model on a dataset family.
    Scores(String, String),
    /// The registered models.
    Models,
}

/// The family of a dataset: `hh` for `hh` and for its variants `hh@…`.
fn family(dataset: &str) -> String {
    dataset.split('@').next().unwrap_or(dataset).to_owned()
}

impl Store {
    /// Opens (creating if needed) the store file and brings its schema up to date.
    /// Opens (or creates) the store. A data dir and store file it creates are its owner's
    /// alone (0700, 0600): the store holds password hashes, token hashes and the audit log, and
    /// DuckDB's write-ahead log beside it inherits the folder's protection.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let fresh = !parent.exists();
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Invalid(format!("{}: {e}", parent.display())))?;
            if fresh {
                owner_only(parent, 0o700)?;
            }
        }
        let new_file = !path.exists();
        let display = path.display().to_string();
        let conn = Connection::open(path).map_err(|source| {
            let msg = source.to_string();
            if msg.contains("lock") {
                StoreError::Locked { path: display.clone(), detail: msg }
            } else {
                StoreError::Open { path: display.clone(), source }
            }
        })?;
        if new_file {
            owner_only(path, 0o600)?;
        }
        let store = Store { conn, path: path.to_owned(), version: Default::default() };
        migrate::run(&store.conn).map_err(|e| match e {
            StoreError::NewerSchema { found, known, .. } => StoreError::NewerSchema { path: display, found, known },
            other => other,
        })?;
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
    fn changed(&self, scope: Scope) {
        if let Ok(mut scopes) = self.version.scopes.lock() {
            *scopes.entry(scope).or_default() += 1;
        }
    }

    fn changed_data(&self, dataset: &str) {
        self.changed(Scope::Data(family(dataset)));
    }

    fn changed_scores(&self, dataset: &str, model: &str) {
        self.changed(Scope::Scores(family(dataset), model.to_owned()));
    }

    /// A token that changes whenever a write through this process touches what a study of
    /// `dataset` with these `models` reads (its family's pairs, labels and variants, these
    /// models' scores, the models), and only then. DuckDB lets one process write a store, so
    /// nothing else changes it meanwhile.
    pub fn study_version(&self, dataset: &str, models: &[&str]) -> Result<String> {
        let scopes =
            self.version.scopes.lock().map_err(|_| StoreError::Invalid("data version cache poisoned".into()))?;
        let at = |s: Scope| scopes.get(&s).copied().unwrap_or(0);
        let mut v = format!("{}:{}", at(Scope::Data(family(dataset))), at(Scope::Models));
        for m in models {
            v.push_str(&format!(":{}", at(Scope::Scores(family(dataset), (*m).to_owned()))));
        }
        Ok(v)
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
        let copied = self
            .conn
            .execute_batch(&format!(
                "COPY ({query}) TO {} ({}{compression})",
                sql_literal(&tmp.to_string_lossy()),
                fmt.copy_options()
            ))
            .ctx(&format!("export to {}", out.display()));
        if let Err(e) = copied {
            // Nothing half-written is left beside `out`.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, out).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            StoreError::Invalid(format!("{}: {e}", out.display()))
        })?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests;

/// Backups: a consistent copy of the whole store, and what a copy holds.
impl Store {
    /// Copies the whole store, as one transaction sees it, into a new DuckDB file `out` (which
    /// must not exist): a scoring job that commits meanwhile is in the copy wholly or not at all.
    pub fn snapshot_to(&self, out: &Path) -> Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let db: String = self.conn.query_row("SELECT current_database()", [], |r| r.get(0)).ctx("name the store")?;
        let alias = format!("seal_snapshot_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let out = out.to_str().ok_or_else(|| StoreError::Invalid(format!("{}: not UTF-8", out.display())))?;
        self.conn.execute_batch(&format!("ATTACH {} AS {alias}", sql_literal(out))).ctx("attach the copy")?;
        let copied = self.conn.execute_batch(&format!("COPY FROM DATABASE \"{}\" TO {alias}", db.replace('"', "\"\"")));
        let detached = self.conn.execute_batch(&format!("DETACH {alias}"));
        copied.ctx("copy the store")?;
        detached.ctx("detach the copy")
    }

    /// The newest schema migration applied.
    pub fn schema_version(&self) -> Result<u32> {
        self.conn
            .query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
            .ctx("read the schema version")
    }

    /// Rows of every table, by name.
    pub fn table_counts(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        let names: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name")
                .ctx("list tables")?;
            let rows = stmt.query_map([], |r| r.get(0)).ctx("list tables")?;
            rows.collect::<duckdb::Result<_>>().ctx("list tables")?
        };
        let mut out = std::collections::BTreeMap::new();
        for name in names {
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\"")), [], |r| r.get(0))
                .ctx("count rows")?;
            out.insert(name, n as u64);
        }
        Ok(out)
    }
}
