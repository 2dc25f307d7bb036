//! Registered reward models: the table `models`.

use duckdb::{params, OptionalExt};

use super::{word_at, Context, Result, Store, StoreError};
use crate::domain::{ModelRecord, Precision};

/// Scores a model holds that a new registration under its name would not compute alike: on
/// `dataset`, `count` scores whose graph or input pipeline differ as `differs` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleScores {
    pub dataset: String,
    pub count: u64,
    pub differs: Vec<String>,
}

impl Store {
    /// Registers a model; one of the same name only with `replace`, and then only if the model's
    /// stored scores were computed as the new registration computes them (the same graph,
    /// input format, tokenizer, truncation and max length), lest one name hold two models'
    /// scores. With `drop_stale`, the scores it would not compute alike (and runs left without
    /// scores) are deleted instead, in the same transaction. Answers the scores deleted.
    pub fn add_model(&self, m: &ModelRecord, replace: bool, drop_stale: bool) -> Result<u64> {
        if self.model_opt(&m.name)?.is_none() {
            insert_model(&self.conn, m)?;
            self.changed(super::Scope::Models);
            return Ok(0);
        }
        if !replace {
            return Err(StoreError::Conflict(format!(
                "a model named `{}` exists; pick another --name or pass --replace",
                m.name
            )));
        }
        let stale = self.stale_scores(m)?;
        if !stale.is_empty() && !drop_stale {
            let held: Vec<String> =
                stale.iter().map(|s| format!("{} on `{}` ({})", s.count, s.dataset, s.differs.join("; "))).collect();
            return Err(StoreError::Conflict(format!(
                "model `{}` holds scores this registration would not compute alike: {}; registering it under the same name would mix two models' scores, so nothing was changed. Register it under another name, or ask to delete those scores (`--drop-scores`, or `drop_scores` in the API)",
                m.name,
                held.join(", ")
            )));
        }
        let tx = self.conn.unchecked_transaction().ctx("begin")?;
        let mut dropped = 0u64;
        if !stale.is_empty() {
            dropped = tx
                .execute(
                    &format!("DELETE FROM scores WHERE model = ? AND run_id IN ({})", stale_runs()),
                    stale_params(m),
                )
                .ctx("delete stale scores")? as u64;
            // The stale runs left without scores; a run still going (no end yet) keeps its row.
            tx.execute(
                &format!(
                    "DELETE FROM score_runs WHERE model = ? AND run_id IN ({}) AND finished_at IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.run_id = score_runs.run_id)",
                    stale_runs()
                ),
                stale_params(m),
            )
            .ctx("delete runs without scores")?;
        }
        insert_model(&tx, m)?;
        tx.commit().ctx("commit model")?;
        self.changed(super::Scope::Models);
        for s in &stale {
            self.changed_scores(&s.dataset, &m.name);
        }
        Ok(dropped)
    }

    /// The scores of `m.name` that `m` would not compute alike, per dataset and difference.
    /// Runs recorded before they kept their input format and tokenizer are taken to have used
    /// the registration being replaced.
    pub fn stale_scores(&self, m: &ModelRecord) -> Result<Vec<StaleScores>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT s.dataset, r.model_sha256, {RUN_FORMAT}, {RUN_TOKENIZER}, r.truncation, r.max_length, count(*)
                 FROM scores s JOIN score_runs r USING (run_id) JOIN models m ON m.name = s.model
                 WHERE s.model = ? AND s.run_id IN ({})
                 GROUP BY ALL ORDER BY ALL",
                stale_runs()
            ))
            .ctx("compare scores")?;
        let rows = stmt
            .query_map(stale_params(m), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .ctx("compare scores")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("compare scores")?;
        let mut out: Vec<StaleScores> = Vec::new();
        let unknown = || "unknown".to_owned();
        for (dataset, sha, format, tokenizer, truncation, max_length, count) in rows {
            let mut differs = Vec::new();
            if sha != m.onnx_sha256 {
                differs.push(format!(
                    "graph sha256 {} where this one is {}",
                    sha.unwrap_or_else(unknown),
                    m.onnx_sha256.clone().unwrap_or_else(unknown)
                ));
            }
            if format.as_deref() != Some(m.input_format.to_string().as_str()) {
                differs.push(format!(
                    "input format {} where this one is {}",
                    format.unwrap_or_else(unknown),
                    m.input_format
                ));
            }
            if tokenizer != m.tokenizer_sha256 {
                differs.push(format!(
                    "tokenizer sha256 {} where this one is {}",
                    tokenizer.unwrap_or_else(unknown),
                    m.tokenizer_sha256.clone().unwrap_or_else(unknown)
                ));
            }
            let ml = m.max_length.map(i64::from);
            if truncation != m.truncation.to_string() || max_length != ml {
                differs.push(format!(
                    "{} where this one has {}",
                    truncation_text(&truncation, max_length),
                    truncation_text(&m.truncation.to_string(), ml)
                ));
            }
            match out.last_mut() {
                Some(last) if last.dataset == dataset => {
                    last.count += count as u64;
                    for d in differs {
                        if !last.differs.contains(&d) {
                            last.differs.push(d);
                        }
                    }
                }
                _ => out.push(StaleScores { dataset, count: count as u64, differs }),
            }
        }
        Ok(out)
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
}

/// Registers a model through `conn` (the store's connection, or a transaction of it).
pub(super) fn insert_model(conn: &duckdb::Connection, m: &ModelRecord) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO models (name, kind, folder, onnx_sha256, tokenizer_sha256, inputs,
            input_format, max_length, truncation, is_test_model, precision, endpoints, token_env)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            m.precision.map(Precision::as_str),
            (!m.endpoints.is_empty()).then(|| m.endpoints.join("\n")),
            m.token_env
        ],
    )
    .ctx("insert model")?;
    Ok(())
}

/// A run's input format and tokenizer, or for a run recorded before it kept them, those of the
/// model's registration (none for an imported model's).
pub(super) const RUN_FORMAT: &str =
    "coalesce(r.input_format, CASE WHEN m.kind = 'imported' THEN NULL ELSE m.input_format END)";
pub(super) const RUN_TOKENIZER: &str = "coalesce(r.tokenizer_sha256, m.tokenizer_sha256)";

/// The runs of a model (`?` 1) whose scores a registration (the `?`s of [`stale_values`]) would
/// not compute alike: another graph, input format or tokenizer (or one not known: scores
/// imported from a file that does not say), truncation or max length.
fn stale_runs() -> String {
    format!(
        "SELECT r.run_id FROM score_runs r JOIN models m ON m.name = r.model
         WHERE r.model = ? AND (r.model_sha256 IS DISTINCT FROM ? OR {RUN_FORMAT} IS DISTINCT FROM ?
             OR {RUN_TOKENIZER} IS DISTINCT FROM ? OR r.truncation <> ? OR r.max_length IS DISTINCT FROM ?::INTEGER)"
    )
}

/// How scores were truncated, as messages say it (`truncation context-left, max length 512`).
pub(super) fn truncation_text(truncation: &str, max_length: Option<i64>) -> String {
    match max_length {
        Some(l) => format!("truncation {truncation}, max length {l}"),
        None => format!("truncation {truncation}, no max length"),
    }
}

/// The values [`stale_runs`] compares a model's runs with, after the model's name.
fn stale_values(m: &ModelRecord) -> Vec<Option<String>> {
    vec![
        Some(m.name.clone()),
        m.onnx_sha256.clone(),
        Some(m.input_format.to_string()),
        m.tokenizer_sha256.clone(),
        Some(m.truncation.to_string()),
        m.max_length.map(|l| l.to_string()),
    ]
}

/// The parameters of `DELETE … WHERE model = ? AND run_id IN (stale_runs())`.
fn stale_params(m: &ModelRecord) -> duckdb::ParamsFromIter<Vec<Option<String>>> {
    duckdb::params_from_iter(std::iter::once(Some(m.name.clone())).chain(stale_values(m)).collect())
}

const MODEL_COLUMNS: &str = "SELECT name, kind, folder, onnx_sha256, tokenizer_sha256, inputs, input_format,
    max_length, truncation, is_test_model, precision, endpoints, token_env FROM models";

fn model_row(r: &duckdb::Row<'_>) -> duckdb::Result<ModelRecord> {
    let inputs: String = r.get(5)?;
    Ok(ModelRecord {
        name: r.get(0)?,
        kind: word_at(r, 1)?,
        folder: r.get(2)?,
        onnx_sha256: r.get(3)?,
        tokenizer_sha256: r.get(4)?,
        inputs: inputs.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        input_format: word_at(r, 6)?,
        max_length: r.get(7)?,
        truncation: word_at(r, 8)?,
        is_test_model: r.get(9)?,
        precision: r
            .get::<_, Option<String>>(10)?
            .map(|p| p.parse())
            .transpose()
            .map_err(|e| duckdb::Error::FromSqlConversionFailure(10, duckdb::types::Type::Text, Box::new(e)))?,
        endpoints: r.get::<_, Option<String>>(11)?.map(|e| e.lines().map(str::to_owned).collect()).unwrap_or_default(),
        token_env: r.get(12)?,
    })
}
