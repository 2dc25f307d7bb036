//! Registered reward models: the table `models`.

use duckdb::{params, OptionalExt};

use super::{word_at, Context, Result, Store, StoreError};
use crate::domain::{ModelRecord, Precision};

impl Store {
    pub fn add_model(&self, m: &ModelRecord, replace: bool) -> Result<()> {
        if !replace && self.model_opt(&m.name)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "a model named `{}` exists; pick another --name or pass --replace",
                m.name
            )));
        }
        insert_model(&self.conn, m)?;
        self.changed(super::Scope::Models);
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
