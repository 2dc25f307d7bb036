//! Scores and their provenance: the tables `scores` and `score_runs` (and the `pair_scores` view
//! that score exports read).

use std::path::Path;

use duckdb::{params, OptionalExt};

use super::models::{truncation_text, RUN_FORMAT, RUN_TOKENIZER};
use super::pairs::pair_texts_row;
use super::{sql_literal, u64_at, Context, FileFormat, Result, Store, StoreError};
use crate::domain::{Agreement, InputFormat, ModelRecord, PairScore, PairTexts, Shard, Truncation};

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
    /// Where it ran: `cpu`, or the GPU(s) with their names and the TF32 setting.
    pub device: Option<String>,
    /// How texts were fed to the graph (`None` for scores computed elsewhere).
    pub input_format: Option<InputFormat>,
    /// The sha256 of the tokenizer.json the texts were tokenized with.
    pub tokenizer_sha256: Option<String>,
}

impl Store {
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

    /// Pairs of the dataset (of one shard of it) that `model` has not scored.
    pub fn count_unscored(&self, dataset: &str, model: &str, shard: Option<Shard>) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM pairs p WHERE p.dataset = ? AND NOT EXISTS
                     (SELECT 1 FROM scores s WHERE s.dataset = p.dataset AND s.model = ? AND s.pair_id = p.pair_id){}",
                    shard_clause(shard, "p.pair_id")
                ),
                params![dataset, model],
                |r| r.get(0),
            )
            .ctx("count unscored")?;
        Ok(n as u64)
    }

    /// Pairs of the dataset, or of one shard of it.
    pub fn count_shard_pairs(&self, dataset: &str, shard: Option<Shard>) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM pairs p WHERE p.dataset = ?{}", shard_clause(shard, "p.pair_id")),
                params![dataset],
                |r| r.get(0),
            )
            .ctx("count pairs")?;
        Ok(n as u64)
    }

    /// For the dataset cut into `count` shards: each shard with pairs that `model` has not
    /// scored, as `(index, unscored, pairs)`, in order of index.
    pub fn incomplete_shards(&self, dataset: &str, model: &str, count: u32) -> Result<Vec<(u32, u64, u64)>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT (md5_number(p.pair_id) % {count})::UINTEGER AS part,
                        count(*) FILTER (WHERE s.pair_id IS NULL), count(*)
                 FROM pairs p LEFT JOIN scores s ON s.dataset = p.dataset AND s.model = ? AND s.pair_id = p.pair_id
                 WHERE p.dataset = ? GROUP BY part HAVING count(*) FILTER (WHERE s.pair_id IS NULL) > 0 ORDER BY part"
            ))
            .ctx("count unscored shards")?;
        let rows = stmt
            .query_map(params![model, dataset], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64))
            })
            .ctx("count unscored shards")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("count unscored shards")?;
        Ok(rows)
    }

    /// The next `limit` pairs (of one shard) without a score from `model`, in a stable order.
    pub fn unscored_pairs(
        &self,
        dataset: &str,
        model: &str,
        limit: usize,
        shard: Option<Shard>,
    ) -> Result<Vec<PairTexts>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT p.pair_id, p.chosen_context, p.chosen_response, p.rejected_context, p.rejected_response
                 FROM pairs p WHERE p.dataset = ? AND NOT EXISTS
                 (SELECT 1 FROM scores s WHERE s.dataset = p.dataset AND s.model = ? AND s.pair_id = p.pair_id){}
                 ORDER BY p.subset, p.split, p.line LIMIT ?",
                shard_clause(shard, "p.pair_id")
            ))
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
                    batch_tokens, runtime_version, seal_version, device, input_format, tokenizer_sha256)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
                params![
                    run.dataset,
                    run.model,
                    run.model_sha256,
                    run.provider,
                    run.truncation.to_string(),
                    run.max_length,
                    run.batch_tokens,
                    run.runtime_version,
                    env!("CARGO_PKG_VERSION"),
                    run.device,
                    run.input_format.map(|f| f.to_string()),
                    run.tokenizer_sha256
                ],
                |r| r.get(0),
            )
            .ctx("start run")
            .inspect(|_| self.changed_scores(&run.dataset, &run.model))
    }

    /// Rewrites a run's device and runtime version (a served run's endpoints as it ended).
    pub fn set_run_device(&self, run_id: i64, device: &str, runtime_version: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE score_runs SET device = ?, runtime_version = ? WHERE run_id = ?",
                params![device, runtime_version, run_id],
            )
            .ctx("record run device")?;
        Ok(())
    }

    pub fn finish_run(&self, run_id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE score_runs SET finished_at = current_timestamp,
                    n_scored = (SELECT count(*) FROM scores WHERE run_id = ?) WHERE run_id = ?",
                params![run_id, run_id],
            )
            .ctx("finish run")?;
        let (dataset, model): (String, String) = self
            .conn
            .query_row("SELECT dataset, model FROM score_runs WHERE run_id = ?", params![run_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .ctx("finish run")?;
        self.changed_scores(&dataset, &model);
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
        self.changed_scores(dataset, model);
        Ok(())
    }

    /// Imports scores computed elsewhere from CSV, JSONL or Parquet with columns `pair_id`,
    /// `chosen_score`, `rejected_score`. Every id must name a pair of the dataset, once, with
    /// finite scores; otherwise nothing is stored and the offending rows are listed. `register`
    /// is stored with the scores (a model not yet registered), or not at all.
    pub fn import_scores(
        &mut self,
        dataset: &str,
        model: &str,
        file: &Path,
        run: &RunInfo,
        register: Option<&ModelRecord>,
    ) -> Result<u64> {
        self.require_dataset(dataset)?;
        let fmt = FileFormat::from_path(file)?;
        let shown = file.display().to_string();
        let tx = self.conn.transaction().ctx("begin")?;
        stage_import(&tx, fmt, file, &shown, dataset, &[])?;
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
        if let Some(m) = register {
            super::models::insert_model(&tx, m)?;
        }
        tx.execute_batch("DROP TABLE imported").ctx("drop staging")?;
        tx.commit().ctx("commit import")?;
        if register.is_some() {
            self.changed(super::Scope::Models);
        }
        self.changed_scores(dataset, model);
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
                        n: u64_at(r, 0)?,
                        agree: u64_at(r, 1)?,
                        disagree: u64_at(r, 2)?,
                        tie: u64_at(r, 3)?,
                        truncated_texts: u64_at(r, 4)?,
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
                |r| Ok((u64_at(r, 0)?, u64_at(r, 1)?)),
            )
            .ctx("count scores")
    }

    /// The providers of a model's runs on a dataset that left scores, each with the GPU it ran
    /// on where it ran on one (`CUDAExecutionProvider on cuda:0 (NVIDIA H200); TF32 off`). A run
    /// that stored none (stopped before its first chunk, or whose scores a replacement deleted)
    /// says nothing of the scores there are.
    pub fn run_providers(&self, dataset: &str, model: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT DISTINCT CASE WHEN r.device IS NULL OR r.device = 'cpu' THEN r.provider ELSE r.provider || ' on ' || r.device END AS p
                 FROM score_runs r WHERE dataset = ? AND model = ?
                     AND EXISTS (SELECT 1 FROM scores s WHERE s.run_id = r.run_id) ORDER BY p",
            )
            .ctx("list runs")?;
        let rows = stmt
            .query_map(params![dataset, model], |r| r.get(0))
            .ctx("list runs")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list runs")?;
        Ok(rows)
    }
}

/// The SQL condition that keeps one shard's pairs (see [`Shard`]); empty for all pairs.
fn shard_clause(shard: Option<Shard>, column: &str) -> String {
    match shard {
        None => String::new(),
        Some(s) => format!(" AND md5_number({column}) % {} = {}", s.count, s.index),
    }
}

/// What importing one shard file did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShardImport {
    pub file: String,
    /// `I/N` as the file names it.
    pub shard: Option<String>,
    /// `None` for a file without rows (an empty shard).
    pub model_sha256: Option<String>,
    /// Scores added.
    pub added: u64,
    /// Pairs that already had a score from the model (an earlier import of the same shard, or
    /// a run here), left as they were.
    pub already_scored: u64,
}

/// The columns a shard file of `seal score --out` holds, beyond the scores.
const SHARD_PROVENANCE: [&str; 9] = [
    "model_sha256",
    "provider",
    "device",
    "runtime_version",
    "seal_version",
    "truncation",
    "max_length",
    "batch_tokens",
    "shard",
];

/// What the scores of a shard file must have been computed with to join a model's: the graph,
/// and the input pipeline where it is known (a registered model's, or that of the model's
/// earlier imports). A file's column that is missing or empty is not compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardExpectation {
    pub sha256: Option<String>,
    /// `(truncation, max_length)` as score runs record them.
    pub truncation: Option<(String, Option<i64>)>,
    pub input_format: Option<String>,
    pub tokenizer_sha256: Option<String>,
}

/// A pair's two texts as scored, each context and response apart, hashed (pairs aliased `p`):
/// a shard file carries it per pair (`pair_texts_sha256`), so that scores of other texts under
/// the same pair ids (a variant's, another version of the dataset, the same words split
/// elsewhere between context and response) are refused. Shard files written before any hash
/// are read without that check.
const PAIR_TEXTS_SHA256: &str = "sha256(p.chosen_context || chr(30) || p.chosen_response || chr(31) || p.rejected_context || chr(30) || p.rejected_response)";

/// The hash of the first shard files (column `texts_sha256`), which did not mark where a
/// context ends and its response begins: still checked when a file has only it.
const PAIR_TEXTS_SHA256_V1: &str =
    "sha256(p.chosen_context || p.chosen_response || chr(31) || p.rejected_context || p.rejected_response)";

impl Store {
    /// Writes one model's scores on a dataset (on one shard of it) with each score's provenance
    /// — the model's sha256, provider, device, versions, truncation, batch budget, the shard, and
    /// the input format and tokenizer its run used (for runs recorded before those were, the
    /// registered model's) — to CSV, JSONL or Parquet: the file `seal scores import` merges.
    pub fn export_shard_scores(&self, dataset: &str, model: &str, shard: Option<Shard>, out: &Path) -> Result<u64> {
        self.require_dataset(dataset)?;
        let query = format!(
            "SELECT s.pair_id, s.chosen_score, s.rejected_score, s.chosen_tokens, s.rejected_tokens,
                    s.chosen_truncated, s.rejected_truncated, s.dataset, s.model,
                    r.model_sha256, r.provider, r.device, r.runtime_version, r.seal_version, r.truncation,
                    r.max_length, r.batch_tokens, {} AS shard, {PAIR_TEXTS_SHA256} AS pair_texts_sha256,
                    {RUN_FORMAT} AS input_format, {RUN_TOKENIZER} AS tokenizer_sha256
             FROM scores s JOIN score_runs r USING (run_id) JOIN pairs p ON p.dataset = s.dataset AND p.pair_id = s.pair_id
             LEFT JOIN models m ON m.name = s.model
             WHERE s.dataset = {} AND s.model = {}{} ORDER BY p.subset, p.split, p.line",
            shard.map_or("NULL::VARCHAR".to_owned(), |s| sql_literal(&s.to_string())),
            sql_literal(dataset),
            sql_literal(model),
            shard_clause(shard, "s.pair_id")
        );
        self.copy_to(&query, out)
    }

    /// The column names of a CSV, JSONL or Parquet file.
    pub fn file_columns(&self, file: &Path) -> Result<Vec<String>> {
        let fmt = FileFormat::from_path(file)?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT column_name FROM (DESCRIBE SELECT * FROM {})",
                fmt.reader(&file.to_string_lossy())
            ))
            .ctx(&format!("read {}", file.display()))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .ctx(&format!("read {}", file.display()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx(&format!("read {}", file.display()))?;
        Ok(rows)
    }

    /// The `(truncation, max_length)` settings of a model's score runs that have scores.
    pub fn run_truncations(&self, model: &str) -> Result<Vec<(String, Option<i64>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT truncation, max_length FROM score_runs r WHERE model = ? AND EXISTS (SELECT 1 FROM scores s WHERE s.run_id = r.run_id) ORDER BY ALL")
            .ctx("list runs")?;
        let rows = stmt
            .query_map(params![model], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("list runs")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list runs")?;
        Ok(rows)
    }

    /// The input formats and the tokenizers' sha256s that a model's score runs with scores
    /// recorded, each once (runs recorded before these were, and plain imports, record none).
    pub fn run_input_pipelines(&self, model: &str) -> Result<(Vec<String>, Vec<String>)> {
        let distinct = |column: &str| -> Result<Vec<String>> {
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT DISTINCT {column} FROM score_runs r WHERE model = ? AND {column} IS NOT NULL
                     AND EXISTS (SELECT 1 FROM scores s WHERE s.run_id = r.run_id) ORDER BY 1"
                ))
                .ctx("list runs")?;
            let rows = stmt.query_map(params![model], |r| r.get(0)).ctx("list runs")?;
            rows.collect::<std::result::Result<Vec<_>, _>>().ctx("list runs")
        };
        Ok((distinct("input_format")?, distinct("tokenizer_sha256")?))
    }

    /// The sha256s of the graphs behind a model's scores (of its runs that have scores).
    pub fn run_model_sha256s(&self, model: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT DISTINCT model_sha256 FROM score_runs r WHERE model = ? AND model_sha256 IS NOT NULL AND EXISTS (SELECT 1 FROM scores s WHERE s.run_id = r.run_id) ORDER BY 1",
            )
            .ctx("list runs")?;
        let rows = stmt
            .query_map(params![model], |r| r.get(0))
            .ctx("list runs")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list runs")?;
        Ok(rows)
    }

    /// Merges a shard file written by `seal score --shard I/N --out FILE` into `model`'s scores:
    /// every row checked (as [`Store::import_scores`] does), the file's graph and input pipeline
    /// required to be `expected`'s, and only pairs the model has not scored added, so importing
    /// a shard again changes nothing. The file's provenance becomes the runs': one for each
    /// provenance its rows carry (a shard resumed on another GPU, or with TF32, stays two
    /// runs). `register` is stored with the scores (a model not yet registered), or not at all.
    /// A file without rows (a shard with no pairs) adds nothing.
    pub fn import_shard(
        &mut self,
        dataset: &str,
        model: &str,
        file: &Path,
        expected: &ShardExpectation,
        register: Option<&ModelRecord>,
    ) -> Result<ShardImport> {
        self.require_dataset(dataset)?;
        let fmt = FileFormat::from_path(file)?;
        let shown = file.display().to_string();
        let tx = self.conn.transaction().ctx("begin")?;
        let columns = stage_import(&tx, fmt, file, &shown, dataset, &SHARD_PROVENANCE)?;
        let total: i64 = tx.query_row("SELECT count(*) FROM imported", [], |r| r.get(0)).ctx("count")?;
        if total == 0 {
            tx.execute_batch("DROP TABLE imported").ctx("drop staging")?;
            tx.commit().ctx("commit import")?;
            return Ok(ShardImport { file: shown, shard: None, model_sha256: None, added: 0, already_scored: 0 });
        }
        let line_base = if fmt == FileFormat::Csv { 1 } else { 0 };
        let unsigned: Option<i64> = tx
            .query_row(&format!("SELECT min(_row) + {line_base} FROM imported WHERE model_sha256 IS NULL"), [], |r| {
                r.get(0)
            })
            .ctx("read shard")?;
        let (shas, shard): (Vec<String>, Option<String>) = {
            let mut stmt = tx
                .prepare(
                    "SELECT DISTINCT model_sha256::VARCHAR FROM imported WHERE model_sha256 IS NOT NULL ORDER BY 1",
                )
                .ctx("read shard")?;
            let shas = stmt
                .query_map([], |r| r.get(0))
                .ctx("read shard")?
                .collect::<std::result::Result<Vec<String>, _>>()
                .ctx("read shard")?;
            let shard = tx.query_row("SELECT min(shard::VARCHAR) FROM imported", [], |r| r.get(0)).ctx("read shard")?;
            (shas, shard)
        };
        let sha = match shas.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(StoreError::Invalid(format!(
                    "{shown}: no model_sha256; it is not a shard file of `seal score --out`"
                )))
            }
            many => {
                return Err(StoreError::Invalid(format!(
                    "{shown}: scores of {} different graphs (model_sha256 {}); a shard file holds one model's",
                    many.len(),
                    many.join(", ")
                )))
            }
        };
        if let Some(line) = unsigned {
            return Err(StoreError::Invalid(format!(
                "{shown}:{line}: no model_sha256, where other rows name the graph {sha}; nothing was stored (every row of a shard file says which graph scored it)"
            )));
        }
        if let Some(expected) = expected.sha256.as_deref().filter(|e| *e != sha) {
            return Err(StoreError::Invalid(format!(
                "{shown}: scored by the graph with sha256 {sha}, but `{model}`'s scores come from sha256 {expected}; nothing was stored (import it under another model name)"
            )));
        }
        check_pipeline(&tx, &columns, &shown, model, expected)?;
        check_shard_membership(&tx, &shown, shard.as_deref(), line_base)?;
        let hashed = if columns.iter().any(|c| c == "pair_texts_sha256") {
            Some(("pair_texts_sha256", PAIR_TEXTS_SHA256))
        } else if columns.iter().any(|c| c == "texts_sha256") {
            Some(("texts_sha256", PAIR_TEXTS_SHA256_V1))
        } else {
            None
        };
        let other_texts: Vec<String> = if let Some((column, hash)) = hashed {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT i._row + {line_base}, i.pair_id::VARCHAR FROM imported i
                     JOIN pairs p ON p.dataset = ? AND p.pair_id = i.pair_id::VARCHAR
                     WHERE i.{column}::VARCHAR IS DISTINCT FROM {hash} ORDER BY i._row LIMIT 21"
                ))
                .ctx("compare texts")?;
            let rows = stmt
                .query_map(params![dataset], |r| {
                    Ok(format!("  {shown}:{}: pair `{}`", r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .ctx("compare texts")?;
            rows.collect::<std::result::Result<_, _>>().ctx("compare texts")?
        } else {
            Vec::new()
        };
        if !other_texts.is_empty() {
            let more = if other_texts.len() > 20 { "\n  … and more" } else { "" };
            return Err(StoreError::Invalid(format!(
                "{shown}: scored on texts that differ from dataset `{dataset}`'s (another version of it, or a variant with the same pair ids); nothing was stored:\n{}{more}",
                other_texts.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
            )));
        }
        let already: i64 = tx
            .query_row(
                "SELECT count(*) FROM imported i WHERE EXISTS
                 (SELECT 1 FROM scores s WHERE s.dataset = ? AND s.model = ? AND s.pair_id = i.pair_id::VARCHAR)",
                params![dataset, model],
                |r| r.get(0),
            )
            .ctx("compare with stored scores")?;
        let mut added = 0usize;
        if total > already {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("file");
            let source = match &shard {
                Some(s) => format!("{name}, shard {s}"),
                None => name.to_owned(),
            };
            // The new rows, numbered by their provenance: each number becomes one run.
            let (format, tokenizer) =
                (pipeline_column(&columns, "input_format"), pipeline_column(&columns, "tokenizer_sha256"));
            tx.execute(
                &format!(
                    "CREATE OR REPLACE TEMP TABLE import_runs AS
                     SELECT i.*, {format} AS _input_format, {tokenizer} AS _tokenizer_sha256,
                         dense_rank() OVER (ORDER BY provider::VARCHAR, device::VARCHAR,
                         runtime_version::VARCHAR, seal_version::VARCHAR, truncation::VARCHAR,
                         TRY_CAST(max_length AS INTEGER), TRY_CAST(batch_tokens AS INTEGER), {format}, {tokenizer}) AS _run
                     FROM imported i WHERE NOT EXISTS
                     (SELECT 1 FROM scores s WHERE s.dataset = ? AND s.model = ? AND s.pair_id = i.pair_id::VARCHAR)"
                ),
                params![dataset, model],
            )
            .ctx("group shard rows")?;
            let runs: i64 =
                tx.query_row("SELECT max(_run) FROM import_runs", [], |r| r.get(0)).ctx("group shard rows")?;
            for k in 1..=runs {
                let run_id: i64 = tx
                    .query_row(
                        "INSERT INTO score_runs (dataset, model, model_sha256, provider, device, runtime_version,
                             seal_version, truncation, max_length, batch_tokens, source, input_format, tokenizer_sha256)
                         SELECT ?, ?, ?, coalesce(min(provider::VARCHAR), 'import'), min(device::VARCHAR),
                             min(runtime_version::VARCHAR), coalesce(min(seal_version::VARCHAR), 'unknown'),
                             coalesce(min(truncation::VARCHAR), 'none'), min(TRY_CAST(max_length AS INTEGER)),
                             min(TRY_CAST(batch_tokens AS INTEGER)), ?, min(_input_format), min(_tokenizer_sha256)
                         FROM import_runs WHERE _run = ? RETURNING run_id",
                        params![dataset, model, sha, source, k],
                        |r| r.get(0),
                    )
                    .ctx("start import run")?;
                let n = tx
                    .execute(
                        "INSERT INTO scores (dataset, model, pair_id, chosen_score, rejected_score, chosen_tokens,
                             rejected_tokens, chosen_truncated, rejected_truncated, run_id)
                         SELECT ?, ?, i.pair_id::VARCHAR, i.chosen_score::DOUBLE, i.rejected_score::DOUBLE,
                             TRY_CAST(i.chosen_tokens AS INTEGER), TRY_CAST(i.rejected_tokens AS INTEGER),
                             coalesce(TRY_CAST(i.chosen_truncated AS BOOLEAN), false),
                             coalesce(TRY_CAST(i.rejected_truncated AS BOOLEAN), false), ?
                         FROM import_runs i WHERE _run = ?",
                        params![dataset, model, run_id, k],
                    )
                    .ctx("insert shard scores")?;
                tx.execute(
                    "UPDATE score_runs SET finished_at = current_timestamp, n_scored = ? WHERE run_id = ?",
                    params![n as i64, run_id],
                )
                .ctx("finish import run")?;
                added += n;
            }
            tx.execute_batch("DROP TABLE import_runs").ctx("drop staging")?;
        }
        if let Some(m) = register {
            super::models::insert_model(&tx, m)?;
        }
        tx.execute_batch("DROP TABLE imported").ctx("drop staging")?;
        tx.commit().ctx("commit import")?;
        if register.is_some() {
            self.changed(super::Scope::Models);
        }
        if added > 0 {
            self.changed_scores(dataset, model);
        }
        Ok(ShardImport {
            file: shown,
            shard,
            model_sha256: Some(sha),
            added: added as u64,
            already_scored: already as u64,
        })
    }
}

/// Refuses a shard file whose rows are not all of the one shard it names (`I/N`): rows of
/// several shards, or a pair whose part (the MD5 of its pair id modulo N) is another.
fn check_shard_membership(
    tx: &duckdb::Transaction<'_>,
    shown: &str,
    shard: Option<&str>,
    line_base: i64,
) -> Result<()> {
    let named: i64 =
        tx.query_row("SELECT count(DISTINCT shard::VARCHAR) FROM imported", [], |r| r.get(0)).ctx("read shard")?;
    if named > 1 {
        return Err(StoreError::Invalid(format!(
            "{shown}: rows of {named} different shards; a shard file holds one shard's scores; nothing was stored"
        )));
    }
    let Some(text) = shard else { return Ok(()) };
    let parsed: Shard = text.parse().map_err(|e| StoreError::Invalid(format!("{shown}: shard: {e}")))?;
    let outside: Option<(i64, String)> = tx
        .query_row(
            &format!(
                "SELECT _row + {line_base}, pair_id::VARCHAR FROM imported
                 WHERE md5_number(pair_id::VARCHAR) % {} <> {} ORDER BY _row LIMIT 1",
                parsed.count, parsed.index
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .ctx("read shard")?;
    match outside {
        Some((line, pair)) => Err(StoreError::Invalid(format!(
            "{shown}:{line}: pair `{pair}` is not in shard {parsed} (its pair id puts it in another); the file is not what `seal score --shard {parsed}` wrote; nothing was stored"
        ))),
        None => Ok(()),
    }
}

/// A pipeline column of a shard file as text (empty as NULL), or NULL where the file lacks it.
fn pipeline_column(columns: &[String], column: &str) -> String {
    if columns.iter().any(|c| c == column) {
        format!("nullif({column}::VARCHAR, '')")
    } else {
        "NULL::VARCHAR".to_owned()
    }
}

/// Refuses a shard file scored through another input pipeline than `expected`'s: truncation
/// and max length (always written), input format and tokenizer (where the file has them); and
/// one whose rows name more than one input format or tokenizer (parts scored before and after
/// the model was registered again with other settings).
fn check_pipeline(
    tx: &duckdb::Transaction<'_>,
    columns: &[String],
    shown: &str,
    model: &str,
    expected: &ShardExpectation,
) -> Result<()> {
    let refuse = |what: String, registered: String| {
        StoreError::Invalid(format!(
            "{shown}: scored with {what}, but `{model}`'s scores come from {registered}; nothing was stored (register the model with the same settings where the shards are scored, or import it under another model name)"
        ))
    };
    if let Some((truncation, max_length)) = &expected.truncation {
        let other: Option<(String, Option<i64>)> = tx
            .query_row(
                "SELECT t, m FROM (SELECT coalesce(truncation::VARCHAR, 'none') AS t, TRY_CAST(max_length AS INTEGER) AS m
                 FROM imported) WHERE t <> ? OR m IS DISTINCT FROM ?::INTEGER LIMIT 1",
                params![truncation, max_length],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("read shard")?;
        if let Some((t, m)) = other {
            return Err(refuse(truncation_text(&t, m), truncation_text(truncation, *max_length)));
        }
    }
    for (column, want, what, several) in [
        ("input_format", &expected.input_format, "input format", "input formats"),
        ("tokenizer_sha256", &expected.tokenizer_sha256, "the tokenizer with sha256", "tokenizers (sha256)"),
    ] {
        if !columns.iter().any(|c| c == column) {
            continue;
        }
        let values = pipeline_column(columns, column);
        if let Some(want) = want.as_deref() {
            let other: Option<String> = tx
                .query_row(
                    &format!("SELECT v FROM (SELECT {values} AS v FROM imported) WHERE v <> ? LIMIT 1"),
                    params![want],
                    |r| r.get(0),
                )
                .optional()
                .ctx("read shard")?;
            if let Some(v) = other {
                return Err(refuse(format!("{what} {v}"), format!("{what} {want}")));
            }
            continue;
        }
        // Nothing to compare with (a model not registered here, without earlier imports): the
        // file's rows must agree among themselves.
        let distinct: Vec<String> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT DISTINCT v FROM (SELECT {values} AS v FROM imported) WHERE v IS NOT NULL ORDER BY v LIMIT 3"
                ))
                .ctx("read shard")?;
            let rows = stmt.query_map([], |r| r.get(0)).ctx("read shard")?;
            rows.collect::<std::result::Result<_, _>>().ctx("read shard")?
        };
        if distinct.len() > 1 {
            return Err(StoreError::Invalid(format!(
                "{shown}: scores computed with {} {several} ({}); a model's scores come from one input pipeline; nothing was stored",
                distinct.len(),
                distinct.join(", ")
            )));
        }
    }
    Ok(())
}

/// Reads an import file into the temporary table `imported` (with its row numbers) inside
/// `tx`, and checks it: the score columns and `extra` ones present, every row's pair id known in
/// the dataset and given once, both scores finite numbers. The error names each bad row (up to
/// 20) by line. Answers the file's columns.
fn stage_import(
    tx: &duckdb::Transaction<'_>,
    fmt: FileFormat,
    file: &Path,
    shown: &str,
    dataset: &str,
    extra: &[&str],
) -> Result<Vec<String>> {
    tx.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE imported AS SELECT row_number() OVER () AS _row, * FROM {}",
        fmt.reader(&file.to_string_lossy())
    ))
    .ctx(&format!("read {shown}"))?;
    let mut stmt = tx.prepare("SELECT column_name FROM (DESCRIBE imported)").ctx("describe")?;
    let columns: Vec<String> =
        stmt.query_map([], |r| r.get(0)).ctx("describe")?.collect::<std::result::Result<_, _>>().ctx("describe")?;
    drop(stmt);
    for needed in ["pair_id", "chosen_score", "rejected_score"].iter().chain(extra) {
        if !columns.iter().any(|c| c == *needed) {
            return Err(StoreError::Invalid(format!(
                "{shown}: missing column `{needed}` (found: {})",
                columns[1..].join(", ")
            )));
        }
    }
    let line_base = if fmt == FileFormat::Csv { 1 } else { 0 };
    // A shard file's typed columns: a value there that is not of its type is named, not read
    // as missing.
    let typed: String = if extra.is_empty() {
        String::new()
    } else {
        [
            ("chosen_tokens", "INTEGER", "a whole number"),
            ("rejected_tokens", "INTEGER", "a whole number"),
            ("chosen_truncated", "BOOLEAN", "true or false"),
            ("rejected_truncated", "BOOLEAN", "true or false"),
            ("max_length", "INTEGER", "a whole number"),
            ("batch_tokens", "INTEGER", "a whole number"),
        ]
        .iter()
        .filter(|(c, ..)| columns.iter().any(|have| have == c))
        .map(|(c, ty, what)| {
            format!("WHEN i.{c} IS NOT NULL AND TRY_CAST(i.{c} AS {ty}) IS NULL THEN '{c} is not {what}: ' || i.{c}::VARCHAR\n")
        })
        .collect()
    };
    let problems: Vec<String> = {
        let mut stmt = tx
            .prepare(&format!(
                "SELECT _row + {line_base}, CASE
                    WHEN i.pair_id IS NULL THEN 'missing pair_id'
                    WHEN TRY_CAST(i.chosen_score AS DOUBLE) IS NULL THEN 'chosen_score is missing or not a number'
                    WHEN TRY_CAST(i.rejected_score AS DOUBLE) IS NULL THEN 'rejected_score is missing or not a number'
                    WHEN NOT isfinite(TRY_CAST(i.chosen_score AS DOUBLE)) OR NOT isfinite(TRY_CAST(i.rejected_score AS DOUBLE))
                        THEN 'score is not finite'
                    {typed}WHEN p.pair_id IS NULL THEN 'unknown pair_id `' || i.pair_id::VARCHAR || '` in dataset {ds}'
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
    Ok(columns)
}
